import { GateFailure, sleep } from '../health';
import { MetricProvider, renderQuery } from '../prometheus';
import type { Gate } from './gate';

/**
 * The optional metrics gate: templated PromQL for the canary (and the stable, for comparison), with thresholds and
 * a minimum sample count, asked of a MetricProvider (Prometheus: prometheus.ts). No data is a failure, never a pass:
 * a canary that received no traffic proves nothing.
 */
export interface MetricThresholds {
  samplesQuery: string;
  errorRateQuery: string;
  latencyQuery: string;
  minSamples: number;
  maxErrorRate: number;
  /** 0: no latency threshold (still reported) */
  maxP99Ms: number;
}

export interface TrackMetrics {
  samples?: number;
  errorRate?: number;
  p99Ms?: number;
}

export interface CanaryMetrics {
  canary: TrackMetrics;
  stable: TrackMetrics;
  /** the canary's queries, as asked */
  queries: string[];
}

/** How long the gate waits for min-samples to be scraped: at most 30 s, and ends 2 s before rollout-timeout. */
const MAX_SCRAPE_WAIT_MS = 30_000;

/**
 * The gate on the canary's metrics. `compareWithStable`: a stable runs beside the canary, and its numbers are
 * reported beside the canary's.
 */
export function metricsGate(
  metrics: MetricProvider,
  thresholds: MetricThresholds,
  vars: { namespace: string; app: string; model: string },
  compareWithStable: boolean,
): Gate {
  return {
    gate: 'prometheus',
    name: 'Prometheus gate',
    async run(ctx) {
      const waitMs = Math.max(0, Math.min(MAX_SCRAPE_WAIT_MS, ctx.remainingMs() - 2000));
      const r = await judgeCanaryMetrics(metrics, thresholds, waitMs, vars, compareWithStable, ctx.signal);
      return {
        passes: true,
        detail: `canary ${describeMetrics(r.canary)}; stable ${compareWithStable ? describeMetrics(r.stable) : 'none'}`,
        evidence: r.queries,
      };
    },
  };
}

/** Ask for the canary's numbers (waiting up to `waitMs` for min-samples), then the stable's, and judge the canary's. */
export async function judgeCanaryMetrics(
  metrics: MetricProvider,
  c: MetricThresholds,
  waitMs: number,
  vars: { namespace: string; app: string; model: string },
  hasStable: boolean,
  signal?: AbortSignal,
): Promise<CanaryMetrics> {
  const q = (t: string, track: string) => renderQuery(t, { ...vars, track });
  const res: CanaryMetrics = { canary: {}, stable: {}, queries: [q(c.samplesQuery, 'canary'), q(c.errorRateQuery, 'canary'), q(c.latencyQuery, 'canary')] };
  const deadline = Date.now() + waitMs;
  for (;;) {
    res.canary.samples = await metrics.measure(q(c.samplesQuery, 'canary'), signal);
    if ((res.canary.samples ?? 0) >= c.minSamples || Date.now() >= deadline) break;
    await sleep(1000, signal);
  }
  if (res.canary.samples === undefined)
    throw new GateFailure(`Prometheus has no samples for the canary (query: ${q(c.samplesQuery, 'canary')}); no data is a failure`, [
      `waited ${Math.round(waitMs / 1000)} s for the scrape`,
    ]);
  if (res.canary.samples < c.minSamples)
    throw new GateFailure(`Prometheus has ${res.canary.samples} samples for the canary, fewer than min-samples ${c.minSamples}`);
  res.canary.errorRate = await metrics.measure(q(c.errorRateQuery, 'canary'), signal);
  res.canary.p99Ms = await metrics.measure(q(c.latencyQuery, 'canary'), signal);
  if (hasStable) {
    res.stable.samples = await metrics.measure(q(c.samplesQuery, 'stable'), signal);
    res.stable.errorRate = await metrics.measure(q(c.errorRateQuery, 'stable'), signal);
    res.stable.p99Ms = await metrics.measure(q(c.latencyQuery, 'stable'), signal);
  }
  const cmp = `canary ${describeMetrics(res.canary)}; stable ${hasStable ? describeMetrics(res.stable) : 'none'}`;
  if (res.canary.errorRate === undefined) throw new GateFailure(`Prometheus returned no error rate for the canary; no data is a failure (${cmp})`);
  if (res.canary.errorRate > c.maxErrorRate)
    throw new GateFailure(`canary error rate ${res.canary.errorRate.toFixed(4)} > max-error-rate ${c.maxErrorRate} (${cmp})`);
  if (c.maxP99Ms > 0) {
    if (res.canary.p99Ms === undefined) throw new GateFailure(`Prometheus returned no p99 latency for the canary; no data is a failure (${cmp})`);
    if (res.canary.p99Ms > c.maxP99Ms) throw new GateFailure(`canary p99 latency ${res.canary.p99Ms.toFixed(1)} ms > max-p99-ms ${c.maxP99Ms} (${cmp})`);
  }
  return res;
}

export const describeMetrics = (m: TrackMetrics) =>
  `samples ${m.samples ?? 'none'}, error rate ${m.errorRate === undefined ? 'none' : m.errorRate.toFixed(4)}, p99 ${m.p99Ms === undefined ? 'none' : `${m.p99Ms.toFixed(1)} ms`}`;
