import { ModelshipError } from '../util/errors';
import type { Kube } from './kube';
import type { K8sObject } from './manifests';
import type { AutoscaleSpec } from './autoscale';

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

/** The field manager of modelship's own applies: kube.ts's FIELD_MANAGER (kube.ts is not imported here: it loads client-node). */
export const MODELSHIP_MANAGER = 'modelship';
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
export function appliesReplicas(live: ReplicasObject, manager = MODELSHIP_MANAGER): boolean {
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
