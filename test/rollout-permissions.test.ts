import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { REPO } from './helpers/caffe';
import {
  PERMISSIONS,
  accessChecks,
  permissionsFor,
  preflight,
  rbacHint,
  rbacObjects,
  rbacYaml,
  rolloutOptions,
  AccessCheck,
  AccessReviewer,
} from '../src/rollout/permissions';
import { rbacMain } from '../src/cli/rbac';
import { cli } from '../src/cli';
import { ModelshipError } from '../src/util/errors';

// Issue 21, point 4: the deploy identity's least privilege, as one table (src/rollout/permissions.ts) → the RBAC that
// `modelship rbac` prints, and the stages' preflight (SelfSubjectAccessReviews before anything is changed). On the
// lab's cluster, with a ServiceAccount bound to the generated RBAC only: test/rollout-rbac.lab.test.ts.

const rules = (o: Record<string, unknown> | undefined) =>
  ((o?.rules ?? []) as { apiGroups: string[]; resources: string[]; verbs: string[] }[]).map(
    (r) => `${r.apiGroups[0] ? `${r.apiGroups[0]}/` : ''}${r.resources[0]}: ${r.verbs.join(',')}`,
  );
const kindOf = (objs: Record<string, unknown>[], kind: string) => objs.filter((o) => o.kind === kind);

/** What the rollout always needs in its namespace (its post step included), as `group/resource: verbs`. */
const ROLLOUT_RULES = [
  'apps/deployments: get,create,update,patch,delete',
  'apps/replicasets: list',
  'pods: list',
  'events: list',
  'services: get,create,patch,delete',
  'services/proxy: get,create',
  'policy/poddisruptionbudgets: get,create,patch,delete',
  'coordination.k8s.io/leases: get,create,update,delete',
];

describe('the table', () => {
  test('every entry is well formed; the one optional entry is neither generated nor checked', () => {
    const verbs = new Set(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']);
    for (const p of PERMISSIONS) {
      expect([p.resource, p.verbs.every((v) => verbs.has(v)), p.verbs.length > 0, p.why.length > 10, p.stages.length > 0]).toEqual([
        p.resource,
        true,
        true,
        true,
        true,
      ]);
      if (p.scope === 'cluster') expect(p.resource).toBe('namespaces');
    }
    const optional = PERMISSIONS.filter((p) => p.optional);
    expect(optional.map((p) => `${p.group}/${p.resource} ${p.verbs.join(',')}`)).toEqual(['*/* list']);
    for (const stage of ['rollout', 'preview', 'cleanup'] as const)
      expect(permissionsFor(stage, ['create-namespace', 'create-pull-secret', 'gpu', 'service-proxy']).some((p) => p.optional)).toBe(false);
  });

  test('every kind the stages read or write by name has an entry (the source, scanned)', () => {
    const RESOURCE: Record<string, string> = {
      Deployment: 'deployments',
      ReplicaSet: 'replicasets',
      Pod: 'pods',
      Event: 'events',
      Service: 'services',
      Secret: 'secrets',
      Namespace: 'namespaces',
      PodDisruptionBudget: 'poddisruptionbudgets',
      Lease: 'leases',
    };
    const VERB: Record<string, string> = { get: 'get', list: 'list', remove: 'delete', create: 'create', apply: 'patch', replace: 'update' };
    // every module of the rollout stage (its strategies and gates included) and the preview's
    const rollout = fs
      .readdirSync(path.join(REPO, 'src/rollout'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `src/rollout/${f}`);
    const files = [...rollout, 'src/preview/index.ts'].filter((f) => fs.existsSync(path.join(REPO, f)));
    const found = new Set<string>();
    for (const f of files) {
      for (const m of fs.readFileSync(path.join(REPO, f), 'utf8').matchAll(/kube\.(get|list|remove)(?:<[^(]*>)?\(\s*'[^']+',\s*'([A-Za-z]+)'/g))
        found.add(`${VERB[m[1]]} ${RESOURCE[m[2]] ?? m[2]}`);
    }
    expect(found.size).toBeGreaterThan(8);
    const table = new Set(PERMISSIONS.flatMap((p) => p.verbs.map((v) => `${v} ${p.resource}`)));
    expect([...found].filter((x) => !table.has(x))).toEqual([]);
    // the Lease goes through its typed client: read, create, replace
    expect(['get leases', 'create leases', 'update leases', 'delete leases'].filter((x) => !table.has(x))).toEqual([]);
  });
});

describe('the generated RBAC', () => {
  test('rollout: a Role in the namespace with exactly the rules, bound to the ServiceAccount; no ClusterRole', () => {
    const objs = rbacObjects({ namespace: 'prod', serviceAccount: 'deployer', stage: 'rollout' });
    expect(objs.map((o) => o.kind)).toEqual(['ServiceAccount', 'Role', 'RoleBinding']);
    expect(objs.every((o) => (o.metadata as { namespace?: string }).namespace === 'prod')).toBe(true);
    expect(rules(kindOf(objs, 'Role')[0])).toEqual(ROLLOUT_RULES);
    expect(kindOf(objs, 'RoleBinding')[0]).toMatchObject({
      roleRef: { kind: 'Role', name: 'deployer' },
      subjects: [{ kind: 'ServiceAccount', name: 'deployer', namespace: 'prod' }],
    });
    // nothing broad: no wildcard, no secrets without create-pull-secret, nothing cluster-scoped
    expect(JSON.stringify(objs)).not.toMatch(/"\*"|secrets|namespaces|ClusterRole/);
  });

  test('the options add what they use; verify-url takes the service proxy away', () => {
    const objs = rbacObjects({ namespace: 'prod', serviceAccount: 'deployer', stage: 'rollout', createPullSecret: true, gpu: true, verifyUrl: true });
    const r = rules(kindOf(objs, 'Role')[0]);
    expect(r).toEqual(expect.arrayContaining(['secrets: get,create,patch,delete', 'pods/proxy: get,create', 'pods/log: get']));
    expect(r.some((x) => x.startsWith('services/proxy'))).toBe(false);
  });

  test('preview (and create-namespace): a ClusterRole for namespaces only, and the deploy rules bound cluster-wide', () => {
    const objs = rbacObjects({ namespace: 'ci', serviceAccount: 'previewer', stage: 'preview' });
    expect(objs.map((o) => `${String(o.kind)} ${(o.metadata as { name: string }).name}`)).toEqual([
      'ServiceAccount previewer',
      'ClusterRole modelship:ci:previewer:namespaces',
      'ClusterRoleBinding modelship:ci:previewer:namespaces',
      'ClusterRole modelship:ci:previewer:deploy',
      'ClusterRoleBinding modelship:ci:previewer:deploy',
    ]);
    const [nsRole, deployRole] = kindOf(objs, 'ClusterRole');
    expect(rules(nsRole)).toEqual(['namespaces: get,create,delete']);
    expect(rules(deployRole)).toEqual(ROLLOUT_RULES);
    expect(kindOf(objs, 'ClusterRoleBinding').map((b) => b.subjects)).toEqual([
      [{ kind: 'ServiceAccount', name: 'previewer', namespace: 'ci' }],
      [{ kind: 'ServiceAccount', name: 'previewer', namespace: 'ci' }],
    ]);
    const rollout = rbacObjects({ namespace: 'prod', serviceAccount: 'deployer', stage: 'rollout', createNamespace: true });
    expect(rules(kindOf(rollout, 'ClusterRole')[0])).toEqual(['namespaces: get,create,delete']);
  });

  test('the YAML is those objects, each rule with its reasons', () => {
    for (const o of [
      { namespace: 'prod', serviceAccount: 'deployer', stage: 'rollout' as const, gpu: true },
      { namespace: 'ci', serviceAccount: 'previewer', stage: 'preview' as const, createPullSecret: true },
    ]) {
      const text = rbacYaml(o);
      expect(yaml.loadAll(text).filter(Boolean)).toEqual(rbacObjects(o));
      expect(text).toContain('# deployments.apps: delete the canary, or a first deploy that failed\n');
    }
  });

  test('examples/rbac/ holds what `modelship rbac` prints', () => {
    expect(fs.readFileSync(path.join(REPO, 'examples/rbac/rollout.yaml'), 'utf8')).toBe(
      rbacYaml({ namespace: 'prod', serviceAccount: 'modelship-deployer', stage: 'rollout' }, 'modelship rbac --namespace prod'),
    );
    expect(fs.readFileSync(path.join(REPO, 'examples/rbac/preview.yaml'), 'utf8')).toBe(
      rbacYaml({ namespace: 'modelship', serviceAccount: 'modelship-deployer', stage: 'preview' }, 'modelship rbac --stage preview --namespace modelship'),
    );
  });
});

/** A stream that keeps what is written. */
function sink() {
  let text = '';
  return { stream: { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream, text: () => text };
}

describe('modelship rbac', () => {
  test('prints the YAML; flags in either form; bad ones are input errors (exit 2 through the CLI)', async () => {
    const out = sink();
    expect(rbacMain(['--namespace', 'prod', '--service-account=ci-bot', '--gpu'], out.stream)).toBe(0);
    expect(out.text()).toBe(
      rbacYaml({ namespace: 'prod', serviceAccount: 'ci-bot', stage: 'rollout', gpu: true }, 'modelship rbac --namespace prod --service-account=ci-bot --gpu'),
    );
    expect(() => rbacMain([], sink().stream)).toThrow(/rbac: --namespace is required/);
    expect(() => rbacMain(['--namespace', 'prod', '--stage', 'deploy'], sink().stream)).toThrow(/--stage must be rollout or preview/);
    expect(() => rbacMain(['--namespace', 'Prod_1'], sink().stream)).toThrow(/--namespace must be a DNS label/);
    expect(() => rbacMain(['--namespace', 'prod', '--cluster-admin'], sink().stream)).toThrow(/unexpected argument "--cluster-admin"/);
    const err = sink();
    expect(await cli(['rbac', '--stage', 'preview'], sink().stream, err.stream)).toBe(2);
    expect(err.text()).toMatch(/error: rbac: --namespace is required/);
    const help = sink();
    expect(await cli(['rbac', '--help'], help.stream, sink().stream)).toBe(0);
    expect(help.text()).toMatch(/^usage: modelship rbac --namespace NS/);
  });
});

/** A reviewer that allows all but `denied` ("verb resource"), counting the reviews in flight. */
function reviewer(denied: string[], user = 'system:serviceaccount:prod:deployer') {
  const calls: AccessCheck[] = [];
  let inFlight = 0;
  let most = 0;
  const r: AccessReviewer = {
    canI: async (verb, resource, group = '', namespace) => {
      calls.push({ verb, resource, group, namespace, why: '' });
      most = Math.max(most, ++inFlight);
      await new Promise((res) => setTimeout(res, 5));
      inFlight--;
      return !denied.includes(`${verb} ${resource}`);
    },
    whoAmI: async () => user,
  };
  return { r, calls, most: () => most };
}

describe('the preflight', () => {
  const rolloutCfg = { gpu: false, verifyUrl: '' };

  test('what a rollout asks: one review per verb and resource, in its namespace; options add theirs', () => {
    const checks = accessChecks({ stage: 'rollout', namespace: 'prod', options: rolloutOptions(rolloutCfg, false) });
    expect(checks.map((c) => `${c.verb} ${c.resource}`)).toEqual([
      'get deployments',
      'create deployments',
      'patch deployments',
      'update deployments',
      'delete deployments',
      'list replicasets',
      'list pods',
      'list events',
      'get services',
      'create services',
      'patch services',
      'delete services',
      'get services/proxy',
      'create services/proxy',
      'get poddisruptionbudgets',
      'create poddisruptionbudgets',
      'patch poddisruptionbudgets',
      'delete poddisruptionbudgets',
      'get leases',
      'delete leases',
      'create leases',
      'update leases',
    ]);
    expect(checks.every((c) => c.namespace === 'prod')).toBe(true);
    const all = accessChecks({ stage: 'rollout', namespace: 'prod', options: rolloutOptions({ gpu: true, verifyUrl: 'https://x', pullSecret: {} }, true) });
    const names = all.map((c) => `${c.verb} ${c.resource}${c.namespace ? '' : ' (cluster)'}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'get namespaces (cluster)',
        'create namespaces (cluster)',
        'delete namespaces (cluster)',
        'create secrets',
        'delete secrets',
        'get pods/proxy',
        'get pods/log',
      ]),
    );
    expect(names.some((n) => n.includes('services/proxy'))).toBe(false);
    // a preview creates its namespace; its cleanup only finds and deletes it
    expect(
      accessChecks({ stage: 'preview', namespace: 'lenet-pr-3', options: rolloutOptions(rolloutCfg, true) })
        .filter((c) => !c.namespace)
        .map((c) => c.verb),
    ).toEqual(['get', 'create', 'delete']);
    expect(accessChecks({ stage: 'cleanup', namespace: 'lenet-pr-3', options: [] }).map((c) => `${c.verb} ${c.resource} ${c.namespace}`)).toEqual([
      'get namespaces undefined',
      'delete namespaces undefined',
    ]);
  });

  test('all granted: passes, the reviews asked in parallel', async () => {
    const f = reviewer([]);
    const checks = accessChecks({ stage: 'rollout', namespace: 'prod', options: ['service-proxy'] });
    await preflight(f.r, checks, 'hint');
    expect(f.calls).toHaveLength(checks.length);
    expect(f.most()).toBe(checks.length);
    expect(f.calls.find((c) => c.resource === 'leases')?.group).toBe('coordination.k8s.io');
  });

  test('a missing permission fails naming the user, the verb, the resource, the namespace and why; then how to grant it', async () => {
    const needs = { stage: 'rollout' as const, namespace: 'prod', options: rolloutOptions(rolloutCfg, false) };
    const e = await preflight(reviewer(['delete deployments']).r, accessChecks(needs), rbacHint(needs)).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ModelshipError);
    expect((e as ModelshipError).code).toBe('input');
    expect((e as ModelshipError).location.field).toBe('kubeconfig');
    expect((e as Error).message).toBe(
      'input "kubeconfig": the kubeconfig\'s user (system:serviceaccount:prod:deployer) may not: delete deployments.apps in namespace "prod" (needed to delete the canary, or a first deploy that failed) — `modelship rbac --namespace prod` prints a ServiceAccount and the RBAC that grant them; see README "Least-privilege deploy identity"',
    );
  });

  test("several missing: grouped by resource, cluster-scoped ones said so; the hint carries the run's options", async () => {
    const needs = { stage: 'rollout' as const, namespace: 'new-ns', options: rolloutOptions({ gpu: true, verifyUrl: '' }, true) };
    const e = (await preflight(
      reviewer(
        ['create namespaces', 'delete namespaces', 'create services/proxy', 'get pods/log', 'update leases', 'create leases'],
        'system:serviceaccount:ci:bot',
      ).r,
      accessChecks(needs),
      rbacHint(needs),
    ).catch((x: unknown) => x)) as Error;
    expect(e.message).toMatch(/^input "kubeconfig": the kubeconfig's user \(system:serviceaccount:ci:bot\) may not: /);
    expect(e.message).toContain(
      'create, delete namespaces (cluster-wide) (needed to create the namespace, which does not exist yet; to delete the namespace the run just created when the server-side dry run refuses what goes in it; to delete the namespace a killed run created)',
    );
    expect(e.message).toContain(
      'may not: create services/proxy in namespace "new-ns" (needed to send the model metadata request (GET) and the golden requests (POST) through the API server\'s service proxy, when verify-url is not given); ',
    );
    expect(e.message).toContain('; create, update leases.coordination.k8s.io in namespace "new-ns" (needed to take and renew the deploy lease)');
    expect(e.message).toContain('; get pods/log in namespace "new-ns"');
    expect(e.message).toMatch(/ — `modelship rbac --namespace new-ns --create-namespace --gpu` prints/);
  });

  test('hints: preview and cleanup name the preview RBAC; verify-url and the pull Secret are carried', () => {
    expect(
      rbacHint({ stage: 'preview', namespace: 'lenet-pr-3', options: rolloutOptions({ gpu: false, verifyUrl: 'https://x', pullSecret: {} }, true) }),
    ).toMatch(/^`modelship rbac --stage preview --namespace <the ServiceAccount's namespace> --create-pull-secret --verify-url` prints/);
    expect(rbacHint({ stage: 'cleanup', namespace: 'lenet-pr-3', options: [] })).toMatch(
      /^`modelship rbac --stage preview --namespace <the ServiceAccount's namespace>` prints/,
    );
  });

  test('a user the API server cannot name is still named (whoAmI fails)', async () => {
    const r: AccessReviewer = { canI: async () => false, whoAmI: async () => Promise.reject(new Error('x')) };
    await expect(preflight(r, accessChecks({ stage: 'cleanup', namespace: 'a-pr-1', options: [] }), 'hint')).rejects.toThrow(
      /user \(unknown\) may not: get, delete namespaces \(cluster-wide\) \(needed to find the preview namespace, check that modelship made it, and delete it\) — hint$/,
    );
  });
});

describe('the analysis against the stable from the pods own /metrics (option pod-metrics)', () => {
  const base = { gpu: false, verifyUrl: 'http://canary.example' };
  test('needs pods/proxy get only when it reads the pods (no prometheus-url)', () => {
    expect(rolloutOptions({ ...base, comparison: {} }, false)).toEqual(['pod-metrics']);
    expect(rolloutOptions({ ...base, comparison: {}, prometheus: {} }, false)).toEqual([]);
    expect(rolloutOptions(base, false)).toEqual([]);
    const checks = accessChecks({ stage: 'rollout', namespace: 'prod', options: ['pod-metrics'] });
    expect(checks.filter((c) => c.resource === 'pods/proxy').map((c) => c.verb)).toEqual(['get']);
  });

  test('modelship rbac --pod-metrics grants it, with why', () => {
    let out = '';
    rbacMain(['--namespace', 'prod', '--pod-metrics'], { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream);
    const role = yaml.loadAll(out).find((d) => (d as { kind: string }).kind === 'Role') as { rules: { resources: string[]; verbs: string[] }[] };
    expect(role.rules.filter((r) => r.resources.includes('pods/proxy'))).toEqual([expect.objectContaining({ verbs: ['get'] })]);
    expect(out).toMatch(/compare-with-stable without prometheus-url/);
  });
});
