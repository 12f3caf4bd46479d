import * as fs from 'fs';
import * as path from 'path';
import { REPO, tmpDir } from './helpers/caffe';
import { requireLab } from './helpers/lab';
import {
  requireCluster,
  kubectl,
  kubectlJson,
  exists,
  waitFor,
  KUBECONFIG,
  LAB_PODS_PATCH,
  dropNamespaces,
  RESTRICTED,
  createRestrictedNamespace,
} from './helpers/kube';
import { lenetImage, LENET } from './helpers/lenet-image';
import { startAction, runAction, parseOutputFile, RunnerResult } from './helpers/runner';
import { labDescribe } from './helpers/needs';

// Issue 20, point 9: a rollout killed mid-way (the runner's SIGKILL after the cancellation grace period), then the
// action's post step, on the lab's Kubernetes cluster (v1.34). The post step removes everything the unfinished run
// created (its canary and the canary's Service, the main Service, the pull Secret, the lease, the namespace when it
// made it and nothing else is in it) and nothing else (a Service or namespace that was there before, an object
// someone else put in the run's namespace). The action runs from the bundle: dist/index.js, or the bundle that
// MODELSHIP_TEST_BUNDLE names (a scratch build of the working tree).
jest.setTimeout(600_000);

const BUNDLE = process.env.MODELSHIP_TEST_BUNDLE ?? path.join(REPO, 'dist/index.js');
const work = tmpDir('modelship-rollout-post-');
const nsPrefix = `rp${process.pid}`;
const onRealNode = path.join(work, 'realnode.yaml');
let image = '';

fs.writeFileSync(onRealNode, LAB_PODS_PATCH);

const leaseHolder = (ns: string) => {
  try {
    return kubectlJson<any>(['-n', ns, 'get', 'lease', 'modelship-lenet']).spec.holderIdentity as string;
  } catch {
    return undefined;
  }
};

const annotation = (kind: string, ns: string | undefined, name: string, key: string): string | undefined =>
  kubectlJson<any>([...(ns ? ['-n', ns] : []), 'get', kind, name]).metadata.annotations?.[key];

beforeAll(async () => {
  requireLab();
  requireCluster();
  // the run's LeNet image, built once for every rollout file (test/helpers/lenet-image.ts)
  image = await lenetImage('a');
});

afterAll(() => dropNamespaces(nsPrefix));

/**
 * The action's rollout (a 60 s bake), killed with SIGKILL once the bake has started; returns what it saved for its post
 * step. drain-delay 0: how the pods terminate is not what these tests are about, and a namespace goes once its pods
 * have (the preStop wait would add its 5 s, and the server's own 2 s, to every wait for a namespace to go).
 */
async function killMidBake(
  ns: string,
  run: string,
  more: Record<string, string> = {},
): Promise<{ env: Record<string, string>; state: Record<string, string> }> {
  const kubeconfig = fs.readFileSync(KUBECONFIG, 'utf8');
  const inputs = {
    stage: 'rollout',
    image,
    'model-name': 'lenet',
    app: 'lenet',
    namespace: ns,
    'bake-time': '60',
    'drain-delay': '0',
    reference: LENET,
    cpu: '50m',
    memory: '256Mi',
    patch: onRealNode,
    kubeconfig,
    ...more,
  };
  const env = { GITHUB_RUN_ID: run, GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'deploy' };
  const started = startAction(inputs, { env, main: BUNDLE });
  try {
    await waitFor('the bake to start', () => /bake 60 s/.test(started.log()), 120_000);
  } catch (e) {
    started.child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}; log:\n${started.log().slice(-3000)}`);
  }
  started.child.kill('SIGKILL'); // what a runner does when cancellation's grace period is over
  const r = await started.done;
  return { env, state: parseOutputFile(fs.readFileSync(r.stateFile, 'utf8')) };
}

/** The action's post step with the state the main step saved (the runner gives it as STATE_<name>). */
function post(k: { env: Record<string, string>; state: Record<string, string> }): RunnerResult {
  const r = runAction({}, { env: { ...k.env, ...Object.fromEntries(Object.entries(k.state).map(([n, v]) => [`STATE_${n}`, v])) }, main: BUNDLE });
  if (r.code !== 0) throw new Error(`post step exit ${r.code}:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return r;
}

/** The post step's report lines, in order of the sorted `expected` to compare with. */
const postLines = (r: RunnerResult) =>
  r.stdout
    .split('\n')
    .filter((l) => l.startsWith('modelship post:'))
    .sort();
const sorted = (l: string[]) => [...l].sort();

const nsExists = (ns: string) => kubectl(['get', 'namespaces', '-o', 'name']).split('\n').includes(`namespace/${ns}`);
const none = (ns: string, objects: string[][]) => {
  for (const [kind, name] of objects) expect(`${kind}/${name} ${exists(kind, ns, name)}`).toBe(`${kind}/${name} false`);
};
const RUN_OBJECTS = [
  ['deployment', 'lenet-canary'],
  ['service', 'lenet-canary'],
  ['service', 'lenet'],
  ['secret', 'lenet-registry'],
  ['lease', 'modelship-lenet'],
];

labDescribe(['docker', 'registry', 'cluster', 'node24'])('the post step after a killed job', () => {
  test('killed in a namespace it created: the post step removes the canary, its Service, the main Service, the pull Secret, the lease and the namespace', async () => {
    const ns = `${nsPrefix}-new`;
    const k = await killMidBake(ns, '9001', { 'create-pull-secret': 'true', 'registry-username': 'lab', 'registry-password': 'lab-password' });
    const owner = 'gh-9001-1-deploy';
    // what the killed run left, each marked as its own
    expect(exists('deployment', ns, 'lenet-canary')).toBe(true);
    expect(kubectlJson<any>(['-n', ns, 'get', 'service', 'lenet-canary']).metadata.labels['modelship.dev/owner']).toBe(owner);
    expect(annotation('service', ns, 'lenet', 'modelship.dev/created-by')).toBe(owner);
    expect(annotation('secret', ns, 'lenet-registry', 'modelship.dev/created-by')).toBe(owner);
    expect(annotation('namespace', undefined, ns, 'modelship.dev/created-by')).toBe(owner);
    // (a namespace modelship creates enforces Pod Security restricted, which its pods meet)
    expect(kubectlJson<any>(['get', 'namespace', ns]).metadata.labels).toMatchObject(RESTRICTED);
    expect(leaseHolder(ns)).toBe(owner);
    const r = post(k);
    expect(postLines(r)).toEqual(
      sorted([
        `modelship post: deleted ${ns}/lenet-canary (Deployment and Service)`,
        `modelship post: deleted Secret ${ns}/lenet-registry, which this run created`,
        `modelship post: deleted Service ${ns}/lenet, which this run created`,
        `modelship post: deleted namespace ${ns}, which this run created`,
        `modelship post: released the deploy lease of ${ns}/lenet`,
      ]),
    );
    await waitFor('the namespace to go', () => !nsExists(ns), 120_000);
  });

  test("killed in a namespace it created, where someone else has put an object since: the run's objects go, the namespace stays", async () => {
    const ns = `${nsPrefix}-shared`;
    const k = await killMidBake(ns, '9004', { 'create-pull-secret': 'true', 'registry-username': 'lab', 'registry-password': 'lab-password' });
    kubectl(['-n', ns, 'create', 'configmap', 'someone-elses', '--from-literal=a=b']);
    const r = post(k);
    expect(postLines(r)).toEqual(
      sorted([
        `modelship post: deleted ${ns}/lenet-canary (Deployment and Service)`,
        `modelship post: deleted Secret ${ns}/lenet-registry, which this run created`,
        `modelship post: deleted Service ${ns}/lenet, which this run created`,
        `modelship post: kept namespace ${ns}, which this run created: it also holds ConfigMap someone-elses`,
        `modelship post: released the deploy lease of ${ns}/lenet`,
      ]),
    );
    none(ns, RUN_OBJECTS);
    expect(exists('configmap', ns, 'someone-elses')).toBe(true);
    expect(nsExists(ns)).toBe(true);
  });

  test('killed where the namespace and a Service of the same name were there before: both are kept', async () => {
    const ns = `${nsPrefix}-old`;
    createRestrictedNamespace(ns);
    kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'lenet', labels: { team: 'theirs' } },
        spec: { selector: { app: 'theirs' }, ports: [{ name: 'http', port: 80, targetPort: 8000, protocol: 'TCP' }] },
      }),
    );
    const uid = kubectlJson<any>(['-n', ns, 'get', 'service', 'lenet']).metadata.uid;
    const k = await killMidBake(ns, '9002');
    const owner = 'gh-9002-1-deploy';
    expect(exists('deployment', ns, 'lenet-canary')).toBe(true);
    expect(annotation('service', ns, 'lenet', 'modelship.dev/created-by')).toBeUndefined();
    expect(leaseHolder(ns)).toBe(owner);
    const r = post(k);
    expect(postLines(r)).toEqual(
      sorted([`modelship post: deleted ${ns}/lenet-canary (Deployment and Service)`, `modelship post: released the deploy lease of ${ns}/lenet`]),
    );
    none(ns, [
      ['deployment', 'lenet-canary'],
      ['service', 'lenet-canary'],
      ['lease', 'modelship-lenet'],
    ]);
    // the Service that was there before: the same object, kept
    expect(kubectlJson<any>(['-n', ns, 'get', 'service', 'lenet']).metadata.uid).toBe(uid);
    expect(nsExists(ns)).toBe(true);
  });

  test('a run that finished (promoted) leaves nothing for its post step; what it created stays', async () => {
    const ns = `${nsPrefix}-done`;
    const kubeconfig = fs.readFileSync(KUBECONFIG, 'utf8');
    const env = { GITHUB_RUN_ID: '9003', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'deploy' };
    const inputs = {
      stage: 'rollout',
      image,
      'model-name': 'lenet',
      app: 'lenet',
      namespace: ns,
      'bake-time': '2',
      reference: LENET,
      cpu: '50m',
      memory: '256Mi',
      patch: onRealNode,
      kubeconfig,
    };
    const main = runAction(inputs, { env, main: BUNDLE });
    if (main.code !== 0) throw new Error(`rollout exit ${main.code}:\n${main.stdout.slice(-3000)}`);
    expect(main.outputs.decision).toBe('promoted');
    expect(annotation('deployment', ns, 'lenet', 'modelship.dev/promoted-by')).toBe('gh-9003-1-deploy');
    const r = post({ env, state: parseOutputFile(fs.readFileSync(main.stateFile, 'utf8')) });
    expect(postLines(r)).toEqual(['modelship post: nothing to clean up']);
    expect(exists('deployment', ns, 'lenet')).toBe(true);
    expect(exists('service', ns, 'lenet')).toBe(true);
    expect(nsExists(ns)).toBe(true);
  });
});
