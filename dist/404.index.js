"use strict";
exports.id = 404;
exports.ids = [404,158];
exports.modules = {

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


/***/ }),

/***/ 19158:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   Jo: () => (/* binding */ rolloutOwner),
/* harmony export */   VI: () => (/* binding */ CREATED_BY),
/* harmony export */   dR: () => (/* binding */ annotated),
/* harmony export */   pk: () => (/* binding */ OWNER_LABEL),
/* harmony export */   q: () => (/* binding */ kubeconfigFile),
/* harmony export */   vm: () => (/* binding */ PROMOTED_BY),
/* harmony export */   vy: () => (/* binding */ FIELD_MANAGER)
/* harmony export */ });
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(79896);
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var os__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(70857);
/* harmony import */ var os__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__webpack_require__.n(os__WEBPACK_IMPORTED_MODULE_1__);


/** Who runs this deploy: the workflow run and job on GitHub, else this process (the Lease holder, the canary's owner label). */
function rolloutOwner(env = process.env) {
    const raw = env.GITHUB_RUN_ID ? `gh-${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}-${env.GITHUB_JOB ?? 'job'}` : `${os__WEBPACK_IMPORTED_MODULE_1__.hostname()}-${process.pid}`;
    return raw
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .slice(0, 63)
        .replace(/[^A-Za-z0-9]+$/, '');
}
/** For the post step: write an inline kubeconfig to a private file the post step can read again. */
function kubeconfigFile(source, dir = process.env.RUNNER_TEMP || os__WEBPACK_IMPORTED_MODULE_1__.tmpdir()) {
    if (source === '' || !/\bapiVersion\s*:|\bclusters\s*:/.test(source))
        return source;
    const file = `${dir}/modelship-kubeconfig-${process.pid}-${Date.now()}`;
    fs__WEBPACK_IMPORTED_MODULE_0__.writeFileSync(file, source, { mode: 0o600 });
    return file;
}
/**
 * What a run leaves on the objects it makes, so its post step can tell them apart after the main process was killed:
 * the canary's Deployment and Service carry the run's owner as a label; an object the run created (it was not
 * there before: the namespace, the main Service, the pull Secret, the first stable Deployment) carries it in the
 * annotation CREATED_BY; the stable Deployment a run promoted (or, basic strategy, verified) carries it in
 * PROMOTED_BY. Server-side apply drops an annotation the next apply leaves out, so the next run's apply of the same
 * object clears them: only the last run that made an object can ever claim it.
 */
/** The field manager of modelship's own writes (server-side apply, replace, create): kube.ts, autoscale-writes.ts. */
const FIELD_MANAGER = 'modelship';
const OWNER_LABEL = 'modelship.dev/owner';
const CREATED_BY = 'modelship.dev/created-by';
const PROMOTED_BY = 'modelship.dev/promoted-by';
/** `obj` with annotations added (a copy). */
function annotated(obj, annotations) {
    return { ...obj, metadata: { ...obj.metadata, annotations: { ...(obj.metadata.annotations ?? {}), ...annotations } } };
}


/***/ })

};
;