import { sendGolden } from '../../shared/golden';
import { bake, GateFailure } from '../health';
import { authorization } from './golden';
import type { Gate, GateContext } from './gate';

/**
 * The last check of the pods gate: the release's Ready pods stay Ready, without a restart, replacement or crash, for
 * bake-time seconds (health.ts's bake), while one golden request a second must keep being answered (and gives
 * Prometheus samples). The pods gate passes with it; a bake of 0 s is silent: no wait, no step of its own.
 * `podsNoun`: how the gate's detail names the pods ("canary pod(s)").
 */
export function bakeGate(bakeTimeS: number, podsNoun: string, request: { modelName: string; apiKey: string }): Gate {
  return {
    gate: 'pods',
    name: `bake ${bakeTimeS} s`,
    silent: !(bakeTimeS > 0),
    async run(ctx) {
      const pods = ctx.found.pods;
      if (bakeTimeS > 0) await bake(ctx.kube, ctx.namespace, ctx.release.podSelector, pods, bakeTimeS * 1000, ctx.signal, goldenTick(ctx, request));
      return { passes: true, detail: `${pods.length} ${podsNoun} Ready, no restart or NotReady during ${bakeTimeS} s` };
    },
  };
}

/** During the bake, one golden request a second: the release must keep answering right (and Prometheus gets samples). */
function goldenTick(ctx: GateContext, request: { modelName: string; apiKey: string }): (() => Promise<void>) | undefined {
  const golden = ctx.found.goldenRequest;
  if (!golden) return undefined;
  const service = ctx.release.service;
  const transport = ctx.transport(service);
  return async () => {
    const r = await sendGolden(transport, request.modelName, golden, authorization(request.apiKey));
    if (r.failure !== undefined) throw new GateFailure(`during the bake window: a golden request to ${service} ${r.failure.slice(0, 300)}`);
  };
}
