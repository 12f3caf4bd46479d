import * as fs from 'fs';
import { startServer, DEFAULT_SERVE, ServeOptions } from './server';
import { loadKey } from '../protocol/model-crypto';
import { Preprocess, parsePreprocess } from '../protocol/pixels';
import { parseProvider } from './execution-provider';
import { parseBytes } from './memory';
import { ModelshipError } from '../util/errors';
import { METRICS_PORT } from '../protocol/runtime';

/**
 * `modelship serve`: the serving runtime inside the image. Configured by flags or, in a container, by the
 * environment (flags win):
 *   --model / MODELSHIP_MODEL            ONNX file (plain or AES-256-GCM encrypted by the image stage)
 *   --model-name (alias --name) / MODELSHIP_MODEL_NAME   model name in the URL (default "model"), as the action's
 *                                        input is named; MODELSHIP_MODEL_VERSION
 *   --port / PORT (8000), --host / HOST (0.0.0.0)
 *   --max-batch-size / MODELSHIP_MAX_BATCH_SIZE (8), --max-queue-delay-ms / MODELSHIP_MAX_QUEUE_DELAY_MS (2)
 *   --idle-flush / MODELSHIP_IDLE_FLUSH (true: a request that finds the server idle runs at once; false: it waits the queue delay)
 *   --provider / MODELSHIP_PROVIDER      cpu | cuda (no CUDA provider: exit non-zero, naming the cause) |
 *                                        cuda,cpu (CUDA, else the CPU, stated in the log, metadata and metrics)
 *   --intra-op-threads / MODELSHIP_INTRA_OP_THREADS  onnxruntime threads (default: the CPUs the container may use,
 *                                        its cgroup CPU quota included)
 *   MODELSHIP_API_KEY or MODELSHIP_API_KEY_FILE      require "Authorization: Bearer <key>" on all but health
 *   MODELSHIP_MODEL_KEY or MODELSHIP_MODEL_KEY_FILE  key of an encrypted model (never baked into the image)
 *   MODELSHIP_LABELS (a file, one label per line), MODELSHIP_PREPROCESS (JSON: resize, channelOrder, mean, scale)
 *   --detection-threshold / MODELSHIP_DETECTION_THRESHOLD  /detect's minimum score when a request gives none (0.5)
 * and the limits that keep it standing under hostile traffic (SERVE_USAGE lists them all).
 */
export function serveOptions(argv: string[], env: NodeJS.ProcessEnv, log: (l: string) => void): ServeOptions {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new ModelshipError('input', `unexpected argument "${a}"`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const v = argv[++i];
      if (v === undefined) throw new ModelshipError('input', `flag ${a} needs a value`);
      flags.set(a.slice(2), v);
    }
  }
  const known = new Set(['drain-delay', 'drain-timeout', 'model', 'model-name', 'name', 'version', 'port', 'host', 'max-batch-size', 'max-queue-delay-ms', 'idle-flush', 'intra-op-threads', 'provider', 'labels', 'metrics-port', 'max-body-bytes', 'max-inflight-bytes', 'header-timeout', 'body-timeout', 'auth-failure-limit', 'decode-threads', 'detection-threshold']);
  for (const k of flags.keys()) if (!known.has(k)) throw new ModelshipError('input', `unknown serve flag --${k}`, { field: k });
  const get = (flag: string, envName: string): string | undefined => flags.get(flag) ?? (env[envName] || undefined);
  const int = (flag: string, envName: string, dflt: number, min: number): number => {
    const v = get(flag, envName);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new ModelshipError('input', `--${flag} / ${envName} must be an integer ≥ ${min}, got "${v}"`, { field: flag });
    return n;
  };
  const bool = (flag: string, envName: string, dflt: boolean): boolean => {
    const v = get(flag, envName);
    if (v === undefined) return dflt;
    if (/^(true|1|yes|on)$/i.test(v)) return true;
    if (/^(false|0|no|off)$/i.test(v)) return false;
    throw new ModelshipError('input', `--${flag} / ${envName} must be true or false, got "${v}"`, { field: flag });
  };
  const bytes = (flag: string, envName: string, dflt: number): number => {
    const v = get(flag, envName);
    if (v === undefined) return dflt;
    const n = parseBytes(v);
    if (n === undefined) throw new ModelshipError('input', `--${flag} / ${envName} must be a size in bytes (e.g. 268435456, 256Mi, 1Gi), got "${v}"`, { field: flag });
    return n;
  };
  const metricsPortRaw = get('metrics-port', 'MODELSHIP_METRICS_PORT') ?? String(DEFAULT_METRICS_PORT);
  const metricsPort = /^(off|none|false)$/i.test(metricsPortRaw) ? undefined : int('metrics-port', 'MODELSHIP_METRICS_PORT', DEFAULT_METRICS_PORT, 0);
  const modelPath = get('model', 'MODELSHIP_MODEL');
  if (!modelPath) throw new ModelshipError('input', 'serve needs --model or MODELSHIP_MODEL', { field: 'model' });
  const provider = parseProvider(get('provider', 'MODELSHIP_PROVIDER') ?? 'cpu');
  let apiKey = env.MODELSHIP_API_KEY || undefined;
  if (!apiKey && env.MODELSHIP_API_KEY_FILE) apiKey = fs.readFileSync(env.MODELSHIP_API_KEY_FILE, 'utf8').trim();
  let preprocess: Preprocess = DEFAULT_SERVE.preprocess;
  if (env.MODELSHIP_PREPROCESS) {
    try {
      preprocess = parsePreprocess(env.MODELSHIP_PREPROCESS, preprocess);
    } catch (e) {
      throw new ModelshipError('input', `MODELSHIP_PREPROCESS: ${(e as Error).message}`);
    }
  }
  const labelsFile = get('labels', 'MODELSHIP_LABELS');
  const thresholdRaw = get('detection-threshold', 'MODELSHIP_DETECTION_THRESHOLD');
  const detectionThreshold = thresholdRaw === undefined ? DEFAULT_SERVE.detectionThreshold : Number(thresholdRaw);
  if (thresholdRaw !== undefined && (thresholdRaw.trim() === '' || !(detectionThreshold >= 0 && detectionThreshold <= 1))) {
    throw new ModelshipError('input', `--detection-threshold / MODELSHIP_DETECTION_THRESHOLD must be a number from 0 to 1, got "${thresholdRaw}"`, { field: 'detection-threshold' });
  }
  return {
    ...DEFAULT_SERVE,
    modelPath,
    modelName: flags.get('model-name') ?? get('name', 'MODELSHIP_MODEL_NAME') ?? DEFAULT_SERVE.modelName,
    modelVersion: get('version', 'MODELSHIP_MODEL_VERSION') ?? DEFAULT_SERVE.modelVersion,
    host: get('host', 'HOST') ?? DEFAULT_SERVE.host,
    port: int('port', 'PORT', DEFAULT_SERVE.port, 0),
    maxBatchSize: int('max-batch-size', 'MODELSHIP_MAX_BATCH_SIZE', DEFAULT_SERVE.maxBatchSize, 1),
    maxQueueDelayMs: int('max-queue-delay-ms', 'MODELSHIP_MAX_QUEUE_DELAY_MS', DEFAULT_SERVE.maxQueueDelayMs, 0),
    idleFlush: bool('idle-flush', 'MODELSHIP_IDLE_FLUSH', DEFAULT_SERVE.idleFlush),
    provider,
    intraOpThreads: int('intra-op-threads', 'MODELSHIP_INTRA_OP_THREADS', DEFAULT_SERVE.intraOpThreads, 0),
    drainDelayMs: 1000 * int('drain-delay', 'MODELSHIP_DRAIN_DELAY_S', DEFAULT_SERVE.drainDelayMs / 1000, 0),
    drainTimeoutMs: 1000 * int('drain-timeout', 'MODELSHIP_DRAIN_TIMEOUT_S', DEFAULT_SERVE.drainTimeoutMs / 1000, 1),
    maxBodyBytes: bytes('max-body-bytes', 'MODELSHIP_MAX_BODY_BYTES', DEFAULT_SERVE.maxBodyBytes),
    maxInflightBytes: bytes('max-inflight-bytes', 'MODELSHIP_MAX_INFLIGHT_BYTES', DEFAULT_SERVE.maxInflightBytes),
    headerTimeoutMs: 1000 * int('header-timeout', 'MODELSHIP_HEADER_TIMEOUT_S', DEFAULT_SERVE.headerTimeoutMs / 1000, 1),
    bodyTimeoutMs: 1000 * int('body-timeout', 'MODELSHIP_BODY_TIMEOUT_S', DEFAULT_SERVE.bodyTimeoutMs / 1000, 1),
    authFailureLimit: int('auth-failure-limit', 'MODELSHIP_AUTH_FAILURE_LIMIT', DEFAULT_SERVE.authFailureLimit, 1),
    decodeThreads: int('decode-threads', 'MODELSHIP_DECODE_THREADS', DEFAULT_SERVE.decodeThreads, 1),
    metricsPort,
    apiKey,
    modelKey: loadKey(env, 'MODELSHIP_MODEL_KEY', env.MODELSHIP_MODEL_KEY_FILE),
    preprocess,
    detectionThreshold,
    labels: labelsFile ? fs.readFileSync(labelsFile, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean) : undefined,
    log,
  };
}

/** The metrics-only listener of `modelship serve` (Triton's metrics port); `--metrics-port off` has none. */
export const DEFAULT_METRICS_PORT = METRICS_PORT;

export const SERVE_USAGE = `modelship serve --model model.onnx [flags]: the KServe v2 server inside the image

  --model / MODELSHIP_MODEL                 ONNX file (plain or AES-256-GCM encrypted by the image stage)
  --model-name (alias --name) / MODELSHIP_MODEL_NAME   model name in the URL (default "model"); MODELSHIP_MODEL_VERSION
  --port / PORT (8000), --host / HOST (0.0.0.0)
  --max-batch-size / MODELSHIP_MAX_BATCH_SIZE (8), --max-queue-delay-ms / MODELSHIP_MAX_QUEUE_DELAY_MS (2)
  --idle-flush / MODELSHIP_IDLE_FLUSH       true: a request that finds the server idle runs at once
  --provider / MODELSHIP_PROVIDER           cpu | cuda (strict: no CUDA provider, no server) | cuda,cpu (fallback, stated)
  --intra-op-threads / MODELSHIP_INTRA_OP_THREADS   onnxruntime threads (default: the CPUs the container may use)
  --labels / MODELSHIP_LABELS               a file of class labels, one per line (a detection model's: by label index)
  --detection-threshold / MODELSHIP_DETECTION_THRESHOLD   /detect's minimum score when the request sets none (0.5)
  --drain-delay / MODELSHIP_DRAIN_DELAY_S   after SIGTERM, seconds to keep serving with readiness false (0)
  --drain-timeout / MODELSHIP_DRAIN_TIMEOUT_S   then seconds to finish in-flight requests before cutting (20)
  --metrics-port / MODELSHIP_METRICS_PORT   a listener for GET /metrics only, no API key (8002; off: none)
  --max-body-bytes / MODELSHIP_MAX_BODY_BYTES       one request's body (64Mi; larger: 413)
  --max-inflight-bytes / MODELSHIP_MAX_INFLIGHT_BYTES   request bytes held at once (default: a quarter of the
                                            container's memory limit); a body that does not fit: 503 + Retry-After
  --header-timeout / MODELSHIP_HEADER_TIMEOUT_S   seconds for a request's headers (10); --body-timeout /
                                            MODELSHIP_BODY_TIMEOUT_S seconds for its body (60); else 408
  --auth-failure-limit / MODELSHIP_AUTH_FAILURE_LIMIT   failed API keys per client address per minute (10; then 429)
  --decode-threads / MODELSHIP_DECODE_THREADS   threads decoding large JSON bodies and images (1)
  MODELSHIP_API_KEY(_FILE), MODELSHIP_MODEL_KEY(_FILE), MODELSHIP_PREPROCESS (JSON)
`;

/** Run the server until SIGTERM/SIGINT, then drain and exit 0. `--help` prints the flags. */
export async function serveMain(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(SERVE_USAGE);
    return 0;
  }
  const log = (l: string) => process.stderr.write(`[modelship serve] ${l}\n`);
  const opts = serveOptions(argv, process.env, log);
  const srv = await startServer(opts);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log(`${sig} received`);
      void srv.drain().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
