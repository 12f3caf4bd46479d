import * as fs from 'fs';
import { ModelshipError } from '../util/errors';
import { loadKey } from '../protocol/model-crypto';
import { GOOGLENET_PREPROCESS, Preprocess, parsePreprocess } from '../protocol/pixels';
import { SERVE_SETTINGS, ServeSetting, SettingValue, serveSettings, settingLabel } from '../protocol/serve-settings';
import { addressList } from './client-address';
import { parseProvider, ProviderRequest } from './execution-provider';
import { parseBytes } from './memory';

export interface ServeOptions {
  modelPath: string;
  modelName: string;
  modelVersion: string;
  host: string;
  port: number;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  /** run a request that finds the server idle at once (true), or always wait the queue delay for company (false) */
  idleFlush: boolean;
  /** cpu, cuda (strict: no CUDA provider, no server) or cuda,cpu (fall back to the CPU, and say so) */
  provider: ProviderRequest;
  /** onnxruntime intra-op threads; 0 = the CPUs this container may use (affinity and cgroup CPU quota) */
  intraOpThreads: number;
  apiKey?: string;
  modelKey?: Buffer;
  maxBodyBytes: number;
  /** request bytes held at once (bodies being read or waiting for their answer); 0 = a quarter of the memory limit */
  maxInflightBytes: number;
  /** a request's headers must arrive within this; its body within bodyTimeoutMs after them (else 408) */
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  /** missing or wrong API keys per client address per window; past them, its missing or wrong keys get 429 */
  authFailureLimit: number;
  /** that window (tests only; default a minute) */
  authFailureWindowMs?: number;
  /**
   * proxies (addresses, CIDRs) whose X-Forwarded-For / Forwarded are believed: a request from one is counted against
   * the forwarded client address (client-address.ts); none: against its peer's
   */
  trustedProxies: string[];
  /** a second listener that serves only GET /metrics, without the API key (for the scrape configuration); undefined = none */
  metricsPort?: number;
  /** KServe v2 over gRPC (inference.GRPCInferenceService) on this port; undefined = none */
  grpcPort?: number;
  /** threads that decode large JSON bodies and images (the main thread only speaks HTTP) */
  decodeThreads: number;
  preprocess: Preprocess;
  labels?: string[];
  topK: number;
  /** /detect: the score a detection needs when the request gives no `?threshold=` */
  detectionThreshold: number;
  /** after SIGTERM: keep serving this long with readiness false (load balancers stop sending), then close */
  drainDelayMs: number;
  /** then wait at most this long for in-flight requests; connections still open after it (stalled clients) are cut */
  drainTimeoutMs: number;
  log: (line: string) => void;
}

/** What a setting of each kind reads into. */
interface SettingValues {
  text: string;
  integer: number;
  seconds: number;
  boolean: boolean;
  bytes: number;
  fraction: number;
  'port-or-off': number | undefined;
  provider: ProviderRequest;
  'labels-file': string[] | undefined;
  'preprocess-json': Preprocess;
  'address-list': string[];
  'api-key': string | undefined;
  'model-key': Buffer | undefined;
}

type Settings = typeof SERVE_SETTINGS;
/** (compile time) the settings whose kind reads into something their option cannot hold: none */
type Mismatched = { [K in keyof Settings]: SettingValues[Settings[K]['value']] extends ServeOptions[Settings[K]['option']] ? never : K }[keyof Settings];
/** (compile time) the options no setting sets: the top-k default of /classify, the log, and the tests' failed-key window */
type Unset = Exclude<keyof ServeOptions, Settings[keyof Settings]['option']>;
const settingsFitOptions: [Mismatched, Unset] extends [never, 'topK' | 'log' | 'authFailureWindowMs'] ? true : never = true;
void settingsFitOptions;

/** A setting's text, as given (undefined: neither the flag nor the environment gives it), into its value. */
type Reader<V> = (text: string | undefined, setting: ServeSetting, env: NodeJS.ProcessEnv) => V;

const flagOf = (s: ServeSetting): string => s.flag ?? s.env;

/** The integer in `text`, at least the setting's min. */
const integerOf = (text: string, s: ServeSetting): number => {
  const min = s.min ?? 0;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new ModelshipError('input', `${settingLabel(s)} must be an integer ≥ ${min}, got "${text}"`, { field: flagOf(s) });
  return n;
};

/** One reader per kind of setting; a given text, else the setting's default (read the same way), else unset. */
const READERS: { [K in SettingValue]: Reader<SettingValues[K]> } = {
  text: (text, s) => {
    if (!text && s.required) throw new ModelshipError('input', `serve needs --${s.flag} or ${s.env}`, { field: flagOf(s) });
    return text ?? s.default ?? '';
  },
  integer: (text, s) => integerOf(text ?? s.default ?? '0', s),
  seconds: (text, s) => 1000 * integerOf(text ?? s.default ?? '0', s),
  boolean: (text, s) => {
    const v = text ?? s.default ?? 'false';
    if (/^(true|1|yes|on)$/i.test(v)) return true;
    if (/^(false|0|no|off)$/i.test(v)) return false;
    throw new ModelshipError('input', `${settingLabel(s)} must be true or false, got "${v}"`, { field: flagOf(s) });
  },
  bytes: (text, s) => {
    const v = text ?? s.default ?? '0';
    const n = parseBytes(v);
    if (n === undefined)
      throw new ModelshipError('input', `${settingLabel(s)} must be a size in bytes (e.g. 268435456, 256Mi, 1Gi), got "${v}"`, { field: flagOf(s) });
    return n;
  },
  fraction: (text, s) => {
    const v = text ?? s.default ?? '0';
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n <= 1))
      throw new ModelshipError('input', `${settingLabel(s)} must be a number from 0 to 1, got "${v}"`, { field: flagOf(s) });
    return n;
  },
  'port-or-off': (text, s) => {
    const v = text ?? s.default;
    return v === undefined || /^(off|none|false)$/i.test(v) ? undefined : integerOf(v, s);
  },
  provider: (text, s) => parseProvider(text ?? s.default ?? 'cpu', flagOf(s)),
  'labels-file': (text) =>
    text
      ? fs
          .readFileSync(text, 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
      : undefined,
  'preprocess-json': (text, s) => {
    if (!text) return GOOGLENET_PREPROCESS;
    try {
      return parsePreprocess(text, GOOGLENET_PREPROCESS);
    } catch (e) {
      throw new ModelshipError('input', `${settingLabel(s)}: ${(e as Error).message}`);
    }
  },
  'address-list': (text, s) => {
    const entries = (text ?? s.default ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    // (refused here, at start, naming the setting; the server makes its list from the same entries)
    addressList(entries, s);
    return entries;
  },
  'api-key': (text, s, env) => {
    if (text) return text;
    const file = s.fileEnv && env[s.fileEnv];
    return file ? fs.readFileSync(file, 'utf8').trim() : undefined;
  },
  'model-key': (_text, s, env) => loadKey(env, s.env, s.fileEnv ? env[s.fileEnv] : undefined),
};

/**
 * The server's options from its settings: `given` is a setting's text from the command line, if there; else its
 * environment variable (empty counts as unset); else its default.
 */
export function readSettings(given: (s: ServeSetting) => string | undefined, env: NodeJS.ProcessEnv, log: ServeOptions['log']): ServeOptions {
  const options: Record<string, unknown> = { ...DEFAULT_SERVE };
  for (const [, s] of serveSettings()) {
    const read = READERS[s.value] as Reader<unknown>;
    options[s.option] = read(given(s) ?? (env[s.env] || undefined), s, env);
  }
  return { ...(options as Omit<ServeOptions, 'log'>), log };
}

/**
 * The options startServer starts from: each setting's default, the top 5 classes, and no metrics-only or gRPC
 * listener (`modelship serve` opens both by default; a server started in a process of its own, as the tests start
 * dozens, only when asked).
 */
export const DEFAULT_SERVE: Omit<ServeOptions, 'modelPath' | 'log'> = (() => {
  const defaults: Record<string, unknown> = { topK: 5 };
  for (const [name, s] of serveSettings()) {
    if (s.required || name === 'metricsPort' || name === 'grpcPort') continue;
    const value = (READERS[s.value] as Reader<unknown>)(undefined, s, {});
    if (value !== undefined) defaults[s.option] = value;
  }
  return defaults as Omit<ServeOptions, 'modelPath' | 'log'>;
})();
