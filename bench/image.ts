// Benchmark: cold image build vs a model-only rebuild (real docker buildx + the lab registry), same run.
//   npx tsx bench/image.ts [model-dir]      (needs lab/up.sh docker)
// Prints build+push wall time of each and the bytes the rebuild had to push (layers new to the registry);
// goal: rebuild ≤ 0.2× cold, bytes ≈ the model layer.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import * as protobuf from 'protobufjs';
import { CAFFE_PROTO } from '../src/formats/schema/caffe';
import { convertCaffe } from '../src/convert/converter';
import { runImage } from '../src/image';
import { fetchManifest } from '../src/shared/registry';
import { readConfig } from '../src/config';

async function main(): Promise<void> {
  const dir = path.resolve(process.argv[2] ?? path.join(__dirname, '../../shared/caffe-oracle/models/bvlc_googlenet'));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-image-'));
  const proto = fs.readFileSync(path.join(dir, 'deploy.prototxt'));
  const weights = fs.readFileSync(path.join(dir, 'weights.caffemodel'));
  const a = path.join(work, 'a.onnx');
  fs.writeFileSync(a, convertCaffe({ prototxt: proto, prototxtFile: 'p', caffemodel: weights, caffemodelFile: 'w' }).onnx);
  // model B: one weight changed, same architecture and size
  const T = protobuf.parse(CAFFE_PROTO, { keepCase: true }).root.lookupType('caffe.NetParameter');
  const net = T.decode(weights) as unknown as { layer: { blobs: { data: number[] }[] }[] };
  const last = net.layer.filter((l) => l.blobs.length).pop()!;
  last.blobs[last.blobs.length - 1].data[0] += 0.5;
  const b = path.join(work, 'b', 'a.onnx');
  fs.mkdirSync(path.dirname(b));
  fs.writeFileSync(b, convertCaffe({ prototxt: proto, prototxtFile: 'p', caffemodel: T.encode(net).finish(), caffemodelFile: 'w' }).onnx);

  const registry = process.env.LAB_REGISTRY ?? '127.0.0.1:5000';
  const repo = `${registry}/modelship-bench/image-${Date.now()}`;
  const base = `${registry}/local/debian:bookworm`;
  const quiet = { info: () => undefined, warning: () => undefined, group: <R>(_n: string, fn: () => Promise<R>) => fn() };
  const build = async (model: string, rev: string) => {
    const cfg = readConfig(
      (n) =>
        (
          ({
            stage: 'image',
            image: repo,
            model,
            'model-name': 'googlenet',
            'base-image': base,
            'node-binary': process.execPath,
            revision: rev,
            ref: 'refs/heads/bench',
            'compose-file': path.join(work, 'compose.yml'),
          }) as Record<string, string>
        )[n],
    );
    const t0 = Date.now();
    const r = await runImage(cfg.image, quiet);
    return { s: (Date.now() - t0) / 1000, image: r.outputs.image };
  };
  // cold: no build cache and no local base image, which is pulled from the registry as on a fresh runner
  execFileSync('docker', ['builder', 'prune', '-af'], { stdio: 'ignore' });
  execFileSync('docker', ['image', 'rm', '-f', base], { stdio: 'ignore' });
  const cold = await build(a, '1'.repeat(40));
  const warm = await build(b, '2'.repeat(40));
  const ma = await fetchManifest(cold.image);
  const mb = await fetchManifest(warm.image);
  const known = new Set(ma.layers.map((l) => l.digest));
  const pushed = mb.layers.filter((l) => !known.has(l.digest));
  const total = mb.layers.reduce((s, l) => s + l.size, 0);
  const modelLayer = mb.layers[mb.layers.length - 1];
  console.log(`cold build+push: ${cold.s.toFixed(1)} s; model-only rebuild+push: ${warm.s.toFixed(1)} s; ratio ${(warm.s / cold.s).toFixed(2)} (goal ≤ 0.2)`);
  console.log(
    `rebuild pushed ${pushed.length} of ${mb.layers.length} layers: ${(pushed.reduce((s, l) => s + l.size, 0) / 2 ** 20).toFixed(1)} MiB of ${(total / 2 ** 20).toFixed(1)} MiB (model layer ${(modelLayer.size / 2 ** 20).toFixed(1)} MiB compressed)`,
  );
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
