import * as os from 'os';
import { Read, readFile } from './cpus';

export interface MemoryLimit {
  /** bytes this process may use before the kernel (or the kubelet) kills it */
  bytes: number;
  /** where the figure comes from, for the log */
  source: string;
}

/** cgroup v1 writes "no limit" as a page-rounded LONG_MAX; anything this large is no limit */
const UNLIMITED = 2 ** 60;

/**
 * The container's memory limit, read like its CPU quota (cpus.ts): cgroup v2 `memory.max`, else v1
 * `memory/memory.limit_in_bytes`; no limit in either means the machine's memory (os.totalmem).
 */
export function memoryLimit(read: Read = readFile, total: number = os.totalmem()): MemoryLimit {
  const v2 = read('/sys/fs/cgroup/memory.max')?.trim();
  if (v2 !== undefined) {
    const n = Number(v2);
    if (v2 !== 'max' && n > 0 && n < Math.min(total, UNLIMITED)) return { bytes: n, source: 'cgroup v2 memory.max' };
  } else {
    const n = Number(read('/sys/fs/cgroup/memory/memory.limit_in_bytes')?.trim());
    if (n > 0 && n < Math.min(total, UNLIMITED)) return { bytes: n, source: 'cgroup v1 memory.limit_in_bytes' };
  }
  return { bytes: total, source: "the machine's memory (no container limit)" };
}

/**
 * The default bound on request bytes held at once: a quarter of the memory limit (the model, ONNX Runtime's arenas,
 * the decoded tensors and the response need the rest), never below one largest request.
 */
export function defaultInflightBytes(limit: MemoryLimit, maxBodyBytes: number): number {
  return Math.max(maxBodyBytes, Math.floor(limit.bytes / 4));
}

/** Sizes such as 256Mi, 1Gi, 500M or plain bytes. */
export function parseBytes(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(|k|Ki|M|Mi|G|Gi)\s*$/.exec(raw);
  if (!m) return undefined;
  const mult: Record<string, number> = { '': 1, k: 1e3, Ki: 2 ** 10, M: 1e6, Mi: 2 ** 20, G: 1e9, Gi: 2 ** 30 };
  const n = Math.floor(Number(m[1]) * mult[m[2]]);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The pieces a body of unknown length (chunked, or inflated) is stored in, past its first few: a refused or joined
 * body's pieces are kept for the next body (ByteBudget.keep), not left to the garbage collector.
 */
export const PIECE_BYTES = 2 ** 20;

/**
 * Request bytes admitted at once: what is allocated for request bodies. A request reserves its declared
 * Content-Length before its body is read (or, of unknown length, each piece before it is allocated) and gives them
 * back when it is answered; one that does not fit is refused at once, before its body (or more of it) is buffered.
 *
 * It also keeps the pieces of bodies given back (idle, not in `inUse`), for the next body of unknown length: the
 * garbage collector frees dropped buffers only some time later, while a request refused mid-body makes room for the
 * next at once. Idle pieces stay within the bound with the bytes in use (let go of when a reservation needs their
 * room), and are let go of when no request holds any bytes.
 */
export class ByteBudget {
  private used = 0;
  private readonly idle: Buffer[] = [];
  constructor(readonly limit: number) {}

  /**
   * Reserve `n` bytes; false (nothing reserved) when they do not fit. Idle pieces make room as needed, all but one
   * when the bytes are for a piece (`forPiece`: the next `piece()` hands that one out).
   */
  take(n: number, forPiece = false): boolean {
    if (n < 0 || this.used + n > this.limit) return false;
    const reused = forPiece ? 1 : 0;
    while (this.idle.length > reused && this.used + (this.idle.length - reused) * PIECE_BYTES + n > this.limit) this.idle.pop();
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
    if (this.used === 0) this.idle.length = 0;
  }

  /** a piece of PIECE_BYTES, its bytes reserved by the caller (`take(…, true)`): an idle one, else a new one */
  piece(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(PIECE_BYTES);
  }

  /** pieces no body holds any more (their bytes given back): those of PIECE_BYTES kept idle while they fit */
  keep(pieces: readonly Buffer[]): void {
    for (const p of pieces) {
      if (this.used === 0 || this.used + (this.idle.length + 1) * PIECE_BYTES > this.limit) return;
      if (p.length === PIECE_BYTES && p.byteOffset === 0 && p.buffer.byteLength === PIECE_BYTES) this.idle.push(p);
    }
  }

  get inUse(): number {
    return this.used;
  }

  /** bytes in idle pieces */
  get idleBytes(): number {
    return this.idle.length * PIECE_BYTES;
  }
}
