/**
 * The settings of modelship's server (`modelship serve`), defined once: for each, the command-line flag, the
 * environment variable a container is configured by, the default, how its text is read and its line in --help.
 * The server reads its flags and environment from this table (serve/main.ts) and prints its usage from it; the
 * stages that configure a modelship container (the image's ENV, smoke's `docker run -e`, the rollout's pod
 * environment) name the variables through it, e.g. `SERVE_SETTINGS.drainDelay.env`.
 */
import { GRPC_PORT, METRICS_PORT, SERVER_DRAIN_TIMEOUT_S, SERVING_PORT } from './runtime';

/** How a setting's text is read (the server holds one reader per kind, serve/options.ts). */
export type SettingValue =
  /** as given */
  | 'text'
  /** an integer ≥ min */
  | 'integer'
  /** whole seconds ≥ min (the server holds them as milliseconds) */
  | 'seconds'
  /** true/1/yes/on or false/0/no/off */
  | 'boolean'
  /** a size such as 268435456, 256Mi, 1Gi */
  | 'bytes'
  /** a number from 0 to 1 */
  | 'fraction'
  /** a port (an integer ≥ min), or off/none/false for no listener */
  | 'port-or-off'
  /** cpu | cuda | cuda,cpu */
  | 'provider'
  /** a file of lines */
  | 'labels-file'
  /** JSON: resize, channelOrder, mean, scale */
  | 'preprocess-json'
  /** IP addresses and CIDRs, comma-separated (IPv4 and IPv6) */
  | 'address-list'
  /** a secret given as is, or in the file `fileEnv` names */
  | 'api-key'
  /** a 32-byte key, hex or base64, or in the file `fileEnv` names */
  | 'model-key';

export interface ServeSetting {
  /** the field of the server's options (serve/options.ts ServeOptions) this setting sets */
  readonly option: string;
  /** the command-line flag, without its dashes; none where only the environment carries it (secrets, JSON) */
  readonly flag?: string;
  /** other names the flag is taken under */
  readonly aliases?: readonly string[];
  /** the environment variable (a flag wins over it; an empty one counts as unset) */
  readonly env: string;
  /** secrets: the variable naming a file that holds the value instead (a mounted Secret) */
  readonly fileEnv?: string;
  /** the default as it would be written, read like a given value; none: unset (or the reader's own) */
  readonly default?: string;
  readonly value: SettingValue;
  /** integers, seconds and ports: the least value */
  readonly min?: number;
  /** the server does not start without it */
  readonly required?: boolean;
  /** its line in `modelship serve --help` */
  readonly help: string;
}

/** Every setting of `modelship serve`, in the order --help lists them. */
export const SERVE_SETTINGS = {
  model: {
    option: 'modelPath',
    flag: 'model',
    env: 'MODELSHIP_MODEL',
    value: 'text',
    required: true,
    help: 'ONNX file (plain or AES-256-GCM encrypted by the image stage)',
  },
  modelName: {
    option: 'modelName',
    flag: 'model-name',
    aliases: ['name'],
    env: 'MODELSHIP_MODEL_NAME',
    value: 'text',
    default: 'model',
    help: "the model's name in the URL (the action's input is named the same)",
  },
  modelVersion: {
    option: 'modelVersion',
    flag: 'version',
    env: 'MODELSHIP_MODEL_VERSION',
    value: 'text',
    default: '1',
    help: "the model's version in the URL",
  },
  port: { option: 'port', flag: 'port', env: 'PORT', value: 'integer', min: 0, default: String(SERVING_PORT), help: 'the KServe v2 port (0: any free port)' },
  grpcPort: {
    option: 'grpcPort',
    flag: 'grpc-port',
    env: 'MODELSHIP_GRPC_PORT',
    value: 'port-or-off',
    min: 0,
    default: String(GRPC_PORT),
    help: 'KServe v2 over gRPC (inference.GRPCInferenceService), the same model, batcher and API key (0: any free port; off: none)',
  },
  host: { option: 'host', flag: 'host', env: 'HOST', value: 'text', default: '0.0.0.0', help: 'the address to listen on' },
  maxBatchSize: {
    option: 'maxBatchSize',
    flag: 'max-batch-size',
    env: 'MODELSHIP_MAX_BATCH_SIZE',
    value: 'integer',
    min: 1,
    default: '8',
    help: 'items in one executed batch at most (dynamic batching)',
  },
  maxQueueDelay: {
    option: 'maxQueueDelayMs',
    flag: 'max-queue-delay-ms',
    env: 'MODELSHIP_MAX_QUEUE_DELAY_MS',
    value: 'integer',
    min: 0,
    default: '2',
    help: 'milliseconds a request waits for others to batch with',
  },
  idleFlush: {
    option: 'idleFlush',
    flag: 'idle-flush',
    env: 'MODELSHIP_IDLE_FLUSH',
    value: 'boolean',
    default: 'true',
    help: 'true: a request that finds the server idle runs at once; false: it waits the queue delay',
  },
  provider: {
    option: 'provider',
    flag: 'provider',
    env: 'MODELSHIP_PROVIDER',
    value: 'provider',
    default: 'cpu',
    help: 'cpu | cuda (strict: no CUDA provider, no server) | cuda,cpu (CUDA, else the CPU, stated in the log, metadata and metrics)',
  },
  intraOpThreads: {
    option: 'intraOpThreads',
    flag: 'intra-op-threads',
    env: 'MODELSHIP_INTRA_OP_THREADS',
    value: 'integer',
    min: 0,
    default: '0',
    help: 'onnxruntime threads (0: the CPUs the container may use, its cgroup CPU quota included)',
  },
  labels: {
    option: 'labels',
    flag: 'labels',
    env: 'MODELSHIP_LABELS',
    value: 'labels-file',
    help: "a file of class labels, one per line (a detection model's: by label index)",
  },
  detectionThreshold: {
    option: 'detectionThreshold',
    flag: 'detection-threshold',
    env: 'MODELSHIP_DETECTION_THRESHOLD',
    value: 'fraction',
    default: '0.5',
    help: "/detect's minimum score when the request sets none",
  },
  drainDelay: {
    option: 'drainDelayMs',
    flag: 'drain-delay',
    env: 'MODELSHIP_DRAIN_DELAY_S',
    value: 'seconds',
    min: 0,
    default: '0',
    help: 'after SIGTERM, seconds to keep serving with readiness false (every answer closes its connection)',
  },
  drainTimeout: {
    option: 'drainTimeoutMs',
    flag: 'drain-timeout',
    env: 'MODELSHIP_DRAIN_TIMEOUT_S',
    value: 'seconds',
    min: 1,
    default: String(SERVER_DRAIN_TIMEOUT_S),
    help: 'then seconds to finish in-flight requests before cutting them',
  },
  metricsPort: {
    option: 'metricsPort',
    flag: 'metrics-port',
    env: 'MODELSHIP_METRICS_PORT',
    value: 'port-or-off',
    min: 0,
    default: String(METRICS_PORT),
    help: 'a listener for GET /metrics only, without the API key (off: none)',
  },
  maxBodyBytes: {
    option: 'maxBodyBytes',
    flag: 'max-body-bytes',
    env: 'MODELSHIP_MAX_BODY_BYTES',
    value: 'bytes',
    default: '64Mi',
    help: "one request's body at most (larger: 413)",
  },
  maxInflightBytes: {
    option: 'maxInflightBytes',
    flag: 'max-inflight-bytes',
    env: 'MODELSHIP_MAX_INFLIGHT_BYTES',
    value: 'bytes',
    default: '0',
    help: "request bytes held at once (0: a quarter of the container's memory limit); a body that does not fit: 503 + Retry-After",
  },
  headerTimeout: {
    option: 'headerTimeoutMs',
    flag: 'header-timeout',
    env: 'MODELSHIP_HEADER_TIMEOUT_S',
    value: 'seconds',
    min: 1,
    default: '10',
    help: "seconds for a request's headers (else 408)",
  },
  bodyTimeout: {
    option: 'bodyTimeoutMs',
    flag: 'body-timeout',
    env: 'MODELSHIP_BODY_TIMEOUT_S',
    value: 'seconds',
    min: 1,
    default: '60',
    help: 'then seconds for its body (else 408)',
  },
  authFailureLimit: {
    option: 'authFailureLimit',
    flag: 'auth-failure-limit',
    env: 'MODELSHIP_AUTH_FAILURE_LIMIT',
    value: 'integer',
    min: 1,
    default: '10',
    help: 'missing or wrong API keys per client address per minute; past them, its missing or wrong keys get 429 (the right key is always served)',
  },
  trustedProxies: {
    option: 'trustedProxies',
    flag: 'trusted-proxies',
    env: 'MODELSHIP_TRUSTED_PROXIES',
    value: 'address-list',
    default: '',
    help: 'proxies, as addresses or CIDRs (comma-separated): from one, failed API keys count against the client its X-Forwarded-For / Forwarded names (empty: none; every peer is its own client)',
  },
  decodeThreads: {
    option: 'decodeThreads',
    flag: 'decode-threads',
    env: 'MODELSHIP_DECODE_THREADS',
    value: 'integer',
    min: 1,
    default: '1',
    help: 'threads decoding large JSON bodies and images',
  },
  apiKey: {
    option: 'apiKey',
    env: 'MODELSHIP_API_KEY',
    fileEnv: 'MODELSHIP_API_KEY_FILE',
    value: 'api-key',
    help: 'require "Authorization: Bearer <key>" on all routes but health',
  },
  modelKey: {
    option: 'modelKey',
    env: 'MODELSHIP_MODEL_KEY',
    fileEnv: 'MODELSHIP_MODEL_KEY_FILE',
    value: 'model-key',
    help: 'the key of an encrypted model, hex or base64 (never baked into the image)',
  },
  preprocess: {
    option: 'preprocess',
    env: 'MODELSHIP_PREPROCESS',
    value: 'preprocess-json',
    help: "JSON: any of resize, channelOrder, mean, scale (unset: GoogLeNet's)",
  },
} as const satisfies Record<string, ServeSetting>;

export type ServeSettingName = keyof typeof SERVE_SETTINGS;

/** The settings in table order, with their names. */
export const serveSettings = (): [ServeSettingName, ServeSetting][] => Object.entries(SERVE_SETTINGS) as [ServeSettingName, ServeSetting][];

/** How a setting is named in messages: `--flag / ENV`, or the variable alone where there is no flag. */
export const settingLabel = (s: ServeSetting): string => (s.flag ? `--${s.flag} / ${s.env}` : s.env);

/** `modelship serve --help`: every setting, from the table. */
export function serveUsage(): string {
  const entries = serveSettings().map(([, s]) => {
    const names = s.flag ? `--${s.flag}${s.aliases?.length ? ` (alias ${s.aliases.map((a) => `--${a}`).join(', ')})` : ''} / ${s.env}` : s.env;
    const head = `${names}${s.fileEnv ? ` or ${s.fileEnv}` : ''}${s.default !== undefined ? ` (default ${s.default})` : ''}${s.required ? ' (required)' : ''}`;
    return `  ${head}\n      ${s.help}\n`;
  });
  return [
    'modelship serve --model model.onnx [flags]: the KServe v2 server inside the image\n',
    'Each flag may be given as its environment variable instead (a flag wins over it).\n',
    '\n',
    ...entries,
  ].join('');
}
