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
 * Request bytes admitted at once. A request reserves its declared Content-Length before its body is read (or its
 * bytes as they come, when chunked) and gives them back when it is answered; one that does not fit is refused at
 * once, before its body is buffered.
 */
export class ByteBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  /** reserve `n` bytes; false (nothing reserved) when they do not fit */
  take(n: number): boolean {
    if (n < 0 || this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }

  get inUse(): number {
    return this.used;
  }
}
