import { waitDeployment } from '../health';
import { READINESS_GRACE_MS } from '../gates/pods';
import type { K8sObject } from '../manifests';
import { RolloutPlan, stepLabel } from '../plan';
import { applyMarked, deleteCanary, markCreated, markPromoted, restoreTemplate } from '../writes';
import { writeStable } from '../autoscale-writes';
import { applyBudget, removeAutoscaler, Strategy } from './strategy';

/**
 * canary (the default): the new image runs as `<app>-canary` (canary-percent of the replicas, its own Service) beside
 * the untouched stable, and is verified there; promoted, the stable takes the new image and the canary goes. A roll
 * back deletes the canary: the stable never changed (or, when its own rollout fails after a promotion, it gets its
 * previous template back).
 *
 * With canary-steps the canary grows step by step (plan.steps: 10%, 25%, 50%, 100% of the stable's replicas), each
 * step the same Deployment applied again with its replicas, then verified by its own gates (plan.verifications);
 * the stable keeps all its replicas until the promotion, so a roll back at any step only deletes the canary.
 *
 * With autoscale the steps are sized from the replicas the stable runs now (the autoscaler's), and the promotion
 * writes the stable without them and applies its autoscaler (writeStable): an HPA targets `<app>` by name, and so
 * follows the stable through the promotion.
 */
export function canaryStrategy(plan: RolloutPlan): Strategy {
  const { app, image } = plan.spec;
  const { stable, canary, canaryService, mainService, autoscaler, takeoverStable } = plan.objects;
  const { liveStable, takeover, owner, steps, stableReplicas } = plan;
  const several = steps.length > 1;
  /** the main Service was created by this run (a first deploy): a roll back removes it again */
  let createdMainService = false;
  /** the autoscaler was created by this run's promotion: a roll back (its stable rollout failed) removes it */
  let createdAutoscaler = false;
  /** the step being applied or verified (1-based), for the roll back's name */
  let reached = 0;
  return {
    steps: steps.map((step, i) => {
      const size = `${step.replicas} of ${stableReplicas} replicas`;
      const unchanged = i > 0 && steps[i - 1].replicas === step.replicas;
      const name = !several
        ? `apply ${canary.metadata.name} (${size}) and its Service`
        : i === 0
          ? `step 1/${steps.length}: canary at ${step.percent}% (${size}): apply ${canary.metadata.name} and its Service`
          : `step ${i + 1}/${steps.length}: canary at ${step.percent}% (${unchanged ? `still ${size}` : size})`;
      return {
        name,
        label: several ? stepLabel(i, steps) : undefined,
        async apply(run) {
          reached = i + 1;
          if (i === 0) {
            await run.kube.apply(canary);
            await run.kube.apply(canaryService);
            if (!takeover) createdMainService = await applyMarked(run.kube, mainService, owner);
            return;
          }
          if (unchanged)
            run.log.info(
              `${step.percent}% of ${stableReplicas} replicas is still ${step.replicas} canary pod(s), as at step ${i} (replica weighting): no new pods; the step bakes and is analysed again`,
            );
          // the same Deployment with the step's replicas: its pods keep running, new ones join them
          await run.kube.apply(withReplicas(canary, step.replicas));
        },
        ...plan.verifications[i],
      };
    }),

    async promote(run, verified) {
      // the stable takes the new image (taking over a Deployment modelship did not create)
      await run.step(`promote: ${app} takes the new image`, async () => {
        // marked as promoted by this run: from here on its post step leaves the stable and what serves it alone
        const promoted = markPromoted(liveStable ? stable : markCreated(stable, owner), owner);
        const written = await writeStable(
          run.kube,
          { namespace: run.namespace, app, owner, stable: promoted, takeover: takeover ? markPromoted(takeoverStable, owner) : undefined, autoscaler },
          (line) => run.log.info(line),
        );
        createdAutoscaler = written.createdAutoscaler;
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
      const through = several ? ` through ${steps.length} steps (${steps.map((s) => `${s.percent}%`).join(', ')})` : '';
      return `canary verified (${verified.join(', ')})${through} and promoted: ${app} runs ${image}`;
    },

    async rollBack(run) {
      await run.step(`roll back${several && reached ? ` at step ${reached}/${steps.length}` : ''}: delete ${app}-canary`, async () => {
        await deleteCanary(run.kube, run.namespace, app);
        if (!liveStable && createdMainService) await run.kube.remove('v1', 'Service', run.namespace, app);
        if (createdAutoscaler) await removeAutoscaler(run, autoscaler);
      });
    },
  };
}

/** The canary Deployment with `replicas`: what a later step applies (server-side apply: the same object, another size). */
function withReplicas(canary: K8sObject, replicas: number): K8sObject {
  return { ...canary, spec: { ...(canary.spec as Record<string, unknown>), replicas } };
}
