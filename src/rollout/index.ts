import * as yaml from 'js-yaml';
import { createTwoFilesPatch } from 'diff';
import { RolloutConfig } from './inputs';
import { Logger, StageResult } from '../stage';
import { ModelshipError, isModelshipError } from '../util/errors';
import { referenceBatches } from '../shared/reference';
import { SERVING_PORT } from '../protocol/runtime';
import { goldenRequests, httpTransport, measureLatency, percentile, Transport, GOLDEN_TABLE_HEAD } from '../shared/golden';
import { decodeInferResponse, HEADER_LENGTH } from '../protocol/kserve';
import { parseImageRef } from '../shared/registry';
import { pullSecret, pullSecretName, deployment, service, canaryReplicas, validateSpec, selectorLabels, sleepActionServed, unsupportedServer, disruptionBudget, budgetMaxUnavailable, namespaceManifest, DeploySpec, K8sObject, METRICS_PORT, DRAIN_TIMEOUT_S } from './manifests';
import { applyPatches, readPatches, readManifest } from './patch';
import { Kube } from './kube';
import { DeployLock, leaseHolder, releaseIfHeld } from './lease';
import { waitDeployment, bake, GateFailure, Aborted, sleep, PodView } from './health';
import { prometheusGate, fmt } from './prometheus';
import { rolloutOwner, OWNER_LABEL, CREATED_BY, PROMOTED_BY, annotated } from './owner';
import { checkPodProviders } from './provider';
import { checkAdmission } from './admission';
import { accessChecks, preflight, rbacHint, rolloutOptions, RunNeeds } from './permissions';

/**
 * The rollout stage: put a new model in front of traffic and decide by itself. `canary` (default) runs the new
 * image as `<app>-canary` next to the untouched stable, verifies it (pods, golden requests, Prometheus), then
 * promotes it or deletes it; `basic` updates in place and returns to the previous template on failure. Every
 * failure path (a gate, a timeout, an exception, a cancellation) ends in a roll back; a Lease serializes deploys.
 */

type GateName = 'pods' | 'golden' | 'prometheus';
interface Gate {
  gate: GateName;
  result: 'pass' | 'fail' | 'skipped';
  detail: string;
  evidence: string[];
  seconds: number;
}
interface TimelineEntry {
  step: string;
  atS: number;
  seconds: number;
  result: 'ok' | 'fail';
  detail?: string;
}

const MANAGED = 'app.kubernetes.io/managed-by';

/** Strip what the server owns, and the runs' own marks (which run made or promoted what: owner.ts), for diffs. */
function normalize(o: K8sObject | undefined): string {
  if (!o) return '';
  const c = JSON.parse(JSON.stringify(o)) as K8sObject & { status?: unknown; spec?: { template?: { metadata?: { creationTimestamp?: unknown } } } };
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

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export async function runRollout(cfg: RolloutConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<StageResult> {
  // ---- everything that can be wrong with the inputs fails here, before anything is applied
  const patches = [...(cfg.manifest ? readManifest(cfg.manifest) : []), ...(cfg.patch ? readPatches(cfg.patch) : [])];
  if (cfg.reference) referenceBatches(cfg.reference);
  const spec: DeploySpec = {
    app: cfg.app,
    runtime: cfg.runtime,
    namespace: cfg.namespace,
    image: cfg.image,
    modelName: cfg.modelName,
    replicas: cfg.replicas,
    gpu: cfg.gpu,
    resources: { cpu: cfg.cpu, memory: cfg.memory },
    nodeSelector: cfg.nodeSelector,
    tolerations: cfg.tolerations,
    imagePullSecrets: [...cfg.imagePullSecrets, ...(cfg.pullSecret ? [pullSecretName(cfg.app)] : [])],
    apiKeySecret: cfg.apiKeySecret,
    modelKeySecret: cfg.modelKeySecret,
    progressDeadlineSeconds: Math.max(10, Math.round(cfg.timeoutS)),
    port: SERVING_PORT,
    metricsPort: METRICS_PORT,
    drainDelayS: cfg.drainDelayS,
    drainTimeoutS: DRAIN_TIMEOUT_S,
  };
  validateSpec(spec);
  const nCanary = cfg.strategy === 'canary' ? canaryReplicas(cfg.replicas, cfg.canaryPercent) : 0;
  const kube = Kube.load(cfg.kubeconfig);
  const version = await kube.serverVersion();
  const unsupported = unsupportedServer(version);
  if (unsupported) throw new ModelshipError('cluster', `Kubernetes ${kube.server}: ${unsupported}`);
  // the preStop hook: the kubelet's sleep action where every kubelet the API server allows runs it
  spec.sleepAction = sleepActionServed(version);
  const owner = rolloutOwner(env);
  const ns = cfg.namespace;

  let nsExists = true;
  try {
    nsExists = (await kube.get('v1', 'Namespace', undefined, ns)) !== undefined;
  } catch (e) {
    // a namespaced identity may not read Namespaces; it then deploys into one that exists
    if (!/HTTP 403/.test(msg(e))) throw e;
  }
  if (!nsExists && !cfg.dryRun && !cfg.createNamespace) throw new ModelshipError('input', `input "namespace": namespace "${ns}" does not exist (create-namespace is false)`, { field: 'namespace' });
  // every permission this run and its post step use (creating the namespace included), asked before anything is
  // read or changed in it: a missing one fails here, each named (permissions.ts)
  const needs: RunNeeds = { stage: 'rollout', namespace: ns, options: rolloutOptions(cfg, !nsExists && cfg.createNamespace) };
  await preflight(kube, accessChecks(needs), rbacHint(needs));

  // ---- the objects, as declared data
  const liveStable = nsExists ? await kube.get<K8sObject & { spec: { selector: { matchLabels?: Record<string, string> }; template: { metadata?: { labels?: Record<string, string> } } } }>('apps/v1', 'Deployment', ns, cfg.app) : undefined;
  const takeover = liveStable !== undefined && liveStable.metadata.labels?.[MANAGED] !== 'modelship';
  const stableObj = applyPatches(deployment(spec, 'stable', cfg.replicas), patches, cfg.app) as K8sObject & { spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } } };
  if (liveStable) {
    // a Deployment's selector is immutable: keep the live one, and make the pods carry its labels and ours
    stableObj.spec.selector = liveStable.spec.selector as { matchLabels: Record<string, string> };
    stableObj.spec.template.metadata.labels = { ...(liveStable.spec.selector.matchLabels ?? {}), ...stableObj.spec.template.metadata.labels };
  }
  const canaryObj = applyPatches(deployment(spec, 'canary', nCanary || 1), patches, cfg.app);
  canaryObj.metadata.labels = { ...canaryObj.metadata.labels, [OWNER_LABEL]: owner };
  const mainSvc = applyPatches(service(spec, 'main'), patches, cfg.app);
  const canarySvc = service(spec, 'canary');
  canarySvc.metadata.labels = { ...canarySvc.metadata.labels, [OWNER_LABEL]: owner };
  // what this run creates is marked as its own (see owner.ts), so the post step of a killed run can remove it
  const created = <T extends K8sObject>(o: T): T => annotated(o, { [CREATED_BY]: owner });
  const promoted = <T extends K8sObject>(o: T): T => annotated(o, { [PROMOTED_BY]: owner });
  /** apply `o`, marked as created by this run when it is not there yet */
  const applyMarked = async (o: K8sObject): Promise<boolean> => {
    const isNew = (await kube.get(o.apiVersion, o.kind, ns, o.metadata.name)) === undefined;
    await kube.apply(isNew ? created(o) : o);
    return isNew;
  };
  // the stable's PodDisruptionBudget, over its pods as its (live) selector picks them; none: one modelship made goes
  const maxUnavailable = budgetMaxUnavailable(cfg.disruptionBudget, cfg.replicas);
  const pdbObj = maxUnavailable === undefined ? undefined : disruptionBudget(spec, maxUnavailable, stableObj.spec.selector.matchLabels);
  /** apply the budget with the stable (or delete the one modelship made when there should be none); true when it made one */
  const applyBudget = async (): Promise<boolean> => {
    if (pdbObj) return applyMarked(pdbObj);
    const live = await kube.get('policy/v1', 'PodDisruptionBudget', ns, cfg.app);
    if (live?.metadata.labels?.[MANAGED] === 'modelship') {
      await kube.remove('policy/v1', 'PodDisruptionBudget', ns, cfg.app);
      log.info(`deleted PodDisruptionBudget ${cfg.app} (disruption-budget ${cfg.disruptionBudget}${cfg.disruptionBudget === 'auto' ? `: ${cfg.replicas} replica` : ''})`);
    }
    return false;
  };
  const secretObj = cfg.pullSecret ? pullSecret(spec, parseImageRef(cfg.image).registry, cfg.pullSecret.username, cfg.pullSecret.password) : undefined;
  const planned = [...(cfg.strategy === 'canary' ? [canaryObj, canarySvc, stableObj, ...(takeover ? [] : [mainSvc])] : [stableObj, mainSvc]), ...(pdbObj ? [pdbObj] : [])];

  // everything the run may write, through the API server's admission before anything is applied (admission.ts): a
  // refusal, or pods that Pod Security would refuse, fail here. A takeover's stable is written by a full PUT.
  const admitted = [...planned, ...(cfg.strategy === 'canary' && takeover ? [mainSvc] : []), ...(secretObj ? [secretObj] : [])];
  const admit = () => checkAdmission(kube, ns, admitted, log, takeover ? [stableObj] : []);
  if (nsExists) await admit();

  // (the pull Secret is not in the dry run's diff: its data would be printed)
  if (cfg.dryRun) return dryRun(kube, cfg, planned, nsExists, takeover, nCanary, log);

  // ---- the deploy
  const t0 = Date.now();
  const timeline: TimelineEntry[] = [];
  const gates: Gate[] = [
    { gate: 'pods', result: 'skipped', detail: '', evidence: [], seconds: 0 },
    { gate: 'golden', result: 'skipped', detail: cfg.reference ? '' : 'no reference given: only /v2/models/<model>/ready was checked', evidence: [], seconds: 0 },
    { gate: 'prometheus', result: 'skipped', detail: cfg.prometheus ? '' : 'no prometheus-url', evidence: [], seconds: 0 },
  ];
  const gate = (n: GateName) => gates.find((g) => g.gate === n)!;
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    log.info(`[${((s - t0) / 1000).toFixed(1)} s] ${name}`);
    try {
      const r = await fn();
      timeline.push({ step: name, atS: (s - t0) / 1000, seconds: (Date.now() - s) / 1000, result: 'ok' });
      return r;
    } catch (e) {
      timeline.push({ step: name, atS: (s - t0) / 1000, seconds: (Date.now() - s) / 1000, result: 'fail', detail: msg(e).split('\n')[0] });
      throw e;
    }
  };
  const runGate = async <T>(n: GateName, name: string, fn: () => Promise<T>): Promise<T> => {
    const g = gate(n);
    const s = Date.now();
    try {
      const r = await step(name, fn);
      g.seconds += (Date.now() - s) / 1000;
      return r;
    } catch (e) {
      g.seconds += (Date.now() - s) / 1000;
      g.result = 'fail';
      g.detail = msg(e);
      if (e instanceof GateFailure) g.evidence = e.evidence;
      throw e;
    }
  };

  // cancellation (SIGINT/SIGTERM from the runner) and the overall timeout both end in a roll back
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => ac.abort(`cancelled (${sig})`);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let timer: NodeJS.Timeout | undefined;
  const lock = new DeployLock(kube, ns, cfg.app, owner, cfg.leaseDurationS);
  let decision: 'promoted' | 'rolled-back' = 'rolled-back';
  let reason = '';
  let decisionS = NaN;
  let p95: number | undefined;
  let locked = false;
  try {
    if (!nsExists) {
      // Pod Security restricted (manifests.ts), which modelship's own pods meet
      await step(`create namespace ${ns}`, () => kube.create(namespaceManifest(ns, { [CREATED_BY]: owner })));
      // the dry run needs the namespace: one this run just made goes again when it refuses
      await step('server-side dry run', () => admit().catch(async (e: unknown) => {
        await kube.remove('v1', 'Namespace', '', ns).catch(() => false);
        throw e;
      }));
    }
    await step('take the deploy lease', () => lock.acquire(cfg.lockTimeoutS, (holder) => log.info(`another deploy holds the lease (${holder}); waiting up to ${cfg.lockTimeoutS} s`)));
    locked = true;
    if (secretObj) await step(`apply the image pull Secret ${secretObj.metadata.name} (${parseImageRef(cfg.image).registry})`, () => applyMarked(secretObj));
    if (lock.takenOverFrom) log.info(`took over the lease from "${lock.takenOverFrom}", which stopped renewing it`);
    const applyStart = Date.now();
    timer = setTimeout(() => ac.abort(`timeout: no decision within rollout-timeout ${cfg.timeoutS} s`), cfg.timeoutS * 1000);
    const remaining = () => Math.max(0, cfg.timeoutS * 1000 - (Date.now() - applyStart));
    const waitOpts = () => ({ timeoutMs: remaining(), signal: ac.signal, readinessGraceMs: 2 * 2000 + 2000, onProgress: log.info });
    const verifyTransport = (svc: string): Transport => (cfg.verifyUrl ? httpTransport(cfg.verifyUrl) : kube.serviceProxy(ns, svc, 'http'));

    const verifyGate = async (svc: string): Promise<{ batch1?: { body: Buffer; headerLength: number } }> => {
      const t = verifyTransport(svc);
      const headers: Record<string, string> = cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {};
      // the proxy answers 503 until the Service's endpoints catch up with the pods' readiness
      let meta: { inputs?: { name: string }[] } = {};
      for (let i = 0; ; i++) {
        const r = await t(`/v2/models/${cfg.modelName}`, { headers, timeoutMs: 10_000 }).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message), headers: {} }));
        if (r.status === 200) {
          meta = JSON.parse(r.body.toString()) as typeof meta;
          break;
        }
        if (i >= 20 || (r.status >= 400 && r.status < 500 && r.status !== 404)) throw new GateFailure(`model metadata from ${svc}: HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
        await sleep(500, ac.signal);
      }
      const g = gate('golden');
      if (!cfg.reference) {
        g.result = 'pass';
        return {};
      }
      const res = await goldenRequests(t, { reference: cfg.reference, modelName: cfg.modelName, inputName: meta.inputs![0].name, singleInput: meta.inputs!.length === 1, tolerance: cfg.tolerance, headers });
      g.evidence = [...GOLDEN_TABLE_HEAD, ...res.rows];
      if (res.failures.length) throw new GateFailure(`golden requests to ${svc}: ${res.failures[0]}`, [...res.failures, ...GOLDEN_TABLE_HEAD, ...res.rows]);
      if (res.batch1 && cfg.verifyRequests > 0) {
        const m = await measureLatency(t, `/v2/models/${cfg.modelName}/infer`, res.batch1, cfg.verifyRequests, 1, headers);
        p95 = percentile(m.sorted, 95);
        if (m.errors) throw new GateFailure(`${m.errors} of ${cfg.verifyRequests} golden requests to ${svc} failed: ${m.firstError}`);
        if (cfg.maxLatencyMs > 0 && p95 > cfg.maxLatencyMs) throw new GateFailure(`golden requests to ${svc}: latency p95 ${p95.toFixed(1)} ms > max-latency-ms ${cfg.maxLatencyMs} (p50 ${percentile(m.sorted, 50).toFixed(1)} ms, ${cfg.verifyRequests} requests)`);
      }
      g.result = 'pass';
      g.detail = `${res.compared} outputs match the reference${p95 !== undefined ? `; p95 ${p95.toFixed(1)} ms over ${cfg.verifyRequests} requests${cfg.maxLatencyMs > 0 ? ` (limit ${cfg.maxLatencyMs} ms)` : ''}` : ''}`;
      return { batch1: res.batch1 };
    };

    /** During the bake, one golden request a second: the canary must keep answering right (and Prometheus gets samples). */
    const bakeTick = (svc: string, batch1?: { body: Buffer; headerLength: number }) => {
      if (!batch1 || !cfg.reference) return undefined;
      const t = verifyTransport(svc);
      return async () => {
        const r = await t(`/v2/models/${cfg.modelName}/infer`, { body: batch1.body, headers: { ...(cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {}), [HEADER_LENGTH]: batch1.headerLength } });
        if (r.status !== 200) throw new GateFailure(`during the bake window: a golden request to ${svc} answered HTTP ${r.status}: ${r.body.toString().slice(0, 200)}`);
        decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH]));
      };
    };

    const canaryPodSelector = { ...selectorLabels(cfg.app), track: 'canary' };
    if (cfg.strategy === 'canary') {
      let createdMainSvc = false;
      try {
        await step(`apply ${canaryObj.metadata.name} (${nCanary} of ${cfg.replicas} replicas) and its Service`, async () => {
          await kube.apply(canaryObj);
          await kube.apply(canarySvc);
          if (!takeover) createdMainSvc = await applyMarked(mainSvc);
        });
        const pods: PodView[] = (await runGate('pods', 'canary pods Ready', () => waitDeployment(kube, ns, canaryObj.metadata.name, waitOpts()))).pods;
        gate('pods').detail = `${pods.length} canary pod(s) Ready`;
        if (cfg.gpu) gate('pods').evidence = await runGate('pods', 'canary pods compute on the GPU', () => checkPodProviders(kube, ns, pods, cfg.modelName, SERVING_PORT));
        const { batch1 } = await runGate('golden', `golden requests to ${cfg.app}-canary`, () => verifyGate(`${cfg.app}-canary`));
        if (cfg.bakeTimeS > 0) await runGate('pods', `bake ${cfg.bakeTimeS} s`, () => bake(kube, ns, canaryPodSelector, pods, cfg.bakeTimeS * 1000, ac.signal, bakeTick(`${cfg.app}-canary`, batch1)));
        gate('pods').result = 'pass';
        gate('pods').detail = `${pods.length} canary pod(s) Ready, no restart or NotReady during ${cfg.bakeTimeS} s`;
        if (cfg.prometheus) {
          const pc = cfg.prometheus;
          const r = await runGate('prometheus', 'Prometheus gate', () => prometheusGate({ ...pc, waitMs: Math.max(0, Math.min(30_000, remaining() - 2000)) }, { namespace: ns, app: cfg.app, model: cfg.modelName }, !!liveStable, ac.signal));
          gate('prometheus').result = 'pass';
          gate('prometheus').detail = `canary ${fmt(r.canary)}; stable ${liveStable ? fmt(r.stable) : 'none'}`;
          gate('prometheus').evidence = r.queries;
        }
        decisionS = (Date.now() - applyStart) / 1000;
        clearTimeout(timer);
        // ---- promote: the stable takes the new image (taking over a Deployment modelship did not create)
        await step(`promote: ${cfg.app} takes the new image`, async () => {
          // marked as promoted by this run: from here on its post step leaves the stable and what serves it alone
          const promotedObj = promoted(liveStable ? stableObj : created(stableObj));
          if (takeover) await takeOver(kube, promotedObj);
          await kube.apply(promotedObj);
          if (takeover) await kube.apply(mainSvc);
          await applyBudget();
        });
        try {
          await step(`stable rollout of ${cfg.app}`, () => waitDeployment(kube, ns, cfg.app, { ...waitOpts(), timeoutMs: cfg.timeoutS * 1000 }));
        } catch (e) {
          if (liveStable) await step(`roll ${cfg.app} back to its previous template`, () => restoreTemplate(kube, ns, cfg.app, liveStable.spec.template));
          throw e;
        }
        await step(`delete ${canaryObj.metadata.name}`, () => deleteCanary(kube, ns, cfg.app));
        decision = 'promoted';
        reason = `canary verified (${gates.filter((g) => g.result === 'pass').map((g) => g.gate).join(', ')}) and promoted: ${cfg.app} runs ${cfg.image}`;
      } catch (e) {
        if (Number.isNaN(decisionS)) decisionS = (Date.now() - applyStart) / 1000;
        reason = ac.signal.aborted ? `${ac.signal.reason}${e instanceof Aborted ? '' : `: ${msg(e)}`}` : failureReason(e, gates);
        await step(`roll back: delete ${cfg.app}-canary`, async () => {
          await deleteCanary(kube, ns, cfg.app);
          if (!liveStable && createdMainSvc && decision !== 'promoted') await kube.remove('v1', 'Service', ns, cfg.app);
        });
      }
    } else {
      // ---- basic: update in place, verify, return to the previous template on failure
      let createdPdb = false;
      try {
        await step(`apply ${cfg.app}`, async () => {
          const obj = liveStable ? stableObj : created(stableObj);
          if (takeover) await takeOver(kube, obj);
          await kube.apply(obj);
          await applyMarked(mainSvc);
          createdPdb = await applyBudget();
        });
        const pods = (await runGate('pods', `${cfg.app} rollout`, () => waitDeployment(kube, ns, cfg.app, waitOpts()))).pods;
        if (cfg.gpu) gate('pods').evidence = await runGate('pods', `${cfg.app} pods compute on the GPU`, () => checkPodProviders(kube, ns, pods, cfg.modelName, SERVING_PORT));
        const { batch1 } = await runGate('golden', `golden requests to ${cfg.app}`, () => verifyGate(cfg.app));
        if (cfg.bakeTimeS > 0) await runGate('pods', `bake ${cfg.bakeTimeS} s`, () => bake(kube, ns, { ...selectorLabels(cfg.app), track: 'stable' }, pods, cfg.bakeTimeS * 1000, ac.signal, bakeTick(cfg.app, batch1)));
        gate('pods').result = 'pass';
        gate('pods').detail = `${pods.length} pod(s) Ready, no restart or NotReady during ${cfg.bakeTimeS} s`;
        decisionS = (Date.now() - applyStart) / 1000;
        // verified: marked as this run's (the same apply, an annotation more), so its post step leaves it alone
        await kube.apply(promoted(liveStable ? stableObj : created(stableObj)));
        decision = 'promoted';
        reason = `${cfg.app} updated and verified: runs ${cfg.image}`;
      } catch (e) {
        if (Number.isNaN(decisionS)) decisionS = (Date.now() - applyStart) / 1000;
        reason = ac.signal.aborted ? `${ac.signal.reason}${e instanceof Aborted ? '' : `: ${msg(e)}`}` : failureReason(e, gates);
        await step(liveStable ? `roll ${cfg.app} back to the previous ReplicaSet's template` : `delete ${cfg.app} (first deploy)`, async () => {
          if (liveStable) await restoreTemplate(kube, ns, cfg.app, liveStable.spec.template);
          else await kube.remove('apps/v1', 'Deployment', ns, cfg.app);
          if (createdPdb) await kube.remove('policy/v1', 'PodDisruptionBudget', ns, cfg.app);
        });
      }
    }
  } finally {
    if (timer) clearTimeout(timer);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    if (locked) await lock.release();
  }

  const outputs: Record<string, string> = {
    decision,
    reason,
    'canary-replicas': String(nCanary),
    'gate-pods': gate('pods').result,
    'gate-golden': gate('golden').result,
    'gate-prometheus': gate('prometheus').result,
    'verify-latency-p95-ms': p95 === undefined ? '' : p95.toFixed(2),
    'decision-seconds': Number.isNaN(decisionS) ? '' : decisionS.toFixed(1),
    'rollout-report': JSON.stringify({ decision, reason, strategy: cfg.strategy, namespace: ns, app: cfg.app, image: cfg.image, takeover, gates, timeline, totalSeconds: (Date.now() - t0) / 1000 }),
  };
  log.info(`decision: ${decision}: ${reason}`);
  const summary = rolloutSummary(cfg, decision, reason, gates, timeline, nCanary);
  return decision === 'promoted' ? { outputs, summary, ok: true } : { outputs, summary, ok: false, failure: `rolled back: ${reason}` };
}

function failureReason(e: unknown, gates: Gate[]): string {
  const failed = gates.find((g) => g.result === 'fail');
  if (failed) return `gate "${failed.gate}" failed: ${failed.detail}${failed.evidence.length ? `\n${failed.evidence.slice(0, 12).join('\n')}` : ''}`;
  const evidence = e instanceof GateFailure && e.evidence.length ? `\n${e.evidence.slice(0, 12).join('\n')}` : '';
  return (isModelshipError(e) || e instanceof GateFailure ? msg(e) : `error: ${msg(e)}`) + evidence;
}

async function deleteCanary(kube: Kube, ns: string, app: string): Promise<void> {
  await kube.remove('apps/v1', 'Deployment', ns, `${app}-canary`);
  await kube.remove('v1', 'Service', ns, `${app}-canary`);
}

/**
 * Take over a Deployment modelship did not create: one full replace (PUT) with the generated object, so fields
 * owned by its old manager (a container under another name, say) go, then server-side apply owns it from here.
 */
async function takeOver(kube: Kube, obj: K8sObject): Promise<void> {
  for (let i = 0; ; i++) {
    const cur = await kube.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
    try {
      await kube.replace({ ...obj, metadata: { ...obj.metadata, resourceVersion: (cur?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion } } as K8sObject);
      return;
    } catch (e) {
      if (i >= 4 || !/HTTP 409/.test(msg(e))) throw e; // the controller updated its status in between
    }
  }
}

/** Put a Deployment's pod template back (what `kubectl rollout undo` does), and wait for it briefly. */
async function restoreTemplate(kube: Kube, ns: string, app: string, template: unknown): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const cur = await kube.get<K8sObject & { spec: { template: unknown } }>('apps/v1', 'Deployment', ns, app);
    if (!cur) return;
    cur.spec.template = template;
    try {
      await kube.replace(cur);
      return;
    } catch (e) {
      if (!/HTTP 409/.test(msg(e))) throw e;
    }
  }
}

async function dryRun(kube: Kube, cfg: RolloutConfig, planned: K8sObject[], nsExists: boolean, takeover: boolean, nCanary: number, log: Logger): Promise<StageResult> {
  const sections: string[] = [];
  const lines: string[] = [`dry run: ${cfg.strategy} rollout of ${cfg.image} to ${cfg.namespace}/${cfg.app} (nothing is changed)`];
  if (!nsExists) lines.push(`- would create namespace ${cfg.namespace}`);
  if (takeover) lines.push(`- would take over Deployment ${cfg.app}, which modelship did not create (its selector is kept)`);
  if (cfg.strategy === 'canary') lines.push(`- would run ${nCanary} canary replica(s), verify them (pods, golden requests${cfg.prometheus ? ', Prometheus' : ''}), then promote ${cfg.app} or delete the canary`);
  for (const obj of planned) {
    const live = nsExists ? await kube.get(obj.apiVersion, obj.kind, cfg.namespace, obj.metadata.name) : undefined;
    // the API server's own view of the result: a server-side dry run of the same apply
    const result = nsExists ? await kube.apply(obj, true) : obj;
    const patch = createTwoFilesPatch(`live/${obj.kind}/${obj.metadata.name}`, `planned/${obj.kind}/${obj.metadata.name}`, normalize(live), normalize(result), undefined, undefined, { context: 3 });
    const changed = normalize(live) !== normalize(result);
    lines.push(`- ${obj.kind} ${obj.metadata.name}: ${live ? (changed ? 'would change' : 'unchanged') : 'would create'}`);
    sections.push(`### ${obj.kind} ${obj.metadata.name}: ${live ? (changed ? 'changes' : 'unchanged') : 'new'}\n\n\`\`\`diff\n${patch.split('\n').slice(2).join('\n')}\n\`\`\``);
  }
  log.info(lines.join('\n'));
  for (const s of sections) log.info(s.replace(/```(diff)?\n?/g, ''));
  return {
    outputs: { decision: 'dry-run', reason: 'dry run: the plan was printed and nothing was changed', 'canary-replicas': String(nCanary), 'gate-pods': 'skipped', 'gate-golden': 'skipped', 'gate-prometheus': 'skipped', 'verify-latency-p95-ms': '', 'decision-seconds': '', 'rollout-report': JSON.stringify({ decision: 'dry-run', plan: lines }) },
    summary: `## modelship rollout (dry run)\n\n${lines.join('\n')}\n\n${sections.join('\n\n')}\n`,
    ok: true,
  };
}

function rolloutSummary(cfg: RolloutConfig, decision: string, reason: string, gates: Gate[], timeline: TimelineEntry[], nCanary: number): string {
  const icon = decision === 'promoted' ? '✅' : '❌';
  const rows = gates.map((g) => `| ${g.gate} | ${g.result === 'fail' ? '**fail**' : g.result} | ${g.seconds.toFixed(1)} s | ${g.detail.split('\n')[0].replace(/\|/g, '\\|').slice(0, 300)} |`);
  const tl = timeline.map((t) => `| ${t.atS.toFixed(1)} s | ${t.step} | ${t.seconds.toFixed(1)} s | ${t.result === 'ok' ? 'ok' : `**fail**: ${(t.detail ?? '').replace(/\|/g, '\\|').slice(0, 200)}`} |`);
  const gantt = ['```mermaid', 'gantt', '  title Rollout timeline', '  dateFormat X', '  axisFormat %Ss', ...timeline.map((t, i) => `  ${t.step.replace(/[:#;]/g, ' ')} :${t.result === 'fail' ? 'crit, ' : ''}s${i}, ${Math.round(t.atS)}, ${Math.max(1, Math.round(t.seconds))}s`), '```'];
  const evidence = gates.filter((g) => g.evidence.length && g.result === 'fail').map((g) => `<details><summary>evidence: ${g.gate}</summary>\n\n\`\`\`\n${g.evidence.join('\n')}\n\`\`\`\n</details>`);
  return [
    `## modelship rollout: ${icon} ${decision}`,
    '',
    `\`${cfg.image}\` → ${cfg.namespace}/${cfg.app}, strategy ${cfg.strategy}${cfg.strategy === 'canary' ? ` (${nCanary} canary of ${cfg.replicas} replicas)` : ''}.`,
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

/**
 * The action's post step, after a cancelled or killed job: remove what this run (`owner`) made and left, and nothing
 * else (what existed before the run, or another run made, is never touched; see owner.ts for the marks).
 * - its canary: the Deployment (and its Service) labelled with the owner;
 * - when the run did not finish — it still holds the deploy lease (a run that ends by itself gives it back after its
 *   decision) and no stable Deployment is marked as promoted by it — the objects it created: the main Service, the
 *   pull Secret, a first stable Deployment (basic strategy);
 * - its lease;
 * - then the namespace, if the unfinished run created it and it holds nothing the run did not create.
 */
export async function cleanupRollout(kubeconfig: string, namespace: string, app: string, owner: string, log: Logger): Promise<string[]> {
  const kube = Kube.load(kubeconfig);
  const done: string[] = [];
  const createdByRun = (o: K8sObject | undefined) => o?.metadata.annotations?.[CREATED_BY] === owner;
  // what the identity may not read (a Secret without create-pull-secret, the namespace for a namespaced Role:
  // permissions.ts) the run cannot have made either
  const readable = (p: Promise<K8sObject | undefined>) => p.catch((e: unknown) => (/HTTP 403/.test(msg(e)) ? undefined : Promise.reject(e)));
  const canary = await kube.get('apps/v1', 'Deployment', namespace, `${app}-canary`);
  if (canary && canary.metadata.labels?.[OWNER_LABEL] === owner) {
    await deleteCanary(kube, namespace, app);
    done.push(`deleted ${namespace}/${app}-canary (Deployment and Service)`);
  } else if ((await kube.get('v1', 'Service', namespace, `${app}-canary`))?.metadata.labels?.[OWNER_LABEL] === owner) {
    await kube.remove('v1', 'Service', namespace, `${app}-canary`);
    done.push(`deleted Service ${namespace}/${app}-canary`);
  }
  const stable = await kube.get('apps/v1', 'Deployment', namespace, app);
  const unfinished = (await leaseHolder(kube, namespace, app)) === owner && stable?.metadata.annotations?.[PROMOTED_BY] !== owner;
  if (unfinished) {
    const made: [string, string, string][] = [['apps/v1', 'Deployment', app], ['v1', 'Service', app], ['policy/v1', 'PodDisruptionBudget', app], ['v1', 'Secret', pullSecretName(app)]];
    for (const [apiVersion, kind, name] of made) {
      const o = kind === 'Deployment' ? stable : await readable(kube.get(apiVersion, kind, namespace, name));
      if (createdByRun(o) && (await kube.remove(apiVersion, kind, namespace, name))) done.push(`deleted ${kind} ${namespace}/${name}, which this run created`);
    }
  }
  if (await releaseIfHeld(kube, namespace, app, owner)) done.push(`released the deploy lease of ${namespace}/${app}`);
  if (unfinished && createdByRun(await readable(kube.get('v1', 'Namespace', undefined, namespace)))) {
    let others: string[];
    try {
      others = (await kube.namespaceObjects(namespace)).filter((o) => !madeWithNamespace(o, owner)).map((o) => `${o.kind} ${o.metadata.name}`);
    } catch (e) {
      others = [`objects it cannot list (${msg(e)})`];
    }
    if (others.length === 0) {
      await kube.remove('v1', 'Namespace', '', namespace);
      done.push(`deleted namespace ${namespace}, which this run created`);
    } else {
      log.info(`modelship post: kept namespace ${namespace}, which this run created: it also holds ${others.slice(0, 10).join(', ')}${others.length > 10 ? ` and ${others.length - 10} more` : ''}`);
    }
  }
  for (const d of done) log.info(`modelship post: ${d}`);
  return done;
}

/**
 * Is `o` nothing of its own in a namespace the run created: made by the run (its mark), on its way out, a dependent
 * of another object (a ReplicaSet, a Pod, an EndpointSlice: the object it depends on is counted instead), or what
 * Kubernetes puts in every namespace (the default ServiceAccount and its token, the root CA ConfigMap)?
 */
function madeWithNamespace(o: K8sObject & { metadata: { deletionTimestamp?: string; ownerReferences?: unknown[] }; type?: string }, owner: string): boolean {
  const m = o.metadata;
  if (m.annotations?.[CREATED_BY] === owner || m.deletionTimestamp || (m.ownerReferences ?? []).length > 0) return true;
  if (o.apiVersion !== 'v1') return false;
  return (o.kind === 'ServiceAccount' && m.name === 'default') || (o.kind === 'Secret' && o.type === 'kubernetes.io/service-account-token' && m.annotations?.['kubernetes.io/service-account.name'] === 'default') || (o.kind === 'ConfigMap' && m.name === 'kube-root-ca.crt');
}

