import * as fs from 'fs';
import * as path from 'path';
import { KUBERNETES_FLOOR } from '../src/rollout/manifests';
import { REPO } from './helpers/caffe';
import { generatedObjects } from './helpers/generated-objects';

/**
 * Every API modelship uses is served by the oldest Kubernetes it supports (KUBERNETES_FLOOR, README "Supported
 * Kubernetes"), and every field it writes is in that release's schema. The floor's API surface is its own OpenAPI
 * spec, compacted by scripts/served-apis.ts into test/fixtures/k8s-1.27-served.json (release and zip sha256 inside):
 * the resources served by default by group version, and the definitions of the kinds modelship writes. A field that
 * is newer than the floor (server-side apply refuses an unknown field), an API version it does not serve by default
 * (a beta one off by default, or one not there yet) fails here, naming the object and the field.
 */

type Definition = Record<string, string> | string;
interface Fixture {
  release: string;
  sha256: string;
  resources: Record<string, Record<string, string>>;
  kinds: Record<string, string>;
  definitions: Record<string, Definition>;
}
const fixture = JSON.parse(fs.readFileSync(path.join(REPO, 'test/fixtures/k8s-1.27-served.json'), 'utf8')) as Fixture;
const FLOOR = { major: String(KUBERNETES_FLOOR.major), minor: String(KUBERNETES_FLOOR.minor) };

/** Whether `kind` is served in group version `gv` by default. */
const served = (gv: string, kind: string) => Object.values(fixture.resources[gv] ?? {}).includes(kind);

/**
 * The field paths of `value` that the floor's schema (`type`, compacted: a definition, []T, map[T], a JSON type) does
 * not have, or has with another JSON type.
 */
function unknownFields(value: unknown, type: string, at: string): string[] {
  if (value === undefined || value === null) return [];
  if (type.startsWith('[]'))
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, type.slice(2), `${at}[${i}]`)) : [`${at}: expected a list (${type})`];
  if (type.startsWith('map['))
    return typeof value === 'object' && !Array.isArray(value)
      ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, type.slice(4, -1), `${at}.${k}`))
      : [`${at}: expected a map (${type})`];
  const json = typeof value;
  switch (type) {
    case 'string':
      return json === 'string' ? [] : [`${at}: expected a string, got ${json}`];
    case 'integer':
      return Number.isInteger(value) ? [] : [`${at}: expected an integer, got ${JSON.stringify(value)}`];
    case 'number':
      return json === 'number' ? [] : [`${at}: expected a number, got ${json}`];
    case 'boolean':
      return json === 'boolean' ? [] : [`${at}: expected a boolean, got ${json}`];
    case 'int-or-string':
      return json === 'string' || Number.isInteger(value) ? [] : [`${at}: expected an integer or a string, got ${json}`];
    case 'object':
      return [];
  }
  const def = fixture.definitions[type];
  if (def === undefined) return [`${at}: definition ${type} is not in the fixture (regenerate it: npx tsx scripts/served-apis.ts)`];
  if (typeof def === 'string') return unknownFields(value, def, at);
  if (json !== 'object' || Array.isArray(value)) return [`${at}: expected an object (${type}), got ${json}`];
  return Object.entries(value).flatMap(([k, v]) => (k in def ? unknownFields(v, def[k], `${at}.${k}`) : [`${at}.${k}: not in ${fixture.release}'s ${type}`]));
}

const objects = generatedObjects('models', FLOOR);

test(`the fixture is Kubernetes ${KUBERNETES_FLOOR.major}.${KUBERNETES_FLOOR.minor}'s own spec (scripts/served-apis.ts), and tells what the floor lacks`, () => {
  expect(fixture.release).toMatch(new RegExp(`^v${KUBERNETES_FLOOR.major}\\.${KUBERNETES_FLOOR.minor}\\.\\d+$`));
  expect(fixture.sha256).toMatch(/^[0-9a-f]{64}$/);
  // it can tell: a field and an API the floor does not have
  expect(fixture.definitions['io.k8s.api.core.v1.LifecycleHandler']).not.toHaveProperty('sleep'); // the preStop sleep action: 1.29
  expect(served('authentication.k8s.io/v1', 'SelfSubjectReview')).toBe(false); // GA in 1.28
  expect(served('authentication.k8s.io/v1beta1', 'SelfSubjectReview')).toBe(false); // beta, off by default in 1.27
  expect(served('apps/v1', 'Deployment')).toBe(true);
});

describe(`every object the stages generate, as for an API server of ${KUBERNETES_FLOOR.major}.${KUBERNETES_FLOOR.minor}`, () => {
  test('covers every kind modelship writes', () => {
    expect(new Set(objects.map((o) => `${o.obj.apiVersion} ${o.obj.kind}`))).toEqual(
      new Set([
        'apps/v1 Deployment',
        'v1 Service',
        'v1 Secret',
        'policy/v1 PodDisruptionBudget',
        'autoscaling/v2 HorizontalPodAutoscaler',
        'v1 Namespace',
        'coordination.k8s.io/v1 Lease',
        'authorization.k8s.io/v1 SelfSubjectAccessReview',
        'v1 ServiceAccount',
        'rbac.authorization.k8s.io/v1 Role',
        'rbac.authorization.k8s.io/v1 RoleBinding',
        'rbac.authorization.k8s.io/v1 ClusterRole',
        'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
      ]),
    );
  });

  test.each(objects.map((o) => [o.what, o.obj] as const))('%s: its apiVersion and kind are served, every field it sets is in the schema', (_what, obj) => {
    expect([obj.apiVersion, obj.kind, served(obj.apiVersion, obj.kind)]).toEqual([obj.apiVersion, obj.kind, true]);
    const root = fixture.kinds[`${obj.apiVersion} ${obj.kind}`];
    expect(root).toBeDefined();
    expect(unknownFields(obj, root, obj.kind)).toEqual([]);
  });

  test('the walk catches a field newer than the floor: the preStop sleep action (1.29) of an API server from 1.33', () => {
    const newer = generatedObjects('models', { major: '1', minor: '33' }).find((o) => o.obj.kind === 'Deployment')!.obj;
    expect(unknownFields(newer, fixture.kinds['apps/v1 Deployment'], 'Deployment')).toEqual([
      expect.stringMatching(/\.lifecycle\.preStop\.sleep: not in v1\.27\.\d+'s io\.k8s\.api\.core\.v1\.LifecycleHandler$/),
    ]);
  });
});

/**
 * The requests the code makes besides writing those objects, found in the source: reads, lists and deletions by
 * apiVersion and kind (kube.get/list/remove, the post step's table, object literals), paths through the API server
 * (.../services/NAME/proxy, .../pods/NAME/log), the calls of client-node's typed APIs (CoordinationV1Api's
 * readNamespacedLease: a Lease in coordination.k8s.io/v1), and every API version named anywhere.
 */
/** Requests newer than the floor that the code makes knowing it, with what it does where they are not served. */
const NEWER_WITH_FALLBACK: Record<string, string> = {
  'authentication.k8s.io/v1 SelfSubjectReview': "Kube.whoAmI (1.28+): the kubeconfig's user name instead",
};
/**
 * Custom resources the code writes: no Kubernetes release serves them (their CRDs come with what they extend), so
 * they are in no release's spec, and generatedObjects leaves them out; each with where it is checked instead.
 */
const CUSTOM_RESOURCES: Record<string, string> = {
  'keda.sh/v1alpha1 ScaledObject':
    "KEDA's CRD (autoscale with inflight=N, src/rollout/autoscale.ts): served where KEDA is installed; test/autoscale.lab.test.ts has KEDA v2.19.0 accept it (server-side dry run) and make its HPA",
};
/**
 * Aggregated APIs the code names: served by an extension API server of its own (an APIService), in no release's spec;
 * each with what the code does with it.
 */
const AGGREGATED_APIS: Record<string, string> = {
  'metrics.k8s.io/v1beta1':
    "metrics-server's resource metrics (autoscale with cpu=PERCENT: the HPA reads them): the rollout only asks discovery whether it is served (Kube.serves), for a warning when it is not",
};

describe('every API request in src/ is served by the floor', () => {
  const files = ['src/rollout', 'src/preview'].flatMap((d) =>
    fs
      .readdirSync(path.join(REPO, d), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(REPO, d, f)),
  );
  const source = files.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  const uniq = <T>(xs: T[]) => [...new Map(xs.map((x) => [JSON.stringify(x), x])).values()];

  const byKind = uniq(
    [
      ...source.matchAll(/(?:kube|this)\.(?:get|list|remove)(?:<[\s\S]*?>)?\(\s*'([^']+)',\s*'([A-Z]\w+)'/g),
      ...source.matchAll(/\[\s*'([a-z0-9./]*v\d\w*)',\s*'([A-Z]\w+)'/g),
      ...source.matchAll(/apiVersion: '([^']+)',\s*kind: '([A-Z]\w+)'/g),
    ].map((m) => [m[1], m[2]] as const),
  );
  // client-node's typed APIs: the fields Kube makes them into, and those made in place; CoordinationV1 → coordination.k8s.io/v1
  const clients = new Map([...source.matchAll(/this\.(\w+) = kc\.makeApiClient\(k8s\.(\w+)Api\)/g)].map((m) => [m[1], m[2]]));
  const apiGv = (api: string) => {
    const [, group, version] = /^(\w+?)(V\d\w*)$/.exec(api)!;
    if (group === 'Core') return version.toLowerCase();
    return (
      Object.keys(fixture.resources).find((g) => g.split('/')[1] === version.toLowerCase() && g.split(/[./]/)[0] === group.toLowerCase()) ??
      `${group.toLowerCase()}/${version.toLowerCase()}`
    );
  };
  const CALL = /(?:create|read|replace|patch|delete|list)(?:Namespaced)?([A-Z]\w*?)(?:WithHttpInfo)?\(/;
  const typedCalls = uniq([
    ...[...source.matchAll(new RegExp(`\\.(\\w+)\\.${CALL.source}`, 'g'))]
      .filter((m) => clients.has(m[1]))
      .map((m) => [apiGv(clients.get(m[1])!), m[2]] as const),
    ...[...source.matchAll(new RegExp(`makeApiClient\\(k8s\\.(\\w+)Api\\)\\.${CALL.source}`, 'g'))].map((m) => [apiGv(m[1]), m[2]] as const),
  ]);
  const subresources = uniq(
    [...source.matchAll(/\/api\/v1\/namespaces\/\$\{[^}]+\}\/(\w+)\/\$\{[^}]+\}(?::\$\{[^}]+\}|:\w+)?\/(\w+)/g)].map((m) => `${m[1]}/${m[2]}`),
  );
  const typedApis = uniq([...source.matchAll(/k8s\.(\w+?)(V\d\w*?)Api\b/g)].map((m) => [m[1], m[2].toLowerCase()] as const));
  const apiVersions = uniq([...source.matchAll(/'((?:[a-z0-9-]+\.)*(?:k8s\.io|apps|policy|batch|autoscaling)\/v\d\w*)'/g)].map((m) => m[1]));

  test('the source scan finds them (so an empty scan cannot pass)', () => {
    expect(byKind).toEqual(
      expect.arrayContaining([
        ['apps/v1', 'Deployment'],
        ['apps/v1', 'ReplicaSet'],
        ['v1', 'Pod'],
        ['v1', 'Event'],
        ['v1', 'Namespace'],
        ['policy/v1', 'PodDisruptionBudget'],
      ]),
    );
    expect(subresources).toEqual(expect.arrayContaining(['services/proxy', 'pods/proxy', 'pods/log']));
    expect(typedApis).toEqual(
      expect.arrayContaining([
        ['Coordination', 'v1'],
        ['Authorization', 'v1'],
      ]),
    );
    expect(apiVersions).toEqual(expect.arrayContaining(['apps/v1', 'policy/v1', 'coordination.k8s.io/v1']));
    expect(typedCalls).toEqual(
      expect.arrayContaining([
        ['coordination.k8s.io/v1', 'Lease'],
        ['authorization.k8s.io/v1', 'SelfSubjectAccessReview'],
      ]),
    );
  });

  const unserved = (pairs: (readonly [string, string])[]) =>
    pairs
      .map(([gv, kind]) => `${gv} ${kind}`)
      .filter((k) => !served(k.split(' ')[0], k.split(' ')[1]) && !(k in NEWER_WITH_FALLBACK) && !(k in CUSTOM_RESOURCES));

  test('reads, lists and deletions by apiVersion and kind', () => {
    expect(unserved(byKind)).toEqual([]);
  });

  test('the custom resources left out are real: written by the code, served by no release, not among the generated objects', () => {
    for (const k of Object.keys(CUSTOM_RESOURCES)) {
      const [gv, kind] = k.split(' ');
      expect([k, byKind.some(([g, x]) => g === gv && x === kind), served(gv, kind), gv in fixture.resources]).toEqual([k, true, false, false]);
      expect(objects.filter((o) => `${o.obj.apiVersion} ${o.obj.kind}` === k)).toEqual([]);
    }
  });

  test("client-node's typed API calls (a kind in the API's group version)", () => {
    expect(unserved(typedCalls)).toEqual([]);
    // the exceptions are real: each is made, and is not served by the floor
    for (const k of Object.keys(NEWER_WITH_FALLBACK)) {
      expect([k, [...byKind, ...typedCalls].some(([gv, kind]) => `${gv} ${kind}` === k), served(k.split(' ')[0], k.split(' ')[1])]).toEqual([k, true, false]);
    }
  });

  test('paths through the API server (service and pod proxies, pod logs)', () => {
    expect(subresources.filter((r) => !(r in fixture.resources.v1))).toEqual([]);
  });

  test("client-node's typed APIs: their group versions", () => {
    expect(typedApis.map(([g, v]) => apiGv(`${g}${v.toUpperCase()}`)).filter((x) => !(x in fixture.resources))).toEqual([]);
  });

  test('every API version named in the source', () => {
    expect(apiVersions.filter((v) => !(v in fixture.resources) && !(v in AGGREGATED_APIS))).toEqual([]);
    // the exceptions are real: named in the source, and no release serves them by itself
    for (const v of Object.keys(AGGREGATED_APIS)) expect([v, apiVersions.includes(v), v in fixture.resources]).toEqual([v, true, false]);
  });
});
