// Benchmark: Caffe → ONNX conversion of GoogLeNet vs a bare protobufjs decode of the same caffemodel.
//   npx tsx bench/convert.ts [model-dir] [--runs N]
// Each measurement runs in a fresh child process (same loader for all), so peak RSS is per operation;
// "baseline" is the same child doing nothing. Prints medians and the ratios the issue sets as goals:
// convert ≤ 2× bare decode and ≤ 0.5 s; peak RSS ≤ 3× the caffemodel size above the baseline.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as protobuf from 'protobufjs';
import { CAFFE_PROTO } from '../src/convert/schema/caffe';
import { convertCaffe } from '../src/convert/converter';
import { writeFileAtomic } from '../src/util/fsx';

type Mode = 'baseline' | 'decode' | 'convert';

function child(mode: Mode, dir: string): void {
  const proto = path.join(dir, 'deploy.prototxt');
  const weights = path.join(dir, 'weights.caffemodel');
  let ms = 0;
  if (mode === 'decode') {
    const Net = protobuf.parse(CAFFE_PROTO, { keepCase: true }).root.lookupType('caffe.NetParameter');
    const t0 = process.hrtime.bigint();
    const bytes = fs.readFileSync(weights);
    const msg = Net.decode(bytes) as unknown as { layer: unknown[] };
    ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!msg.layer.length) throw new Error('nothing decoded');
  } else if (mode === 'convert') {
    const out = path.join(os.tmpdir(), `bench-${process.pid}.onnx`);
    const t0 = process.hrtime.bigint();
    const conv = convertCaffe({ prototxt: fs.readFileSync(proto), prototxtFile: proto, caffemodel: fs.readFileSync(weights), caffemodelFile: weights });
    writeFileAtomic(out, conv.onnx);
    ms = Number(process.hrtime.bigint() - t0) / 1e6;
    fs.rmSync(out);
  }
  process.stdout.write(JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1] as Mode, args[2]);
  const runsAt = args.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 5;
  const dir = path.resolve(args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs') ?? path.join(__dirname, '../../shared/caffe-oracle/models/bvlc_googlenet'));
  const size = fs.statSync(path.join(dir, 'weights.caffemodel')).size;
  const results: Record<Mode, { ms: number; rssMiB: number }> = {} as never;
  for (const mode of ['baseline', 'decode', 'convert'] as Mode[]) {
    const samples = Array.from({ length: runs }, () => {
      const r = spawnSync(process.execPath, [...process.execArgv, __filename, '--child', mode, dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${mode} child failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number; maxRssKiB: number };
    });
    results[mode] = { ms: median(samples.map((s) => s.ms)), rssMiB: median(samples.map((s) => s.maxRssKiB)) / 1024 };
  }
  const mib = size / 2 ** 20;
  const over = (m: Mode) => results[m].rssMiB - results.baseline.rssMiB;
  console.log(`model: ${dir} (caffemodel ${mib.toFixed(1)} MiB), node ${process.version}, ${runs} runs each, medians`);
  console.log(`bare protobufjs decode : ${results.decode.ms.toFixed(1)} ms, peak RSS +${over('decode').toFixed(1)} MiB over baseline`);
  console.log(`modelship convert      : ${results.convert.ms.toFixed(1)} ms, peak RSS +${over('convert').toFixed(1)} MiB over baseline (${results.baseline.rssMiB.toFixed(1)} MiB)`);
  console.log(`ratio convert/decode   : ${(results.convert.ms / results.decode.ms).toFixed(2)}x (goal ≤ 2x; ≤ 500 ms: ${results.convert.ms <= 500 ? 'yes' : 'no'})`);
  console.log(`convert RSS / model    : ${(over('convert') / mib).toFixed(2)}x the caffemodel size (goal ≤ 3x)`);
}

main();
