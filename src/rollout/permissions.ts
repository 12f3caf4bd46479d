import { ModelshipError } from '../util/errors';

/**
 * The deploy identity's least privilege, as data: every Kubernetes API request the rollout (both strategies, with
 * or without create-namespace, the pull Secret, GPU pods), the preview (deploy and cleanup) and the action's post
 * step make, by resource and verb, with what needs it and why. From this one table come the RBAC objects
 * `modelship rbac` prints (a namespaced Role; ClusterRoles only for what must be cluster-scoped) and the preflight:
 * before a stage changes anything it asks the API server (SelfSubjectAccessReviews, in parallel) for each permission
 * this run will use, and fails naming every one it lacks.
 *
 * How the requests map to verbs: a read by name is `get`, a list `list`; server-side apply is `patch`, and `create`
 * too when the object is new (the API server authorizes the create an apply makes; a dry run as much); a replace is
 * `update`; a deletion `delete`. The API server's service and pod proxies are the subresources `services/proxy` and
 * `pods/proxy`: `get` for a GET through them, `create` for a POST. Needing no RBAC: GET /version and discovery
 * (system:public-info-viewer, system:discovery), and the SelfSubjectAccessReviews and SelfSubjectReview themselves
 * (system:basic-user). Prometheus (the metrics gate) and verify-url are reached directly, not through the API server.
 */

/** The stages whose requests the table lists; `post`: the action's post step after a killed rollout (cleanupRollout). */
export type PermissionStage = 'rollout' | 'preview' | 'cleanup' | 'post';

/**
 * The run's options that need more: `create-namespace` (the namespace does not exist and the run creates it: a
 * rollout with create-namespace, every preview), `create-pull-secret`, `gpu` (each pod asked where it computes), and
 * `service-proxy` (the model metadata and golden requests through the API server's service proxy: every run
 * without verify-url), `autoscale` (the stable's HorizontalPodAutoscaler or KEDA ScaledObject), `pod-metrics` (the
 * analysis against the stable reads the pods' own /metrics: compare-with-stable without prometheus-url).
 */
export type PermissionOption = 'create-namespace' | 'create-pull-secret' | 'gpu' | 'service-proxy' | 'autoscale' | 'pod-metrics';

export interface Permission {
  /** API group ('' for the core group) */
  group: string;
  /** the resource, or resource/subresource (services/proxy, pods/proxy, pods/log) */
  resource: string;
  verbs: string[];
  /** namespace: in the deploy (or preview) namespace; cluster: a cluster-scoped resource (namespaces) */
  scope: 'namespace' | 'cluster';
  /** the stages that make these requests (a preview runs the rollout too) */
  stages: PermissionStage[];
  /** only with this option (undefined: every run of those stages) */
  option?: PermissionOption;
  /** what the requests are for */
  why: string;
  /**
   * Set when the stage works without it, and what it does then: such an entry is neither generated into the RBAC
   * objects nor checked before a run.
   */
  optional?: string;
}

export const PERMISSIONS: readonly Permission[] = [
  // ---- the Deployments: the stable <app> and the canary <app>-canary
  {
    group: 'apps',
    resource: 'deployments',
    verbs: ['get'],
    scope: 'namespace',
    stages: ['rollout', 'post'],
    why: 'read the stable and canary Deployments and follow their rollouts',
  },
  {
    group: 'apps',
    resource: 'deployments',
    verbs: ['create', 'patch'],
    scope: 'namespace',
    stages: ['rollout'],
    why: 'apply the Deployments (server-side apply: patch, and create for a new one)',
  },
  {
    group: 'apps',
    resource: 'deployments',
    verbs: ['update'],
    scope: 'namespace',
    stages: ['rollout'],
    why: 'take over a Deployment modelship did not create, or return the stable to its previous template',
  },
  {
    group: 'apps',
    resource: 'deployments',
    verbs: ['delete'],
    scope: 'namespace',
    stages: ['rollout', 'post'],
    why: 'delete the canary, or a first deploy that failed',
  },
  {
    group: 'apps',
    resource: 'replicasets',
    verbs: ['list'],
    scope: 'namespace',
    stages: ['rollout'],
    why: "find a Deployment's newest ReplicaSet while it rolls out",
  },
  { group: '', resource: 'pods', verbs: ['list'], scope: 'namespace', stages: ['rollout'], why: 'watch the new pods start and bake' },
  { group: '', resource: 'events', verbs: ['list'], scope: 'namespace', stages: ['rollout'], why: "give a failing pod's warning events as evidence" },
  // ---- the Services: <app> and <app>-canary, and what goes through them
  {
    group: '',
    resource: 'services',
    verbs: ['get'],
    scope: 'namespace',
    stages: ['rollout', 'post'],
    why: "read the Services (is the main one new: then it is marked as the run's)",
  },
  { group: '', resource: 'services', verbs: ['create', 'patch'], scope: 'namespace', stages: ['rollout'], why: 'apply the Services (server-side apply)' },
  {
    group: '',
    resource: 'services',
    verbs: ['delete'],
    scope: 'namespace',
    stages: ['rollout', 'post'],
    why: "delete the canary's Service, or a main Service the run created and rolled back",
  },
  {
    group: '',
    resource: 'services/proxy',
    verbs: ['get', 'create'],
    scope: 'namespace',
    stages: ['rollout'],
    option: 'service-proxy',
    why: "send the model metadata request (GET) and the golden requests (POST) through the API server's service proxy, when verify-url is not given",
  },
  // ---- the stable's PodDisruptionBudget <app>
  {
    group: 'policy',
    resource: 'poddisruptionbudgets',
    verbs: ['get', 'create', 'patch'],
    scope: 'namespace',
    stages: ['rollout'],
    why: "apply the stable's PodDisruptionBudget (server-side apply)",
  },
  {
    group: 'policy',
    resource: 'poddisruptionbudgets',
    verbs: ['delete'],
    scope: 'namespace',
    stages: ['rollout', 'post'],
    why: "delete a PodDisruptionBudget modelship made (disruption-budget none, a failed first deploy, a killed run's)",
  },
  // ---- autoscale: the stable's autoscaler <app>, a HorizontalPodAutoscaler (cpu) or a KEDA ScaledObject (inflight)
  {
    group: 'autoscaling',
    resource: 'horizontalpodautoscalers',
    verbs: ['get', 'create', 'patch'],
    scope: 'namespace',
    stages: ['rollout'],
    option: 'autoscale',
    why: "apply the stable's HorizontalPodAutoscaler (server-side apply)",
  },
  {
    group: 'autoscaling',
    resource: 'horizontalpodautoscalers',
    verbs: ['delete'],
    scope: 'namespace',
    stages: ['rollout', 'post'],
    option: 'autoscale',
    why: "delete an autoscaler modelship made that no longer applies (autoscale changed or off, a failed first deploy, a killed run's)",
  },
  {
    group: 'keda.sh',
    resource: 'scaledobjects',
    verbs: ['get', 'create', 'patch'],
    scope: 'namespace',
    stages: ['rollout'],
    option: 'autoscale',
    why: "apply the stable's KEDA ScaledObject (server-side apply; autoscale with inflight)",
  },
  {
    group: 'keda.sh',
    resource: 'scaledobjects',
    verbs: ['delete'],
    scope: 'namespace',
    stages: ['rollout', 'post'],
    option: 'autoscale',
    why: "delete an autoscaler modelship made that no longer applies (autoscale changed or off, a failed first deploy, a killed run's)",
  },
  // ---- the deploy lease modelship-<app>
  {
    group: 'coordination.k8s.io',
    resource: 'leases',
    verbs: ['get', 'delete'],
    scope: 'namespace',
    stages: ['rollout', 'post'],
    why: 'read and give back the deploy lease',
  },
  {
    group: 'coordination.k8s.io',
    resource: 'leases',
    verbs: ['create', 'update'],
    scope: 'namespace',
    stages: ['rollout'],
    why: 'take and renew the deploy lease',
  },
  // ---- create-pull-secret: the image pull Secret <app>-registry
  {
    group: '',
    resource: 'secrets',
    verbs: ['get', 'create', 'patch'],
    scope: 'namespace',
    stages: ['rollout'],
    option: 'create-pull-secret',
    why: 'apply the image pull Secret (server-side apply)',
  },
  {
    group: '',
    resource: 'secrets',
    verbs: ['get', 'delete'],
    scope: 'namespace',
    stages: ['post'],
    option: 'create-pull-secret',
    why: 'delete the pull Secret a killed run created',
  },
  // ---- gpu: where each pod computes
  {
    group: '',
    resource: 'pods/proxy',
    verbs: ['get', 'create'],
    scope: 'namespace',
    stages: ['rollout'],
    option: 'gpu',
    why: "ask each new pod where it computes, through the API server's pod proxy",
  },
  {
    group: '',
    resource: 'pods/log',
    verbs: ['get'],
    scope: 'namespace',
    stages: ['rollout'],
    option: 'gpu',
    why: "read a pod's start-up log, which names its provider when an API key hides its metadata",
  },
  // ---- pod-metrics: the analysis against the stable, without Prometheus
  {
    group: '',
    resource: 'pods/proxy',
    verbs: ['get'],
    scope: 'namespace',
    stages: ['rollout'],
    option: 'pod-metrics',
    why: "scrape the canary's and the stable's /metrics through the API server's pod proxy (compare-with-stable without prometheus-url)",
  },
  // ---- namespaces: cluster-scoped
  {
    group: '',
    resource: 'namespaces',
    verbs: ['get'],
    scope: 'cluster',
    stages: ['rollout'],
    option: 'create-namespace',
    why: 'tell whether the namespace exists (without it, a rollout takes its namespace to exist)',
  },
  {
    group: '',
    resource: 'namespaces',
    verbs: ['create'],
    scope: 'cluster',
    stages: ['rollout'],
    option: 'create-namespace',
    why: 'create the namespace, which does not exist yet',
  },
  {
    group: '',
    resource: 'namespaces',
    verbs: ['get', 'delete'],
    scope: 'cluster',
    stages: ['cleanup'],
    why: 'find the preview namespace, check that modelship made it, and delete it',
  },
  {
    group: '',
    resource: 'namespaces',
    verbs: ['delete'],
    scope: 'cluster',
    stages: ['rollout'],
    option: 'create-namespace',
    why: 'delete the namespace the run just created when the server-side dry run refuses what goes in it',
  },
  {
    group: '',
    resource: 'namespaces',
    verbs: ['get', 'delete'],
    scope: 'cluster',
    stages: ['post'],
    option: 'create-namespace',
    why: 'delete the namespace a killed run created',
  },
  {
    group: '*',
    resource: '*',
    verbs: ['list'],
    scope: 'namespace',
    stages: ['post'],
    option: 'create-namespace',
    why: 'see that a namespace a killed run created holds nothing else before deleting it',
    optional: "the post step keeps that namespace, and says why (a preview's goes with the PR's cleanup)",
  },
];

/** What a run needs: its stage (a preview includes the rollout and its post step), its options, its namespace. */
export interface RunNeeds {
  stage: 'rollout' | 'preview' | 'cleanup';
  options: PermissionOption[];
  namespace: string;
}

/** One SelfSubjectAccessReview: may the user do `verb` on `resource` (in `namespace`, or cluster-wide)? */
export interface AccessCheck {
  verb: string;
  group: string;
  resource: string;
  /** undefined: cluster-scoped */
  namespace?: string;
  why: string;
}

const STAGES_OF: Record<RunNeeds['stage'], PermissionStage[]> = { rollout: ['rollout', 'post'], preview: ['rollout', 'post', 'preview'], cleanup: ['cleanup'] };

/** The table's entries a stage uses (optional ones left out), with the options given. */
export function permissionsFor(stage: RunNeeds['stage'], options: readonly PermissionOption[]): Permission[] {
  const stages = STAGES_OF[stage];
  const opts = new Set<PermissionOption>([...options, ...(stage === 'preview' ? (['create-namespace'] as const) : [])]);
  return PERMISSIONS.filter((p) => !p.optional && p.stages.some((s) => stages.includes(s)) && (p.option === undefined || opts.has(p.option)));
}

/** The checks a run makes before it acts: one per (verb, resource), their reasons joined. Pure. */
export function accessChecks(n: RunNeeds): AccessCheck[] {
  const out = new Map<string, AccessCheck>();
  for (const p of permissionsFor(n.stage, n.options)) {
    for (const verb of p.verbs) {
      const key = `${verb} ${p.group}/${p.resource} ${p.scope}`;
      const have = out.get(key);
      if (have) {
        if (!have.why.split('; ').includes(p.why)) have.why += `; ${p.why}`;
      } else out.set(key, { verb, group: p.group, resource: p.resource, namespace: p.scope === 'namespace' ? n.namespace : undefined, why: p.why });
    }
  }
  return [...out.values()];
}

/** A rollout's options, from its inputs; `createsNamespace`: its namespace does not exist and create-namespace is on. */
export function rolloutOptions(
  cfg: { pullSecret?: unknown; gpu: boolean; verifyUrl: string; autoscale?: unknown; comparison?: unknown; prometheus?: unknown },
  createsNamespace: boolean,
): PermissionOption[] {
  return [
    ...(createsNamespace ? (['create-namespace'] as const) : []),
    ...(cfg.pullSecret ? (['create-pull-secret'] as const) : []),
    ...(cfg.gpu ? (['gpu'] as const) : []),
    ...(cfg.verifyUrl ? [] : (['service-proxy'] as const)),
    ...(cfg.autoscale ? (['autoscale'] as const) : []),
    ...(cfg.comparison && !cfg.prometheus ? (['pod-metrics'] as const) : []),
  ];
}

/** What the preflight asks the cluster: Kube implements it (SelfSubjectAccessReview, SelfSubjectReview). */
export interface AccessReviewer {
  canI(verb: string, resource: string, group?: string, namespace?: string): Promise<boolean>;
  /** who the kubeconfig's user is, as the API server names it */
  whoAmI?(): Promise<string>;
}

const VERB_ORDER = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
const verbRank = (v: string) => (VERB_ORDER.includes(v) ? VERB_ORDER.indexOf(v) : VERB_ORDER.length);
const byVerb = (a: string, b: string) => verbRank(a) - verbRank(b) || a.localeCompare(b);
/** deployments.apps, services/proxy, namespaces: as kubectl and the API server's messages name them */
export const resourceName = (group: string, resource: string) => (group ? resource.replace(/^([^/]+)/, `$1.${group}`) : resource);

export const README_SECTION = 'README "Least-privilege deploy identity"';

/**
 * The error naming every missing permission, grouped by resource: `get, delete deployments.apps in namespace "x"
 * (to …)`; the hint says how to get a Role that grants them. Pure.
 */
export function permissionError(user: string, missing: AccessCheck[], hint: string): ModelshipError {
  const groups = new Map<string, { verbs: string[]; whys: string[]; check: AccessCheck }>();
  for (const m of missing) {
    const key = `${m.group}/${m.resource} ${m.namespace ?? ''}`;
    const g = groups.get(key) ?? { verbs: [], whys: [], check: m };
    g.verbs.push(m.verb);
    for (const w of m.why.split('; ')) if (!g.whys.includes(w)) g.whys.push(w);
    groups.set(key, g);
  }
  const items = [...groups.values()].map(
    (g) =>
      `${g.verbs.sort(byVerb).join(', ')} ${resourceName(g.check.group, g.check.resource)} ${g.check.namespace !== undefined ? `in namespace "${g.check.namespace}"` : '(cluster-wide)'} (needed to ${g.whys.join('; to ')})`,
  );
  return new ModelshipError('input', `input "kubeconfig": the kubeconfig's user (${user}) may not: ${items.join('; ')} — ${hint}`, { field: 'kubeconfig' });
}

/**
 * Ask for every check at once (SelfSubjectAccessReviews in parallel) and fail, before anything is changed, naming
 * each permission the user lacks. `hint`: what to run or read to grant them.
 */
export async function preflight(reviewer: AccessReviewer, checks: AccessCheck[], hint: string): Promise<void> {
  const allowed = await Promise.all(checks.map((c) => reviewer.canI(c.verb, c.resource, c.group, c.namespace)));
  const missing = checks.filter((_, i) => !allowed[i]);
  if (missing.length === 0) return;
  const user = reviewer.whoAmI ? await reviewer.whoAmI().catch(() => 'unknown') : 'unknown';
  throw permissionError(user, missing, hint);
}

/** The hint of a stage's permission error: the `modelship rbac` command that prints what grants them, and the README. */
export function rbacHint(n: { stage: RunNeeds['stage']; namespace: string; options: readonly PermissionOption[] }): string {
  const has = (o: PermissionOption) => n.options.includes(o);
  const flags = [
    ...(n.stage === 'rollout' ? [`--namespace ${n.namespace}`] : ['--stage preview', "--namespace <the ServiceAccount's namespace>"]),
    ...(n.stage === 'rollout' && has('create-namespace') ? ['--create-namespace'] : []),
    ...(has('create-pull-secret') ? ['--create-pull-secret'] : []),
    ...(has('gpu') ? ['--gpu'] : []),
    ...(n.stage !== 'cleanup' && !has('service-proxy') ? ['--verify-url'] : []),
    ...(has('autoscale') ? ['--autoscale'] : []),
    ...(has('pod-metrics') ? ['--pod-metrics'] : []),
  ];
  return `\`modelship rbac ${flags.join(' ')}\` prints a ServiceAccount and the RBAC that grant them; see ${README_SECTION}`;
}

// ---------------------------------------------------------------------------------------------------------------
// The RBAC objects, generated from the table

export interface RbacOptions {
  /** rollout: the deploy namespace (the Role, its binding and the ServiceAccount live there); preview: the ServiceAccount's */
  namespace: string;
  serviceAccount: string;
  /** rollout (default): a Role in the namespace; preview: previews and their cleanup (namespaces it creates) */
  stage: 'rollout' | 'preview';
  /** the options the runs use, besides the defaults (service-proxy is on unless verifyUrl) */
  createNamespace?: boolean;
  createPullSecret?: boolean;
  gpu?: boolean;
  /** the runs give verify-url: their golden requests do not go through the service proxy */
  verifyUrl?: boolean;
  /** the runs autoscale the stable (an HPA or a KEDA ScaledObject) */
  autoscale?: boolean;
  /** the runs compare the canary with the stable from the pods' own /metrics (compare-with-stable, no prometheus-url) */
  podMetrics?: boolean;
}

export interface RbacRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** RBAC rules from table entries: one rule per (group, resource), verbs merged in the usual order; the reasons beside. */
export function rulesOf(entries: readonly Permission[]): { rule: RbacRule; why: string[] }[] {
  const out = new Map<string, { rule: RbacRule; why: string[] }>();
  for (const p of entries) {
    const key = `${p.group}/${p.resource}`;
    const r = out.get(key) ?? { rule: { apiGroups: [p.group], resources: [p.resource], verbs: [] }, why: [] };
    for (const v of p.verbs) if (!r.rule.verbs.includes(v)) r.rule.verbs.push(v);
    if (!r.why.includes(p.why)) r.why.push(p.why);
    out.set(key, r);
  }
  for (const r of out.values()) r.rule.verbs.sort(byVerb);
  return [...out.values()];
}

interface Doc {
  obj: Record<string, unknown>;
  comment: string[];
  rules?: { rule: RbacRule; why: string[] }[];
}

const optionsOf = (identity: RbacOptions): PermissionOption[] => [
  ...(identity.verifyUrl ? [] : (['service-proxy'] as const)),
  ...(identity.createNamespace || identity.stage === 'preview' ? (['create-namespace'] as const) : []),
  ...(identity.createPullSecret ? (['create-pull-secret'] as const) : []),
  ...(identity.gpu ? (['gpu'] as const) : []),
  ...(identity.autoscale ? (['autoscale'] as const) : []),
  ...(identity.podMetrics ? (['pod-metrics'] as const) : []),
];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function rbacDocs(identity: RbacOptions): Doc[] {
  for (const [flag, v] of [
    ['namespace', identity.namespace],
    ['service-account', identity.serviceAccount],
  ] as const) {
    if (!DNS_LABEL.test(v) || v.length > 63)
      throw new ModelshipError('input', `rbac: --${flag} must be a DNS label (lowercase letters, digits, -), got "${v}"`, { field: flag });
  }
  const stage = identity.stage === 'preview' ? 'preview' : 'rollout';
  const entries = permissionsFor(stage === 'preview' ? 'preview' : 'rollout', optionsOf(identity));
  if (stage === 'preview') entries.push(...permissionsFor('cleanup', []));
  const namespaced = rulesOf(entries.filter((p) => p.scope === 'namespace'));
  const cluster = rulesOf(entries.filter((p) => p.scope === 'cluster'));
  const sa = { kind: 'ServiceAccount', name: identity.serviceAccount, namespace: identity.namespace };
  const rbac = 'rbac.authorization.k8s.io/v1';
  const docs: Doc[] = [
    {
      obj: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: identity.serviceAccount, namespace: identity.namespace } },
      comment: ['the deploy identity'],
    },
  ];
  // a namespace the run creates has no Role before it exists: then the namespaced rules are granted cluster-wide
  const madeByRun = stage === 'preview' || !!identity.createNamespace;
  if (!madeByRun) {
    docs.push({
      obj: { apiVersion: rbac, kind: 'Role', metadata: { name: identity.serviceAccount, namespace: identity.namespace } },
      comment: [`what modelship rollout (and its post step) do in namespace ${identity.namespace}`],
      rules: namespaced,
    });
    docs.push({
      obj: {
        apiVersion: rbac,
        kind: 'RoleBinding',
        metadata: { name: identity.serviceAccount, namespace: identity.namespace },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: identity.serviceAccount },
        subjects: [sa],
      },
      comment: [],
    });
    return docs;
  }
  const base = `modelship:${identity.namespace}:${identity.serviceAccount}`;
  const why =
    stage === 'preview'
      ? 'the preview namespaces <app>-pr-<N>, which the preview creates and its cleanup deletes'
      : 'the namespace the rollout creates (create-namespace)';
  docs.push({ obj: { apiVersion: rbac, kind: 'ClusterRole', metadata: { name: `${base}:namespaces` } }, comment: [`cluster-scoped: ${why}`], rules: cluster });
  docs.push({
    obj: {
      apiVersion: rbac,
      kind: 'ClusterRoleBinding',
      metadata: { name: `${base}:namespaces` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${base}:namespaces` },
      subjects: [sa],
    },
    comment: [],
  });
  docs.push({
    obj: { apiVersion: rbac, kind: 'ClusterRole', metadata: { name: `${base}:deploy` } },
    comment: [
      'what the rollout (and its post step) do in its namespace; bound cluster-wide because a namespace the run creates',
      'has no Role before it exists (with namespaces made beforehand, use the Role of `modelship rbac --namespace NS` in each)',
    ],
    rules: namespaced,
  });
  docs.push({
    obj: {
      apiVersion: rbac,
      kind: 'ClusterRoleBinding',
      metadata: { name: `${base}:deploy` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${base}:deploy` },
      subjects: [sa],
    },
    comment: [],
  });
  return docs;
}

/** The RBAC objects as plain objects (what `kubectl apply` receives). */
export function rbacObjects(identity: RbacOptions): Record<string, unknown>[] {
  return rbacDocs(identity).map((d) => (d.rules ? { ...d.obj, rules: d.rules.map((r) => r.rule) } : d.obj));
}

const scalar = (s: string) => (/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(s) && !/^(true|false|null|yes|no|on|off|~|[\d.eE+-]+)$/i.test(s) ? s : JSON.stringify(s));
const flow = (l: string[]) => `[${l.map(scalar).join(', ')}]`;

function render(v: unknown, indent: string): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => render(x, `${indent}  `).map((l, i) => (i === 0 ? `${indent}- ${l.trimStart()}` : l)));
  if (v && typeof v === 'object') {
    return Object.entries(v).flatMap(([k, x]) =>
      x && typeof x === 'object' ? [`${indent}${k}:`, ...render(x, Array.isArray(x) ? indent : `${indent}  `)] : [`${indent}${k}: ${scalar(String(x))}`],
    );
  }
  return [`${indent}${scalar(String(v))}`];
}

/** The RBAC objects as one YAML stream (`kubectl apply -f -`), each rule with the reasons it is there. */
export function rbacYaml(identity: RbacOptions, command = 'modelship rbac'): string {
  const head = [
    `# the least-privilege deploy identity of modelship ${identity.stage === 'preview' ? 'preview and cleanup' : 'rollout'}: generated by \`${command}\` from src/rollout/permissions.ts`,
    `# apply with: kubectl apply -f <this file>; then a token kubeconfig for ServiceAccount ${identity.namespace}/${identity.serviceAccount}: see README "Least-privilege deploy identity"`,
  ];
  const docs = rbacDocs(identity).map((d) => {
    const lines = [...d.comment.map((c) => `# ${c}`), ...render(d.obj, '')];
    if (d.rules) {
      lines.push('rules:');
      for (const r of d.rules)
        lines.push(
          ...r.why.map((w) => `# ${resourceName(r.rule.apiGroups[0], r.rule.resources[0])}: ${w}`),
          `- apiGroups: ${flow(r.rule.apiGroups)}`,
          `  resources: ${flow(r.rule.resources)}`,
          `  verbs: ${flow(r.rule.verbs)}`,
        );
    }
    return lines.join('\n');
  });
  return `${head.join('\n')}\n${docs.map((d) => `---\n${d}\n`).join('')}`;
}
