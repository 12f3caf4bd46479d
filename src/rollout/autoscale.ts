import { fail, InputSpec } from '../inputs';
import type { Runtime } from '../protocol/runtime';
import { selectorLabels, K8sObject } from './manifests';

/**
 * Autoscaling of the stable Deployment `<app>` (issue 23 §3), as data: the `autoscale` input, and the object that
 * scales: an autoscaling/v2 HorizontalPodAutoscaler on CPU utilisation, or a KEDA ScaledObject on the server's
 * in-flight requests per pod from Prometheus (KEDA makes and owns its HPA, `keda-hpa-<app>`). The canary is never
 * autoscaled: it runs its share of the stable's current replicas. Pure: no cluster. How the rollout leaves the
 * replicas to the autoscaler: autoscale-writes.ts.
 *
 * The `autoscale` input: '' (the default) is off; else comma-separated key=value pairs (spaces around them allowed):
 *
 *   min=2,max=8,cpu=70                                                   an HPA: 70 % of the pods' CPU request on average
 *   min=2,max=8,inflight=4,prometheus=http://prometheus.monitoring:9090  KEDA: 4 requests in flight per pod
 *   min=2,max=8,inflight=4,cpu=70,prometheus=http://...                  KEDA with both triggers (the larger count wins)
 *
 * - `min` (default 1) and `max` (required): the replicas the autoscaler keeps the stable within; min ≥ 1 (no scale to
 *   zero: a model server takes seconds to start, and a canary is judged beside a running stable). The `replicas`
 *   input then only sizes the first deploy (within min and max); later deploys keep what the autoscaler set.
 * - `cpu=PERCENT`: average CPU utilisation, in % of the pods' CPU request (the `cpu` input, which modelship also sets
 *   as the limit, so above 100 scales only when a patch raises the limit). Alone: a plain HPA (needs metrics-server).
 * - `inflight=N`: requests in flight per pod (a positive number): KEDA's prometheus trigger on the stable's average
 *   requests in flight over the last minute, by Little's law (inflightQuery: the rate of the inference routes' summed
 *   latency; Triton: of `nv_inference_request_duration_us`), averaged over the pods. Needs `prometheus=URL`, the Prometheus KEDA's
 *   operator queries (no commas in it), scraping the pods with their `namespace` and pod labels (`track`), as the
 *   metrics gate's default queries do.
 * - `scale-down=SECONDS`: how long a lower recommendation must hold before the autoscaler scales down
 *   (behavior.scaleDown.stabilizationWindowSeconds; 0 to 3600, default Kubernetes' 300).
 */

export interface AutoscaleSpec {
  min: number;
  max: number;
  /** target average CPU utilisation, % of the pods' CPU request */
  cpu?: number;
  /** target requests in flight per pod (KEDA, from Prometheus) */
  inflight?: number;
  /** the Prometheus KEDA queries, with `inflight` */
  prometheus?: string;
  /** behavior.scaleDown.stabilizationWindowSeconds */
  scaleDownS: number;
}

/** Kubernetes' default scale-down stabilization window (seconds), and the largest it accepts. */
export const DEFAULT_SCALE_DOWN_S = 300;
export const MAX_SCALE_DOWN_S = 3600;

const KEYS = ['min', 'max', 'cpu', 'inflight', 'prometheus', 'scale-down'] as const;
type Key = (typeof KEYS)[number];
const EXAMPLES = 'min=2,max=8,cpu=70 or min=2,max=8,inflight=4,prometheus=http://prometheus.monitoring:9090';

/** The `autoscale` input's declaration, for the rollout stage's list of inputs. */
export const AUTOSCALE_INPUT: InputSpec = {
  name: 'autoscale',
  description: `rollout: autoscale the stable Deployment (never the canary), as key=value pairs: ${EXAMPLES}. min (default 1) and max bound the replicas (replicas then only sizes the first deploy); cpu=PERCENT of the CPU request: an autoscaling/v2 HorizontalPodAutoscaler; inflight=N requests in flight per pod from prometheus=URL: a KEDA ScaledObject (with cpu too: both triggers); scale-down=SECONDS: the scale-down stabilization window (default ${DEFAULT_SCALE_DOWN_S}). Empty: off.`,
  default: '',
  kind: 'string',
  stages: ['rollout'],
};

/** The `autoscale` input: undefined when it is empty (off); a bad value fails naming the input and the key. */
export function parseAutoscale(raw: string): AutoscaleSpec | undefined {
  const text = raw.trim();
  if (text === '') return undefined;
  const bad = (why: string): never => fail('autoscale', `${why} (e.g. ${EXAMPLES})`);
  const got = new Map<Key, string>();
  for (const item of text.split(',').map((x) => x.trim())) {
    if (item === '') bad(`an empty item in "${text}"; expected key=value pairs separated by commas`);
    const eq = item.indexOf('=');
    if (eq <= 0) bad(`expected key=value, got "${item}"`);
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (!(KEYS as readonly string[]).includes(key)) bad(`unknown key "${key}"; the keys are ${KEYS.join(', ')}`);
    if (got.has(key as Key)) bad(`"${key}" is given twice`);
    if (value === '') bad(`${key}= has no value`);
    got.set(key as Key, value);
  }
  const whole = (key: Key, lo: number, hi: number, what: string): number | undefined => {
    const v = got.get(key);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) bad(`${key} must be ${what}, got "${v}"`);
    return Number(v);
  };
  const min = whole('min', 1, 10_000, 'a whole number of replicas, 1 or more (no scale to zero)') ?? 1;
  const max = whole('max', 1, 10_000, 'a whole number of replicas, 1 or more');
  if (max === undefined) return bad('max is required: the most replicas the autoscaler may run');
  if (max < min) bad(`max (${max}) is below min (${min})`);
  const cpu = whole('cpu', 1, 10_000, "a whole percentage of the pods' CPU request, 1 or more");
  let inflight: number | undefined;
  const rawInflight = got.get('inflight');
  if (rawInflight !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(rawInflight) || !(Number(rawInflight) > 0)) bad(`inflight must be a positive number of requests per pod, got "${rawInflight}"`);
    inflight = Number(rawInflight);
  }
  const prometheus = got.get('prometheus');
  if (prometheus !== undefined && !/^https?:\/\/\S+$/.test(prometheus)) bad(`prometheus must be an http(s) URL, got "${prometheus}"`);
  if (inflight !== undefined && prometheus === undefined) bad('inflight needs prometheus=URL: the Prometheus KEDA asks for the requests in flight');
  if (inflight === undefined && prometheus !== undefined) bad('prometheus is only used with inflight=N');
  if (cpu === undefined && inflight === undefined)
    bad('needs a target: cpu=PERCENT (a HorizontalPodAutoscaler on CPU) or inflight=N with prometheus=URL (KEDA, requests in flight per pod)');
  const scaleDownS = whole('scale-down', 0, MAX_SCALE_DOWN_S, `whole seconds from 0 to ${MAX_SCALE_DOWN_S}`) ?? DEFAULT_SCALE_DOWN_S;
  return { min, max, ...(cpu !== undefined ? { cpu } : {}), ...(inflight !== undefined ? { inflight, prometheus } : {}), scaleDownS };
}

/** What scales the stable: a plain HPA (cpu alone) or KEDA (inflight, with cpu as a second trigger when given). */
export const autoscaler = (spec: AutoscaleSpec): 'hpa' | 'keda' => (spec.inflight !== undefined ? 'keda' : 'hpa');

/** The HPA KEDA makes for the ScaledObject `<app>` (its default name; the rollout never writes it). */
export const kedaHpaName = (app: string): string => `keda-hpa-${app}`;

const labels = (app: string) => ({ ...selectorLabels(app), 'app.kubernetes.io/managed-by': 'modelship' });
/** The stable Deployment: the canary `<app>-canary` is never a target. */
const target = (app: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', name: app });
const scaleDown = (spec: AutoscaleSpec) => ({ scaleDown: { stabilizationWindowSeconds: spec.scaleDownS } });

/**
 * The PromQL of the requests in flight in the stable's pods, summed (KEDA divides by the threshold: the replicas it
 * asks for): their average over the last minute by Little's law, the seconds of request time served per second —
 * `rate()` of the latency sum. Not the in-flight gauge: KEDA and Prometheus see one sample of it every scrape, and
 * requests shorter than the scrape interval are mostly between samples (a loaded server whose requests take a
 * millisecond reads 0). modelship's server: the inference routes' modelship_request_duration_seconds_sum (both
 * protocols); Triton: nv_inference_request_duration_us (queue and compute, microseconds).
 */
export function inflightQuery(namespace: string, runtime: Runtime = 'modelship'): string {
  const sel = `namespace="${namespace}",track="stable"`;
  return runtime === 'triton'
    ? `sum(rate(nv_inference_request_duration_us{${sel}}[${INFLIGHT_WINDOW}])) / 1e6`
    : `sum(rate(modelship_request_duration_seconds_sum{${sel},route=~"infer|classify|detect"}[${INFLIGHT_WINDOW}]))`;
}
/** The window the in-flight average is taken over: four samples at Prometheus's default 15 s scrape interval. */
export const INFLIGHT_WINDOW = '1m';

/** An autoscaling/v2 HorizontalPodAutoscaler `<app>` on the stable Deployment's CPU utilisation (spec.cpu). */
export function horizontalPodAutoscaler(spec: AutoscaleSpec, app: string, namespace: string): K8sObject {
  if (spec.cpu === undefined) throw new Error('horizontalPodAutoscaler: the autoscale spec has no cpu target');
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: app, namespace, labels: labels(app) },
    spec: {
      scaleTargetRef: target(app),
      minReplicas: spec.min,
      maxReplicas: spec.max,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: spec.cpu } } }],
      behavior: scaleDown(spec),
    },
  };
}

/**
 * A KEDA ScaledObject `<app>` (keda.sh/v1alpha1, a custom resource: KEDA must be installed) on the stable Deployment:
 * a prometheus trigger whose threshold is the in-flight requests per pod (metricType AverageValue: KEDA's HPA asks
 * for sum / threshold replicas), and KEDA's cpu trigger when spec.cpu is given too. ignoreNullValues false: a query
 * that finds no series (Prometheus lost the pods, or does not label them as the query expects) is an error the HPA
 * shows, and it keeps the replicas, instead of a 0 that scales the model down to min.
 */
export function scaledObject(spec: AutoscaleSpec, app: string, namespace: string, runtime: Runtime = 'modelship'): K8sObject {
  if (spec.inflight === undefined || spec.prometheus === undefined) throw new Error('scaledObject: the autoscale spec has no inflight target');
  const triggers: Record<string, unknown>[] = [
    {
      type: 'prometheus',
      metricType: 'AverageValue',
      metadata: { serverAddress: spec.prometheus, query: inflightQuery(namespace, runtime), threshold: String(spec.inflight), ignoreNullValues: 'false' },
    },
  ];
  if (spec.cpu !== undefined) triggers.push({ type: 'cpu', metricType: 'Utilization', metadata: { value: String(spec.cpu) } });
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name: app, namespace, labels: labels(app) },
    spec: {
      scaleTargetRef: target(app),
      minReplicaCount: spec.min,
      maxReplicaCount: spec.max,
      advanced: { horizontalPodAutoscalerConfig: { behavior: scaleDown(spec) } },
      triggers,
    },
  };
}

/** The object that autoscales the stable for `spec`: the HPA or the ScaledObject, both named `<app>`. */
export function autoscalerObject(spec: AutoscaleSpec, app: string, namespace: string, runtime: Runtime = 'modelship'): K8sObject {
  return autoscaler(spec) === 'keda' ? scaledObject(spec, app, namespace, runtime) : horizontalPodAutoscaler(spec, app, namespace);
}

/**
 * Both kinds of autoscaler modelship may have made for `<app>` (apiVersion, kind; named `<app>`): a deploy applies
 * the one its spec calls for and deletes the other where modelship made it (label managed-by), since two autoscalers
 * on one Deployment fight; autoscale turned off deletes both.
 */
export const AUTOSCALER_KINDS: readonly { apiVersion: string; kind: string; when: 'hpa' | 'keda' }[] = [
  { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', when: 'hpa' },
  { apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', when: 'keda' },
];
