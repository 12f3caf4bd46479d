import { ModelshipError } from '../util/errors';
import { exchange, Reply } from '../util/http';

/** `registry/repo[:tag|@digest]` split into its parts (Docker's reference rules, enough for our images). */
export function parseImageRef(ref: string): { registry: string; repository: string; tag?: string; digest?: string } {
  const m = /^(?:([a-zA-Z0-9.-]+(?::\d+)?|localhost(?::\d+)?)\/)?([a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/.exec(ref);
  if (!m) throw new ModelshipError('input', `"${ref}" is not a valid image reference (registry/repository[:tag][@sha256:...], lower case)`, { field: 'image' });
  let [, registry, repository] = m;
  if (!registry || (!registry.includes('.') && !registry.includes(':') && registry !== 'localhost')) {
    repository = registry ? `${registry}/${repository}` : repository;
    registry = 'docker.io';
  }
  return { registry, repository, tag: m[3], digest: m[4] };
}

const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface Manifest {
  mediaType?: string;
  config: { digest: string; size: number };
  layers: { digest: string; size: number; mediaType: string }[];
}

/** The base URL of a repository in the registry's HTTP API (plain HTTP for loopback registries, like the lab's). */
export function registryBase(ref: string): { base: string; repository: string; tag?: string; digest?: string } {
  const r = parseImageRef(ref);
  const plain = /^(127\.|localhost)/.test(r.registry);
  return { base: `${plain ? 'http' : 'https'}://${r.registry}/v2/${r.repository}`, repository: r.repository, tag: r.tag, digest: r.digest };
}

export type RegistryReply = Reply;

/** One HTTP request to a registry; network failures become ModelshipErrors naming the URL. */
export async function registryRequest(method: string, url: string, body?: Uint8Array, headers: Record<string, string> = {}): Promise<RegistryReply> {
  try {
    return await exchange(url, { method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, body);
  } catch (e) {
    throw new ModelshipError('io', `cannot reach the registry: ${method} ${url}: ${(e as Error).message}`);
  }
}

/** Accept every manifest type, and Basic auth when there are credentials. */
export function registryHeaders(auth?: { username: string; password: string }): Record<string, string> {
  const headers: Record<string, string> = { accept: ACCEPT };
  if (auth?.username) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  return headers;
}

/** Fetch a manifest from a registry's HTTP API. */
export async function fetchManifest(ref: string, auth?: { username: string; password: string }): Promise<Manifest> {
  const r = registryBase(ref);
  const url = `${r.base}/manifests/${r.digest ?? r.tag ?? 'latest'}`;
  const res = await registryRequest('GET', url, undefined, registryHeaders(auth));
  const text = res.body.toString('utf8');
  if (res.status !== 200) throw new ModelshipError('io', `registry answered ${res.status} for ${url}: ${text.slice(0, 300)}`);
  try {
    return JSON.parse(text) as Manifest;
  } catch (e) {
    throw new ModelshipError('io', `registry sent a manifest that is not JSON: ${(e as Error).message}`);
  }
}

/**
 * Delete what a tag points to (the registry API deletes manifests by digest, so every tag of that manifest goes
 * with it). Returns the deleted digest, or undefined when the tag does not exist.
 */
export async function deleteTag(ref: string, auth?: { username: string; password: string }): Promise<string | undefined> {
  const r = registryBase(ref);
  const headers = registryHeaders(auth);
  const head = await registryRequest('HEAD', `${r.base}/manifests/${r.tag}`, undefined, headers);
  const digest = head.headers['docker-content-digest'];
  if (head.status === 404) return undefined;
  if (head.status !== 200 || typeof digest !== 'string') throw new ModelshipError('io', `registry answered ${head.status} for ${ref}`);
  const del = await registryRequest('DELETE', `${r.base}/manifests/${digest}`, undefined, headers);
  if (del.status !== 202 && del.status !== 200) throw new ModelshipError('io', `registry refused to delete ${ref} (${digest}): HTTP ${del.status} ${del.body.toString().slice(0, 200)}`);
  return digest;
}
