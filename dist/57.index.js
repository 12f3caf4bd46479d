"use strict";
exports.id = 57;
exports.ids = [57];
exports.modules = {

/***/ 46057:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  cleanupRollout: () => (/* reexport */ cleanupRollout),
  runRollout: () => (/* binding */ runRollout)
});

// EXTERNAL MODULE: ./src/util/errors.ts
var errors = __webpack_require__(70017);
// EXTERNAL MODULE: ./src/shared/reference.ts
var reference = __webpack_require__(39724);
// EXTERNAL MODULE: ./src/rollout/manifests.ts
var manifests = __webpack_require__(59795);
// EXTERNAL MODULE: external "fs"
var external_fs_ = __webpack_require__(79896);
// EXTERNAL MODULE: ./node_modules/js-yaml/dist/js-yaml.mjs
var js_yaml = __webpack_require__(33243);
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
        throw new errors/* ModelshipError */.W7('input', `input "patch": cannot read ${file}: ${e.code ?? e.message}`, {
            field: 'patch',
            file,
        });
    }
    let docs;
    try {
        docs = js_yaml/* loadAll */.gh(text);
    }
    catch (e) {
        const m = e.mark;
        throw new errors/* ModelshipError */.W7('input', `input "patch": ${file} is not YAML: ${e.reason}`, {
            field: 'patch',
            file,
            line: m ? m.line + 1 : undefined,
            column: m ? m.column + 1 : undefined,
        });
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
        return { kind: d.kind, name, body, source: `${file} (document ${i + 1})` };
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
        if (isObj(spec.template) &&
            isObj(outSpec.template) &&
            isObj(spec.template.metadata) &&
            isObj(outSpec.template.metadata) &&
            isObj(spec.template.metadata.labels)) {
            outSpec.template.metadata.labels = {
                ...(isObj(outSpec.template.metadata.labels) ? outSpec.template.metadata.labels : {}),
                ...spec.template.metadata.labels,
            };
        }
    }
    const image = spec?.template?.spec?.containers?.find((c) => c.name === 'model-server')?.image;
    const server = outSpec?.template?.spec?.containers?.find((c) => c.name === 'model-server');
    if (image && server)
        server.image = image;
    out.metadata = {
        ...out.metadata,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        labels: { ...(out.metadata.labels ?? {}), ...(obj.metadata.labels ?? {}) },
    };
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
            return {
                holder: l.spec?.holderIdentity ?? '',
                renewTime: renew instanceof Date ? renew.toISOString() : renew,
                durationS: l.spec?.leaseDurationSeconds ?? this.durationS,
                resourceVersion: l.metadata?.resourceVersion,
            };
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
                    const l = await this.kube.coordination.replaceNamespacedLease({
                        name: leaseName(this.app),
                        namespace: this.namespace,
                        body: this.body(cur.resourceVersion),
                    });
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
            const l = await this.kube.coordination.replaceNamespacedLease({
                name: leaseName(this.app),
                namespace: this.namespace,
                body: this.body(this.resourceVersion),
            });
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

// EXTERNAL MODULE: ./src/rollout/owner.ts
var rollout_owner = __webpack_require__(19158);
// EXTERNAL MODULE: ./src/rollout/admission.ts
var admission = __webpack_require__(26760);
// EXTERNAL MODULE: ./src/rollout/permissions.ts
var permissions = __webpack_require__(69141);
// EXTERNAL MODULE: ./src/protocol/runtime.ts
var runtime = __webpack_require__(44832);
// EXTERNAL MODULE: ./src/shared/registry.ts
var shared_registry = __webpack_require__(9222);
// EXTERNAL MODULE: ./src/rollout/prometheus.ts
var rollout_prometheus = __webpack_require__(89825);
// EXTERNAL MODULE: ./src/rollout/health.ts
var health = __webpack_require__(20407);
;// CONCATENATED MODULE: ./src/rollout/gates/pods.ts

/**
 * A started pod that stays NotReady longer than its readiness probe's period × failure threshold (2 s × 2, as
 * manifests.ts writes the probe) and a margin has failed its readiness.
 */
const READINESS_GRACE_MS = 2 * 2000 + 2000;
/** How a rollout step waits for a Deployment: within what is left of rollout-timeout, until the run is aborted. */
function rolloutWait(run) {
    return { timeoutMs: run.remainingMs(), signal: run.signal, readinessGraceMs: READINESS_GRACE_MS, onProgress: (line) => run.progress(line) };
}
/**
 * The pods gate's first check: the release's Deployment rolled out, every replica Ready (health.ts's waitDeployment:
 * a crash loop, a pull error, a failed readiness probe or refused pods fail it at once). Its Ready pods go on to
 * the gates after it. `readyDetail`: what the gate says once they are Ready (the canary's count; none for basic,
 * whose pods gate says nothing before its bake).
 */
function podsReadyGate(name, readyDetail) {
    return {
        gate: 'pods',
        name,
        async run(ctx) {
            const { pods } = await (0,health/* waitDeployment */.b_)(ctx.kube, ctx.namespace, ctx.release.deployment, rolloutWait(ctx));
            return { detail: readyDetail?.(pods.length), found: { pods } };
        },
    };
}

// EXTERNAL MODULE: ./src/protocol/kserve-client.ts
var kserve_client = __webpack_require__(29628);
;// CONCATENATED MODULE: ./src/rollout/gates/gpu-provider.ts



/**
 * With gpu: true, every new pod must compute on the GPU: a pod that holds an nvidia.com/gpu and serves on the CPU
 * (an image without the CUDA provider, a patch that allows cuda,cpu, a Triton config with a KIND_CPU instance group)
 * is a failed canary, named. Each pod is asked through the API server's pod proxy what it is (GET /v2) and where the
 * model runs (modelship: `parameters.execution_provider` of the model metadata; Triton: the instance groups of its
 * model configuration). The proxy drops Authorization headers, so behind modelship's API key the provider is read
 * from the server's start-up log line instead.
 */
function gpuProviderGate(name, modelName) {
    return {
        gate: 'pods',
        name,
        run: async (ctx) => ({ evidence: await checkPodProviders(ctx.kube, ctx.namespace, ctx.found.pods, modelName, runtime/* SERVING_PORT */.b0) }),
    };
}
/** Where each pod computes, as evidence lines; fails naming every pod that does not serve on the GPU. */
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

// EXTERNAL MODULE: ./src/shared/golden.ts
var shared_golden = __webpack_require__(71636);
// EXTERNAL MODULE: ./src/protocol/kserve-grpc-client.ts
var kserve_grpc_client = __webpack_require__(46411);
// EXTERNAL MODULE: ./node_modules/@grpc/grpc-js/build/src/index.js
var src = __webpack_require__(83033);
;// CONCATENATED MODULE: ./src/rollout/gates/golden.ts




const authorization = (apiKey) => (apiKey ? { authorization: `Bearer ${apiKey}` } : {});
/**
 * The golden gate: the release's Service answers the model's metadata, then every reference batch within tolerance
 * of Caffe's outputs, then `verifyRequests` timed requests with a p95 within max-latency-ms. The batch-1 request goes
 * on to the bake, which repeats it.
 */
function goldenGate(name, settings) {
    return { gate: 'golden', name, run: (ctx) => sendGoldenRequests(ctx, settings) };
}
async function sendGoldenRequests(ctx, s) {
    const service = ctx.release.service;
    const transport = ctx.transport(service);
    const headers = authorization(s.apiKey);
    const meta = await modelMetadata(transport, service, s.modelName, headers, ctx.signal);
    if (!s.reference)
        return { passes: true };
    const res = await (0,shared_golden/* goldenRequests */.Ic)(transport, {
        reference: s.reference,
        modelName: s.modelName,
        inputName: meta.inputs[0].name,
        singleInput: meta.inputs.length === 1,
        tolerance: s.tolerance,
        headers,
    });
    const table = [...shared_golden/* GOLDEN_TABLE_HEAD */.Qi, ...res.rows];
    ctx.observed({ evidence: table });
    if (res.failures.length)
        throw new health/* GateFailure */.In(`golden requests to ${service}: ${res.failures[0]}`, [...res.failures, ...table]);
    let p95;
    if (res.batch1 && s.verifyRequests > 0) {
        const m = await (0,shared_golden/* measureLatency */.RJ)(transport, s.modelName, res.batch1, s.verifyRequests, 1, headers);
        p95 = (0,shared_golden/* percentile */.Ym)(m.sorted, 95);
        ctx.observed({ latencyP95Ms: p95 });
        if (m.errors)
            throw new health/* GateFailure */.In(`${m.errors} of ${s.verifyRequests} golden requests to ${service} failed: ${m.firstError}`);
        if (s.maxLatencyMs > 0 && p95 > s.maxLatencyMs)
            throw new health/* GateFailure */.In(`golden requests to ${service}: latency p95 ${p95.toFixed(1)} ms > max-latency-ms ${s.maxLatencyMs} (p50 ${(0,shared_golden/* percentile */.Ym)(m.sorted, 50).toFixed(1)} ms, ${s.verifyRequests} requests)`);
    }
    const latency = p95 !== undefined ? `; p95 ${p95.toFixed(1)} ms over ${s.verifyRequests} requests${s.maxLatencyMs > 0 ? ` (limit ${s.maxLatencyMs} ms)` : ''}` : '';
    return { passes: true, detail: `${res.compared} outputs match the reference${latency}`, evidence: table, found: { goldenRequest: res.batch1 } };
}
/**
 * The model's metadata from `service`; the proxy answers 503 until the Service's endpoints catch up with the pods'
 * readiness (over gRPC: no answer yet, or UNAVAILABLE, from what is in front of the canary).
 */
async function modelMetadata(transport, service, modelName, headers, signal) {
    if (transport instanceof kserve_grpc_client/* KServeGrpcClient */.O) {
        for (let i = 0;; i++) {
            try {
                return await transport.modelMetadata(modelName, { headers });
            }
            catch (e) {
                const retry = e instanceof kserve_grpc_client/* KServeGrpcError */.x && (e.source !== 'server' || e.code === src/* status */.h5.UNAVAILABLE);
                if (i >= 20 || !retry)
                    throw new health/* GateFailure */.In(`model metadata from ${service} over gRPC: ${e.message}`);
            }
            await (0,health/* sleep */.yy)(500, signal);
        }
    }
    for (let i = 0;; i++) {
        const r = await transport(`/v2/models/${modelName}`, { headers, timeoutMs: 10_000 }).catch((e) => ({
            status: 0,
            body: Buffer.from(e.message),
            headers: {},
        }));
        if (r.status === 200)
            return JSON.parse(r.body.toString());
        if (i >= 20 || (r.status >= 400 && r.status < 500 && r.status !== 404))
            throw new health/* GateFailure */.In(`model metadata from ${service}: HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
        await (0,health/* sleep */.yy)(500, signal);
    }
}

;// CONCATENATED MODULE: ./src/rollout/gates/bake.ts



/**
 * The last check of the pods gate: the release's Ready pods stay Ready, without a restart, replacement or crash, for
 * bake-time seconds (health.ts's bake), while one golden request a second must keep being answered (and gives
 * Prometheus samples). The pods gate passes with it; a bake of 0 s is silent: no wait, no step of its own.
 * `podsNoun`: how the gate's detail names the pods ("canary pod(s)").
 */
function bakeGate(bakeTimeS, podsNoun, request) {
    return {
        gate: 'pods',
        name: `bake ${bakeTimeS} s`,
        silent: !(bakeTimeS > 0),
        async run(ctx) {
            const pods = ctx.found.pods;
            if (bakeTimeS > 0)
                await (0,health/* bake */.Wq)(ctx.kube, ctx.namespace, ctx.release.podSelector, pods, bakeTimeS * 1000, ctx.signal, goldenTick(ctx, request));
            return { passes: true, detail: `${pods.length} ${podsNoun} Ready, no restart or NotReady during ${bakeTimeS} s` };
        },
    };
}
/** During the bake, one golden request a second: the release must keep answering right (and Prometheus gets samples). */
function goldenTick(ctx, request) {
    const golden = ctx.found.goldenRequest;
    if (!golden)
        return undefined;
    const service = ctx.release.service;
    const transport = ctx.transport(service);
    return async () => {
        const r = await (0,shared_golden/* sendGolden */.Gr)(transport, request.modelName, golden, authorization(request.apiKey));
        if (r.failure !== undefined)
            throw new health/* GateFailure */.In(`during the bake window: a golden request to ${service} ${r.failure.slice(0, 300)}`);
    };
}

;// CONCATENATED MODULE: ./src/rollout/gates/prometheus.ts


/** How long the gate waits for min-samples to be scraped: at most 30 s, and ends 2 s before rollout-timeout. */
const MAX_SCRAPE_WAIT_MS = 30_000;
/**
 * The gate on the canary's metrics. `compareWithStable`: a stable runs beside the canary, and its numbers are
 * reported beside the canary's.
 */
function metricsGate(metrics, thresholds, vars, compareWithStable) {
    return {
        gate: 'prometheus',
        name: 'Prometheus gate',
        async run(ctx) {
            const waitMs = Math.max(0, Math.min(MAX_SCRAPE_WAIT_MS, ctx.remainingMs() - 2000));
            const r = await judgeCanaryMetrics(metrics, thresholds, waitMs, vars, compareWithStable, ctx.signal);
            return {
                passes: true,
                detail: `canary ${describeMetrics(r.canary)}; stable ${compareWithStable ? describeMetrics(r.stable) : 'none'}`,
                evidence: r.queries,
            };
        },
    };
}
/** Ask for the canary's numbers (waiting up to `waitMs` for min-samples), then the stable's, and judge the canary's. */
async function judgeCanaryMetrics(metrics, c, waitMs, vars, hasStable, signal) {
    const q = (t, track) => (0,rollout_prometheus/* renderQuery */.no)(t, { ...vars, track });
    const res = { canary: {}, stable: {}, queries: [q(c.samplesQuery, 'canary'), q(c.errorRateQuery, 'canary'), q(c.latencyQuery, 'canary')] };
    const deadline = Date.now() + waitMs;
    for (;;) {
        res.canary.samples = await metrics.measure(q(c.samplesQuery, 'canary'), signal);
        if ((res.canary.samples ?? 0) >= c.minSamples || Date.now() >= deadline)
            break;
        await (0,health/* sleep */.yy)(1000, signal);
    }
    if (res.canary.samples === undefined)
        throw new health/* GateFailure */.In(`Prometheus has no samples for the canary (query: ${q(c.samplesQuery, 'canary')}); no data is a failure`, [
            `waited ${Math.round(waitMs / 1000)} s for the scrape`,
        ]);
    if (res.canary.samples < c.minSamples)
        throw new health/* GateFailure */.In(`Prometheus has ${res.canary.samples} samples for the canary, fewer than min-samples ${c.minSamples}`);
    res.canary.errorRate = await metrics.measure(q(c.errorRateQuery, 'canary'), signal);
    res.canary.p99Ms = await metrics.measure(q(c.latencyQuery, 'canary'), signal);
    if (hasStable) {
        res.stable.samples = await metrics.measure(q(c.samplesQuery, 'stable'), signal);
        res.stable.errorRate = await metrics.measure(q(c.errorRateQuery, 'stable'), signal);
        res.stable.p99Ms = await metrics.measure(q(c.latencyQuery, 'stable'), signal);
    }
    const cmp = `canary ${describeMetrics(res.canary)}; stable ${hasStable ? describeMetrics(res.stable) : 'none'}`;
    if (res.canary.errorRate === undefined)
        throw new health/* GateFailure */.In(`Prometheus returned no error rate for the canary; no data is a failure (${cmp})`);
    if (res.canary.errorRate > c.maxErrorRate)
        throw new health/* GateFailure */.In(`canary error rate ${res.canary.errorRate.toFixed(4)} > max-error-rate ${c.maxErrorRate} (${cmp})`);
    if (c.maxP99Ms > 0) {
        if (res.canary.p99Ms === undefined)
            throw new health/* GateFailure */.In(`Prometheus returned no p99 latency for the canary; no data is a failure (${cmp})`);
        if (res.canary.p99Ms > c.maxP99Ms)
            throw new health/* GateFailure */.In(`canary p99 latency ${res.canary.p99Ms.toFixed(1)} ms > max-p99-ms ${c.maxP99Ms} (${cmp})`);
    }
    return res;
}
const describeMetrics = (m) => `samples ${m.samples ?? 'none'}, error rate ${m.errorRate === undefined ? 'none' : m.errorRate.toFixed(4)}, p99 ${m.p99Ms === undefined ? 'none' : `${m.p99Ms.toFixed(1)} ms`}`;

// EXTERNAL MODULE: ./src/rollout/analysis/judge.ts
var judge = __webpack_require__(58099);
;// CONCATENATED MODULE: ./src/rollout/gates/comparison.ts


/** How often a window with too few requests is read again. */
const REREAD_MS = 2000;
/** Left before rollout-timeout: the gate's failure, and the rollback after it, need a moment. */
const MARGIN_MS = 2000;
/** A progress line while waiting for min-samples, at most this often. */
const PROGRESS_EVERY_MS = 10_000;
/**
 * The analysis judged against the stable (gate `analysis`): opens a window on `source`, lets the canary and the
 * stable serve the same traffic for windowS seconds, reads what each served and judges the canary against the stable
 * (analysis/judge.ts). Too few requests on a track: the same window is read again every 2 s (it only grows) until
 * rollout-timeout is near, then the gate fails: too little traffic proves nothing, it never passes. A window that
 * cannot fit in the time left fails at once rather than being judged cut short. `stepName`: the canary step it
 * judges (a stepped canary runs it at each step).
 */
function comparisonGate(source, thresholds, o) {
    return {
        gate: 'analysis',
        name: `analysis against the stable${o.stepName ? ` (${o.stepName})` : ''}, ${o.windowS} s`,
        async run(ctx) {
            const left = () => ctx.remainingMs() - MARGIN_MS;
            // a window opened before the bake (openWindowGate) is the bake's: only what is left of windowS is waited for
            let open = ctx.found.analysis;
            if (!open) {
                if (left() < o.windowS * 1000)
                    throw new health/* GateFailure */.In(`the analysis window of ${o.windowS} s does not fit in the ${Math.max(0, Math.floor(ctx.remainingMs() / 1000))} s left before rollout-timeout`);
                const s = typeof source === 'function' ? source(ctx) : source;
                open = { window: await s.open(ctx.signal), opened: Date.now(), source: s.name };
                ctx.progress(`analysis: ${o.windowS} s of traffic on the canary and the stable, from ${s.name}`);
            }
            const { window, opened } = open;
            const sourceName = open.source;
            await (0,health/* sleep */.yy)(Math.max(0, o.windowS * 1000 - (Date.now() - opened)), ctx.signal);
            let lastProgress = 0;
            for (;;) {
                const r = await window.read(ctx.signal);
                const j = (0,judge/* judgeComparison */.tk)(r.canary, r.stable, thresholds);
                const seconds = Math.round((Date.now() - opened) / 1000);
                const evidence = [`${sourceName}, ${seconds} s`, ...r.evidence];
                if (j.verdict === 'pass') {
                    // in the log too: the report keeps only the last step's detail, and each step's numbers matter
                    ctx.progress(`analysis passed: ${j.detail}, over ${seconds} s`);
                    return { passes: true, detail: `${j.detail}, over ${seconds} s`, evidence };
                }
                if (j.verdict === 'fail')
                    throw new health/* GateFailure */.In(`${j.detail}, over ${seconds} s`, evidence);
                if (left() < REREAD_MS)
                    throw new health/* GateFailure */.In(`${j.detail} after ${seconds} s (rollout-timeout is near)`, evidence);
                if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
                    ctx.progress(`analysis: ${j.detail} after ${seconds} s; waiting for more traffic`);
                    lastProgress = Date.now();
                }
                await (0,health/* sleep */.yy)(REREAD_MS, ctx.signal);
            }
        },
    };
}
/**
 * Opens the analysis window before the bake, so the bake's seconds are the window's: the canary and the stable serve
 * the same traffic while the bake watches the canary's pods, and comparisonGate judges right after it. Silent: no step
 * of its own in the timeline, no verdict (the comparison gives it).
 */
function openWindowGate(source) {
    return {
        gate: 'analysis',
        name: 'open the analysis window',
        silent: true,
        async run(ctx) {
            const s = source(ctx);
            const window = await s.open(ctx.signal);
            ctx.progress(`analysis: the window opens; the canary and the stable serve the same traffic until it is judged (${s.name})`);
            return { found: { analysis: { window, opened: Date.now(), source: s.name } } };
        },
    };
}

;// CONCATENATED MODULE: ./src/rollout/analysis/window.ts
const TRACKS = ['canary', 'stable'];
/**
 * The one table of metric names per runtime, for both sources (`model`: the model's name, Triton's `model` label).
 * modelship: its request counter and latency histogram on route infer (5xx are errors; 4xx are the client's).
 * Triton: nv_inference_request_success / _failure (every failure reason is an error), and the mean request latency:
 * nv_inference_request_duration_us over the successful requests, which are the ones it is accumulated for (Triton's
 * metrics guide: a summary's _count matches nv_inference_request_success). nv_inference_count would be the wrong
 * divisor: it counts a batch of n as n inferences. The summaries' quantiles are a sliding window of their own, not
 * this one, and cannot be summed across pods.
 */
const RUNTIME_METRICS = {
    modelship: () => {
        const infer = { label: 'route', value: 'infer' };
        return {
            requests: [{ metric: 'modelship_requests_total', match: [infer] }],
            errors: [{ metric: 'modelship_requests_total', match: [infer, { label: 'code', value: '5..', regex: true }] }],
            latency: { kind: 'p95', buckets: { metric: 'modelship_request_duration_seconds_bucket', match: [infer] }, toMs: 1000 },
        };
    },
    triton: (model) => {
        const m = [{ label: 'model', value: model }];
        const success = { metric: 'nv_inference_request_success', match: m };
        const failure = { metric: 'nv_inference_request_failure', match: m };
        return {
            requests: [success, failure],
            errors: [failure],
            latency: { kind: 'mean', sum: { metric: 'nv_inference_request_duration_us', match: m }, count: success, toMs: 0.001 },
        };
    },
};
/** A series as PromQL writes it, after `extra` matchers (namespace, track). */
function promSeries(s, extra) {
    const m = [...extra, ...s.match].map((x) => `${x.label}${x.regex ? '=~' : '='}${JSON.stringify(x.value)}`);
    return `${s.metric}{${m.join(',')}}`;
}
/** Whether a scraped sample belongs to `s` (a regex matcher is anchored, as in PromQL). */
function matches(s, name, labels) {
    return name === s.metric && s.match.every((x) => (x.regex ? new RegExp(`^(?:${x.value})$`).test(labels[x.label] ?? '') : labels[x.label] === x.value));
}

;// CONCATENATED MODULE: ./src/rollout/analysis/prometheus-window.ts

const DEFAULT_SCRAPE_INTERVAL_S = 10;
/**
 * How much the counters of `series` grew in the last `windowS` seconds, per series, from the samples inside that
 * range alone: the value now minus the least in the range (after a counter reset, what it counted since). Not
 * increase(): it extrapolates a series that starts inside its range back to 0, and every new canary pod's does (its
 * first scrape comes after the window opened), so the pod's requests from before the window came with it, its cold
 * start and the golden requests: on the lab an identical canary read p95 44.8 ms beside the stable's 24.0 ms (1.87×,
 * rolled back), where the samples inside the window say 22.4 ms. The pods' own /metrics count from the window's opening
 * too (pod-metrics.ts).
 */
const growth = (series, windowS) => `${series} - min_over_time(${series}[${windowS}s])`;
/** The queries of one track over a window of `windowS` seconds. */
function windowQueries(m, namespace, track, windowS) {
    const sel = [
        { label: 'namespace', value: namespace },
        { label: 'track', value: track },
    ];
    const inc = (s) => `sum(${growth(promSeries(s, sel), windowS)})`;
    // a counter no pod has exported yet (no 5xx so far) is no series at all, not a zero
    const total = (ss) => ss.map((s) => `(${inc(s)} or vector(0))`).join(' + ');
    const l = m.latency;
    const latency = l.kind === 'p95'
        ? `${l.toMs} * histogram_quantile(0.95, sum by (le) (${growth(promSeries(l.buckets, sel), windowS)}))`
        : `${l.toMs} * ${inc(l.sum)} / ${inc(l.count)}`;
    return { requests: total(m.requests), errors: total(m.errors), latency };
}
function prometheusWindowSource(o) {
    const now = o.now ?? Date.now;
    const scrapeS = o.scrapeIntervalS ?? DEFAULT_SCRAPE_INTERVAL_S;
    const m = RUNTIME_METRICS[o.runtime](o.model);
    return {
        name: `Prometheus at ${o.url}`,
        open() {
            const opened = now();
            return Promise.resolve({
                async read(signal) {
                    const windowS = Math.max(Math.ceil((now() - opened) / 1000), 2 * scrapeS);
                    const queries = TRACKS.map((track) => windowQueries(m, o.namespace, track, windowS));
                    const read = async (q) => {
                        const [requests, errors, latency] = await Promise.all([q.requests, q.errors, q.latency].map((x) => o.metrics.measure(x, signal)));
                        // no series is nothing served: too few samples, never a pass
                        return { requests: requests ?? 0, errors: errors ?? 0, p95Ms: latency, latencyKind: m.latency.kind };
                    };
                    const [canary, stable] = await Promise.all(queries.map(read));
                    const evidence = [
                        `Prometheus at ${o.url}, the last ${windowS} s (at least two ${scrapeS} s scrape intervals):`,
                        ...queries.flatMap((q) => [q.requests, q.errors, q.latency]),
                    ];
                    return { canary, stable, evidence };
                },
            });
        },
    };
}

// EXTERNAL MODULE: ./node_modules/parse-prometheus-text-format/dist/parse-prometheus-text-format.cjs.js
var parse_prometheus_text_format_cjs = __webpack_require__(22625);
var parse_prometheus_text_format_cjs_default = /*#__PURE__*/__webpack_require__.n(parse_prometheus_text_format_cjs);
;// CONCATENATED MODULE: ./src/rollout/analysis/exposition.ts
// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- the parser ships no types; its declaration lives beside its one user, and the layer check (no-orphans) counts this reference as the declaration's importer
/// <reference path="./parse-prometheus-text-format.d.ts" />

/**
 * The samples of a Prometheus text-format exposition (a pod's /metrics), read by parse-prometheus-text-format.
 * Two of that parser's habits (1.1.1) are worked around here, not by reading the format ourselves:
 * - for a family TYPEd histogram or summary it folds every series into one sample: the `le` buckets of whichever
 *   label set came last win, and labelled _sum/_count lines are dropped, so route="infer" could not be told from the
 *   health routes. Without its `# TYPE` lines every family is untyped and each sample line comes back as written,
 *   with all its labels, `le` among them; the analysis knows its metrics by their full names.
 * - it drops the last sample when the text does not end with a newline: one is added.
 * A line it cannot read throws; the caller says whose metrics they were.
 */
function parseExposition(text) {
    const untyped = text
        .split('\n')
        .filter((l) => !/^\s*#\s+TYPE\s/.test(l))
        .join('\n');
    const out = [];
    for (const family of parse_prometheus_text_format_cjs_default()(`${untyped}\n`))
        for (const s of family.metrics)
            if (s.value !== undefined)
                out.push({ name: family.name, labels: s.labels ?? {}, value: sampleValue(s.value) });
    return out;
}
/** A sample value or an `le` bound as the text format writes it: a Go float, or +Inf, -Inf, NaN. */
function sampleValue(v) {
    const t = v.trim();
    if (/^\+?inf$/i.test(t))
        return Infinity;
    if (/^-inf$/i.test(t))
        return -Infinity;
    return t === '' ? NaN : Number(t);
}

;// CONCATENATED MODULE: ./src/rollout/analysis/quantile.ts
/**
 * The q-quantile of a histogram's cumulative buckets as PromQL's histogram_quantile computes it, so the pods' own
 * /metrics and Prometheus give the same p95 for the same counts: linear interpolation within the bucket the rank falls
 * in (the first bucket starting at 0), the last finite bound when it falls in the +Inf bucket. Undefined when there
 * is nothing to say: no +Inf bucket, fewer than two buckets, no observations.
 */
function histogramQuantile(q, buckets) {
    const b = [...buckets].sort((x, y) => x.le - y.le);
    if (b.length < 2 || b[b.length - 1].le !== Infinity)
        return undefined;
    // counts summed from several pods, or deltas read a moment apart, can dip: PromQL makes them monotonic the same way
    for (let i = 1; i < b.length; i++)
        if (b[i].count < b[i - 1].count)
            b[i] = { ...b[i], count: b[i - 1].count };
    const total = b[b.length - 1].count;
    if (!(total > 0))
        return undefined;
    if (q <= 0)
        return -Infinity;
    if (q >= 1)
        return Infinity;
    const rank = q * total;
    const i = b.slice(0, -1).findIndex((x) => x.count >= rank);
    if (i === -1)
        return b[b.length - 2].le; // in the +Inf bucket: its lower bound is all that is known
    if (i === 0 && b[0].le <= 0)
        return b[0].le;
    const start = i === 0 ? 0 : b[i - 1].le;
    const below = i === 0 ? 0 : b[i - 1].count;
    return start + ((b[i].le - start) * (rank - below)) / (b[i].count - below);
}

;// CONCATENATED MODULE: ./src/rollout/analysis/pod-metrics.ts





const SCRAPE_TIMEOUT_MS = 10_000;
function countsOf(samples, m) {
    const total = (ss) => samples.filter((x) => ss.some((s) => matches(s, x.name, x.labels))).reduce((n, x) => n + x.value, 0);
    const c = { requests: total(m.requests), errors: total(m.errors), buckets: new Map(), sum: 0, count: 0 };
    const l = m.latency;
    if (l.kind === 'p95') {
        for (const x of samples.filter((s) => matches(l.buckets, s.name, s.labels) && s.labels.le !== undefined)) {
            const le = sampleValue(x.labels.le);
            c.buckets.set(le, (c.buckets.get(le) ?? 0) + x.value);
        }
    }
    else {
        c.sum = total([l.sum]);
        c.count = total([l.count]);
    }
    return c;
}
/** now − before, or undefined when something went down (the pod's counters started again). */
function subtract(now, before) {
    const d = {
        requests: now.requests - before.requests,
        errors: now.errors - before.errors,
        buckets: new Map(),
        sum: now.sum - before.sum,
        count: now.count - before.count,
    };
    for (const le of new Set([...now.buckets.keys(), ...before.buckets.keys()]))
        d.buckets.set(le, (now.buckets.get(le) ?? 0) - (before.buckets.get(le) ?? 0));
    return [d.requests, d.errors, d.sum, d.count, ...d.buckets.values()].some((v) => v < 0) ? undefined : d;
}
function add(a, b) {
    const buckets = new Map(a.buckets);
    for (const [le, n] of b.buckets)
        buckets.set(le, (buckets.get(le) ?? 0) + n);
    return { requests: a.requests + b.requests, errors: a.errors + b.errors, buckets, sum: a.sum + b.sum, count: a.count + b.count };
}
const ZERO = { requests: 0, errors: 0, buckets: new Map(), sum: 0, count: 0 };
function trackWindow(c, m) {
    const l = m.latency;
    const latency = l.kind === 'p95'
        ? histogramQuantile(0.95, [...c.buckets].map(([le, count]) => ({ le, count })))
        : c.count > 0
            ? c.sum / c.count
            : undefined;
    return { requests: c.requests, errors: c.errors, p95Ms: latency === undefined ? undefined : latency * l.toMs, latencyKind: l.kind };
}
function podMetricsSource(o) {
    const port = o.port ?? manifests/* METRICS_PORT */.Ip;
    const m = RUNTIME_METRICS[o.runtime](o.model);
    const scrapePod = async (name) => {
        const where = `the metrics of pod ${name} (port ${port}, through the API server's pod proxy)`;
        const r = await o.kube
            .podProxy(o.namespace, name, port)('/metrics', { timeoutMs: SCRAPE_TIMEOUT_MS, headers: { accept: 'text/plain' } })
            .catch((e) => {
            throw new health/* GateFailure */.In(`${where} could not be read: ${e.message}`);
        });
        if (r.status !== 200)
            throw new health/* GateFailure */.In(`${where} could not be read: HTTP ${r.status}: ${r.body.toString().slice(0, 200)}${r.status === 403 ? ' (the rollout needs get on pods/proxy)' : ''}`);
        try {
            return countsOf(parseExposition(r.body.toString()), m);
        }
        catch (e) {
            throw new health/* GateFailure */.In(`${where} are not in the Prometheus text format: ${e.message.slice(0, 200)}`);
        }
    };
    const scrapeTrack = async (track, signal) => {
        signal?.throwIfAborted();
        // a terminating pod (deletionTimestamp: a rolled-back canary's of an earlier run, still draining) has left the
        // Service's endpoints and is no pod of this release: Ready alone would count it
        const listed = await o.kube.list('v1', 'Pod', o.namespace, (0,health/* selectorString */.zD)(o.selectors[track]));
        const pods = listed
            .filter((x) => !x.metadata.deletionTimestamp)
            .map(health/* podView */.H9)
            .filter((p) => p.ready);
        return Promise.all(pods.map(async (p) => ({ name: p.name, uid: p.uid || p.name, restarts: p.restarts, counts: await scrapePod(p.name) })));
    };
    const scrapeBoth = async (signal) => {
        const [canary, stable] = await Promise.all(TRACKS.map((t) => scrapeTrack(t, signal)));
        return { canary, stable };
    };
    const names = [...m.requests, ...m.errors, ...(m.latency.kind === 'p95' ? [m.latency.buckets] : [m.latency.sum, m.latency.count])];
    const head = `the pods' /metrics on port ${port}, through the API server's pod proxy, at the window's start and end: ${[...new Set(names.map((s) => promSeries(s, [])))].join(', ')}`;
    return {
        name: `the pods' own /metrics (port ${port}, through the API server)`,
        async open(signal) {
            const start = await scrapeBoth(signal);
            return {
                async read(signal) {
                    const end = await scrapeBoth(signal);
                    const evidence = [head];
                    const sum = (track) => {
                        const before = new Map(start[track].map((p) => [p.uid, p]));
                        let total = ZERO;
                        for (const p of end[track]) {
                            const b = before.get(p.uid);
                            const d = b && p.restarts === b.restarts ? subtract(p.counts, b.counts) : undefined;
                            const why = !b ? ' (new since the window opened: counted from 0)' : d ? '' : ' (restarted: counted from 0)';
                            const counted = d ?? p.counts;
                            total = add(total, counted);
                            evidence.push(`${track} pod ${p.name}: ${counted.requests} requests, ${counted.errors} errors${why}`);
                            before.delete(p.uid);
                        }
                        for (const p of before.values())
                            evidence.push(`${track} pod ${p.name}: gone or not Ready at the window's end, not counted`);
                        return trackWindow(total, m);
                    };
                    return { canary: sum('canary'), stable: sum('stable'), evidence };
                },
            };
        },
    };
}

// EXTERNAL MODULE: ./src/rollout/autoscale.ts
var autoscale = __webpack_require__(34134);
;// CONCATENATED MODULE: ./src/rollout/writes.ts

/** `obj` marked as created by the run `owner`: it was not there before, and its post step may remove it. */
const markCreated = (obj, owner) => (0,rollout_owner/* annotated */.dR)(obj, { [rollout_owner/* CREATED_BY */.VI]: owner });
/** `obj` marked as promoted (or, basic, verified) by the run `owner`: from then on its post step leaves it alone. */
const markPromoted = (obj, owner) => (0,rollout_owner/* annotated */.dR)(obj, { [rollout_owner/* PROMOTED_BY */.vm]: owner });
/** Apply `obj`, marked as created by `owner` when it is not there yet; true when it was new. */
async function applyMarked(kube, obj, owner) {
    const isNew = (await kube.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name)) === undefined;
    await kube.apply(isNew ? markCreated(obj, owner) : obj);
    return isNew;
}
async function deleteCanary(kube, namespace, app) {
    await kube.remove('apps/v1', 'Deployment', namespace, `${app}-canary`);
    await kube.remove('v1', 'Service', namespace, `${app}-canary`);
}
const msg = (e) => (e instanceof Error ? e.message : String(e));
/**
 * Take over a Deployment modelship did not create: one full replace (PUT) with the generated object, so fields
 * owned by its old manager (a container under another name, say) go, then server-side apply owns it from here.
 */
async function takeOver(kube, obj) {
    for (let i = 0;; i++) {
        const cur = await kube.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name);
        try {
            await kube.replace({
                ...obj,
                metadata: { ...obj.metadata, resourceVersion: cur?.metadata?.resourceVersion },
            });
            return;
        }
        catch (e) {
            if (i >= 4 || !/HTTP 409/.test(msg(e)))
                throw e; // the controller updated its status in between
        }
    }
}
/** Put a Deployment's pod template back (what `kubectl rollout undo` does), and wait for it briefly. */
async function restoreTemplate(kube, namespace, app, template) {
    for (let i = 0; i < 5; i++) {
        const cur = await kube.get('apps/v1', 'Deployment', namespace, app);
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

;// CONCATENATED MODULE: ./src/rollout/autoscale-writes.ts




/**
 * How the rollout works with an autoscaler instead of against it (issue 23 §3): once the stable Deployment exists its
 * replicas are the autoscaler's (an HPA, or KEDA's), so modelship's apply of the stable leaves spec.replicas out, and
 * the canary is sized from the stable's current replicas.
 *
 * Leaving a field out of a server-side apply is not neutral: a field the applier owned (it set it in its last apply)
 * and now omits is removed, and a Deployment without replicas defaults to 1. Whether modelship still owns the field
 * depends on the autoscaler: an HPA writes replicas through the scale subresource, an update, which takes the field
 * from every other manager when it changes the value; as long as the HPA has never changed it (its recommendation
 * equals what modelship set, or it cannot read its metrics yet), modelship's apply still owns it. So, before the first
 * apply without replicas, the field is handed over as Kubernetes documents it (server-side apply, "Transferring
 * ownership"): one apply of only {spec.replicas: <the current value>} under a field manager of its own
 * (HANDOVER_MANAGER), without force (the same value: it shares the field with modelship, no conflict), then modelship's
 * own apply without replicas drops only modelship's claim; the hand-over manager keeps the field, at its value, until
 * the HPA changes it and so takes it. A conflict means the HPA changed the value in between: it owns it now, and
 * modelship no longer does.
 */
/** The field manager that takes spec.replicas over from modelship for the autoscaler (the hand-over). */
const HANDOVER_MANAGER = 'modelship-handover-to-hpa';
const ownsReplicasField = (m) => {
    const spec = m.fieldsV1?.['f:spec'];
    return spec !== undefined && 'f:replicas' in spec;
};
/** Who owns spec.replicas of a live object: `manager operation[/subresource]` of each owner (evidence for logs and tests). */
function replicasOwners(live) {
    return (live.metadata.managedFields ?? []).filter(ownsReplicasField).map((m) => `${m.manager} ${m.operation}${m.subresource ? `/${m.subresource}` : ''}`);
}
/** Whether `manager`'s server-side apply owns spec.replicas: leaving it out of that manager's next apply would remove it. */
function appliesReplicas(live, manager = rollout_owner/* FIELD_MANAGER */.vy) {
    return (live.metadata.managedFields ?? []).some((m) => m.manager === manager && m.operation === 'Apply' && !m.subresource && ownsReplicasField(m));
}
/** The replicas a first deploy creates the stable with: the `replicas` input within the autoscaler's min and max. */
const initialReplicas = (spec, replicas) => Math.min(spec.max, Math.max(spec.min, replicas));
/**
 * The stable's current replicas, which size the canary (canary-percent of them) and the disruption budget: with
 * autoscale, what the live Deployment runs (the autoscaler's count), or on a first deploy its initial replicas;
 * without, the `replicas` input.
 */
function autoscale_writes_stableReplicas(live, spec, replicas) {
    if (!spec)
        return replicas;
    return live?.spec?.replicas ?? initialReplicas(spec, replicas);
}
/**
 * The stable Deployment as modelship writes it with autoscale on: on a first deploy (no live stable) with its initial
 * replicas; then, applied (`apply`), without spec.replicas (the autoscaler's; hand it over first: handOverReplicas);
 * written whole by a takeover's replace (`replace`: a PUT without replicas would set 1), with the live count.
 */
function stableForAutoscale(planned, live, spec, how = 'apply') {
    const plannedSpec = (planned.spec ?? {});
    const next = { ...plannedSpec };
    if (!live)
        next.replicas = initialReplicas(spec, plannedSpec.replicas ?? spec.min);
    else if (how === 'replace')
        next.replicas = live.spec?.replicas ?? initialReplicas(spec, plannedSpec.replicas ?? spec.min);
    else
        delete next.replicas;
    return { ...planned, spec: next };
}
const message = (e) => (e instanceof Error ? e.message : String(e));
/**
 * Before modelship's first apply of the stable `<app>` without spec.replicas: hand the field over from modelship's
 * apply (see above), so leaving it out keeps the current count. Nothing is written when modelship's apply does not
 * own it (an HPA has changed it since: it owns it; or an earlier deploy handed it over). Undefined when there is no
 * stable yet. A conflict (the HPA changed the count between the read and the hand-over) is read again.
 */
async function handOverReplicas(kube, namespace, app) {
    for (let attempt = 0;; attempt++) {
        const live = await kube.get('apps/v1', 'Deployment', namespace, app);
        if (!live)
            return undefined;
        const replicas = live.spec?.replicas ?? 1;
        const ownersBefore = replicasOwners(live);
        if (!appliesReplicas(live))
            return { replicas, handedOver: false, ownersBefore };
        try {
            await kube.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: app, namespace }, spec: { replicas } }, false, {
                fieldManager: HANDOVER_MANAGER,
                force: false,
            });
            return { replicas, handedOver: true, ownersBefore };
        }
        catch (e) {
            if (!/HTTP 409/.test(message(e)))
                throw e;
            if (attempt >= 4)
                throw new errors/* ModelshipError */.W7('cluster', `Kubernetes: handing spec.replicas of Deployment ${namespace}/${app} over to its autoscaler kept conflicting: ${message(e)}`);
        }
    }
}
/** The stable Deployment without spec.replicas (a copy): an apply that leaves them to the autoscaler. */
function withoutReplicas(obj) {
    const spec = { ...(obj.spec ?? {}) };
    delete spec.replicas;
    return { ...obj, spec };
}
const MANAGED_BY = 'app.kubernetes.io/managed-by';
/**
 * The autoscalers `<app>` in `namespace` of the kinds a deploy with `keep` (the autoscaler it applies; undefined:
 * autoscale is off) does not use: the other kind, or both. `unreadable`: the kinds the deploy identity may not read
 * (HTTP 403: it was not given the autoscale permissions), about which nothing can be told. A kind the API server does
 * not serve (KEDA not installed) has none.
 */
async function otherAutoscalers(kube, namespace, app, keep) {
    const found = [];
    const unreadable = [];
    for (const k of autoscale/* AUTOSCALER_KINDS */.u3) {
        if (keep?.kind === k.kind)
            continue;
        let live;
        try {
            live = await kube.get(k.apiVersion, k.kind, namespace, app);
        }
        catch (e) {
            if (!/HTTP 403/.test(message(e)))
                throw e;
            unreadable.push(k.kind);
            continue;
        }
        if (live)
            found.push({ apiVersion: k.apiVersion, kind: k.kind, modelships: live.metadata.labels?.[MANAGED_BY] === 'modelship' });
    }
    return { found, unreadable };
}
/**
 * Write the stable Deployment and what scales it (every strategy's write of the stable: basic's step, the canary's
 * promotion, a first deploy's too), in this order:
 * 1. the autoscalers modelship made that this deploy does not use are deleted: the other kind (cpu ↔ inflight: two
 *    autoscalers on one Deployment fight), or both with autoscale off; then the apply in 3, with the replicas input,
 *    takes spec.replicas back (server-side apply with force takes it from the HPA's update);
 * 2. a takeover's full replace (at the live count with autoscale);
 * 3. with autoscale and a live stable, spec.replicas handed over (handOverReplicas: only where modelship's apply owns
 *    it), then the stable applied without it: the replicas the autoscaler set stay; a first deploy's stable is created
 *    with its initial replicas and handed over right after;
 * 4. the autoscaler applied (marked as this run's when it creates it): an HPA targets `<app>` by name, so it follows
 *    the stable through the promotion, the same Deployment with a new template.
 * Nothing here asks for a permission autoscale off does not have: a deploy identity that may not read autoscalers
 * (HTTP 403) is told in the log when the stable's replicas show an autoscaler (not modelship's own apply).
 */
async function writeStable(kube, w, log) {
    const { namespace, app } = w;
    const others = await otherAutoscalers(kube, namespace, app, w.autoscaler);
    const deleted = [];
    const why = w.autoscaler ? `autoscale now makes a ${w.autoscaler.kind}` : 'autoscale is off';
    for (const a of others.found) {
        if (!a.modelships) {
            log(`${a.kind} ${app} is not modelship's (no managed-by label): left alone, though it may scale Deployment ${app} against ${w.autoscaler ? `the ${w.autoscaler.kind}` : 'the replicas input'}`);
            continue;
        }
        if (await kube.remove(a.apiVersion, a.kind, namespace, app)) {
            deleted.push(`${a.kind} ${app}`);
            log(`deleted ${a.kind} ${app}, which modelship made (${why})`);
        }
    }
    if (others.unreadable.length && !w.autoscaler) {
        const live = await kube.get('apps/v1', 'Deployment', namespace, app);
        if (live && !appliesReplicas(live))
            log(`the deploy identity may not read ${others.unreadable.join(' or ')} objects in ${namespace}: an autoscaler modelship made for ${app} (autoscale) would keep scaling it; its replicas are owned by ${replicasOwners(live).join(', ') || 'nobody'} (\`modelship rbac --autoscale\` grants the permissions)`);
    }
    if (w.takeover)
        await takeOver(kube, w.takeover);
    let handOver;
    if (w.autoscaler) {
        handOver = await handOverReplicas(kube, namespace, app);
        if (handOver?.handedOver)
            log(`spec.replicas of Deployment ${app} (${handOver.replicas}) handed over to its autoscaler (field manager ${HANDOVER_MANAGER}): modelship's apply leaves it out from now on`);
    }
    await kube.apply(w.stable);
    if (w.autoscaler && !handOver) {
        // a first deploy: created with its initial replicas, under modelship's apply; handed over at once, so that no later
        // apply of modelship's (basic's promotion, the next deploy) can take the autoscaler's count back
        handOver = await handOverReplicas(kube, namespace, app);
        if (handOver?.handedOver)
            log(`spec.replicas of the new Deployment ${app} (${handOver.replicas}) handed over to its autoscaler (field manager ${HANDOVER_MANAGER})`);
    }
    let createdAutoscaler = false;
    if (w.autoscaler) {
        createdAutoscaler = await applyMarked(kube, w.autoscaler, w.owner);
        log(`${createdAutoscaler ? 'created' : 'applied'} ${describeAutoscaler(w.autoscaler)}`);
    }
    return { createdAutoscaler, handOver, deleted };
}
/** `HorizontalPodAutoscaler lenet on Deployment lenet (1 to 3 replicas)`, for the log and the dry run. */
function describeAutoscaler(obj) {
    const spec = (obj.spec ?? {});
    const min = spec.minReplicas ?? spec.minReplicaCount;
    const max = spec.maxReplicas ?? spec.maxReplicaCount;
    return `${obj.kind} ${obj.metadata.name} on Deployment ${obj.metadata.name} (${min} to ${max} replicas)`;
}
/**
 * Before anything is written: the API server serves the autoscaler's kind (KEDA's ScaledObject is a custom resource:
 * without KEDA's CRDs there is none, and the server-side dry run could only say "not found"). Fails naming the input
 * and what to install. Returns a warning when the HPA's CPU metric has no source (metrics.k8s.io: metrics-server).
 */
async function checkAutoscalerServed(kube, spec, obj) {
    if (!(await kube.serves(obj.apiVersion, obj.kind))) {
        const why = obj.kind === 'ScaledObject'
            ? `inflight=${spec.inflight} makes a KEDA ScaledObject (${obj.apiVersion}), and this cluster does not serve it: install KEDA (its CRDs, operator and metrics API server: https://keda.sh/docs/latest/deploy/), or autoscale on cpu alone (a HorizontalPodAutoscaler)`
            : `the cluster does not serve ${obj.apiVersion} ${obj.kind} (Kubernetes 1.23 and later do)`;
        throw new errors/* ModelshipError */.W7('input', `input "autoscale": ${why}`, { field: 'autoscale' });
    }
    if (spec.cpu !== undefined && !(await kube.serves('metrics.k8s.io/v1beta1', 'PodMetrics')))
        return `autoscale cpu=${spec.cpu}: the cluster serves no resource metrics (metrics.k8s.io, from metrics-server): the autoscaler cannot read the pods' CPU, and keeps the replicas as they are until it can`;
    return undefined;
}

;// CONCATENATED MODULE: ./src/rollout/plan.ts

















/**
 * The rollout as data, before anything is written: from the inputs and what the cluster runs now, the objects the
 * run applies (as the API server will get them), which of them it creates, what goes through the server-side dry
 * run, and the gates its strategy runs, in order. Pure: no cluster, no clock (test/rollout-plan.test.ts).
 */
const plan_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** The deploy spec from the inputs, validated: what is wrong with them fails here, before the cluster is asked anything. */
function deploySpec(cfg) {
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
    return spec;
}
/** Replicas of the canary at its first step: 0 for basic; a canary-percent out of range fails. */
function canaryCount(cfg) {
    return canarySteps(cfg, cfg.replicas)[0]?.replicas ?? 0;
}
/** The canary's steps, sized from `stableReplicas` (basic: none); a percentage out of range fails. */
function canarySteps(cfg, stableReplicas) {
    if (cfg.strategy !== 'canary')
        return [];
    return cfg.canarySteps.map((percent) => ({ percent, replicas: (0,manifests/* canaryReplicas */.Gy)(stableReplicas, percent) }));
}
function planRollout(cfg, patches, owner, live) {
    const spec = { ...deploySpec(cfg), sleepAction: live.sleepAction };
    const app = cfg.app;
    const liveStable = live.stable;
    const takeover = liveStable !== undefined && liveStable.metadata.labels?.[plan_MANAGED_BY] !== 'modelship';
    const generated = applyPatches((0,manifests/* deployment */.kG)(spec, 'stable', cfg.replicas), patches, app);
    if (liveStable) {
        // a Deployment's selector is immutable: keep the live one, and make the pods carry its labels and ours
        generated.spec.selector = liveStable.spec.selector;
        generated.spec.template.metadata.labels = { ...(liveStable.spec.selector.matchLabels ?? {}), ...generated.spec.template.metadata.labels };
    }
    // with autoscale the replicas are the autoscaler's once the stable exists: applied without them (a first deploy:
    // the replicas input within min and max; a takeover's replace: the live count, a PUT without them would set 1)
    const as = cfg.autoscale;
    const stable = as ? stableForAutoscale(generated, liveStable, as) : generated;
    const takeoverStable = as && takeover ? stableForAutoscale(generated, liveStable, as, 'replace') : stable;
    const autoscalerObj = as ? (0,autoscale/* autoscalerObject */.fr)(as, app, cfg.namespace, cfg.runtime) : undefined;
    // the stable's replicas, which size the canary's steps (one number, used for every step): the replicas input;
    // with autoscale, what the stable runs now (the autoscaler's count)
    const stableReplicas = autoscale_writes_stableReplicas(liveStable, as, cfg.replicas);
    const steps = canarySteps(cfg, stableReplicas);
    const nCanary = steps[0]?.replicas ?? 0;
    const canary = applyPatches((0,manifests/* deployment */.kG)(spec, 'canary', nCanary || 1), patches, app);
    canary.metadata.labels = { ...canary.metadata.labels, [rollout_owner/* OWNER_LABEL */.pk]: owner };
    const mainService = applyPatches((0,manifests/* service */.eu)(spec, 'main'), patches, app);
    const canaryService = (0,manifests/* service */.eu)(spec, 'canary');
    canaryService.metadata.labels = { ...canaryService.metadata.labels, [rollout_owner/* OWNER_LABEL */.pk]: owner };
    // the stable's PodDisruptionBudget, over its pods as its (live) selector picks them
    const maxUnavailable = (0,manifests/* budgetMaxUnavailable */.sj)(cfg.disruptionBudget, stableReplicas);
    const budget = maxUnavailable === undefined ? undefined : (0,manifests/* disruptionBudget */.r5)(spec, maxUnavailable, stable.spec.selector.matchLabels);
    const registry = cfg.pullSecret ? (0,shared_registry/* parseImageRef */.Q)(cfg.image).registry : '';
    const secret = cfg.pullSecret ? (0,manifests/* pullSecret */.QS)(spec, registry, cfg.pullSecret.username, cfg.pullSecret.password) : undefined;
    const isCanary = cfg.strategy === 'canary';
    const planned = [
        ...(isCanary ? [canary, canaryService, stable, ...(takeover ? [] : [mainService])] : [stable, mainService]),
        ...(budget ? [budget] : []),
        ...(autoscalerObj ? [autoscalerObj] : []),
    ];
    return {
        strategy: cfg.strategy,
        spec,
        owner,
        canaryReplicas: nCanary,
        stableReplicas,
        steps,
        createsNamespace: !live.namespaceExists,
        liveStable,
        takeover,
        objects: {
            stable,
            takeoverStable,
            autoscaler: autoscalerObj,
            canary,
            mainService,
            canaryService,
            disruptionBudget: budget,
            pullSecret: secret ? { object: secret, registry } : undefined,
        },
        budgetSetting: `disruption-budget ${cfg.disruptionBudget}${cfg.disruptionBudget === 'auto' ? `: ${stableReplicas} replica` : ''}`,
        planned,
        // a takeover's main Service is applied with the promotion, after the dry run's diff; its stable is written by a
        // full replace first (dry-run so)
        admitted: [...planned.map((o) => (o === stable ? takeoverStable : o)), ...(isCanary && takeover ? [mainService] : []), ...(secret ? [secret] : [])],
        replaced: takeover ? [takeoverStable] : [],
        verifications: isCanary
            ? canaryVerifications(cfg, steps, canary, canaryService, liveStable ? stable.spec.selector.matchLabels : undefined)
            : [basicVerification(cfg)],
        gates: initialGateRecords(cfg, isCanary, liveStable !== undefined),
    };
}
const goldenSettings = (cfg) => ({
    modelName: cfg.modelName,
    reference: cfg.reference,
    tolerance: cfg.tolerance,
    apiKey: cfg.apiKey,
    verifyRequests: cfg.verifyRequests,
    maxLatencyMs: cfg.maxLatencyMs,
});
/** The canary beside the stable, one verification per step: the same release, each step's gates (stepGates). */
function canaryVerifications(cfg, steps, canary, canaryService, stableSelector) {
    const release = {
        track: 'canary',
        deployment: canary.metadata.name,
        service: canaryService.metadata.name,
        podSelector: { ...(0,manifests/* selectorLabels */.Zn)(cfg.app), track: 'canary' },
    };
    return steps.map((_, i) => {
        const gates = stepGates(cfg, i, release, stableSelector);
        // a stepped canary's timeline and gate details say which step a check belongs to; one step says nothing more
        return { release, gates: steps.length > 1 ? gates.map((g) => atStep(g, stepLabel(i, steps))) : gates };
    });
}
/**
 * The gates of the canary's step `i` (0-based), in order. The first: its pods Ready (on the GPU), the golden requests,
 * the bake, then the metrics. Every later one: its pods Ready (the new ones, on the GPU), the bake, the metrics: the
 * golden requests run once, at the first step (the later ones add pods of the same template). A per-step analysis
 * gate goes at the end of the list, for every step.
 */
function stepGates(cfg, i, release, stableSelector) {
    const golden = goldenSettings(cfg);
    const first = i === 0;
    // the analysis against the stable (compare-with-stable): its window is the bake, so it opens just before it
    const source = cfg.comparison && stableSelector ? comparisonSource(cfg, release, stableSelector) : undefined;
    return [
        podsReadyGate('canary pods Ready', (ready) => `${ready} canary pod(s) Ready`),
        ...(cfg.gpu ? [gpuProviderGate('canary pods compute on the GPU', cfg.modelName)] : []),
        ...(first ? [goldenGate(`golden requests to ${release.service}`, golden)] : []),
        ...(source ? [openWindowGate(source)] : []),
        bakeGate(cfg.bakeTimeS, 'canary pod(s)', golden),
        ...(source && cfg.comparison ? [comparisonGate(source, cfg.comparison, { windowS: cfg.bakeTimeS })] : []),
        ...(cfg.prometheus
            ? [
                metricsGate((0,rollout_prometheus/* prometheusProvider */.mM)(cfg.prometheus.url), cfg.prometheus, { namespace: cfg.namespace, app: cfg.app, model: cfg.modelName }, stableSelector !== undefined),
            ]
            : []),
    ];
}
/**
 * Where the analysis's numbers come from: Prometheus with prometheus-url, else the pods' own /metrics through the API
 * server (the stable's pods by its selector: a taken-over stable's own labels).
 */
function comparisonSource(cfg, release, stableSelector) {
    const prometheus = cfg.prometheus;
    if (prometheus) {
        const source = prometheusWindowSource({
            metrics: (0,rollout_prometheus/* prometheusProvider */.mM)(prometheus.url),
            url: prometheus.url,
            namespace: cfg.namespace,
            runtime: cfg.runtime,
            model: cfg.modelName,
        });
        return () => source;
    }
    return (ctx) => podMetricsSource({
        kube: ctx.kube,
        namespace: ctx.namespace,
        runtime: cfg.runtime,
        model: cfg.modelName,
        selectors: { canary: release.podSelector, stable: stableSelector },
    });
}
/** How the timeline and the gates' details name step `i` of `steps`: `step 2/4 (25%)`. */
const stepLabel = (i, steps) => `step ${i + 1}/${steps.length} (${steps[i].percent}%)`;
/**
 * `gate` as a check of one step of a stepped canary: its timeline step is named `step 2/4 (25%): <name>`, and what
 * it says, passed or failed, starts with the step (the report's gate details, a roll back's reason).
 */
function atStep(gate, label) {
    return {
        ...gate,
        name: `${label}: ${gate.name}`,
        async run(ctx) {
            try {
                const result = await gate.run(ctx);
                return result.detail ? { ...result, detail: `${label}: ${result.detail}` } : result;
            }
            catch (e) {
                if (e instanceof Error && !(e instanceof health/* Aborted */.aG))
                    e.message = `${label}: ${e.message}`;
                throw e;
            }
        },
    };
}
/** The stable updated in place: the same checks, but the metrics gate, which judges a canary. */
function basicVerification(cfg) {
    const release = { track: 'stable', deployment: cfg.app, service: cfg.app, podSelector: { ...(0,manifests/* selectorLabels */.Zn)(cfg.app), track: 'stable' } };
    const golden = goldenSettings(cfg);
    const gates = [
        podsReadyGate(`${cfg.app} rollout`),
        ...(cfg.gpu ? [gpuProviderGate(`${cfg.app} pods compute on the GPU`, cfg.modelName)] : []),
        goldenGate(`golden requests to ${release.service}`, golden),
        bakeGate(cfg.bakeTimeS, 'pod(s)', golden),
    ];
    return { release, gates };
}
function initialGateRecords(cfg, isCanary, stableRuns) {
    const skipped = (gate, detail) => ({ gate, result: 'skipped', detail, evidence: [], seconds: 0 });
    return [
        skipped('pods', ''),
        skipped('golden', cfg.reference ? '' : 'no reference given: only /v2/models/<model>/ready was checked'),
        skipped('analysis', !cfg.comparison
            ? 'compare-with-stable is off (auto: on with canary-steps)'
            : !isCanary
                ? 'strategy basic: no canary to compare'
                : stableRuns
                    ? ''
                    : 'no stable to compare with (a first deploy)'),
        skipped('prometheus', cfg.prometheus ? '' : 'no prometheus-url'),
    ];
}

;// CONCATENATED MODULE: ./src/rollout/gates/ledger.ts

/**
 * The gates' records of a run, in report order: every gate starts `skipped` (with why, when it cannot run: no
 * reference, no prometheus-url) and changes only as its checks end. Records are replaced, never changed in place, so
 * what `records` handed out stays as it was.
 */
class GateLedger {
    rows;
    constructor(initial) {
        this.rows = initial.map((r) => ({ ...r, evidence: [...r.evidence] }));
    }
    get records() {
        return this.rows;
    }
    record(gate) {
        const r = this.rows.find((x) => x.gate === gate);
        if (!r)
            throw new Error(`no gate "${gate}" in this run's report`);
        return r;
    }
    /** the gates that passed, in report order */
    passed() {
        return this.rows.filter((r) => r.result === 'pass').map((r) => r.gate);
    }
    /** the gate that failed, if one did */
    failed() {
        return this.rows.find((r) => r.result === 'fail');
    }
    /** A check of `gate` ended without a failure after `seconds`; `observed`: the evidence it reported on the way. */
    checkPassed(gate, seconds, result, observed) {
        const evidence = result.evidence ?? observed;
        this.replace(gate, (r) => ({
            ...r,
            result: result.passes ? 'pass' : r.result,
            detail: result.detail ?? r.detail,
            evidence: evidence ?? r.evidence,
            seconds: r.seconds + seconds,
        }));
    }
    /**
     * A later step (a stepped canary's) checks `gate` again: a gate that passed no longer counts as passed, with
     * `detail`, until that step's checks pass it again; its time so far stays. So a run reports a gate as passed only
     * when it passed at every step that checks it.
     */
    reopen(gate, detail) {
        if (this.record(gate).result === 'pass')
            this.replace(gate, (r) => ({ ...r, result: 'skipped', detail }));
    }
    /** A check of `gate` failed with `error` after `seconds`: the gate fails, with the failure's evidence (or what it reported). */
    checkFailed(gate, seconds, error, observed) {
        this.replace(gate, (r) => ({
            ...r,
            result: 'fail',
            detail: error instanceof Error ? error.message : String(error),
            evidence: error instanceof health/* GateFailure */.In ? error.evidence : (observed ?? r.evidence),
            seconds: r.seconds + seconds,
        }));
    }
    replace(gate, change) {
        this.record(gate);
        this.rows = this.rows.map((r) => (r.gate === gate ? change(r) : r));
    }
}

;// CONCATENATED MODULE: ./src/rollout/timeline.ts
/**
 * The deploy's timeline: every step is logged as it starts (`[12.3 s] canary pods Ready`) and recorded as it ends, so
 * the summary's table and Gantt chart and rollout-report's `timeline` show what took how long and where it failed.
 */
class Timeline {
    log;
    startedAt = Date.now();
    recorded = [];
    constructor(log) {
        this.log = log;
    }
    get entries() {
        return this.recorded;
    }
    secondsSinceStart() {
        return (Date.now() - this.startedAt) / 1000;
    }
    async step(name, fn) {
        const started = Date.now();
        const atS = (started - this.startedAt) / 1000;
        this.log(`[${atS.toFixed(1)} s] ${name}`);
        try {
            const result = await fn();
            this.recorded.push({ step: name, atS, seconds: (Date.now() - started) / 1000, result: 'ok' });
            return result;
        }
        catch (e) {
            this.recorded.push({
                step: name,
                atS,
                seconds: (Date.now() - started) / 1000,
                result: 'fail',
                detail: (e instanceof Error ? e.message : String(e)).split('\n')[0],
            });
            throw e;
        }
    }
}

;// CONCATENATED MODULE: ./src/rollout/context.ts




class DeployRun {
    kube;
    namespace;
    log;
    settings;
    timeline;
    gates;
    timeoutMs;
    latencyP95Ms;
    controller = new AbortController();
    onSignal = (sig) => this.controller.abort(`cancelled (${sig})`);
    deadline;
    grpcClient;
    constructor(kube, namespace, log, settings, gates) {
        this.kube = kube;
        this.namespace = namespace;
        this.log = log;
        this.settings = settings;
        this.timeline = new Timeline((line) => log.info(line));
        this.gates = new GateLedger(gates);
        this.timeoutMs = settings.timeoutS * 1000;
    }
    get signal() {
        return this.controller.signal;
    }
    /** From here until close(), SIGINT and SIGTERM (the runner cancelling the job) abort the run, which then rolls back. */
    listenForCancellation() {
        process.on('SIGINT', this.onSignal);
        process.on('SIGTERM', this.onSignal);
    }
    step(name, fn) {
        return this.timeline.step(name, fn);
    }
    startDeadline() {
        const startedAt = Date.now();
        this.deadline = {
            startedAt,
            timer: setTimeout(() => this.controller.abort(`timeout: no decision within rollout-timeout ${this.settings.timeoutS} s`), this.timeoutMs),
        };
    }
    stopDeadline() {
        if (this.deadline)
            clearTimeout(this.deadline.timer);
    }
    remainingMs() {
        return Math.max(0, this.timeoutMs - (this.deadline ? Date.now() - this.deadline.startedAt : 0));
    }
    transport(service) {
        // gRPC cannot go through the API server's service proxy (HTTP/1.1): the inputs require verify-url with it
        if (this.settings.protocol === 'grpc')
            return (this.grpcClient ??= new kserve_grpc_client/* KServeGrpcClient */.O(this.settings.verifyUrl));
        return this.settings.verifyUrl ? (0,shared_golden/* httpTransport */.k6)(this.settings.verifyUrl) : this.kube.serviceProxy(this.namespace, service, 'http');
    }
    /** The deploy is over: no deadline, no signal handlers. */
    close() {
        this.stopDeadline();
        this.grpcClient?.close();
        this.grpcClient = undefined;
        process.removeListener('SIGINT', this.onSignal);
        process.removeListener('SIGTERM', this.onSignal);
    }
}

;// CONCATENATED MODULE: ./src/rollout/gates/verify.ts
/**
 * The verification every strategy's step shares: `gates` in order against `release`, each a step of the timeline
 * (but a silent one), each recorded under its gate in the run's ledger as it ends. The first gate that throws fails
 * its gate and ends the verification (the error goes on to the strategy's roll back); what each gate found is handed
 * to the ones after it.
 */
async function verify(release, gates, run) {
    let found = { pods: [] };
    for (const gate of gates) {
        let observedEvidence;
        const ctx = {
            kube: run.kube,
            namespace: run.namespace,
            release,
            signal: run.signal,
            remainingMs: () => run.remainingMs(),
            progress: (line) => run.log.info(line),
            transport: (service) => run.transport(service),
            found,
            observed: (observation) => {
                if (observation.evidence)
                    observedEvidence = observation.evidence;
                if (observation.latencyP95Ms !== undefined)
                    run.latencyP95Ms = observation.latencyP95Ms;
            },
        };
        const started = Date.now();
        const seconds = () => (Date.now() - started) / 1000;
        try {
            const result = gate.silent ? await gate.run(ctx) : await run.step(gate.name, () => gate.run(ctx));
            run.gates.checkPassed(gate.gate, seconds(), result, observedEvidence);
            found = { ...found, ...result.found };
        }
        catch (e) {
            run.gates.checkFailed(gate.gate, seconds(), e, observedEvidence);
            throw e;
        }
    }
    return found;
}

;// CONCATENATED MODULE: ./src/rollout/strategies/strategy.ts





/** Run `strategy` to its decision: rollout-timeout counts from the first step's apply to the decision. */
async function runStrategy(strategy, run) {
    const startedAt = Date.now();
    run.startDeadline();
    let decisionSeconds;
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
    }
    catch (e) {
        decide();
        const reason = run.signal.aborted ? `${String(run.signal.reason)}${e instanceof health/* Aborted */.aG ? '' : `: ${strategy_message(e)}`}` : failureReason(e, run.gates);
        await strategy.rollBack(run);
        return { decision: 'rolled-back', reason, decisionSeconds: decide(), steps };
    }
}
const strategy_message = (e) => (e instanceof Error ? e.message : String(e));
/** Why a run rolled back: the gate that failed with its detail and first evidence, else the error itself. */
function failureReason(e, gates) {
    const failed = gates.failed();
    if (failed)
        return `gate "${failed.gate}" failed: ${failed.detail}${failed.evidence.length ? `\n${failed.evidence.slice(0, 12).join('\n')}` : ''}`;
    const evidence = e instanceof health/* GateFailure */.In && e.evidence.length ? `\n${e.evidence.slice(0, 12).join('\n')}` : '';
    return ((0,errors/* isModelshipError */.yh)(e) || e instanceof health/* GateFailure */.In ? strategy_message(e) : `error: ${strategy_message(e)}`) + evidence;
}
/**
 * Apply the stable's PodDisruptionBudget, or delete the one modelship made when the plan has none (disruption-budget
 * none, or auto with one replica). True when this run created it.
 */
async function applyBudget(run, plan) {
    const budget = plan.objects.disruptionBudget;
    if (budget)
        return applyMarked(run.kube, budget, plan.owner);
    const app = plan.spec.app;
    const live = await run.kube.get('policy/v1', 'PodDisruptionBudget', run.namespace, app);
    if (live?.metadata.labels?.[plan_MANAGED_BY] === 'modelship') {
        await run.kube.remove('policy/v1', 'PodDisruptionBudget', run.namespace, app);
        run.log.info(`deleted PodDisruptionBudget ${app} (${plan.budgetSetting})`);
    }
    return false;
}
/** Remove the autoscaler this run created (a roll back), saying so. */
async function removeAutoscaler(run, autoscaler) {
    if (!autoscaler)
        return;
    if (await run.kube.remove(autoscaler.apiVersion, autoscaler.kind, run.namespace, autoscaler.metadata.name))
        run.log.info(`deleted ${autoscaler.kind} ${autoscaler.metadata.name}, which this run created`);
}

;// CONCATENATED MODULE: ./src/rollout/strategies/canary.ts






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
function canaryStrategy(plan) {
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
                        if (!takeover)
                            createdMainService = await applyMarked(run.kube, mainService, owner);
                        return;
                    }
                    if (unchanged)
                        run.log.info(`${step.percent}% of ${stableReplicas} replicas is still ${step.replicas} canary pod(s), as at step ${i} (replica weighting): no new pods; the step bakes and is analysed again`);
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
                const written = await writeStable(run.kube, { namespace: run.namespace, app, owner, stable: promoted, takeover: takeover ? markPromoted(takeoverStable, owner) : undefined, autoscaler }, (line) => run.log.info(line));
                createdAutoscaler = written.createdAutoscaler;
                if (takeover)
                    await run.kube.apply(mainService);
                await applyBudget(run, plan);
            });
            try {
                await run.step(`stable rollout of ${app}`, () => (0,health/* waitDeployment */.b_)(run.kube, run.namespace, app, {
                    timeoutMs: run.timeoutMs,
                    signal: run.signal,
                    readinessGraceMs: READINESS_GRACE_MS,
                    onProgress: (line) => run.log.info(line),
                }));
            }
            catch (e) {
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
                if (!liveStable && createdMainService)
                    await run.kube.remove('v1', 'Service', run.namespace, app);
                if (createdAutoscaler)
                    await removeAutoscaler(run, autoscaler);
            });
        },
    };
}
/** The canary Deployment with `replicas`: what a later step applies (server-side apply: the same object, another size). */
function withReplicas(canary, replicas) {
    return { ...canary, spec: { ...canary.spec, replicas } };
}

;// CONCATENATED MODULE: ./src/rollout/strategies/basic.ts



/**
 * basic: the stable `<app>` is updated in place and verified as it rolls out; a roll back returns it to its previous
 * pod template (a first deploy: deletes it), and removes the PodDisruptionBudget and the autoscaler the run created.
 * With autoscale the step writes the stable's replicas over to the autoscaler and applies it (writeStable).
 */
function basicStrategy(plan) {
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
                    const written = await writeStable(run.kube, { namespace: run.namespace, app, owner, stable: stableToApply, takeover: takeover ? takeoverStable : undefined, autoscaler }, (line) => run.log.info(line));
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
                if (createdAutoscaler)
                    await removeAutoscaler(run, autoscaler);
                if (liveStable)
                    await restoreTemplate(run.kube, run.namespace, app, liveStable.spec.template);
                else
                    await run.kube.remove('apps/v1', 'Deployment', run.namespace, app);
                if (createdBudget)
                    await run.kube.remove('policy/v1', 'PodDisruptionBudget', run.namespace, app);
            });
        },
    };
}

// EXTERNAL MODULE: ./node_modules/diff/libesm/patch/create.js + 2 modules
var create = __webpack_require__(37291);
;// CONCATENATED MODULE: ./src/rollout/dry-run.ts




/**
 * dry-run: the plan printed, and each object's diff against the live one as the API server would store it (a
 * server-side dry run of the same apply); nothing is changed. The pull Secret is left out: its data would be printed.
 */
async function dryRun(kube, cfg, plan, log) {
    const nsExists = !plan.createsNamespace;
    const sections = [];
    const lines = [`dry run: ${cfg.strategy} rollout of ${cfg.image} to ${cfg.namespace}/${cfg.app} (nothing is changed)`];
    if (!nsExists)
        lines.push(`- would create namespace ${cfg.namespace}`);
    if (plan.takeover)
        lines.push(`- would take over Deployment ${cfg.app}, which modelship did not create (its selector is kept)`);
    if (cfg.strategy === 'canary' && plan.steps.length === 1)
        lines.push(`- would run ${plan.canaryReplicas} canary replica(s), verify them (pods, golden requests${cfg.prometheus ? ', Prometheus' : ''}), then promote ${cfg.app} or delete the canary`);
    if (cfg.strategy === 'canary' && plan.steps.length > 1) {
        lines.push(`- would run the canary in ${plan.steps.length} steps beside the ${plan.stableReplicas} stable replicas (which keep running until the promotion), then promote ${cfg.app}, or delete the canary at the first step that fails:`);
        plan.steps.forEach((s, i) => {
            const same = i > 0 && plan.steps[i - 1].replicas === s.replicas ? `, the same as step ${i}` : '';
            const checks = ['pods', ...(i === 0 ? ['golden requests'] : []), `bake ${cfg.bakeTimeS} s`, ...(cfg.prometheus ? ['Prometheus'] : [])].join(', ');
            const share = Math.round((100 * s.replicas) / (s.replicas + plan.stableReplicas));
            lines.push(`  - step ${i + 1}/${plan.steps.length}: ${s.percent}%: ${s.replicas} canary replica(s)${same} (about ${share}% of the traffic); verify ${checks}`);
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
            const liveReplicas = live.spec?.replicas;
            if (appliesReplicas(live))
                lines.push(`- would hand spec.replicas of Deployment ${cfg.app} (${liveReplicas}) over to the autoscaler, then apply it without them`);
            result.spec = { ...(result.spec ?? {}), replicas: liveReplicas };
        }
        const patch = (0,create/* createTwoFilesPatch */.ss)(`live/${obj.kind}/${obj.metadata.name}`, `planned/${obj.kind}/${obj.metadata.name}`, comparable(live), comparable(result), undefined, undefined, { context: 3 });
        const changed = comparable(live) !== comparable(result);
        lines.push(`- ${obj.kind} ${obj.metadata.name}: ${live ? (changed ? 'would change' : 'unchanged') : 'would create'}`);
        sections.push(`### ${obj.kind} ${obj.metadata.name}: ${live ? (changed ? 'changes' : 'unchanged') : 'new'}\n\n\`\`\`diff\n${patch.split('\n').slice(2).join('\n')}\n\`\`\``);
    }
    log.info(lines.join('\n'));
    for (const s of sections)
        log.info(s.replace(/```(diff)?\n?/g, ''));
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
function comparable(obj) {
    if (!obj)
        return '';
    const c = JSON.parse(JSON.stringify(obj));
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

;// CONCATENATED MODULE: ./src/rollout/report.ts
function rolloutResult(plan, record) {
    const { decision, reason, decisionSeconds } = record.outcome;
    const { app, namespace, image } = plan.spec;
    const gate = (name) => record.gates.find((g) => g.gate === name).result;
    const { reached, of } = record.outcome.steps;
    const outputs = {
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
function rolloutSummary(plan, record) {
    const { decision, reason } = record.outcome;
    const { app, namespace, image } = plan.spec;
    const icon = decision === 'promoted' ? '✅' : '❌';
    const rows = record.gates.map((g) => `| ${g.gate} | ${g.result === 'fail' ? '**fail**' : g.result} | ${g.seconds.toFixed(1)} s | ${g.detail.split('\n')[0].replace(/\|/g, '\\|').slice(0, 300)} |`);
    const tl = record.timeline.map((t) => `| ${t.atS.toFixed(1)} s | ${t.step} | ${t.seconds.toFixed(1)} s | ${t.result === 'ok' ? 'ok' : `**fail**: ${(t.detail ?? '').replace(/\|/g, '\\|').slice(0, 200)}`} |`);
    const gantt = [
        '```mermaid',
        'gantt',
        '  title Rollout timeline',
        '  dateFormat X',
        '  axisFormat %Ss',
        ...record.timeline.map((t, i) => `  ${t.step.replace(/[:#;]/g, ' ')} :${t.result === 'fail' ? 'crit, ' : ''}s${i}, ${Math.round(t.atS)}, ${Math.max(1, Math.round(t.seconds))}s`),
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
function canarySize(plan, reached) {
    const { steps, stableReplicas } = plan;
    if (steps.length === 1)
        return `${steps[0].replicas} canary of ${stableReplicas} replicas`;
    const each = steps.map((s) => `${s.percent}%: ${s.replicas}`).join(', ');
    return `canary steps ${each} of ${stableReplicas} replicas; reached step ${reached}/${steps.length}`;
}

// EXTERNAL MODULE: ./src/shared/verify-image.ts
var verify_image = __webpack_require__(94476);
// EXTERNAL MODULE: ./src/util/dockerconfig.ts
var dockerconfig = __webpack_require__(94944);
;// CONCATENATED MODULE: ./src/rollout/cleanup.ts






const cleanup_msg = (e) => (e instanceof Error ? e.message : String(e));
/**
 * The action's post step, after a cancelled or killed job: remove what this run (`owner`) made and left, and nothing
 * else (what existed before the run, or another run made, is never touched; see owner.ts for the marks).
 * - its canary: the Deployment (and its Service) labelled with the owner;
 * - when the run did not finish — it still holds the deploy lease (a run that ends by itself gives it back after its
 *   decision) and no stable Deployment is marked as promoted by it — the objects it created: the main Service, the
 *   pull Secret, a first stable Deployment (basic strategy), its PodDisruptionBudget, the autoscaler (autoscale: the
 *   HPA or KEDA ScaledObject);
 * - its lease;
 * - then the namespace, if the unfinished run created it and it holds nothing the run did not create.
 */
async function cleanupRollout(kubeconfig, namespace, app, owner, log) {
    const kube = rollout_kube.Kube.load(kubeconfig);
    const done = [];
    const createdByRun = (obj) => obj?.metadata.annotations?.[rollout_owner/* CREATED_BY */.VI] === owner;
    // what the identity may not read (a Secret without create-pull-secret, the namespace for a namespaced Role:
    // permissions.ts) the run cannot have made either
    const readable = (p) => p.catch((e) => {
        if (/HTTP 403/.test(cleanup_msg(e)))
            return undefined;
        throw e;
    });
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
        const made = [
            ['apps/v1', 'Deployment', app],
            ['v1', 'Service', app],
            ['policy/v1', 'PodDisruptionBudget', app],
            ['v1', 'Secret', (0,manifests/* pullSecretName */.JA)(app)],
            ...autoscale/* AUTOSCALER_KINDS */.u3.map((k) => [k.apiVersion, k.kind, app]),
        ];
        for (const [apiVersion, kind, name] of made) {
            const obj = kind === 'Deployment' ? stable : await readable(kube.get(apiVersion, kind, namespace, name));
            if (createdByRun(obj) && (await kube.remove(apiVersion, kind, namespace, name)))
                done.push(`deleted ${kind} ${namespace}/${name}, which this run created`);
        }
    }
    if (await releaseIfHeld(kube, namespace, app, owner))
        done.push(`released the deploy lease of ${namespace}/${app}`);
    if (unfinished && createdByRun(await readable(kube.get('v1', 'Namespace', undefined, namespace)))) {
        let others;
        try {
            others = (await kube.namespaceObjects(namespace)).filter((obj) => !madeWithNamespace(obj, owner)).map((obj) => `${obj.kind} ${obj.metadata.name}`);
        }
        catch (e) {
            others = [`objects it cannot list (${cleanup_msg(e)})`];
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
 * Is `obj` nothing of its own in a namespace the run created: made by the run (its mark), on its way out, a dependent
 * of another object (a ReplicaSet, a Pod, an EndpointSlice: the object it depends on is counted instead), or what
 * Kubernetes puts in every namespace (the default ServiceAccount and its token, the root CA ConfigMap)?
 */
function madeWithNamespace(obj, owner) {
    const m = obj.metadata;
    if (m.annotations?.[rollout_owner/* CREATED_BY */.VI] === owner || m.deletionTimestamp || (m.ownerReferences ?? []).length > 0)
        return true;
    if (obj.apiVersion !== 'v1')
        return false;
    return ((obj.kind === 'ServiceAccount' && m.name === 'default') ||
        (obj.kind === 'Secret' && obj.type === 'kubernetes.io/service-account-token' && m.annotations?.['kubernetes.io/service-account.name'] === 'default') ||
        (obj.kind === 'ConfigMap' && m.name === 'kube-root-ca.crt'));
}

;// CONCATENATED MODULE: ./src/rollout/index.ts






















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
async function runRollout(cfg, log, env = process.env) {
    // ---- everything that can be wrong with the inputs fails here, before anything is applied
    const patches = [...(cfg.manifest ? readManifest(cfg.manifest) : []), ...(cfg.patch ? readPatches(cfg.patch) : [])];
    if (cfg.reference)
        (0,reference/* referenceBatches */.WN)(cfg.reference);
    // the spec and the canary's size, checked now (planRollout makes them again, with what the cluster runs)
    deploySpec(cfg);
    canaryCount(cfg);
    // verify (cosign) before the cluster is asked anything: what does not verify stops here, and every object of the
    // plan names the image by the digest that verified
    if (cfg.verification)
        cfg = { ...cfg, image: await verifiedImage(cfg, cfg.verification, log, env) };
    const kube = rollout_kube.Kube.load(cfg.kubeconfig);
    const version = await kube.serverVersion();
    const unsupported = (0,manifests/* unsupportedServer */.tT)(version);
    if (unsupported)
        throw new errors/* ModelshipError */.W7('cluster', `Kubernetes ${kube.server}: ${unsupported}`);
    const owner = (0,rollout_owner/* rolloutOwner */.Jo)(env);
    const ns = cfg.namespace;
    const namespaceExists = await namespaceIsThere(kube, ns);
    if (!namespaceExists && !cfg.dryRun && !cfg.createNamespace)
        throw new errors/* ModelshipError */.W7('input', `input "namespace": namespace "${ns}" does not exist (create-namespace is false)`, { field: 'namespace' });
    // every permission this run and its post step use (creating the namespace included), asked before anything is
    // read or changed in it: a missing one fails here, each named (permissions.ts)
    const needs = { stage: 'rollout', namespace: ns, options: (0,permissions/* rolloutOptions */.iI)(cfg, !namespaceExists && cfg.createNamespace) };
    await (0,permissions/* preflight */.Mz)(kube, (0,permissions/* accessChecks */.iz)(needs), (0,permissions/* rbacHint */.Wy)(needs));
    const stable = namespaceExists ? await kube.get('apps/v1', 'Deployment', ns, cfg.app) : undefined;
    // the preStop hook: the kubelet's sleep action where every kubelet the API server allows runs it
    const plan = planRollout(cfg, patches, owner, { namespaceExists, stable, sleepAction: (0,manifests/* sleepActionServed */.pN)(version) });
    // autoscale: the autoscaler's kind is served (KEDA's ScaledObject needs KEDA), else a clear error now
    if (cfg.autoscale && plan.objects.autoscaler) {
        const warning = await checkAutoscalerServed(kube, cfg.autoscale, plan.objects.autoscaler);
        if (warning)
            log.warning(warning);
    }
    // everything the run may write, through the API server's admission before anything is applied (admission.ts): a
    // refusal, or pods that Pod Security would refuse, fail here. A takeover's stable is written by a full PUT.
    const admit = () => (0,admission/* checkAdmission */.OU)(kube, ns, plan.admitted, log, plan.replaced);
    if (namespaceExists)
        await admit();
    if (cfg.dryRun)
        return dryRun(kube, cfg, plan, log);
    return deploy(kube, cfg, plan, admit, log);
}
/**
 * The image by the digest its signature (and attestation-policy) verified; registry-username with registry-password
 * read a private registry. A username alone is no login (the reusable workflows pass the actor's name by default and
 * a password only when one is given): the signatures are then read as anyone may.
 */
async function verifiedImage(cfg, v, log, env) {
    const { username = '', password = '' } = cfg.registryLogin ?? {};
    const login = (0,dockerconfig/* openAuthConfig */.bd)((0,shared_registry/* parseImageRef */.Q)(cfg.image).registry, password ? username : '', password, env);
    try {
        return (await (0,verify_image/* verifyBeforeUse */.i$)(v, cfg.image, log, login.env)).image;
    }
    finally {
        login.close();
    }
}
/** Whether the namespace exists; a namespaced identity may not read Namespaces: it then deploys into one that exists. */
async function namespaceIsThere(kube, namespace) {
    try {
        return (await kube.get('v1', 'Namespace', undefined, namespace)) !== undefined;
    }
    catch (e) {
        if (!/HTTP 403/.test(e instanceof Error ? e.message : String(e)))
            throw e;
        return true;
    }
}
/** The deploy: the namespace when it is new, the lease, the pull Secret, then the strategy to its decision. */
async function deploy(kube, cfg, plan, admit, log) {
    const ns = cfg.namespace;
    const run = new DeployRun(kube, ns, log, { timeoutS: cfg.timeoutS, verifyUrl: cfg.verifyUrl, protocol: cfg.protocol }, plan.gates);
    // cancellation (SIGINT/SIGTERM from the runner) and the overall timeout both end in a roll back
    run.listenForCancellation();
    const lock = new DeployLock(kube, ns, cfg.app, plan.owner, cfg.leaseDurationS);
    let locked = false;
    let outcome;
    try {
        if (plan.createsNamespace) {
            // Pod Security restricted (manifests.ts), which modelship's own pods meet
            await run.step(`create namespace ${ns}`, () => kube.create((0,manifests/* namespaceManifest */.ds)(ns, { [rollout_owner/* CREATED_BY */.VI]: plan.owner })));
            // the dry run needs the namespace: one this run just made goes again when it refuses
            await run.step('server-side dry run', () => admit().catch(async (e) => {
                await kube.remove('v1', 'Namespace', '', ns).catch(() => false);
                throw e;
            }));
        }
        await run.step('take the deploy lease', () => lock.acquire(cfg.lockTimeoutS, (holder) => log.info(`another deploy holds the lease (${holder}); waiting up to ${cfg.lockTimeoutS} s`)));
        locked = true;
        const secret = plan.objects.pullSecret;
        if (secret)
            await run.step(`apply the image pull Secret ${secret.object.metadata.name} (${secret.registry})`, () => applyMarked(kube, secret.object, plan.owner));
        if (lock.takenOverFrom)
            log.info(`took over the lease from "${lock.takenOverFrom}", which stopped renewing it`);
        outcome = await runStrategy(strategyOf(plan), run);
    }
    finally {
        run.close();
        if (locked)
            await lock.release();
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
function strategyOf(plan) {
    return plan.strategy === 'canary' ? canaryStrategy(plan) : basicStrategy(plan);
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
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(79896);
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(50482);
/* harmony import */ var _util_errors__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(70017);
/* harmony import */ var _util_http__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(44098);
/* harmony import */ var _kube_errors__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(36526);
/* harmony import */ var _admission__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(26760);
/* harmony import */ var _owner__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(19158);








/**
 * The one place that talks to Kubernetes, through @kubernetes/client-node. Objects travel as plain JSON
 * (K8sObject); server-side apply uses field manager `modelship`. Everything else in rollout takes a Kube.
 */
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
            if ((0,_kube_errors__WEBPACK_IMPORTED_MODULE_6__/* .apiError */ .p)(e)?.code === 404)
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
    /**
     * Server-side apply under field manager `modelship`, taking over conflicting fields (force). `as`: another field
     * manager, or no force (a conflict is then an HTTP 409): the hand-over of replicas to an autoscaler (autoscale-writes.ts).
     */
    async apply(obj, dryRun = false, as = {}) {
        const manager = as.fieldManager ?? _owner__WEBPACK_IMPORTED_MODULE_5__/* .FIELD_MANAGER */ .vy;
        try {
            return plain(await this.objects.patch(obj, undefined, dryRun ? 'All' : undefined, manager, as.force ?? true, _kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__/* .PatchStrategy */ .Qve.ServerSideApply));
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
        const path = `${await this.resourcePath(obj)}?${new URLSearchParams({ dryRun: 'All', fieldManager: _owner__WEBPACK_IMPORTED_MODULE_5__/* .FIELD_MANAGER */ .vy, ...(how === 'apply' ? { force: 'true' } : {}) }).toString()}`;
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
    /** Whether the API server serves `kind` in `apiVersion` (discovery): for a custom resource, whether its CRD is installed. */
    async serves(apiVersion, kind) {
        const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
        let r;
        try {
            r = await this.proxy('')(base, { timeoutMs: 15_000 });
        }
        catch (e) {
            throw this.wrap(e, `GET ${base}`);
        }
        if (r.status === 404)
            return false;
        if (r.status !== 200)
            throw new _util_errors__WEBPACK_IMPORTED_MODULE_2__/* .ModelshipError */ .W7('cluster', `Kubernetes: GET ${base} failed (HTTP ${r.status}): ${r.body.toString().slice(0, 200)}`);
        return JSON.parse(r.body.toString()).resources.some((x) => x.kind === kind);
    }
    async replace(obj, dryRun = false) {
        try {
            return plain(await this.objects.replace(obj, undefined, dryRun ? 'All' : undefined, _owner__WEBPACK_IMPORTED_MODULE_5__/* .FIELD_MANAGER */ .vy));
        }
        catch (e) {
            throw this.wrap(e, `replace ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}`);
        }
    }
    async create(obj) {
        try {
            return plain(await this.objects.create(obj, undefined, undefined, _owner__WEBPACK_IMPORTED_MODULE_5__/* .FIELD_MANAGER */ .vy));
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
            if ((0,_kube_errors__WEBPACK_IMPORTED_MODULE_6__/* .apiError */ .p)(e)?.code === 404)
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
        const wanted = lists.flatMap((l) => l.resources
            .filter((r) => r.namespaced && !r.name.includes('/') && r.verbs.includes('list') && !(l.groupVersion === 'v1' && ['Event', 'Endpoints'].includes(r.kind)))
            .map((r) => ({ ...r, groupVersion: l.groupVersion })));
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
            const r = await this.authz.createSelfSubjectAccessReview({
                body: { spec: { resourceAttributes: { verb, resource: res, subresource, group, namespace } } },
            });
            return r.status?.allowed === true;
        }
        catch (e) {
            throw this.wrap(e, `check permission to ${verb} ${resource}`);
        }
    }
    /** Who the kubeconfig's user is to the API server (a SelfSubjectReview, 1.28+), else the kubeconfig's user entry. */
    async whoAmI() {
        try {
            const r = await this.kc
                .makeApiClient(_kubernetes_client_node__WEBPACK_IMPORTED_MODULE_1__/* .AuthenticationV1Api */ .At)
                .createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
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
            const ro = {
                method: opts.method ?? (opts.body ? 'POST' : 'GET'),
                headers: { ...(opts.headers ?? {}) },
                timeout: opts.timeoutMs ?? 30_000,
            };
            await this.kc.applyToHTTPSOptions(ro);
            return (0,_util_http__WEBPACK_IMPORTED_MODULE_3__/* .exchange */ .c)(url, ro, opts.body);
        };
    }
    wrap(e, what) {
        const a = (0,_kube_errors__WEBPACK_IMPORTED_MODULE_6__/* .apiError */ .p)(e);
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