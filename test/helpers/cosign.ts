import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { REPO } from './caffe';
import { LAB } from './lab';
import { nodeMirror } from './node-release';
import { cosignPlatform, type CosignSource } from '../../src/shared/cosign';

/**
 * The real cosign for the lab tests: built from the Go module proxy into .tools/bin/cosign by scripts/test.sh (need
 * 'cosign', test/helpers/needs.ts), and served to installCosign from a local HTTP server laid out as its GitHub
 * release (v<version>/cosign-<os>-<arch>), pinned by its sha256 through cosign-sha256: the install path the stages
 * take on a runner, with this build in place of the release's. Also what the tests sign with: key pairs made by
 * `cosign generate-key-pair`, small images pushed to the lab registry, and a local test CA (openssl) for keyless
 * verification without Fulcio or Rekor.
 */
export const COSIGN_BIN = path.join(REPO, '.tools/bin/cosign');

/** The built cosign's version (x.y.z). */
export function builtCosignVersion(): string {
  const out = execFileSync(COSIGN_BIN, ['version'], { encoding: 'utf8' });
  const v = /GitVersion:\s*v(\d+\.\d+\.\d+)/.exec(out)?.[1];
  if (!v) throw new Error(`${COSIGN_BIN} version says no GitVersion:\n${out}`);
  return v;
}

let digest: string | undefined;
/** A local stand-in for cosign's GitHub releases serving the built binary; `source` is what to give installCosign (or the stage's cosign-* inputs). */
export async function cosignRelease(): Promise<{ source: CosignSource; url: string; requests: string[]; close(): Promise<void> }> {
  const version = builtCosignVersion();
  digest ??= crypto.createHash('sha256').update(fs.readFileSync(COSIGN_BIN)).digest('hex');
  const mirror = await nodeMirror({ [`v${version}/cosign-${cosignPlatform()}`]: { file: COSIGN_BIN } });
  return { source: { version, mirror: mirror.url, sha256: digest }, url: mirror.url, requests: mirror.requests, close: () => mirror.close() };
}

/** The cosign-* flags of a stage run that installs cosign from such a release. */
export const cosignFlags = (s: CosignSource): string[] => ['--cosign-version', s.version, '--cosign-mirror', s.mirror, '--cosign-sha256', s.sha256];

/** `cosign generate-key-pair` in `dir`: <prefix>.key (encrypted with `password`) and <prefix>.pub. */
export function generateKeyPair(dir: string, prefix: string, password: string): { key: string; pub: string; password: string } {
  execFileSync(COSIGN_BIN, ['generate-key-pair', '--output-key-prefix', prefix], {
    cwd: dir,
    env: { ...process.env, COSIGN_PASSWORD: password },
    stdio: 'pipe',
  });
  return { key: path.join(dir, `${prefix}.key`), pub: path.join(dir, `${prefix}.pub`), password };
}

/**
 * A small image pushed to the lab registry (the lab's busybox and one file of `content`, so each content is its own
 * digest): returns `<repo>@sha256:...`, with `tag` pointing at it.
 */
export function pushTinyImage(repo: string, tag: string, content: string, dir: string): string {
  const ctx = fs.mkdtempSync(path.join(dir, 'ctx-'));
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${LAB.busybox}\nCOPY content /content\n`);
  fs.writeFileSync(path.join(ctx, 'content'), content);
  const md = path.join(ctx, 'metadata.json');
  execFileSync('docker', ['buildx', 'build', '--quiet', '--push', '--metadata-file', md, '-t', `${repo}:${tag}`, ctx], { stdio: 'pipe' });
  const d = (JSON.parse(fs.readFileSync(md, 'utf8')) as Record<string, string>)['containerimage.digest'];
  if (!/^sha256:[0-9a-f]{64}$/.test(d)) throw new Error(`docker buildx build --push gave no digest (${d})`);
  return `${repo}@${d}`;
}

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';

/**
 * A local test CA (openssl; no Fulcio, no Rekor): a root, and a code-signing leaf certificate shaped as Fulcio issues
 * them for a GitHub workflow: the workflow's URI as its SAN, the OIDC issuer in Fulcio's extensions
 * 1.3.6.1.4.1.57264.1.1 (the raw string, v1) and 1.3.6.1.4.1.57264.1.8 (a DER UTF8String, v2). The leaf key is
 * imported into cosign's encrypted format (cosign sign --key takes only that).
 */
export function testCa(
  dir: string,
  identity: string,
  issuer = GITHUB_ISSUER,
  name = 'ca',
): { caPem: string; certificate: string; key: string; password: string; chain: string } {
  const d = fs.mkdtempSync(path.join(dir, `${name}-`));
  const f = (n: string) => path.join(d, n);
  const hex = Buffer.from(issuer)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1:');
  fs.writeFileSync(
    f('ext.cnf'),
    [
      '[ca_ext]',
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
      '[leaf_ext]',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=codeSigning',
      `subjectAltName=URI:${identity}`,
      'authorityKeyIdentifier=keyid',
      `1.3.6.1.4.1.57264.1.1=DER:${hex}`,
      `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${issuer}`,
      '',
    ].join('\n'),
  );
  const openssl = (...a: string[]) => execFileSync('openssl', a, { cwd: d, stdio: 'pipe' });
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  openssl(
    'req',
    '-new',
    '-x509',
    '-key',
    'ca.key',
    '-subj',
    `/O=modelship test/CN=local test CA ${name}`,
    '-days',
    '2',
    '-extensions',
    'ca_ext',
    '-config',
    'ext.cnf',
    '-out',
    'ca.pem',
  );
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'leaf-raw.key');
  openssl('req', '-new', '-key', 'leaf-raw.key', '-subj', '/O=sigstore.dev', '-out', 'leaf.csr');
  openssl(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    'ext.cnf',
    '-extensions',
    'leaf_ext',
    '-out',
    'leaf.pem',
  );
  const password = 'leaf-key-password';
  execFileSync(COSIGN_BIN, ['import-key-pair', '--key', 'leaf-raw.key', '--output-key-prefix', 'leaf'], {
    cwd: d,
    env: { ...process.env, COSIGN_PASSWORD: password },
    stdio: 'pipe',
  });
  return { caPem: f('ca.pem'), certificate: f('leaf.pem'), key: f('leaf.key'), password, chain: f('ca.pem') };
}

/**
 * Alter an attestation in the registry after it was signed, as an attacker with push access could: the Sigstore
 * bundle of `predicateType` attached to `image` (repository@sha256, in the lab's plain-HTTP registry, where cosign
 * keeps bundles in the referrers tag sha256-<hex>) gets `mutate` applied to its in-toto statement, the signature left
 * as it was; the bundle blob, its manifest and the referrers index are replaced (the original no longer listed).
 */
export async function alterAttestation(
  image: string,
  predicateType: string,
  mutate: (statement: { predicate: Record<string, unknown> }) => void,
): Promise<void> {
  const at = image.indexOf('@sha256:');
  const [registry, ...repo] = image.slice(0, at).split('/');
  const base = `http://${registry}/v2/${repo.join('/')}`;
  const tag = image.slice(at + 1).replace(':', '-');
  const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
  const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
  const sha = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
  const get = async (url: string, accept: string) => {
    const r = await fetch(url, { headers: { accept } });
    if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
    return Buffer.from(await r.arrayBuffer());
  };
  const putManifest = async (ref: string, body: Buffer, type: string) => {
    const r = await fetch(`${base}/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': type }, body });
    if (r.status !== 201) throw new Error(`PUT manifest ${ref}: ${r.status} ${await r.text()}`);
  };
  type Descriptor = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
  const index = JSON.parse((await get(`${base}/manifests/${tag}`, OCI_INDEX)).toString()) as { manifests: Descriptor[] };
  for (const [i, d] of index.manifests.entries()) {
    const manifest = JSON.parse((await get(`${base}/manifests/${d.digest}`, OCI_MANIFEST)).toString()) as {
      layers: Descriptor[];
      annotations?: Record<string, string>;
    };
    if (manifest.annotations?.['dev.sigstore.bundle.predicateType'] !== predicateType) continue;
    const bundle = JSON.parse((await get(`${base}/blobs/${manifest.layers[0].digest}`, '*/*')).toString()) as { dsseEnvelope: { payload: string } };
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString()) as { predicate: Record<string, unknown> };
    mutate(statement);
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64');
    const blob = Buffer.from(JSON.stringify(bundle));
    const upload = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    const location = new URL(upload.headers.get('location')!, base);
    location.searchParams.set('digest', sha(blob));
    const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: blob });
    if (put.status !== 201) throw new Error(`PUT blob: ${put.status}`);
    manifest.layers[0] = { ...manifest.layers[0], digest: sha(blob), size: blob.length };
    const m = Buffer.from(JSON.stringify(manifest));
    await putManifest(sha(m), m, OCI_MANIFEST);
    index.manifests[i] = { ...d, digest: sha(m), size: m.length };
    await putManifest(tag, Buffer.from(JSON.stringify(index)), OCI_INDEX);
    return;
  }
  throw new Error(`${image} has no ${predicateType} bundle in ${tag}`);
}

/**
 * The supply-chain documents the image stage writes for `image` (repository@sha256:...), made by its own builders
 * (recordSupplyChain with sign off: the ML-BOM and the provenance statement, nothing signed): what the sign stage
 * takes as ml-bom-file and provenance-file. The model is a small file of its own (no lineage: a warning, as the image
 * stage gives for a model it cannot read).
 */
export async function supplyChainFiles(image: string, dir: string, parity = 'pass'): Promise<{ mlBom: string; provenance: string }> {
  // loaded on use: the ML-BOM's CycloneDX library is large, and the other users of this file need none of it
  const { imageFacts, recordSupplyChain } = await import('../../src/image/supply-chain');
  const at = image.indexOf('@sha256:');
  const repository = image.slice(0, at);
  const digest = image.slice(at + 1);
  const d = fs.mkdtempSync(path.join(dir, 'supply-chain-'));
  const model = path.join(d, 'model.onnx');
  const bytes = Buffer.from(`a model for ${image}`);
  fs.writeFileSync(model, bytes);
  const files = { mlBom: path.join(d, 'ml-bom.cdx.json'), provenance: path.join(d, 'provenance.intoto.json') };
  const quiet = { info: () => undefined, warning: () => undefined, group: <T>(_n: string, fn: () => Promise<T>) => fn() };
  await recordSupplyChain(
    {
      facts: imageFacts({
        repository,
        digest,
        tags: [`${repository}:sha-aaaaaaa`],
        runtime: 'modelship',
        gpu: false,
        created: '2026-12-07T00:00:00.000Z',
        model: { name: 'lenet', path: model, bytes, fileInImage: 'model.onnx', parity },
        context: { base: { name: `${LAB.registry}/local/debian`, digest: `sha256:${'b'.repeat(64)}` } },
        warn: () => undefined,
      }),
      inputs: { image: repository, model, modelName: 'lenet', runtime: 'modelship', gpu: false, parity, encryptModel: false, cache: 'off', push: true },
      git: { source: 'https://github.com/org/repo', sha: 'a'.repeat(40), ref: 'refs/heads/main' },
      buildxDriver: 'docker-container',
      startedOn: '2026-12-07T00:00:00.000Z',
      files,
      signing: { sign: 'off', signingKey: '', signingKeyPassword: '', transparencyLog: false, cosign: { version: '3.1.3', mirror: '', sha256: '' } },
      pinned: image,
    },
    quiet,
    {},
  );
  return files;
}
