import type { Kube } from '../kube';
import { GateFailure, podView, selectorString } from '../health';
import { METRICS_PORT } from '../manifests';
import type { Runtime } from '../../protocol/runtime';
import { parseExposition, sampleValue, Sample } from './exposition';
import { histogramQuantile } from './quantile';
import { ComparisonSource, matches, promSeries, RUNTIME_METRICS, RuntimeMetrics, Series, Track, TrackWindow, TRACKS } from './window';

/**
 * The comparison's numbers without Prometheus: the stage scrapes the /metrics of each track's Ready pods itself,
 * through the API server's pod proxy (pods/proxy, get: the metrics-only listener needs no API key), when the window
 * opens and when it is read, and takes each pod's difference. A pod new since the window opened counts from 0; one
 * that restarted (its restart count went up, or a counter went down) counts from 0 too: its counters started again.
 * The differences are summed per track; the histogram's buckets too, and the track's p95 is taken from the sum as
 * PromQL's histogram_quantile would (quantile.ts). A pod that left between the two scrapes takes its requests with it:
 * both tracks lose them alike, as a pod's series ending inside the range does in Prometheus. A pod being deleted is
 * not scraped: it has left the Service's endpoints (the pods gate leaves it out too).
 */
export type PodMetricsKube = Pick<Kube, 'list' | 'podProxy'>;

export interface PodMetricsOptions {
  kube: PodMetricsKube;
  namespace: string;
  runtime: Runtime;
  model: string;
  /** the labels of each track's pods (a Release's podSelector: a taken-over stable keeps its own) */
  selectors: Record<Track, Record<string, string>>;
  /** the pods' metrics-only listener (both runtimes: METRICS_PORT) */
  port?: number;
}

/** What one scrape of one pod says, summed over the series that count. */
interface Counts {
  requests: number;
  errors: number;
  /** cumulative bucket counts by upper bound (p95) */
  buckets: Map<number, number>;
  /** latency sum and count (mean) */
  sum: number;
  count: number;
}

interface PodScrape {
  name: string;
  uid: string;
  restarts: number;
  counts: Counts;
}

const SCRAPE_TIMEOUT_MS = 10_000;

function countsOf(samples: Sample[], m: RuntimeMetrics): Counts {
  const total = (ss: Series[]) => samples.filter((x) => ss.some((s) => matches(s, x.name, x.labels))).reduce((n, x) => n + x.value, 0);
  const c: Counts = { requests: total(m.requests), errors: total(m.errors), buckets: new Map(), sum: 0, count: 0 };
  const l = m.latency;
  if (l.kind === 'p95') {
    for (const x of samples.filter((s) => matches(l.buckets, s.name, s.labels) && s.labels.le !== undefined)) {
      const le = sampleValue(x.labels.le);
      c.buckets.set(le, (c.buckets.get(le) ?? 0) + x.value);
    }
  } else {
    c.sum = total([l.sum]);
    c.count = total([l.count]);
  }
  return c;
}

/** now − before, or undefined when something went down (the pod's counters started again). */
function subtract(now: Counts, before: Counts): Counts | undefined {
  const d: Counts = {
    requests: now.requests - before.requests,
    errors: now.errors - before.errors,
    buckets: new Map(),
    sum: now.sum - before.sum,
    count: now.count - before.count,
  };
  for (const le of new Set([...now.buckets.keys(), ...before.buckets.keys()])) d.buckets.set(le, (now.buckets.get(le) ?? 0) - (before.buckets.get(le) ?? 0));
  return [d.requests, d.errors, d.sum, d.count, ...d.buckets.values()].some((v) => v < 0) ? undefined : d;
}

function add(a: Counts, b: Counts): Counts {
  const buckets = new Map(a.buckets);
  for (const [le, n] of b.buckets) buckets.set(le, (buckets.get(le) ?? 0) + n);
  return { requests: a.requests + b.requests, errors: a.errors + b.errors, buckets, sum: a.sum + b.sum, count: a.count + b.count };
}

const ZERO: Counts = { requests: 0, errors: 0, buckets: new Map(), sum: 0, count: 0 };

function trackWindow(c: Counts, m: RuntimeMetrics): TrackWindow {
  const l = m.latency;
  const latency =
    l.kind === 'p95'
      ? histogramQuantile(
          0.95,
          [...c.buckets].map(([le, count]) => ({ le, count })),
        )
      : c.count > 0
        ? c.sum / c.count
        : undefined;
  return { requests: c.requests, errors: c.errors, p95Ms: latency === undefined ? undefined : latency * l.toMs, latencyKind: l.kind };
}

export function podMetricsSource(o: PodMetricsOptions): ComparisonSource {
  const port = o.port ?? METRICS_PORT;
  const m = RUNTIME_METRICS[o.runtime](o.model);

  const scrapePod = async (name: string): Promise<Counts> => {
    const where = `the metrics of pod ${name} (port ${port}, through the API server's pod proxy)`;
    const r = await o.kube
      .podProxy(
        o.namespace,
        name,
        port,
      )('/metrics', { timeoutMs: SCRAPE_TIMEOUT_MS, headers: { accept: 'text/plain' } })
      .catch((e: Error) => {
        throw new GateFailure(`${where} could not be read: ${e.message}`);
      });
    if (r.status !== 200)
      throw new GateFailure(
        `${where} could not be read: HTTP ${r.status}: ${r.body.toString().slice(0, 200)}${r.status === 403 ? ' (the rollout needs get on pods/proxy)' : ''}`,
      );
    try {
      return countsOf(parseExposition(r.body.toString()), m);
    } catch (e) {
      throw new GateFailure(`${where} are not in the Prometheus text format: ${(e as Error).message.slice(0, 200)}`);
    }
  };

  const scrapeTrack = async (track: Track, signal?: AbortSignal): Promise<PodScrape[]> => {
    signal?.throwIfAborted();
    // a terminating pod (deletionTimestamp: a rolled-back canary's of an earlier run, still draining) has left the
    // Service's endpoints and is no pod of this release: Ready alone would count it
    const listed = await o.kube.list('v1', 'Pod', o.namespace, selectorString(o.selectors[track]));
    const pods = listed
      .filter((x) => !(x.metadata as { deletionTimestamp?: string }).deletionTimestamp)
      .map(podView)
      .filter((p) => p.ready);
    return Promise.all(pods.map(async (p) => ({ name: p.name, uid: p.uid || p.name, restarts: p.restarts, counts: await scrapePod(p.name) })));
  };

  const scrapeBoth = async (signal?: AbortSignal) => {
    const [canary, stable] = await Promise.all(TRACKS.map((t) => scrapeTrack(t, signal)));
    return { canary, stable };
  };

  const names = [...m.requests, ...m.errors, ...(m.latency.kind === 'p95' ? [m.latency.buckets] : [m.latency.sum, m.latency.count])];
  const head = `the pods' /metrics on port ${port}, through the API server's pod proxy, at the window's start and end: ${[...new Set(names.map((s) => promSeries(s, [])))].join(', ')}`;

  return {
    name: `the pods' own /metrics (port ${port}, through the API server)`,
    async open(signal) {
      const start = await scrapeBoth(signal);
      return {
        async read(signal?: AbortSignal) {
          const end = await scrapeBoth(signal);
          const evidence = [head];
          const sum = (track: Track): TrackWindow => {
            const before = new Map(start[track].map((p) => [p.uid, p]));
            let total = ZERO;
            for (const p of end[track]) {
              const b = before.get(p.uid);
              const d = b && p.restarts === b.restarts ? subtract(p.counts, b.counts) : undefined;
              const why = !b ? ' (new since the window opened: counted from 0)' : d ? '' : ' (restarted: counted from 0)';
              const counted = d ?? p.counts;
              total = add(total, counted);
              evidence.push(`${track} pod ${p.name}: ${counted.requests} requests, ${counted.errors} errors${why}`);
              before.delete(p.uid);
            }
            for (const p of before.values()) evidence.push(`${track} pod ${p.name}: gone or not Ready at the window's end, not counted`);
            return trackWindow(total, m);
          };
          return { canary: sum('canary'), stable: sum('stable'), evidence };
        },
      };
    },
  };
}
