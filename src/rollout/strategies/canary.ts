import { waitDeployment } from '../health';
import { READINESS_GRACE_MS } from '../gates/pods';
import type { RolloutPlan } from '../plan';
import { applyMarked, deleteCanary, markCreated, markPromoted, restoreTemplate, takeOver } from '../writes';
import { applyBudget, Strategy } from './strategy';

/**
 * canary (the default): the new image runs as `<app>-canary` (canary-percent of the replicas, its own Service) beside
 * the untouched stable, and is verified there; promoted, the stable takes the new image and the canary goes. A roll
 * back deletes the canary: the stable never changed (or, when its own rollout fails after a promotion, it gets its
 * previous template back).
 */
export function canaryStrategy(plan: RolloutPlan): Strategy {
  const { app, image, replicas } = plan.spec;
  const { stable, canary, canaryService, mainService } = plan.objects;
  const { liveStable, takeover, owner } = plan;
  /** the main Service was created by this run (a first deploy): a roll back removes it again */
  let createdMainService = false;
  return {
    steps: [
      {
        name: `apply ${canary.metadata.name} (${plan.canaryReplicas} of ${replicas} replicas) and its Service`,
        async apply(run) {
          await run.kube.apply(canary);
          await run.kube.apply(canaryService);
          if (!takeover) createdMainService = await applyMarked(run.kube, mainService, owner);
        },
        ...plan.verification,
      },
    ],

    async promote(run, verified) {
      // the stable takes the new image (taking over a Deployment modelship did not create)
      await run.step(`promote: ${app} takes the new image`, async () => {
        // marked as promoted by this run: from here on its post step leaves the stable and what serves it alone
        const promoted = markPromoted(liveStable ? stable : markCreated(stable, owner), owner);
        if (takeover) await takeOver(run.kube, promoted);
        await run.kube.apply(promoted);
        if (takeover) await run.kube.apply(mainService);
        await applyBudget(run, plan);
      });
      try {
        await run.step(`stable rollout of ${app}`, () =>
          waitDeployment(run.kube, run.namespace, app, {
            timeoutMs: run.timeoutMs,
            signal: run.signal,
            readinessGraceMs: READINESS_GRACE_MS,
            onProgress: (line) => run.log.info(line),
          }),
        );
      } catch (e) {
        if (liveStable)
          await run.step(`roll ${app} back to its previous template`, () => restoreTemplate(run.kube, run.namespace, app, liveStable.spec.template));
        throw e;
      }
      await run.step(`delete ${canary.metadata.name}`, () => deleteCanary(run.kube, run.namespace, app));
      return `canary verified (${verified.join(', ')}) and promoted: ${app} runs ${image}`;
    },

    async rollBack(run) {
      await run.step(`roll back: delete ${app}-canary`, async () => {
        await deleteCanary(run.kube, run.namespace, app);
        if (!liveStable && createdMainService) await run.kube.remove('v1', 'Service', run.namespace, app);
      });
    },
  };
}
