import * as yaml from 'js-yaml';
import { fail, InputSpec, OutputSpec, Reader } from '../inputs';
import type { SharedConfig } from '../shared/inputs';
import { grpcTarget, type Protocol, type Runtime } from '../protocol/runtime';
import { SERVE_SETTINGS } from '../protocol/serve-settings';
import { DEFAULT_QUERIES } from './prometheus';
import { ComparisonThresholds, DEFAULT_COMPARISON_THRESHOLDS } from './analysis/judge';
import { DisruptionBudget, DRAIN_TIMEOUT_S, GRACE_MARGIN_S, MAX_DRAIN_DELAY_S, SERVER_DRAIN_DELAY_S } from './manifests';
import { AUTOSCALE_INPUT, AutoscaleSpec, parseAutoscale } from './autoscale';
import type { ImageVerification } from '../shared/verify-image';

/** The rollout stage's own inputs and outputs (a preview is a rollout: it reads these too). */
export const ROLLOUT_INPUTS: InputSpec[] = [
  {
    name: 'app',
    description: 'rollout: the name of the Deployment and Service (the canary is <app>-canary; default: model-name); cleanup: the app whose preview goes.',
    default: '',
    kind: 'string',
    stages: ['rollout', 'cleanup'],
  },
  {
    name: 'namespace',
    description: 'rollout: the Kubernetes namespace.',
    default: 'default',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'kubeconfig',
    description: 'rollout, cleanup: a kubeconfig file path or the kubeconfig YAML itself (masked); empty: $KUBECONFIG, ~/.kube/config or in-cluster.',
    default: '',
    kind: 'string',
    stages: ['rollout', 'cleanup'],
    secret: true,
  },
  {
    name: 'strategy',
    description:
      'rollout: canary (a verified <app>-canary Deployment, then promote or roll back) or basic (update in place, roll back to the previous ReplicaSet on failure).',
    default: 'canary',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'replicas',
    description:
      "rollout: replicas of the stable Deployment. With autoscale: only a first deploy's (within its min and max); later deploys keep the autoscaler's count.",
    default: '2',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'disruption-budget',
    description:
      'rollout: a PodDisruptionBudget for the stable Deployment, so a node drain or cluster upgrade evicts its pods a few at a time: auto (a quarter of replicas, at least 1, with autoscale of those the stable runs at the deploy; none with 1 replica, where a budget would block every drain or protect nothing), the pods that may be unavailable at once as a number or percentage (maxUnavailable, e.g. 1 or 25%), or none (and a budget modelship made before is deleted).',
    default: 'auto',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'drain-delay',
    description: `rollout, preview: seconds a terminating pod keeps serving (a preStop hook) while Kubernetes takes it out of the Service's endpoints and kube-proxy and other proxies stop sending to it; then the server finishes its in-flight requests (at most ${DRAIN_TIMEOUT_S} s) and exits. On SIGTERM the server answers with Connection: close for ${SERVER_DRAIN_DELAY_S} s more (keep-alive clients reconnect elsewhere). The pods' terminationGracePeriodSeconds is drain-delay + ${SERVER_DRAIN_DELAY_S + DRAIN_TIMEOUT_S + GRACE_MARGIN_S}. Whole seconds, 0 (no hook) to ${MAX_DRAIN_DELAY_S}.`,
    default: '5',
    kind: 'number',
    stages: ['rollout', 'preview'],
  },
  {
    name: 'canary-percent',
    description: "rollout: canary replicas as a percentage of the stable's replicas (rounded up, at least 1; with autoscale, of those it runs now); 1 to 100.",
    default: '20',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'canary-steps',
    description:
      "rollout: a stepped canary: the canary's size at each step as percentages of the stable's replicas, increasing, comma-separated (e.g. 10,25,50,100; at most 10 steps); each step's pods rounded up, at least 1 (replica weighting: the canary takes about canary/(canary + stable) of the main Service's traffic). Every step waits for its pods, bakes bake-time and runs the Prometheus gate; the first also sends the golden requests; a failed step rolls back. Empty: one step at canary-percent. Strategy canary only.",
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'bake-time',
    description: 'rollout: seconds the canary must stay Ready without a restart after its golden requests pass.',
    default: '60',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'rollout-timeout',
    description:
      "rollout: seconds from the first apply to the decision (readiness, verification, bake); also each Deployment's progress deadline. Past it: rolled back.",
    default: '600',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'verify-url',
    description:
      "rollout: base URL of the canary for golden requests (empty: the canary-only Service through the API server's service proxy, which drops Authorization headers, so an API key needs a verify-url).",
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'verify-requests',
    description: 'rollout: golden requests sent to the canary for its latency p95 (after the reference batches).',
    default: '20',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'max-latency-ms',
    description: "rollout: largest allowed p95 latency of the canary's golden requests in ms (0: no limit).",
    default: '0',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'prometheus-url',
    description: 'rollout: Prometheus base URL for the metrics gate (empty: no metrics gate).',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'prometheus-samples-query',
    description: `rollout: PromQL for the number of requests a track served ({{namespace}}, {{app}}, {{track}}, {{model}} are filled in). Empty: per runtime, modelship \`${DEFAULT_QUERIES.modelship.samples}\`, triton \`${DEFAULT_QUERIES.triton.samples}\`.`,
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'prometheus-error-rate-query',
    description: `rollout: PromQL for a track's error rate (0 to 1). Empty: per runtime, modelship \`${DEFAULT_QUERIES.modelship.errorRate}\`, triton \`${DEFAULT_QUERIES.triton.errorRate}\`.`,
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'prometheus-latency-query',
    description: `rollout: PromQL for a track's p99 latency in ms. Empty: per runtime, modelship \`${DEFAULT_QUERIES.modelship.latency}\`, triton \`${DEFAULT_QUERIES.triton.latency}\` (the image's CMD enables Triton's latency summaries).`,
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'min-samples',
    description: 'rollout: the metrics gate fails unless the canary served at least this many requests (no data is a failure).',
    default: '20',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'max-error-rate',
    description: 'rollout: largest allowed canary error rate from Prometheus.',
    default: '0.01',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'max-p99-ms',
    description: 'rollout: largest allowed canary p99 latency from Prometheus in ms (0: reported, not gated).',
    default: '0',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'compare-with-stable',
    description:
      "rollout: judge the canary against the stable pods serving the same traffic in the same window (the bake of every step), as Kayenta and Flagger do: its error rate may exceed the stable's by at most max-error-rate-increase, its latency p95 be at most max-latency-ratio times the stable's (differences under 10 ms are noise), once each track has served analysis-min-samples requests (too few: it waits, then fails at rollout-timeout; never a pass). Numbers from Prometheus with prometheus-url, else from the pods' own /metrics through the API server. It needs real traffic through the main Service (both tracks) and a stable to compare with (a first deploy has none: skipped). auto: on with canary-steps; true; false.",
    default: 'auto',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'max-error-rate-increase',
    description: "rollout: compare-with-stable: the most the canary's error rate (5xx share) may exceed the stable's.",
    default: String(DEFAULT_COMPARISON_THRESHOLDS.maxErrorRateIncrease),
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'max-latency-ratio',
    description: "rollout: compare-with-stable: the most the canary's latency p95 may be as a multiple of the stable's (Triton: the mean).",
    default: String(DEFAULT_COMPARISON_THRESHOLDS.maxLatencyRatio),
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'analysis-min-samples',
    description: 'rollout: compare-with-stable: requests each track must have served in the window before a verdict.',
    default: String(DEFAULT_COMPARISON_THRESHOLDS.minSamples),
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'dry-run',
    description: 'rollout: print the plan (the objects and their diff against the live state, from a server-side dry run) and change nothing.',
    default: 'false',
    kind: 'boolean',
    stages: ['rollout'],
  },
  {
    name: 'create-namespace',
    description: 'rollout: create the namespace when it is missing (checked against RBAC before anything is applied).',
    default: 'true',
    kind: 'boolean',
    stages: ['rollout'],
  },
  {
    name: 'lock-timeout',
    description: 'rollout: seconds to wait for another deploy of the same app and namespace (a Lease) before failing.',
    default: '300',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'lease-duration',
    description: 'rollout: seconds a deploy Lease stays valid without renewal; a lease left by a dead run is taken over after it.',
    default: '30',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'manifest',
    description: 'rollout: your own Deployment/Service YAML, laid over the generated objects (modelship keeps the name, selector, routing labels and image).',
    default: '',
    kind: 'path',
    stages: ['rollout'],
  },
  {
    name: 'patch',
    description:
      'rollout: a YAML file of strategic-merge patches (kustomize patchesStrategicMerge style, one document per object, `kind` required) applied on top, to the canary and the stable alike.',
    default: '',
    kind: 'path',
    stages: ['rollout'],
  },
  {
    name: 'node-selector',
    description: 'rollout: nodeSelector of the pods, as key=value,key=value.',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'tolerations',
    description: 'rollout: tolerations of the pods, as a YAML/JSON list (e.g. [{key: gpu, operator: Exists, effect: NoSchedule}]).',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'image-pull-secrets',
    description: 'rollout: names of Secrets for pulling the image, comma-separated.',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'create-pull-secret',
    description:
      "rollout, preview: create (or update) the image pull Secret <app>-registry (kubernetes.io/dockerconfigjson, labelled as modelship's) in the namespace from registry-username and registry-password, and pull with it; a preview's goes with its namespace.",
    default: 'false',
    kind: 'boolean',
    stages: ['rollout', 'preview'],
  },
  {
    name: 'api-key-secret',
    description: `rollout: Secret holding the serving API key, as name/key; given to the server as ${SERVE_SETTINGS.apiKey.env}.`,
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'model-key-secret',
    description: `rollout: Secret holding the model decryption key (encrypt-model), as name/key; given to the server as ${SERVE_SETTINGS.modelKey.env}.`,
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  AUTOSCALE_INPUT,
  {
    name: 'cpu',
    description: 'rollout: CPU request and limit per pod.',
    default: '1',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'memory',
    description: 'rollout: memory request and limit per pod.',
    default: '1Gi',
    kind: 'string',
    stages: ['rollout'],
  },
];

export const ROLLOUT_OUTPUTS: OutputSpec[] = [
  { name: 'decision', description: 'rollout: promoted, rolled-back or dry-run.', stages: ['rollout'] },
  { name: 'reason', description: 'rollout: why: the gate that failed and its evidence, or what was verified.', stages: ['rollout'] },
  {
    name: 'canary-replicas',
    description: 'rollout: replicas of the canary Deployment at the last step reached (with canary-steps; 0 for strategy basic).',
    stages: ['rollout'],
  },
  {
    name: 'canary-step',
    description: 'rollout: the last canary step reached, as step/steps (e.g. 2/4; 1/1 without canary-steps); empty for strategy basic and a dry run.',
    stages: ['rollout'],
  },
  {
    name: 'gate-pods',
    description: 'rollout: pass, fail or skipped: canary pods Ready in time, then no restart or NotReady during bake-time.',
    stages: ['rollout'],
  },
  {
    name: 'gate-golden',
    description: 'rollout: pass, fail or skipped: golden requests to the canary reproduce the reference within tolerance, p95 within max-latency-ms.',
    stages: ['rollout'],
  },
  {
    name: 'gate-analysis',
    description: 'rollout: pass, fail or skipped: the canary judged against the stable at every step (compare-with-stable).',
    stages: ['rollout'],
  },
  {
    name: 'gate-prometheus',
    description: 'rollout: pass, fail or skipped: the Prometheus gate (min-samples, max-error-rate, max-p99-ms).',
    stages: ['rollout'],
  },
  { name: 'verify-latency-p95-ms', description: 'rollout: p95 latency of the golden requests to the canary in ms.', stages: ['rollout'] },
  { name: 'decision-seconds', description: 'rollout: seconds from the first apply to the decision.', stages: ['rollout'] },
  {
    name: 'rollout-report',
    description: 'rollout: JSON: gates with results and evidence, the timeline of steps with durations, objects applied.',
    stages: ['rollout'],
  },
];

export interface RolloutConfig {
  app: string;
  runtime: Runtime;
  namespace: string;
  kubeconfig: string;
  image: string;
  modelName: string;
  strategy: 'canary' | 'basic';
  /** the stable's replicas; with autoscale, a first deploy's only (within min and max) */
  replicas: number;
  /** autoscale: the stable's HorizontalPodAutoscaler or KEDA ScaledObject (undefined: off) */
  autoscale?: AutoscaleSpec;
  /** disruption-budget: the stable Deployment's PodDisruptionBudget */
  disruptionBudget: DisruptionBudget;
  canaryPercent: number;
  /** canary-steps: the canary's size at each step, in percent of the stable's replicas; [canaryPercent] without it (basic: unused) */
  canarySteps: number[];
  /** drain-delay: seconds a terminating pod keeps serving (its preStop hook) */
  drainDelayS: number;
  bakeTimeS: number;
  timeoutS: number;
  verifyUrl: string;
  /** how golden requests travel: http, or grpc to verify-url (grpc://host:port) */
  protocol: Protocol;
  verifyRequests: number;
  maxLatencyMs: number;
  reference?: string;
  tolerance: number;
  apiKey: string;
  gpu: boolean;
  prometheus?: { url: string; samplesQuery: string; errorRateQuery: string; latencyQuery: string; minSamples: number; maxErrorRate: number; maxP99Ms: number };
  /** compare-with-stable: the analysis against the stable, with its thresholds (undefined: off) */
  comparison?: ComparisonThresholds;
  dryRun: boolean;
  createNamespace: boolean;
  lockTimeoutS: number;
  leaseDurationS: number;
  manifest: string;
  patch: string;
  nodeSelector: Record<string, string>;
  tolerations: { key: string; operator?: string; value?: string; effect?: string }[];
  imagePullSecrets: string[];
  /** create-pull-secret: the pods' pull Secret, made from the registry credentials */
  pullSecret?: { username: string; password: string };
  apiKeySecret?: { name: string; key: string };
  modelKeySecret?: { name: string; key: string };
  cpu: string;
  memory: string;
  /** verify the image (cosign) before anything is deployed; undefined: verify off */
  verification?: ImageVerification;
  /** registry-username/password: how verification reads a private registry (undefined: anonymously) */
  registryLogin?: { username: string; password: string };
}

export function readRolloutConfig(r: Reader, s: SharedConfig): RolloutConfig {
  const stage = r.stage;
  const raw = (name: string) => r.raw(name);
  const strategy = r.oneOf('strategy', ['canary', 'basic'] as const);
  const canaryPercent = r.num('canary-percent');
  if (stage === 'rollout' && (canaryPercent < 1 || canaryPercent > 100)) fail('canary-percent', `must be between 1 and 100, got ${raw('canary-percent')}`);
  const canarySteps = readCanarySteps(raw('canary-steps'));
  if (canarySteps.length && strategy !== 'canary')
    fail('canary-steps', `is for strategy canary (strategy ${strategy} updates the stable in place: there is no canary to step), got "${raw('canary-steps')}"`);
  const percentGiven = r.given('canary-percent')?.trim();
  if (canarySteps.length && percentGiven && Number(percentGiven) !== Number(inputDefault('canary-percent')))
    fail('canary-steps', `and canary-percent ${percentGiven} are both given: canary-percent is the one-step form of canary-steps, give one of them`);
  const nodeSelector: Record<string, string> = {};
  for (const pair of raw('node-selector')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) fail('node-selector', `expected key=value pairs separated by commas, got "${pair}"`);
    nodeSelector[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  let tolerations: RolloutConfig['tolerations'] = [];
  if (raw('tolerations')) {
    let t: unknown;
    try {
      t = yaml.load(raw('tolerations'));
    } catch (e) {
      fail('tolerations', `is not YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!Array.isArray(t) || !t.every((x) => typeof x === 'object' && x !== null))
      fail('tolerations', 'expected a list of tolerations, e.g. [{key: gpu, operator: Exists, effect: NoSchedule}]');
    tolerations = t as RolloutConfig['tolerations'];
  }
  const q = DEFAULT_QUERIES[s.runtime];
  const rollout: RolloutConfig = {
    app: raw('app') || s.modelName,
    runtime: s.runtime,
    namespace: raw('namespace'),
    kubeconfig: r.given('kubeconfig')?.trim() ?? '',
    image: s.image,
    modelName: s.modelName,
    strategy,
    replicas: r.int('replicas', 1),
    autoscale: parseAutoscale(raw('autoscale')),
    disruptionBudget: readBudget(raw('disruption-budget')),
    canaryPercent,
    canarySteps: canarySteps.length ? canarySteps : [canaryPercent],
    drainDelayS: r.int('drain-delay', 0),
    bakeTimeS: r.num('bake-time'),
    timeoutS: r.int('rollout-timeout', 1),
    verifyUrl: raw('verify-url'),
    protocol: s.protocol,
    verifyRequests: r.int('verify-requests', 0),
    maxLatencyMs: r.num('max-latency-ms'),
    reference: s.reference,
    tolerance: s.tolerance,
    apiKey: s.apiKey,
    gpu: s.gpu,
    prometheus: raw('prometheus-url')
      ? {
          url: raw('prometheus-url'),
          samplesQuery: raw('prometheus-samples-query') || q.samples,
          errorRateQuery: raw('prometheus-error-rate-query') || q.errorRate,
          latencyQuery: raw('prometheus-latency-query') || q.latency,
          minSamples: r.int('min-samples', 1),
          maxErrorRate: r.num('max-error-rate'),
          maxP99Ms: r.num('max-p99-ms'),
        }
      : undefined,
    comparison: readComparison(r, canarySteps.length > 0),
    dryRun: r.bool('dry-run'),
    createNamespace: r.bool('create-namespace'),
    lockTimeoutS: r.num('lock-timeout'),
    leaseDurationS: r.int('lease-duration', 1),
    manifest: raw('manifest'),
    patch: raw('patch'),
    nodeSelector,
    tolerations,
    imagePullSecrets: raw('image-pull-secrets')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
    pullSecret: r.bool('create-pull-secret') ? { username: s.registryUsername, password: s.registryPassword } : undefined,
    apiKeySecret: r.secretRef('api-key-secret'),
    modelKeySecret: r.secretRef('model-key-secret'),
    cpu: raw('cpu'),
    memory: raw('memory'),
    verification: s.verification,
    registryLogin: s.registryUsername ? { username: s.registryUsername, password: s.registryPassword } : undefined,
  };
  if (stage === 'rollout' || stage === 'preview' || stage === 'pipeline') {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(rollout.app) || rollout.app.length > 50)
      fail(
        raw('app') ? 'app' : 'model-name',
        `the app name must be a DNS label of at most 50 characters (it names the Deployment and <app>-canary), got "${rollout.app}"`,
      );
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(rollout.namespace) || rollout.namespace.length > 63)
      fail('namespace', `must be a DNS label, got "${rollout.namespace}"`);
    if (rollout.drainDelayS > MAX_DRAIN_DELAY_S)
      fail('drain-delay', `expected whole seconds from 0 to ${MAX_DRAIN_DELAY_S} (every pod termination waits that long), got "${raw('drain-delay')}"`);
    if (stage !== 'pipeline' && !/@sha256:[0-9a-f]{64}$/.test(rollout.image))
      fail('image', `${stage} deploys the image by digest (repository@sha256:..., the image stage's "image" output), got "${rollout.image}"`);
    if (rollout.pullSecret && (!rollout.pullSecret.username || !rollout.pullSecret.password))
      fail('create-pull-secret', 'needs registry-username and registry-password (the pull Secret is made from them)');
    if (rollout.apiKeySecret && !rollout.verifyUrl && rollout.reference)
      fail(
        'verify-url',
        "is required with api-key-secret: the API server's service proxy drops the Authorization header, so golden requests need a direct URL to the canary",
      );
    if (rollout.prometheus && !/^https?:\/\//.test(rollout.prometheus.url)) fail('prometheus-url', `expected an http(s) URL, got "${rollout.prometheus.url}"`);
    if (rollout.protocol === 'grpc') {
      // the API server's service proxy speaks HTTP/1.1: gRPC (HTTP/2) needs a direct address of the canary
      if (!rollout.verifyUrl)
        fail(
          'verify-url',
          "is required with protocol grpc: the API server's service proxy carries HTTP/1.1 only, so golden requests over gRPC need the canary's gRPC address, grpc://host:port (grpcs:// for TLS)",
        );
      if (!/^grpcs?:\/\//.test(rollout.verifyUrl) || !grpcTarget(rollout.verifyUrl))
        fail('verify-url', `with protocol grpc, expected the canary's gRPC address grpc://host:port (grpcs:// for TLS), got "${rollout.verifyUrl}"`);
    } else if (rollout.verifyUrl && !/^https?:\/\//.test(rollout.verifyUrl))
      fail(
        'verify-url',
        `expected an http(s) URL, got "${rollout.verifyUrl}"${/^grpcs?:/.test(rollout.verifyUrl) ? ' (a gRPC address needs protocol: grpc)' : ''}`,
      );
  }
  return rollout;
}

/** The most steps canary-steps may have: each one waits for its pods, a bake and an analysis. */
export const MAX_CANARY_STEPS = 10;

const inputDefault = (name: string): string => ROLLOUT_INPUTS.find((i) => i.name === name)!.default;

/** canary-steps: whole percentages from 1 to 100, strictly increasing, at most MAX_CANARY_STEPS; '' is none. */
export function readCanarySteps(v: string): number[] {
  if (v.trim() === '') return [];
  const items = v.split(',').map((x) => x.trim());
  const steps: number[] = [];
  for (const [i, item] of items.entries()) {
    if (!/^\d+%?$/.test(item) || Number(item.replace('%', '')) < 1 || Number(item.replace('%', '')) > 100)
      fail('canary-steps', `expected whole percentages from 1 to 100, comma-separated (e.g. 10,25,50,100), got "${item}" at step ${i + 1} of "${v}"`);
    const p = Number(item.replace('%', ''));
    if (steps.length && p <= steps[steps.length - 1])
      fail(
        'canary-steps',
        `each step must be larger than the one before (the canary only grows until the promotion), got ${p} after ${steps[steps.length - 1]} in "${v}"`,
      );
    steps.push(p);
  }
  if (steps.length > MAX_CANARY_STEPS)
    fail('canary-steps', `at most ${MAX_CANARY_STEPS} steps (each waits for its pods, bake-time and its analysis), got ${steps.length} in "${v}"`);
  return steps;
}

/** compare-with-stable (auto: on with a stepped canary) and its thresholds. */
function readComparison(r: Reader, stepped: boolean): ComparisonThresholds | undefined {
  const on = r.oneOf('compare-with-stable', ['auto', 'true', 'false'] as const);
  if (on === 'false' || (on === 'auto' && !stepped)) return undefined;
  const t: ComparisonThresholds = {
    ...DEFAULT_COMPARISON_THRESHOLDS,
    maxErrorRateIncrease: r.num('max-error-rate-increase'),
    maxLatencyRatio: r.num('max-latency-ratio'),
    minSamples: r.int('analysis-min-samples', 1),
  };
  if (!(t.maxErrorRateIncrease >= 0 && t.maxErrorRateIncrease <= 1))
    fail('max-error-rate-increase', `expected a share from 0 to 1, got "${r.raw('max-error-rate-increase')}"`);
  if (!(t.maxLatencyRatio >= 1)) fail('max-latency-ratio', `expected a ratio of 1 or more, got "${r.raw('max-latency-ratio')}"`);
  return t;
}

/** disruption-budget: auto, none, a positive number of pods or a percentage from 1% to 100% (maxUnavailable). */
function readBudget(v: string): DisruptionBudget {
  const t = v.trim();
  if (t === 'auto' || t === 'none') return t;
  if (/^[1-9]\d*$/.test(t)) return Number(t);
  const pct = /^([1-9]\d*)%$/.exec(t);
  if (pct && Number(pct[1]) <= 100) return t as `${number}%`;
  return fail(
    'disruption-budget',
    `expected auto, none, a number of pods (1 or more) or a percentage (1% to 100%) that may be unavailable at once, got "${v}"${/^0%?$/.test(t) ? ' (0 would block every node drain: use none for no budget)' : ''}`,
  );
}
