import { isModelshipError } from '../../util/errors';
import type { RolloutRun } from '../context';
import { Aborted, GateFailure } from '../health';
import type { Gate, GateName, Release } from '../gates/gate';
import type { GateLedger } from '../gates/ledger';
import { verify } from '../gates/verify';
import { MANAGED_BY, RolloutPlan } from '../plan';
import { applyMarked } from '../writes';
import type { K8sObject } from '../manifests';

/**
 * A strategy is a sequence of steps to a decision, then a promotion, or a roll back. Each step changes something
 * (applies the canary, or the stable in place) and then verifies a release with its gates; the run promotes once
 * every step has passed, and rolls back from any failure: a gate, a timeout, an exception, a cancellation. basic.ts
 * has one step; canary.ts one per canary step (canary-steps: 10%, 25%, 50%, 100%, each the same shape), and a failure
 * at any of them rolls back the same way.
 */
export interface RolloutStep {
  /** its step in the timeline */
  name: string;
  /** what it changes before the verification */
  apply(run: RolloutRun): Promise<void>;
  release: Release;
  gates: readonly Gate[];
  /** a step of several (a stepped canary): how the gates' records name it, `step 2/4 (25%)` */
  label?: string;
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
  /** the strategy's steps: the last one reached (1-based; 0 when none began) and how many there are */
  steps: { reached: number; of: number };
}

/** Run `strategy` to its decision: rollout-timeout counts from the first step's apply to the decision. */
export async function runStrategy(strategy: Strategy, run: RolloutRun): Promise<Outcome> {
  const startedAt = Date.now();
  run.startDeadline();
  let decisionSeconds: number | undefined;
  const decide = () => (decisionSeconds ??= (Date.now() - startedAt) / 1000);
  const steps = { reached: 0, of: strategy.steps.length };
  try {
    for (const [i, step] of strategy.steps.entries()) {
      steps.reached = i + 1;
      // a gate checked again counts as passed only once this step's checks pass
      if (i > 0)
        for (const gate of new Set(step.gates.map((g) => g.gate)))
          run.gates.reopen(gate, `${step.label ?? step.name}: not verified (the steps before it passed)`);
      await run.step(step.name, () => step.apply(run));
      await verify(step.release, step.gates, run);
    }
    decide();
    run.stopDeadline();
    const reason = await strategy.promote(run, run.gates.passed());
    return { decision: 'promoted', reason, decisionSeconds: decide(), steps };
  } catch (e) {
    decide();
    const reason = run.signal.aborted ? `${String(run.signal.reason)}${e instanceof Aborted ? '' : `: ${message(e)}`}` : failureReason(e, run.gates);
    await strategy.rollBack(run);
    return { decision: 'rolled-back', reason, decisionSeconds: decide(), steps };
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

/** Remove the autoscaler this run created (a roll back), saying so. */
export async function removeAutoscaler(run: RolloutRun, autoscaler: K8sObject | undefined): Promise<void> {
  if (!autoscaler) return;
  if (await run.kube.remove(autoscaler.apiVersion, autoscaler.kind, run.namespace, autoscaler.metadata.name))
    run.log.info(`deleted ${autoscaler.kind} ${autoscaler.metadata.name}, which this run created`);
}
