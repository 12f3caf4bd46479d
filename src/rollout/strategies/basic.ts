import type { RolloutPlan } from '../plan';
import { applyMarked, markCreated, markPromoted, restoreTemplate } from '../writes';
import { withoutReplicas, writeStable } from '../autoscale-writes';
import { applyBudget, removeAutoscaler, Strategy } from './strategy';

/**
 * basic: the stable `<app>` is updated in place and verified as it rolls out; a roll back returns it to its previous
 * pod template (a first deploy: deletes it), and removes the PodDisruptionBudget and the autoscaler the run created.
 * With autoscale the step writes the stable's replicas over to the autoscaler and applies it (writeStable).
 */
export function basicStrategy(plan: RolloutPlan): Strategy {
  const { app, image } = plan.spec;
  const { stable, mainService, autoscaler, takeoverStable } = plan.objects;
  const { liveStable, takeover, owner } = plan;
  /** ours: a roll back deletes them again */
  let createdBudget = false;
  let createdAutoscaler = false;
  const stableToApply = liveStable ? stable : markCreated(stable, owner);
  return {
    steps: [
      {
        name: `apply ${app}`,
        async apply(run) {
          const written = await writeStable(
            run.kube,
            { namespace: run.namespace, app, owner, stable: stableToApply, takeover: takeover ? takeoverStable : undefined, autoscaler },
            (line) => run.log.info(line),
          );
          createdAutoscaler = written.createdAutoscaler;
          await applyMarked(run.kube, mainService, owner);
          createdBudget = await applyBudget(run, plan);
        },
        ...plan.verifications[0],
      },
    ],

    async promote(run) {
      // verified: marked as this run's (the same apply, an annotation more), so its post step leaves it alone; with
      // autoscale without replicas, a first deploy's too: the step handed them over, the autoscaler may have moved them
      await run.kube.apply(markPromoted(autoscaler ? withoutReplicas(stableToApply) : stableToApply, owner));
      return `${app} updated and verified: runs ${image}`;
    },

    async rollBack(run) {
      await run.step(liveStable ? `roll ${app} back to the previous ReplicaSet's template` : `delete ${app} (first deploy)`, async () => {
        if (createdAutoscaler) await removeAutoscaler(run, autoscaler);
        if (liveStable) await restoreTemplate(run.kube, run.namespace, app, liveStable.spec.template);
        else await run.kube.remove('apps/v1', 'Deployment', run.namespace, app);
        if (createdBudget) await run.kube.remove('policy/v1', 'PodDisruptionBudget', run.namespace, app);
      });
    },
  };
}
