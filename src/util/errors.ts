/**
 * Every error modelship raises on purpose is a ModelshipError: it names where the problem is
 * (file, line, column, layer, field) so the CLI and the action can print it, annotate it, and exit non-zero.
 * Anything else that escapes is a bug, unless it is another system's failure (externalFailure, below: the GitHub
 * API, the network), which is reported as that system's.
 */
export interface ErrorLocation {
  file?: string;
  line?: number;
  column?: number;
  layer?: string;
  field?: string;
}

export type ErrorCode =
  | 'input' // bad configuration / flag / action input
  | 'syntax' // prototxt text-format syntax
  | 'schema' // unknown field, wrong type for a field
  | 'binary' // unreadable binary (caffemodel, npy)
  | 'unsupported' // unsupported layer or parameter
  | 'graph' // structural problem (missing bottom, shape mismatch)
  | 'weights' // missing or mismatched weights
  | 'parity' // numeric parity failure
  | 'io' // file system
  | 'cluster' // the Kubernetes API refused or could not be reached
  | 'verify'; // an image's signature or attestations did not verify (cosign), or broke the attestation policy

export class ModelshipError extends Error {
  readonly code: ErrorCode;
  readonly location: ErrorLocation;

  constructor(code: ErrorCode, message: string, location: ErrorLocation = {}) {
    super(ModelshipError.format(message, location));
    this.name = 'ModelshipError';
    this.code = code;
    this.location = location;
  }

  /** `file:line:col: layer "x": message` — the shape compilers use, so editors and annotations can jump to it. */
  static format(message: string, loc: ErrorLocation): string {
    let where = '';
    if (loc.file) {
      where = loc.file;
      if (loc.line !== undefined) where += `:${loc.line}`;
      if (loc.line !== undefined && loc.column !== undefined) where += `:${loc.column}`;
      where += ': ';
    }
    const layer = loc.layer !== undefined ? `layer "${loc.layer}": ` : '';
    return `${where}${layer}${message}`;
  }
}

export function isModelshipError(e: unknown): e is ModelshipError {
  return e instanceof ModelshipError;
}

/**
 * A failure of another system, not of modelship: what the action and the CLI report as that system's failure (and
 * what a stage may downgrade to a warning once its own work is done), instead of "internal error".
 */
export interface ExternalFailure {
  /** the system at fault: "GitHub API" (an octokit request) or "network" (a connection that failed) */
  system: 'GitHub API' | 'network';
  /** the request, `METHOD /path`, where known */
  call?: string;
  /** the HTTP status the system answered; undefined when no answer came */
  status?: number;
  /** the one-line reason: the system's message, or the network error's */
  detail: string;
  /** `<system>: <call> answered <status>: <detail>` or `<system>: <call> failed: <detail>` */
  message: string;
}

/** Error codes of a connection that failed (Node's net/dns/tls, undici's): the other end, not modelship. */
const NETWORK_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

type Loose = {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  status?: unknown;
  response?: unknown;
  request?: { method?: unknown; url?: unknown };
  cause?: unknown;
  errors?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
};

/** The first error in `e`'s cause chain (and an AggregateError's errors) with a network error code. */
function networkCause(e: unknown, depth = 0): (Loose & { code: string }) | undefined {
  if (!e || typeof e !== 'object' || depth > 6) return undefined;
  const x = e as Loose;
  if (typeof x.code === 'string' && NETWORK_CODES.has(x.code)) return x as Loose & { code: string };
  if (Array.isArray(x.errors))
    for (const inner of x.errors) {
      const found = networkCause(inner, depth + 1);
      if (found) return found;
    }
  return networkCause(x.cause, depth + 1);
}

/** A network error in one line: its message, else (Node's AggregateError has none) its first attempt's, or its code and address. */
function networkDetail(n: Loose & { code: string }): string {
  if (typeof n.message === 'string' && n.message) return n.message;
  const first = Array.isArray(n.errors) ? (n.errors[0] as Loose | undefined) : undefined;
  if (first && typeof first.message === 'string' && first.message) return first.message;
  const where =
    typeof n.hostname === 'string'
      ? n.hostname
      : typeof n.address === 'string'
        ? `${n.address}${typeof n.port === 'number' || typeof n.port === 'string' ? `:${n.port}` : ''}`
        : '';
  return `${n.code}${where ? ` ${where}` : ''}`;
}

/**
 * Whether `e` is another system's failure, and which: an octokit RequestError (`name` HttpError, with the request;
 * answered with a status, or no answer at all, which octokit also reports as 500 but without a response) is the
 * GitHub API's; an error whose cause chain carries a network error code (ENOTFOUND, ECONNREFUSED, ...) is the
 * network's. A ModelshipError or anything else is undefined: modelship's own (a ModelshipError names its place).
 */
export function externalFailure(e: unknown): ExternalFailure | undefined {
  if (!e || typeof e !== 'object' || e instanceof ModelshipError) return undefined;
  const x = e as Loose;
  if (x.name === 'HttpError' && typeof x.status === 'number' && x.request && typeof x.request.url === 'string') {
    let path = x.request.url;
    try {
      path = new URL(path).pathname;
    } catch {
      /* keep it whole */
    }
    const call = `${typeof x.request.method === 'string' ? x.request.method : 'GET'} ${path}`;
    const text = (typeof x.message === 'string' ? x.message : '').replace(/ - https?:\/\/\S+/, '').trim();
    if (x.response) {
      const detail = text || `HTTP ${x.status}`;
      return { system: 'GitHub API', call, status: x.status, detail, message: `GitHub API: ${call} answered ${x.status}: ${detail}` };
    }
    const n = networkCause(x.cause);
    const detail = n ? networkDetail(n) : text || 'no answer';
    return { system: 'GitHub API', call, detail, message: `GitHub API: ${call} failed: ${detail}` };
  }
  const n = networkCause(e);
  if (n) {
    const detail = networkDetail(n);
    return { system: 'network', detail, message: `network: ${detail}` };
  }
  return undefined;
}
