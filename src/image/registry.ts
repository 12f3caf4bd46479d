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

/** Fetch a manifest from a registry's HTTP API (plain HTTP for loopback registries, like the lab's). */
export function fetchManifest(ref: string, auth?: { username: string; password: string }): Promise<Manifest> {
  const r = parseImageRef(ref);
  const reference = r.digest ?? r.tag ?? 'latest';
  const plain = /^(127\.|localhost)/.test(r.registry);
  const url = `${plain ? 'http' : 'https'}://${r.registry}/v2/${r.repository}/manifests/${reference}`;
  const headers: Record<string, string> = { accept: ACCEPT };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = (plain ? http : https).get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(new ModelshipError('io', `registry answered ${res.statusCode} for ${url}: ${text.slice(0, 300)}`));
        try {
          resolve(JSON.parse(text) as Manifest);
        } catch (e) {
          reject(new ModelshipError('io', `registry sent a manifest that is not JSON: ${(e as Error).message}`));
        }
      });
    });
    req.on('error', (e) => reject(new ModelshipError('io', `cannot reach the registry at ${url}: ${e.message}`)));
  });
}
