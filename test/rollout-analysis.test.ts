import type { K8sObject } from '../src/rollout/manifests';
import { selectorLabels } from '../src/rollout/manifests';
import { GateFailure } from '../src/rollout/health';
import type { GateContext } from '../src/rollout/gates/gate';
import type { MetricProvider } from '../src/rollout/prometheus';
import { comparisonGate } from '../src/rollout/gates/comparison';
import { DEFAULT_COMPARISON_THRESHOLDS, judgeComparison } from '../src/rollout/analysis/judge';
import { histogramQuantile } from '../src/rollout/analysis/quantile';
import { parseExposition } from '../src/rollout/analysis/exposition';
import { podMetricsSource, PodMetricsKube } from '../src/rollout/analysis/pod-metrics';
import { prometheusWindowSource } from '../src/rollout/analysis/prometheus-window';
import type { ComparisonSource, TrackWindow, WindowReading } from '../src/rollout/analysis/window';
import { ServerMetrics } from '../src/serve/metrics';

// The analysis judged against the stable (issue 23 §2): the judge's table, the pods' /metrics as a source (deltas
// between two scrapes, restarts, the p95 of summed histograms), Prometheus as a source (its queries), and the gate's
// waiting. No cluster: a fake Kube answers the pod list and the pod proxy; a fake MetricProvider answers PromQL.

const T = DEFAULT_COMPARISON_THRESHOLDS;
const p95 = (requests: number, errors: number, ms?: number): TrackWindow => ({ requests, errors, p95Ms: ms, latencyKind: 'p95' });

describe('judgeComparison', () => {
  test('a healthy canary passes, both tracks named with their numbers', () => {
    expect(judgeComparison(p95(412, 0, 3.1), p95(1650, 0, 2.9), T)).toEqual({
      verdict: 'pass',
      detail: 'canary 412 requests, error rate 0.0000, p95 3.1 ms; stable 1650 requests, error rate 0.0000, p95 2.9 ms (ratio 1.07 ≤ 2)',
    });
  });

  test.each([
    [
      'a slow canary fails on the ratio',
      p95(400, 0, 45),
      p95(1600, 0, 20),
      'fail',
      /canary p95 latency 45\.0 ms is 2\.25× the stable's 20\.0 ms, more than max-latency-ratio 2/,
    ],
    ['a canary just within the ratio passes', p95(400, 0, 40), p95(1600, 0, 20), 'pass', /\(ratio 2\.00 ≤ 2\)$/],
    [
      'a canary with more 5xx than the stable fails',
      p95(200, 6, 3),
      p95(1000, 10, 3),
      'fail',
      /canary error rate 0\.0300 is 0\.0200 above the stable's 0\.0100, more than max-error-rate-increase 0\.01/,
    ],
    ['one stray 5xx at min-samples is not more than the increase allowed', p95(100, 1, 3), p95(1000, 0, 3), 'pass', /error rate 0\.0100/],
    ['the stable failing as much as the canary is no regression', p95(200, 20, 3), p95(1000, 100, 3), 'pass', /error rate 0\.1000/],
    ['too few requests on the canary: wait', p95(99, 0, 3), p95(1000, 0, 3), 'wait', /^too few samples: canary 99, stable 1000, fewer than min-samples 100$/],
    ['too few requests on the stable: wait', p95(400, 0, 3), p95(20, 0, 3), 'wait', /^too few samples: canary 400, stable 20, fewer than min-samples 100$/],
    ['too few even when the canary errs: wait, no verdict yet', p95(10, 10, 3), p95(1000, 0, 3), 'wait', /too few samples/],
    [
      '4× at millisecond latencies is within the noise floor',
      p95(400, 0, 8),
      p95(1600, 0, 2),
      'pass',
      /ratio 4\.00 > 2, but the canary is 6\.0 ms slower: within the 10 ms noise floor/,
    ],
    ['beyond the noise floor the ratio counts', p95(400, 0, 13), p95(1600, 0, 2), 'fail', /6\.50× the stable's 2\.0 ms/],
    ['a stable at 0 ms and a canary beyond the floor: an infinite ratio', p95(400, 0, 11), p95(1600, 0, 0), 'fail', /is ∞× the stable's/],
    [
      'no latency for the canary: no data is a failure',
      p95(400, 0, undefined),
      p95(1600, 0, 3),
      'fail',
      /^no p95 latency for the canary; no data is a failure/,
    ],
    ['no latency on either track', p95(400, 0, undefined), p95(1600, 0, undefined), 'fail', /no p95 latency for the canary and the stable/],
  ])('%s', (_name, canary, stable, verdict, detail) => {
    const j = judgeComparison(canary, stable, T);
    expect(j.verdict).toBe(verdict);
    expect(j.detail).toMatch(detail);
  });

  test("Triton's mean is named as a mean; latencies of two kinds are not compared", () => {
    const mean = (ms: number): TrackWindow => ({ requests: 500, errors: 0, p95Ms: ms, latencyKind: 'mean' });
    expect(judgeComparison(mean(4), mean(3.5), T).detail).toBe(
      'canary 500 requests, error rate 0.0000, mean 4.0 ms; stable 500 requests, error rate 0.0000, mean 3.5 ms (ratio 1.14 ≤ 2)',
    );
    expect(judgeComparison(mean(4), p95(500, 0, 4), T)).toMatchObject({ verdict: 'fail', detail: expect.stringMatching(/not comparable/) });
  });
});

describe('histogramQuantile (as PromQL computes it)', () => {
  const b = (...pairs: [number, number][]) => pairs.map(([le, count]) => ({ le, count }));

  test('interpolates linearly within the bucket the rank falls in', () => {
    // 100 observations: rank 95 falls in (5 ms, 10 ms], which holds 10 of them from the 91st on: 5 + 5 × 5/10 = 7.5 ms
    expect(histogramQuantile(0.95, b([0.001, 10], [0.0025, 50], [0.005, 90], [0.01, 100], [Infinity, 100]))).toBeCloseTo(0.0075, 12);
    // unsorted input, the first bucket starting at 0: rank 4.75 of 5 in (0, 1] → 0.95
    expect(histogramQuantile(0.95, b([Infinity, 5], [1, 5]))).toBeCloseTo(0.95, 12);
  });

  test('in the +Inf bucket: the last finite bound; no observations or no +Inf bucket: undefined', () => {
    expect(histogramQuantile(0.95, b([0.001, 1], [0.005, 2], [Infinity, 100]))).toBe(0.005);
    expect(histogramQuantile(0.95, b([0.001, 0], [Infinity, 0]))).toBeUndefined();
    expect(histogramQuantile(0.95, b([0.001, 3], [0.005, 5]))).toBeUndefined();
  });

  test('counts that dip (summed from pods read a moment apart) are made monotonic first', () => {
    expect(histogramQuantile(0.5, b([1, 6], [2, 4], [Infinity, 10]))).toBeCloseTo(0.8333333, 6);
  });
});

describe('parseExposition', () => {
  test('every series of a histogram keeps its labels (the parser alone folds them into one), the last line too', () => {
    const text = [
      '# HELP h Request latency',
      '# TYPE h histogram',
      'h_bucket{le="0.001",route="infer"} 1',
      'h_bucket{le="+Inf",route="infer"} 6',
      'h_sum{route="infer"} 0.02',
      'h_count{route="infer"} 6',
      'h_bucket{le="0.001",route="ready"} 10',
      'h_bucket{le="+Inf",route="ready"} 10',
      '# TYPE c counter',
      'c{code="500",route="infer"} 1',
    ].join('\n');
    expect(parseExposition(text)).toEqual([
      { name: 'h_bucket', labels: { le: '0.001', route: 'infer' }, value: 1 },
      { name: 'h_bucket', labels: { le: '+Inf', route: 'infer' }, value: 6 },
      { name: 'h_sum', labels: { route: 'infer' }, value: 0.02 },
      { name: 'h_count', labels: { route: 'infer' }, value: 6 },
      { name: 'h_bucket', labels: { le: '0.001', route: 'ready' }, value: 10 },
      { name: 'h_bucket', labels: { le: '+Inf', route: 'ready' }, value: 10 },
      { name: 'c', labels: { code: '500', route: 'infer' }, value: 1 },
    ]);
  });

  test('a line that is not the text format throws', () => {
    expect(() => parseExposition('m{a=b} 1\n')).toThrow(/invalid line/i);
  });
});

// ---- the pods' own /metrics ----

const NS = 'prod';
const LES = ['0.001', '0.0025', '0.005', '0.01', '0.025', '+Inf'];

/** modelship's exposition: requests on route infer by code, its latency histogram, and route ready's after it (which a folding parser would keep). */
function modelshipText(o: { c200: number; c500?: number; c400?: number; buckets: number[] }): string {
  const lines = [
    '# HELP modelship_requests_total HTTP requests',
    '# TYPE modelship_requests_total counter',
    `modelship_requests_total{route="infer",code="200"} ${o.c200}`,
    `modelship_requests_total{route="infer",code="500"} ${o.c500 ?? 0}`,
    `modelship_requests_total{route="infer",code="400"} ${o.c400 ?? 0}`,
    `modelship_requests_total{route="ready",code="503"} 999`,
    '# HELP modelship_request_duration_seconds Request latency',
    '# TYPE modelship_request_duration_seconds histogram',
    ...LES.map((le, i) => `modelship_request_duration_seconds_bucket{le="${le}",route="infer"} ${o.buckets[i]}`),
    `modelship_request_duration_seconds_sum{route="infer"} 1`,
    `modelship_request_duration_seconds_count{route="infer"} ${o.buckets[LES.length - 1]}`,
    ...LES.map((le) => `modelship_request_duration_seconds_bucket{le="${le}",route="ready"} 5000`),
  ];
  return `${lines.join('\n')}\n`;
}

interface FakePod {
  name: string;
  track: 'canary' | 'stable';
  ready?: boolean;
  restarts?: number;
  /** being deleted (deletionTimestamp), still Ready: a terminating pod in its preStop */
  deleting?: boolean;
}

/** The pod list and the pod proxy: `pods` and `metrics` (by pod name) are read at each call, so a test changes them between scrapes. */
function fakeCluster() {
  const state = { pods: [] as FakePod[], metrics: {} as Record<string, string | { status: number; body: string }>, scraped: [] as string[] };
  const podObject = (p: FakePod): K8sObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: NS,
      uid: `uid-${p.name}`,
      labels: { ...selectorLabels('lenet'), track: p.track },
      ...(p.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    } as K8sObject['metadata'],
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: p.ready === false ? 'False' : 'True' }],
      containerStatuses: [{ name: 'model-server', ready: p.ready !== false, started: true, restartCount: p.restarts ?? 0 }],
    },
  });
  const kube = {
    list: async (_v: string, kind: string, ns: string, selector?: string) => {
      expect([kind, ns]).toEqual(['Pod', NS]);
      const want = Object.fromEntries((selector ?? '').split(',').map((kv) => kv.split('=')));
      return state.pods.map(podObject).filter((o) => Object.entries(want).every(([k, v]) => o.metadata.labels?.[k] === v));
    },
    podProxy: (ns: string, pod: string, port: number) => async (path: string) => {
      state.scraped.push(`${ns}/${pod}:${port}${path}`);
      const m = state.metrics[pod];
      const r = typeof m === 'string' ? { status: 200, body: m } : (m ?? { status: 503, body: 'no endpoints' });
      return { status: r.status, headers: {}, body: Buffer.from(r.body) };
    },
  };
  return { state, kube: kube as unknown as PodMetricsKube };
}

const selectors = { canary: { ...selectorLabels('lenet'), track: 'canary' }, stable: { ...selectorLabels('lenet'), track: 'stable' } };

describe("the pods' /metrics as the comparison's source", () => {
  test('per-pod deltas summed per track, a restarted pod from 0, the p95 of the summed buckets', async () => {
    const { state, kube } = fakeCluster();
    state.pods = [
      { name: 'c1', track: 'canary' },
      { name: 's1', track: 'stable' },
      { name: 's2', track: 'stable' },
    ];
    state.metrics = {
      c1: modelshipText({ c200: 100, buckets: [10, 50, 90, 100, 100, 100] }),
      s1: modelshipText({ c200: 1000, buckets: [1000, 1000, 1000, 1000, 1000, 1000] }),
      s2: modelshipText({ c200: 5000, buckets: [5000, 5000, 5000, 5000, 5000, 5000] }),
    };
    const source = podMetricsSource({ kube, namespace: NS, runtime: 'modelship', model: 'lenet', selectors });
    const window = await source.open();
    expect(state.scraped.sort()).toEqual(['prod/c1:8002/metrics', 'prod/s1:8002/metrics', 'prod/s2:8002/metrics']);
    state.metrics = {
      // 200 more requests, 2 of them 500s and 3 answered 400 (the client's error, not the server's)
      c1: modelshipText({ c200: 295, c500: 2, c400: 3, buckets: [30, 150, 270, 300, 300, 300] }),
      s1: modelshipText({ c200: 1400, buckets: [1100, 1300, 1380, 1400, 1400, 1400] }),
      // restarted: its counters went down, so all of them are this window's
      s2: modelshipText({ c200: 400, buckets: [200, 380, 400, 400, 400, 400] }),
    };
    const r = await window.read();
    // canary deltas: buckets [20, 100, 180, 200, 200, 200]: rank 190 in (5, 10] ms → 5 + 5 × 10/20 = 7.5 ms
    expect(r.canary).toEqual({ requests: 200, errors: 2, p95Ms: expect.closeTo(7.5, 9), latencyKind: 'p95' });
    // stable: s1's deltas [100, 300, 380, 400, …] + s2's counts [200, 380, 400, 400, …] = [300, 680, 780, 800, …]:
    // rank 760 in (2.5, 5] ms → 2.5 + 2.5 × 80/100 = 4.5 ms
    expect(r.stable).toEqual({ requests: 800, errors: 0, p95Ms: expect.closeTo(4.5, 9), latencyKind: 'p95' });
    expect(r.evidence).toEqual([
      expect.stringMatching(/^the pods' \/metrics on port 8002, through the API server's pod proxy.*modelship_requests_total\{route="infer"\}.*code=~"5\.\."/),
      'canary pod c1: 200 requests, 2 errors',
      'stable pod s1: 400 requests, 0 errors',
      'stable pod s2: 400 requests, 0 errors (restarted: counted from 0)',
    ]);
    // 1.67× but 3 ms slower: within the noise floor; an error rate 0.01 above the stable's: not more than allowed
    expect(judgeComparison(r.canary, r.stable, T).verdict).toBe('pass');
  });

  test('a pod new since the window opened counts from 0, one whose restart count went up too; not Ready or gone: not counted', async () => {
    const { state, kube } = fakeCluster();
    state.pods = [
      { name: 'c1', track: 'canary' },
      { name: 'c2', track: 'canary', ready: false },
      { name: 's1', track: 'stable' },
      { name: 's2', track: 'stable' },
    ];
    const all = (n: number) => modelshipText({ c200: n, buckets: [n, n, n, n, n, n] });
    state.metrics = { c1: all(10), s1: all(100), s2: all(100) };
    const window = await podMetricsSource({ kube, namespace: NS, runtime: 'modelship', model: 'lenet', selectors }).open();
    // c2 was not Ready, so never scraped; it is now, and so is a new c3
    expect(state.scraped.sort()).toEqual(['prod/c1:8002/metrics', 'prod/s1:8002/metrics', 'prod/s2:8002/metrics']);
    state.pods = [
      { name: 'c1', track: 'canary', restarts: 1 },
      { name: 'c2', track: 'canary' },
      { name: 'c3', track: 'canary' },
      { name: 's1', track: 'stable' },
    ];
    state.metrics = { c1: all(500), c2: all(7), c3: all(3), s1: all(150) };
    const r = await window.read();
    expect([r.canary.requests, r.stable.requests]).toEqual([510, 50]);
    expect(r.evidence.slice(1)).toEqual([
      'canary pod c1: 500 requests, 0 errors (restarted: counted from 0)',
      'canary pod c2: 7 requests, 0 errors (new since the window opened: counted from 0)',
      'canary pod c3: 3 requests, 0 errors (new since the window opened: counted from 0)',
      'stable pod s1: 50 requests, 0 errors',
      "stable pod s2: gone or not Ready at the window's end, not counted",
    ]);
  });

  test("a pod being deleted (a rolled-back canary's of an earlier run, still Ready in its preStop) is not scraped", async () => {
    const { state, kube } = fakeCluster();
    const all = (n: number) => modelshipText({ c200: n, buckets: [n, n, n, n, n, n] });
    state.pods = [
      { name: 'old', track: 'canary', deleting: true },
      { name: 'c1', track: 'canary' },
      { name: 's1', track: 'stable' },
    ];
    state.metrics = { old: all(1000), c1: all(10), s1: all(100) };
    const window = await podMetricsSource({ kube, namespace: NS, runtime: 'modelship', model: 'lenet', selectors }).open();
    state.metrics = { old: all(1500), c1: all(60), s1: all(200) };
    const r = await window.read();
    expect(state.scraped.filter((x) => x.includes('/old:'))).toEqual([]);
    expect([r.canary.requests, r.stable.requests]).toEqual([50, 100]);
    expect(r.evidence.slice(1)).toEqual(['canary pod c1: 50 requests, 0 errors', 'stable pod s1: 100 requests, 0 errors']);
  });

  test("the real server's exposition: its infer requests, 5xx and latency are found by the table's names", async () => {
    const { state, kube } = fakeCluster();
    const server = new ServerMetrics({ inflightBytes: () => 0, inflightBytesLimit: 1, provider: 'cpu', requestedProvider: 'cpu', fallback: false });
    state.pods = [
      { name: 'c1', track: 'canary' },
      { name: 's1', track: 'stable' },
    ];
    const scrape = async () => (await server.exposition()).text.toString();
    state.metrics = { c1: await scrape(), s1: await scrape() };
    const window = await podMetricsSource({ kube, namespace: NS, runtime: 'modelship', model: 'lenet', selectors }).open();
    for (const code of [200, 200, 200, 503, 404]) {
      const end = server.begin();
      end('infer');
      server.answered('infer', code);
    }
    server.answered('ready', 200);
    state.metrics = { c1: await scrape(), s1: state.metrics.s1 };
    const r = await window.read();
    expect(r.canary).toMatchObject({ requests: 5, errors: 1, latencyKind: 'p95' });
    expect(r.canary.p95Ms).toBeGreaterThan(0);
    expect(r.canary.p95Ms).toBeLessThan(5000);
    // nothing served on the stable: no latency, too few samples
    expect(r.stable).toEqual({ requests: 0, errors: 0, p95Ms: undefined, latencyKind: 'p95' });
  });

  test('Triton: requests are successes and failures, the latency the mean request duration', async () => {
    const { state, kube } = fakeCluster();
    const triton = (success: number, failure: number, us: number, count: number) =>
      [
        '# HELP nv_inference_request_success Number of successful inference requests, all batch sizes',
        '# TYPE nv_inference_request_success counter',
        `nv_inference_request_success{model="lenet",version="1"} ${success}`,
        `nv_inference_request_success{model="other",version="1"} 77777`,
        '# TYPE nv_inference_request_failure counter',
        `nv_inference_request_failure{model="lenet",reason="BACKEND",version="1"} ${failure}`,
        '# TYPE nv_inference_count counter',
        `nv_inference_count{model="lenet",version="1"} ${count}`,
        '# TYPE nv_inference_request_duration_us counter',
        `nv_inference_request_duration_us{model="lenet",version="1"} ${us}`,
      ].join('\n');
    state.pods = [
      { name: 'c1', track: 'canary' },
      { name: 's1', track: 'stable' },
    ];
    state.metrics = { c1: triton(10, 0, 20_000, 80), s1: triton(100, 1, 300_000, 800) };
    const window = await podMetricsSource({ kube, namespace: NS, runtime: 'triton', model: 'lenet', selectors }).open();
    // canary: 200 more successes (batches of 8: 1600 inferences) taking 800 ms in all: 4 ms each
    state.metrics = { c1: triton(210, 1, 820_000, 1680), s1: triton(400, 1, 1_200_000, 3200) };
    const r = await window.read();
    expect(r.canary).toEqual({ requests: 201, errors: 1, p95Ms: 4, latencyKind: 'mean' });
    expect(r.stable).toEqual({ requests: 300, errors: 0, p95Ms: 3, latencyKind: 'mean' });
  });

  test('a pod whose metrics cannot be read fails the gate, naming the pod and the permission', async () => {
    const { state, kube } = fakeCluster();
    state.pods = [{ name: 'c1', track: 'canary' }];
    state.metrics = { c1: { status: 403, body: 'pods "c1" is forbidden: cannot get resource "pods/proxy"' } };
    const open = podMetricsSource({ kube, namespace: NS, runtime: 'modelship', model: 'lenet', selectors }).open();
    await expect(open).rejects.toThrow(GateFailure);
    await expect(open).rejects.toThrow(
      /the metrics of pod c1 \(port 8002, through the API server's pod proxy\) could not be read: HTTP 403.*needs get on pods\/proxy/,
    );
  });
});

// ---- Prometheus ----

describe('Prometheus as the source', () => {
  function fakeProvider(answers: (q: string) => number | undefined) {
    const asked: string[] = [];
    const metrics: MetricProvider = {
      measure: async (q) => {
        asked.push(q);
        return answers(q);
      },
    };
    return { asked, metrics };
  }

  test("modelship: the counters' growth over the time since open, rounded up, for both tracks alike", async () => {
    let now = 1_000_000;
    const { asked, metrics } = fakeProvider((q) => {
      const canary = q.includes('track="canary"');
      if (q.startsWith('1000 * histogram_quantile')) return canary ? 3.1 : 2.9;
      if (q.includes('code=~"5.."')) return 0;
      return canary ? 412 : 1650;
    });
    const source = prometheusWindowSource({ metrics, url: 'http://prom:9090', namespace: NS, runtime: 'modelship', model: 'lenet', now: () => now });
    const window = await source.open();
    now += 60_200;
    const r = await window.read();
    expect(asked.filter((q) => q.includes('track="canary"'))).toEqual([
      // (not increase(): it would extrapolate a pod new in the window back to 0, its requests from before it with it)
      '(sum(modelship_requests_total{namespace="prod",track="canary",route="infer"} - min_over_time(modelship_requests_total{namespace="prod",track="canary",route="infer"}[61s])) or vector(0))',
      '(sum(modelship_requests_total{namespace="prod",track="canary",route="infer",code=~"5.."} - min_over_time(modelship_requests_total{namespace="prod",track="canary",route="infer",code=~"5.."}[61s])) or vector(0))',
      '1000 * histogram_quantile(0.95, sum by (le) (modelship_request_duration_seconds_bucket{namespace="prod",track="canary",route="infer"} - min_over_time(modelship_request_duration_seconds_bucket{namespace="prod",track="canary",route="infer"}[61s])))',
    ]);
    expect(asked.filter((q) => q.includes('track="stable"'))).toHaveLength(3);
    expect(r.canary).toEqual(p95(412, 0, 3.1));
    expect(r.stable).toEqual(p95(1650, 0, 2.9));
    expect(r.evidence[0]).toBe('Prometheus at http://prom:9090, the last 61 s (at least two 10 s scrape intervals):');
    expect(r.evidence).toHaveLength(7);
    expect(source.name).toBe('Prometheus at http://prom:9090');
  });

  test('a window shorter than two scrape intervals is widened to them; no data is no requests and no latency', async () => {
    let now = 0;
    const { asked, metrics } = fakeProvider(() => undefined);
    const window = await prometheusWindowSource({
      metrics,
      url: 'u',
      namespace: NS,
      runtime: 'modelship',
      model: 'lenet',
      scrapeIntervalS: 15,
      now: () => now,
    }).open();
    now += 3000;
    const r = await window.read();
    expect(asked.every((q) => q.includes('[30s]'))).toBe(true);
    expect(r.canary).toEqual({ requests: 0, errors: 0, p95Ms: undefined, latencyKind: 'p95' });
    expect(judgeComparison(r.canary, r.stable, T).verdict).toBe('wait');
  });

  test('Triton: successes plus failures, failures, and the mean request duration in ms', async () => {
    let now = 0;
    const { asked, metrics } = fakeProvider(() => 1);
    const window = await prometheusWindowSource({ metrics, url: 'u', namespace: NS, runtime: 'triton', model: 'lenet', now: () => now }).open();
    now += 30_000;
    const r = await window.read();
    const S = 'namespace="prod",track="stable",model="lenet"';
    expect(asked.filter((q) => q.includes('track="stable"'))).toEqual([
      `(sum(nv_inference_request_success{${S}} - min_over_time(nv_inference_request_success{${S}}[30s])) or vector(0)) + (sum(nv_inference_request_failure{${S}} - min_over_time(nv_inference_request_failure{${S}}[30s])) or vector(0))`,
      `(sum(nv_inference_request_failure{${S}} - min_over_time(nv_inference_request_failure{${S}}[30s])) or vector(0))`,
      `0.001 * sum(nv_inference_request_duration_us{${S}} - min_over_time(nv_inference_request_duration_us{${S}}[30s])) / sum(nv_inference_request_success{${S}} - min_over_time(nv_inference_request_success{${S}}[30s]))`,
    ]);
    expect(r.stable.latencyKind).toBe('mean');
  });
});

// ---- the gate ----

describe('comparisonGate', () => {
  /** A source whose reads answer `readings` in turn (the last one repeated). */
  function scripted(readings: Pick<WindowReading, 'canary' | 'stable'>[]) {
    const calls = { open: 0, read: 0 };
    const source: ComparisonSource = {
      name: 'scripted',
      open: async () => {
        calls.open++;
        return { read: async () => ({ ...readings[Math.min(calls.read++, readings.length - 1)], evidence: ['pods scraped: c1, s1'] }) };
      },
    };
    return { calls, source };
  }
  function context(remainingMs: number) {
    const deadline = Date.now() + remainingMs;
    const progress: string[] = [];
    const ctx = {
      namespace: NS,
      signal: new AbortController().signal,
      remainingMs: () => deadline - Date.now(),
      progress: (l: string) => progress.push(l),
      found: { pods: [] },
    } as unknown as GateContext;
    return { ctx, progress };
  }

  test("passes with the judge's detail and the evidence", async () => {
    const { source } = scripted([{ canary: p95(412, 0, 3.1), stable: p95(1650, 0, 2.9) }]);
    const gate = comparisonGate(source, T, { windowS: 0, stepName: 'step 1 of 3 (25%)' });
    expect([gate.gate, gate.name]).toEqual(['analysis', 'analysis against the stable (step 1 of 3 (25%)), 0 s']);
    const { ctx, progress } = context(30_000);
    const r = await gate.run(ctx);
    expect(r).toEqual({
      passes: true,
      detail: expect.stringMatching(/^canary 412 requests.*\(ratio 1\.07 ≤ 2\), over 0 s$/),
      evidence: ['scripted, 0 s', 'pods scraped: c1, s1'],
    });
    // each step's numbers in the log (the report keeps the last step's)
    expect(progress[progress.length - 1]).toMatch(/^analysis passed: canary 412 requests.*\(ratio 1\.07 ≤ 2\), over 0 s$/);
  });

  test('too few samples: keeps reading the same window, then fails near rollout-timeout, never passes', async () => {
    const { calls, source } = scripted([{ canary: p95(12, 0, 3), stable: p95(40, 0, 3) }]);
    const { ctx, progress } = context(4500);
    const t0 = Date.now();
    const err = await comparisonGate(source, T, { windowS: 0 })
      .run(ctx)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GateFailure);
    expect((err as GateFailure).message).toMatch(
      /^too few samples: canary 12, stable 40, fewer than min-samples 100 after [23] s \(rollout-timeout is near\)$/,
    );
    expect((err as GateFailure).evidence).toContain('pods scraped: c1, s1');
    // one window, read at once and again 2 s later; then less than a re-read is left before the 2 s margin
    expect(calls).toEqual({ open: 1, read: 2 });
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(progress[1]).toMatch(/^analysis: too few samples: canary 12, stable 40.*; waiting for more traffic$/);
  });

  test('too few samples at first, enough later: the verdict of the same window', async () => {
    const { calls, source } = scripted([
      { canary: p95(12, 0, 3), stable: p95(40, 0, 3) },
      { canary: p95(120, 3, 3), stable: p95(400, 0, 3) },
    ]);
    const err = await comparisonGate(source, T, { windowS: 0 })
      .run(context(30_000).ctx)
      .catch((e: unknown) => e);
    expect(calls).toEqual({ open: 1, read: 2 });
    expect((err as GateFailure).message).toMatch(/^canary error rate 0\.0250 is 0\.0250 above the stable's 0\.0000.*, over 2 s$/);
  });

  test('a window that does not fit in the time left fails at once', async () => {
    const { calls, source } = scripted([{ canary: p95(412, 0, 3), stable: p95(1650, 0, 3) }]);
    await expect(comparisonGate(source, T, { windowS: 60 }).run(context(30_000).ctx)).rejects.toThrow(
      /^the analysis window of 60 s does not fit in the (29|30) s left before rollout-timeout$/,
    );
    expect(calls.open).toBe(0);
  });
});
