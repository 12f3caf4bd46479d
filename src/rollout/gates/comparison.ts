import { GateFailure, sleep } from '../health';
import { ComparisonThresholds, judgeComparison } from '../analysis/judge';
import type { ComparisonSource, WindowReading } from '../analysis/window';
import type { Gate, GateContext } from './gate';

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
export function comparisonGate(
  source: ComparisonSource | ((ctx: GateContext) => ComparisonSource),
  thresholds: ComparisonThresholds,
  o: { windowS: number; stepName?: string },
): Gate {
  return {
    gate: 'analysis',
    name: `analysis against the stable${o.stepName ? ` (${o.stepName})` : ''}, ${o.windowS} s`,
    async run(ctx) {
      const left = () => ctx.remainingMs() - MARGIN_MS;
      // a window opened before the bake (openWindowGate) is the bake's: only what is left of windowS is waited for
      let open = ctx.found.analysis;
      if (!open) {
        if (left() < o.windowS * 1000)
          throw new GateFailure(
            `the analysis window of ${o.windowS} s does not fit in the ${Math.max(0, Math.floor(ctx.remainingMs() / 1000))} s left before rollout-timeout`,
          );
        const s = typeof source === 'function' ? source(ctx) : source;
        open = { window: await s.open(ctx.signal), opened: Date.now(), source: s.name };
        ctx.progress(`analysis: ${o.windowS} s of traffic on the canary and the stable, from ${s.name}`);
      }
      const { window, opened } = open;
      const sourceName = open.source;
      await sleep(Math.max(0, o.windowS * 1000 - (Date.now() - opened)), ctx.signal);
      let lastProgress = 0;
      for (;;) {
        const r: WindowReading = await window.read(ctx.signal);
        const j = judgeComparison(r.canary, r.stable, thresholds);
        const seconds = Math.round((Date.now() - opened) / 1000);
        const evidence = [`${sourceName}, ${seconds} s`, ...r.evidence];
        if (j.verdict === 'pass') {
          // in the log too: the report keeps only the last step's detail, and each step's numbers matter
          ctx.progress(`analysis passed: ${j.detail}, over ${seconds} s`);
          return { passes: true, detail: `${j.detail}, over ${seconds} s`, evidence };
        }
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

/**
 * Opens the analysis window before the bake, so the bake's seconds are the window's: the canary and the stable serve
 * the same traffic while the bake watches the canary's pods, and comparisonGate judges right after it. Silent: no step
 * of its own in the timeline, no verdict (the comparison gives it).
 */
export function openWindowGate(source: (ctx: GateContext) => ComparisonSource): Gate {
  return {
    gate: 'analysis',
    name: 'open the analysis window',
    silent: true,
    async run(ctx) {
      const s = source(ctx);
      const window = await s.open(ctx.signal);
      ctx.progress(`analysis: the window opens; the canary and the stable serve the same traffic until it is judged (${s.name})`);
      return { found: { analysis: { window, opened: Date.now(), source: s.name } } };
    },
  };
}
