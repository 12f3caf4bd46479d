import { GateFailure, sleep } from './health';
import type { Runtime } from '../protocol/runtime';

/**
 * The optional metrics gate: templated PromQL for the canary (and the stable, for comparison), with thresholds and
 * a minimum sample count. No data is a failure, never a pass: a canary that received no traffic proves nothing.
 */
export interface PromGateConfig {
  url: string;
  samplesQuery: string;
  errorRateQuery: string;
  latencyQuery: string;
  minSamples: number;
  maxErrorRate: number;
  /** 0: no latency threshold (still reported) */
  maxP99Ms: number;
  /** how long to wait for min-samples to be scraped */
  waitMs: number;
}

const SEL = 'namespace="{{namespace}}",track="{{track}}",route="infer"';
/** Triton's per-model metrics (its image's CMD enables the latency summaries: --metrics-config summary_latencies=true) */
const TSEL = 'namespace="{{namespace}}",track="{{track}}",model="{{model}}"';
const TRITON_REQUESTS = `(sum(nv_inference_request_success{${TSEL}}) + sum(nv_inference_request_failure{${TSEL}}))`;

/**
 * The queries used when prometheus-*-query is not given, per runtime: requests served, the share that failed, and
 * p99 latency in ms. modelship: its request counter and latency histogram (route infer; 5xx are errors). Triton:
 * nv_inference_request_success / _failure (every failure reason), and the 0.99 quantile of its request latency summary
 * (a summary cannot be summed across pods: the worst pod's).
 */
export const DEFAULT_QUERIES: Record<Runtime, { samples: string; errorRate: string; latency: string }> = {
  modelship: {
    samples: `sum(modelship_requests_total{${SEL}})`,
    errorRate: `(sum(modelship_requests_total{${SEL},code=~"5.."}) or vector(0)) / sum(modelship_requests_total{${SEL}})`,
    latency: `1000 * histogram_quantile(0.99, sum by (le) (modelship_request_duration_seconds_bucket{${SEL}}))`,
  },
  triton: {
    samples: TRITON_REQUESTS,
    errorRate: `sum(nv_inference_request_failure{${TSEL}}) / ${TRITON_REQUESTS}`,
    latency: `max(nv_inference_request_summary_us{${TSEL},quantile="0.99"}) / 1000`,
  },
};

/** Fill {{namespace}}, {{app}}, {{track}}, {{model}} in a query template; an unknown placeholder is an error. */
export function renderQuery(template: string, vars: Record<string, string>): string {
  return template.replace(/\{\{\s*([a-z]+)\s*\}\}/g, (_, k: string) => {
    if (!(k in vars)) throw new GateFailure(`PromQL template uses {{${k}}}; known: ${Object.keys(vars).map((v) => `{{${v}}}`).join(', ')}`);
    return vars[k];
  });
}

/** One instant query; undefined when the result is empty or not a number (no data). */
export async function promQuery(url: string, query: string, signal?: AbortSignal): Promise<number | undefined> {
  let res: Response;
  try {
    res = await fetch(`${url.replace(/\/$/, '')}/api/v1/query?${new URLSearchParams({ query })}`, { signal });
  } catch (e) {
    throw new GateFailure(`Prometheus at ${url} is unreachable: ${(e as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as { status?: string; error?: string; data?: { resultType: string; result: { value: [number, string] }[] | [number, string] } };
  if (res.status !== 200 || body.status !== 'success') throw new GateFailure(`Prometheus query failed (HTTP ${res.status}): ${body.error ?? 'no error message'}; query: ${query}`);
  const d = body.data!;
  const raw = d.resultType === 'scalar' ? (d.result as [number, string])[1] : (d.result as { value: [number, string] }[])[0]?.value[1];
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(n) ? n : undefined;
}

export interface PromGateResult {
  canary: { samples?: number; errorRate?: number; p99Ms?: number };
  stable: { samples?: number; errorRate?: number; p99Ms?: number };
  queries: string[];
}

export async function prometheusGate(c: PromGateConfig, vars: { namespace: string; app: string; model: string }, hasStable: boolean, signal?: AbortSignal): Promise<PromGateResult> {
  const q = (t: string, track: string) => renderQuery(t, { ...vars, track });
  const res: PromGateResult = { canary: {}, stable: {}, queries: [q(c.samplesQuery, 'canary'), q(c.errorRateQuery, 'canary'), q(c.latencyQuery, 'canary')] };
  const deadline = Date.now() + c.waitMs;
  for (;;) {
    res.canary.samples = await promQuery(c.url, q(c.samplesQuery, 'canary'), signal);
    if ((res.canary.samples ?? 0) >= c.minSamples || Date.now() >= deadline) break;
    await sleep(1000, signal);
  }
  if (res.canary.samples === undefined) throw new GateFailure(`Prometheus has no samples for the canary (query: ${q(c.samplesQuery, 'canary')}); no data is a failure`, [`waited ${Math.round(c.waitMs / 1000)} s for the scrape`]);
  if (res.canary.samples < c.minSamples) throw new GateFailure(`Prometheus has ${res.canary.samples} samples for the canary, fewer than min-samples ${c.minSamples}`);
  res.canary.errorRate = await promQuery(c.url, q(c.errorRateQuery, 'canary'), signal);
  res.canary.p99Ms = await promQuery(c.url, q(c.latencyQuery, 'canary'), signal);
  if (hasStable) {
    res.stable.samples = await promQuery(c.url, q(c.samplesQuery, 'stable'), signal);
    res.stable.errorRate = await promQuery(c.url, q(c.errorRateQuery, 'stable'), signal);
    res.stable.p99Ms = await promQuery(c.url, q(c.latencyQuery, 'stable'), signal);
  }
  const cmp = `canary ${fmt(res.canary)}; stable ${hasStable ? fmt(res.stable) : 'none'}`;
  if (res.canary.errorRate === undefined) throw new GateFailure(`Prometheus returned no error rate for the canary; no data is a failure (${cmp})`);
  if (res.canary.errorRate > c.maxErrorRate) throw new GateFailure(`canary error rate ${res.canary.errorRate.toFixed(4)} > max-error-rate ${c.maxErrorRate} (${cmp})`);
  if (c.maxP99Ms > 0) {
    if (res.canary.p99Ms === undefined) throw new GateFailure(`Prometheus returned no p99 latency for the canary; no data is a failure (${cmp})`);
    if (res.canary.p99Ms > c.maxP99Ms) throw new GateFailure(`canary p99 latency ${res.canary.p99Ms.toFixed(1)} ms > max-p99-ms ${c.maxP99Ms} (${cmp})`);
  }
  return res;
}

export const fmt = (m: { samples?: number; errorRate?: number; p99Ms?: number }) =>
  `samples ${m.samples ?? 'none'}, error rate ${m.errorRate === undefined ? 'none' : m.errorRate.toFixed(4)}, p99 ${m.p99Ms === undefined ? 'none' : `${m.p99Ms.toFixed(1)} ms`}`;
