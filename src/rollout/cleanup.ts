import type { Logger } from '../stage';
import { Kube } from './kube';
import { leaseHolder, releaseIfHeld } from './lease';
import { K8sObject, pullSecretName } from './manifests';
import { CREATED_BY, OWNER_LABEL, PROMOTED_BY } from './owner';
import { deleteCanary } from './writes';
import { AUTOSCALER_KINDS } from './autoscale';

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * The action's post step, after a cancelled or killed job: remove what this run (`owner`) made and left, and nothing
 * else (what existed before the run, or another run made, is never touched; see owner.ts for the marks).
 * - its canary: the Deployment (and its Service) labelled with the owner;
 * - when the run did not finish — it still holds the deploy lease (a run that ends by itself gives it back after its
 *   decision) and no stable Deployment is marked as promoted by it — the objects it created: the main Service, the
 *   pull Secret, a first stable Deployment (basic strategy), its PodDisruptionBudget, the autoscaler (autoscale: the
 *   HPA or KEDA ScaledObject);
 * - its lease;
 * - then the namespace, if the unfinished run created it and it holds nothing the run did not create.
 */
export async function cleanupRollout(kubeconfig: string, namespace: string, app: string, owner: string, log: Logger): Promise<string[]> {
  const kube = Kube.load(kubeconfig);
  const done: string[] = [];
  const createdByRun = (obj: K8sObject | undefined) => obj?.metadata.annotations?.[CREATED_BY] === owner;
  // what the identity may not read (a Secret without create-pull-secret, the namespace for a namespaced Role:
  // permissions.ts) the run cannot have made either
  const readable = (p: Promise<K8sObject | undefined>) =>
    p.catch((e: unknown) => {
      if (/HTTP 403/.test(msg(e))) return undefined;
      throw e;
    });
  const canary = await kube.get('apps/v1', 'Deployment', namespace, `${app}-canary`);
  if (canary && canary.metadata.labels?.[OWNER_LABEL] === owner) {
    await deleteCanary(kube, namespace, app);
    done.push(`deleted ${namespace}/${app}-canary (Deployment and Service)`);
  } else if ((await kube.get('v1', 'Service', namespace, `${app}-canary`))?.metadata.labels?.[OWNER_LABEL] === owner) {
    await kube.remove('v1', 'Service', namespace, `${app}-canary`);
    done.push(`deleted Service ${namespace}/${app}-canary`);
  }
  const stable = await kube.get('apps/v1', 'Deployment', namespace, app);
  const unfinished = (await leaseHolder(kube, namespace, app)) === owner && stable?.metadata.annotations?.[PROMOTED_BY] !== owner;
  if (unfinished) {
    const made: [string, string, string][] = [
      ['apps/v1', 'Deployment', app],
      ['v1', 'Service', app],
      ['policy/v1', 'PodDisruptionBudget', app],
      ['v1', 'Secret', pullSecretName(app)],
      ...AUTOSCALER_KINDS.map((k): [string, string, string] => [k.apiVersion, k.kind, app]),
    ];
    for (const [apiVersion, kind, name] of made) {
      const obj = kind === 'Deployment' ? stable : await readable(kube.get(apiVersion, kind, namespace, name));
      if (createdByRun(obj) && (await kube.remove(apiVersion, kind, namespace, name)))
        done.push(`deleted ${kind} ${namespace}/${name}, which this run created`);
    }
  }
  if (await releaseIfHeld(kube, namespace, app, owner)) done.push(`released the deploy lease of ${namespace}/${app}`);
  if (unfinished && createdByRun(await readable(kube.get('v1', 'Namespace', undefined, namespace)))) {
    let others: string[];
    try {
      others = (await kube.namespaceObjects(namespace)).filter((obj) => !madeWithNamespace(obj, owner)).map((obj) => `${obj.kind} ${obj.metadata.name}`);
    } catch (e) {
      others = [`objects it cannot list (${msg(e)})`];
    }
    if (others.length === 0) {
      await kube.remove('v1', 'Namespace', '', namespace);
      done.push(`deleted namespace ${namespace}, which this run created`);
    } else {
      log.info(
        `modelship post: kept namespace ${namespace}, which this run created: it also holds ${others.slice(0, 10).join(', ')}${others.length > 10 ? ` and ${others.length - 10} more` : ''}`,
      );
    }
  }
  for (const d of done) log.info(`modelship post: ${d}`);
  return done;
}

/**
 * Is `obj` nothing of its own in a namespace the run created: made by the run (its mark), on its way out, a dependent
 * of another object (a ReplicaSet, a Pod, an EndpointSlice: the object it depends on is counted instead), or what
 * Kubernetes puts in every namespace (the default ServiceAccount and its token, the root CA ConfigMap)?
 */
function madeWithNamespace(obj: K8sObject & { metadata: { deletionTimestamp?: string; ownerReferences?: unknown[] }; type?: string }, owner: string): boolean {
  const m = obj.metadata;
  if (m.annotations?.[CREATED_BY] === owner || m.deletionTimestamp || (m.ownerReferences ?? []).length > 0) return true;
  if (obj.apiVersion !== 'v1') return false;
  return (
    (obj.kind === 'ServiceAccount' && m.name === 'default') ||
    (obj.kind === 'Secret' && obj.type === 'kubernetes.io/service-account-token' && m.annotations?.['kubernetes.io/service-account.name'] === 'default') ||
    (obj.kind === 'ConfigMap' && m.name === 'kube-root-ca.crt')
  );
}
