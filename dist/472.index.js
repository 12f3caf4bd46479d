"use strict";
exports.id = 472;
exports.ids = [472,404];
exports.modules = {

/***/ 12472:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  cleanupRollout: () => (/* binding */ cleanupRollout),
  runRollout: () => (/* binding */ runRollout)
});

// EXTERNAL MODULE: ./node_modules/js-yaml/dist/js-yaml.mjs
var js_yaml = __webpack_require__(33243);
// EXTERNAL MODULE: ./node_modules/diff/libesm/patch/create.js + 2 modules
var create = __webpack_require__(37291);
// EXTERNAL MODULE: ./src/util/errors.ts
var errors = __webpack_require__(70017);
// EXTERNAL MODULE: ./src/shared/reference.ts
var reference = __webpack_require__(39724);
// EXTERNAL MODULE: ./src/protocol/runtime.ts
var runtime = __webpack_require__(44832);
// EXTERNAL MODULE: ./src/shared/golden.ts
var golden = __webpack_require__(71636);
// EXTERNAL MODULE: ./src/protocol/kserve.ts
var kserve = __webpack_require__(26214);
// EXTERNAL MODULE: ./src/shared/registry.ts
var registry = __webpack_require__(9222);
// EXTERNAL MODULE: ./src/rollout/manifests.ts
var manifests = __webpack_require__(59795);
// EXTERNAL MODULE: external "fs"
var external_fs_ = __webpack_require__(79896);
;// CONCATENATED MODULE: ./src/rollout/patch.ts



const MERGE_KEYS = {
    containers: ['name'],
    initContainers: ['name'],
    ephemeralContainers: ['name'],
    env: ['name'],
    volumes: ['name'],
    volumeMounts: ['mountPath'],
    volumeDevices: ['devicePath'],
    imagePullSecrets: ['name'],
    ports: ['containerPort', 'port'],
    hostAliases: ['ip'],
};
const isObj = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
function mergeKeyOf(field, items) {
    const keys = MERGE_KEYS[field];
    if (!keys || !items.every(isObj))
        return undefined;
    return keys.find((k) => items.every((i) => i[k] !== undefined));
}
function strategicMerge(base, patch, field = '') {
    if (isObj(patch)) {
        if (patch.$patch === 'replace') {
            const { $patch: _, ...rest } = patch;
            return rest;
        }
        const out = isObj(base) ? { ...base } : {};
        for (const [k, v] of Object.entries(patch)) {
            if (k === '$patch')
                continue;
            if (v === null)
                delete out[k];
            else
                out[k] = strategicMerge(out[k], v, k);
        }
        return out;
    }
    if (Array.isArray(patch) && Array.isArray(base)) {
        const key = mergeKeyOf(field, [...base, ...patch.filter((p) => !(isObj(p) && p.$patch === 'delete' && Object.keys(p).length === 1))]);
        if (!key)
            return patch;
        const out = [...base];
        for (const p of patch) {
            const i = out.findIndex((b) => b[key] === p[key]);
            if (p.$patch === 'delete') {
                if (i >= 0)
                    out.splice(i, 1);
            }
            else if (i >= 0)
                out[i] = strategicMerge(out[i], p, '');
            else
                out.push(strategicMerge(undefined, p, ''));
        }
        return out;
    }
    return patch;
}
/** Read a multi-document YAML patch file; each document names the kind it patches (and optionally the name). */
function readPatches(file) {
    let text;
    try {
        text = external_fs_.readFileSync(file, 'utf8');
    }
    catch (e) {
        throw new errors/* ModelshipError */.W7('input', `input "patch": cannot read ${file}: ${e.code ?? e.message}`, { field: 'patch', file });
    }
    let docs;
    try {
        docs = js_yaml/* loadAll */.gh(text);
    }
    catch (e) {
        const m = e.mark;
        throw new errors/* ModelshipError */.W7('input', `input "patch": ${file} is not YAML: ${e.reason}`, { field: 'patch', file, line: m ? m.line + 1 : undefined, column: m ? m.column + 1 : undefined });
    }
    return docs
        .filter((d) => d !== null && d !== undefined)
        .map((d, i) => {
        if (!isObj(d) || typeof d.kind !== 'string')
            throw new errors/* ModelshipError */.W7('input', `input "patch": document ${i + 1} of ${file} needs a "kind" (Deployment or Service)`, { field: 'patch', file });
        const name = isObj(d.metadata) && typeof d.metadata.name === 'string' ? d.metadata.name : undefined;
        const { apiVersion: _a, kind: _k, ...body } = d;
        if (isObj(body.metadata)) {
            const { name: _n, namespace: _ns, ...meta } = body.metadata;
            body.metadata = meta;
        }
        return { kind: d.kind, name, body: body, source: `${file} (document ${i + 1})` };
    });
}
/**
 * Apply the patches to one generated object. A patch for `<app>` also applies to `<app>-canary`: the canary is
 * the release under test, so it must carry the same overlay the stable will get on promotion. Selectors and the
 * labels modelship routes by are kept.
 */
function applyPatches(obj, patches, app) {
    let out = obj;
    for (const p of patches) {
        if (p.kind !== obj.kind)
            continue;
        if (p.name && p.name !== obj.metadata.name && `${p.name}-canary` !== obj.metadata.name)
            continue;
        if (p.name && p.name !== app && p.name !== obj.metadata.name)
            continue;
        out = strategicMerge(out, p.body);
    }
    // what modelship routes and selects by is not the overlay's to change
    const spec = obj.spec;
    const outSpec = out.spec;
    if (spec && outSpec) {
        outSpec.selector = spec.selector;
        if (isObj(spec.template) && isObj(outSpec.template) && isObj(spec.template.metadata) && isObj(outSpec.template.metadata) && isObj(spec.template.metadata.labels)) {
            outSpec.template.metadata.labels = { ...(isObj(outSpec.template.metadata.labels) ? outSpec.template.metadata.labels : {}), ...spec.template.metadata.labels };
        }
    }
    const image = spec?.template?.spec?.containers?.find((c) => c.name === 'model-server')?.image;
    const server = outSpec?.template?.spec?.containers?.find((c) => c.name === 'model-server');
    if (image && server)
        server.image = image;
    out.metadata = { ...out.metadata, name: obj.metadata.name, namespace: obj.metadata.namespace, labels: { ...(out.metadata.labels ?? {}), ...(obj.metadata.labels ?? {}) } };
    return out;
}
/** The manifest input: the user's own Deployment/Service documents, laid over the generated ones like patches. */
function readManifest(file) {
    const docs = readPatches(file).map((d) => ({ ...d, source: `manifest ${d.source}` }));
    for (const d of docs) {
        // a single container under another name is the model server: keep one container, not two
        const containers = (d.body.spec?.template?.spec?.containers ?? []);
        if (d.kind === 'Deployment' && containers.length === 1)
            containers[0].name = 'model-server';
    }
    return docs;
}

// EXTERNAL MODULE: ./src/rollout/kube.ts
var rollout_kube = __webpack_require__(57404);
// EXTERNAL MODULE: ./src/rollout/kube-errors.ts
var kube_errors = __webpack_require__(36526);
;// CONCATENATED MODULE: ./src/rollout/lease.ts


const leaseName = (app) => `modelship-${app}`;
/** Pure: is a lease held by someone other than `me` and still valid at `now`? */
function heldByOther(l, me, now) {
    if (!l || !l.holder || l.holder === me)
        return false;
    const renewed = l.renewTime ? Date.parse(l.renewTime) : 0;
    return renewed + l.durationS * 1000 > now;
}
/** The Lease as the deploy lock writes it (taken or renewed at `now`), as data. */
function leaseObject(namespace, app, holder, durationS, now, resourceVersion) {
    return {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: leaseName(app), namespace, resourceVersion, labels: { 'app.kubernetes.io/managed-by': 'modelship', 'app.kubernetes.io/name': app } },
        spec: { holderIdentity: holder, leaseDurationSeconds: durationS, acquireTime: now, renewTime: now },
    };
}
class DeployLock {
    kube;
    namespace;
    app;
    holder;
    durationS;
    timer;
    resourceVersion;
    /** set when the lease was taken over from a holder that stopped renewing it */
    takenOverFrom;
    constructor(kube, namespace, app, holder, durationS) {
        this.kube = kube;
        this.namespace = namespace;
        this.app = app;
        this.holder = holder;
        this.durationS = durationS;
    }
    async read() {
        try {
            const l = await this.kube.coordination.readNamespacedLease({ name: leaseName(this.app), namespace: this.namespace });
            const renew = l.spec?.renewTime;
            return { holder: l.spec?.holderIdentity ?? '', renewTime: renew instanceof Date ? renew.toISOString() : renew, durationS: l.spec?.leaseDurationSeconds ?? this.durationS, resourceVersion: l.metadata?.resourceVersion };
        }
        catch (e) {
            if ((0,kube_errors/* apiError */.p)(e)?.code === 404)
                return undefined;
            throw e;
        }
    }
    body(resourceVersion) {
        return leaseObject(this.namespace, this.app, this.holder, this.durationS, new kube_errors/* MicroTime */.s(), resourceVersion);
    }
    /** Take the lease, waiting up to timeoutS for another holder; fails naming the holder. */
    async acquire(timeoutS, onWait) {
        const deadline = Date.now() + timeoutS * 1000;
        let told = false;
        for (;;) {
            const cur = await this.read();
            try {
                if (!cur) {
                    const l = await this.kube.coordination.createNamespacedLease({ namespace: this.namespace, body: this.body() });
                    this.resourceVersion = l.metadata?.resourceVersion;
                    break;
                }
                if (!heldByOther(cur, this.holder, Date.now())) {
                    if (cur.holder && cur.holder !== this.holder)
                        this.takenOverFrom = cur.holder;
                    const l = await this.kube.coordination.replaceNamespacedLease({ name: leaseName(this.app), namespace: this.namespace, body: this.body(cur.resourceVersion) });
                    this.resourceVersion = l.metadata?.resourceVersion;
                    break;
                }
                if (!told) {
                    onWait?.(cur.holder);
                    told = true;
                }
            }
            catch (e) {
                const code = (0,kube_errors/* apiError */.p)(e)?.code;
                if (code !== 409)
                    throw new errors/* ModelshipError */.W7('cluster', `Kubernetes: taking the deploy lease ${this.namespace}/${leaseName(this.app)} failed: ${(0,kube_errors/* apiError */.p)(e)?.message ?? e.message}`);
                // 409: another run created or renewed it between our read and write; look again
            }
            if (Date.now() >= deadline) {
                const c = await this.read();
                throw new errors/* ModelshipError */.W7('cluster', `another deploy of "${this.app}" in namespace ${this.namespace} holds the lease ${leaseName(this.app)} (holder "${c?.holder}", renewed ${c?.renewTime}, duration ${c?.durationS} s); waited ${timeoutS} s (input "lock-timeout")`, { field: 'lock-timeout' });
            }
            await new Promise((r) => setTimeout(r, 500));
        }
        // renew at a third of the duration, so a live run never looks dead
        this.timer = setInterval(() => void this.renew(), Math.max(1000, (this.durationS * 1000) / 3));
        this.timer.unref();
    }
    async renew() {
        try {
            const l = await this.kube.coordination.replaceNamespacedLease({ name: leaseName(this.app), namespace: this.namespace, body: this.body(this.resourceVersion) });
            this.resourceVersion = l.metadata?.resourceVersion;
        }
        catch {
            /* the next renewal or the release will tell */
        }
    }
    /** Give the lease back (only if we still hold it). */
    async release() {
        if (this.timer)
            clearInterval(this.timer);
        this.timer = undefined;
        const cur = await this.read().catch(() => undefined);
        if (cur && cur.holder === this.holder)
            await this.kube.remove('coordination.k8s.io/v1', 'Lease', this.namespace, leaseName(this.app), cur.resourceVersion).catch(() => false);
    }
}
/** Who holds the deploy lease of `app` now ('' when nobody; undefined when it cannot be read). */
async function leaseHolder(kube, namespace, app) {
    try {
        const l = await kube.coordination.readNamespacedLease({ name: leaseName(app), namespace });
        return l.spec?.holderIdentity ?? '';
    }
    catch (e) {
        return (0,kube_errors/* apiError */.p)(e)?.code === 404 ? '' : undefined;
    }
}
/** The post step: release a lease this run still holds (a cancelled run). */
async function releaseIfHeld(kube, namespace, app, holder) {
    const lock = new DeployLock(kube, namespace, app, holder, 1);
    try {
        const l = await kube.coordination.readNamespacedLease({ name: leaseName(app), namespace });
        if (l.spec?.holderIdentity !== holder)
            return false;
    }
    catch {
        return false;
    }
    await lock.release();
    return true;
}

// EXTERNAL MODULE: ./src/rollout/health.ts
var health = __webpack_require__(20407);
// EXTERNAL MODULE: ./src/rollout/prometheus.ts
var prometheus = __webpack_require__(89825);
// EXTERNAL MODULE: ./src/rollout/owner.ts
var rollout_owner = __webpack_require__(19158);
// EXTERNAL MODULE: ./src/protocol/kserve-client.ts
var kserve_client = __webpack_require__(29628);
;// CONCATENATED MODULE: ./src/rollout/provider.ts


/**
 * With gpu: true, every new pod must compute on the GPU: a pod that holds an nvidia.com/gpu and serves on the CPU
 * (an image without the CUDA provider, a patch that allows cuda,cpu, a Triton config with a KIND_CPU instance group)
 * is a failed canary, named. Each pod is asked through the API server's pod proxy what it is (GET /v2) and where the
 * model runs (modelship: `parameters.execution_provider` of the model metadata; Triton: the instance groups of its
 * model configuration). The proxy drops Authorization headers, so behind modelship's API key the provider is read
 * from the server's start-up log line instead.
 */
async function checkPodProviders(kube, namespace, pods, modelName, port) {
    const evidence = [];
    const onCpu = [];
    for (const pod of pods) {
        const { provider, detail } = await podProvider(kube, namespace, pod.name, modelName, port);
        evidence.push(`pod ${pod.name}: ${provider}${detail ? ` (${detail})` : ''}`);
        if (provider !== 'cuda')
            onCpu.push(`${pod.name} serves on ${provider}${detail ? `: ${detail}` : ''}`);
    }
    if (onCpu.length)
        throw new health/* GateFailure */.In(`gpu is true but ${onCpu.length} of ${pods.length} pod(s) do not serve the model on the GPU: ${onCpu.join('; ')}`, evidence);
    return evidence;
}
async function podProvider(kube, namespace, pod, modelName, port) {
    const t = kube.podProxy(namespace, pod, port);
    const server = await (0,kserve_client/* detectServer */.R2)(t).catch(() => undefined);
    if (server) {
        const p = await (0,kserve_client/* modelPlacement */.xy)(t, server, modelName).catch((e) => ({ device: 'unknown', detail: e.message }));
        if (p.device !== 'unknown' || server.runtime === 'triton')
            return { provider: p.device, detail: `${server.name}: ${p.detail}` };
    }
    // behind an API key: the server's own log says where the model was loaded
    const log = await kube.podLog(namespace, pod);
    const loaded = / loaded from .* on (cuda|cpu) with /.exec(log);
    if (loaded)
        return { provider: loaded[1], detail: /CUDA execution provider unavailable: ([^\n]*)/.exec(log)?.[1] };
    return { provider: 'unknown', detail: `the server's metadata could not be read and its log names no provider` };
}

// EXTERNAL MODULE: ./src/rollout/admission.ts
var admission = __webpack_require__(26760);
// EXTERNAL MODULE: ./src/rollout/permissions.ts
var permissions = __webpack_require__(69141);
;// CONCATENATED MODULE: ./src/rollout/index.ts


















const MANAGED = 'app.kubernetes.io/managed-by';
/** Strip what the server owns, and the runs' own marks (which run made or promoted what: owner.ts), for diffs. */
function normalize(o) {
    if (!o)
        return '';
    const c = JSON.parse(JSON.stringify(o));
    const m = c.metadata;
    for (const k of ['managedFields', 'resourceVersion', 'uid', 'generation', 'creationTimestamp', 'selfLink'])
        delete m[k];
    const ann = m.annotations;
    if (ann) {
        for (const k of ['deployment.kubernetes.io/revision', 'kubectl.kubernetes.io/last-applied-configuration', rollout_owner/* CREATED_BY */.VI, rollout_owner/* PROMOTED_BY */.vm])
            delete ann[k];
        if (Object.keys(ann).length === 0)
            delete m.annotations;
    }
    const labels = m.labels;
    if (labels)
        delete labels[rollout_owner/* OWNER_LABEL */.pk];
    delete c.status;
    if (c.spec?.template?.metadata)
        delete c.spec.template.metadata.creationTimestamp;
    return js_yaml/* dump */.Bh(c, { sortKeys: true, lineWidth: 160 });
}
function msg(e) {
    return e instanceof Error ? e.message : String(e);
}
async function runRollout(cfg, log, env = process.env) {
    // ---- everything that can be wrong with the inputs fails here, before anything is applied
    const patches = [...(cfg.manifest ? readManifest(cfg.manifest) : []), ...(cfg.patch ? readPatches(cfg.patch) : [])];
    if (cfg.reference)
        (0,reference/* referenceBatches */.WN)(cfg.reference);
    const spec = {
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
        imagePullSecrets: [...cfg.imagePullSecrets, ...(cfg.pullSecret ? [(0,manifests/* pullSecretName */.JA)(cfg.app)] : [])],
        apiKeySecret: cfg.apiKeySecret,
        modelKeySecret: cfg.modelKeySecret,
        progressDeadlineSeconds: Math.max(10, Math.round(cfg.timeoutS)),
        port: runtime/* SERVING_PORT */.b0,
        metricsPort: manifests/* METRICS_PORT */.Ip,
        drainDelayS: cfg.drainDelayS,
        drainTimeoutS: manifests/* DRAIN_TIMEOUT_S */.Li,
    };
    (0,manifests/* validateSpec */.QN)(spec);
    const nCanary = cfg.strategy === 'canary' ? (0,manifests/* canaryReplicas */.Gy)(cfg.replicas, cfg.canaryPercent) : 0;
    const kube = rollout_kube.Kube.load(cfg.kubeconfig);
    const version = await kube.serverVersion();
    const unsupported = (0,manifests/* unsupportedServer */.tT)(version);
    if (unsupported)
        throw new errors/* ModelshipError */.W7('cluster', `Kubernetes ${kube.server}: ${unsupported}`);
    // the preStop hook: the kubelet's sleep action where every kubelet the API server allows runs it
    spec.sleepAction = (0,manifests/* sleepActionServed */.pN)(version);
    const owner = (0,rollout_owner/* rolloutOwner */.Jo)(env);
    const ns = cfg.namespace;
    let nsExists = true;
    try {
        nsExists = (await kube.get('v1', 'Namespace', undefined, ns)) !== undefined;
    }
    catch (e) {
        // a namespaced identity may not read Namespaces; it then deploys into one that exists
        if (!/HTTP 403/.test(msg(e)))
            throw e;
    }
    if (!nsExists && !cfg.dryRun && !cfg.createNamespace)
        throw new errors/* ModelshipError */.W7('input', `input "namespace": namespace "${ns}" does not exist (create-namespace is false)`, { field: 'namespace' });
    // every permission this run and its post step use (creating the namespace included), asked before anything is
    // read or changed in it: a missing one fails here, each named (permissions.ts)
    const needs = { stage: 'rollout', namespace: ns, options: (0,permissions/* rolloutOptions */.iI)(cfg, !nsExists && cfg.createNamespace) };
    await (0,permissions/* preflight */.Mz)(kube, (0,permissions/* accessChecks */.iz)(needs), (0,permissions/* rbacHint */.Wy)(needs));
    // ---- the objects, as declared data
    const liveStable = nsExists ? await kube.get('apps/v1', 'Deployment', ns, cfg.app) : undefined;
    const takeover = liveStable !== undefined && liveStable.metadata.labels?.[MANAGED] !== 'modelship';
    const stableObj = applyPatches((0,manifests/* deployment */.kG)(spec, 'stable', cfg.replicas), patches, cfg.app);
    if (liveStable) {
        // a Deployment's selector is immutable: keep the live one, and make the pods carry its labels and ours
        stableObj.spec.selector = liveStable.spec.selector;
        stableObj.spec.template.metadata.labels = { ...(liveStable.spec.selector.matchLabels ?? {}), ...stableObj.spec.template.metadata.labels };
    }
    const canaryObj = applyPatches((0,manifests/* deployment */.kG)(spec, 'canary', nCanary || 1), patches, cfg.app);
    canaryObj.metadata.labels = { ...canaryObj.metadata.labels, [rollout_owner/* OWNER_LABEL */.pk]: owner };
    const mainSvc = applyPatches((0,manifests/* service */.eu)(spec, 'main'), patches, cfg.app);
    const canarySvc = (0,manifests/* service */.eu)(spec, 'canary');
    canarySvc.metadata.labels = { ...canarySvc.metadata.labels, [rollout_owner/* OWNER_LABEL */.pk]: owner };
    // what this run creates is marked as its own (see owner.ts), so the post step of a killed run can remove it
    const created = (o) => (0,rollout_owner/* annotated */.dR)(o, { [rollout_owner/* CREATED_BY */.VI]: owner });
    const promoted = (o) => (0,rollout_owner/* annotated */.dR)(o, { [rollout_owner/* PROMOTED_BY */.vm]: owner });
    /** apply `o`, marked as created by this run when it is not there yet */
    const applyMarked = async (o) => {
        const isNew = (await kube.get(o.apiVersion, o.kind, ns, o.metadata.name)) === undefined;
        await kube.apply(isNew ? created(o) : o);
        return isNew;
    };
    // the stable's PodDisruptionBudget, over its pods as its (live) selector picks them; none: one modelship made goes
    const maxUnavailable = (0,manifests/* budgetMaxUnavailable */.sj)(cfg.disruptionBudget, cfg.replicas);
    const pdbObj = maxUnavailable === undefined ? undefined : (0,manifests/* disruptionBudget */.r5)(spec, maxUnavailable, stableObj.spec.selector.matchLabels);
    /** apply the budget with the stable (or delete the one modelship made when there should be none); true when it made one */
    const applyBudget = async () => {
        if (pdbObj)
            return applyMarked(pdbObj);
        const live = await kube.get('policy/v1', 'PodDisruptionBudget', ns, cfg.app);
        if (live?.metadata.labels?.[MANAGED] === 'modelship') {
            await kube.remove('policy/v1', 'PodDisruptionBudget', ns, cfg.app);
            log.info(`deleted PodDisruptionBudget ${cfg.app} (disruption-budget ${cfg.disruptionBudget}${cfg.disruptionBudget === 'auto' ? `: ${cfg.replicas} replica` : ''})`);
        }
        return false;
    };
    const secretObj = cfg.pullSecret ? (0,manifests/* pullSecret */.QS)(spec, (0,registry/* parseImageRef */.Q)(cfg.image).registry, cfg.pullSecret.username, cfg.pullSecret.password) : undefined;
    const planned = [...(cfg.strategy === 'canary' ? [canaryObj, canarySvc, stableObj, ...(takeover ? [] : [mainSvc])] : [stableObj, mainSvc]), ...(pdbObj ? [pdbObj] : [])];
    // everything the run may write, through the API server's admission before anything is applied (admission.ts): a
    // refusal, or pods that Pod Security would refuse, fail here. A takeover's stable is written by a full PUT.
    const admitted = [...planned, ...(cfg.strategy === 'canary' && takeover ? [mainSvc] : []), ...(secretObj ? [secretObj] : [])];
    const admit = () => (0,admission/* checkAdmission */.OU)(kube, ns, admitted, log, takeover ? [stableObj] : []);
    if (nsExists)
        await admit();
    // (the pull Secret is not in the dry run's diff: its data would be printed)
    if (cfg.dryRun)
        return dryRun(kube, cfg, planned, nsExists, takeover, nCanary, log);
    // ---- the deploy
    const t0 = Date.now();
    const timeline = [];
    const gates = [
        { gate: 'pods', result: 'skipped', detail: '', evidence: [], seconds: 0 },
        { gate: 'golden', result: 'skipped', detail: cfg.reference ? '' : 'no reference given: only /v2/models/<model>/ready was checked', evidence: [], seconds: 0 },
        { gate: 'prometheus', result: 'skipped', detail: cfg.prometheus ? '' : 'no prometheus-url', evidence: [], seconds: 0 },
    ];
    const gate = (n) => gates.find((g) => g.gate === n);
    const step = async (name, fn) => {
        const s = Date.now();
        log.info(`[${((s - t0) / 1000).toFixed(1)} s] ${name}`);
        try {
            const r = await fn();
            timeline.push({ step: name, atS: (s - t0) / 1000, seconds: (Date.now() - s) / 1000, result: 'ok' });
            return r;
        }
        catch (e) {
            timeline.push({ step: name, atS: (s - t0) / 1000, seconds: (Date.now() - s) / 1000, result: 'fail', detail: msg(e).split('\n')[0] });
            throw e;
        }
    };
    const runGate = async (n, name, fn) => {
        const g = gate(n);
        const s = Date.now();
        try {
            const r = await step(name, fn);
            g.seconds += (Date.now() - s) / 1000;
            return r;
        }
        catch (e) {
            g.seconds += (Date.now() - s) / 1000;
            g.result = 'fail';
            g.detail = msg(e);
            if (e instanceof health/* GateFailure */.In)
                g.evidence = e.evidence;
            throw e;
        }
    };
    // cancellation (SIGINT/SIGTERM from the runner) and the overall timeout both end in a roll back
    const ac = new AbortController();
    const onSignal = (sig) => ac.abort(`cancelled (${sig})`);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let timer;
    const lock = new DeployLock(kube, ns, cfg.app, owner, cfg.leaseDurationS);
    let decision = 'rolled-back';
    let reason = '';
    let decisionS = NaN;
    let p95;
    let locked = false;
    try {
        if (!nsExists) {
            // Pod Security restricted (manifests.ts), which modelship's own pods meet
            await step(`create namespace ${ns}`, () => kube.create((0,manifests/* namespaceManifest */.ds)(ns, { [rollout_owner/* CREATED_BY */.VI]: owner })));
            // the dry run needs the namespace: one this run just made goes again when it refuses
            await step('server-side dry run', () => admit().catch(async (e) => {
                await kube.remove('v1', 'Namespace', '', ns).catch(() => false);
                throw e;
            }));
        }
        await step('take the deploy lease', () => lock.acquire(cfg.lockTimeoutS, (holder) => log.info(`another deploy holds the lease (${holder}); waiting up to ${cfg.lockTimeoutS} s`)));
        locked = true;
        if (secretObj)
            await step(`apply the image pull Secret ${secretObj.metadata.name} (${(0,registry/* parseImageRef */.Q)(cfg.image).registry})`, () => applyMarked(secretObj));
        if (lock.takenOverFrom)
            log.info(`took over the lease from "${lock.takenOverFrom}", which stopped renewing it`);
        const applyStart = Date.now();
        timer = setTimeout(() => ac.abort(`timeout: no decision within rollout-timeout ${cfg.timeoutS} s`), cfg.timeoutS * 1000);
        const remaining = () => Math.max(0, cfg.timeoutS * 1000 - (Date.now() - applyStart));
        const waitOpts = () => ({ timeoutMs: remaining(), signal: ac.signal, readinessGraceMs: 2 * 2000 + 2000, onProgress: log.info });
        const verifyTransport = (svc) => (cfg.verifyUrl ? (0,golden/* httpTransport */.k6)(cfg.verifyUrl) : kube.serviceProxy(ns, svc, 'http'));
        const verifyGate = async (svc) => {
            const t = verifyTransport(svc);
            const headers = cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {};
            // the proxy answers 503 until the Service's endpoints catch up with the pods' readiness
            let meta = {};
            for (let i = 0;; i++) {
                const r = await t(`/v2/models/${cfg.modelName}`, { headers, timeoutMs: 10_000 }).catch((e) => ({ status: 0, body: Buffer.from(e.message), headers: {} }));
                if (r.status === 200) {
                    meta = JSON.parse(r.body.toString());
                    break;
                }
                if (i >= 20 || (r.status >= 400 && r.status < 500 && r.status !== 404))
                    throw new health/* GateFailure */.In(`model metadata from ${svc}: HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
                await (0,health/* sleep */.yy)(500, ac.signal);
            }
            const g = gate('golden');
            if (!cfg.reference) {
                g.result = 'pass';
                return {};
            }
            const res = await (0,golden/* goldenRequests */.Ic)(t, { reference: cfg.reference, modelName: cfg.modelName, inputName: meta.inputs[0].name, singleInput: meta.inputs.length === 1, tolerance: cfg.tolerance, headers });
            g.evidence = [...golden/* GOLDEN_TABLE_HEAD */.Qi, ...res.rows];
            if (res.failures.length)
                throw new health/* GateFailure */.In(`golden requests to ${svc}: ${res.failures[0]}`, [...res.failures, ...golden/* GOLDEN_TABLE_HEAD */.Qi, ...res.rows]);
            if (res.batch1 && cfg.verifyRequests > 0) {
                const m = await (0,golden/* measureLatency */.RJ)(t, `/v2/models/${cfg.modelName}/infer`, res.batch1, cfg.verifyRequests, 1, headers);
                p95 = (0,golden/* percentile */.Ym)(m.sorted, 95);
                if (m.errors)
                    throw new health/* GateFailure */.In(`${m.errors} of ${cfg.verifyRequests} golden requests to ${svc} failed: ${m.firstError}`);
                if (cfg.maxLatencyMs > 0 && p95 > cfg.maxLatencyMs)
                    throw new health/* GateFailure */.In(`golden requests to ${svc}: latency p95 ${p95.toFixed(1)} ms > max-latency-ms ${cfg.maxLatencyMs} (p50 ${(0,golden/* percentile */.Ym)(m.sorted, 50).toFixed(1)} ms, ${cfg.verifyRequests} requests)`);
            }
            g.result = 'pass';
            g.detail = `${res.compared} outputs match the reference${p95 !== undefined ? `; p95 ${p95.toFixed(1)} ms over ${cfg.verifyRequests} requests${cfg.maxLatencyMs > 0 ? ` (limit ${cfg.maxLatencyMs} ms)` : ''}` : ''}`;
            return { batch1: res.batch1 };
        };
        /** During the bake, one golden request a second: the canary must keep answering right (and Prometheus gets samples). */
        const bakeTick = (svc, batch1) => {
            if (!batch1 || !cfg.reference)
                return undefined;
            const t = verifyTransport(svc);
            return async () => {
                const r = await t(`/v2/models/${cfg.modelName}/infer`, { body: batch1.body, headers: { ...(cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {}), [kserve/* HEADER_LENGTH */.Bs]: batch1.headerLength } });
                if (r.status !== 200)
                    throw new health/* GateFailure */.In(`during the bake window: a golden request to ${svc} answered HTTP ${r.status}: ${r.body.toString().slice(0, 200)}`);
                (0,kserve/* decodeInferResponse */.mJ)(r.body, Number(r.headers[kserve/* HEADER_LENGTH */.Bs]));
            };
        };
        const canaryPodSelector = { ...(0,manifests/* selectorLabels */.Zn)(cfg.app), track: 'canary' };
        if (cfg.strategy === 'canary') {
            let createdMainSvc = false;
            try {
                await step(`apply ${canaryObj.metadata.name} (${nCanary} of ${cfg.replicas} replicas) and its Service`, async () => {
                    await kube.apply(canaryObj);
                    await kube.apply(canarySvc);
                    if (!takeover)
                        createdMainSvc = await applyMarked(mainSvc);
                });
                const pods = (await runGate('pods', 'canary pods Ready', () => (0,health/* waitDeployment */.b_)(kube, ns, canaryObj.metadata.name, waitOpts()))).pods;
                gate('pods').detail = `${pods.length} canary pod(s) Ready`;
                if (cfg.gpu)
                    gate('pods').evidence = await runGate('pods', 'canary pods compute on the GPU', () => checkPodProviders(kube, ns, pods, cfg.modelName, runtime/* SERVING_PORT */.b0));
                const { batch1 } = await runGate('golden', `golden requests to ${cfg.app}-canary`, () => verifyGate(`${cfg.app}-canary`));
                if (cfg.bakeTimeS > 0)
                    await runGate('pods', `bake ${cfg.bakeTimeS} s`, () => (0,health/* bake */.Wq)(kube, ns, canaryPodSelector, pods, cfg.bakeTimeS * 1000, ac.signal, bakeTick(`${cfg.app}-canary`, batch1)));
                gate('pods').result = 'pass';
                gate('pods').detail = `${pods.length} canary pod(s) Ready, no restart or NotReady during ${cfg.bakeTimeS} s`;
                if (cfg.prometheus) {
                    const pc = cfg.prometheus;
                    const r = await runGate('prometheus', 'Prometheus gate', () => (0,prometheus/* prometheusGate */.it)({ ...pc, waitMs: Math.max(0, Math.min(30_000, remaining() - 2000)) }, { namespace: ns, app: cfg.app, model: cfg.modelName }, !!liveStable, ac.signal));
                    gate('prometheus').result = 'pass';
                    gate('prometheus').detail = `canary ${(0,prometheus/* fmt */.Sc)(r.canary)}; stable ${liveStable ? (0,prometheus/* fmt */.Sc)(r.stable) : 'none'}`;
                    gate('prometheus').evidence = r.queries;
                }
                decisionS = (Date.now() - applyStart) / 1000;
                clearTimeout(timer);
                // ---- promote: the stable takes the new image (taking over a Deployment modelship did not create)
                await step(`promote: ${cfg.app} takes the new image`, async () => {
                    // marked as promoted by this run: from here on its post step leaves the stable and what serves it alone
                    const promotedObj = promoted(liveStable ? stableObj : created(stableObj));
                    if (takeover)
                        await takeOver(kube, promotedObj);
                    await kube.apply(promotedObj);
                    if (takeover)
                        await kube.apply(mainSvc);
                    await applyBudget();
                });
                try {
                    await step(`stable rollout of ${cfg.app}`, () => (0,health/* waitDeployment */.b_)(kube, ns, cfg.app, { ...waitOpts(), timeoutMs: cfg.timeoutS * 1000 }));
                }
                catch (e) {
                    if (liveStable)
                        await step(`roll ${cfg.app} back to its previous template`, () => restoreTemplate(kube, ns, cfg.app, liveStable.spec.template));
                    throw e;
                }
                await step(`delete ${canaryObj.metadata.name}`, () => deleteCanary(kube, ns, cfg.app));
                decision = 'promoted';
                reason = `canary verified (${gates.filter((g) => g.result === 'pass').map((g) => g.gate).join(', ')}) and promoted: ${cfg.app} runs ${cfg.image}`;
            }
            catch (e) {
                if (Number.isNaN(decisionS))
                    decisionS = (Date.now() - applyStart) / 1000;
                reason = ac.signal.aborted ? `${ac.signal.reason}${e instanceof health/* Aborted */.aG ? '' : `: ${msg(e)}`}` : failureReason(e, gates);
                await step(`roll back: delete ${cfg.app}-canary`, async () => {
                    await deleteCanary(kube, ns, cfg.app);
                    if (!liveStable && createdMainSvc && decision !== 'promoted')
                        await kube.remove('v1', 'Service', ns, cfg.app);
                });
            }
        }
        else {
            // ---- basic: update in place, verify, return to the previous template on failure
            let createdPdb = false;
            try {
                await step(`apply ${cfg.app}`, async () => {
                    const obj = liveStable ? stableObj : created(stableObj);
                    if (takeover)
                        await takeOver(kube, obj);
                    await kube.apply(obj);
                    await applyMarked(mainSvc);
                    createdPdb = await applyBudget();
                });
                const pods = (await runGate('pods', `${cfg.app} rollout`, () => (0,health/* waitDeployment */.b_)(kube, ns, cfg.app, waitOpts()))).pods;
                if (cfg.gpu)
                    gate('pods').evidence = await runGate('pods', `${cfg.app} pods compute on the GPU`, () => checkPodProviders(kube, ns, pods, cfg.modelName, runtime/* SERVING_PORT */.b0));
                const { batch1 } = await runGate('golden', `golden requests to ${cfg.app}`, () => verifyGate(cfg.app));
                if (cfg.bakeTimeS > 0)
                    await runGate('pods', `bake ${cfg.bakeTimeS} s`, () => (0,health/* bake */.Wq)(kube, ns, { ...(0,manifests/* selectorLabels */.Zn)(cfg.app), track: 'stable' }, pods, cfg.bakeTimeS * 1000, ac.signal, bakeTick(cfg.app, batch1)));
                gate('pods').result = 'pass';
                gate('pods').detail = `${pods.length} pod(s) Ready, no restart or NotReady during ${cfg.bakeTimeS} s`;
                decisionS = (Date.now() - applyStart) / 1000;
                // verified: marked as this run's (the same apply, an annotation more), so its post step leaves it alone
                await kube.apply(promoted(liveStable ? stableObj : created(stableObj)));
                decision = 'promoted';
                reason = `${cfg.app} updated and verified: runs ${cfg.image}`;
            }
            catch (e) {
                if (Number.isNaN(decisionS))
                    decisionS = (Date.now() - applyStart) / 1000;
                reason = ac.signal.aborted ? `${ac.signal.reason}${e instanceof health/* Aborted */.aG ? '' : `: ${msg(e)}`}` : failureReason(e, gates);
                await step(liveStable ? `roll ${cfg.app} back to the previous ReplicaSet's template` : `delete ${cfg.app} (first deploy)`, async () => {
                    if (liveStable)
                        await restoreTemplate(kube, ns, cfg.app, liveStable.spec.template);
                    else
                        await kube.remove('apps/v1', 'Deployment', ns, cfg.app);
                    if (createdPdb)
                        await kube.remove('policy/v1', 'PodDisruptionBudget', ns, cfg.app);
                });
            }
        }
    }
    finally {
        if (timer)
            clearTimeout(timer);
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        if (locked)
            await lock.release();
    }
    const outputs = {
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
function failureReason(e, gates) {
    const failed = gates.find((g) => g.result === 'fail');
    if (failed)
        return `gate "${failed.gate}" failed: ${failed.detail}${failed.evidence.length ? `\n${failed.evidence.slice(0, 12).join('\n')}` : ''}`;
    const evidence = e instanceof health/* GateFailure */.In && e.evidence.length ? `\n${e.evidence.slice(0, 12).join('\n')}` : '';
    return ((0,errors/* isModelshipError */.yh)(e) || e instanceof health/* GateFailure */.In ? msg(e) : `error: ${msg(e)}`) + evidence;
}
async function deleteCanary(kube, ns, app) {
    await kube.remove('apps/v1', 'Deployment', ns, `${app}-canary`);
    await kube.remove('v1', 'Service', ns, `${app}-canary`);
}
/**
 * Take over a Deployment modelship did not create: one full replace (PUT) with the generated object, so fields
 * owned by its old manager (a container under another name, say) go, then server-side apply owns it from here.
 */
async function takeOver(kube, obj) {
    for (let i = 0;; i++) {
        const cur = await kube.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
        try {
            await kube.replace({ ...obj, metadata: { ...obj.metadata, resourceVersion: cur?.metadata?.resourceVersion } });
            return;
        }
        catch (e) {
            if (i >= 4 || !/HTTP 409/.test(msg(e)))
                throw e; // the controller updated its status in between
        }
    }
}
/** Put a Deployment's pod template back (what `kubectl rollout undo` does), and wait for it briefly. */
async function restoreTemplate(kube, ns, app, template) {
    for (let i = 0; i < 5; i++) {
        const cur = await kube.get('apps/v1', 'Deployment', ns, app);
        if (!cur)
            return;
        cur.spec.template = template;
        try {
            await kube.replace(cur);
            return;
        }
        catch (e) {
            if (!/HTTP 409/.test(msg(e)))
                throw e;
        }
    }
}
async function dryRun(kube, cfg, planned, nsExists, takeover, nCanary, log) {
    const sections = [];
    const lines = [`dry run: ${cfg.strategy} rollout of ${cfg.image} to ${cfg.namespace}/${cfg.app} (nothing is changed)`];
    if (!nsExists)
        lines.push(`- would create namespace ${cfg.namespace}`);
    if (takeover)
        lines.push(`- would take over Deployment ${cfg.app}, which modelship did not create (its selector is kept)`);
    if (cfg.strategy === 'canary')
        lines.push(`- would run ${nCanary} canary replica(s), verify them (pods, golden requests${cfg.prometheus ? ', Prometheus' : ''}), then promote ${cfg.app} or delete the canary`);
    for (const obj of planned) {
        const live = nsExists ? await kube.get(obj.apiVersion, obj.kind, cfg.namespace, obj.metadata.name) : undefined;
        // the API server's own view of the result: a server-side dry run of the same apply
        const result = nsExists ? await kube.apply(obj, true) : obj;
        const patch = (0,create/* createTwoFilesPatch */.ss)(`live/${obj.kind}/${obj.metadata.name}`, `planned/${obj.kind}/${obj.metadata.name}`, normalize(live), normalize(result), undefined, undefined, { context: 3 });
        const changed = normalize(live) !== normalize(result);
        lines.push(`- ${obj.kind} ${obj.metadata.name}: ${live ? (changed ? 'would change' : 'unchanged') : 'would create'}`);
        sections.push(`### ${obj.kind} ${obj.metadata.name}: ${live ? (changed ? 'changes' : 'unchanged') : 'new'}\n\n\`\`\`diff\n${patch.split('\n').slice(2).join('\n')}\n\`\`\``);
    }
    log.info(lines.join('\n'));
    for (const s of sections)
        log.info(s.replace(/```(diff)?\n?/g, ''));
    return {
        outputs: { decision: 'dry-run', reason: 'dry run: the plan was printed and nothing was changed', 'canary-replicas': String(nCanary), 'gate-pods': 'skipped', 'gate-golden': 'skipped', 'gate-prometheus': 'skipped', 'verify-latency-p95-ms': '', 'decision-seconds': '', 'rollout-report': JSON.stringify({ decision: 'dry-run', plan: lines }) },
        summary: `## modelship rollout (dry run)\n\n${lines.join('\n')}\n\n${sections.join('\n\n')}\n`,
        ok: true,
    };
}
function rolloutSummary(cfg, decision, reason, gates, timeline, nCanary) {
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
async function cleanupRollout(kubeconfig, namespace, app, owner, log) {
    const kube = rollout_kube.Kube.load(kubeconfig);
    const done = [];
    const createdByRun = (o) => o?.metadata.annotations?.[rollout_owner/* CREATED_BY */.VI] === owner;
    // what the identity may not read (a Secret without create-pull-secret, the namespace for a namespaced Role:
    // permissions.ts) the run cannot have made either
    const readable = (p) => p.catch((e) => (/HTTP 403/.test(msg(e)) ? undefined : Promise.reject(e)));
    const canary = await kube.get('apps/v1', 'Deployment', namespace, `${app}-canary`);
    if (canary && canary.metadata.labels?.[rollout_owner/* OWNER_LABEL */.pk] === owner) {
        await deleteCanary(kube, namespace, app);
        done.push(`deleted ${namespace}/${app}-canary (Deployment and Service)`);
    }
    else if ((await kube.get('v1', 'Service', namespace, `${app}-canary`))?.metadata.labels?.[rollout_owner/* OWNER_LABEL */.pk] === owner) {
        await kube.remove('v1', 'Service', namespace, `${app}-canary`);
        done.push(`deleted Service ${namespace}/${app}-canary`);
    }
    const stable = await kube.get('apps/v1', 'Deployment', namespace, app);
    const unfinished = (await leaseHolder(kube, namespace, app)) === owner && stable?.metadata.annotations?.[rollout_owner/* PROMOTED_BY */.vm] !== owner;
    if (unfinished) {
        const made = [['apps/v1', 'Deployment', app], ['v1', 'Service', app], ['policy/v1', 'PodDisruptionBudget', app], ['v1', 'Secret', (0,manifests/* pullSecretName */.JA)(app)]];
        for (const [apiVersion, kind, name] of made) {
            const o = kind === 'Deployment' ? stable : await readable(kube.get(apiVersion, kind, namespace, name));
            if (createdByRun(o) && (await kube.remove(apiVersion, kind, namespace, name)))
                done.push(`deleted ${kind} ${namespace}/${name}, which this run created`);
        }
    }
    if (await releaseIfHeld(kube, namespace, app, owner))
        done.push(`released the deploy lease of ${namespace}/${app}`);
    if (unfinished && createdByRun(await readable(kube.get('v1', 'Namespace', undefined, namespace)))) {
        let others;
        try {
            others = (await kube.namespaceObjects(namespace)).filter((o) => !madeWithNamespace(o, owner)).map((o) => `${o.kind} ${o.metadata.name}`);
        }
        catch (e) {
            others = [`objects it cannot list (${msg(e)})`];
        }
        if (others.length === 0) {
            await kube.remove('v1', 'Namespace', '', namespace);
            done.push(`deleted namespace ${namespace}, which this run created`);
        }
        else {
            log.info(`modelship post: kept namespace ${namespace}, which this run created: it also holds ${others.slice(0, 10).join(', ')}${others.length > 10 ? ` and ${others.length - 10} more` : ''}`);
        }
    }
    for (const d of done)
        log.info(`modelship post: ${d}`);
    return done;
}
/**
 * Is `o` nothing of its own in a namespace the run created: made by the run (its mark), on its way out, a dependent
 * of another object (a ReplicaSet, a Pod, an EndpointSlice: the object it depends on is counted instead), or what
 * Kubernetes puts in every namespace (the default ServiceAccount and its token, the root CA ConfigMap)?
 */
function madeWithNamespace(o, owner) {
    const m = o.metadata;
    if (m.annotations?.[rollout_owner/* CREATED_BY */.VI] === owner || m.deletionTimestamp || (m.ownerReferences ?? []).length > 0)
        return true;
    if (o.apiVersion !== 'v1')
        return false;
    return (o.kind === 'ServiceAccount' && m.name === 'default') || (o.kind === 'Secret' && o.type === 'kubernetes.io/service-account-token' && m.annotations?.['kubernetes.io/service-account.name'] === 'default') || (o.kind === 'ConfigMap' && m.name === 'kube-root-ca.crt');
}


/***/ }),

/***/ 36526:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   p: () => (/* binding */ apiError),
/* harmony export */   s: () => (/* binding */ MicroTime)
/* harmony export */ });
/**
 * Small pieces of the Kubernetes client that need no client: kept apart from kube.ts so code that only reads
 * API errors or writes Lease timestamps does not load @kubernetes/client-node (ESM-only, and large).
 */
/** A Kubernetes API error (client-node's ApiException: code + the API server's Status body), or undefined. */
function apiError(e) {
    const x = e;
    if (!x || typeof x !== 'object' || typeof x.code !== 'number' || !('body' in x))
        return undefined;
    let message = String(x.body);
    try {
        message = JSON.parse(String(x.body)).message ?? message;
    }
    catch {
        /* body is not a Status */
    }
    return { code: x.code, message };
}
/** The Lease API's MicroTime: the API server (1.34 as much as 1.20) refuses millisecond timestamps ("cannot parse .908Z as .000000"). */
class MicroTime extends Date {
    toISOString() {
        return super.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
    }
}


/***/ }),

/***/ 57404:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Kube: () => (/* binding */ Kube)
/* harmony export */ });
/* unused harmony export FIELD_MANAGER */
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(79896);
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(50482);
/* harmony import */ var _util_errors__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(70017);
/* harmony import */ var _util_http__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(44098);
/* harmony import */ var _kube_errors__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(36526);
/* harmony import */ var _admission__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(26760);







/**
 * The one place that talks to Kubernetes, through @kubernetes/client-node. Objects travel as plain JSON
 * (K8sObject); server-side apply uses field manager `modelship`. Everything else in rollout takes a Kube.
 */
const FIELD_MANAGER = 'modelship';
const plain = (o) => JSON.parse(JSON.stringify(o));
class Kube {
    kc;
    objects;
    coordination;
    authz;
    server;
    /** discovery: the resources of each group version resourcePath was asked about */
    discovered = new Map();
    constructor(kc) {
        this.kc = kc;
        this.objects = _kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__/* .KubernetesObjectApi */ .e1Y.makeApiClient(kc);
        this.coordination = kc.makeApiClient(_kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__/* .CoordinationV1Api */ .hSW);
        this.authz = kc.makeApiClient(_kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__/* .AuthorizationV1Api */ .NwU);
        this.server = kc.getCurrentCluster()?.server ?? '';
    }
    /**
     * Load a kubeconfig: `source` is a file path or the kubeconfig's YAML itself (a secret in the action); empty
     * means the default ($KUBECONFIG, ~/.kube/config, in-cluster). An unreadable one fails naming the input.
     */
    static load(source) {
        const kc = new _kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__/* .KubeConfig */ .ypW();
        const bad = (why) => {
            throw new _util_errors__WEBPACK_IMPORTED_MODULE_2__/* .ModelshipError */ .W7('input', `input "kubeconfig": ${why}`, { field: 'kubeconfig' });
        };
        try {
            if (source === '') {
                // client-node falls back to http://localhost:8080 when it finds nothing: say so instead (in a workflow, an empty
                // kubeconfig is a secret that is not set or is misspelled)
                const home = process.env.HOME ?? '';
                if (!process.env.KUBECONFIG && !(home && fs__WEBPACK_IMPORTED_MODULE_0__.existsSync(`${home}/.kube/config`)) && !process.env.KUBERNETES_SERVICE_HOST) {
                    return bad('is empty, and there is no $KUBECONFIG, no ~/.kube/config and no in-cluster service account: give the kubeconfig (in a workflow, from a secret: is that secret set, and spelled as the caller passes it?)');
                }
                kc.loadFromDefault();
            }
            else if (/\bapiVersion\s*:/.test(source) || /\bclusters\s*:/.test(source))
                kc.loadFromString(source);
            else {
                let text;
                try {
                    text = fs__WEBPACK_IMPORTED_MODULE_0__.readFileSync(source, 'utf8');
                }
                catch (e) {
                    return bad(`cannot read ${source}: ${e.code ?? e.message}`);
                }
                kc.loadFromString(text);
            }
        }
        catch (e) {
            if (e instanceof _util_errors__WEBPACK_IMPORTED_MODULE_2__/* .ModelshipError */ .W7)
                throw e;
            return bad(`${source ? `${source.includes('\n') ? 'the given kubeconfig' : source}` : 'the default kubeconfig'} is not a usable kubeconfig: ${e.message}`);
        }
        if (!kc.getCurrentCluster())
            bad(`${source || 'the default kubeconfig'} has no current cluster (current-context "${kc.getCurrentContext()}")`);
        return new Kube(kc);
    }
    async get(apiVersion, kind, namespace, name) {
        try {
            return plain(await this.objects.read({ apiVersion, kind, metadata: { name, namespace } }));
        }
        catch (e) {
            if ((0,_kube_errors__WEBPACK_IMPORTED_MODULE_5__/* .apiError */ .p)(e)?.code === 404)
                return undefined;
            throw this.wrap(e, `read ${kind} ${namespace ? `${namespace}/` : ''}${name}`);
        }
    }
    async list(apiVersion, kind, namespace, labelSelector, fieldSelector) {
        try {
            const l = await this.objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, fieldSelector, labelSelector);
            return plain(l.items);
        }
        catch (e) {
            throw this.wrap(e, `list ${kind} in ${namespace}`);
        }
    }
    /** Server-side apply under field manager `modelship`, taking over conflicting fields (force). */
    async apply(obj, dryRun = false) {
        try {
            return plain(await this.objects.patch(obj, undefined, dryRun ? 'All' : undefined, FIELD_MANAGER, true, _kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__/* .PatchStrategy */ .Qve.ServerSideApply));
        }
        catch (e) {
            throw this.wrap(e, `apply ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`);
        }
    }
    /**
     * A server-side dry run (dryRun=All) of writing `obj`: server-side apply as `apply` does, or a full PUT as a takeover
     * does (`replace`). The API server's answer with its Warning headers, which client-node does not hand back (Pod
     * Security's "would violate" for a pod template comes only there): a refusal is answered, not thrown.
     */
    async dryRunWrite(obj, how = 'apply') {
        const what = `dry run of ${how} ${obj.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
        const path = `${await this.resourcePath(obj)}?${new URLSearchParams({ dryRun: 'All', fieldManager: FIELD_MANAGER, ...(how === 'apply' ? { force: 'true' } : {}) })}`;
        // JSON is YAML: server-side apply takes the object as application/apply-patch+yaml
        const headers = { 'content-type': how === 'apply' ? 'application/apply-patch+yaml' : 'application/json', accept: 'application/json' };
        let r;
        try {
            r = await this.proxy('')(path, { method: how === 'apply' ? 'PATCH' : 'PUT', body: Buffer.from(JSON.stringify(obj)), headers, timeoutMs: 30_000 });
        }
        catch (e) {
            throw this.wrap(e, what);
        }
        let message = '';
        if (r.status < 200 || r.status > 299) {
            try {
                message = JSON.parse(r.body.toString()).message ?? '';
            }
            catch {
                message = r.body.toString().slice(0, 300);
            }
        }
        return { status: r.status, warnings: (0,_admission__WEBPACK_IMPORTED_MODULE_4__/* .parseWarnings */ .X$)(r.headers.warning), message };
    }
    /** The REST path of an object (its resource's plural name from discovery, cached per group version). */
    async resourcePath(obj) {
        const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
        let resources = this.discovered.get(obj.apiVersion);
        if (!resources) {
            resources = (await this.getJson(base)).resources.filter((r) => !r.name.includes('/'));
            this.discovered.set(obj.apiVersion, resources);
        }
        const r = resources.find((x) => x.kind === obj.kind);
        if (!r)
            throw new _util_errors__WEBPACK_IMPORTED_MODULE_2__/* .ModelshipError */ .W7('cluster', `Kubernetes: the API server does not serve ${obj.kind} in ${obj.apiVersion}`);
        const ns = r.namespaced ? `/namespaces/${encodeURIComponent(obj.metadata.namespace ?? '')}` : '';
        return `${base}${ns}/${r.name}/${encodeURIComponent(obj.metadata.name)}`;
    }
    async replace(obj, dryRun = false) {
        try {
            return plain(await this.objects.replace(obj, undefined, dryRun ? 'All' : undefined, FIELD_MANAGER));
        }
        catch (e) {
            throw this.wrap(e, `replace ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`);
        }
    }
    async create(obj) {
        try {
            return plain(await this.objects.create(obj, undefined, undefined, FIELD_MANAGER));
        }
        catch (e) {
            throw this.wrap(e, `create ${obj.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name}`);
        }
    }
    /** Delete (foreground, so the pods go with a Deployment); false when it was not there. */
    async remove(apiVersion, kind, namespace, name, preconditionResourceVersion) {
        try {
            await this.objects.delete({ apiVersion, kind, metadata: { name, namespace } }, undefined, undefined, undefined, undefined, 'Background', preconditionResourceVersion ? { preconditions: { resourceVersion: preconditionResourceVersion } } : undefined);
            return true;
        }
        catch (e) {
            if ((0,_kube_errors__WEBPACK_IMPORTED_MODULE_5__/* .apiError */ .p)(e)?.code === 404)
                return false;
            throw this.wrap(e, `delete ${kind} ${namespace}/${name}`);
        }
    }
    /**
     * Every object in `namespace`, of every namespaced resource the API server lists (found by discovery, the preferred
     * version of each group), kind and apiVersion filled in. Events and metrics are not objects anyone made, and
     * Endpoints come with their Service: left out.
     * Fails (naming the path) where a list is refused or an API is unavailable: the caller cannot tell then.
     */
    async namespaceObjects(namespace) {
        const get = (p) => this.getJson(p);
        const groups = (await get('/apis')).groups.filter((g) => !/^(events|metrics)\.k8s\.io$/.test(g.name));
        const lists = await Promise.all([get('/api/v1'), ...groups.map((g) => get(`/apis/${g.preferredVersion.groupVersion}`))]);
        const wanted = lists.flatMap((l) => l.resources.filter((r) => r.namespaced && !r.name.includes('/') && r.verbs.includes('list') && !(l.groupVersion === 'v1' && ['Event', 'Endpoints'].includes(r.kind))).map((r) => ({ ...r, groupVersion: l.groupVersion })));
        const items = await Promise.all(wanted.map(async (r) => {
            const base = r.groupVersion === 'v1' ? '/api/v1' : `/apis/${r.groupVersion}`;
            const l = await get(`${base}/namespaces/${namespace}/${r.name}`);
            return l.items.map((o) => ({ ...o, apiVersion: r.groupVersion, kind: r.kind }));
        }));
        return items.flat();
    }
    /** Events about one object, oldest first. */
    async events(namespace, name) {
        const items = await this.list('v1', 'Event', namespace, undefined, `involvedObject.name=${name}`);
        return items.map((e) => ({ type: e.type ?? '', reason: e.reason ?? '', message: e.message ?? '', count: e.count ?? 1 }));
    }
    /** The API server's version (GET /version, readable by every user). */
    serverVersion() {
        return this.getJson('/version');
    }
    /** GET an API path as JSON; a refusal or an unreachable server is a ModelshipError naming the path. */
    async getJson(p) {
        let r;
        try {
            r = await this.proxy('')(p, { timeoutMs: 15_000 });
        }
        catch (e) {
            throw this.wrap(e, `GET ${p}`);
        }
        if (r.status !== 200)
            throw new _util_errors__WEBPACK_IMPORTED_MODULE_2__/* .ModelshipError */ .W7('cluster', `Kubernetes: GET ${p} failed (HTTP ${r.status}): ${r.body.toString().slice(0, 200)}`);
        return JSON.parse(r.body.toString());
    }
    /** SelfSubjectAccessReview: may the kubeconfig's user do `verb` on `resource` (or `resource/subresource`: services/proxy)? */
    async canI(verb, resource, group = '', namespace) {
        const [res, subresource] = resource.split('/');
        try {
            const r = await this.authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, resource: res, subresource, group, namespace } } } });
            return r.status?.allowed === true;
        }
        catch (e) {
            throw this.wrap(e, `check permission to ${verb} ${resource}`);
        }
    }
    /** Who the kubeconfig's user is to the API server (a SelfSubjectReview, 1.28+), else the kubeconfig's user entry. */
    async whoAmI() {
        try {
            const r = await this.kc.makeApiClient(_kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__/* .AuthenticationV1Api */ .At).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
            if (r.status?.userInfo?.username)
                return r.status.userInfo.username;
        }
        catch {
            /* an older API server, or one that refuses it: the kubeconfig's name for the user */
        }
        return `kubeconfig user "${this.kc.getCurrentUser()?.name ?? ''}"`;
    }
    /** A Transport through the API server's service proxy: .../namespaces/NS/services/NAME:PORT/proxy/PATH. */
    serviceProxy(namespace, service, port) {
        return this.proxy(`/api/v1/namespaces/${namespace}/services/${service}:${port}/proxy`);
    }
    /** A Transport to one pod through the API server's pod proxy: .../namespaces/NS/pods/NAME:PORT/proxy/PATH. */
    podProxy(namespace, pod, port) {
        return this.proxy(`/api/v1/namespaces/${namespace}/pods/${pod}:${port}/proxy`);
    }
    /** The start of a pod's log (its first `limitBytes`), '' when it cannot be read. */
    async podLog(namespace, pod, limitBytes = 256 * 1024) {
        const r = await this.proxy(`/api/v1/namespaces/${namespace}/pods/${pod}/log`)(`?limitBytes=${limitBytes}`).catch(() => undefined);
        return r && r.status === 200 ? r.body.toString() : '';
    }
    proxy(prefix) {
        return async (p, opts = {}) => {
            const url = new URL(this.server.replace(/\/$/, '') + prefix + p);
            const ro = { method: opts.method ?? (opts.body ? 'POST' : 'GET'), headers: { ...(opts.headers ?? {}) }, timeout: opts.timeoutMs ?? 30_000 };
            await this.kc.applyToHTTPSOptions(ro);
            return (0,_util_http__WEBPACK_IMPORTED_MODULE_3__/* .exchange */ .c)(url, ro, opts.body);
        };
    }
    wrap(e, what) {
        const a = (0,_kube_errors__WEBPACK_IMPORTED_MODULE_5__/* .apiError */ .p)(e);
        if (a)
            return new _util_errors__WEBPACK_IMPORTED_MODULE_2__/* .ModelshipError */ .W7('cluster', `Kubernetes: ${what} failed (HTTP ${a.code}): ${a.message}`);
        // the network's failure (util/errors decides which codes are), or a fetch that failed without saying why
        const err = e;
        if ((0,_util_errors__WEBPACK_IMPORTED_MODULE_2__/* .externalFailure */ .Qf)(e)?.system === 'network' || /fetch failed|ECONNREFUSED/.test(String(err?.message)))
            return new _util_errors__WEBPACK_IMPORTED_MODULE_2__/* .ModelshipError */ .W7('cluster', `Kubernetes: ${what}: cannot reach the API server ${this.server}: ${err.message}`);
        return e;
    }
}


/***/ })

};
;