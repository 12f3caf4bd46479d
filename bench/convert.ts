// Benchmark: Caffe → ONNX conversion of GoogLeNet vs a bare protobufjs decode of the same caffemodel.
//   npx tsx bench/convert.ts [model-dir] [--runs N] [--bundle dist/index.js]...
// In process: each measurement runs in a fresh child process (same loader for all), so peak RSS is per operation;
// "baseline" is the same child doing nothing. Prints medians and the ratios the issue sets as goals:
// convert ≤ 2× bare decode and ≤ 0.5 s; peak RSS ≤ 3× the caffemodel size above the baseline.
// The CLI, start-up included: wall time of `node BUNDLE convert --prototxt … --caffemodel … --out …` (no reference)
// against a bare `node -e` that requires protobufjs, parses caffe.proto and decodes the caffemodel, fresh processes,
// rounds interleaved; goal ≤ 1.5×. BUNDLE is an ncc build (`npx ncc build src/index.ts -o /tmp/d --target es2022`;
// dist/index.js is the committed one); give --bundle more than once to compare builds in the same run.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as protobuf from 'protobufjs';
import { CAFFE_PROTO } from '../src/formats/schema/caffe';
import { convertCaffe } from '../src/convert/converter';

type Mode = 'baseline' | 'decode' | 'convert';

async function child(mode: Mode, dir: string): Promise<void> {
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
    await conv.writeOnnx(out); // as the convert stage writes it: streamed, atomic
    ms = Number(process.hrtime.bigint() - t0) / 1e6;
    fs.rmSync(out);
  }
  process.stdout.write(JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * One fresh process: wall-clock ms, and its CPU ms (user + system) and peak RSS, which a preloaded hook writes at
 * exit (CPU time says more than wall time on a shared machine: it does not count waiting for a CPU).
 */
function run(argv: string[], report: string): { wall: number; cpu: number; rssMiB: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--require', REPORT_HOOK, ...argv], { encoding: 'utf8', env: { ...process.env, BENCH_REPORT: report } });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`node ${argv.slice(0, 2).join(' ')} … failed: ${r.stderr}`);
  const u = JSON.parse(fs.readFileSync(report, 'utf8')) as { userCPUTime: number; systemCPUTime: number; maxRSS: number };
  return { wall, cpu: (u.userCPUTime + u.systemCPUTime) / 1000, rssMiB: u.maxRSS / 1024 };
}
let REPORT_HOOK = '';

function cliRatio(dir: string, bundles: string[], runs: number): void {
  const proto = path.join(dir, 'deploy.prototxt');
  const weights = path.join(dir, 'weights.caffemodel');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cli-'));
  try {
    REPORT_HOOK = path.join(tmp, 'report.js');
    fs.writeFileSync(
      REPORT_HOOK,
      "process.on('exit', () => require('fs').writeFileSync(process.env.BENCH_REPORT, JSON.stringify(process.resourceUsage())));\n",
    );
    const report = path.join(tmp, 'usage.json');
    const protoFile = path.join(tmp, 'caffe.proto');
    fs.writeFileSync(protoFile, CAFFE_PROTO);
    const decode = [
      '-e',
      `const fs = require('fs'); const protobuf = require(${JSON.stringify(require.resolve('protobufjs'))});` +
        `const Net = protobuf.parse(fs.readFileSync(${JSON.stringify(protoFile)}, 'utf8'), { keepCase: true }).root.lookupType('caffe.NetParameter');` +
        `if (!Net.decode(fs.readFileSync(${JSON.stringify(weights)})).layer.length) throw new Error('nothing decoded');`,
    ];
    const out = path.join(tmp, 'model.onnx');
    const rows: { name: string; argv: string[]; s: ReturnType<typeof run>[] }[] = [
      { name: 'bare protobufjs decode (node -e)', argv: decode, s: [] },
      ...bundles.map((b) => ({
        name: `node ${b} convert`,
        argv: [path.resolve(b), 'convert', '--prototxt', proto, '--caffemodel', weights, '--out', out],
        s: [],
      })),
      { name: 'node -e 0 (start-up alone)', argv: ['-e', '0'], s: [] },
    ];
    for (const r of rows) run(r.argv, report); // warm the page cache
    for (let i = 0; i < runs; i++) for (const r of rows) r.s.push(run(r.argv, report));
    const med = (r: (typeof rows)[number], k: 'wall' | 'cpu' | 'rssMiB') => median(r.s.map((x) => x[k]));
    console.log(`CLI, start-up included: fresh processes, ${runs} interleaved rounds, medians (wall; CPU = user + system)`);
    for (const r of rows) {
      console.log(
        `  ${r.name.padEnd(44)}: wall ${med(r, 'wall').toFixed(0).padStart(5)} ms ${(med(r, 'wall') / med(rows[0], 'wall')).toFixed(2)}x, ` +
          `CPU ${med(r, 'cpu').toFixed(0).padStart(5)} ms ${(med(r, 'cpu') / med(rows[0], 'cpu')).toFixed(2)}x, peak RSS ${med(r, 'rssMiB').toFixed(0)} MiB   [wall ${r.s.map((x) => x.wall.toFixed(0)).join(' ')}]`,
      );
    }
    console.log('  goal: the CLI ≤ 1.5x the bare decode');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    void child(args[1] as Mode, args[2]);
    return;
  }
  const runsAt = args.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 5;
  const bundles = args.flatMap((a, i) => (a === '--bundle' ? [args[i + 1]] : []));
  const dir = path.resolve(
    args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs' && args[i - 1] !== '--bundle') ??
      path.join(__dirname, '../../shared/caffe-oracle/models/bvlc_googlenet'),
  );
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
  console.log(
    `modelship convert      : ${results.convert.ms.toFixed(1)} ms, peak RSS +${over('convert').toFixed(1)} MiB over baseline (${results.baseline.rssMiB.toFixed(1)} MiB)`,
  );
  console.log(
    `ratio convert/decode   : ${(results.convert.ms / results.decode.ms).toFixed(2)}x (goal ≤ 2x; ≤ 500 ms: ${results.convert.ms <= 500 ? 'yes' : 'no'})`,
  );
  console.log(`convert RSS / model    : ${(over('convert') / mib).toFixed(2)}x the caffemodel size (goal ≤ 3x)`);
  console.log('');
  cliRatio(dir, bundles.length ? bundles : [path.join(__dirname, '../dist/index.js')], runs);
}

main();
