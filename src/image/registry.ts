import * as http from 'http';
import * as https from 'https';
import { ModelshipError } from '../util/errors';

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

export interface RegistryReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP request to a registry; network failures become ModelshipErrors naming the URL. */
export function registryRequest(method: string, url: string, body?: Uint8Array, headers: Record<string, string> = {}): Promise<RegistryReply> {
  const u = new URL(url);
  const mod = u.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', (e) => reject(new ModelshipError('io', `cannot reach the registry: ${method} ${url}: ${e.message}`)));
    if (body) req.write(body);
    req.end();
  });
}

/** Fetch a manifest from a registry's HTTP API. */
export async function fetchManifest(ref: string, auth?: { username: string; password: string }): Promise<Manifest> {
  const r = registryBase(ref);
  const url = `${r.base}/manifests/${r.digest ?? r.tag ?? 'latest'}`;
  const headers: Record<string, string> = { accept: ACCEPT };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  const res = await registryRequest('GET', url, undefined, headers);
  const text = res.body.toString('utf8');
  if (res.status !== 200) throw new ModelshipError('io', `registry answered ${res.status} for ${url}: ${text.slice(0, 300)}`);
  try {
    return JSON.parse(text) as Manifest;
  } catch (e) {
    throw new ModelshipError('io', `registry sent a manifest that is not JSON: ${(e as Error).message}`);
  }
}
