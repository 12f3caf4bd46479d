"use strict";
exports.id = 769;
exports.ids = [769,158,856];
exports.modules = {

/***/ 36769:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   action: () => (/* binding */ action),
/* harmony export */   post: () => (/* binding */ post),
/* harmony export */   run: () => (/* binding */ run)
/* harmony export */ });
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(79896);
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _actions_core__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(46058);
/* harmony import */ var _config__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(38354);
/* harmony import */ var _run__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(79786);
/* harmony import */ var _util_errors__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(70017);
/* harmony import */ var _smoke__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(38697);
/* harmony import */ var _rollout_owner__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(19158);
/* harmony import */ var _preview__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(99856);








const actionLogger = {
    info: (m) => _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .info */ .pq(m),
    warning: (m, where) => _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .warning */ .$e(m, where?.file ? { file: where.file, startLine: where.line, startColumn: where.column } : undefined),
    group: (name, fn) => _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .group */ .Os(name, fn),
};
/**
 * The post step (action.yml `post:`, always run): clean up what a cancelled or failed main step left behind.
 * The runner marks it by the state the main step saved.
 */
async function post() {
    try {
        const removed = await (0,_smoke__WEBPACK_IMPORTED_MODULE_5__/* .cleanupSmokeContainers */ .WC)(actionLogger);
        const state = _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .getState */ .Gu('rollout');
        if (state) {
            const r = JSON.parse(state);
            try {
                const { cleanupRollout } = await Promise.all(/* import() */[__webpack_require__.e(482), __webpack_require__.e(139), __webpack_require__.e(57)]).then(__webpack_require__.bind(__webpack_require__, 46057));
                removed.push(...(await cleanupRollout(r.kubeconfig, r.namespace, r.app, r.owner, actionLogger)));
            }
            finally {
                if (r.temporary)
                    fs__WEBPACK_IMPORTED_MODULE_0__.rmSync(r.kubeconfig, { force: true });
            }
        }
        if (removed.length === 0)
            _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .info */ .pq('modelship post: nothing to clean up');
    }
    catch (e) {
        _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .warning */ .$e(`modelship post: cleanup failed: ${e.message}`);
    }
}
/** The GitHub Action: inputs from the runner (INPUT_*), outputs to GITHUB_OUTPUT, a job summary, annotations. */
async function action() {
    _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .saveState */ .LZ('isPost', 'true');
    try {
        for (const i of _config__WEBPACK_IMPORTED_MODULE_2__/* .INPUTS */ .mc) {
            if (i.secret) {
                const v = _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .getInput */ .V4(i.name);
                if (v)
                    _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .setSecret */ .Pq(v);
            }
        }
        const cfg = (0,_config__WEBPACK_IMPORTED_MODULE_2__/* .readConfig */ .Xg)((name) => _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .getInput */ .V4(name));
        if ((cfg.stage === 'rollout' || cfg.stage === 'preview' || cfg.stage === 'pipeline') && !cfg.rollout.dryRun) {
            // what the post step needs to remove a canary and a lease a cancelled run leaves behind
            const kubeconfig = (0,_rollout_owner__WEBPACK_IMPORTED_MODULE_6__/* .kubeconfigFile */ .q)(cfg.rollout.kubeconfig);
            const namespace = cfg.stage === 'preview' ? (0,_preview__WEBPACK_IMPORTED_MODULE_7__.previewNamespace)(cfg.rollout.app, (0,_preview__WEBPACK_IMPORTED_MODULE_7__.prNumber)(cfg.preview.prNumber)) : cfg.rollout.namespace;
            _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .saveState */ .LZ('rollout', JSON.stringify({ kubeconfig, namespace, app: cfg.rollout.app, owner: (0,_rollout_owner__WEBPACK_IMPORTED_MODULE_6__/* .rolloutOwner */ .Jo)(), temporary: kubeconfig !== cfg.rollout.kubeconfig }));
            cfg.rollout.kubeconfig = cfg.preview.rollout.kubeconfig = cfg.cleanup.kubeconfig = kubeconfig;
        }
        const result = await (0,_run__WEBPACK_IMPORTED_MODULE_3__/* .runStage */ .S)(cfg, actionLogger);
        for (const [k, v] of Object.entries(result.outputs))
            _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .setOutput */ .uH(k, v);
        if (process.env.GITHUB_STEP_SUMMARY)
            await _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .summary */ .z.addRaw(result.summary, true).write();
        if (!result.ok)
            _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .setFailed */ .C1(result.failure ?? 'stage failed');
    }
    catch (e) {
        const failure = (0,_util_errors__WEBPACK_IMPORTED_MODULE_4__/* .externalFailure */ .Qf)(e);
        if ((0,_util_errors__WEBPACK_IMPORTED_MODULE_4__/* .isModelshipError */ .yh)(e)) {
            const loc = e.location;
            // one annotation that points at the file and line (setFailed would add a second, location-less one)
            _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .error */ .z3(e.message, loc.file
                ? { file: loc.file, startLine: loc.line, startColumn: loc.column, title: `modelship: ${e.code} error` }
                : { title: `modelship: ${e.code} error` });
            process.exitCode = 1;
        }
        else if (failure) {
            // another system failed (the GitHub API, the network): its failure, named, not a bug in modelship
            _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .error */ .z3(failure.message, { title: `modelship: ${failure.system} failure` });
            process.exitCode = 1;
        }
        else {
            _actions_core__WEBPACK_IMPORTED_MODULE_1__/* .setFailed */ .C1(`internal error (a bug in modelship): ${e.stack ?? String(e)}`);
        }
    }
}
/** The action's logic as @github/local-action calls it (`local-action run . src/action/main.ts .env`). */
const run = action;


/***/ }),

/***/ 99856:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   commentMarker: () => (/* binding */ commentMarker),
/* harmony export */   commentStep: () => (/* binding */ commentStep),
/* harmony export */   deletePreviewTag: () => (/* binding */ deletePreviewTag),
/* harmony export */   deletePreviewTags: () => (/* binding */ deletePreviewTags),
/* harmony export */   isGhcr: () => (/* binding */ isGhcr),
/* harmony export */   prNumber: () => (/* binding */ prNumber),
/* harmony export */   previewComment: () => (/* binding */ previewComment),
/* harmony export */   previewNamespace: () => (/* binding */ previewNamespace),
/* harmony export */   previewTags: () => (/* binding */ previewTags),
/* harmony export */   runCleanup: () => (/* binding */ runCleanup),
/* harmony export */   runPreview: () => (/* binding */ runPreview),
/* harmony export */   upsertComment: () => (/* binding */ upsertComment)
/* harmony export */ });
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(79896);
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _util_errors__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(70017);
/* harmony import */ var _shared_registry__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(9222);
/* harmony import */ var _rollout_permissions__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(69141);




/**
 * PR deploy previews: `preview` deploys the PR's image to namespace `<app>-pr-<N>` (the rollout stage, so the
 * same verification) and posts or updates one PR comment with the URL, parity and smoke figures; `cleanup` (on PR
 * close) deletes the namespace and the `pr-<N>` image tag, and marks the comment. The GitHub API goes through
 * @actions/github (GITHUB_API_URL, GITHUB_REPOSITORY, as on a runner). A tag on ghcr.io goes through the GitHub
 * Packages API (ghcr.io refuses the registry API's manifest DELETE), any other registry's through the registry API.
 * Cleanup removes only what the preview made (pr-<N>, the build's cache ref buildcache-pr-<N>, and the sha-<7> tag the
 * PR's build pushed with them), never a manifest or package version another tag points to. The comment comes after the work: the GitHub API's failure there is a
 * warning, and the stage's outputs stand.
 */
/** The PR number: the input, else the pull_request event's (GITHUB_EVENT_PATH). */
function prNumber(given, env = process.env) {
    if (given !== undefined)
        return given;
    let payload = {};
    if (env.GITHUB_EVENT_PATH && fs__WEBPACK_IMPORTED_MODULE_0__.existsSync(env.GITHUB_EVENT_PATH))
        payload = JSON.parse(fs__WEBPACK_IMPORTED_MODULE_0__.readFileSync(env.GITHUB_EVENT_PATH, 'utf8'));
    const n = payload.pull_request?.number ?? payload.number;
    if (!n)
        throw new _util_errors__WEBPACK_IMPORTED_MODULE_1__/* .ModelshipError */ .W7('input', `input "pr-number": not given, and the event (${env.GITHUB_EVENT_NAME ?? 'none'}) has no pull_request; run on pull_request or pass pr-number`, { field: 'pr-number' });
    return n;
}
const previewNamespace = (app, pr) => `${app}-pr-${pr}`.slice(0, 63);
const commentMarker = (app) => `<!-- modelship-preview:${app} -->`;
/** The PR comment, as markdown (pure). */
function previewComment(preview) {
    const r = preview.report;
    const parity = r.parity ? `${r.parity}${r['max-abs-diff'] ? ` (max \\|Δ\\| ${Number(r['max-abs-diff']).toExponential(2)})` : ''}` : 'not reported';
    const smoke = r['latency-p50-ms']
        ? `p50 ${r['latency-p50-ms']} ms, p95 ${r['latency-p95-ms']} ms, p99 ${r['latency-p99-ms'] ?? '–'} ms${r['throughput-rps'] ? `, ${r['throughput-rps']} req/s` : ''}`
        : 'not reported';
    const ok = preview.decision === 'promoted';
    return [
        commentMarker(preview.app),
        `### ${ok ? '🚀' : '❌'} modelship preview: \`${preview.app}\` for #${preview.pr}`,
        '',
        '| | |',
        '|---|---|',
        `| preview | ${ok ? preview.url : `not deployed: ${preview.reason.split('\n')[0].replace(/\|/g, '\\|')}`} |`,
        `| namespace | \`${preview.namespace}\` |`,
        `| image | \`${preview.image}\` |`,
        `| parity against Caffe | ${parity} |`,
        `| smoke latency | ${smoke} |`,
        `| preview golden requests | ${preview.verifyP95 ? `p95 ${preview.verifyP95} ms` : '–'} (${preview.decision}) |`,
        '',
        preview.sha
            ? `<sub>Updated for ${preview.sha.slice(0, 7)}. This comment is updated on every push and marked when the PR closes.</sub>`
            : '<sub>This comment is updated on every push and marked when the PR closes.</sub>',
        '',
    ].join('\n');
}
/** The octokit of the run: @actions/github's, with the token, against GITHUB_API_URL (api.github.com by default). */
async function octokitFor(token, env) {
    const github = await Promise.all(/* import() */[__webpack_require__.e(119), __webpack_require__.e(413)]).then(__webpack_require__.bind(__webpack_require__, 92413));
    return github.getOctokit(token, env.GITHUB_API_URL ? { baseUrl: env.GITHUB_API_URL.replace(/\/+$/, '') } : {});
}
/** The repository the PR comment goes to (GITHUB_REPOSITORY, owner/repo). */
function commentRepository(env) {
    const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
    if (!owner || !repo)
        throw new _util_errors__WEBPACK_IMPORTED_MODULE_1__/* .ModelshipError */ .W7('input', 'GITHUB_REPOSITORY (owner/repo) is not set: the PR comment needs the repository (or set comment: false)', {
            field: 'comment',
        });
    return [owner, repo];
}
/** Post the comment, or update the one this app posted before (found by its marker). */
async function upsertComment(token, pr, marker, body, onlyUpdate = false, env = process.env) {
    if (!token)
        throw new _util_errors__WEBPACK_IMPORTED_MODULE_1__/* .ModelshipError */ .W7('input', 'input "github-token": needed to comment on the pull request (or set comment: false)', { field: 'github-token' });
    const [owner, repo] = commentRepository(env);
    const octokit = await octokitFor(token, env);
    const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: pr, per_page: 100 });
    const mine = comments.find((c) => c.body?.includes(marker));
    if (mine) {
        const r = await octokit.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
        return { id: r.data.id, url: r.data.html_url };
    }
    if (onlyUpdate)
        return undefined;
    const r = await octokit.rest.issues.createComment({ owner, repo, issue_number: pr, body });
    return { id: r.data.id, url: r.data.html_url };
}
/**
 * The PR comment step, run after the stage's work is done: a failure of the GitHub API or of the network on the way
 * (an answer like 502, a host that does not resolve) is a warning naming the call, and the stage goes on with its
 * outputs; anything else (a bug, a ModelshipError) still throws.
 */
async function commentStep(log, post) {
    try {
        return { value: await post() };
    }
    catch (e) {
        const failure = (0,_util_errors__WEBPACK_IMPORTED_MODULE_1__/* .externalFailure */ .Qf)(e);
        if (!failure)
            throw e;
        const hint = failure.status === 401 || failure.status === 403 ? ' (the github-token needs pull-requests: write, or issues: write, on the repository)' : '';
        const warning = `PR comment not posted: ${failure.message}${hint}`;
        log.warning(warning);
        return { warning };
    }
}
/** ghcr.io (any case): its tags are deleted through the GitHub Packages API. */
const isGhcr = (registry) => registry.toLowerCase() === 'ghcr.io';
/** The tags a preview of PR `pr` makes in the image repository: the image's pr-<N>, the build's cache ref. */
const previewTags = (pr) => [`pr-${pr}`, (0,_shared_registry__WEBPACK_IMPORTED_MODULE_2__/* .cacheTag */ .z)(pr)];
/**
 * Whether the other tags on a manifest of the preview were pushed by the PR's build itself, and so go with it: each a
 * `sha-<7>` tag (the image stage tags every build so), on an image whose labels say it was built as pr-<N>
 * (org.opencontainers.image.version) from that commit (org.opencontainers.image.revision). Any other tag (a branch,
 * buildcache, a release someone tagged on it) keeps the manifest.
 */
function pushedByPrBuild(repository, pr, auth) {
    return async (others, digest) => {
        const shas = others.map((t) => /^sha-([0-9a-f]{7})$/.exec(t)?.[1]);
        if (pr === undefined || shas.some((x) => !x))
            return false;
        const labels = (await (0,_shared_registry__WEBPACK_IMPORTED_MODULE_2__/* .fetchImageConfig */ .mz)(`${repository}@${digest}`, auth)).config?.Labels ?? {};
        const revision = labels['org.opencontainers.image.revision'] ?? '';
        return labels['org.opencontainers.image.version'] === `pr-${pr}` && shas.every((x) => revision.startsWith(x));
    };
}
/** The PR number of the preview's tags (its pr-<N>). */
const prOfTags = (tags) => tags.map((t) => /^pr-(\d+)$/.exec(t)?.[1]).find(Boolean);
/** `repo:a and :b` (tags of one repository, in a message). */
const named = (repository, tags) => `${repository}:${tags
    .map((t) => `:${t}`)
    .join(' and ')
    .slice(1)}`;
const tagList = (tags) => tags.map((t) => `:${t}`).join(', ');
/** A hint for a refusal, by the status in its text. */
function refusalHint(message, alone) {
    const status = Number(/\b(?:HTTP|answered) (\d{3})\b/.exec(message)?.[1]);
    if (status === 401 || status === 403)
        return ' (the registry credentials, registry-username and registry-password, are missing or may not delete)';
    if (alone && (status === 400 || status === 405))
        return ' (a registry that deletes manifests only by digest, such as distribution 2.x, cannot remove one tag of a manifest that other tags share)';
    if (status === 405)
        return ' (the registry does not allow deleting manifests; a distribution registry needs REGISTRY_STORAGE_DELETE_ENABLED=true)';
    return '';
}
/**
 * Delete a preview tag (`registry/repository:pr-<N>`): on ghcr.io the package version carrying it, through the
 * GitHub Packages API with `githubToken`; elsewhere through the registry API with `registryAuth`, the manifest only
 * when no other tag points to it (but the sha-<7> tag the PR's build pushed with it, told by the image's labels), else
 * the tag alone where the registry can. A tag that does not exist is nothing to remove. Whatever stops the deletion (a registry that refuses deletes, a token without the permission, a manifest or
 * version that carries other tags too) comes back as a warning with its reason.
 */
async function deletePreviewTag(ref, access) {
    let parsed;
    try {
        parsed = (0,_shared_registry__WEBPACK_IMPORTED_MODULE_2__/* .parseImageRef */ .Q)(ref);
    }
    catch (e) {
        return { warning: `image ${ref} not deleted: ${e.message}` };
    }
    const tag = parsed.tag;
    if (!tag || parsed.digest)
        return { warning: `image ${ref} not deleted: expected registry/repository:tag` };
    const r = await deletePreviewTags(ref.slice(0, ref.length - tag.length - 1), [tag], access);
    return { ...(r.removed.length ? { removed: r.removed.join('\n') } : {}), ...(r.warnings.length ? { warning: r.warnings.join('\n') } : {}) };
}
/**
 * Delete tags the preview made (`tags` of `repository`, registry/repository without a tag) and nothing else: see
 * deletePreviewTag. Tags that share one manifest or package version are removed together.
 */
async function deletePreviewTags(repository, tags, access) {
    const kept = (which, why) => ({ removed: [], warnings: [`image ${named(repository, which)} not deleted: ${why}`] });
    let registry;
    try {
        registry = (0,_shared_registry__WEBPACK_IMPORTED_MODULE_2__/* .parseImageRef */ .Q)(`${repository}:${tags[0]}`).registry;
    }
    catch (e) {
        return kept(tags, e.message);
    }
    const pr = prOfTags(tags);
    const claim = (auth) => pushedByPrBuild(repository, pr === undefined ? undefined : Number(pr), auth);
    // ghcr.io's registry API takes the GitHub token as a password (to read an image's labels)
    if (isGhcr(registry))
        return deleteGhcrTags(repository, tags, access.githubToken, access.env ?? process.env, claim(access.registryAuth ?? (access.githubToken ? { username: 'modelship', password: access.githubToken } : undefined)));
    let results;
    try {
        results = await (0,_shared_registry__WEBPACK_IMPORTED_MODULE_2__/* .removeTags */ ._M)(repository, tags, access.registryAuth, claim(access.registryAuth));
    }
    catch (e) {
        const message = e.message;
        return kept(tags, `${message}${refusalHint(message, false)}`);
    }
    const out = { removed: [], warnings: [] };
    for (const x of results) {
        for (const t of x.removed)
            out.removed.push(x.how === 'manifest'
                ? `image ${repository}:${t} (${x.digest})`
                : `image ${repository}:${t} (the tag alone: ${x.digest} stays${x.others.length ? `, tagged ${tagList(x.others)}` : ''})`);
        const stayed = x.tags.filter((t) => !x.removed.includes(t));
        if (stayed.length) {
            const refused = x.refused ?? 'no answer';
            const why = x.unlisted
                ? `the repository's tags could not be listed (${x.unlisted}), so other tags may point to its manifest ${x.digest}; the registry refused to delete the tag alone: ${refused}${refusalHint(refused, true)}`
                : x.others.length
                    ? `its manifest ${x.digest} is also tagged ${tagList(x.others)}, which deleting the manifest would delete too; the registry refused to delete the tag alone: ${refused}${refusalHint(refused, true)}`
                    : `registry refused to delete ${named(repository, stayed)} (${x.digest}): ${refused}${refusalHint(refused, false)}`;
            out.warnings.push(`image ${named(repository, stayed)} not deleted: ${why}`);
        }
        if (x.lost?.length)
            out.warnings.push(`image ${named(repository, x.removed)}: after the tag deletion ${tagList(x.lost)} no longer point${x.lost.length === 1 ? 's' : ''} to ${x.digest} (the registry deleted more than the tag)`);
    }
    return out;
}
/** An octokit RequestError (or anything else) as one line: the request, the status and GitHub's message. */
function apiFailure(e) {
    const failure = (0,_util_errors__WEBPACK_IMPORTED_MODULE_1__/* .externalFailure */ .Qf)(e);
    if (!failure?.call)
        return e.message;
    const hint = failure.status === 401 || failure.status === 403
        ? " (the github-token needs packages: write and admin access to the package: a workflow's GITHUB_TOKEN has it for packages its repository published; otherwise grant the repository the Admin role under the package's Manage Actions access, or use a token with delete:packages)"
        : failure.status === 404
            ? ' (no such package, or the github-token cannot see it)'
            : '';
    return `${failure.message.replace(/^GitHub API: /, '')}${hint}`;
}
/** ghcr.io/<owner>/<package>:<tag> through the GitHub Packages API (the registry API answers 405 UNSUPPORTED). */
async function deleteGhcrTags(repository, tags, token, env, claim) {
    const out = { removed: [], warnings: [] };
    const kept = (which, why) => ({
        removed: out.removed,
        warnings: [...out.warnings, `image ${named(repository, which)} not deleted: ${why}`],
    });
    const path = (0,_shared_registry__WEBPACK_IMPORTED_MODULE_2__/* .parseImageRef */ .Q)(`${repository}:${tags[0]}`).repository;
    const slash = path.indexOf('/');
    if (slash < 0)
        return kept(tags, 'a ghcr.io image is ghcr.io/<owner>/<package>:<tag>');
    const owner = path.slice(0, slash);
    // the package is the rest of the path (octokit encodes its slashes as %2F)
    const common = { package_type: 'container', package_name: path.slice(slash + 1) };
    if (!token)
        return kept(tags, 'ghcr.io tags are deleted through the GitHub Packages API, which needs input "github-token"');
    let pending = tags;
    try {
        const octokit = await octokitFor(token, env);
        const org = (await octokit.rest.users.getByUsername({ username: owner })).data.type === 'Organization';
        const pages = org
            ? octokit.paginate.iterator(octokit.rest.packages.getAllPackageVersionsForPackageOwnedByOrg, { ...common, org: owner, state: 'active', per_page: 100 })
            : octokit.paginate.iterator(octokit.rest.packages.getAllPackageVersionsForPackageOwnedByUser, { ...common, username: owner, per_page: 100 });
        // the versions that carry our tags (a tag is on one version at most): every page until each is found
        const versions = [];
        const found = new Set();
        for await (const page of pages) {
            for (const v of page.data) {
                const vt = v.metadata?.container?.tags ?? [];
                if (vt.some((t) => tags.includes(t))) {
                    versions.push({ id: v.id, name: v.name, tags: vt });
                    for (const t of vt)
                        if (tags.includes(t))
                            found.add(t);
                }
            }
            if (found.size === tags.length)
                break;
        }
        pending = [];
        for (const version of versions) {
            let mine = version.tags.filter((t) => tags.includes(t));
            const others = version.tags.filter((t) => !tags.includes(t));
            // the PR build's own sha-<7> tag goes with the version (a version's name is its manifest digest)
            if (others.length && (await claim(others, version.name).catch(() => false)))
                mine = version.tags;
            else if (others.length) {
                out.warnings.push(`image ${named(repository, mine)} not deleted: its package version ${version.id} (${version.name}) also carries ${tagList(others)}; deleting the version would delete those tags too, and GitHub has no API to remove one tag from a version`);
                continue;
            }
            pending = mine;
            if (org)
                await octokit.rest.packages.deletePackageVersionForOrg({ ...common, org: owner, package_version_id: version.id });
            else
                await octokit.rest.packages.deletePackageVersionForUser({ ...common, username: owner, package_version_id: version.id });
            pending = [];
            for (const t of mine)
                out.removed.push(`image ${repository}:${t} (${version.name}, package version ${version.id})`);
        }
        return out;
    }
    catch (e) {
        return kept(pending.length ? pending : tags, `GitHub Packages API: ${apiFailure(e)}`);
    }
}
async function runPreview(cfg, log, env = process.env) {
    const pr = prNumber(cfg.prNumber, env);
    const app = cfg.rollout.app;
    const namespace = previewNamespace(app, pr);
    if (cfg.comment && !cfg.githubToken)
        throw new _util_errors__WEBPACK_IMPORTED_MODULE_1__/* .ModelshipError */ .W7('input', 'input "github-token": needed to comment on the pull request (or set comment: false)', { field: 'github-token' });
    if (cfg.comment && !cfg.rollout.dryRun)
        commentRepository(env); // checked before the rollout, not after it
    const { runRollout } = await Promise.all(/* import() */[__webpack_require__.e(482), __webpack_require__.e(139), __webpack_require__.e(57), __webpack_require__.e(158)]).then(__webpack_require__.bind(__webpack_require__, 46057));
    const { Kube } = await Promise.all(/* import() */[__webpack_require__.e(482), __webpack_require__.e(404)]).then(__webpack_require__.bind(__webpack_require__, 57404));
    const kube = Kube.load(cfg.rollout.kubeconfig);
    // what a preview needs (its namespace made, the rollout in it, its post step), asked before anything is changed,
    // whether or not this push's namespace exists yet: every missing permission named (rollout/permissions.ts)
    const needs = { stage: 'preview', namespace, options: (0,_rollout_permissions__WEBPACK_IMPORTED_MODULE_3__/* .rolloutOptions */ .iI)(cfg.rollout, true) };
    await (0,_rollout_permissions__WEBPACK_IMPORTED_MODULE_3__/* .preflight */ .Mz)(kube, (0,_rollout_permissions__WEBPACK_IMPORTED_MODULE_3__/* .accessChecks */ .iz)(needs), (0,_rollout_permissions__WEBPACK_IMPORTED_MODULE_3__/* .rbacHint */ .Wy)(needs));
    const r = await runRollout({ ...cfg.rollout, namespace, createNamespace: true }, log, env);
    const server = kube.server.replace(/\/$/, '');
    const url = cfg.previewUrl
        ? cfg.previewUrl
            .replace(/\{\{\s*app\s*\}\}/g, app)
            .replace(/\{\{\s*namespace\s*\}\}/g, namespace)
            .replace(/\{\{\s*pr\s*\}\}/g, String(pr))
        : `${server}/api/v1/namespaces/${namespace}/services/${app}:http/proxy/v2/models/${cfg.rollout.modelName}`;
    const body = previewComment({
        app,
        pr,
        namespace,
        url,
        image: cfg.rollout.image,
        decision: r.outputs.decision,
        reason: r.outputs.reason,
        verifyP95: r.outputs['verify-latency-p95-ms'],
        report: cfg.smokeReport,
        sha: env.GITHUB_SHA,
    });
    // the preview is deployed: the comment's failure (the GitHub API, the network) is a warning, the outputs stand
    const posted = cfg.comment && !cfg.rollout.dryRun
        ? await log.group('PR comment', () => commentStep(log, () => upsertComment(cfg.githubToken, pr, commentMarker(app), body, false, env)))
        : {};
    const comment = posted.value;
    if (comment)
        log.info(`PR comment ${comment.url}`);
    return {
        ...r,
        outputs: {
            ...r.outputs,
            'preview-url': r.outputs.decision === 'promoted' ? url : '',
            'preview-namespace': namespace,
            'comment-id': comment ? String(comment.id) : '',
        },
        summary: `${r.summary}\n### PR preview\n\n${body}${posted.warning ? `\n> [!WARNING]\n> ${posted.warning}\n` : ''}`,
    };
}
async function runCleanup(cfg, log, env = process.env) {
    const pr = prNumber(cfg.prNumber, env);
    const namespace = previewNamespace(cfg.app, pr);
    if (cfg.comment && cfg.githubToken)
        commentRepository(env); // checked before anything is removed
    const removed = [];
    const { Kube } = await Promise.all(/* import() */[__webpack_require__.e(482), __webpack_require__.e(404)]).then(__webpack_require__.bind(__webpack_require__, 57404));
    const kube = Kube.load(cfg.kubeconfig);
    const needs = { stage: 'cleanup', namespace, options: [] };
    await (0,_rollout_permissions__WEBPACK_IMPORTED_MODULE_3__/* .preflight */ .Mz)(kube, (0,_rollout_permissions__WEBPACK_IMPORTED_MODULE_3__/* .accessChecks */ .iz)(needs), (0,_rollout_permissions__WEBPACK_IMPORTED_MODULE_3__/* .rbacHint */ .Wy)(needs));
    const ns = await kube.get('v1', 'Namespace', undefined, namespace);
    if (ns) {
        // only a namespace the preview created: never a namespace someone else made under that name
        if (ns.metadata.labels?.['app.kubernetes.io/managed-by'] !== 'modelship')
            throw new _util_errors__WEBPACK_IMPORTED_MODULE_1__/* .ModelshipError */ .W7('input', `namespace ${namespace} was not created by modelship (no app.kubernetes.io/managed-by=modelship label); not deleting it`, { field: 'app' });
        await kube.remove('v1', 'Namespace', '', namespace);
        removed.push(`namespace ${namespace}`);
    }
    const warnings = [];
    if (cfg.image) {
        // the repository, without a tag or digest the input may carry (a registry's :port stays); the tags the preview
        // made: the image's pr-<N> and its build's cache ref
        const repository = cfg.image.replace(/@sha256:[0-9a-f]{64}$/, '').replace(/:[A-Za-z0-9_][A-Za-z0-9_.-]*$/, '');
        const tags = await deletePreviewTags(repository, previewTags(pr), {
            githubToken: cfg.githubToken,
            registryAuth: cfg.registryUsername ? { username: cfg.registryUsername, password: cfg.registryPassword } : undefined,
            env,
        });
        removed.push(...tags.removed);
        warnings.push(...tags.warnings);
    }
    for (const w of warnings)
        log.warning(w);
    const notes = warnings.map((w) => `\n> [!WARNING]\n> ${w.replace(/\n/g, ' ')}\n`).join('');
    let posted = {};
    if (cfg.comment && cfg.githubToken) {
        const body = `${commentMarker(cfg.app)}\n### 🧹 modelship preview: \`${cfg.app}\` for #${pr} removed\n\nThe PR closed: ${removed.length ? removed.map((x) => `\`${x}\``).join(', ') : 'nothing was left'} removed.\n${notes}`;
        // what was removed is gone either way: the comment's failure (the GitHub API, the network) is a warning
        posted = await commentStep(log, () => upsertComment(cfg.githubToken, pr, commentMarker(cfg.app), body, true, env));
    }
    const comment = posted.value;
    for (const x of removed)
        log.info(`removed ${x}`);
    return {
        outputs: { removed: removed.join('\n'), 'preview-namespace': namespace, 'comment-id': comment ? String(comment.id) : '' },
        summary: `## modelship cleanup\n\nPR #${pr}: ${removed.length ? removed.map((x) => `\`${x}\``).join(', ') : 'nothing to remove'}.\n${notes}${posted.warning ? `\n> [!WARNING]\n> ${posted.warning}\n` : ''}`,
        ok: true,
    };
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