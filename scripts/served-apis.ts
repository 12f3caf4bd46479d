// Writes test/fixtures/k8s-1.27-served.json: what the oldest Kubernetes modelship supports (README "Supported
// Kubernetes", KUBERNETES_FLOOR) serves, from that release's own OpenAPI spec, for test/served-apis.test.ts:
//   - every resource the API server serves by default, by group version (from the spec's paths and their
//     x-kubernetes-group-version-kind, subresources included: pods/log, services/proxy, ...). The spec has every API
//     the release has, alpha and beta ones that are off by default too: those go, as pkg/controlplane/instance.go
//     (DefaultAPIResourceConfigSource) of the same zip lists them;
//   - the schema of each kind modelship writes, and of every definition those reach, compacted to property → type
//     (enough to walk each field a generated object sets: a field newer than the floor is not there).
// The spec comes from k8s.io/kubernetes's module zip on the Go module proxy (api/openapi-spec/swagger.json); the
// release's tag and the zip's sha256 go into the fixture, and a zip whose sha256 is not the pinned one is refused.
//   npx tsx scripts/served-apis.ts [--zip FILE]   (FILE: the zip, already downloaded, instead of fetching it)
import * as crypto from 'crypto';
import * as fs from 'fs';
import AdmZip from 'adm-zip';

/** The newest (and last) patch release of the floor's minor, 1.27 (the proxy's /@v/list and `go list -m -versions k8s.io/kubernetes`). */
const RELEASE = 'v1.27.16';
const SHA256 = '8929482eb9c3bd78c30d37783a6163b23fd4dafddcc6883e99f3b3f987a4e8eb';
const SOURCE = `https://proxy.golang.org/k8s.io/kubernetes/@v/${RELEASE}.zip`;
const SPEC = `k8s.io/kubernetes@${RELEASE}/api/openapi-spec/swagger.json`;
const CONTROLPLANE = `k8s.io/kubernetes@${RELEASE}/pkg/controlplane/instance.go`;
const OUT = 'test/fixtures/k8s-1.27-served.json';

/**
 * The kinds modelship writes (apiVersion kind): the rollout's objects (manifests.ts, autoscale.ts's HPA; KEDA's
 * ScaledObject is a custom resource, in no release's spec), its namespace, its deploy Lease, its permission checks, and
 * what `modelship rbac` prints (permissions.ts). A kind the floor does not serve has no
 * definition here, and the test says so.
 */
const WRITTEN = [
  'apps/v1 Deployment',
  'v1 Service',
  'v1 Secret',
  'v1 Namespace',
  'policy/v1 PodDisruptionBudget',
  'autoscaling/v2 HorizontalPodAutoscaler',
  'coordination.k8s.io/v1 Lease',
  'authorization.k8s.io/v1 SelfSubjectAccessReview',
  'authentication.k8s.io/v1 SelfSubjectReview',
  'authentication.k8s.io/v1beta1 SelfSubjectReview',
  'v1 ServiceAccount',
  'rbac.authorization.k8s.io/v1 Role',
  'rbac.authorization.k8s.io/v1 RoleBinding',
  'rbac.authorization.k8s.io/v1 ClusterRole',
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
];

type Schema = {
  $ref?: string;
  type?: string;
  format?: string;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  properties?: Record<string, Schema>;
  'x-kubernetes-group-version-kind'?: Gvk[];
};
type Gvk = { group: string; version: string; kind: string };
type Op = { 'x-kubernetes-group-version-kind'?: Gvk; 'x-kubernetes-action'?: string };

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

async function zipBytes(): Promise<Buffer> {
  const file = arg('--zip');
  if (file) return fs.readFileSync(file);
  const r = await fetch(SOURCE);
  if (!r.ok) throw new Error(`GET ${SOURCE}: HTTP ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

const ref = (s: Schema) => s.$ref!.replace('#/definitions/', '');

/**
 * A property's type, compact: a definition's name, `[]T` (an array), `map[T]` (an object of T values), `object` (free
 * form), or the JSON type (string, integer, number, boolean); `int-or-string` for IntOrString.
 */
function typeOf(s: Schema): string {
  if (s.$ref) return ref(s);
  if (s.type === 'array') return `[]${typeOf(s.items ?? {})}`;
  if (s.type === 'object' || (!s.type && s.additionalProperties))
    return typeof s.additionalProperties === 'object' ? `map[${typeOf(s.additionalProperties)}]` : 'object';
  if (s.format === 'int-or-string') return 'int-or-string';
  return s.type ?? 'object';
}

/**
 * The group versions the API server does not serve by default (alpha, and beta ones since 1.24), but for the legacy
 * beta resources it still enables: from instance.go's lists, each Go package (k8s.io/api/<dir>/<version>) told apart
 * by the group of the spec's definitions from that package (io.k8s.api.<dir>.<version>.*).
 */
function offByDefault(instanceGo: string, definitions: Record<string, Schema>): { off: Set<string>; legacyOn: Set<string> } {
  // (the API's package, k8s.io/api/<dir>/<version>, or the internal one of the same name under k8s.io/kubernetes/pkg/apis)
  const pkgs = new Map([...instanceGo.matchAll(/^\s*(\w+) "k8s\.io\/(?:api|kubernetes\/pkg\/apis)\/([\w/]+)"$/gm)].map((m) => [m[1], m[2]]));
  // (a package whose API the release no longer has, autoscaling/v2beta1 say, has no definitions: nothing to leave out)
  const gvOf = (alias: string): string | undefined => {
    const prefix = `io.k8s.api.${pkgs.get(alias)!.replace(/\//g, '.')}.`;
    const gvk = Object.entries(definitions).find(([d, s]) => d.startsWith(prefix) && s['x-kubernetes-group-version-kind'])?.[1][
      'x-kubernetes-group-version-kind'
    ]![0];
    return gvk && (gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version);
  };
  const list = (name: string) => {
    const m = new RegExp(`${name} = \\[\\]schema\\.GroupVersion(?:Resource)?\\{([^}]*)\\}`).exec(instanceGo);
    if (!m) throw new Error(`${CONTROLPLANE}: no ${name}`);
    return m[1];
  };
  const off = new Set(
    [...`${list('betaAPIGroupVersionsDisabledByDefault')}${list('alphaAPIGroupVersionsDisabledByDefault')}`.matchAll(/(\w+)\.SchemeGroupVersion/g)]
      .map((m) => gvOf(m[1]))
      .filter((gv): gv is string => gv !== undefined),
  );
  const legacyOn = new Set(
    [...list('legacyBetaEnabledByDefaultResources').matchAll(/(\w+)\.SchemeGroupVersion\.WithResource\("([^"]+)"\)/g)].map((m) => `${gvOf(m[1])} ${m[2]}`),
  );
  return { off, legacyOn };
}

/** Each resource served by default (resource or resource/subresource) by group version ("v1" for the core group), and its kind. */
function servedResources(
  paths: Record<string, Record<string, Op>>,
  defaults: { off: Set<string>; legacyOn: Set<string> },
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [p, ops] of Object.entries(paths)) {
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/(.*)$/.exec(p);
    if (!m) continue;
    const gv = m[1] ?? `${m[2]}/${m[3]}`;
    let segs = m[4].split('/');
    if (segs[0] === 'watch') continue; // the deprecated watch paths: the same resources
    if (segs[0] === 'namespaces' && segs[1] === '{namespace}' && segs.length > 2) segs = segs.slice(2);
    const resource = segs[2] && !segs[2].startsWith('{') ? `${segs[0]}/${segs[2]}` : segs[0];
    if (defaults.off.has(gv) && !defaults.legacyOn.has(`${gv} ${segs[0]}`)) continue;
    const gvk = Object.values(ops).find((o) => typeof o === 'object' && o['x-kubernetes-group-version-kind'])?.['x-kubernetes-group-version-kind'];
    if (!gvk) continue;
    (out[gv] ??= {})[resource] = gvk.kind;
  }
  return Object.fromEntries(
    Object.entries(out)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([gv, r]) => [gv, Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b)))]),
  );
}

async function main(): Promise<void> {
  const bytes = await zipBytes();
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== SHA256) throw new Error(`${SOURCE}: sha256 ${sha256}, expected ${SHA256} (pinned here when the fixture was made)`);
  const entry = new AdmZip(bytes).getEntry(SPEC);
  if (!entry) throw new Error(`${SOURCE} has no ${SPEC}`);
  const spec = JSON.parse(entry.getData().toString('utf8')) as { paths: Record<string, Record<string, Op>>; definitions: Record<string, Schema> };
  const instanceGo = new AdmZip(bytes).getEntry(CONTROLPLANE)?.getData().toString('utf8');
  if (!instanceGo) throw new Error(`${SOURCE} has no ${CONTROLPLANE}`);
  const defaults = offByDefault(instanceGo, spec.definitions);

  const kinds: Record<string, string> = {};
  for (const w of WRITTEN) {
    const [apiVersion, kind] = w.split(' ');
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    if (defaults.off.has(apiVersion)) continue;
    const name = Object.keys(spec.definitions).find((d) =>
      spec.definitions[d]['x-kubernetes-group-version-kind']?.some((g) => g.group === group && g.version === version && g.kind === kind),
    );
    if (name) kinds[w] = name;
  }
  // the definitions the written kinds reach, each as property → type (or, with no properties, its own type)
  const definitions: Record<string, Record<string, string> | string> = {};
  const todo = Object.values(kinds);
  while (todo.length) {
    const name = todo.pop()!;
    if (name in definitions) continue;
    const d = spec.definitions[name];
    if (!d.properties) {
      definitions[name] = typeOf({ ...d, $ref: undefined });
      continue;
    }
    definitions[name] = Object.fromEntries(Object.entries(d.properties).map(([k, s]) => [k, typeOf(s)]));
    for (const s of Object.values(d.properties)) {
      for (let t: Schema | undefined = s; t; t = t.items ?? (typeof t.additionalProperties === 'object' ? t.additionalProperties : undefined))
        if (t.$ref) todo.push(ref(t));
    }
  }
  const fixture = {
    release: RELEASE,
    source: SOURCE,
    sha256,
    files: [SPEC, CONTROLPLANE],
    generatedBy: 'scripts/served-apis.ts',
    offByDefault: [...defaults.off].sort(),
    resources: servedResources(spec.paths, defaults),
    kinds,
    definitions: Object.fromEntries(Object.entries(definitions).sort(([a], [b]) => a.localeCompare(b))),
  };
  fs.writeFileSync(OUT, `${JSON.stringify(fixture, null, 1)}\n`);
  console.log(
    `wrote ${OUT}: ${Object.keys(fixture.resources).length} group versions, ${Object.keys(kinds).length} kinds, ${Object.keys(definitions).length} definitions (${RELEASE}, sha256 ${sha256})`,
  );
}

void main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
