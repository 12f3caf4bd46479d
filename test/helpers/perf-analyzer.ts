import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { REPO } from './caffe';
import { labDescribe, Need } from './needs';

/**
 * perf_analyzer, the load tool of Triton's users (tritonclient 2.41.0's wheel carries the binary; later wheels no
 * longer do), run as they run it: `perf_analyzer -m <model> -u <host:port> -i http|grpc --concurrency-range ...`.
 * It lives in .venv-triton-client/bin/ (test/requirements-triton-client.txt) and needs, on the library path, the
 * venv's libcudart.so.12 (nvidia-cuda-runtime-cu12; no GPU is used) and Debian's libb64.so.0d, which scripts/test.sh
 * unpacks into .deb-cache/libb64-0d/ (apt-get download, nothing installed).
 */

export const PERF_ANALYZER = path.join(REPO, '.venv-triton-client/bin/perf_analyzer');
const LIBB64 = path.join(REPO, '.deb-cache/libb64-0d/usr/lib/x86_64-linux-gnu');

/** The venv's nvidia/cuda_runtime/lib (python3.<minor> is the venv's Python), or undefined when there is none. */
function cudartDir(): string | undefined {
  const lib = path.join(REPO, '.venv-triton-client/lib');
  const py = fs.existsSync(lib) ? fs.readdirSync(lib).find((d) => /^python3\.\d+$/.test(d)) : undefined;
  const dir = py && path.join(lib, py, 'site-packages/nvidia/cuda_runtime/lib');
  return dir && fs.existsSync(path.join(dir, 'libcudart.so.12')) ? dir : undefined;
}

/** The environment perf_analyzer runs in: the caller's, with libcudart's and libb64's directories first on LD_LIBRARY_PATH. */
export function perfAnalyzerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const dirs = [cudartDir(), LIBB64, env.LD_LIBRARY_PATH].filter((d): d is string => !!d);
  return { ...env, LD_LIBRARY_PATH: dirs.join(':') };
}

/** '' when perf_analyzer runs here (`--version`); else what is missing and what provides it. */
export function perfAnalyzerMissing(): string {
  const rel = path.relative(REPO, PERF_ANALYZER);
  if (!fs.existsSync(PERF_ANALYZER)) return `${rel} is missing (scripts/test.sh builds .venv-triton-client from test/requirements-triton-client.txt)`;
  const r = spawnSync(PERF_ANALYZER, ['--version'], { encoding: 'utf8', env: perfAnalyzerEnv(), timeout: 15_000 });
  // (it prints its version on stderr)
  if (r.status === 0 && /Perf Analyzer Version/.test(`${r.stdout}${r.stderr}`)) return '';
  const said = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').pop() ?? `exit ${r.status}`;
  const hint = /libb64/.test(said)
    ? `scripts/test.sh unpacks Debian's libb64-0d into ${path.relative(REPO, LIBB64)}`
    : /libcudart/.test(said)
      ? 'scripts/test.sh installs nvidia-cuda-runtime-cu12 into .venv-triton-client'
      : 'rerun scripts/test.sh';
  return `${rel} --version fails: ${said.slice(0, 200)} (${hint})`;
}

/**
 * `labDescribe(needs)` (test/helpers/needs.ts) that also needs perf_analyzer to run here: when it does not, the file
 * is skipped locally saying why, and under CI=true a failing test says it (as for a missing part of the lab).
 */
export function perfAnalyzerDescribe(needs: Need[]): jest.Describe {
  const lab = labDescribe(needs);
  const why = perfAnalyzerMissing();
  if (lab !== describe || !why) return lab;
  const file = path.relative(REPO, expect.getState().testPath ?? 'this file');
  if (/^(true|1)$/i.test(process.env.CI ?? '')) {
    test('perf_analyzer runs here', () => {
      throw new Error(`${file}: ${why} (under CI=true a lab test never skips)`);
    });
  } else {
    process.stderr.write(`skipped ${file}: ${why}\n`);
    test.skip(`skipped: ${why}`, () => undefined);
  }
  return describe.skip;
}

export interface PerfAnalyzerOptions {
  model: string;
  /** host:port (an http:// or grpc:// scheme is dropped: perf_analyzer takes none) */
  url: string;
  protocol: 'http' | 'grpc';
  /** the concurrency levels, each measured in turn: --concurrency-range start:end:step (an arithmetic series) */
  concurrency: number[];
  /** -b (default 1) */
  batchSize?: number;
  /** --measurement-interval in ms (perf_analyzer's default: 5000) */
  measurementIntervalMs?: number;
  /** --measurement-mode (default time_windows); count_windows needs measurementRequestCount */
  measurementMode?: 'time_windows' | 'count_windows';
  measurementRequestCount?: number;
  /** --stability-percentage (perf_analyzer's default: 10) and --max-trials (10) */
  stabilityPercentage?: number;
  maxTrials?: number;
  /** --async: a few threads keep the concurrency, in place of a thread per request */
  async?: boolean;
  /** --input-data: zero, random (perf_analyzer's default) or a directory / JSON file */
  inputData?: string;
  /** further arguments, e.g. ['--shape', 'data:3,224,224'] */
  args?: string[];
  timeoutMs?: number;
}

export interface PerfMeasurement {
  concurrency: number;
  /** infer/s (client side, over the windows it reports) */
  throughput: number;
  /** client-side latencies, µs */
  latencyUs: { avg: number; p50: number; p90: number; p95: number; p99: number };
  /** its CSV's breakdown of the average, µs (Client Send, Network+Server Send/Recv, ..., Client Recv), by column name */
  breakdownUs: Record<string, number>;
  /** the requests of the windows it reports (stdout "Request count") */
  requestCount: number;
  /**
   * the server's own figures over those windows, from GET /v2/models/<m>/stats (or gRPC ModelStatistics), which it
   * asks only of a server that lists the "statistics" extension; undefined otherwise
   */
  server?: {
    successCount: number;
    inferenceCount: number;
    executionCount: number;
    avgRequestLatencyUs: number;
    overheadUs: number;
    queueUs: number;
    computeInputUs: number;
    computeInferUs: number;
    computeOutputUs: number;
  };
  /**
   * the requests of all its measurement windows at this level, the unstable ones too (its profile export: those
   * answered before the last window closed), and how many of them had a response
   */
  sent: number;
  answered: number;
  /** when its first window opened and its last closed (ms since the epoch, the system clock) */
  windowsMs: [number, number];
}

export interface PerfRun {
  args: string[];
  /** when the process was started and when it exited (ms since the epoch) */
  startedAtMs: number;
  endedAtMs: number;
  /** stdout and stderr, interleaved as written */
  output: string;
  measurements: PerfMeasurement[];
}

/** --concurrency-range of levels that form an arithmetic series (1 / 1,2,3 / 4,8,12). */
function concurrencyRange(levels: number[]): string {
  if (!levels.length || levels.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`concurrency levels must be integers ≥ 1, got ${levels.join(',')}`);
  const step = levels.length > 1 ? levels[1] - levels[0] : 1;
  if (step < 1 || levels.some((c, i) => c !== levels[0] + i * step)) throw new Error(`concurrency levels ${levels.join(',')} are not start:end:step`);
  return `${levels[0]}:${levels[levels.length - 1]}:${step}`;
}

const num = (re: RegExp, text: string, what: string): number => {
  const m = re.exec(text);
  if (!m) throw new Error(`perf_analyzer's output has no ${what}`);
  return Number(m[1]);
};

/** The stdout block of each "Request concurrency: N" (its client and server sections). */
function blocks(stdout: string): Map<number, string> {
  const out = new Map<number, string>();
  const parts = stdout.split(/^Request concurrency: (\d+)$/m);
  for (let i = 1; i < parts.length; i += 2) out.set(Number(parts[i]), parts[i + 1].split(/^Inferences\/Second vs\. Client/m)[0]);
  return out;
}

function serverSection(block: string): PerfMeasurement['server'] {
  const s = /^\s*Server:\s*$([\s\S]*)/m.exec(block)?.[1];
  if (!s) return undefined;
  const lat =
    /Avg request latency: (\d+) usec \(overhead (\d+) usec \+ queue (\d+) usec \+ compute input (\d+) usec \+ compute infer (\d+) usec \+ compute output (\d+) usec\)/.exec(
      s,
    );
  if (!lat) throw new Error(`perf_analyzer's server section is not as expected:\n${s}`);
  return {
    successCount: num(/Successful request count: (\d+)/, s, 'server success count'),
    inferenceCount: num(/Inference count: (\d+)/, s, 'server inference count'),
    executionCount: num(/Execution count: (\d+)/, s, 'server execution count'),
    avgRequestLatencyUs: Number(lat[1]),
    overheadUs: Number(lat[2]),
    queueUs: Number(lat[3]),
    computeInputUs: Number(lat[4]),
    computeInferUs: Number(lat[5]),
    computeOutputUs: Number(lat[6]),
  };
}

/** Its -f CSV (with --verbose-csv): a header line, then a row per concurrency level. */
function csvRows(text: string): Record<string, number>[] {
  const [header, ...rows] = text.trim().split('\n');
  const names = header.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [names[i], v === '' ? NaN : Number(v)])));
}

interface ProfileExport {
  experiments: {
    experiment: { mode: string; value: number };
    requests: { timestamp: number; response_timestamps: number[] }[];
    /** ns since the epoch */
    window_boundaries: number[];
  }[];
}

/**
 * Run perf_analyzer and read what it measured. Rejects, with its command line and output, when it exits non-zero
 * (a request that failed, a model it cannot read, a server it cannot reach) or its output lacks a level asked for.
 */
export async function runPerfAnalyzer(o: PerfAnalyzerOptions): Promise<PerfRun> {
  const dir = fs.mkdtempSync(path.join(process.env.MODELSHIP_TEST_TMP || os.tmpdir(), 'perf-analyzer-'));
  const csv = path.join(dir, 'report.csv');
  const exported = path.join(dir, 'profile.json');
  const args = [
    '-m',
    o.model,
    '-u',
    o.url.replace(/^[a-z]+:\/\//, ''),
    '-i',
    o.protocol,
    '--concurrency-range',
    concurrencyRange(o.concurrency),
    '-b',
    String(o.batchSize ?? 1),
    '-f',
    csv,
    '--verbose-csv',
    '--profile-export-file',
    exported,
  ];
  if (o.measurementIntervalMs) args.push('--measurement-interval', String(o.measurementIntervalMs));
  if (o.measurementMode) args.push('--measurement-mode', o.measurementMode);
  if (o.measurementRequestCount) args.push('--measurement-request-count', String(o.measurementRequestCount));
  if (o.stabilityPercentage) args.push('--stability-percentage', String(o.stabilityPercentage));
  if (o.maxTrials) args.push('--max-trials', String(o.maxTrials));
  if (o.async) args.push('--async');
  if (o.inputData) args.push('--input-data', o.inputData);
  args.push(...(o.args ?? []));
  const command = `perf_analyzer ${args.join(' ')}`;
  const startedAtMs = Date.now();
  try {
    const { code, output, stdout } = await new Promise<{ code: number | null; output: string; stdout: string }>((resolve, reject) => {
      const c = spawn(PERF_ANALYZER, args, { cwd: dir, env: perfAnalyzerEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      let stdout = '';
      c.stdout.on('data', (d: Buffer) => ((output += d.toString()), (stdout += d.toString())));
      c.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const timer = setTimeout(() => {
        c.kill('SIGKILL');
        reject(new Error(`${command}: no result after ${o.timeoutMs ?? 300_000} ms; its output:\n${output.slice(-6000)}`));
      }, o.timeoutMs ?? 300_000);
      c.on('error', (e) => (clearTimeout(timer), reject(e)));
      c.on('close', (code) => (clearTimeout(timer), resolve({ code, output, stdout })));
    });
    const endedAtMs = Date.now();
    if (code !== 0) throw new Error(`${command} exited ${code}; its output:\n${output.slice(-6000)}`);
    const rows = csvRows(fs.readFileSync(csv, 'utf8'));
    const profile = JSON.parse(fs.readFileSync(exported, 'utf8')) as ProfileExport;
    const byLevel = blocks(stdout);
    const measurements = o.concurrency.map((c): PerfMeasurement => {
      const row = rows.find((r) => r.Concurrency === c);
      const block = byLevel.get(c);
      const exp = profile.experiments.find((e) => e.experiment.mode === 'concurrency' && e.experiment.value === c);
      // (a level that never settles within --max-trials windows is left out, and perf_analyzer still exits 0)
      if (!row || !block || !exp) {
        const unstable = /Failed to obtain stable measurement/.test(output)
          ? ' (it found no stable measurement: see --stability-percentage, --max-trials)'
          : '';
        throw new Error(`${command}: no measurement at concurrency ${c}${unstable}; its output:\n${output.slice(-6000)}`);
      }
      const latency = ['Concurrency', 'Inferences/Second', 'p50 latency', 'p90 latency', 'p95 latency', 'p99 latency', 'Avg latency'];
      return {
        concurrency: c,
        throughput: row['Inferences/Second'],
        latencyUs: { avg: row['Avg latency'], p50: row['p50 latency'], p90: row['p90 latency'], p95: row['p95 latency'], p99: row['p99 latency'] },
        breakdownUs: Object.fromEntries(Object.entries(row).filter(([k, v]) => !latency.includes(k) && !Number.isNaN(v))),
        requestCount: num(/Request count: (\d+)/, block, `request count at concurrency ${c}`),
        server: serverSection(block),
        sent: exp.requests.length,
        answered: exp.requests.filter((r) => r.response_timestamps.length > 0).length,
        windowsMs: [exp.window_boundaries[0] / 1e6, exp.window_boundaries[exp.window_boundaries.length - 1] / 1e6],
      };
    });
    return { args, startedAtMs, endedAtMs, output, measurements };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
