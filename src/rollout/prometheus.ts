import { GateFailure } from './health';
import type { Runtime } from '../protocol/runtime';

/**
 * Where the metrics gate's numbers come from (gates/prometheus.ts judges them): a MetricProvider answers one query
 * with one number, as Argo Rollouts' metric providers do for an analysis; Prometheus is the one modelship has. Also
 * here: the queries, templated per track, that the gate asks when prometheus-*-query is not given.
 */
export interface MetricProvider {
  /** the value of `query` now; undefined when there is no data (an empty result, not a number) */
  measure(query: string, signal?: AbortSignal): Promise<number | undefined>;
}

/** Prometheus's HTTP API at `url`: instant queries. */
export function prometheusProvider(url: string): MetricProvider {
  return { measure: (query, signal) => promQuery(url, query, signal) };
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
    if (k in vars) return vars[k];
    const known = Object.keys(vars).map((v) => `{{${v}}}`);
    throw new GateFailure(`PromQL template uses {{${k}}}; known: ${known.join(', ')}`);
  });
}

/** One instant query; undefined when the result is empty or not a number (no data). */
export async function promQuery(url: string, query: string, signal?: AbortSignal): Promise<number | undefined> {
  let res: Response;
  try {
    res = await fetch(`${url.replace(/\/$/, '')}/api/v1/query?${new URLSearchParams({ query }).toString()}`, { signal });
  } catch (e) {
    throw new GateFailure(`Prometheus at ${url} is unreachable: ${(e as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as {
    status?: string;
    error?: string;
    data?: { resultType: string; result: { value: [number, string] }[] | [number, string] };
  };
  if (res.status !== 200 || body.status !== 'success')
    throw new GateFailure(`Prometheus query failed (HTTP ${res.status}): ${body.error ?? 'no error message'}; query: ${query}`);
  const d = body.data!;
  const raw = d.resultType === 'scalar' ? (d.result as [number, string])[1] : (d.result as { value: [number, string] }[])[0]?.value[1];
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(n) ? n : undefined;
}
