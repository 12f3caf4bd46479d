import * as fs from 'fs';
import * as path from 'path';
import { execFile } from 'child_process';
import { tmpDir } from './helpers/caffe';
import { requireLab } from './helpers/lab';
import {
  requireCluster,
  kubectl,
  kubectlJson,
  apiRequest,
  runCliProcess,
  rolloutArgs,
  serviceClient,
  dropNamespaces,
  KUBECTL,
  KUBECONFIG,
  CPU_BURST_PATCH,
} from './helpers/kube';
import { lenetImage, LENET } from './helpers/lenet-image';
import { labDescribe } from './helpers/needs';

// Issue 21, point 3: a node drain on the lab's Kubernetes v1.34 cluster while a client calls the Service. The stable
// Deployment's pods spread over the two real kubelet nodes (topology spread); `kubectl drain` of one of them evicts
// its pods through the Eviction API, which the PodDisruptionBudget modelship made holds to one at a time: no request
// fails, and the evictions wait for the budget. The drained node is the lab's second real node (realnode2), which
// only pods tolerating its own taint use, so the drain never touches another test's pods.
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24']);

const NODE2 = process.env.LAB_REAL_NODE2 ?? 'realnode2';
const work = tmpDir('modelship-drain-');
const ns = `dr${process.pid}`;
const REPLICAS = 4;
let image = '';

/** The pods may go to either real node: both carry realnode=true; realnode2 has a taint of its own as well. */
const BOTH_NODES_PATCH = `kind: Deployment
spec:
  template:
    spec:
      nodeSelector: {realnode: "true"}
      tolerations:
      - {key: realnode, operator: Exists, effect: NoSchedule}
      - {key: realnode2, operator: Exists, effect: NoSchedule}
      dnsPolicy: Default
`;

interface PodState {
  name: string;
  node: string;
  ready: boolean;
  deleting: boolean;
}

/** The stable pods, straight from the API server (cheaper than a kubectl process every few hundred ms). */
async function stablePods(): Promise<PodState[]> {
  const r = await apiRequest(`/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent('app.kubernetes.io/name=lenet,track=stable')}`);
  if (r.status !== 200) throw new Error(`list pods: HTTP ${r.status}`);
  return (JSON.parse(r.body.toString()).items as any[]).map((p) => ({
    name: p.metadata.name,
    node: p.spec.nodeName ?? '',
    ready: (p.status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
    deleting: !!p.metadata.deletionTimestamp,
  }));
}

/** `kubectl drain` as an operator runs it, in the background (its output shows the evictions the budget refused). */
function drain(node: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      ['drain', node, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=240s', `--pod-selector=app.kubernetes.io/name=lenet`],
      { env: { ...process.env, KUBECONFIG }, encoding: 'utf8' },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

beforeAll(async () => {
  requireLab();
  requireCluster();
  const node = kubectlJson<any>(['get', 'node', NODE2]);
  if (!(node.status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'))
    throw new Error(`the lab's second real node ${NODE2} is not Ready: lab/up.sh k134 starts it`);
  // the run's LeNet image, built once for every rollout file (test/helpers/lenet-image.ts)
  image = await lenetImage('a');
  // a namespace that enforces Pod Security's restricted profile, as production namespaces often do
  kubectl(['create', 'namespace', ns]);
  kubectl(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
});

afterAll(() => {
  try {
    kubectl(['uncordon', NODE2]);
  } catch {
    /* the node is gone: nothing to give back */
  }
  dropNamespaces(ns, ns);
});

describeLab('lab: a node drain during serving (PodDisruptionBudget, topology spread)', () => {
  test(`draining a node that serves stable pods loses no request, and the evictions wait for the budget`, async () => {
    const patch = path.join(work, 'both-nodes.yaml');
    fs.writeFileSync(patch, `${CPU_BURST_PATCH}${BOTH_NODES_PATCH}`);
    const args = rolloutArgs({
      image,
      'model-name': 'lenet',
      app: 'lenet',
      namespace: ns,
      strategy: 'basic',
      replicas: String(REPLICAS),
      'bake-time': '1',
      'rollout-timeout': '180',
      reference: LENET,
      cpu: '50m',
      memory: '256Mi',
      patch,
    });
    const r = await runCliProcess(args);
    if (r.code !== 0) throw new Error(`rollout exit ${r.code}:\n${r.stderr.slice(-3000)}`);
    expect(r.outputs.decision).toBe('promoted');

    // the budget modelship made: auto with 4 replicas is one pod at a time, unhealthy pods always evictable
    const pdb = kubectlJson<any>(['-n', ns, 'get', 'poddisruptionbudget', 'lenet']);
    expect(pdb.spec).toMatchObject({
      maxUnavailable: 1,
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
      selector: { matchLabels: { 'app.kubernetes.io/name': 'lenet', track: 'stable' } },
    });
    // the soft spread put the pods on both real nodes
    const before = await stablePods();
    const onNode2 = before.filter((p) => p.node === NODE2);
    expect(before.filter((p) => p.ready && !p.deleting)).toHaveLength(REPLICAS);
    expect(new Set(before.map((p) => p.node)).size).toBe(2);
    expect(onNode2).toHaveLength(REPLICAS / 2);

    const client = serviceClient({ ns, service: 'lenet', model: 'lenet', reference: LENET, loops: 4 });
    // watch the pods during the drain: never fewer serving than the budget allows
    let minServing = REPLICAS;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const serving = (await stablePods()).filter((p) => p.ready && !p.deleting).length;
        minServing = Math.min(minServing, serving);
        await new Promise((res) => setTimeout(res, 200));
      }
    })();
    await new Promise((res) => setTimeout(res, 2000));
    const drained = await drain(NODE2);
    // the replacements are Ready elsewhere and the evicted pods are gone
    const t0 = Date.now();
    let after = await stablePods();
    while (Date.now() - t0 < 90_000 && !(after.length === REPLICAS && after.every((p) => p.ready && !p.deleting))) {
      await new Promise((res) => setTimeout(res, 500));
      after = await stablePods();
    }
    await new Promise((res) => setTimeout(res, 2000));
    const stats = await client.stop();
    watching = false;
    await watcher;

    expect({ code: drained.code, out: drained.out.slice(-2000) }).toMatchObject({ code: 0 });
    for (const p of onNode2) expect(drained.out).toContain(`pod/${p.name} evicted`);
    // more than one pod to evict and one at a time allowed: kubectl was told to wait by the budget
    if (onNode2.length > 1) expect(drained.out).toMatch(/Cannot evict pod as it would violate the pod's disruption budget/);
    expect(minServing).toBeGreaterThanOrEqual(REPLICAS - 1);
    expect(after.filter((p) => p.ready && !p.deleting && p.node !== NODE2)).toHaveLength(REPLICAS);
    expect(stats.failed).toEqual([]);
    expect(stats.ok).toBeGreaterThan(50);
  });
});
