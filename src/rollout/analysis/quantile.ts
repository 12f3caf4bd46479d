/** One cumulative bucket of a histogram: the observations ≤ `le`. */
export interface Bucket {
  le: number;
  count: number;
}

/**
 * The q-quantile of a histogram's cumulative buckets as PromQL's histogram_quantile computes it, so the pods' own
 * /metrics and Prometheus give the same p95 for the same counts: linear interpolation within the bucket the rank falls
 * in (the first bucket starting at 0), the last finite bound when it falls in the +Inf bucket. Undefined when there
 * is nothing to say: no +Inf bucket, fewer than two buckets, no observations.
 */
export function histogramQuantile(q: number, buckets: Bucket[]): number | undefined {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  if (b.length < 2 || b[b.length - 1].le !== Infinity) return undefined;
  // counts summed from several pods, or deltas read a moment apart, can dip: PromQL makes them monotonic the same way
  for (let i = 1; i < b.length; i++) if (b[i].count < b[i - 1].count) b[i] = { ...b[i], count: b[i - 1].count };
  const total = b[b.length - 1].count;
  if (!(total > 0)) return undefined;
  if (q <= 0) return -Infinity;
  if (q >= 1) return Infinity;
  const rank = q * total;
  const i = b.slice(0, -1).findIndex((x) => x.count >= rank);
  if (i === -1) return b[b.length - 2].le; // in the +Inf bucket: its lower bound is all that is known
  if (i === 0 && b[0].le <= 0) return b[0].le;
  const start = i === 0 ? 0 : b[i - 1].le;
  const below = i === 0 ? 0 : b[i - 1].count;
  return start + ((b[i].le - start) * (rank - below)) / (b[i].count - below);
}
