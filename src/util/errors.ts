/**
 * Every error modelship raises on purpose is a ModelshipError: it names where the problem is
 * (file, line, column, layer, field) so the CLI and the action can print it, annotate it, and exit non-zero.
 * Anything else that escapes is a bug.
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
  | 'cluster'; // the Kubernetes API refused or could not be reached

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
