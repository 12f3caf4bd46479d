import type { TrackWindow } from './window';

/** How far the canary may be from the stable that serves the same traffic in the same window. */
export interface ComparisonThresholds {
  /** requests each track must have served before there is a verdict (fewer: keep waiting; never a pass) */
  minSamples: number;
  /** the largest canary error rate minus the stable's */
  maxErrorRateIncrease: number;
  /** the largest canary latency over the stable's (p95, or Triton's mean) */
  maxLatencyRatio: number;
  /** the ratio is judged only when the canary is slower than the stable by more than this many ms */
  latencyNoiseFloorMs: number;
}

/**
 * Defaults that do not fail a healthy canary under load:
 * - minSamples 100 = 1 / maxErrorRateIncrease: at the minimum, one stray 5xx on the canary (a connection cut while a
 *   pod drains) is an increase of exactly 0.01, not more: one error alone never fails it, two do. A p95 of 100
 *   requests is their 95th, not (as with 20) all but the slowest one.
 * - maxErrorRateIncrease 0.01: a point of errors more than the stable's, Flagger's default success rate of 99%
 *   taken relative to the stable instead of absolute.
 * - maxLatencyRatio 2: twice as slow as the stable. Measured on the 2-CPU lab with other test files running beside
 *   it (load average ~6), an identical canary's new pods read up to 1.8x the stable's p95 in one window (their first
 *   seconds: JIT, allocations; the stable's pods are warm); 1.5 rolled it back. A canary given a tenth of the
 *   stable's CPU read 5.9x at the least, and a model that lost its GPU, its batching or its TensorRT plan is slower
 *   than 2x too.
 * - latencyNoiseFloorMs 10: at millisecond latencies a ratio means little. modelship's histogram buckets are 1, 2.5,
 *   5, 10 ms wide up to 10 ms, and a p95 interpolated within one can move by a bucket's width with a handful of
 *   requests; a CPU-throttled pod, a GC pause or a busy node adds milliseconds that say nothing of the model. A canary
 *   at 4 ms beside a stable at 2 ms (ratio 2) is no regression anyone serves; at 40 ms beside 20 ms it is.
 */
export const DEFAULT_COMPARISON_THRESHOLDS: ComparisonThresholds = {
  minSamples: 100,
  maxErrorRateIncrease: 0.01,
  maxLatencyRatio: 2,
  latencyNoiseFloorMs: 10,
};

export interface Judgement {
  /** wait: too few requests on a track yet, no verdict */
  verdict: 'pass' | 'fail' | 'wait';
  /** both tracks' numbers, and why */
  detail: string;
}

const rate = (t: TrackWindow) => (t.requests > 0 ? t.errors / t.requests : 0);
const count = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
const known = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);
const ms = (t: TrackWindow) => (!known(t.p95Ms) ? `${t.latencyKind} none` : `${t.latencyKind} ${t.p95Ms.toFixed(1)} ms`);

/** `canary 412 requests, error rate 0.0000, p95 3.1 ms; stable 1650 requests, error rate 0.0000, p95 2.9 ms` */
export function describeComparison(canary: TrackWindow, stable: TrackWindow): string {
  const one = (name: string, t: TrackWindow) => `${name} ${count(t.requests)} requests, error rate ${rate(t).toFixed(4)}, ${ms(t)}`;
  return `${one('canary', canary)}; ${one('stable', stable)}`;
}

/**
 * The canary judged against the stable (pure): enough requests on both tracks, an error rate no more than
 * maxErrorRateIncrease above the stable's, a latency no more than maxLatencyRatio times the stable's (beyond the noise
 * floor). No latency on a track that served enough requests is a failure, never a pass: it proves nothing.
 */
export function judgeComparison(canary: TrackWindow, stable: TrackWindow, t: ComparisonThresholds): Judgement {
  const numbers = describeComparison(canary, stable);
  if (!(canary.requests >= t.minSamples && stable.requests >= t.minSamples))
    return {
      verdict: 'wait',
      detail: `too few samples: canary ${count(canary.requests)}, stable ${count(stable.requests)}, fewer than min-samples ${t.minSamples}`,
    };
  const increase = rate(canary) - rate(stable);
  if (increase > t.maxErrorRateIncrease)
    return {
      verdict: 'fail',
      detail: `canary error rate ${rate(canary).toFixed(4)} is ${increase.toFixed(4)} above the stable's ${rate(stable).toFixed(4)}, more than max-error-rate-increase ${t.maxErrorRateIncrease} (${numbers})`,
    };
  if (canary.latencyKind !== stable.latencyKind)
    return {
      verdict: 'fail',
      detail: `the tracks' latencies are not comparable: the canary's is a ${canary.latencyKind}, the stable's a ${stable.latencyKind} (${numbers})`,
    };
  const kind = canary.latencyKind;
  const c = canary.p95Ms;
  const s = stable.p95Ms;
  if (!known(c) || !known(s)) {
    const missing = [!known(c) && 'canary', !known(s) && 'stable'].filter(Boolean);
    return { verdict: 'fail', detail: `no ${kind} latency for the ${missing.join(' and the ')}; no data is a failure (${numbers})` };
  }
  const ratio = s > 0 ? c / s : c > 0 ? Infinity : 1;
  const ratioText = Number.isFinite(ratio) ? ratio.toFixed(2) : '∞';
  if (ratio <= t.maxLatencyRatio) return { verdict: 'pass', detail: `${numbers} (ratio ${ratioText} ≤ ${t.maxLatencyRatio})` };
  if (c - s <= t.latencyNoiseFloorMs)
    return {
      verdict: 'pass',
      detail: `${numbers} (ratio ${ratioText} > ${t.maxLatencyRatio}, but the canary is ${(c - s).toFixed(1)} ms slower: within the ${t.latencyNoiseFloorMs} ms noise floor)`,
    };
  return {
    verdict: 'fail',
    detail: `canary ${kind} latency ${c.toFixed(1)} ms is ${ratioText}× the stable's ${s.toFixed(1)} ms, more than max-latency-ratio ${t.maxLatencyRatio} (${numbers})`,
  };
}
