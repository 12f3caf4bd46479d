import type { RolloutConfig } from './inputs';
import { SERVING_PORT } from '../protocol/runtime';
import { parseImageRef } from '../shared/registry';
import {
  pullSecret,
  pullSecretName,
  deployment,
  service,
  canaryReplicas,
  validateSpec,
  selectorLabels,
  disruptionBudget,
  budgetMaxUnavailable,
  DeploySpec,
  K8sObject,
  METRICS_PORT,
  DRAIN_TIMEOUT_S,
} from './manifests';
import { applyPatches, PatchDoc } from './patch';
import { OWNER_LABEL } from './owner';
import { prometheusProvider } from './prometheus';
import { Aborted } from './health';
import type { Gate, Release } from './gates/gate';
import type { GateRecord } from './gates/ledger';
import { podsReadyGate } from './gates/pods';
import { gpuProviderGate } from './gates/gpu-provider';
import { goldenGate, GoldenSettings } from './gates/golden';
import { bakeGate } from './gates/bake';
import { metricsGate } from './gates/prometheus';
import { comparisonGate, openWindowGate } from './gates/comparison';
import type { ComparisonSource } from './analysis/window';
import { prometheusWindowSource } from './analysis/prometheus-window';
import { podMetricsSource } from './analysis/pod-metrics';
import type { GateContext } from './gates/gate';
import { autoscalerObject } from './autoscale';
import { stableForAutoscale, stableReplicas as currentStableReplicas, ManagedFieldsEntry } from './autoscale-writes';

/**
 * The rollout as data, before anything is written: from the inputs and what the cluster runs now, the objects the
 * run applies (as the API server will get them), which of them it creates, what goes through the server-side dry
 * run, and the gates its strategy runs, in order. Pure: no cluster, no clock (test/rollout-plan.test.ts).
 */

export const MANAGED_BY = 'app.kubernetes.io/managed-by';

type Labels = Record<string, string>;

/** The stable Deployment `<app>` as the cluster runs it before the deploy (its replicas and who owns them: autoscale). */
export type LiveDeployment = K8sObject & {
  metadata: { managedFields?: ManagedFieldsEntry[] };
  spec: { replicas?: number; selector: { matchLabels?: Labels }; template: { metadata?: { labels?: Labels } } };
};

/** A generated Deployment: its selector and pod labels are always there. */
export type PlannedDeployment = K8sObject & { spec: { selector: { matchLabels: Labels }; template: { metadata: { labels: Labels } } } };

/** What the cluster has before the deploy, as far as the plan depends on it. */
export interface LiveState {
  namespaceExists: boolean;
  /** the stable Deployment, when there is one */
  stable?: LiveDeployment;
  /** every kubelet runs the preStop `sleep` action (manifests.ts's sleepActionServed) */
  sleepAction: boolean;
}

/** A strategy's verification: the release its gates judge, and the gates, in order. */
export interface Verification {
  release: Release;
  gates: Gate[];
}

/**
 * One step of a canary (canary-steps, or one at canary-percent): its size in percent of the stable's replicas, and
 * the canary's replicas then (rounded up, at least 1). Replica weighting: the main Service selects both tracks, so
 * the canary takes about replicas / (replicas + stable replicas) of its traffic.
 */
export interface CanaryStepPlan {
  percent: number;
  replicas: number;
}

export interface RolloutPlan {
  strategy: RolloutConfig['strategy'];
  spec: DeploySpec;
  /** who runs this deploy (owner.ts): the lease holder, and the mark on what it creates */
  owner: string;
  /** replicas of the canary at its first step (0 for basic) */
  canaryReplicas: number;
  /**
   * the stable's replicas: what the canary's steps are sized from (the replicas input; with autoscale, the count the
   * live stable runs, or a first deploy's replicas within min and max). The stable keeps them, and is never scaled
   * down by modelship, until the promotion.
   */
  stableReplicas: number;
  /** canary: its steps, in order (canary-steps, else one at canary-percent); basic: none */
  steps: CanaryStepPlan[];
  /** the namespace does not exist: the run creates it (a dry run says it would) */
  createsNamespace: boolean;
  /** the stable as it runs now: the template a failure returns to */
  liveStable?: LiveDeployment;
  /** the stable exists and modelship did not make it: the first write replaces it whole */
  takeover: boolean;
  objects: {
    /**
     * the stable `<app>`, keeping the live selector when there is one; with autoscale and a live stable, without
     * spec.replicas (the autoscaler's: autoscale-writes.ts)
     */
    stable: PlannedDeployment;
    /** the stable as a takeover's full replace writes it (with autoscale: at the live count; else `stable` itself) */
    takeoverStable: PlannedDeployment;
    /** autoscale: the stable's HorizontalPodAutoscaler or KEDA ScaledObject `<app>` */
    autoscaler?: K8sObject;
    canary: K8sObject;
    mainService: K8sObject;
    canaryService: K8sObject;
    /** the stable's PodDisruptionBudget; none when disruption-budget says so */
    disruptionBudget?: K8sObject;
    /** create-pull-secret's Secret, and the registry it is for */
    pullSecret?: { object: K8sObject; registry: string };
  };
  /** the disruption-budget input as the log names it, when a budget modelship made is deleted */
  budgetSetting: string;
  /** what a dry run shows, diffed against the live objects (never the pull Secret: its data would be printed) */
  planned: K8sObject[];
  /** everything the run may write, for the server-side dry run before anything is applied */
  admitted: K8sObject[];
  /** of those, what is written by a full replace (a takeover's stable) */
  replaced: K8sObject[];
  /** what each step of the strategy verifies, in order: canary, one per step of `steps` (stepGates); basic, the stable's one */
  verifications: Verification[];
  /** the gates of the report before anything ran: skipped, with why when one cannot run */
  gates: GateRecord[];
}

/** The deploy spec from the inputs, validated: what is wrong with them fails here, before the cluster is asked anything. */
export function deploySpec(cfg: RolloutConfig): DeploySpec {
  const spec: DeploySpec = {
    app: cfg.app,
    runtime: cfg.runtime,
    namespace: cfg.namespace,
    image: cfg.image,
    modelName: cfg.modelName,
    replicas: cfg.replicas,
    gpu: cfg.gpu,
    resources: { cpu: cfg.cpu, memory: cfg.memory },
    nodeSelector: cfg.nodeSelector,
    tolerations: cfg.tolerations,
    imagePullSecrets: [...cfg.imagePullSecrets, ...(cfg.pullSecret ? [pullSecretName(cfg.app)] : [])],
    apiKeySecret: cfg.apiKeySecret,
    modelKeySecret: cfg.modelKeySecret,
    progressDeadlineSeconds: Math.max(10, Math.round(cfg.timeoutS)),
    port: SERVING_PORT,
    metricsPort: METRICS_PORT,
    drainDelayS: cfg.drainDelayS,
    drainTimeoutS: DRAIN_TIMEOUT_S,
  };
  validateSpec(spec);
  return spec;
}

/** Replicas of the canary at its first step: 0 for basic; a canary-percent out of range fails. */
export function canaryCount(cfg: RolloutConfig): number {
  return canarySteps(cfg, cfg.replicas)[0]?.replicas ?? 0;
}

/** The canary's steps, sized from `stableReplicas` (basic: none); a percentage out of range fails. */
export function canarySteps(cfg: RolloutConfig, stableReplicas: number): CanaryStepPlan[] {
  if (cfg.strategy !== 'canary') return [];
  return cfg.canarySteps.map((percent) => ({ percent, replicas: canaryReplicas(stableReplicas, percent) }));
}

export function planRollout(cfg: RolloutConfig, patches: PatchDoc[], owner: string, live: LiveState): RolloutPlan {
  const spec: DeploySpec = { ...deploySpec(cfg), sleepAction: live.sleepAction };
  const app = cfg.app;
  const liveStable = live.stable;
  const takeover = liveStable !== undefined && liveStable.metadata.labels?.[MANAGED_BY] !== 'modelship';
  const generated = applyPatches(deployment(spec, 'stable', cfg.replicas), patches, app) as PlannedDeployment;
  if (liveStable) {
    // a Deployment's selector is immutable: keep the live one, and make the pods carry its labels and ours
    generated.spec.selector = liveStable.spec.selector as { matchLabels: Labels };
    generated.spec.template.metadata.labels = { ...(liveStable.spec.selector.matchLabels ?? {}), ...generated.spec.template.metadata.labels };
  }
  // with autoscale the replicas are the autoscaler's once the stable exists: applied without them (a first deploy:
  // the replicas input within min and max; a takeover's replace: the live count, a PUT without them would set 1)
  const as = cfg.autoscale;
  const stable = as ? stableForAutoscale(generated, liveStable, as) : generated;
  const takeoverStable = as && takeover ? stableForAutoscale(generated, liveStable, as, 'replace') : stable;
  const autoscalerObj = as ? autoscalerObject(as, app, cfg.namespace, cfg.runtime) : undefined;
  // the stable's replicas, which size the canary's steps (one number, used for every step): the replicas input;
  // with autoscale, what the stable runs now (the autoscaler's count)
  const stableReplicas = currentStableReplicas(liveStable, as, cfg.replicas);
  const steps = canarySteps(cfg, stableReplicas);
  const nCanary = steps[0]?.replicas ?? 0;
  const canary = applyPatches(deployment(spec, 'canary', nCanary || 1), patches, app);
  canary.metadata.labels = { ...canary.metadata.labels, [OWNER_LABEL]: owner };
  const mainService = applyPatches(service(spec, 'main'), patches, app);
  const canaryService = service(spec, 'canary');
  canaryService.metadata.labels = { ...canaryService.metadata.labels, [OWNER_LABEL]: owner };
  // the stable's PodDisruptionBudget, over its pods as its (live) selector picks them
  const maxUnavailable = budgetMaxUnavailable(cfg.disruptionBudget, stableReplicas);
  const budget = maxUnavailable === undefined ? undefined : disruptionBudget(spec, maxUnavailable, stable.spec.selector.matchLabels);
  const registry = cfg.pullSecret ? parseImageRef(cfg.image).registry : '';
  const secret = cfg.pullSecret ? pullSecret(spec, registry, cfg.pullSecret.username, cfg.pullSecret.password) : undefined;
  const isCanary = cfg.strategy === 'canary';
  const planned = [
    ...(isCanary ? [canary, canaryService, stable, ...(takeover ? [] : [mainService])] : [stable, mainService]),
    ...(budget ? [budget] : []),
    ...(autoscalerObj ? [autoscalerObj] : []),
  ];
  return {
    strategy: cfg.strategy,
    spec,
    owner,
    canaryReplicas: nCanary,
    stableReplicas,
    steps,
    createsNamespace: !live.namespaceExists,
    liveStable,
    takeover,
    objects: {
      stable,
      takeoverStable,
      autoscaler: autoscalerObj,
      canary,
      mainService,
      canaryService,
      disruptionBudget: budget,
      pullSecret: secret ? { object: secret, registry } : undefined,
    },
    budgetSetting: `disruption-budget ${cfg.disruptionBudget}${cfg.disruptionBudget === 'auto' ? `: ${stableReplicas} replica` : ''}`,
    planned,
    // a takeover's main Service is applied with the promotion, after the dry run's diff; its stable is written by a
    // full replace first (dry-run so)
    admitted: [...planned.map((o) => (o === stable ? takeoverStable : o)), ...(isCanary && takeover ? [mainService] : []), ...(secret ? [secret] : [])],
    replaced: takeover ? [takeoverStable] : [],
    verifications: isCanary
      ? canaryVerifications(cfg, steps, canary, canaryService, liveStable ? stable.spec.selector.matchLabels : undefined)
      : [basicVerification(cfg)],
    gates: initialGateRecords(cfg, isCanary, liveStable !== undefined),
  };
}

const goldenSettings = (cfg: RolloutConfig): GoldenSettings => ({
  modelName: cfg.modelName,
  reference: cfg.reference,
  tolerance: cfg.tolerance,
  apiKey: cfg.apiKey,
  verifyRequests: cfg.verifyRequests,
  maxLatencyMs: cfg.maxLatencyMs,
});

/** The canary beside the stable, one verification per step: the same release, each step's gates (stepGates). */
function canaryVerifications(
  cfg: RolloutConfig,
  steps: CanaryStepPlan[],
  canary: K8sObject,
  canaryService: K8sObject,
  stableSelector: Labels | undefined,
): Verification[] {
  const release: Release = {
    track: 'canary',
    deployment: canary.metadata.name,
    service: canaryService.metadata.name,
    podSelector: { ...selectorLabels(cfg.app), track: 'canary' },
  };
  return steps.map((_, i) => {
    const gates = stepGates(cfg, i, release, stableSelector);
    // a stepped canary's timeline and gate details say which step a check belongs to; one step says nothing more
    return { release, gates: steps.length > 1 ? gates.map((g) => atStep(g, stepLabel(i, steps))) : gates };
  });
}

/**
 * The gates of the canary's step `i` (0-based), in order. The first: its pods Ready (on the GPU), the golden requests,
 * the bake, then the metrics. Every later one: its pods Ready (the new ones, on the GPU), the bake, the metrics: the
 * golden requests run once, at the first step (the later ones add pods of the same template). A per-step analysis
 * gate goes at the end of the list, for every step.
 */
export function stepGates(cfg: RolloutConfig, i: number, release: Release, stableSelector: Labels | undefined): Gate[] {
  const golden = goldenSettings(cfg);
  const first = i === 0;
  // the analysis against the stable (compare-with-stable): its window is the bake, so it opens just before it
  const source = cfg.comparison && stableSelector ? comparisonSource(cfg, release, stableSelector) : undefined;
  return [
    podsReadyGate('canary pods Ready', (ready) => `${ready} canary pod(s) Ready`),
    ...(cfg.gpu ? [gpuProviderGate('canary pods compute on the GPU', cfg.modelName)] : []),
    ...(first ? [goldenGate(`golden requests to ${release.service}`, golden)] : []),
    ...(source ? [openWindowGate(source)] : []),
    bakeGate(cfg.bakeTimeS, 'canary pod(s)', golden),
    ...(source && cfg.comparison ? [comparisonGate(source, cfg.comparison, { windowS: cfg.bakeTimeS })] : []),
    ...(cfg.prometheus
      ? [
          metricsGate(
            prometheusProvider(cfg.prometheus.url),
            cfg.prometheus,
            { namespace: cfg.namespace, app: cfg.app, model: cfg.modelName },
            stableSelector !== undefined,
          ),
        ]
      : []),
  ];
}

/**
 * Where the analysis's numbers come from: Prometheus with prometheus-url, else the pods' own /metrics through the API
 * server (the stable's pods by its selector: a taken-over stable's own labels).
 */
function comparisonSource(cfg: RolloutConfig, release: Release, stableSelector: Labels): (ctx: GateContext) => ComparisonSource {
  const prometheus = cfg.prometheus;
  if (prometheus) {
    const source = prometheusWindowSource({
      metrics: prometheusProvider(prometheus.url),
      url: prometheus.url,
      namespace: cfg.namespace,
      runtime: cfg.runtime,
      model: cfg.modelName,
    });
    return () => source;
  }
  return (ctx) =>
    podMetricsSource({
      kube: ctx.kube,
      namespace: ctx.namespace,
      runtime: cfg.runtime,
      model: cfg.modelName,
      selectors: { canary: release.podSelector, stable: stableSelector },
    });
}

/** How the timeline and the gates' details name step `i` of `steps`: `step 2/4 (25%)`. */
export const stepLabel = (i: number, steps: readonly CanaryStepPlan[]): string => `step ${i + 1}/${steps.length} (${steps[i].percent}%)`;

/**
 * `gate` as a check of one step of a stepped canary: its timeline step is named `step 2/4 (25%): <name>`, and what
 * it says, passed or failed, starts with the step (the report's gate details, a roll back's reason).
 */
export function atStep(gate: Gate, label: string): Gate {
  return {
    ...gate,
    name: `${label}: ${gate.name}`,
    async run(ctx) {
      try {
        const result = await gate.run(ctx);
        return result.detail ? { ...result, detail: `${label}: ${result.detail}` } : result;
      } catch (e) {
        if (e instanceof Error && !(e instanceof Aborted)) e.message = `${label}: ${e.message}`;
        throw e;
      }
    },
  };
}

/** The stable updated in place: the same checks, but the metrics gate, which judges a canary. */
function basicVerification(cfg: RolloutConfig): Verification {
  const release: Release = { track: 'stable', deployment: cfg.app, service: cfg.app, podSelector: { ...selectorLabels(cfg.app), track: 'stable' } };
  const golden = goldenSettings(cfg);
  const gates = [
    podsReadyGate(`${cfg.app} rollout`),
    ...(cfg.gpu ? [gpuProviderGate(`${cfg.app} pods compute on the GPU`, cfg.modelName)] : []),
    goldenGate(`golden requests to ${release.service}`, golden),
    bakeGate(cfg.bakeTimeS, 'pod(s)', golden),
  ];
  return { release, gates };
}

function initialGateRecords(cfg: RolloutConfig, isCanary: boolean, stableRuns: boolean): GateRecord[] {
  const skipped = (gate: GateRecord['gate'], detail: string): GateRecord => ({ gate, result: 'skipped', detail, evidence: [], seconds: 0 });
  return [
    skipped('pods', ''),
    skipped('golden', cfg.reference ? '' : 'no reference given: only /v2/models/<model>/ready was checked'),
    skipped(
      'analysis',
      !cfg.comparison
        ? 'compare-with-stable is off (auto: on with canary-steps)'
        : !isCanary
          ? 'strategy basic: no canary to compare'
          : stableRuns
            ? ''
            : 'no stable to compare with (a first deploy)',
    ),
    skipped('prometheus', cfg.prometheus ? '' : 'no prometheus-url'),
  ];
}
