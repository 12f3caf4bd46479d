import type { StageResult } from '../stage';
import type { GateRecord } from './gates/ledger';
import type { RolloutPlan } from './plan';
import type { Outcome } from './strategies/strategy';
import type { TimelineEntry } from './timeline';

/**
 * What a deploy reports: the stage's outputs (decision, reason, gate-*, rollout-report's JSON) and the job summary
 * (the gates, the timeline as a table and a Gantt chart, the failed gate's evidence).
 */
export interface DeployRecord {
  outcome: Outcome;
  gates: readonly GateRecord[];
  timeline: readonly TimelineEntry[];
  /** latency p95 of the golden requests, when measured */
  latencyP95Ms?: number;
  /** from the start of the deploy to now */
  totalSeconds: number;
}

export function rolloutResult(plan: RolloutPlan, record: DeployRecord): StageResult {
  const { decision, reason, decisionSeconds } = record.outcome;
  const { app, namespace, image } = plan.spec;
  const gate = (name: GateRecord['gate']) => record.gates.find((g) => g.gate === name)!.result;
  const { reached, of } = record.outcome.steps;
  const outputs: Record<string, string> = {
    decision,
    reason,
    // the canary's size at the last step reached: what ran beside the stable when the decision came
    'canary-replicas': String(plan.steps[Math.max(0, reached - 1)]?.replicas ?? 0),
    'canary-step': plan.strategy === 'canary' ? `${reached}/${of}` : '',
    'gate-pods': gate('pods'),
    'gate-golden': gate('golden'),
    'gate-analysis': gate('analysis'),
    'gate-prometheus': gate('prometheus'),
    'verify-latency-p95-ms': record.latencyP95Ms === undefined ? '' : record.latencyP95Ms.toFixed(2),
    'decision-seconds': Number.isNaN(decisionSeconds) ? '' : decisionSeconds.toFixed(1),
    'rollout-report': JSON.stringify({
      decision,
      reason,
      strategy: plan.strategy,
      namespace,
      app,
      image,
      takeover: plan.takeover,
      canarySteps: plan.steps,
      canaryStep: plan.strategy === 'canary' ? { reached, of } : undefined,
      gates: record.gates,
      timeline: record.timeline,
      totalSeconds: record.totalSeconds,
    }),
  };
  const summary = rolloutSummary(plan, record);
  return decision === 'promoted' ? { outputs, summary, ok: true } : { outputs, summary, ok: false, failure: `rolled back: ${reason}` };
}

function rolloutSummary(plan: RolloutPlan, record: DeployRecord): string {
  const { decision, reason } = record.outcome;
  const { app, namespace, image } = plan.spec;
  const icon = decision === 'promoted' ? '✅' : '❌';
  const rows = record.gates.map(
    (g) =>
      `| ${g.gate} | ${g.result === 'fail' ? '**fail**' : g.result} | ${g.seconds.toFixed(1)} s | ${g.detail.split('\n')[0].replace(/\|/g, '\\|').slice(0, 300)} |`,
  );
  const tl = record.timeline.map(
    (t) =>
      `| ${t.atS.toFixed(1)} s | ${t.step} | ${t.seconds.toFixed(1)} s | ${t.result === 'ok' ? 'ok' : `**fail**: ${(t.detail ?? '').replace(/\|/g, '\\|').slice(0, 200)}`} |`,
  );
  const gantt = [
    '```mermaid',
    'gantt',
    '  title Rollout timeline',
    '  dateFormat X',
    '  axisFormat %Ss',
    ...record.timeline.map(
      (t, i) => `  ${t.step.replace(/[:#;]/g, ' ')} :${t.result === 'fail' ? 'crit, ' : ''}s${i}, ${Math.round(t.atS)}, ${Math.max(1, Math.round(t.seconds))}s`,
    ),
    '```',
  ];
  const evidence = record.gates
    .filter((g) => g.evidence.length && g.result === 'fail')
    .map((g) => `<details><summary>evidence: ${g.gate}</summary>\n\n\`\`\`\n${g.evidence.join('\n')}\n\`\`\`\n</details>`);
  return [
    `## modelship rollout: ${icon} ${decision}`,
    '',
    `\`${image}\` → ${namespace}/${app}, strategy ${plan.strategy}${plan.strategy === 'canary' ? ` (${canarySize(plan, record.outcome.steps.reached)})` : ''}.`,
    '',
    `**Reason:** ${reason.split('\n')[0]}`,
    '',
    '### Gates',
    '',
    '| gate | result | time | detail |',
    '|---|:---:|---:|---|',
    ...rows,
    '',
    '### Timeline',
    '',
    '| at | step | took | result |',
    '|---:|---|---:|---|',
    ...tl,
    '',
    ...gantt,
    '',
    ...evidence,
    '',
  ].join('\n');
}

/** The canary's size in the summary: `1 canary of 2 replicas`, or each step's, and the step the run reached. */
function canarySize(plan: RolloutPlan, reached: number): string {
  const { steps, stableReplicas } = plan;
  if (steps.length === 1) return `${steps[0].replicas} canary of ${stableReplicas} replicas`;
  const each = steps.map((s) => `${s.percent}%: ${s.replicas}`).join(', ');
  return `canary steps ${each} of ${stableReplicas} replicas; reached step ${reached}/${steps.length}`;
}
