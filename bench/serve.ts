// Benchmark: the serving runtime vs in-process onnxruntime-node on GoogLeNet, in the same run.
//   npx tsx bench/serve.ts [model-dir] [--seconds S] [--rounds R]
// 1. throughput at batch 8: server (binary protocol, one client) vs session.run in-process (goal ≥ 0.93×)
// 2. p99 latency at concurrency 1, batch 1: server vs in-process (goal: overhead ≤ 2 ms)
// 3. dynamic batching gain at concurrency 16 (batch-1 requests): max batch 8 vs batching off
// 4. health p50/p99/max under full inference load: 16 batch-1 binary clients plus 2 clients sending batch-32 JSON
//    bodies (~60 MiB each), while a probe asks /v2/health/ready every 50 ms (goal p99 ≤ 50 ms)
// 5. RSS under an upload attack: 16 clients each sending just under 64 MiB and never finishing, against a server
//    bounded at 256 MiB in flight (what a 1Gi memory limit gives): RSS before, peak (VmHWM), answers
// The server runs in its own process (`node dist/index.js serve`), as in the image.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as http from 'http';
import * as net from 'net';
import { spawn, ChildProcess } from 'child_process';
import * as ort from 'onnxruntime-node';
import { convertCaffe } from '../src/convert/converter';
import { encodeInferRequest, HEADER_LENGTH } from '../src/protocol/kserve';
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
    const req = http.request(
      { host: '127.0.0.1', port, path: '/v2/models/googlenet/infer', method: 'POST', agent, headers: { [HEADER_LENGTH]: hl, 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const children: ChildProcess[] = [];
// a failed run leaves no server behind
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
const phase = (what: string) => process.env.BENCH_SERVER_LOG && console.error(`[bench] ${what}`);

async function startServer(model: string, maxBatch: number, more: string[] = []): Promise<{ port: number; child: ChildProcess }> {
  const port = 18600 + Math.floor(Math.random() * 300);
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'dist/index.js'),
      'serve',
      '--model',
      model,
      '--model-name',
      'googlenet',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--metrics-port',
      'off',
      '--grpc-port',
      'off',
      '--max-batch-size',
      String(maxBatch),
      '--max-queue-delay-ms',
      maxBatch > 1 ? (process.env.BENCH_QUEUE_DELAY_MS ?? '2') : '0',
      ...more,
    ],
    { stdio: ['ignore', 'ignore', process.env.BENCH_SERVER_LOG ? 'inherit' : 'pipe'] },
  );
  children.push(child);
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const ok = await new Promise<boolean>((res) =>
      http
        .get({ host: '127.0.0.1', port, path: '/v2/health/ready' }, (r) => {
          r.resume();
          res(r.statusCode === 200);
        })
        .on('error', () => res(false)),
    );
    if (ok) return { port, child };
  }
  throw new Error('server did not start');
}

/** Requests that failed, by message (a keep-alive socket the server closed as it was reused is counted, not fatal). */
const failures = new Map<string, number>();

/** Run `fn` in `conc` loops for `seconds`; returns latencies (ms) and completed calls. */
async function load(conc: number, fn: () => Promise<void>, seconds = SECONDS): Promise<{ lat: number[]; calls: number; wall: number }> {
  const lat: number[] = [];
  const end = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (Date.now() < end) {
        const s = process.hrtime.bigint();
        try {
          await fn();
        } catch (e) {
          const m = (e as Error).message;
          failures.set(m, (failures.get(m) ?? 0) + 1);
          continue;
        }
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  return { lat, calls: lat.length, wall: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** GET /v2/health/ready every `everyMs` until `stop()`; latencies in ms. */
function healthProbe(port: number, everyMs = 50): { stop: () => Promise<number[]> } {
  const lat: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = process.hrtime.bigint();
      await new Promise<void>((resolve) =>
        http
          .get({ host: '127.0.0.1', port, path: '/v2/health/ready', agent: false }, (r) => (r.resume(), r.on('end', () => resolve())))
          .on('error', () => resolve()),
      );
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return { stop: async () => ((stopped = true), await loop, lat) };
}

const statusOf = (pid: number, field: string) =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** 16 clients each declaring 64 MiB - 1, sending all but the last MiB, then stalling (15 s at most); their answers. */
async function uploadAttack(port: number): Promise<number[]> {
  const size = 64 * 2 ** 20 - 1;
  const chunk = Buffer.alloc(2 ** 20, 0x31);
  return Promise.all(
    Array.from({ length: 16 }, async () => {
      const sock = net.connect(port, '127.0.0.1');
      let reply = '';
      sock.on('data', (d) => (reply += d.toString('latin1')));
      sock.on('error', () => undefined);
      const closed = new Promise<void>((r) => sock.on('close', () => r()));
      sock.write(`POST /v2/models/googlenet/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
      for (let sent = 0; sent < size - chunk.length && !sock.destroyed; sent += chunk.length) {
        if (!sock.write(chunk)) await new Promise<void>((r) => (sock.once('drain', () => r()), sock.once('close', () => r())));
      }
      const t = setTimeout(() => sock.destroy(), 15_000);
      await closed;
      clearTimeout(t);
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);
    }),
  );
}

async function main(): Promise<void> {
  const conv = convertCaffe({
    prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')),
    prototxtFile: 'p',
    caffemodel: fs.readFileSync(path.join(dir, 'weights.caffemodel')),
    caffemodelFile: 'w',
  });
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
  const results = Object.fromEntries(Object.keys(cases).map((k) => [k, { lat: [] as number[], calls: 0, wall: 0 }])) as Record<
    keyof typeof cases,
    { lat: number[]; calls: number; wall: number }
  >;
  // warm-up (first runs allocate onnxruntime's buffers)
  for (let i = 0; i < 3; i++) for (const fn of Object.values(cases)) await fn();
  phase('for (let round = 0; round < ROUNDS; roun');
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
  phase('const probe16 = healthProbe(batched.port');
  const probe16 = healthProbe(batched.port);
  const c16on = await load(16, () => post(batched.port, req1.body, req1.headerLength, agent));
  const health16 = await probe16.stop();
  // full load: the same 16 clients plus two sending batch-32 JSON bodies (the JSON decode is the server's heaviest
  // non-inference work)
  const x32 = Array.from({ length: 32 * per }, (_, i) => +x1.data[i % per].toFixed(4));
  const json32 = Buffer.from(JSON.stringify({ inputs: [{ name: 'data', shape: [32, ...shape1.slice(1)], datatype: 'FP32', data: x32 }] }));
  const postJson = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: batched.port,
          path: '/v2/models/googlenet/infer',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': json32.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(json32);
    });
  phase('const probeFull = healthProbe(batched.po');
  const probeFull = healthProbe(batched.port);
  const [fullSmall, fullJson] = await Promise.all([load(16, () => post(batched.port, req1.body, req1.headerLength, agent)), load(2, postJson)]);
  const healthFull = await probeFull.stop();
  batched.child.kill('SIGTERM');
  phase('const unbatched = await startServer(mode');
  const unbatched = await startServer(model, 1);
  const c16off = await load(16, () => post(unbatched.port, req1.body, req1.headerLength, agent));
  unbatched.child.kill('SIGTERM');
  agent.destroy();

  // the upload attack, against the bound a 1Gi memory limit gives (a quarter of it)
  phase('const attacked = await startServer(model');
  const attacked = await startServer(model, 8, ['--max-inflight-bytes', '256Mi', '--body-timeout', '10']);
  for (let i = 0; i < 3; i++) await post(attacked.port, req8.body, req8.headerLength, new http.Agent());
  const rssBefore = statusOf(attacked.child.pid!, 'VmRSS');
  const hwmBefore = statusOf(attacked.child.pid!, 'VmHWM');
  const answers = await uploadAttack(attacked.port);
  const hwm = statusOf(attacked.child.pid!, 'VmHWM');
  const rssAfter = statusOf(attacked.child.pid!, 'VmRSS');
  attacked.child.kill('SIGTERM');
  const count = (c: number) => answers.filter((a) => a === c).length;

  const ips = (r: { calls: number; wall: number }, items: number) => (r.calls * items) / r.wall;
  console.log(
    `model ${dir}, node ${process.version}, ${os.cpus().length} CPUs, ${threads} intra-op threads, ${SECONDS} s per measurement (${ROUNDS} alternating rounds for server vs in-process)`,
  );
  console.log(
    `batch 8 throughput: server ${ips(srv8, 8).toFixed(1)} img/s, in-process ${ips(inproc8, 8).toFixed(1)} img/s, ratio ${(ips(srv8, 8) / ips(inproc8, 8)).toFixed(3)} (goal ≥ 0.93)`,
  );
  console.log(
    `batch 1, concurrency 1: p50 server ${pct(srv1.lat, 50).toFixed(2)} ms vs in-process ${pct(inproc1.lat, 50).toFixed(2)} ms; p99 server ${pct(srv1.lat, 99).toFixed(2)} ms vs in-process ${pct(inproc1.lat, 99).toFixed(2)} ms; p99 overhead ${(pct(srv1.lat, 99) - pct(inproc1.lat, 99)).toFixed(2)} ms (goal ≤ 2 ms)`,
  );
  const h = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms (${xs.length} probes)`;
  console.log(`health under 16 batch-1 clients: ${h(health16)}`);
  console.log(
    `health under full load (16 batch-1 binary + 2 batch-32 JSON clients, ${(json32.length / 2 ** 20).toFixed(0)} MiB bodies; ${fullSmall.calls} + ${fullJson.calls} requests): ${h(healthFull)} (goal p99 ≤ 50 ms)`,
  );
  console.log(
    `upload attack (16 × 64 MiB never finished, bound 256 MiB): RSS ${rssBefore.toFixed(0)} MiB before (peak so far ${hwmBefore.toFixed(0)}), peak during ${hwm.toFixed(0)} MiB (+${(hwm - hwmBefore).toFixed(0)}), ${rssAfter.toFixed(0)} MiB after; answers: ${count(503)}×503 at once, ${count(408)}×408 at the body timeout, ${answers.length - count(503) - count(408)} other`,
  );
  console.log(`failed requests: ${failures.size ? [...failures].map(([m, n]) => `${n}× ${m}`).join(', ') : 'none'}`);
  console.log(
    `concurrency 16, batch-1 requests: batching on ${ips(c16on, 1).toFixed(1)} img/s (p99 ${pct(c16on.lat, 99).toFixed(0)} ms), off ${ips(c16off, 1).toFixed(1)} img/s (p99 ${pct(c16off.lat, 99).toFixed(0)} ms), gain ${(ips(c16on, 1) / ips(c16off, 1)).toFixed(2)}x`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
