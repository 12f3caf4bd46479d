import type { Runtime } from '../../protocol/runtime';

/**
 * The analysis judged against the stable (issue 23 §2): at a canary step, the canary's numbers beside those of the
 * stable pods serving the same traffic in the same window, as Kayenta and Flagger compare them. A ComparisonSource
 * opens a window; reading it gives what each track served since then. Two sources: Prometheus (prometheus-window.ts)
 * and the pods' own /metrics through the API server (pod-metrics.ts); judge.ts judges what they read.
 */

/** What one track served in the window. */
export interface TrackWindow {
  /** requests served */
  requests: number;
  /** of those, the ones that failed */
  errors: number;
  /** the track's latency in ms, of `latencyKind`; undefined when there is no data */
  p95Ms?: number;
  /** the 95th percentile (from a histogram), or the mean (Triton's counters have no distribution) */
  latencyKind: 'p95' | 'mean';
}

export interface WindowReading {
  canary: TrackWindow;
  stable: TrackWindow;
  /** how the numbers were read: the queries asked, or the pods scraped */
  evidence: string[];
}

export interface OpenWindow {
  /** what each track served since the window was opened: the same wall-clock span for both */
  read(signal?: AbortSignal): Promise<WindowReading>;
}

export interface ComparisonSource {
  /** how the report names it ("Prometheus at http://…", "the pods' /metrics") */
  readonly name: string;
  open(signal?: AbortSignal): Promise<OpenWindow>;
}

export type Track = 'canary' | 'stable';
export const TRACKS: readonly Track[] = ['canary', 'stable'];

/** A label matcher as PromQL writes it: `label="value"`, or with `regex` `label=~"value"` (anchored at both ends). */
export interface Matcher {
  label: string;
  value: string;
  regex?: boolean;
}

/** Samples of one metric whose labels match. */
export interface Series {
  metric: string;
  match: Matcher[];
}

/** Which metrics of a runtime give a track's requests, errors and latency. */
export interface RuntimeMetrics {
  /** requests served: the sum of these counters */
  requests: Series[];
  /** the requests that failed: the sum of these counters */
  errors: Series[];
  /**
   * p95 from a histogram's cumulative buckets (series of `le`), or the mean: sum / count of two counters. `toMs`: the
   * factor from the metric's unit to ms.
   */
  latency: { kind: 'p95'; buckets: Series; toMs: number } | { kind: 'mean'; sum: Series; count: Series; toMs: number };
}

/**
 * The one table of metric names per runtime, for both sources (`model`: the model's name, Triton's `model` label).
 * modelship: its request counter and latency histogram on route infer (5xx are errors; 4xx are the client's).
 * Triton: nv_inference_request_success / _failure (every failure reason is an error), and the mean request latency:
 * nv_inference_request_duration_us over the successful requests, which are the ones it is accumulated for (Triton's
 * metrics guide: a summary's _count matches nv_inference_request_success). nv_inference_count would be the wrong
 * divisor: it counts a batch of n as n inferences. The summaries' quantiles are a sliding window of their own, not
 * this one, and cannot be summed across pods.
 */
export const RUNTIME_METRICS: Record<Runtime, (model: string) => RuntimeMetrics> = {
  modelship: () => {
    const infer: Matcher = { label: 'route', value: 'infer' };
    return {
      requests: [{ metric: 'modelship_requests_total', match: [infer] }],
      errors: [{ metric: 'modelship_requests_total', match: [infer, { label: 'code', value: '5..', regex: true }] }],
      latency: { kind: 'p95', buckets: { metric: 'modelship_request_duration_seconds_bucket', match: [infer] }, toMs: 1000 },
    };
  },
  triton: (model) => {
    const m: Matcher[] = [{ label: 'model', value: model }];
    const success: Series = { metric: 'nv_inference_request_success', match: m };
    const failure: Series = { metric: 'nv_inference_request_failure', match: m };
    return {
      requests: [success, failure],
      errors: [failure],
      latency: { kind: 'mean', sum: { metric: 'nv_inference_request_duration_us', match: m }, count: success, toMs: 0.001 },
    };
  },
};

/** A series as PromQL writes it, after `extra` matchers (namespace, track). */
export function promSeries(s: Series, extra: Matcher[]): string {
  const m = [...extra, ...s.match].map((x) => `${x.label}${x.regex ? '=~' : '='}${JSON.stringify(x.value)}`);
  return `${s.metric}{${m.join(',')}}`;
}

/** Whether a scraped sample belongs to `s` (a regex matcher is anchored, as in PromQL). */
export function matches(s: Series, name: string, labels: Record<string, string>): boolean {
  return name === s.metric && s.match.every((x) => (x.regex ? new RegExp(`^(?:${x.value})$`).test(labels[x.label] ?? '') : labels[x.label] === x.value));
}
