import { isModelshipError } from '../../util/errors';
import type { RolloutRun } from '../context';
import { Aborted, GateFailure } from '../health';
import type { Gate, GateName, Release } from '../gates/gate';
import type { GateLedger } from '../gates/ledger';
import { verify } from '../gates/verify';
import { MANAGED_BY, RolloutPlan } from '../plan';
import { applyMarked } from '../writes';

/**
 * A strategy is a sequence of steps to a decision, then a promotion, or a roll back. Each step changes something
 * (applies the canary, or the stable in place) and then verifies a release with its gates; the run promotes once
 * every step has passed, and rolls back from any failure: a gate, a timeout, an exception, a cancellation. canary.ts
 * and basic.ts have one step each; a stepped canary (10%, 50%, 100%) is more steps of the same shape.
 */
export interface RolloutStep {
  /** its step in the timeline */
  name: string;
  /** what it changes before the verification */
  apply(run: RolloutRun): Promise<void>;
  release: Release;
  gates: readonly Gate[];
}

export interface Strategy {
  readonly steps: readonly RolloutStep[];
  /** After every step verified: the release becomes the stable. Returns the decision's reason. */
  promote(run: RolloutRun, verified: GateName[]): Promise<string>;
  /** After a failure anywhere: remove or undo what the steps (and a promotion that failed) changed. */
  rollBack(run: RolloutRun): Promise<void>;
}

export interface Outcome {
  decision: 'promoted' | 'rolled-back';
  reason: string;
  /** from the first apply to the decision */
  decisionSeconds: number;
}

/** Run `strategy` to its decision: rollout-timeout counts from the first step's apply to the decision. */
export async function runStrategy(strategy: Strategy, run: RolloutRun): Promise<Outcome> {
  const startedAt = Date.now();
  run.startDeadline();
  let decisionSeconds: number | undefined;
  const decide = () => (decisionSeconds ??= (Date.now() - startedAt) / 1000);
  try {
    for (const step of strategy.steps) {
      await run.step(step.name, () => step.apply(run));
      await verify(step.release, step.gates, run);
    }
    decide();
    run.stopDeadline();
    const reason = await strategy.promote(run, run.gates.passed());
    return { decision: 'promoted', reason, decisionSeconds: decide() };
  } catch (e) {
    decide();
    const reason = run.signal.aborted ? `${String(run.signal.reason)}${e instanceof Aborted ? '' : `: ${message(e)}`}` : failureReason(e, run.gates);
    await strategy.rollBack(run);
    return { decision: 'rolled-back', reason, decisionSeconds: decide() };
  }
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Why a run rolled back: the gate that failed with its detail and first evidence, else the error itself. */
export function failureReason(e: unknown, gates: GateLedger): string {
  const failed = gates.failed();
  if (failed) return `gate "${failed.gate}" failed: ${failed.detail}${failed.evidence.length ? `\n${failed.evidence.slice(0, 12).join('\n')}` : ''}`;
  const evidence = e instanceof GateFailure && e.evidence.length ? `\n${e.evidence.slice(0, 12).join('\n')}` : '';
  return (isModelshipError(e) || e instanceof GateFailure ? message(e) : `error: ${message(e)}`) + evidence;
}

/**
 * Apply the stable's PodDisruptionBudget, or delete the one modelship made when the plan has none (disruption-budget
 * none, or auto with one replica). True when this run created it.
 */
export async function applyBudget(run: RolloutRun, plan: RolloutPlan): Promise<boolean> {
  const budget = plan.objects.disruptionBudget;
  if (budget) return applyMarked(run.kube, budget, plan.owner);
  const app = plan.spec.app;
  const live = await run.kube.get('policy/v1', 'PodDisruptionBudget', run.namespace, app);
  if (live?.metadata.labels?.[MANAGED_BY] === 'modelship') {
    await run.kube.remove('policy/v1', 'PodDisruptionBudget', run.namespace, app);
    run.log.info(`deleted PodDisruptionBudget ${app} (${plan.budgetSetting})`);
  }
  return false;
}
