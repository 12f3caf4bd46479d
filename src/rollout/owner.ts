import * as fs from 'fs';
import * as os from 'os';

/** Who runs this deploy: the workflow run and job on GitHub, else this process (the Lease holder, the canary's owner label). */
export function rolloutOwner(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.GITHUB_RUN_ID ? `gh-${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}-${env.GITHUB_JOB ?? 'job'}` : `${os.hostname()}-${process.pid}`;
  return raw.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 63).replace(/[^A-Za-z0-9]+$/, '');
}

/** For the post step: write an inline kubeconfig to a private file the post step can read again. */
export function kubeconfigFile(source: string, dir = process.env.RUNNER_TEMP || os.tmpdir()): string {
  if (source === '' || !/\bapiVersion\s*:|\bclusters\s*:/.test(source)) return source;
  const file = `${dir}/modelship-kubeconfig-${process.pid}-${Date.now()}`;
  fs.writeFileSync(file, source, { mode: 0o600 });
  return file;
}
