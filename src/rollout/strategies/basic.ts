import type { RolloutPlan } from '../plan';
import { applyMarked, markCreated, markPromoted, restoreTemplate, takeOver } from '../writes';
import { applyBudget, Strategy } from './strategy';

/**
 * basic: the stable `<app>` is updated in place and verified as it rolls out; a roll back returns it to its previous
 * pod template (a first deploy: deletes it), and removes the PodDisruptionBudget the run created.
 */
export function basicStrategy(plan: RolloutPlan): Strategy {
  const { app, image } = plan.spec;
  const { stable, mainService } = plan.objects;
  const { liveStable, takeover, owner } = plan;
  /** ours: a roll back deletes it again */
  let createdBudget = false;
  const stableToApply = liveStable ? stable : markCreated(stable, owner);
  return {
    steps: [
      {
        name: `apply ${app}`,
        async apply(run) {
          if (takeover) await takeOver(run.kube, stableToApply);
          await run.kube.apply(stableToApply);
          await applyMarked(run.kube, mainService, owner);
          createdBudget = await applyBudget(run, plan);
        },
        ...plan.verifications[0],
      },
    ],

    async promote(run) {
      // verified: marked as this run's (the same apply, an annotation more), so its post step leaves it alone
      await run.kube.apply(markPromoted(stableToApply, owner));
      return `${app} updated and verified: runs ${image}`;
    },

    async rollBack(run) {
      await run.step(liveStable ? `roll ${app} back to the previous ReplicaSet's template` : `delete ${app} (first deploy)`, async () => {
        if (liveStable) await restoreTemplate(run.kube, run.namespace, app, liveStable.spec.template);
        else await run.kube.remove('apps/v1', 'Deployment', run.namespace, app);
        if (createdBudget) await run.kube.remove('policy/v1', 'PodDisruptionBudget', run.namespace, app);
      });
    },
  };
}
