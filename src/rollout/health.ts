import type { Kube } from './kube';
import type { K8sObject } from './manifests';
import { replicaSetRefusal } from './admission';

/**
 * Pod and Deployment health, read from the API server. The classification is pure (tested on plain objects);
 * the waits poll once a second, so a failing pod is noticed within about one probe period.
 */
export interface PodView {
  name: string;
  uid: string;
  phase: string;
  ready: boolean;
  /** the startup probe passed (or there is none) */
  started: boolean;
  restarts: number;
  waiting?: { reason: string; message: string };
  terminated?: { reason: string; exitCode: number; message: string };
  lastTerminated?: { reason: string; exitCode: number; message: string };
  node?: string;
  labels: Record<string, string>;
}

type ContainerState = { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string; exitCode?: number; message?: string } };
type PodObj = K8sObject & {
  metadata: { uid?: string; labels?: Record<string, string> };
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: { name: string; ready: boolean; started?: boolean; restartCount: number; state?: ContainerState; lastState?: ContainerState }[];
  };
};

export function podView(p: K8sObject): PodView {
  const pod = p as PodObj;
  const cs = pod.status?.containerStatuses ?? [];
  const term = (s?: ContainerState) =>
    s?.terminated ? { reason: s.terminated.reason ?? '', exitCode: s.terminated.exitCode ?? 0, message: s.terminated.message ?? '' } : undefined;
  const waiting = cs.map((c) => c.state?.waiting).find((w) => w?.reason);
  return {
    name: pod.metadata.name,
    uid: pod.metadata.uid ?? '',
    phase: pod.status?.phase ?? 'Unknown',
    ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    started: cs.length > 0 && cs.every((c) => c.started !== false),
    restarts: cs.reduce((n, c) => n + c.restartCount, 0),
    waiting: waiting ? { reason: waiting.reason ?? '', message: waiting.message ?? '' } : undefined,
    terminated: cs.map((c) => term(c.state)).find(Boolean),
    lastTerminated: cs.map((c) => term(c.lastState)).find(Boolean),
    node: pod.spec?.nodeName,
    labels: pod.metadata.labels ?? {},
  };
}

const FATAL_WAITING = new Set([
  'CrashLoopBackOff',
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'ErrImageNeverPull',
]);

/**
 * A failed image pull the kubelet retries by itself (after a 10 s back-off): the first failure can be a moment's
 * (the kubelet's cache of a pull Secret applied a second before the pod, a registry restarting), so it is fatal
 * only once it has lasted past one retry.
 */
const RETRIED_PULL = new Set(['ErrImagePull', 'ImagePullBackOff']);
/** How long a retried pull may keep failing before the pod is judged: the kubelet's first back-off (10 s) and a second pull. */
export const PULL_GRACE_MS = 25_000;

/** Is this pod waiting on an image pull that failed (and that the kubelet will retry)? */
export const pullFailing = (p: PodView): boolean => !!p.waiting && RETRIED_PULL.has(p.waiting.reason);

/**
 * Why this pod can no longer become healthy, or undefined. A restart is a failure: a good model server does not
 * crash. `pullFailingMs`: how long the pod has been in a failed pull (pullFailing) — under PULL_GRACE_MS it is not
 * judged yet; a caller that does not track it gets the verdict at once.
 */
export function fatalReason(p: PodView, pullFailingMs = Infinity, pullGraceMs = PULL_GRACE_MS): string | undefined {
  const exit = (t: { reason: string; exitCode: number; message: string }) =>
    `${t.reason || 'exited'} (exit code ${t.exitCode})${t.message ? `: ${t.message.trim().slice(0, 300)}` : ''}`;
  if (pullFailing(p) && pullFailingMs < pullGraceMs) return undefined;
  if (p.waiting && FATAL_WAITING.has(p.waiting.reason))
    return `pod ${p.name}: ${p.waiting.reason}${p.waiting.message ? `: ${p.waiting.message.slice(0, 300)}` : ''}${p.lastTerminated ? `; last exit ${exit(p.lastTerminated)}` : ''}`;
  if (p.restarts > 0) return `pod ${p.name} restarted ${p.restarts} time(s)${p.lastTerminated ? `; last exit ${exit(p.lastTerminated)}` : ''}`;
  if (p.terminated) return `pod ${p.name}: container terminated: ${exit(p.terminated)}`;
  if (p.phase === 'Failed') return `pod ${p.name} failed`;
  return undefined;
}

export function describePod(p: PodView): string {
  const state = p.waiting ? `waiting ${p.waiting.reason}` : p.terminated ? `terminated ${p.terminated.reason} (${p.terminated.exitCode})` : p.phase;
  return `${p.name}: ${state}, ready ${p.ready}, restarts ${p.restarts}${p.node ? `, node ${p.node}` : ''}`;
}

export class GateFailure extends Error {
  constructor(
    message: string,
    readonly evidence: string[] = [],
  ) {
    super(message);
  }
}

export class Aborted extends Error {}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Aborted(String(signal.reason ?? 'aborted')));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new Aborted(String(signal?.reason ?? 'aborted')));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

type DeploymentObj = K8sObject & {
  metadata: { generation?: number; uid?: string; annotations?: Record<string, string> };
  spec: { replicas?: number; selector: { matchLabels?: Record<string, string> }; template: { metadata?: { labels?: Record<string, string> } } };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
};

export const selectorString = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/** The newest ReplicaSet of a Deployment (highest revision) and its pod-template-hash. */
async function newestReplicaSet(kube: Kube, d: DeploymentObj): Promise<K8sObject | undefined> {
  const rss = await kube.list<K8sObject & { metadata: { ownerReferences?: { uid: string }[]; annotations?: Record<string, string> } }>(
    'apps/v1',
    'ReplicaSet',
    d.metadata.namespace!,
    selectorString(d.spec.selector.matchLabels ?? {}),
  );
  const owned = rss.filter((r) => r.metadata.ownerReferences?.some((ref) => ref.uid === d.metadata.uid));
  owned.sort(
    (a, b) =>
      Number(b.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0) - Number(a.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0),
  );
  return owned[0];
}

/** Warning events of a pod (probe failures, pull errors, back-off), newest last, as evidence lines. */
export async function podEvidence(kube: Kube, namespace: string, pods: PodView[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of pods.slice(0, 3)) {
    out.push(describePod(p));
    const ev = (await kube.events(namespace, p.name).catch(() => [])).filter((e) => e.type === 'Warning');
    for (const e of ev.slice(-4)) out.push(`  ${e.reason}: ${e.message.trim().slice(0, 300)}${e.count > 1 ? ` (×${e.count})` : ''}`);
  }
  return out;
}

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** readiness probe period × failure threshold: a started pod not Ready for longer has failed its readiness */
  readinessGraceMs: number;
  /** how long a failed image pull may last before the pod is judged (default PULL_GRACE_MS) */
  pullGraceMs?: number;
  onProgress?: (line: string) => void;
}

/**
 * Wait for a Deployment's rollout: every replica updated and available, none of the old ones left. Fails at
 * once when a new pod crash-loops, cannot pull its image (still failing after the kubelet's retry: PULL_GRACE_MS), or fails its readiness probe after starting, or when Pod
 * Security refuses the new ReplicaSet's pods (admission.ts: the backstop of the stage's dry run); fails at
 * the progress deadline or at timeoutMs, with the pods' states and warning events as evidence.
 */
export async function waitDeployment(kube: Kube, namespace: string, name: string, wait: WaitOptions): Promise<{ pods: PodView[] }> {
  const deadline = Date.now() + wait.timeoutMs;
  const notReadySince = new Map<string, number>();
  const pullFailingSince = new Map<string, number>();
  let last = '';
  for (;;) {
    const d = await kube.get<DeploymentObj>('apps/v1', 'Deployment', namespace, name);
    if (!d) throw new GateFailure(`Deployment ${namespace}/${name} disappeared during the rollout`);
    const want = d.spec.replicas ?? 1;
    const st = d.status ?? {};
    const progressing = st.conditions?.find((c) => c.type === 'Progressing');
    const rs = await newestReplicaSet(kube, d);
    // pods Pod Security refuses are never created: no pod to wait for, so no timeout to wait out either
    const refused = replicaSetRefusal(namespace, name, rs);
    if (refused) throw new GateFailure(refused);
    const hash = (rs?.metadata.labels ?? {})['pod-template-hash'];
    // the ReplicaSet's own pods: a Deployment deleted a moment ago (an earlier canary of the same template) can
    // leave terminating pods with the same pod-template-hash behind
    const rsUid = (rs?.metadata as { uid?: string } | undefined)?.uid;
    const owned = (p: K8sObject) =>
      (p.metadata as { ownerReferences?: { uid: string }[]; deletionTimestamp?: string }).ownerReferences?.some((ref) => ref.uid === rsUid) &&
      !(p.metadata as { deletionTimestamp?: string }).deletionTimestamp;
    const pods = hash
      ? (await kube.list('v1', 'Pod', namespace, selectorString({ ...(d.spec.selector.matchLabels ?? {}), 'pod-template-hash': hash })))
          .filter(owned)
          .map(podView)
      : [];
    for (const p of pods) {
      if (pullFailing(p)) {
        if (!pullFailingSince.has(p.uid)) pullFailingSince.set(p.uid, Date.now());
      } else pullFailingSince.delete(p.uid);
      const since = pullFailingSince.get(p.uid);
      const why = fatalReason(p, since === undefined ? 0 : Date.now() - since, wait.pullGraceMs);
      if (why) throw new GateFailure(why, await podEvidence(kube, namespace, [p]));
      if (p.started && !p.ready && p.phase === 'Running') {
        const since = notReadySince.get(p.uid) ?? Date.now();
        notReadySince.set(p.uid, since);
        if (Date.now() - since > wait.readinessGraceMs) {
          const ev = await podEvidence(kube, namespace, [p]);
          if (ev.some((l) => /Readiness probe failed/.test(l))) throw new GateFailure(`pod ${p.name} started but fails its readiness probe`, ev);
        }
      } else notReadySince.delete(p.uid);
    }
    if (progressing?.reason === 'ProgressDeadlineExceeded')
      throw new GateFailure(`Deployment ${name}: ${progressing.message ?? 'progress deadline exceeded'}`, await podEvidence(kube, namespace, pods));
    const done =
      (st.observedGeneration ?? 0) >= (d.metadata.generation ?? 0) &&
      (st.updatedReplicas ?? 0) === want &&
      (st.availableReplicas ?? 0) >= want &&
      (st.replicas ?? 0) === want &&
      pods.filter((p) => p.ready).length >= want;
    if (done) return { pods: pods.filter((p) => p.ready) };
    const line = `${name}: ${st.updatedReplicas ?? 0}/${want} updated, ${st.availableReplicas ?? 0} available, ${pods.filter((p) => p.ready).length} new ready`;
    if (line !== last) wait.onProgress?.(line);
    last = line;
    if (Date.now() >= deadline)
      throw new GateFailure(
        `Deployment ${name} was not ready within ${Math.round(wait.timeoutMs / 1000)} s (${line})`,
        await podEvidence(kube, namespace, pods),
      );
    await sleep(1000, wait.signal);
  }
}

/**
 * The bake window: the pods that passed readiness must stay Ready, without a restart, replacement or crash,
 * for `ms`. Checked once a second, so a failure ends the window at once.
 */
export async function bake(
  kube: Kube,
  namespace: string,
  selector: Record<string, string>,
  pods: PodView[],
  ms: number,
  signal?: AbortSignal,
  tick?: () => Promise<void>,
): Promise<void> {
  const start = Date.now();
  const uids = new Set(pods.map((p) => p.uid));
  while (Date.now() - start < ms) {
    await sleep(Math.min(1000, Math.max(0, ms - (Date.now() - start))), signal);
    const now = (await kube.list('v1', 'Pod', namespace, selectorString(selector))).map(podView).filter((p) => uids.has(p.uid));
    if (now.length < uids.size) throw new GateFailure(`a canary pod was deleted or replaced during the bake window (${now.length} of ${uids.size} left)`);
    for (const p of now) {
      const why = fatalReason(p);
      if (why) throw new GateFailure(`during the bake window: ${why}`, await podEvidence(kube, namespace, [p]));
      if (!p.ready) throw new GateFailure(`during the bake window: pod ${p.name} became NotReady`, await podEvidence(kube, namespace, [p]));
    }
    await tick?.();
  }
}
