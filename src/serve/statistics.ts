/**
 * Triton's statistics extension (GET /v2/models/{m}/stats, gRPC ModelStatistics): what the served model has done,
 * counted as Triton counts it, so that perf_analyzer's server-side breakdown of a request's time is true of this
 * server. A request's success or failure and its whole duration; for a request that ran, its parts: the wait in the
 * dynamic batcher (queue), and the batch it ran in (compute_input: the batch's input put together;
 * compute_infer: the run on the inference thread; compute_output: the outputs split back per request), each counted
 * once for every request of the batch, as Triton counts them. inference_count is items, execution_count batches;
 * batch_stats the same three parts per executed batch size, counted once per batch.
 */

/** A count and the nanoseconds spent over it (Triton's StatisticDuration). */
export interface StatisticDuration {
  count: number;
  ns: number;
}

/** Triton's ModelStatistics message, with the proto's field names (HTTP's JSON and gRPC's object alike). */
export interface ModelStatistics {
  name: string;
  version: string;
  /** milliseconds since the epoch of the last inference made (a request answered); 0 before any */
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<'success' | 'fail' | 'queue' | 'compute_input' | 'compute_infer' | 'compute_output' | 'cache_hit' | 'cache_miss', StatisticDuration>;
  batch_stats: { batch_size: number; compute_input: StatisticDuration; compute_infer: StatisticDuration; compute_output: StatisticDuration }[];
  /** device memory the model holds, by kind (Triton's MemoryUsage): none is reported */
  memory_usage: never[];
}

/** An instant on the monotonic clock, in nanoseconds. */
export type Instant = bigint;
export const now = (): Instant => process.hrtime.bigint();

/** When a batch's parts began and ended: its start (the requests leave the queue), input put together, run, outputs split. */
export interface BatchTimes {
  start: Instant;
  inputDone: Instant;
  inferDone: Instant;
  end: Instant;
}

/** A request in a batch: when it began (its inference request was taken) and when it was queued. */
export interface BatchedRequest {
  began: Instant;
  queued: Instant;
}

const zero = (): StatisticDuration => ({ count: 0, ns: 0 });
const add = (d: StatisticDuration, ns: bigint, count = 1): void => {
  d.count += count;
  d.ns += Number(ns);
};

/** The served model's statistics: counted by the inference path (inference.ts, batcher.ts), read by both front doors. */
export class InferenceStatistics {
  private lastInference = 0;
  private inferences = 0;
  private executions = 0;
  private readonly durations: ModelStatistics['inference_stats'] = {
    success: zero(),
    fail: zero(),
    queue: zero(),
    compute_input: zero(),
    compute_infer: zero(),
    compute_output: zero(),
    // (the server keeps no response cache: these stay 0, as Triton's do for a model without one)
    cache_hit: zero(),
    cache_miss: zero(),
  };
  private readonly batches = new Map<number, ModelStatistics['batch_stats'][number]>();

  constructor(
    readonly name: string,
    readonly version: string,
  ) {}

  /**
   * A batch of `items` ran, for `requests`, each answered with its part: one execution, `items` inferences, and
   * every request a success whose duration runs from when it began to the batch's end.
   */
  executed(items: number, requests: readonly BatchedRequest[], t: BatchTimes): void {
    const input = t.inputDone - t.start;
    const infer = t.inferDone - t.inputDone;
    const output = t.end - t.inferDone;
    this.executions++;
    this.inferences += items;
    let b = this.batches.get(items);
    if (!b) this.batches.set(items, (b = { batch_size: items, compute_input: zero(), compute_infer: zero(), compute_output: zero() }));
    add(b.compute_input, input);
    add(b.compute_infer, infer);
    add(b.compute_output, output);
    const s = this.durations;
    for (const r of requests) {
      add(s.success, t.end - r.began);
      add(s.queue, t.start - r.queued);
      add(s.compute_input, input);
      add(s.compute_infer, infer);
      add(s.compute_output, output);
    }
    this.lastInference = Date.now();
  }

  /** A request failed (refused, or its batch failed to run), `began` being when it was taken; no inference was made. */
  failed(began: Instant): void {
    add(this.durations.fail, now() - began);
  }

  /** Triton's ModelStatistics for the model. */
  json(): ModelStatistics {
    const copy = (d: StatisticDuration): StatisticDuration => ({ ...d });
    return {
      name: this.name,
      version: this.version,
      last_inference: this.lastInference,
      inference_count: this.inferences,
      execution_count: this.executions,
      inference_stats: Object.fromEntries(Object.entries(this.durations).map(([k, d]) => [k, copy(d)])) as ModelStatistics['inference_stats'],
      batch_stats: [...this.batches.values()]
        .sort((a, b) => a.batch_size - b.batch_size)
        .map((b) => ({
          batch_size: b.batch_size,
          compute_input: copy(b.compute_input),
          compute_infer: copy(b.compute_infer),
          compute_output: copy(b.compute_output),
        })),
      memory_usage: [],
    };
  }
}
