// Benchmark: the serving runtime vs in-process onnxruntime-node on GoogLeNet, in the same run.
//   npx tsx bench/serve.ts [model-dir] [--seconds S] [--rounds R]
// 1. throughput at batch 8: server (binary protocol, one client) vs session.run in-process (goal ≥ 0.9×)
// 2. p99 latency at concurrency 1, batch 1: server vs in-process (goal: overhead ≤ 2 ms)
// 3. dynamic batching gain at concurrency 16 (batch-1 requests): max batch 8 vs batching off
// The server runs in its own process (`node dist/index.js serve`), as in the image.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as http from 'http';
import { spawn, ChildProcess } from 'child_process';
import * as ort from 'onnxruntime-node';
import { convertCaffe } from '../src/convert/converter';
import { encodeInferRequest, HEADER_LENGTH } from '../src/serve/kserve';
import { readNpy } from '../src/util/npy';
import { cpuBudget } from '../src/serve/cpus';
import { ortThreading } from '../src/serve/server';

const args = process.argv.slice(2);
const dir = path.resolve(args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a)) ?? path.join(__dirname, '../../shared/caffe-oracle/models/bvlc_googlenet'));
const secondsAt = args.indexOf('--seconds');
const SECONDS = secondsAt >= 0 ? Number(args[secondsAt + 1]) : 6;
const roundsAt = args.indexOf('--rounds');
const ROUNDS = roundsAt >= 0 ? Number(args[roundsAt + 1]) : 5;
const ROOT = path.join(__dirname, '..');

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

function post(port: number, body: Buffer, hl: number, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/v2/models/googlenet/infer', method: 'POST', agent, headers: { [HEADER_LENGTH]: hl, 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function startServer(model: string, maxBatch: number): Promise<{ port: number; child: ChildProcess }> {
  const port = 18600 + Math.floor(Math.random() * 300);
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/index.js'), 'serve', '--model', model, '--name', 'googlenet', '--port', String(port), '--host', '127.0.0.1', '--max-batch-size', String(maxBatch), '--max-queue-delay-ms', maxBatch > 1 ? (process.env.BENCH_QUEUE_DELAY_MS ?? '2') : '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const ok = await new Promise<boolean>((res) => http.get({ host: '127.0.0.1', port, path: '/v2/health/ready' }, (r) => { r.resume(); res(r.statusCode === 200); }).on('error', () => res(false)));
    if (ok) return { port, child };
  }
  throw new Error('server did not start');
}

/** Run `fn` in `conc` loops for `seconds`; returns latencies (ms) and completed calls. */
async function load(conc: number, fn: () => Promise<void>, seconds = SECONDS): Promise<{ lat: number[]; calls: number; wall: number }> {
  const lat: number[] = [];
  const end = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (Date.now() < end) {
      const s = process.hrtime.bigint();
      await fn();
      lat.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
  }));
  return { lat, calls: lat.length, wall: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function main(): Promise<void> {
  const conv = convertCaffe({ prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')), prototxtFile: 'p', caffemodel: fs.readFileSync(path.join(dir, 'weights.caffemodel')), caffemodelFile: 'w' });
  const model = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-serve-')), 'googlenet.onnx');
  fs.writeFileSync(model, conv.onnx);
  const x1 = readNpy(path.join(dir, 'input_b1.npy'));
  const per = x1.data.length;
  const x8 = new Float32Array(per * 8);
  for (let i = 0; i < 8; i++) x8.set(x1.data, i * per);
  const shape1 = x1.shape;
  const shape8 = [8, ...shape1.slice(1)];

  // in-process baseline, the server's session options (optimization level, threads, no spinning)
  const threads = cpuBudget().cpus;
  const session = await ort.InferenceSession.create(conv.onnx, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', ...ortThreading(threads) });
  const req8 = encodeInferRequest([{ name: 'data', shape: shape8, data: x8 }], { binaryOutputs: true });
  const req1 = encodeInferRequest([{ name: 'data', shape: shape1, data: x1.data }], { binaryOutputs: true });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const batched = await startServer(model, 8);
  // server and in-process take turns in ROUNDS short rounds, so drift in the machine's load hits both alike
  const cases = {
    inproc8: async () => void (await session.run({ data: new ort.Tensor('float32', x8, shape8) })),
    srv8: () => post(batched.port, req8.body, req8.headerLength, agent),
    inproc1: async () => void (await session.run({ data: new ort.Tensor('float32', x1.data, shape1) })),
    srv1: () => post(batched.port, req1.body, req1.headerLength, agent),
  };
  const results = Object.fromEntries(Object.keys(cases).map((k) => [k, { lat: [] as number[], calls: 0, wall: 0 }])) as Record<keyof typeof cases, { lat: number[]; calls: number; wall: number }>;
  // warm-up (first runs allocate onnxruntime's buffers)
  for (let i = 0; i < 3; i++) for (const fn of Object.values(cases)) await fn();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, fn] of Object.entries(cases) as [keyof typeof cases, () => Promise<void>][]) {
      const r = await load(1, fn, SECONDS / ROUNDS);
      results[k].lat.push(...r.lat);
      results[k].calls += r.calls;
      results[k].wall += r.wall;
    }
  }
  const { inproc8, srv8, inproc1, srv1 } = results;
  await session.release();
  const c16on = await load(16, () => post(batched.port, req1.body, req1.headerLength, agent));
  batched.child.kill('SIGTERM');
  const unbatched = await startServer(model, 1);
  const c16off = await load(16, () => post(unbatched.port, req1.body, req1.headerLength, agent));
  unbatched.child.kill('SIGTERM');
  agent.destroy();

  const ips = (r: { calls: number; wall: number }, items: number) => (r.calls * items) / r.wall;
  console.log(`model ${dir}, node ${process.version}, ${os.cpus().length} CPUs, ${threads} intra-op threads, ${SECONDS} s per measurement (${ROUNDS} alternating rounds for server vs in-process)`);
  console.log(`batch 8 throughput: server ${ips(srv8, 8).toFixed(1)} img/s, in-process ${ips(inproc8, 8).toFixed(1)} img/s, ratio ${(ips(srv8, 8) / ips(inproc8, 8)).toFixed(3)} (goal ≥ 0.9)`);
  console.log(`batch 1, concurrency 1: p50 server ${pct(srv1.lat, 50).toFixed(2)} ms vs in-process ${pct(inproc1.lat, 50).toFixed(2)} ms; p99 server ${pct(srv1.lat, 99).toFixed(2)} ms vs in-process ${pct(inproc1.lat, 99).toFixed(2)} ms; p99 overhead ${(pct(srv1.lat, 99) - pct(inproc1.lat, 99)).toFixed(2)} ms (goal ≤ 2 ms)`);
  console.log(`concurrency 16, batch-1 requests: batching on ${ips(c16on, 1).toFixed(1)} img/s (p99 ${pct(c16on.lat, 99).toFixed(0)} ms), off ${ips(c16off, 1).toFixed(1)} img/s (p99 ${pct(c16off.lat, 99).toFixed(0)} ms), gain ${(ips(c16on, 1) / ips(c16off, 1)).toFixed(2)}x`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
