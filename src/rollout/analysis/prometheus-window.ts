import type { MetricProvider } from '../prometheus';
import type { Runtime } from '../../protocol/runtime';
import { ComparisonSource, Matcher, promSeries, RUNTIME_METRICS, RuntimeMetrics, Series, Track, TrackWindow, TRACKS } from './window';

/**
 * The comparison's numbers from Prometheus (prometheus-url): open notes the time; read asks, per track, instant
 * queries of how much the counters grew over the time since, rounded up to whole seconds (growth below). The series
 * are picked by the labels the default metrics gate uses (prometheus.ts's DEFAULT_QUERIES; the lab's pod discovery
 * attaches them): namespace and track. The window is at least two scrape intervals: a series needs two samples inside
 * its range to show growth, and a shorter one reads nothing however much was served. Both tracks are read over the
 * same range, so a window widened to two scrapes still compares like with like.
 */
export interface PrometheusWindowOptions {
  metrics: MetricProvider;
  /** how Prometheus is named in the report (its URL) */
  url: string;
  namespace: string;
  runtime: Runtime;
  model: string;
  /** the scrape interval assumed of the Prometheus that scrapes the pods, in seconds */
  scrapeIntervalS?: number;
  /** the clock (tests) */
  now?: () => number;
}

export const DEFAULT_SCRAPE_INTERVAL_S = 10;

/**
 * How much the counters of `series` grew in the last `windowS` seconds, per series, from the samples inside that
 * range alone: the value now minus the least in the range (after a counter reset, what it counted since). Not
 * increase(): it extrapolates a series that starts inside its range back to 0, and every new canary pod's does (its
 * first scrape comes after the window opened), so the pod's requests from before the window came with it, its cold
 * start and the golden requests: on the lab an identical canary read p95 44.8 ms beside the stable's 24.0 ms (1.87×,
 * rolled back), where the samples inside the window say 22.4 ms. The pods' own /metrics count from the window's opening
 * too (pod-metrics.ts).
 */
const growth = (series: string, windowS: number) => `${series} - min_over_time(${series}[${windowS}s])`;

/** The queries of one track over a window of `windowS` seconds. */
export function windowQueries(m: RuntimeMetrics, namespace: string, track: Track, windowS: number): { requests: string; errors: string; latency: string } {
  const sel: Matcher[] = [
    { label: 'namespace', value: namespace },
    { label: 'track', value: track },
  ];
  const inc = (s: Series) => `sum(${growth(promSeries(s, sel), windowS)})`;
  // a counter no pod has exported yet (no 5xx so far) is no series at all, not a zero
  const total = (ss: Series[]) => ss.map((s) => `(${inc(s)} or vector(0))`).join(' + ');
  const l = m.latency;
  const latency =
    l.kind === 'p95'
      ? `${l.toMs} * histogram_quantile(0.95, sum by (le) (${growth(promSeries(l.buckets, sel), windowS)}))`
      : `${l.toMs} * ${inc(l.sum)} / ${inc(l.count)}`;
  return { requests: total(m.requests), errors: total(m.errors), latency };
}

export function prometheusWindowSource(o: PrometheusWindowOptions): ComparisonSource {
  const now = o.now ?? Date.now;
  const scrapeS = o.scrapeIntervalS ?? DEFAULT_SCRAPE_INTERVAL_S;
  const m = RUNTIME_METRICS[o.runtime](o.model);
  return {
    name: `Prometheus at ${o.url}`,
    open() {
      const opened = now();
      return Promise.resolve({
        async read(signal?: AbortSignal) {
          const windowS = Math.max(Math.ceil((now() - opened) / 1000), 2 * scrapeS);
          const queries = TRACKS.map((track) => windowQueries(m, o.namespace, track, windowS));
          const read = async (q: { requests: string; errors: string; latency: string }): Promise<TrackWindow> => {
            const [requests, errors, latency] = await Promise.all([q.requests, q.errors, q.latency].map((x) => o.metrics.measure(x, signal)));
            // no series is nothing served: too few samples, never a pass
            return { requests: requests ?? 0, errors: errors ?? 0, p95Ms: latency, latencyKind: m.latency.kind };
          };
          const [canary, stable] = await Promise.all(queries.map(read));
          const evidence = [
            `Prometheus at ${o.url}, the last ${windowS} s (at least two ${scrapeS} s scrape intervals):`,
            ...queries.flatMap((q) => [q.requests, q.errors, q.latency]),
          ];
          return { canary, stable, evidence };
        },
      });
    },
  };
}
