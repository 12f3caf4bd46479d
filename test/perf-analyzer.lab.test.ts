import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { convertCaffe } from '../src/convert/converter';
import { onnxInfo } from '../src/formats/onnxinfo';
import { tritonConfig } from '../src/image/triton-config';
import { ORACLE, tmpDir } from './helpers/caffe';
import { perfAnalyzerDescribe, PerfMeasurement, PerfRun, runPerfAnalyzer } from './helpers/perf-analyzer';
import { RunningTriton, startTriton } from './helpers/triton-lab';

// perf_analyzer, the load tool Triton's users measure a server with (tritonclient 2.41.0's binary,
// test/helpers/perf-analyzer.ts), over HTTP and gRPC, against the lab's real Triton 2.51.0 (test/triton-lab/) and
// against `modelship serve` run from source, both serving LeNet as converted from the Caffe oracle. What it reports
// sending is checked against what each server counted in its own metrics, and, where the server lists the
// "statistics" extension, its server-side figures (queue, compute) must be there.

const describeLab = perfAnalyzerDescribe(['docker', 'registry']);

const LENET = path.join(ORACLE, 'models/lenet');
// one client, then four at once (the dynamic batcher gathers them); 1 s windows. perf_analyzer reports a level once
// three windows in a row agree within --stability-percentage: 100 (within 2×), as the 2-CPU lab machine runs other
// tests beside this one (at 50 % a level could go 15 windows without settling); these tests count, bench/perf.ts times
const LEVELS = [1, 4];
const MEASURE = { measurementIntervalMs: 1000, stabilityPercentage: 100, maxTrials: 20 };

function lenetOnnx(): Buffer {
  return Buffer.from(
    convertCaffe({
      prototxt: fs.readFileSync(path.join(LENET, 'deploy.prototxt')),
      prototxtFile: 'deploy.prototxt',
      caffemodel: fs.readFileSync(path.join(LENET, 'weights.caffemodel')),
      caffemodelFile: 'weights.caffemodel',
    }).onnx,
  );
}

/** the sum of a metric's samples whose labels include every one of `labels` (0 when there is none) */
function metricSum(text: string, name: string, labels: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`).exec(line);
    if (m && labels.every((l) => m[1].split(',').includes(l))) sum += Number(m[2]);
  }
  return sum;
}

/**
 * How many requests perf_analyzer may send that its profile export leaves out: those outside its measurement windows
 * (starting, between levels, while it stops after the last window) and the ones in flight as a window closes. At
 * most what its highest throughput sends in the time outside the windows (half as much again for jitter), plus two
 * requests per client.
 */
function unrecordedBound(run: PerfRun): number {
  const inWindows = run.measurements.reduce((s, m) => s + (m.windowsMs[1] - m.windowsMs[0]), 0);
  const outsideS = (run.endedAtMs - run.startedAtMs - inWindows) / 1000;
  const top = Math.max(...run.measurements.map((m) => m.throughput));
  return Math.ceil(1.5 * top * outsideS) + run.measurements.reduce((s, m) => s + 2 * m.concurrency, 0);
}

/** What every run must show, whatever the server: it completed each level, every request was answered, figures in order. */
function expectCompleted(run: PerfRun): void {
  expect(run.measurements.map((m) => m.concurrency)).toEqual(LEVELS);
  for (const m of run.measurements) {
    expect({ concurrency: m.concurrency, answered: m.answered }).toEqual({ concurrency: m.concurrency, answered: m.sent });
    expect(m.throughput).toBeGreaterThan(0);
    expect(m.requestCount).toBeGreaterThan(0);
    expect(m.requestCount).toBeLessThanOrEqual(m.sent);
    const ps = [m.latencyUs.p50, m.latencyUs.p90, m.latencyUs.p95, m.latencyUs.p99];
    expect(ps[0]).toBeGreaterThan(0);
    expect(ps).toEqual([...ps].sort((a, b) => a - b));
  }
}

/** The server's count of successful infers rose by what perf_analyzer sent: at least its export, at most that plus what it may leave out. */
function expectCounted(run: PerfRun, before: number, after: number): void {
  const sent = run.measurements.reduce((s, m) => s + m.sent, 0);
  const counted = after - before;
  const slack = unrecordedBound(run);
  console.log(`perf_analyzer's export: ${sent} requests; the server counted ${counted} (at most ${slack} more allowed)`);
  // (one object, so that a failure shows all three)
  expect({ counted, atLeast: sent, atMost: sent + slack, ok: counted >= sent && counted <= sent + slack }).toEqual({
    counted,
    atLeast: sent,
    atMost: sent + slack,
    ok: true,
  });
}

/**
 * The server's successful requests over the windows perf_analyzer reports are its client's: it reads the server's
 * statistics as each window opens and closes while the load goes on, so they differ by what completes during those
 * reads (1 % of the requests, and a couple per client).
 */
function expectSameWindows(m: PerfMeasurement): void {
  const diff = Math.abs(m.server!.successCount - m.requestCount);
  expect({
    concurrency: m.concurrency,
    client: m.requestCount,
    server: m.server!.successCount,
    close: diff <= 0.01 * m.requestCount + 2 * m.concurrency,
  }).toEqual({
    concurrency: m.concurrency,
    client: m.requestCount,
    server: m.server!.successCount,
    close: true,
  });
}

/**
 * perf_analyzer's server-side figures (the server's own statistics over its windows) are there at every level and
 * add up: one inference per batch-1 request, no more executions than inferences, time spent computing, the request
 * latency at least its queue and compute parts; and at four clients the batcher gathered some requests into one run.
 */
function expectServerSide(run: PerfRun): void {
  for (const m of run.measurements) {
    expect({ concurrency: m.concurrency, serverSide: m.server !== undefined }).toEqual({ concurrency: m.concurrency, serverSide: true });
    const s = m.server!;
    expectSameWindows(m);
    expect(s.inferenceCount).toBe(s.successCount);
    expect(s.executionCount).toBeLessThanOrEqual(s.inferenceCount);
    expect(s.computeInferUs).toBeGreaterThan(0);
    expect(s.avgRequestLatencyUs).toBeGreaterThanOrEqual(s.queueUs + s.computeInputUs + s.computeInferUs + s.computeOutputUs);
    // (its CSV says the same as its stdout)
    expect(m.breakdownUs).toMatchObject({ 'Server Queue': s.queueUs, 'Server Compute Infer': s.computeInferUs });
  }
  const c4 = run.measurements.find((m) => m.concurrency === 4)!.server!;
  expect(c4.executionCount).toBeLessThan(c4.inferenceCount);
}

const show = (what: string, run: PerfRun) =>
  console.log(
    `${what}: ` +
      run.measurements
        .map(
          (m) =>
            `concurrency ${m.concurrency}: ${m.throughput.toFixed(1)} infer/s, p50 ${m.latencyUs.p50} µs, p99 ${m.latencyUs.p99} µs` +
            (m.server ? ` (server: queue ${m.server.queueUs} µs, compute infer ${m.server.computeInferUs} µs)` : ''),
        )
        .join('; '),
  );

describeLab("perf_analyzer against the lab's Triton 2.51.0", () => {
  let triton: RunningTriton;
  let grpcUrl = '';
  beforeAll(async () => {
    const onnx = lenetOnnx();
    const info = onnxInfo(onnx);
    const repo = tmpDir('perf-triton-repo-');
    fs.mkdirSync(path.join(repo, 'lenet/1'), { recursive: true });
    fs.writeFileSync(path.join(repo, 'lenet/1/model.onnx'), onnx);
    // the configuration the product writes (dynamic batching, one CPU instance)
    fs.writeFileSync(
      path.join(repo, 'lenet/config.pbtxt'),
      tritonConfig({
        name: 'lenet',
        platform: 'onnxruntime_onnx',
        maxBatchSize: 8,
        inputs: info.inputs,
        outputs: info.outputs,
        maxQueueDelayUs: 1000,
        gpu: false,
      }),
    );
    triton = await startTriton(repo);
    grpcUrl = triton.grpcTarget;
  }, 600_000);
  afterAll(() => triton?.stop());

  const counts = async () => {
    const text = await (await fetch(triton.metricsUrl)).text();
    const model = 'model="lenet"';
    return { success: metricSum(text, 'nv_inference_request_success', [model]), failure: metricSum(text, 'nv_inference_request_failure', [model]) };
  };

  test.each(['http', 'grpc'] as const)(
    '-i %s: completes each level; Triton counted what it sent, none failed; its server-side figures (queue, compute) are there',
    async (protocol) => {
      const before = await counts();
      const run = await runPerfAnalyzer({ model: 'lenet', url: protocol === 'http' ? triton.url : grpcUrl, protocol, concurrency: LEVELS, ...MEASURE });
      // (as in triton-lab.lab.test.ts, the counters are given a moment to take the last answers)
      let after = await counts();
      const sent = run.measurements.reduce((s, m) => s + m.sent, 0);
      for (let i = 0; i < 30 && after.success - before.success < sent; i++) {
        await new Promise((r) => setTimeout(r, 200));
        after = await counts();
      }
      show(`Triton, ${protocol}`, run);
      expectCompleted(run);
      expectCounted(run, before.success, after.success);
      expect(after.failure).toBe(before.failure);
      // Triton lists "statistics": perf_analyzer asked /v2/models/lenet/stats around its windows
      expectServerSide(run);
    },
    300_000,
  );
});

describeLab('perf_analyzer against modelship serve (from source)', () => {
  let child: ChildProcess | undefined;
  let url = '';
  let grpcPort = 0;
  const log: string[] = [];
  beforeAll(async () => {
    const model = path.join(tmpDir('perf-modelship-'), 'lenet.onnx');
    fs.writeFileSync(model, lenetOnnx());
    // `modelship serve` as its own process, as in the image (gRPC on a port of its own, any free one: a port found free
    // and closed first can be taken by another file's server before this one binds it; /metrics on the serving port)
    const c = spawn(
      process.execPath,
      [
        '--require',
        require.resolve('tsx/cjs'),
        path.join(__dirname, 'helpers/serve-main.ts'),
        '--model',
        model,
        '--model-name',
        'lenet',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--grpc-port',
        '0',
        '--metrics-port',
        'off',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = c;
    c.stderr.on('data', (d: Buffer) => log.push(d.toString()));
    url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`modelship serve did not say where it listens: ${log.join('')}`)), 60_000);
      c.on('exit', (code) => reject(new Error(`modelship serve exited ${code}: ${log.join('')}`)));
      c.stderr.on('data', () => {
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+).*; gRPC on :(\d+)/.exec(log.join(''));
        if (m) {
          grpcPort = Number(m[2]);
          resolve((clearTimeout(t), m[1]));
        }
      });
    });
  }, 120_000);
  afterAll(() => child?.kill('SIGKILL'));

  const counts = async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    return {
      success: metricSum(text, 'modelship_requests_total', ['route="infer"', 'code="200"']),
      errors: metricSum(text, 'modelship_request_errors_total', ['route="infer"']),
    };
  };
  /** whether modelship lists Triton's "statistics" extension (GET /v2): perf_analyzer asks a server for its statistics only then */
  const listsStatistics = async () => ((await (await fetch(`${url}/v2`)).json()) as { extensions: string[] }).extensions.includes('statistics');

  const grpcListening = () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect(grpcPort, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });

  test.each(['http', 'grpc'] as const)(
    '-i %s: completes each level; modelship counted what it sent, none failed; its server-side figures (queue, compute) are there',
    async (protocol) => {
      if (protocol === 'grpc' && !(await grpcListening())) {
        throw new Error(`nothing listens on modelship's --grpc-port ${grpcPort}; its log:\n${log.join('')}`);
      }
      const before = await counts();
      const run = await runPerfAnalyzer({
        model: 'lenet',
        url: protocol === 'http' ? url : `127.0.0.1:${grpcPort}`,
        protocol,
        concurrency: LEVELS,
        ...MEASURE,
      });
      const after = await counts();
      show(`modelship, ${protocol}`, run);
      expectCompleted(run);
      expectCounted(run, before.success, after.success);
      expect(after.errors).toBe(before.errors);
      // modelship lists "statistics" (GET /v2), and answers GET /v2/models/lenet/stats (gRPC ModelStatistics)
      expect(await listsStatistics()).toBe(true);
      expectServerSide(run);
    },
    300_000,
  );
});
