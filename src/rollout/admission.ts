import { ModelshipError } from '../util/errors';
import type { Logger } from '../stage';
import type { Kube } from './kube';
import type { K8sObject } from './manifests';

/**
 * Admission before acting: every object a rollout may write goes through a server-side dry run (dryRun=All) first, so
 * what the API server would refuse (validation, a webhook, Pod Security) fails the stage before anything is applied.
 *
 * Pod Security admission refuses Pods, not the Deployments that make them: a Deployment whose pod template violates
 * the namespace's level is stored, only with a `Warning: would violate PodSecurity "restricted:latest": ...` header,
 * and its ReplicaSet then fails to create every pod (condition ReplicaFailure, reason FailedCreate, "... is forbidden:
 * violates PodSecurity ..."). The warning is what the dry run reads; the ReplicaSet's condition is the backstop while
 * a rollout waits (health.ts), for namespaces that enforce a level but warn at a lower one (then no warning comes).
 * Pure but for checkAdmission; the client stays out (kube.ts loads it), so the mapping is tested on plain text.
 */

export const PSA_ENFORCE = 'pod-security.kubernetes.io/enforce';
export const PSA_WARN = 'pod-security.kubernetes.io/warn';

/** What the API server answered to a server-side dry run: its status, warnings, and message when it refused. */
export interface DryRunAnswer {
  status: number;
  warnings: string[];
  message: string;
}

/**
 * The texts of Warning headers (RFC 7234 warn-values, `299 - "text"`, the text's `"` and `\` escaped). Node joins
 * repeated headers with ", ", and a text holds commas of its own: the values are told apart by their quoting.
 */
export function parseWarnings(header: string | string[] | undefined): string[] {
  const all = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const out: string[] = [];
  for (const m of all.matchAll(/\d{3} \S+ "((?:[^"\\]|\\.)*)"/g)) out.push(m[1].replace(/\\(.)/g, '$1'));
  return out;
}

/** A Pod Security verdict in an API server's text: `would violate` (a warning) or `violates` (a refusal) `PodSecurity "level:version": violations`. */
export function podSecurityVerdict(text: string): { level: string; version: string; violations: string } | undefined {
  const m = /violates? PodSecurity "([a-z]+):([^"]+)": (.*)$/s.exec(text);
  return m ? { level: m[1], version: m[2], violations: m[3].trim() } : undefined;
}

/** A namespace's Pod Security levels from its labels (undefined: not labelled, or the namespace could not be read). */
export interface NamespacePolicy {
  enforce?: string;
  warn?: string;
}

export function namespacePolicy(ns: K8sObject | undefined): NamespacePolicy | undefined {
  if (!ns) return undefined;
  const labels = ns.metadata.labels ?? {};
  return { enforce: labels[PSA_ENFORCE], warn: labels[PSA_WARN] };
}

/**
 * Whether a Pod Security warning at `level` means the pods will be refused: the namespace enforces that level. A
 * warning at its warn level only (enforce lower) is not. Without an enforce label (or a namespace that cannot be
 * read) the level may come from the cluster's defaults (its AdmissionConfiguration), which may enforce it: refused,
 * unless the warn label accounts for it.
 */
export function refusesPods(level: string, policy: NamespacePolicy | undefined): boolean {
  if (policy?.enforce) return policy.enforce === level;
  return policy?.warn !== level;
}

/** The stage's message for pods that Pod Security refuses (or will): the namespace, its level, the object, the violations. */
export function podSecurityMessage(
  namespace: string,
  verdict: { level: string; version: string; violations: string },
  what: string,
  labelled: boolean,
): string {
  return `namespace "${namespace}" enforces Pod Security "${verdict.level}:${verdict.version}"${labelled ? '' : " (the cluster's default: it has no enforce label)"}: ${what}: ${verdict.violations}`;
}

/**
 * What a dry run's answer means for one object: `refused` (the stage must stop: the API server refused it, or Pod
 * Security will refuse its pods) and `warnings` (anything else the API server said: a deprecation, a warn-level
 * violation), as lines naming the object.
 */
export function judgeDryRun(
  namespace: string,
  obj: K8sObject,
  answer: DryRunAnswer,
  policy: NamespacePolicy | undefined,
): { refused?: string; warnings: string[] } {
  const name = `${obj.kind} ${obj.metadata.name}`;
  const warnings: string[] = [];
  let refused: string | undefined;
  if (answer.status < 200 || answer.status > 299) {
    const verdict = podSecurityVerdict(answer.message);
    refused = verdict
      ? podSecurityMessage(namespace, verdict, `${name} would be refused`, true)
      : `Kubernetes: ${name} in namespace "${namespace}" would be refused (HTTP ${answer.status}): ${answer.message}`;
  }
  for (const w of answer.warnings) {
    const verdict = podSecurityVerdict(w);
    if (verdict && refusesPods(verdict.level, policy))
      refused ??= podSecurityMessage(namespace, verdict, `the pods of ${name} would be refused`, policy?.enforce !== undefined);
    else warnings.push(`${name}: ${w}`);
  }
  return { refused, warnings };
}

/**
 * The server-side dry run of every object the rollout may write into `namespace` (`replaced`: those it will write by a
 * full PUT, a takeover's, dry-run so too), before anything is applied. A refusal, or pods that Pod Security will
 * refuse, fail the stage naming the namespace, its level, the object and the violations; other warnings are logged.
 */
export async function checkAdmission(kube: Kube, namespace: string, objects: K8sObject[], log: Logger, replaced: K8sObject[] = []): Promise<void> {
  let ns: K8sObject | undefined;
  try {
    ns = await kube.get('v1', 'Namespace', undefined, namespace);
  } catch {
    // a namespaced identity may not read Namespaces: the levels are then unknown (refusesPods)
  }
  const policy = namespacePolicy(ns);
  const refused: string[] = [];
  for (const obj of objects) {
    const answer = await kube.dryRunWrite(obj, replaced.includes(obj) ? 'replace' : 'apply');
    const judged = judgeDryRun(namespace, obj, answer, policy);
    if (judged.refused) refused.push(judged.refused);
    for (const w of judged.warnings) log.warning(`Kubernetes: ${w}`);
  }
  if (refused.length) {
    const profiles = refused.some((r) => r.includes('enforces Pod Security'))
      ? '; the levels: https://kubernetes.io/docs/concepts/security/pod-security-standards/'
      : '';
    throw new ModelshipError('cluster', `${refused.join('\n')}\n(a server-side dry run, before anything was applied${profiles})`);
  }
  log.info(`server-side dry run: the API server admits ${objects.map((o) => `${o.kind} ${o.metadata.name}`).join(', ')} in namespace ${namespace}`);
}

/**
 * The backstop while a rollout waits: a ReplicaSet whose pods Pod Security refuses (condition ReplicaFailure,
 * FailedCreate, "... forbidden: violates PodSecurity ...") never gets one; the stage's message for it, or undefined.
 */
export function replicaSetRefusal(namespace: string, deployment: string, rs: K8sObject | undefined): string | undefined {
  const conditions =
    (rs as { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } } | undefined)?.status?.conditions ?? [];
  const failure = conditions.find((c) => c.type === 'ReplicaFailure' && c.status === 'True' && c.reason === 'FailedCreate');
  const verdict = failure?.message ? podSecurityVerdict(failure.message) : undefined;
  return verdict ? podSecurityMessage(namespace, verdict, `the pods of Deployment ${deployment} are refused`, true) : undefined;
}
