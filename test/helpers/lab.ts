import { execFileSync } from 'child_process';
import * as fs from 'fs';

/** The lab's Docker engine and registry (lab/up.sh docker); .ci/run starts them. Fails loudly when absent. */
export const LAB = {
  registry: process.env.LAB_REGISTRY ?? '127.0.0.1:5000',
  baseImage: process.env.LAB_BASE_IMAGE ?? 'local/debian:bookworm',
  busybox: process.env.LAB_BUSYBOX_IMAGE ?? 'local/busybox:static',
};

export function requireLab(): void {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'pipe' });
    execFileSync('curl', ['-sf', `http://${LAB.registry}/v2/`], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(
      `the lab's Docker engine and registry are not running: start them with \`lab/up.sh docker\` as root (${(e as Error).message.split('\n')[0]})`,
    );
  }
}

export function docker(args: string[], env?: NodeJS.ProcessEnv): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
}

export const hasCompose = () => fs.existsSync('/usr/bin/docker-compose');
