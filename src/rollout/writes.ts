import type { Kube } from './kube';
import type { K8sObject } from './manifests';
import { annotated, CREATED_BY, PROMOTED_BY } from './owner';

/**
 * The writes a rollout makes besides a plain server-side apply, shared by the strategies and the post step: the marks
 * that tell the post step what this run made (owner.ts), a takeover's full replace, the return to a previous pod
 * template, the canary's deletion.
 */

/** The part of Kube these writes use (a strategy's unit test gives a fake). */
export type ObjectStore = Pick<Kube, 'get' | 'apply' | 'replace' | 'remove'>;

/** `obj` marked as created by the run `owner`: it was not there before, and its post step may remove it. */
export const markCreated = <T extends K8sObject>(obj: T, owner: string): T => annotated(obj, { [CREATED_BY]: owner });

/** `obj` marked as promoted (or, basic, verified) by the run `owner`: from then on its post step leaves it alone. */
export const markPromoted = <T extends K8sObject>(obj: T, owner: string): T => annotated(obj, { [PROMOTED_BY]: owner });

/** Apply `obj`, marked as created by `owner` when it is not there yet; true when it was new. */
export async function applyMarked(kube: ObjectStore, obj: K8sObject, owner: string): Promise<boolean> {
  const isNew = (await kube.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name)) === undefined;
  await kube.apply(isNew ? markCreated(obj, owner) : obj);
  return isNew;
}

export async function deleteCanary(kube: ObjectStore, namespace: string, app: string): Promise<void> {
  await kube.remove('apps/v1', 'Deployment', namespace, `${app}-canary`);
  await kube.remove('v1', 'Service', namespace, `${app}-canary`);
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Take over a Deployment modelship did not create: one full replace (PUT) with the generated object, so fields
 * owned by its old manager (a container under another name, say) go, then server-side apply owns it from here.
 */
export async function takeOver(kube: ObjectStore, obj: K8sObject): Promise<void> {
  for (let i = 0; ; i++) {
    const cur = await kube.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    try {
      await kube.replace({
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: (cur?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion },
      } as K8sObject);
      return;
    } catch (e) {
      if (i >= 4 || !/HTTP 409/.test(msg(e))) throw e; // the controller updated its status in between
    }
  }
}

/** Put a Deployment's pod template back (what `kubectl rollout undo` does), and wait for it briefly. */
export async function restoreTemplate(kube: ObjectStore, namespace: string, app: string, template: unknown): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const cur = await kube.get<K8sObject & { spec: { template: unknown } }>('apps/v1', 'Deployment', namespace, app);
    if (!cur) return;
    cur.spec.template = template;
    try {
      await kube.replace(cur);
      return;
    } catch (e) {
      if (!/HTTP 409/.test(msg(e))) throw e;
    }
  }
}
