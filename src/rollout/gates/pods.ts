import { waitDeployment, WaitOptions } from '../health';
import type { Gate } from './gate';

/**
 * A started pod that stays NotReady longer than its readiness probe's period × failure threshold (2 s × 2, as
 * manifests.ts writes the probe) and a margin has failed its readiness.
 */
export const READINESS_GRACE_MS = 2 * 2000 + 2000;

/** How a rollout step waits for a Deployment: within what is left of rollout-timeout, until the run is aborted. */
export function rolloutWait(run: { signal: AbortSignal; remainingMs(): number; progress(line: string): void }): WaitOptions {
  return { timeoutMs: run.remainingMs(), signal: run.signal, readinessGraceMs: READINESS_GRACE_MS, onProgress: (line) => run.progress(line) };
}

/**
 * The pods gate's first check: the release's Deployment rolled out, every replica Ready (health.ts's waitDeployment:
 * a crash loop, a pull error, a failed readiness probe or refused pods fail it at once). Its Ready pods go on to
 * the gates after it. `readyDetail`: what the gate says once they are Ready (the canary's count; none for basic,
 * whose pods gate says nothing before its bake).
 */
export function podsReadyGate(name: string, readyDetail?: (readyPods: number) => string): Gate {
  return {
    gate: 'pods',
    name,
    async run(ctx) {
      const { pods } = await waitDeployment(ctx.kube, ctx.namespace, ctx.release.deployment, rolloutWait(ctx));
      return { detail: readyDetail?.(pods.length), found: { pods } };
    },
  };
}
