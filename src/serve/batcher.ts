import { splitDetectionTable } from '../protocol/detections';
import { InferenceStatistics, Instant, now } from './statistics';

/**
 * Dynamic batching: concurrent requests are concatenated along the batch axis up to `maxBatchSize` items or
 * until `maxQueueDelayMs` after the first queued request, run once, and the results split back per request.
 * One batch runs at a time; requests that arrive meanwhile form the next batch. A request that finds the server
 * idle runs at once (no queue delay at low load).
 *
 * Outputs are batch-first (split along dim 0 by item), except a detection table (SSD's DetectionOutput: one
 * [1, 1, D, 7] table for the whole batch, rows tagged with their item's index): it is split by that index, each
 * request getting the rows of its own items, the index re-based to its own ([1, 1, d, 7]).
 */
export interface BatchOutput {
  /**
   * The runner's: the whole batch's output, `itemShape` its shape without the batch dim; `detections` marks a
   * detection table (its data the whole [1, 1, D, 7] table). A request's: its part; a detection table's part has
   * its full `shape` ([1, 1, d, 7]), a batch-first output's is [its items, ...itemShape].
   */
  [name: string]: { data: Float32Array; itemShape: number[]; detections?: boolean; shape?: number[] };
}

export type BatchRunner = (input: Float32Array, items: number) => Promise<BatchOutput>;

interface Pending {
  data: Float32Array;
  items: number;
  /** when its request was taken, and when it was queued (the statistics' success and queue durations) */
  began: Instant;
  queued: Instant;
  resolve: (out: BatchOutput) => void;
  reject: (e: unknown) => void;
}

export interface BatcherStats {
  batches: number;
  items: number;
}

export class DynamicBatcher {
  private queue: Pending[] = [];
  private queued = 0;
  private timer: { timeout: NodeJS.Timeout } | { immediate: NodeJS.Immediate } | undefined;
  private running = false;
  readonly stats: BatcherStats = { batches: 0, items: 0 };

  constructor(
    private readonly run: BatchRunner,
    private readonly maxBatchSize: number,
    private readonly maxQueueDelayMs: number,
    private readonly onBatch: (size: number) => void = () => undefined,
    private readonly idleFlush = true,
    /** where each batch run and each request answered (or failed) is counted: the model's, read by GET .../stats */
    private readonly statistics?: InferenceStatistics,
  ) {}

  /**
   * Queue `items` batch items (their values concatenated in `data`); resolves with this request's outputs. `began`:
   * when the request was taken (before its checks), from which its duration in the statistics runs.
   */
  submit(data: Float32Array, items: number, began: Instant = now()): Promise<BatchOutput> {
    return new Promise((resolve, reject) => {
      this.queue.push({ data, items, began, queued: now(), resolve, reject });
      this.queued += items;
      // an idle server runs a lone request at once: waiting the queue delay only pays when others are coming, and
      // under load they are (requests that arrive during a run form the next batch without any timer)
      const idle = this.idleFlush && !this.running && this.queue.length === 1;
      if (this.queued >= this.maxBatchSize || this.maxQueueDelayMs <= 0 || idle) this.flushSoon(0);
      else if (!this.timer) this.flushSoon(this.maxQueueDelayMs);
    });
  }

  private flushSoon(delay: number): void {
    this.cancelTimer();
    const go = () => {
      this.timer = undefined;
      void this.flush();
    };
    // setTimeout(0) waits at least 1 ms in Node; an immediate flush should not
    this.timer = delay <= 0 ? { immediate: setImmediate(go) } : { timeout: setTimeout(go, delay) };
  }

  private cancelTimer(): void {
    if (this.timer && 'timeout' in this.timer) clearTimeout(this.timer.timeout);
    else if (this.timer) clearImmediate(this.timer.immediate);
    this.timer = undefined;
  }

  private async flush(): Promise<void> {
    if (this.running || this.queue.length === 0) return;
    // take requests up to maxBatchSize items (a single larger request runs alone)
    const batch: Pending[] = [];
    let items = 0;
    while (this.queue.length && (batch.length === 0 || items + this.queue[0].items <= this.maxBatchSize)) {
      const p = this.queue.shift()!;
      batch.push(p);
      items += p.items;
    }
    this.queued -= items;
    this.running = true;
    const start = now();
    try {
      const per = batch[0].data.length / batch[0].items;
      const input = batch.length === 1 ? batch[0].data : new Float32Array(items * per);
      if (batch.length > 1) {
        let o = 0;
        for (const p of batch) {
          input.set(p.data, o);
          o += p.data.length;
        }
      }
      this.stats.batches++;
      this.stats.items += items;
      this.onBatch(items);
      const inputDone = now();
      const out = await this.run(input, items);
      const inferDone = now();
      const parts: BatchOutput[] = [];
      let first = 0;
      for (const p of batch) {
        const mine: BatchOutput = {};
        for (const [name, o] of Object.entries(out)) {
          if (o.detections) {
            const rows = splitDetectionTable(o.data, first, p.items);
            mine[name] = { data: rows, itemShape: [1, rows.length / 7, 7], detections: true, shape: [1, 1, rows.length / 7, 7] };
            continue;
          }
          const size = o.data.length / items;
          mine[name] = { data: o.data.slice(first * size, (first + p.items) * size), itemShape: o.itemShape };
        }
        first += p.items;
        parts.push(mine);
      }
      // counted before any request hears its answer: a client that reads the statistics next finds itself there
      this.statistics?.executed(items, batch, { start, inputDone, inferDone, end: now() });
      batch.forEach((p, i) => p.resolve(parts[i]));
    } catch (e) {
      for (const p of batch) {
        this.statistics?.failed(p.began);
        p.reject(e);
      }
    } finally {
      this.running = false;
      // whatever queued during the run has waited long enough
      if (this.queue.length) this.flushSoon(0);
    }
  }

  /** Requests waiting or running. */
  get busy(): boolean {
    return this.running || this.queue.length > 0;
  }
}
