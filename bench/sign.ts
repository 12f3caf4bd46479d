// Benchmark: what signing and attesting add to the image stage (real docker buildx, the lab registry, the real cosign
// of .tools/bin served as its release would be, warm tool cache), same run.
//   npx tsx bench/sign.ts [model-dir]      (needs lab/up.sh docker and scripts/test.sh's cosign build)
// Three image stages of GoogLeNet: a warm-up (fills the build cache and the tool cache), then the same model at a new
// revision unsigned (the baseline: a warm build and push) and signed (sign: key: cosign sign + two attestations).
// Prints the wall time each took, the difference, and the bytes the signature and the attestations put in the
// registry beside the image's compressed layers; goal: ≤ 3 s and ≤ 1 % of the push.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { convertCaffe } from '../src/convert/converter';
import { runImage } from '../src/image';
import { fetchManifest, registryRequest } from '../src/shared/registry';
import { readConfig } from '../src/config';
import { cosignRelease, generateKeyPair } from '../test/helpers/cosign';

const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The bytes of a manifest (by tag or digest) and of the blobs it names, following an index to its manifests. */
async function manifestBytes(base: string, repository: string, ref: string): Promise<number> {
  const r = await registryRequest('GET', `${base}/v2/${repository}/manifests/${ref}`, undefined, { Accept: ACCEPT });
  if (r.status !== 200) throw new Error(`GET manifest ${repository}:${ref}: HTTP ${r.status}`);
  const m = JSON.parse(r.body.toString('utf8')) as {
    manifests?: { digest: string }[];
    config?: { size: number };
    layers?: { size: number }[];
  };
  let bytes = r.body.length + (m.config?.size ?? 0) + (m.layers ?? []).reduce((s, l) => s + l.size, 0);
  for (const child of m.manifests ?? []) bytes += await manifestBytes(base, repository, child.digest);
  return bytes;
}

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? path.join(__dirname, '../../shared/caffe-oracle/models/bvlc_googlenet'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-sign-'));
  const model = path.join(work, 'googlenet.onnx');
  fs.writeFileSync(
    model,
    convertCaffe({
      prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')),
      prototxtFile: 'p',
      caffemodel: fs.readFileSync(path.join(dir, 'weights.caffemodel')),
      caffemodelFile: 'w',
    }).onnx,
  );
  const release = await cosignRelease();
  const key = generateKeyPair(work, 'bench', 'bench-password');
  const registry = process.env.LAB_REGISTRY ?? '127.0.0.1:5000';
  const repository = `modelship-bench/sign-${Date.now()}`;
  const quiet = { info: () => undefined, warning: () => undefined, group: <R>(_n: string, fn: () => Promise<R>) => fn() };
  const build = async (rev: string, sign: boolean) => {
    const inputs: Record<string, string> = {
      stage: 'image',
      image: `${registry}/${repository}`,
      model,
      'model-name': 'googlenet',
      'base-image': `${registry}/local/debian:bookworm`,
      'node-binary': process.execPath,
      revision: rev,
      ref: 'refs/heads/bench',
      'compose-file': path.join(work, 'compose.yml'),
      'transparency-log': 'false',
      'cosign-version': release.source.version,
      'cosign-mirror': release.source.mirror,
      'cosign-sha256': release.source.sha256,
      ...(sign ? { sign: 'key', 'signing-key': fs.readFileSync(key.key, 'utf8'), 'signing-key-password': key.password } : {}),
    };
    const cfg = readConfig((n) => inputs[n]);
    const t0 = Date.now();
    const r = await runImage(cfg.image, quiet);
    return { s: (Date.now() - t0) / 1000, image: r.outputs.image, digest: r.outputs.digest };
  };
  try {
    await build('1'.repeat(40), true); // warm-up: build cache, cosign in the tool cache
    const plain = await build('2'.repeat(40), false);
    const signed = await build('3'.repeat(40), true);
    const pushBytes = (await fetchManifest(signed.image)).layers.reduce((s, l) => s + l.size, 0);
    // cosign's objects for the digest: tags sha256-<hex>[.sig|.att] (this registry has no referrers API)
    const hex = signed.digest.slice('sha256:'.length);
    const tags = await registryRequest('GET', `http://${registry}/v2/${repository}/tags/list`);
    const mine = ((JSON.parse(tags.body.toString('utf8')) as { tags: string[] }).tags ?? []).filter((t) => t.startsWith(`sha256-${hex}`));
    let sigBytes = 0;
    for (const t of mine) sigBytes += await manifestBytes(`http://${registry}`, repository, t);
    const extra = signed.s - plain.s;
    console.log(
      `GoogLeNet image stage, warm: unsigned ${plain.s.toFixed(1)} s, signed + 2 attestations ${signed.s.toFixed(1)} s: +${extra.toFixed(1)} s (goal ≤ 3 s)`,
    );
    console.log(
      `registry bytes for the signature and attestations (${mine.join(', ')}): ${(sigBytes / 1024).toFixed(1)} KiB = ${((100 * sigBytes) / pushBytes).toFixed(3)} % of the image's ${(pushBytes / 2 ** 20).toFixed(1)} MiB of compressed layers (goal ≤ 1 %)`,
    );
  } finally {
    await release.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
