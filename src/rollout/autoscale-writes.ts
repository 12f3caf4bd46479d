import { ModelshipError } from '../util/errors';
import type { Kube } from './kube';
import type { K8sObject } from './manifests';
import { AUTOSCALER_KINDS, AutoscaleSpec } from './autoscale';
import { applyMarked, takeOver, ObjectStore } from './writes';
import { FIELD_MANAGER } from './owner';

/**
 * How the rollout works with an autoscaler instead of against it (issue 23 §3): once the stable Deployment exists its
 * replicas are the autoscaler's (an HPA, or KEDA's), so modelship's apply of the stable leaves spec.replicas out, and
 * the canary is sized from the stable's current replicas.
 *
 * Leaving a field out of a server-side apply is not neutral: a field the applier owned (it set it in its last apply)
 * and now omits is removed, and a Deployment without replicas defaults to 1. Whether modelship still owns the field
 * depends on the autoscaler: an HPA writes replicas through the scale subresource, an update, which takes the field
 * from every other manager when it changes the value; as long as the HPA has never changed it (its recommendation
 * equals what modelship set, or it cannot read its metrics yet), modelship's apply still owns it. So, before the first
 * apply without replicas, the field is handed over as Kubernetes documents it (server-side apply, "Transferring
 * ownership"): one apply of only {spec.replicas: <the current value>} under a field manager of its own
 * (HANDOVER_MANAGER), without force (the same value: it shares the field with modelship, no conflict), then modelship's
 * own apply without replicas drops only modelship's claim; the hand-over manager keeps the field, at its value, until
 * the HPA changes it and so takes it. A conflict means the HPA changed the value in between: it owns it now, and
 * modelship no longer does.
 */

/** The field manager that takes spec.replicas over from modelship for the autoscaler (the hand-over). */
export const HANDOVER_MANAGER = 'modelship-handover-to-hpa';

/** A Deployment's managedFields entry, as far as ownership goes. */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

/** A live Deployment, as far as its replicas and who owns them go. */
export type ReplicasObject = K8sObject & { metadata: { managedFields?: ManagedFieldsEntry[] }; spec?: { replicas?: number } };

const ownsReplicasField = (m: ManagedFieldsEntry) => {
  const spec = m.fieldsV1?.['f:spec'] as Record<string, unknown> | undefined;
  return spec !== undefined && 'f:replicas' in spec;
};

/** Who owns spec.replicas of a live object: `manager operation[/subresource]` of each owner (evidence for logs and tests). */
export function replicasOwners(live: ReplicasObject): string[] {
  return (live.metadata.managedFields ?? []).filter(ownsReplicasField).map((m) => `${m.manager} ${m.operation}${m.subresource ? `/${m.subresource}` : ''}`);
}

/** Whether `manager`'s server-side apply owns spec.replicas: leaving it out of that manager's next apply would remove it. */
export function appliesReplicas(live: ReplicasObject, manager = FIELD_MANAGER): boolean {
  return (live.metadata.managedFields ?? []).some((m) => m.manager === manager && m.operation === 'Apply' && !m.subresource && ownsReplicasField(m));
}

/** The replicas a first deploy creates the stable with: the `replicas` input within the autoscaler's min and max. */
export const initialReplicas = (spec: AutoscaleSpec, replicas: number): number => Math.min(spec.max, Math.max(spec.min, replicas));

/**
 * The stable's current replicas, which size the canary (canary-percent of them) and the disruption budget: with
 * autoscale, what the live Deployment runs (the autoscaler's count), or on a first deploy its initial replicas;
 * without, the `replicas` input.
 */
export function stableReplicas(live: { spec?: { replicas?: number } } | undefined, spec: AutoscaleSpec | undefined, replicas: number): number {
  if (!spec) return replicas;
  return live?.spec?.replicas ?? initialReplicas(spec, replicas);
}

/**
 * The stable Deployment as modelship writes it with autoscale on: on a first deploy (no live stable) with its initial
 * replicas; then, applied (`apply`), without spec.replicas (the autoscaler's; hand it over first: handOverReplicas);
 * written whole by a takeover's replace (`replace`: a PUT without replicas would set 1), with the live count.
 */
export function stableForAutoscale<T extends K8sObject>(
  planned: T,
  live: { spec?: { replicas?: number } } | undefined,
  spec: AutoscaleSpec,
  how: 'apply' | 'replace' = 'apply',
): T {
  const plannedSpec = (planned.spec ?? {}) as { replicas?: number };
  const next: Record<string, unknown> = { ...plannedSpec };
  if (!live) next.replicas = initialReplicas(spec, plannedSpec.replicas ?? spec.min);
  else if (how === 'replace') next.replicas = live.spec?.replicas ?? initialReplicas(spec, plannedSpec.replicas ?? spec.min);
  else delete next.replicas;
  return { ...planned, spec: next };
}

/** What Kube does for the hand-over (a test gives its own). */
export type ReplicaStore = Pick<Kube, 'get' | 'apply'>;

export interface HandOver {
  /** the stable's replicas when it was handed over (or found not to be modelship's) */
  replicas: number;
  /** true: the hand-over apply was made; false: modelship's apply did not own spec.replicas, nothing to hand over */
  handedOver: boolean;
  /** the owners of spec.replicas before (replicasOwners) */
  ownersBefore: string[];
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Before modelship's first apply of the stable `<app>` without spec.replicas: hand the field over from modelship's
 * apply (see above), so leaving it out keeps the current count. Nothing is written when modelship's apply does not
 * own it (an HPA has changed it since: it owns it; or an earlier deploy handed it over). Undefined when there is no
 * stable yet. A conflict (the HPA changed the count between the read and the hand-over) is read again.
 */
export async function handOverReplicas(kube: ReplicaStore, namespace: string, app: string): Promise<HandOver | undefined> {
  for (let attempt = 0; ; attempt++) {
    const live = await kube.get<ReplicasObject>('apps/v1', 'Deployment', namespace, app);
    if (!live) return undefined;
    const replicas = live.spec?.replicas ?? 1;
    const ownersBefore = replicasOwners(live);
    if (!appliesReplicas(live)) return { replicas, handedOver: false, ownersBefore };
    try {
      await kube.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: app, namespace }, spec: { replicas } }, false, {
        fieldManager: HANDOVER_MANAGER,
        force: false,
      });
      return { replicas, handedOver: true, ownersBefore };
    } catch (e) {
      if (!/HTTP 409/.test(message(e))) throw e;
      if (attempt >= 4)
        throw new ModelshipError(
          'cluster',
          `Kubernetes: handing spec.replicas of Deployment ${namespace}/${app} over to its autoscaler kept conflicting: ${message(e)}`,
        );
    }
  }
}

/** The stable Deployment without spec.replicas (a copy): an apply that leaves them to the autoscaler. */
export function withoutReplicas<T extends K8sObject>(obj: T): T {
  const spec = { ...((obj.spec ?? {}) as Record<string, unknown>) };
  delete spec.replicas;
  return { ...obj, spec };
}

const MANAGED_BY = 'app.kubernetes.io/managed-by';

/** An autoscaler `<app>` of a kind modelship may have made (AUTOSCALER_KINDS), as the cluster has it. */
export interface LiveAutoscaler {
  apiVersion: string;
  kind: string;
  /** modelship made it (label managed-by): a deploy that no longer uses it deletes it */
  modelships: boolean;
}

/**
 * The autoscalers `<app>` in `namespace` of the kinds a deploy with `keep` (the autoscaler it applies; undefined:
 * autoscale is off) does not use: the other kind, or both. `unreadable`: the kinds the deploy identity may not read
 * (HTTP 403: it was not given the autoscale permissions), about which nothing can be told. A kind the API server does
 * not serve (KEDA not installed) has none.
 */
export async function otherAutoscalers(
  kube: Pick<Kube, 'get'>,
  namespace: string,
  app: string,
  keep: K8sObject | undefined,
): Promise<{ found: LiveAutoscaler[]; unreadable: string[] }> {
  const found: LiveAutoscaler[] = [];
  const unreadable: string[] = [];
  for (const k of AUTOSCALER_KINDS) {
    if (keep?.kind === k.kind) continue;
    let live: K8sObject | undefined;
    try {
      live = await kube.get(k.apiVersion, k.kind, namespace, app);
    } catch (e) {
      if (!/HTTP 403/.test(message(e))) throw e;
      unreadable.push(k.kind);
      continue;
    }
    if (live) found.push({ apiVersion: k.apiVersion, kind: k.kind, modelships: live.metadata.labels?.[MANAGED_BY] === 'modelship' });
  }
  return { found, unreadable };
}

/** What writeStable writes: the stable Deployment `<app>` as the strategy marks it, and what scales it. */
export interface StableWrite {
  namespace: string;
  app: string;
  /** the run: the mark on an autoscaler it creates */
  owner: string;
  /** the stable as applied (with autoscale and a live stable: without spec.replicas) */
  stable: K8sObject;
  /** a takeover: the stable as the full replace writes it first (with autoscale: at the live count) */
  takeover?: K8sObject;
  /** autoscale: the HorizontalPodAutoscaler or ScaledObject `<app>`; undefined: autoscale is off */
  autoscaler?: K8sObject;
}

export interface StableWritten {
  /** this run created the autoscaler (a roll back removes it) */
  createdAutoscaler: boolean;
  /** the hand-over of spec.replicas, when autoscale is on and the stable existed */
  handOver?: HandOver;
  /** the autoscalers modelship had made that were deleted (`Kind name`) */
  deleted: string[];
}

/**
 * Write the stable Deployment and what scales it (every strategy's write of the stable: basic's step, the canary's
 * promotion, a first deploy's too), in this order:
 * 1. the autoscalers modelship made that this deploy does not use are deleted: the other kind (cpu ↔ inflight: two
 *    autoscalers on one Deployment fight), or both with autoscale off; then the apply in 3, with the replicas input,
 *    takes spec.replicas back (server-side apply with force takes it from the HPA's update);
 * 2. a takeover's full replace (at the live count with autoscale);
 * 3. with autoscale and a live stable, spec.replicas handed over (handOverReplicas: only where modelship's apply owns
 *    it), then the stable applied without it: the replicas the autoscaler set stay; a first deploy's stable is created
 *    with its initial replicas and handed over right after;
 * 4. the autoscaler applied (marked as this run's when it creates it): an HPA targets `<app>` by name, so it follows
 *    the stable through the promotion, the same Deployment with a new template.
 * Nothing here asks for a permission autoscale off does not have: a deploy identity that may not read autoscalers
 * (HTTP 403) is told in the log when the stable's replicas show an autoscaler (not modelship's own apply).
 */
export async function writeStable(kube: ObjectStore, w: StableWrite, log: (line: string) => void): Promise<StableWritten> {
  const { namespace, app } = w;
  const others = await otherAutoscalers(kube, namespace, app, w.autoscaler);
  const deleted: string[] = [];
  const why = w.autoscaler ? `autoscale now makes a ${w.autoscaler.kind}` : 'autoscale is off';
  for (const a of others.found) {
    if (!a.modelships) {
      log(
        `${a.kind} ${app} is not modelship's (no managed-by label): left alone, though it may scale Deployment ${app} against ${w.autoscaler ? `the ${w.autoscaler.kind}` : 'the replicas input'}`,
      );
      continue;
    }
    if (await kube.remove(a.apiVersion, a.kind, namespace, app)) {
      deleted.push(`${a.kind} ${app}`);
      log(`deleted ${a.kind} ${app}, which modelship made (${why})`);
    }
  }
  if (others.unreadable.length && !w.autoscaler) {
    const live = await kube.get<ReplicasObject>('apps/v1', 'Deployment', namespace, app);
    if (live && !appliesReplicas(live))
      log(
        `the deploy identity may not read ${others.unreadable.join(' or ')} objects in ${namespace}: an autoscaler modelship made for ${app} (autoscale) would keep scaling it; its replicas are owned by ${replicasOwners(live).join(', ') || 'nobody'} (\`modelship rbac --autoscale\` grants the permissions)`,
      );
  }
  if (w.takeover) await takeOver(kube, w.takeover);
  let handOver: HandOver | undefined;
  if (w.autoscaler) {
    handOver = await handOverReplicas(kube, namespace, app);
    if (handOver?.handedOver)
      log(
        `spec.replicas of Deployment ${app} (${handOver.replicas}) handed over to its autoscaler (field manager ${HANDOVER_MANAGER}): modelship's apply leaves it out from now on`,
      );
  }
  await kube.apply(w.stable);
  if (w.autoscaler && !handOver) {
    // a first deploy: created with its initial replicas, under modelship's apply; handed over at once, so that no later
    // apply of modelship's (basic's promotion, the next deploy) can take the autoscaler's count back
    handOver = await handOverReplicas(kube, namespace, app);
    if (handOver?.handedOver)
      log(`spec.replicas of the new Deployment ${app} (${handOver.replicas}) handed over to its autoscaler (field manager ${HANDOVER_MANAGER})`);
  }
  let createdAutoscaler = false;
  if (w.autoscaler) {
    createdAutoscaler = await applyMarked(kube, w.autoscaler, w.owner);
    log(`${createdAutoscaler ? 'created' : 'applied'} ${describeAutoscaler(w.autoscaler)}`);
  }
  return { createdAutoscaler, handOver, deleted };
}

/** `HorizontalPodAutoscaler lenet on Deployment lenet (1 to 3 replicas)`, for the log and the dry run. */
export function describeAutoscaler(obj: K8sObject): string {
  const spec = (obj.spec ?? {}) as { minReplicas?: number; maxReplicas?: number; minReplicaCount?: number; maxReplicaCount?: number };
  const min = spec.minReplicas ?? spec.minReplicaCount;
  const max = spec.maxReplicas ?? spec.maxReplicaCount;
  return `${obj.kind} ${obj.metadata.name} on Deployment ${obj.metadata.name} (${min} to ${max} replicas)`;
}

/** The part of Kube the check of the served autoscaler uses. */
export type Discovery = Pick<Kube, 'serves'>;

/**
 * Before anything is written: the API server serves the autoscaler's kind (KEDA's ScaledObject is a custom resource:
 * without KEDA's CRDs there is none, and the server-side dry run could only say "not found"). Fails naming the input
 * and what to install. Returns a warning when the HPA's CPU metric has no source (metrics.k8s.io: metrics-server).
 */
export async function checkAutoscalerServed(kube: Discovery, spec: AutoscaleSpec, obj: K8sObject): Promise<string | undefined> {
  if (!(await kube.serves(obj.apiVersion, obj.kind))) {
    const why =
      obj.kind === 'ScaledObject'
        ? `inflight=${spec.inflight} makes a KEDA ScaledObject (${obj.apiVersion}), and this cluster does not serve it: install KEDA (its CRDs, operator and metrics API server: https://keda.sh/docs/latest/deploy/), or autoscale on cpu alone (a HorizontalPodAutoscaler)`
        : `the cluster does not serve ${obj.apiVersion} ${obj.kind} (Kubernetes 1.23 and later do)`;
    throw new ModelshipError('input', `input "autoscale": ${why}`, { field: 'autoscale' });
  }
  if (spec.cpu !== undefined && !(await kube.serves('metrics.k8s.io/v1beta1', 'PodMetrics')))
    return `autoscale cpu=${spec.cpu}: the cluster serves no resource metrics (metrics.k8s.io, from metrics-server): the autoscaler cannot read the pods' CPU, and keeps the replicas as they are until it can`;
  return undefined;
}
