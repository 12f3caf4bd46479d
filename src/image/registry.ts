import { createHash } from 'crypto';
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

/** What an image config blob says (the part modelship reads). */
export interface ImageConfigBlob {
  architecture?: string;
  os?: string;
  config?: { Env?: string[]; Labels?: Record<string, string> | null; Entrypoint?: string[] | null; Cmd?: string[] | null };
}

interface IndexManifest {
  mediaType?: string;
  manifests?: { digest: string; mediaType?: string; platform?: { os?: string; architecture?: string; variant?: string } }[];
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

/**
 * A GET against a registry that also speaks the token protocol (nvcr.io, ghcr.io, Docker Hub all answer 401 with
 * `WWW-Authenticate: Bearer realm=...,service=...,scope=...`, even for anonymous pulls): on that challenge a token is
 * fetched from the realm (with Basic credentials when there are some) and the request is sent again. Redirects (blob
 * downloads go to a CDN) are followed without the Authorization header.
 */
async function registryGet(url: string, accept: string, auth?: { username: string; password: string }, token?: { value?: string }): Promise<Reply> {
  const timeout = 30_000;
  const get = async (u: string, headers: Record<string, string>): Promise<Reply> => {
    try {
      return await exchange(u, { method: 'GET', headers, timeout });
    } catch (e) {
      throw new ModelshipError('io', `cannot reach the registry: GET ${u}: ${(e as Error).message}`);
    }
  };
  const headers = (): Record<string, string> => {
    const h: Record<string, string> = { accept };
    if (token?.value) h.authorization = `Bearer ${token.value}`;
    else if (auth?.username) h.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    return h;
  };
  let res = await get(url, headers());
  const challenge = String(res.headers['www-authenticate'] ?? '');
  if (res.status === 401 && /^Bearer\s/i.test(challenge) && token) {
    const params: Record<string, string> = {};
    for (const m of challenge.slice(7).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[m[1].toLowerCase()] = m[2];
    if (!params.realm) throw new ModelshipError('io', `registry sent a Bearer challenge without a realm for ${url}`);
    const t = new URL(params.realm);
    if (params.service) t.searchParams.set('service', params.service);
    if (params.scope) t.searchParams.set('scope', params.scope);
    const th: Record<string, string> = { accept: 'application/json' };
    if (auth?.username) th.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
    const tr = await get(t.toString(), th);
    if (tr.status !== 200) throw new ModelshipError('io', `registry token service answered ${tr.status} for ${t.origin}${t.pathname} (scope ${params.scope ?? '-'})${auth?.username ? '' : '; the image may need registry credentials'}`);
    try {
      const body = JSON.parse(tr.body.toString('utf8')) as { token?: string; access_token?: string };
      token.value = body.token ?? body.access_token;
    } catch (e) {
      throw new ModelshipError('io', `registry token service sent no JSON: ${(e as Error).message}`);
    }
    if (!token.value) throw new ModelshipError('io', `registry token service sent no token for ${url}`);
    res = await get(url, headers());
  }
  for (let hops = 0; hops < 5 && [301, 302, 303, 307, 308].includes(res.status) && res.headers.location; hops++) {
    const next = new URL(String(res.headers.location), url);
    // the token is for the registry only; a CDN gets none (a pre-signed URL refuses extra credentials)
    res = await get(next.toString(), next.host === new URL(url).host ? headers() : { accept: '*/*' });
  }
  return res;
}

/**
 * The config blob of an image in a registry (its Env, Labels, ...), through the registry API only: the manifest (for
 * an index, the one for `platform`, default this machine's linux/<arch>), then the config blob it names, checked
 * against its digest.
 */
export async function fetchImageConfig(ref: string, auth?: { username: string; password: string }, platform: { os: string; architecture: string } = { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch }): Promise<ImageConfigBlob> {
  const r = registryBase(ref);
  const token: { value?: string } = {};
  const manifest = async (reference: string): Promise<Manifest & IndexManifest> => {
    const url = `${r.base}/manifests/${reference}`;
    const res = await registryGet(url, ACCEPT, auth, token);
    const text = res.body.toString('utf8');
    if (res.status !== 200) throw new ModelshipError('io', `registry answered ${res.status} for ${url}: ${text.slice(0, 300)}`);
    try {
      return JSON.parse(text) as Manifest & IndexManifest;
    } catch (e) {
      throw new ModelshipError('io', `registry sent a manifest that is not JSON (${url}): ${(e as Error).message}`);
    }
  };
  let m = await manifest(r.digest ?? r.tag ?? 'latest');
  if (Array.isArray(m.manifests)) {
    const entry = m.manifests.find((e) => e.platform?.os === platform.os && e.platform?.architecture === platform.architecture);
    if (!entry) throw new ModelshipError('io', `${ref} has no image for ${platform.os}/${platform.architecture} (it has ${m.manifests.map((e) => `${e.platform?.os}/${e.platform?.architecture}`).join(', ')})`);
    m = await manifest(entry.digest);
  }
  if (!m.config?.digest) throw new ModelshipError('io', `the manifest of ${ref} names no config blob (media type ${m.mediaType ?? 'unknown'})`);
  const url = `${r.base}/blobs/${m.config.digest}`;
  const res = await registryGet(url, '*/*', auth, token);
  if (res.status !== 200) throw new ModelshipError('io', `registry answered ${res.status} for ${url}: ${res.body.toString('utf8').slice(0, 300)}`);
  const [alg, hex] = m.config.digest.split(':');
  if (alg === 'sha256' && createHash('sha256').update(res.body).digest('hex') !== hex) throw new ModelshipError('io', `the config blob of ${ref} does not match its digest ${m.config.digest}`);
  try {
    return JSON.parse(res.body.toString('utf8')) as ImageConfigBlob;
  } catch (e) {
    throw new ModelshipError('io', `the config blob of ${ref} is not JSON: ${(e as Error).message}`);
  }
}
