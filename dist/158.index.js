"use strict";
exports.id = 158;
exports.ids = [158];
exports.modules = {

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