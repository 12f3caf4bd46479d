import * as fs from 'fs';
import * as path from 'path';
import { ModelshipError } from '../util/errors';
import { sha256, writeFileAtomic, readFileChecked } from '../util/fsx';
import { parseImageRef, registryBase, registryRequest } from '../shared/registry';

/**
 * Model storage, content-addressed: an artifact is an OCI artifact (an OCI image manifest whose one layer is the
 * model file and whose config is its metadata), kept in an OCI image layout directory or pushed to a registry,
 * and restored by digest with its sha256 verified.
 *   modelship store push --artifact model.ort.onnx --to dir:/backups/models   (or --to oci:127.0.0.1:5000/models/googlenet)
 *   modelship store pull --from oci:127.0.0.1:5000/models/googlenet@sha256:... --out model.onnx
 */
export const ARTIFACT_TYPE = 'application/vnd.modelship.model.v1';
const LAYER_TYPE = 'application/vnd.modelship.model.layer.v1';
const CONFIG_TYPE = 'application/vnd.modelship.model.config.v1+json';
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface Manifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations: Record<string, string>;
}

export interface StoredArtifact {
  manifestDigest: string;
  artifactDigest: string;
  size: number;
  location: string;
}

const digestOf = (b: Uint8Array) => `sha256:${sha256(b)}`;

function buildManifest(artifact: Uint8Array, name: string, metadata: Record<string, unknown>): { manifest: Buffer; config: Buffer } {
  const config = Buffer.from(JSON.stringify({ name, ...metadata }));
  const m: Manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    artifactType: ARTIFACT_TYPE,
    config: { mediaType: CONFIG_TYPE, digest: digestOf(config), size: config.length },
    layers: [{ mediaType: LAYER_TYPE, digest: digestOf(artifact), size: artifact.length, annotations: { 'org.opencontainers.image.title': name } }],
    annotations: { 'org.opencontainers.image.created': new Date().toISOString() },
  };
  return { manifest: Buffer.from(JSON.stringify(m)), config };
}

function parseTarget(t: string): { kind: 'dir'; path: string } | { kind: 'oci'; ref: string } {
  if (t.startsWith('dir:')) return { kind: 'dir', path: t.slice(4) };
  if (t.startsWith('oci:')) return { kind: 'oci', ref: t.slice(4) };
  throw new ModelshipError('input', `a store location is dir:<path> or oci:<registry>/<repository>[:tag|@digest], got "${t}"`);
}

// --- OCI image layout directory ---------------------------------------------------------------------------

function blobPath(dir: string, digest: string): string {
  return path.join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}

function putBlob(dir: string, data: Uint8Array): string {
  const d = digestOf(data);
  const p = blobPath(dir, d);
  if (!fs.existsSync(p)) writeFileAtomic(p, data);
  return d;
}

function getBlob(dir: string, digest: string): Buffer {
  const p = blobPath(dir, digest);
  if (!fs.existsSync(p)) throw new ModelshipError('input', `blob ${digest} is not in the store`, { file: dir });
  const data = fs.readFileSync(p);
  if (digestOf(data) !== digest) throw new ModelshipError('binary', `blob ${digest} is corrupted: its content hashes to ${digestOf(data)}`, { file: p });
  return data;
}

// --- registry (distribution HTTP API) --------------------------------------------------------------------------

async function uploadBlob(base: string, data: Uint8Array, mediaType: string): Promise<void> {
  const d = digestOf(data);
  if ((await registryRequest('HEAD', `${base}/blobs/${d}`)).status === 200) return; // already there: content addressing
  const start = await registryRequest('POST', `${base}/blobs/uploads/`);
  if (start.status !== 202 || !start.headers.location)
    throw new ModelshipError('io', `registry refused the upload of ${mediaType}: HTTP ${start.status} ${start.body.toString().slice(0, 200)}`);
  const loc = new URL(start.headers.location, base);
  loc.searchParams.set('digest', d);
  const put = await registryRequest('PUT', loc.toString(), data, { 'content-type': 'application/octet-stream' });
  if (put.status !== 201) throw new ModelshipError('io', `registry did not accept blob ${d}: HTTP ${put.status} ${put.body.toString().slice(0, 200)}`);
}

async function downloadBlob(base: string, digest: string): Promise<Buffer> {
  const r = await registryRequest('GET', `${base}/blobs/${digest}`);
  if (r.status !== 200) throw new ModelshipError('io', `registry has no blob ${digest}: HTTP ${r.status}`);
  if (digestOf(r.body) !== digest) throw new ModelshipError('binary', `blob ${digest} from the registry hashes to ${digestOf(r.body)}`);
  return r.body;
}

// --- push / pull -------------------------------------------------------------------------------------------

export async function storePush(artifactFile: string, to: string, opts: { tag?: string; metadataFile?: string } = {}): Promise<StoredArtifact> {
  const artifact = readFileChecked(artifactFile, 'artifact');
  const metadata = opts.metadataFile ? (JSON.parse(readFileChecked(opts.metadataFile, 'artifact metadata').toString('utf8')) as Record<string, unknown>) : {};
  const { manifest, config } = buildManifest(artifact, path.basename(artifactFile), metadata);
  const manifestDigest = digestOf(manifest);
  const tag = opts.tag ?? `sha256-${sha256(artifact).slice(0, 12)}`;
  const t = parseTarget(to);
  if (t.kind === 'dir') {
    fs.mkdirSync(t.path, { recursive: true });
    writeFileAtomic(path.join(t.path, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    putBlob(t.path, artifact);
    putBlob(t.path, config);
    putBlob(t.path, manifest);
    const indexFile = path.join(t.path, 'index.json');
    const index = fs.existsSync(indexFile)
      ? (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { schemaVersion: 2; manifests: Descriptor[] })
      : { schemaVersion: 2 as const, manifests: [] };
    index.manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== tag && m.digest !== manifestDigest);
    index.manifests.push({
      mediaType: MANIFEST_TYPE,
      digest: manifestDigest,
      size: manifest.length,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    });
    writeFileAtomic(indexFile, JSON.stringify(index, null, 2));
    return { manifestDigest, artifactDigest: digestOf(artifact), size: artifact.length, location: `dir:${t.path}@${manifestDigest}` };
  }
  const reg = registryBase(t.ref);
  await uploadBlob(reg.base, artifact, LAYER_TYPE);
  await uploadBlob(reg.base, config, CONFIG_TYPE);
  const put = await registryRequest('PUT', `${reg.base}/manifests/${reg.tag ?? tag}`, manifest, { 'content-type': MANIFEST_TYPE });
  if (put.status !== 201) throw new ModelshipError('io', `registry did not accept the manifest: HTTP ${put.status} ${put.body.toString().slice(0, 300)}`);
  const ref = parseImageRef(t.ref);
  return { manifestDigest, artifactDigest: digestOf(artifact), size: artifact.length, location: `oci:${ref.registry}/${ref.repository}@${manifestDigest}` };
}

/** Restore an artifact by manifest digest (`dir:<path>@sha256:..` or `oci:<repo>@sha256:..`), verifying every hash. */
export async function storePull(from: string, out: string): Promise<StoredArtifact> {
  const t = parseTarget(from);
  let manifest: Buffer;
  let blob: (d: string) => Promise<Buffer>;
  let manifestDigest: string;
  if (t.kind === 'dir') {
    const at = t.path.lastIndexOf('@sha256:');
    if (at < 0) throw new ModelshipError('input', `pull needs a digest: dir:<path>@sha256:<manifest digest>, got "${from}"`);
    const dir = t.path.slice(0, at);
    manifestDigest = t.path.slice(at + 1);
    manifest = getBlob(dir, manifestDigest);
    blob = (d) => Promise.resolve(getBlob(dir, d));
  } else {
    const reg = registryBase(t.ref);
    if (!reg.digest) throw new ModelshipError('input', `pull needs a digest: oci:<registry>/<repository>@sha256:<manifest digest>, got "${from}"`);
    manifestDigest = reg.digest;
    const r = await registryRequest('GET', `${reg.base}/manifests/${reg.digest}`, undefined, { accept: MANIFEST_TYPE });
    if (r.status !== 200) throw new ModelshipError('io', `registry has no manifest ${reg.digest}: HTTP ${r.status}`);
    if (digestOf(r.body) !== reg.digest) throw new ModelshipError('binary', `the manifest from the registry hashes to ${digestOf(r.body)}, not ${reg.digest}`);
    manifest = r.body;
    blob = (d) => downloadBlob(reg.base, d);
  }
  const m = JSON.parse(manifest.toString('utf8')) as Manifest;
  if (m.artifactType !== ARTIFACT_TYPE || m.layers?.length !== 1)
    throw new ModelshipError('input', `${manifestDigest} is not a modelship model artifact (artifactType ${m.artifactType})`);
  const data = await blob(m.layers[0].digest);
  writeFileAtomic(out, data);
  return { manifestDigest, artifactDigest: m.layers[0].digest, size: data.length, location: from };
}
