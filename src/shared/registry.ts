import { createHash } from 'crypto';
import { ModelshipError } from '../util/errors';
import { exchange, Reply } from '../util/http';

/** `registry/repo[:tag|@digest]` split into its parts (Docker's reference rules, enough for our images). */
export function parseImageRef(ref: string): { registry: string; repository: string; tag?: string; digest?: string } {
  const m =
    /^(?:([a-zA-Z0-9.-]+(?::\d+)?|localhost(?::\d+)?)\/)?([a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/.exec(
      ref,
    );
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

/** Whether a registry speaks plain HTTP: a loopback one, like the lab's (everything else is HTTPS). */
export function plainHttpRegistry(registry: string): boolean {
  return /^(127\.|localhost)/.test(registry);
}

/** The base URL of a repository in the registry's HTTP API (plain HTTP for loopback registries, like the lab's). */
export function registryBase(ref: string): { base: string; repository: string; tag?: string; digest?: string } {
  const r = parseImageRef(ref);
  const plain = plainHttpRegistry(r.registry);
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
 * The image stage's registry cache tag: `buildcache`, the deploy's; a pull request's build (the one tagged pr-<N>)
 * writes `buildcache-pr-<N>` of its own and only reads `buildcache`, so a preview never moves the deploy's cache, and
 * the preview's cleanup removes it with pr-<N>.
 */
export function cacheTag(pr?: number): string {
  return pr === undefined ? 'buildcache' : `buildcache-pr-${pr}`;
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

/** Every tag of a repository: GET /v2/<name>/tags/list, paged (`n`, then the Link header's next page). */
export async function listTags(repo: string, auth?: { username: string; password: string }): Promise<string[]> {
  const r = registryBase(repo);
  const headers = { ...registryHeaders(auth), accept: 'application/json' };
  const tags: string[] = [];
  let url: string | undefined = `${r.base}/tags/list?n=1000`;
  for (let page = 0; url && page < 1000; page++) {
    const res = await registryRequest('GET', url, undefined, headers);
    if (res.status !== 200)
      throw new ModelshipError('io', `GET ${new URL(url).pathname} answered ${res.status}: ${res.body.toString('utf8').trim().slice(0, 200)}`);
    let body: { tags?: string[] | null };
    try {
      body = JSON.parse(res.body.toString('utf8')) as typeof body;
    } catch (e) {
      throw new ModelshipError('io', `GET ${new URL(url).pathname} sent no JSON: ${(e as Error).message}`);
    }
    tags.push(...(body.tags ?? []));
    const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''))?.[1];
    url = next ? new URL(next, url).toString() : undefined;
  }
  return [...new Set(tags)];
}

/** What a tag resolves to: the manifest digest and media type (HEAD; GET and hash where HEAD gives no digest), and an index's children. */
async function resolveTag(base: string, tag: string, headers: Record<string, string>): Promise<{ digest: string; children?: string[] } | undefined> {
  const url = `${base}/manifests/${tag}`;
  const head = await registryRequest('HEAD', url, undefined, headers);
  if (head.status === 404) return undefined;
  if (head.status !== 200) throw new ModelshipError('io', `HEAD ${new URL(url).pathname} answered ${head.status}`);
  let digest = head.headers['docker-content-digest'];
  const type = String(head.headers['content-type'] ?? '')
    .split(';')[0]
    .trim();
  if (typeof digest === 'string' && !INDEX_TYPES.has(type)) return { digest };
  const get = await registryRequest('GET', url, undefined, headers);
  if (get.status === 404) return undefined;
  if (get.status !== 200) throw new ModelshipError('io', `GET ${new URL(url).pathname} answered ${get.status}`);
  if (typeof digest !== 'string') digest = `sha256:${createHash('sha256').update(get.body).digest('hex')}`;
  let children: string[] | undefined;
  try {
    const m = JSON.parse(get.body.toString('utf8')) as IndexManifest;
    if (Array.isArray(m.manifests)) children = m.manifests.map((x) => x.digest);
  } catch {
    /* not JSON: no children */
  }
  return { digest, children };
}

/** The manifest digest a reference (registry/repository:tag or @digest) resolves to; undefined when there is none. */
export async function resolveDigest(ref: string, auth?: { username: string; password: string }): Promise<string | undefined> {
  const r = registryBase(ref);
  return (await resolveTag(r.base, r.digest ?? r.tag ?? 'latest', registryHeaders(auth)))?.digest;
}

/** One manifest that tags to remove point at: which of them, and which other tags point at it too. */
export interface UntagPlan {
  digest: string;
  /** the tags to remove that point at this manifest */
  tags: string[];
  /** the other tags that point at it, directly or through an image index that lists it */
  others: string[];
}

/**
 * Which manifests the tags to remove point at, and which other tags share each (pure): `ours` maps each tag to remove
 * that exists to its digest, `theirs` every other tag to its digest (and, for an image index, its children).
 */
export function planUntag(ours: Record<string, string>, theirs: Record<string, { digest: string; children?: string[] }>): UntagPlan[] {
  const plans = new Map<string, UntagPlan>();
  for (const [tag, digest] of Object.entries(ours)) {
    const p = plans.get(digest) ?? { digest, tags: [], others: [] };
    p.tags.push(tag);
    plans.set(digest, p);
  }
  for (const p of plans.values()) {
    p.others = Object.entries(theirs)
      .filter(([tag, t]) => !(tag in ours) && (t.digest === p.digest || (t.children ?? []).includes(p.digest)))
      .map(([tag]) => tag)
      .sort();
  }
  return [...plans.values()];
}

/** What removing tags came to, for one manifest they pointed at. */
export interface UntagResult extends UntagPlan {
  /** how they went: the manifest by digest (no other tag had it), or each tag alone (the OCI tag deletion) */
  how?: 'manifest' | 'tag';
  /** which of `tags` are gone */
  removed: string[];
  /** why the rest stayed: the registry's answer */
  refused?: string;
  /** why the other tags are unknown (the list failed): then the manifest is never deleted by digest */
  unlisted?: string;
  /** other tags that no longer resolve to the manifest after the tag deletion (a registry that deleted more) */
  lost?: string[];
  /** other tags on the manifest that `claim` said are the caller's too: in `tags`, deleted with the manifest */
  claimed?: string[];
}

/** Run `fn` over `items`, `width` at a time. */
async function pool<T, R>(items: T[], width: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

/**
 * Remove `tags` of the repository `repo` (registry/repository) and nothing else: a manifest is deleted by digest only
 * when no other tag points at it (the repository's tags listed and resolved; an image index that lists it counts);
 * otherwise each tag is deleted alone (DELETE /v2/<name>/manifests/<tag>, the OCI distribution spec's tag deletion)
 * and the other tags are checked afterwards. A registry that refuses that (distribution 2.x answers 400
 * DIGEST_INVALID, others 405 UNSUPPORTED) keeps everything: `refused` says why. Tags that do not exist are skipped.
 * `claim(others, digest)` may say that all the other tags on a manifest are the caller's too (a build's own tags,
 * told by the manifest's labels): then they go with it.
 */
export async function removeTags(
  repo: string,
  tags: string[],
  auth?: { username: string; password: string },
  claim?: (others: string[], digest: string) => Promise<boolean>,
): Promise<UntagResult[]> {
  const r = registryBase(repo);
  const headers = registryHeaders(auth);
  const ours: Record<string, string> = {};
  for (const tag of tags) {
    const t = await resolveTag(r.base, tag, headers);
    if (t) ours[tag] = t.digest;
  }
  if (Object.keys(ours).length === 0) return [];
  const theirs: Record<string, { digest: string; children?: string[] }> = {};
  let unlisted: string | undefined;
  try {
    const all = await listTags(repo, auth);
    // a list without our tags is not the whole list (a registry still catching up, a proxy): nothing to trust
    const missing = Object.keys(ours).filter((t) => !all.includes(t));
    if (missing.length)
      throw new ModelshipError(
        'io',
        `GET ${new URL(r.base).pathname}/tags/list leaves out ${missing.map((t) => `:${t}`).join(', ')}, which exist${missing.length === 1 ? 's' : ''}: the list is not the whole`,
      );
    const others = all.filter((t) => !(t in ours));
    const resolved = await pool(others, 8, (t) => resolveTag(r.base, t, headers));
    others.forEach((t, i) => {
      if (resolved[i]) theirs[t] = resolved[i]!;
    });
  } catch (e) {
    unlisted = (e as Error).message;
  }
  const results: UntagResult[] = [];
  for (const plan of planUntag(ours, theirs)) {
    const result: UntagResult = { ...plan, removed: [], ...(unlisted ? { unlisted } : {}) };
    results.push(result);
    // every other tag on this very manifest (none through an index) the caller's own: they go with the manifest
    if (
      !unlisted &&
      claim &&
      plan.others.length &&
      plan.others.every((t) => theirs[t]?.digest === plan.digest) &&
      (await claim(plan.others, plan.digest).catch(() => false))
    ) {
      Object.assign(result, { tags: [...plan.tags, ...plan.others], others: [], claimed: plan.others });
      plan.tags = result.tags;
      plan.others = [];
    }
    if (!unlisted && plan.others.length === 0) {
      const del = await registryRequest('DELETE', `${r.base}/manifests/${plan.digest}`, undefined, headers);
      if (del.status === 200 || del.status === 202) Object.assign(result, { how: 'manifest', removed: [...plan.tags] });
      else result.refused = `HTTP ${del.status} ${del.body.toString().trim().slice(0, 200)}`;
      continue;
    }
    for (const tag of plan.tags) {
      const url = `${r.base}/manifests/${tag}`;
      const del = await registryRequest('DELETE', url, undefined, headers);
      if (del.status !== 200 && del.status !== 202) {
        result.refused = `DELETE ${new URL(url).pathname} answered ${del.status}: ${del.body.toString().trim().slice(0, 200)}`;
        break;
      }
      result.how = 'tag';
      result.removed.push(tag);
    }
    if (result.removed.length && plan.others.length) {
      const after = await pool(plan.others, 8, (t) => resolveTag(r.base, t, headers).catch(() => undefined));
      const lost = plan.others.filter((t, i) => after[i]?.digest !== plan.digest && !(after[i]?.children ?? []).includes(plan.digest));
      if (lost.length) result.lost = lost;
    }
  }
  return results;
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
    if (tr.status !== 200)
      throw new ModelshipError(
        'io',
        `registry token service answered ${tr.status} for ${t.origin}${t.pathname} (scope ${params.scope ?? '-'})${auth?.username ? '' : '; the image may need registry credentials'}`,
      );
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
export async function fetchImageConfig(
  ref: string,
  auth?: { username: string; password: string },
  platform: { os: string; architecture: string } = { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch },
): Promise<ImageConfigBlob> {
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
    if (!entry)
      throw new ModelshipError(
        'io',
        `${ref} has no image for ${platform.os}/${platform.architecture} (it has ${m.manifests.map((e) => `${e.platform?.os}/${e.platform?.architecture}`).join(', ')})`,
      );
    m = await manifest(entry.digest);
  }
  if (!m.config?.digest) throw new ModelshipError('io', `the manifest of ${ref} names no config blob (media type ${m.mediaType ?? 'unknown'})`);
  const url = `${r.base}/blobs/${m.config.digest}`;
  const res = await registryGet(url, '*/*', auth, token);
  if (res.status !== 200) throw new ModelshipError('io', `registry answered ${res.status} for ${url}: ${res.body.toString('utf8').slice(0, 300)}`);
  const [alg, hex] = m.config.digest.split(':');
  if (alg === 'sha256' && createHash('sha256').update(res.body).digest('hex') !== hex)
    throw new ModelshipError('io', `the config blob of ${ref} does not match its digest ${m.config.digest}`);
  try {
    return JSON.parse(res.body.toString('utf8')) as ImageConfigBlob;
  } catch (e) {
    throw new ModelshipError('io', `the config blob of ${ref} is not JSON: ${(e as Error).message}`);
  }
}
