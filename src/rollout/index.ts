import type { RolloutConfig } from './inputs';
import type { Logger, StageResult } from '../stage';
import { ModelshipError } from '../util/errors';
import { referenceBatches } from '../shared/reference';
import { unsupportedServer, sleepActionServed, namespaceManifest } from './manifests';
import { readPatches, readManifest } from './patch';
import { Kube } from './kube';
import { DeployLock } from './lease';
import { rolloutOwner, CREATED_BY } from './owner';
import { checkAdmission } from './admission';
import { accessChecks, preflight, rbacHint, rolloutOptions, RunNeeds } from './permissions';
import { canaryCount, deploySpec, LiveDeployment, planRollout, RolloutPlan } from './plan';
import { DeployRun } from './context';
import { Outcome, runStrategy, Strategy } from './strategies/strategy';
import { canaryStrategy } from './strategies/canary';
import { basicStrategy } from './strategies/basic';
import { applyMarked } from './writes';
import { dryRun } from './dry-run';
import { rolloutResult } from './report';
import { checkAutoscalerServed } from './autoscale-writes';
import { ImageVerification, verifyBeforeUse } from '../shared/verify-image';
import { parseImageRef } from '../shared/registry';
import { openAuthConfig } from '../util/dockerconfig';

export { cleanupRollout } from './cleanup';

/**
 * The rollout stage: put a new model in front of traffic and decide by itself. `canary` (default) runs the new
 * image as `<app>-canary` next to the untouched stable, verifies it (pods, golden requests, Prometheus), then
 * promotes it or deletes it; `basic` updates in place and returns to the previous template on failure. Every
 * failure path (a gate, a timeout, an exception, a cancellation) ends in a roll back; a Lease serializes deploys.
 *
 * Here the order of things: the inputs, the cluster's version, the permissions (permissions.ts), the plan (plan.ts),
 * the server-side dry run (admission.ts), then the dry run's diff or the deploy: the namespace, the lease, the
 * strategy (strategies/), the report (report.ts). The post step of a killed run is cleanup.ts.
 */
export async function runRollout(cfg: RolloutConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<StageResult> {
  // ---- everything that can be wrong with the inputs fails here, before anything is applied
  const patches = [...(cfg.manifest ? readManifest(cfg.manifest) : []), ...(cfg.patch ? readPatches(cfg.patch) : [])];
  if (cfg.reference) referenceBatches(cfg.reference);
  // the spec and the canary's size, checked now (planRollout makes them again, with what the cluster runs)
  deploySpec(cfg);
  canaryCount(cfg);
  // verify (cosign) before the cluster is asked anything: what does not verify stops here, and every object of the
  // plan names the image by the digest that verified
  if (cfg.verification) cfg = { ...cfg, image: await verifiedImage(cfg, cfg.verification, log, env) };
  const kube = Kube.load(cfg.kubeconfig);
  const version = await kube.serverVersion();
  const unsupported = unsupportedServer(version);
  if (unsupported) throw new ModelshipError('cluster', `Kubernetes ${kube.server}: ${unsupported}`);
  const owner = rolloutOwner(env);
  const ns = cfg.namespace;

  const namespaceExists = await namespaceIsThere(kube, ns);
  if (!namespaceExists && !cfg.dryRun && !cfg.createNamespace)
    throw new ModelshipError('input', `input "namespace": namespace "${ns}" does not exist (create-namespace is false)`, { field: 'namespace' });
  // every permission this run and its post step use (creating the namespace included), asked before anything is
  // read or changed in it: a missing one fails here, each named (permissions.ts)
  const needs: RunNeeds = { stage: 'rollout', namespace: ns, options: rolloutOptions(cfg, !namespaceExists && cfg.createNamespace) };
  await preflight(kube, accessChecks(needs), rbacHint(needs));

  const stable = namespaceExists ? await kube.get<LiveDeployment>('apps/v1', 'Deployment', ns, cfg.app) : undefined;
  // the preStop hook: the kubelet's sleep action where every kubelet the API server allows runs it
  const plan = planRollout(cfg, patches, owner, { namespaceExists, stable, sleepAction: sleepActionServed(version) });
  // autoscale: the autoscaler's kind is served (KEDA's ScaledObject needs KEDA), else a clear error now
  if (cfg.autoscale && plan.objects.autoscaler) {
    const warning = await checkAutoscalerServed(kube, cfg.autoscale, plan.objects.autoscaler);
    if (warning) log.warning(warning);
  }

  // everything the run may write, through the API server's admission before anything is applied (admission.ts): a
  // refusal, or pods that Pod Security would refuse, fail here. A takeover's stable is written by a full PUT.
  const admit = () => checkAdmission(kube, ns, plan.admitted, log, plan.replaced);
  if (namespaceExists) await admit();

  if (cfg.dryRun) return dryRun(kube, cfg, plan, log);
  return deploy(kube, cfg, plan, admit, log);
}

/**
 * The image by the digest its signature (and attestation-policy) verified; registry-username with registry-password
 * read a private registry. A username alone is no login (the reusable workflows pass the actor's name by default and
 * a password only when one is given): the signatures are then read as anyone may.
 */
async function verifiedImage(cfg: RolloutConfig, v: ImageVerification, log: Logger, env: NodeJS.ProcessEnv): Promise<string> {
  const { username = '', password = '' } = cfg.registryLogin ?? {};
  const login = openAuthConfig(parseImageRef(cfg.image).registry, password ? username : '', password, env);
  try {
    return (await verifyBeforeUse(v, cfg.image, log, login.env)).image;
  } finally {
    login.close();
  }
}

/** Whether the namespace exists; a namespaced identity may not read Namespaces: it then deploys into one that exists. */
async function namespaceIsThere(kube: Kube, namespace: string): Promise<boolean> {
  try {
    return (await kube.get('v1', 'Namespace', undefined, namespace)) !== undefined;
  } catch (e) {
    if (!/HTTP 403/.test(e instanceof Error ? e.message : String(e))) throw e;
    return true;
  }
}

/** The deploy: the namespace when it is new, the lease, the pull Secret, then the strategy to its decision. */
async function deploy(kube: Kube, cfg: RolloutConfig, plan: RolloutPlan, admit: () => Promise<void>, log: Logger): Promise<StageResult> {
  const ns = cfg.namespace;
  const run = new DeployRun(kube, ns, log, { timeoutS: cfg.timeoutS, verifyUrl: cfg.verifyUrl, protocol: cfg.protocol }, plan.gates);
  // cancellation (SIGINT/SIGTERM from the runner) and the overall timeout both end in a roll back
  run.listenForCancellation();
  const lock = new DeployLock(kube, ns, cfg.app, plan.owner, cfg.leaseDurationS);
  let locked = false;
  let outcome: Outcome;
  try {
    if (plan.createsNamespace) {
      // Pod Security restricted (manifests.ts), which modelship's own pods meet
      await run.step(`create namespace ${ns}`, () => kube.create(namespaceManifest(ns, { [CREATED_BY]: plan.owner })));
      // the dry run needs the namespace: one this run just made goes again when it refuses
      await run.step('server-side dry run', () =>
        admit().catch(async (e: unknown) => {
          await kube.remove('v1', 'Namespace', '', ns).catch(() => false);
          throw e;
        }),
      );
    }
    await run.step('take the deploy lease', () =>
      lock.acquire(cfg.lockTimeoutS, (holder) => log.info(`another deploy holds the lease (${holder}); waiting up to ${cfg.lockTimeoutS} s`)),
    );
    locked = true;
    const secret = plan.objects.pullSecret;
    if (secret)
      await run.step(`apply the image pull Secret ${secret.object.metadata.name} (${secret.registry})`, () => applyMarked(kube, secret.object, plan.owner));
    if (lock.takenOverFrom) log.info(`took over the lease from "${lock.takenOverFrom}", which stopped renewing it`);
    outcome = await runStrategy(strategyOf(plan), run);
  } finally {
    run.close();
    if (locked) await lock.release();
  }
  log.info(`decision: ${outcome.decision}: ${outcome.reason}`);
  return rolloutResult(plan, {
    outcome,
    gates: run.gates.records,
    timeline: run.timeline.entries,
    latencyP95Ms: run.latencyP95Ms,
    totalSeconds: run.timeline.secondsSinceStart(),
  });
}

function strategyOf(plan: RolloutPlan): Strategy {
  return plan.strategy === 'canary' ? canaryStrategy(plan) : basicStrategy(plan);
}
