import { GateFailure, sleep } from '../health';
import { ComparisonThresholds, judgeComparison } from '../analysis/judge';
import type { ComparisonSource, WindowReading } from '../analysis/window';
import type { Gate } from './gate';

/** How often a window with too few requests is read again. */
const REREAD_MS = 2000;
/** Left before rollout-timeout: the gate's failure, and the rollback after it, need a moment. */
const MARGIN_MS = 2000;
/** A progress line while waiting for min-samples, at most this often. */
const PROGRESS_EVERY_MS = 10_000;

/**
 * The analysis judged against the stable (gate `analysis`): opens a window on `source`, lets the canary and the
 * stable serve the same traffic for windowS seconds, reads what each served and judges the canary against the stable
 * (analysis/judge.ts). Too few requests on a track: the same window is read again every 2 s (it only grows) until
 * rollout-timeout is near, then the gate fails: too little traffic proves nothing, it never passes. A window that
 * cannot fit in the time left fails at once rather than being judged cut short. `stepName`: the canary step it
 * judges (a stepped canary runs it at each step).
 */
export function comparisonGate(source: ComparisonSource, thresholds: ComparisonThresholds, o: { windowS: number; stepName?: string }): Gate {
  return {
    gate: 'analysis',
    name: `analysis against the stable${o.stepName ? ` (${o.stepName})` : ''}, ${o.windowS} s`,
    async run(ctx) {
      const left = () => ctx.remainingMs() - MARGIN_MS;
      if (left() < o.windowS * 1000)
        throw new GateFailure(
          `the analysis window of ${o.windowS} s does not fit in the ${Math.max(0, Math.floor(ctx.remainingMs() / 1000))} s left before rollout-timeout`,
        );
      const opened = Date.now();
      const window = await source.open(ctx.signal);
      ctx.progress(`analysis: ${o.windowS} s of traffic on the canary and the stable, from ${source.name}`);
      await sleep(o.windowS * 1000, ctx.signal);
      let lastProgress = 0;
      for (;;) {
        const r: WindowReading = await window.read(ctx.signal);
        const j = judgeComparison(r.canary, r.stable, thresholds);
        const seconds = Math.round((Date.now() - opened) / 1000);
        const evidence = [`${source.name}, ${seconds} s`, ...r.evidence];
        if (j.verdict === 'pass') return { passes: true, detail: `${j.detail}, over ${seconds} s`, evidence };
        if (j.verdict === 'fail') throw new GateFailure(`${j.detail}, over ${seconds} s`, evidence);
        if (left() < REREAD_MS) throw new GateFailure(`${j.detail} after ${seconds} s (rollout-timeout is near)`, evidence);
        if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
          ctx.progress(`analysis: ${j.detail} after ${seconds} s; waiting for more traffic`);
          lastProgress = Date.now();
        }
        await sleep(REREAD_MS, ctx.signal);
      }
    },
  };
}
