import * as yaml from 'js-yaml';
import { createTwoFilesPatch } from 'diff';
import type { Logger, StageResult } from '../stage';
import type { RolloutConfig } from './inputs';
import type { Kube } from './kube';
import type { K8sObject } from './manifests';
import { CREATED_BY, OWNER_LABEL, PROMOTED_BY } from './owner';
import type { RolloutPlan } from './plan';
import { appliesReplicas, describeAutoscaler, otherAutoscalers, ReplicasObject } from './autoscale-writes';

/**
 * dry-run: the plan printed, and each object's diff against the live one as the API server would store it (a
 * server-side dry run of the same apply); nothing is changed. The pull Secret is left out: its data would be printed.
 */
export async function dryRun(kube: Kube, cfg: RolloutConfig, plan: RolloutPlan, log: Logger): Promise<StageResult> {
  const nsExists = !plan.createsNamespace;
  const sections: string[] = [];
  const lines: string[] = [`dry run: ${cfg.strategy} rollout of ${cfg.image} to ${cfg.namespace}/${cfg.app} (nothing is changed)`];
  if (!nsExists) lines.push(`- would create namespace ${cfg.namespace}`);
  if (plan.takeover) lines.push(`- would take over Deployment ${cfg.app}, which modelship did not create (its selector is kept)`);
  if (cfg.strategy === 'canary' && plan.steps.length === 1)
    lines.push(
      `- would run ${plan.canaryReplicas} canary replica(s), verify them (pods, golden requests${cfg.prometheus ? ', Prometheus' : ''}), then promote ${cfg.app} or delete the canary`,
    );
  if (cfg.strategy === 'canary' && plan.steps.length > 1) {
    lines.push(
      `- would run the canary in ${plan.steps.length} steps beside the ${plan.stableReplicas} stable replicas (which keep running until the promotion), then promote ${cfg.app}, or delete the canary at the first step that fails:`,
    );
    plan.steps.forEach((s, i) => {
      const same = i > 0 && plan.steps[i - 1].replicas === s.replicas ? `, the same as step ${i}` : '';
      const checks = ['pods', ...(i === 0 ? ['golden requests'] : []), `bake ${cfg.bakeTimeS} s`, ...(cfg.prometheus ? ['Prometheus'] : [])].join(', ');
      const share = Math.round((100 * s.replicas) / (s.replicas + plan.stableReplicas));
      lines.push(
        `  - step ${i + 1}/${plan.steps.length}: ${s.percent}%: ${s.replicas} canary replica(s)${same} (about ${share}% of the traffic); verify ${checks}`,
      );
    });
  }
  const autoscaler = plan.objects.autoscaler;
  if (autoscaler)
    lines.push(`- would autoscale the stable with ${describeAutoscaler(autoscaler)}${plan.liveStable ? `; it runs ${plan.stableReplicas} now` : ''}`);
  if (nsExists) {
    // what the deploy deletes: an autoscaler modelship made that autoscale no longer asks for
    const others = await otherAutoscalers(kube, cfg.namespace, cfg.app, autoscaler);
    for (const a of others.found.filter((x) => x.modelships))
      lines.push(`- would delete ${a.kind} ${cfg.app}, which modelship made (${autoscaler ? `autoscale now makes a ${autoscaler.kind}` : 'autoscale is off'})`);
  }
  for (const obj of plan.planned) {
    const live = nsExists ? await kube.get(obj.apiVersion, obj.kind, cfg.namespace, obj.metadata.name) : undefined;
    // the API server's own view of the result: a server-side dry run of the same apply
    const result = nsExists ? await kube.apply(obj, true) : obj;
    if (autoscaler && live && obj === plan.objects.stable) {
      // the deploy hands spec.replicas over to the autoscaler before this apply (autoscale-writes.ts): the live count
      // stays, where a dry run of the apply alone would drop the field modelship's apply owns (and show 1)
      const liveReplicas = (live as ReplicasObject).spec?.replicas;
      if (appliesReplicas(live))
        lines.push(`- would hand spec.replicas of Deployment ${cfg.app} (${liveReplicas}) over to the autoscaler, then apply it without them`);
      (result as ReplicasObject).spec = { ...((result as ReplicasObject).spec ?? {}), replicas: liveReplicas };
    }
    const patch = createTwoFilesPatch(
      `live/${obj.kind}/${obj.metadata.name}`,
      `planned/${obj.kind}/${obj.metadata.name}`,
      comparable(live),
      comparable(result),
      undefined,
      undefined,
      { context: 3 },
    );
    const changed = comparable(live) !== comparable(result);
    lines.push(`- ${obj.kind} ${obj.metadata.name}: ${live ? (changed ? 'would change' : 'unchanged') : 'would create'}`);
    sections.push(
      `### ${obj.kind} ${obj.metadata.name}: ${live ? (changed ? 'changes' : 'unchanged') : 'new'}\n\n\`\`\`diff\n${patch.split('\n').slice(2).join('\n')}\n\`\`\``,
    );
  }
  log.info(lines.join('\n'));
  for (const s of sections) log.info(s.replace(/```(diff)?\n?/g, ''));
  return {
    outputs: {
      decision: 'dry-run',
      reason: 'dry run: the plan was printed and nothing was changed',
      'canary-replicas': String(plan.canaryReplicas),
      'canary-step': '',
      'gate-pods': 'skipped',
      'gate-golden': 'skipped',
      'gate-analysis': 'skipped',
      'gate-prometheus': 'skipped',
      'verify-latency-p95-ms': '',
      'decision-seconds': '',
      'rollout-report': JSON.stringify({ decision: 'dry-run', plan: lines }),
    },
    summary: `## modelship rollout (dry run)\n\n${lines.join('\n')}\n\n${sections.join('\n\n')}\n`,
    ok: true,
  };
}

/** An object as YAML for a diff: without what the server owns, and the runs' own marks (which run made or promoted what: owner.ts). */
function comparable(obj: K8sObject | undefined): string {
  if (!obj) return '';
  const c = JSON.parse(JSON.stringify(obj)) as K8sObject & { status?: unknown; spec?: { template?: { metadata?: { creationTimestamp?: unknown } } } };
  const m = c.metadata as Record<string, unknown>;
  for (const k of ['managedFields', 'resourceVersion', 'uid', 'generation', 'creationTimestamp', 'selfLink']) delete m[k];
  const ann = m.annotations as Record<string, string> | undefined;
  if (ann) {
    for (const k of ['deployment.kubernetes.io/revision', 'kubectl.kubernetes.io/last-applied-configuration', CREATED_BY, PROMOTED_BY]) delete ann[k];
    if (Object.keys(ann).length === 0) delete m.annotations;
  }
  const labels = m.labels as Record<string, string> | undefined;
  if (labels) delete labels[OWNER_LABEL];
  delete c.status;
  if (c.spec?.template?.metadata) delete c.spec.template.metadata.creationTimestamp;
  return yaml.dump(c, { sortKeys: true, lineWidth: 160 });
}
