import * as fs from 'fs';
import * as os from 'os';

/** Who runs this deploy: the workflow run and job on GitHub, else this process (the Lease holder, the canary's owner label). */
export function rolloutOwner(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.GITHUB_RUN_ID ? `gh-${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}-${env.GITHUB_JOB ?? 'job'}` : `${os.hostname()}-${process.pid}`;
  return raw
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 63)
    .replace(/[^A-Za-z0-9]+$/, '');
}

/** For the post step: write an inline kubeconfig to a private file the post step can read again. */
export function kubeconfigFile(source: string, dir = process.env.RUNNER_TEMP || os.tmpdir()): string {
  if (source === '' || !/\bapiVersion\s*:|\bclusters\s*:/.test(source)) return source;
  const file = `${dir}/modelship-kubeconfig-${process.pid}-${Date.now()}`;
  fs.writeFileSync(file, source, { mode: 0o600 });
  return file;
}

/**
 * What a run leaves on the objects it makes, so its post step can tell them apart after the main process was killed:
 * the canary's Deployment and Service carry the run's owner as a label; an object the run created (it was not
 * there before: the namespace, the main Service, the pull Secret, the first stable Deployment) carries it in the
 * annotation CREATED_BY; the stable Deployment a run promoted (or, basic strategy, verified) carries it in
 * PROMOTED_BY. Server-side apply drops an annotation the next apply leaves out, so the next run's apply of the same
 * object clears them: only the last run that made an object can ever claim it.
 */
/** The field manager of modelship's own writes (server-side apply, replace, create): kube.ts, autoscale-writes.ts. */
export const FIELD_MANAGER = 'modelship';
export const OWNER_LABEL = 'modelship.dev/owner';
export const CREATED_BY = 'modelship.dev/created-by';
export const PROMOTED_BY = 'modelship.dev/promoted-by';

/** `obj` with annotations added (a copy). */
export function annotated<T extends { metadata: { annotations?: Record<string, string> } }>(obj: T, annotations: Record<string, string>): T {
  return { ...obj, metadata: { ...obj.metadata, annotations: { ...(obj.metadata.annotations ?? {}), ...annotations } } };
}
