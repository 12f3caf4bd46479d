import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { FIXTURES, tmpDir, wrongLenetCaffemodel } from './helpers/caffe';
import { LAB, requireLab } from './helpers/lab';
import { requireCluster, kubectl, kubectlJson, exists, pods, apiRequest, serviceAccountKubeconfig, startCli, runCliProcess, waitFor, PROMETHEUS, KUBECONFIG, REAL_NODE_PATCH, serviceClient, rolloutArgs, dropNamespaces as dropPrefixed, setNodeGpus, serverVersion, RESTRICTED, createRestrictedNamespace, privilegedPodRefusal, serverDryRun } from './helpers/kube';
import { generatedObjects } from './helpers/generated-objects';
import { sleepActionServed } from '../src/rollout/manifests';
import { readNpy } from '../src/util/npy';
import { startAction, runAction, parseOutputFile } from './helpers/runner';
import { encodeInferRequest, decodeInferResponse, HEADER_LENGTH } from '../src/protocol/kserve';
import { compareOutput, DEFAULT_TOLERANCE } from '../src/shared/compare';
import { labDescribe } from './helpers/needs';

// The rollout stage on the lab's real Kubernetes cluster (v1.34): pods of the real serving image run on the real
// kubelet node (realnode), verified through the API server's service proxy. Each test gets its own namespace.
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24']);

const LENET = path.join(FIXTURES, 'lenet');
const work = tmpDir('modelship-rollout-');
const repo = `${LAB.registry}/modelship-test/lenet-rollout-${process.pid}`;
const images: Record<'a' | 'b' | 'wrong', string> = { a: '', b: '', wrong: '' };
const nsPrefix = `ro${process.pid}`;
const onRealNode = path.join(work, 'realnode.yaml');
/** Requests the Service must answer right during a promotion (4 loops for a minute or more; ~3000 measured on the lab). */
const MIN_PROMOTION_REQUESTS = 300;

fs.writeFileSync(onRealNode, REAL_NODE_PATCH);

function patchFile(name: string, extra: string): string {
  const f = path.join(work, name);
  fs.writeFileSync(f, `${fs.readFileSync(onRealNode, 'utf8')}${extra}`);
  return f;
}

/** The rollout flags of these tests; `more` overrides any of them (the CLI refuses a flag given twice). */
const base = (ns: string, image: string, more: string[] = []) =>
  rolloutArgs({ image, 'model-name': 'lenet', app: 'lenet', namespace: ns, replicas: '2', 'bake-time': '3', 'rollout-timeout': '90', reference: LENET, cpu: '50m', memory: '256Mi', patch: onRealNode }, more);

/** The exit code, with the run's log in the failure message when it is not the expected one. */
function expectExit(r: { code: number | null; stderr: string }, code: number): void {
  if (r.code !== code) throw new Error(`exit code ${r.code}, expected ${code}; log:\n${r.stderr.slice(-3000)}`);
}

beforeAll(async () => {
  requireLab();
  requireCluster();
  const onnx = path.join(work, 'lenet.onnx');
  expect((await runCli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', path.join(LENET, 'weights.caffemodel'), '--out', onnx, '--reference', LENET])).code).toBe(0);
  const wrongModel = wrongLenetCaffemodel(LENET, path.join(work, 'wrong.caffemodel'));
  const wrongOnnx = path.join(work, 'wrong', 'lenet.onnx');
  expect((await runCli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', wrongModel, '--out', wrongOnnx])).code).toBe(0);
  for (const [k, model, rev] of [['a', onnx, 'a'], ['b', onnx, 'b'], ['wrong', wrongOnnx, 'c']] as const) {
    const r = await runCli(['image', '--image', repo, '--model', model, '--model-name', 'lenet', '--base-image', LAB.baseImage, '--revision', rev.repeat(40), '--ref', `refs/heads/${k}`, '--compose-file', path.join(work, `${k}.yml`), '--json']);
    expectExit(r, 0);
    images[k] = r.json().image;
  }
});

/** Delete this run's namespaces (all, or one), so finished tests leave the real node's CPU to the next ones. */
const dropNamespaces = (only?: string): void => dropPrefixed(nsPrefix, only);

afterAll(() => dropNamespaces());

/** Sends the golden batch-1 request to every stable pod (pod proxy) every 300 ms; counts right and wrong answers. */
function stablePoller(ns: string, app: string) {
  const x = readNpy(path.join(LENET, 'input_b1.npy'));
  const ref = readNpy(path.join(LENET, 'output_b1__prob.npy'));
  const req = encodeInferRequest([{ name: 'data', shape: x.shape, data: x.data }], { binaryOutputs: true });
  const stats = { ok: 0, failed: [] as string[] };
  let stop = false;
  const names = pods(ns, app, 'stable').map((p) => p.name);
  const loop = (async () => {
    while (!stop) {
      for (const n of names) {
        try {
          const r = await apiRequest(`/api/v1/namespaces/${ns}/pods/${n}:8000/proxy/v2/models/lenet/infer`, { body: req.body, headers: { [HEADER_LENGTH]: req.headerLength } });
          if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.toString().slice(0, 100)}`);
          const out = decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH])).outputs[0];
          const c = compareOutput('prob', 1, out, ref, DEFAULT_TOLERANCE);
          if (!c.pass) throw new Error(`wrong output from ${n}`);
          stats.ok++;
        } catch (e) {
          stats.failed.push(`${n}: ${(e as Error).message}`);
        }
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  return {
    stats,
    stop: async () => {
      stop = true;
      await loop;
      return stats;
    },
  };
}

/** Every pod of the app, terminating ones included: name, track, image, deleting, and whether its server has exited. */
function allPods(ns: string, app: string): { name: string; track: string; image: string; deleting: boolean; exited: boolean }[] {
  return kubectlJson<{ items: any[] }>(['-n', ns, 'get', 'pods', '-l', `app.kubernetes.io/name=${app}`]).items.map((p) => ({
    name: p.metadata.name,
    track: p.metadata.labels.track,
    image: p.spec.containers[0].image,
    deleting: !!p.metadata.deletionTimestamp,
    // (once its container has stopped, a terminating pod on the 1.20 kubelet may show it as waiting again)
    exited: ['Succeeded', 'Failed'].includes(p.status.phase) || (!!p.metadata.deletionTimestamp && !(p.status.containerStatuses ?? []).some((c: any) => c.state?.running)),
  }));
}

const leaseHolder = (ns: string) => {
  try {
    return kubectlJson<any>(['-n', ns, 'get', 'lease', 'modelship-lenet']).spec.holderIdentity as string;
  } catch {
    return undefined;
  }
};

describeLab('canary rollout on the real cluster', () => {
  const ns = `${nsPrefix}-canary`;
  afterAll(() => dropNamespaces(ns));

  test('first deploy: the canary is verified, then goes straight to stable', async () => {
    const r = await runCliProcess(base(ns, images.a));
    expect(r.stderr).toContain('create namespace');
    expectExit(r, 0);
    // the namespace it created enforces Pod Security restricted (a privileged pod is refused there), and its own pods
    // passed: the stage's server-side dry run of everything it writes came first
    expect(kubectlJson<any>(['get', 'namespace', ns]).metadata.labels).toMatchObject(RESTRICTED);
    expect(privilegedPodRefusal(ns)).toMatch(/pods "privileged-probe" is forbidden: violates PodSecurity "restricted:latest": privileged/);
    expect(r.stderr).toMatch(new RegExp(`server-side dry run: the API server admits Deployment lenet-canary, Service lenet-canary, Deployment lenet, Service lenet, PodDisruptionBudget lenet in namespace ${ns}`));
    expect(r.outputs).toMatchObject({ decision: 'promoted', 'gate-pods': 'pass', 'gate-golden': 'pass', 'gate-prometheus': 'skipped', 'canary-replicas': '1' });
    const stable = pods(ns, 'lenet', 'stable');
    expect(stable).toHaveLength(2);
    expect(stable.every((p) => p.image === images.a && p.ready)).toBe(true);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
    expect(exists('service', ns, 'lenet-canary')).toBe(false);
    expect(exists('service', ns, 'lenet')).toBe(true);
    expect(leaseHolder(ns)).toBeUndefined();
    const report = JSON.parse(r.outputs['rollout-report']);
    expect(report.timeline.map((t: any) => t.step)).toEqual(expect.arrayContaining([expect.stringMatching(/^apply lenet-canary/), 'canary pods Ready', expect.stringMatching(/^golden requests/), 'bake 3 s', expect.stringMatching(/^promote/), expect.stringMatching(/^delete lenet-canary/)]));
    // the main Service serves the golden request through the API server's service proxy
    const x = readNpy(path.join(LENET, 'input_b1.npy'));
    const req = encodeInferRequest([{ name: 'data', shape: x.shape, data: x.data }], { binaryOutputs: true });
    const res = await apiRequest(`/api/v1/namespaces/${ns}/services/lenet:http/proxy/v2/models/lenet/infer`, { body: req.body, headers: { [HEADER_LENGTH]: req.headerLength } });
    expect(res.status).toBe(200);
  });

  test('good canary: promoted, the stable runs the new digest, the canary is gone; no request through the Service is lost', async () => {
    // users keep calling the Service during the whole promotion: the canary's pods join it, the stable's pods are
    // replaced one by one, the canary's are deleted; every terminating pod must keep answering until no proxy sends
    // to it any more (preStop for drain-delay), then finish what it has in flight
    const client = serviceClient({ ns, service: 'lenet', model: 'lenet', reference: LENET });
    const r = await runCliProcess(base(ns, images.b));
    let stats: Awaited<ReturnType<typeof client.stop>>;
    try {
      await waitFor('the old stable and the canary pods to exit', () => allPods(ns, 'lenet').every((p) => (p.track === 'stable' && p.image === images.b && !p.deleting) || p.exited), 120_000);
      await new Promise((res) => setTimeout(res, 3000));
    } finally {
      stats = await client.stop();
    }
    console.log(`requests through the Service during the promotion: ${stats.sent} sent, ${stats.ok} ok, ${stats.failed.length} failed in ${stats.seconds.toFixed(1)} s${stats.failed.length ? `\n${stats.failed.slice(0, 20).join('\n')}` : ''}`);
    expectExit(r, 0);
    expect(r.outputs.decision).toBe('promoted');
    expect(Number(r.outputs['verify-latency-p95-ms'])).toBeGreaterThan(0);
    // the raw object: kubectl from 1.21 on hides managedFields
    const d = JSON.parse(kubectl(['get', '--raw', `/apis/apps/v1/namespaces/${ns}/deployments/lenet`]));
    expect(d.spec.template.spec.containers[0].image).toBe(images.b);
    expect(d.metadata.managedFields.some((m: any) => m.manager === 'modelship' && m.operation === 'Apply')).toBe(true);
    await waitFor('old stable pods gone', () => pods(ns, 'lenet', 'stable').every((p) => p.image === images.b));
    expect(pods(ns, 'lenet', 'stable')).toHaveLength(2);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
    // graceful termination and the metrics-only port, as generated (drain-delay 5 s by default)
    const pod = d.spec.template.spec;
    expect(pod.terminationGracePeriodSeconds).toBe(32);
    // the kubelet's sleep action where every kubelet the API server allows runs it, else the image's Node.js waits
    expect(pod.containers[0].lifecycle.preStop).toEqual(sleepActionServed(serverVersion()) ? { sleep: { seconds: 5 } } : { exec: { command: ['/opt/modelship/node/bin/node', '-e', 'setTimeout(() => {}, 5000)'] } });
    expect(pod.containers[0].ports).toContainEqual({ name: 'metrics', containerPort: 8002, protocol: 'TCP' });
    expect(d.spec.template.metadata.annotations['prometheus.io/port']).toBe('8002');
    expect(stats.failed).toEqual([]);
    expect(stats.ok).toBeGreaterThanOrEqual(MIN_PROMOTION_REQUESTS);
  });

  const bad: [string, string[], RegExp, string][] = [
    ['readiness fails', ['--patch', patchFile('not-ready.yaml', `      containers:\n      - name: model-server\n        readinessProbe:\n          httpGet: {path: /v2/models/nothing-here/ready, port: http}\n          periodSeconds: 1\n`)], /fails its readiness probe[\s\S]*Readiness probe failed/, 'pods'],
    ['crash-loops', ['--patch', patchFile('crash.yaml', `      containers:\n      - name: model-server\n        env:\n        - {name: MODELSHIP_MODEL, value: /models/missing.onnx}\n`)], /restarted|CrashLoopBackOff|terminated/, 'pods'],
    ['returns wrong outputs', [], /golden requests to lenet-canary: output "prob" at batch 1 differs from the reference/, 'golden'],
    ['is too slow', ['--max-latency-ms', '0.2'], /latency p95 [\d.]+ ms > max-latency-ms 0.2/, 'golden'],
  ];
  test.each(bad)('canary that %s: rolled back; the stable pods are the same pods and kept serving', async (what, extra, why, gate) => {
    const before = pods(ns, 'lenet', 'stable');
    const beforeDeploy = kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']);
    const poller = stablePoller(ns, 'lenet');
    const r = await runCliProcess(base(ns, what === 'returns wrong outputs' ? images.wrong : images.a, extra));
    const stats = await poller.stop();
    expectExit(r, 1);
    expect(r.outputs.decision).toBe('rolled-back');
    expect(r.outputs[`gate-${gate}`]).toBe('fail');
    expect(r.outputs.reason).toMatch(why);
    expect(r.stderr).toMatch(/error: rolled back: gate "(pods|golden)" failed/);
    // the stable: same pods (UIDs), no restarts, same template, and every golden request to it was answered right
    const after = pods(ns, 'lenet', 'stable');
    expect(after.map((p) => p.uid).sort()).toEqual(before.map((p) => p.uid).sort());
    expect(after.every((p) => p.restarts === 0 && p.ready)).toBe(true);
    expect(kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']).metadata.generation).toBe(beforeDeploy.metadata.generation);
    expect(stats.failed).toEqual([]);
    expect(stats.ok).toBeGreaterThan(0);
    await waitFor('canary deleted', () => !exists('deployment', ns, 'lenet-canary') && !exists('service', ns, 'lenet-canary'), 10_000);
    expect(leaseHolder(ns)).toBeUndefined();
  });

  test('timeout: a canary that cannot be scheduled is rolled back at rollout-timeout', async () => {
    const pending = patchFile('pending.yaml', `---\nkind: Deployment\nspec:\n  template:\n    spec:\n      nodeSelector: {gpu-model: no-such-gpu}\n`);
    const r = await runCliProcess(base(ns, images.a, ['--patch', pending, '--rollout-timeout', '8']));
    expectExit(r, 1);
    expect(r.outputs.decision).toBe('rolled-back');
    expect(r.outputs.reason).toMatch(/timeout|not ready within/);
    expect(Number(r.outputs['decision-seconds'])).toBeLessThan(20);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
    expect(pods(ns, 'lenet', 'stable').every((p) => p.image === images.b)).toBe(true);
  });

  test('dry run prints the plan and the diff, and changes nothing', async () => {
    const rv = (k: string, n: string) => kubectlJson<any>(['-n', ns, 'get', k, n]).metadata.resourceVersion;
    const before = [rv('deployment', 'lenet'), rv('service', 'lenet')];
    const r = await runCliProcess(base(ns, images.a, ['--dry-run']));
    expectExit(r, 0);
    expect(r.outputs.decision).toBe('dry-run');
    expect(r.stderr).toContain('Deployment lenet-canary: would create');
    expect(r.stderr).toContain('Deployment lenet: would change');
    const lines = r.stderr.split('\n');
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^-\\s+image: ${images.b.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\+\\s+image: ${images.a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`)));
    expect([rv('deployment', 'lenet'), rv('service', 'lenet')]).toEqual(before);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
    expect(leaseHolder(ns)).toBeUndefined();
  });

  test('cancellation (SIGTERM during the bake) rolls the canary back and gives the lease back', async () => {
    const run = startCli(base(ns, images.a, ['--bake-time', '60']));
    await waitFor('the bake to start', () => /bake 60 s/.test(run.stderr()), 60_000);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(true);
    run.child.kill('SIGTERM');
    const r = await run.done;
    expectExit(r, 1);
    expect(r.outputs.decision).toBe('rolled-back');
    expect(r.outputs.reason).toMatch(/cancelled \(SIGTERM\)/);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
    expect(leaseHolder(ns)).toBeUndefined();
    expect(pods(ns, 'lenet', 'stable').every((p) => p.image === images.b)).toBe(true);
  });
});

describeLab('the deploy lease', () => {
  const ns = `${nsPrefix}-lease`;
  afterAll(() => dropNamespaces(ns));

  test('concurrent deploys are serialized; one that cannot wait fails naming the holder', async () => {
    const first = startCli(base(ns, images.a, ['--bake-time', '6']));
    await waitFor('the first deploy to hold the lease', () => leaseHolder(ns) !== undefined, 60_000);
    const second = startCli(base(ns, images.b, ['--lock-timeout', '120']));
    const third = await runCliProcess(base(ns, images.b, ['--lock-timeout', '1']));
    expectExit(third, 1);
    expect(third.stderr).toMatch(/another deploy of "lenet" in namespace \S+ holds the lease modelship-lenet \(holder "[^"]+"/);
    const [a, b] = await Promise.all([first.done, second.done]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(b.stderr).toContain('another deploy holds the lease');
    // serialized: the second applied nothing before the first had decided and let go
    const endA = JSON.parse(a.outputs['rollout-report']);
    const repB = JSON.parse(b.outputs['rollout-report']);
    expect(repB.timeline.find((t: any) => t.step === 'take the deploy lease').seconds).toBeGreaterThan(endA.gates.find((g: any) => g.gate === 'pods').seconds - 1);
    expect(kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']).spec.template.spec.containers[0].image).toBe(images.b);
  });

  test('a lease left by a dead run is taken over after its duration', async () => {
    const old = new Date(Date.now() - 120_000).toISOString().replace('Z', '000Z').replace(/\.(\d{3})000000Z$/, '.$1000Z');
    kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'modelship-lenet' }, spec: { holderIdentity: 'dead-run-42', leaseDurationSeconds: 15, renewTime: old, acquireTime: old } }));
    const r = await runCliProcess(base(ns, images.a, ['--lock-timeout', '5']));
    expectExit(r, 0);
    expect(r.stderr).toContain('took over the lease from "dead-run-42"');
    expect(leaseHolder(ns)).toBeUndefined();
  });
});

describeLab('the action on the cluster', () => {
  test('a killed job leaves a canary and its lease; the post step removes both', async () => {
    const ns = `${nsPrefix}-post`;
    const kubeconfig = fs.readFileSync(KUBECONFIG, 'utf8');
    const inputs = { stage: 'rollout', image: images.a, 'model-name': 'lenet', app: 'lenet', namespace: ns, 'bake-time': '60', reference: LENET, cpu: '50m', memory: '256Mi', patch: onRealNode, kubeconfig };
    const env = { GITHUB_RUN_ID: '777', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'deploy' };
    const run = startAction(inputs, { env });
    await waitFor('the bake to start', () => /bake 60 s/.test(run.log()), 90_000);
    run.child.kill('SIGKILL'); // what a runner does when cancellation's grace period is over
    const r = await run.done;
    // the kubeconfig (a secret input) is masked, never printed
    const key = /client-key-data: (\S+)/.exec(kubeconfig)![1];
    expect(r.stdout).toContain(`::add-mask::`);
    expect(r.stdout.replace(/::add-mask::.*\n/g, '')).not.toContain(key.slice(0, 40));
    expect(exists('deployment', ns, 'lenet-canary')).toBe(true);
    expect(leaseHolder(ns)).toBe('gh-777-1-deploy');
    // the runner's post step gets the state the main step saved as STATE_<name>
    const state = parseOutputFile(fs.readFileSync(r.stateFile, 'utf8'));
    expect(state.isPost).toBe('true');
    const saved = JSON.parse(state.rollout);
    expect(saved).toMatchObject({ namespace: ns, app: 'lenet', owner: 'gh-777-1-deploy', temporary: true });
    expect(fs.statSync(saved.kubeconfig).mode & 0o777).toBe(0o600);
    const post = runAction({}, { env: { ...env, ...Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v])) } });
    expectExit(post, 0);
    expect(post.stdout).toContain(`modelship post: deleted ${ns}/lenet-canary`);
    expect(post.stdout).toContain(`modelship post: released the deploy lease of ${ns}/lenet`);
    await waitFor('canary deleted', () => !exists('deployment', ns, 'lenet-canary'), 10_000);
    expect(leaseHolder(ns)).toBeUndefined();
    expect(fs.existsSync(saved.kubeconfig)).toBe(false);
    dropNamespaces(ns);
  });
});

describeLab('taking over, basic strategy, bad inputs', () => {
  test('takeover of a hand-made Deployment: its selector is kept, it ends up managed by modelship', async () => {
    const ns = `${nsPrefix}-takeover`;
    createRestrictedNamespace(ns);
    // (a hand-made Deployment that Pod Security restricted admits: its pods run)
    const restricted = { runAsNonRoot: true, runAsUser: 10001, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } };
    kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'lenet', labels: { app: 'handmade' } },
      spec: { replicas: 1, selector: { matchLabels: { app: 'handmade' } }, template: { metadata: { labels: { app: 'handmade' } }, spec: {
        nodeSelector: { realnode: 'true' }, tolerations: [{ key: 'realnode', operator: 'Exists', effect: 'NoSchedule' }],
        containers: [{ name: 'server', image: images.a, ports: [{ containerPort: 8000 }], securityContext: restricted }] } } },
    }));
    const r = await runCliProcess(base(ns, images.b));
    expect(r.stderr).not.toMatch(/field is immutable|selector/i);
    expectExit(r, 0);
    expect(r.outputs.decision).toBe('promoted');
    const d = kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']);
    expect(d.spec.selector.matchLabels).toEqual({ app: 'handmade' });
    expect(d.metadata.labels['app.kubernetes.io/managed-by']).toBe('modelship');
    expect(d.spec.template.spec.containers.map((c: any) => [c.name, c.image])).toEqual([['model-server', images.b]]);
    expect(JSON.parse(r.outputs['rollout-report']).takeover).toBe(true);
    dropNamespaces(ns);
  });

  test('basic: update in place; a failing update returns to the previous ReplicaSet template', async () => {
    const ns = `${nsPrefix}-basic`;
    const ok = await runCliProcess(base(ns, images.a, ['--strategy', 'basic']));
    expectExit(ok, 0);
    expect(ok.outputs).toMatchObject({ decision: 'promoted', 'canary-replicas': '0' });
    const crash = patchFile('crash-basic.yaml', `      containers:\n      - name: model-server\n        env:\n        - {name: MODELSHIP_MODEL, value: /models/missing.onnx}\n`);
    const r = await runCliProcess(base(ns, images.b, ['--strategy', 'basic', '--patch', crash]));
    expectExit(r, 1);
    expect(r.outputs.decision).toBe('rolled-back');
    expect(r.outputs.reason).toMatch(/restarted|CrashLoopBackOff|terminated/);
    expect(r.outputs.reason).toMatch(/exit code/);
    const d = kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']);
    expect(d.spec.template.spec.containers[0].image).toBe(images.a);
    expect(d.spec.template.spec.containers[0].env.some((e: any) => e.value === '/models/missing.onnx')).toBe(false);
    await waitFor('the previous template serving again', () => {
      const p = pods(ns, 'lenet', 'stable');
      return p.length === 2 && p.every((x) => x.image === images.a && x.ready);
    }, 90_000);
    dropNamespaces(ns);
  });

  test('gpu: true — pods hold an nvidia.com/gpu on the real node; a canary that serves on the CPU is rolled back, naming the pod; one whose CUDA provider cannot start is rolled back', async () => {
    // no device plugin here: the real node advertises the extended resource in its status, so GPU pods schedule
    // there for real (and run on its CPU: this image has no CUDA provider, which is what the gate must catch)
    await setNodeGpus('realnode', 4);
    const ns = `${nsPrefix}-gpu`;
    try {
      // the server asked to fall back (cuda,cpu): it starts, serves on the CPU, and the provider check names the pod
      const fallback = patchFile('gpu-fallback.yaml', `      containers:\n      - name: model-server\n        env:\n        - {name: MODELSHIP_PROVIDER, value: "cuda,cpu"}\n`);
      const r = await runCliProcess(base(ns, images.a, ['--gpu', '--patch', fallback]));
      expectExit(r, 1);
      expect(r.outputs).toMatchObject({ decision: 'rolled-back', 'gate-pods': 'fail' });
      expect(r.outputs.reason).toMatch(/gpu is true but 1 of 1 pod\(s\) do not serve the model on the GPU: lenet-canary-[a-z0-9]+-[a-z0-9]+ serves on cpu: modelship: execution provider cpu \(libonnxruntime_providers_shared\.so is missing/);
      const report = JSON.parse(r.outputs['rollout-report']);
      expect(report.timeline.map((t: any) => t.step)).toContain('canary pods compute on the GPU');
      expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
      // strict (the default with gpu: true): the server refuses to start, the pod fails, the canary is rolled back
      const strict = await runCliProcess(base(ns, images.a, ['--gpu']));
      expectExit(strict, 1);
      expect(strict.outputs.decision).toBe('rolled-back');
      expect(strict.outputs.reason).toMatch(/exit code [1-9]/);
      expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
      // the pods asked for the GPU and landed on the node that has them
      const events = kubectl(['-n', ns, 'get', 'events', '-o', 'json']);
      expect(events).toMatch(/Successfully assigned .*lenet-canary-.* to realnode/);
    } finally {
      dropNamespaces(ns);
      await setNodeGpus('realnode', 0);
    }
  });

  test('bad inputs fail before anything is applied, naming the input', async () => {
    const ns = `${nsPrefix}-inputs`;
    const cases: [string[], RegExp][] = [
      [['--strategy', 'blue-green'], /input "strategy": expected one of canary, basic, got "blue-green"/],
      [['--canary-percent', '0'], /input "canary-percent": must be between 1 and 100, got 0/],
      [['--canary-percent', '150'], /input "canary-percent": must be between 1 and 100/],
      [['--kubeconfig', path.join(work, 'no-such-kubeconfig')], /input "kubeconfig": cannot read .*no-such-kubeconfig: ENOENT/],
      [['--kubeconfig', path.join(LENET, 'deploy.prototxt')], /input "kubeconfig": .* (is not a usable kubeconfig|has no current cluster)/],
    ];
    for (const [extra, msg] of cases) {
      const r = await runCliProcess(base(ns, images.a, extra));
      expectExit(r, 2);
      expect(r.stderr).toMatch(msg);
    }
    // a user that may read namespaces but not create them, deploying into one that does not exist
    const saNs = `${nsPrefix}-sa`;
    const limited = path.join(work, 'limited.kubeconfig');
    serviceAccountKubeconfig(saNs, 'deployer', [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list'] }], limited);
    const r = await runCliProcess(base(ns, images.a, ['--kubeconfig', limited]));
    expectExit(r, 2);
    // the preflight (rollout/permissions.ts) names what is missing: creating the namespace among the rest
    expect(r.stderr).toMatch(/input "kubeconfig": the kubeconfig's user \(system:serviceaccount:\S+-sa:deployer\) may not: .*create, delete namespaces \(cluster-wide\) \(needed to create the namespace, which does not exist yet/);
    expect(exists('namespace', '', ns)).toBe(false);
  });
});

describeLab('Pod Security: namespaces that enforce restricted', () => {
  /** A patch that makes the model server's pods break `restricted` (on top of the real-node patch). */
  const escalating = () => patchFile('escalating.yaml', `      containers:\n      - name: model-server\n        securityContext:\n          allowPrivilegeEscalation: true\n`);
  const leaseOf = (ns: string) => exists('lease', ns, 'modelship-lenet');

  test('a pod template the namespace refuses: the stage fails before applying anything, naming the namespace, its level, the object and the violations', async () => {
    const ns = `${nsPrefix}-psa`;
    createRestrictedNamespace(ns);
    try {
      const r = await runCliProcess(base(ns, images.a, ['--patch', escalating()]));
      expectExit(r, 1);
      expect(r.stderr).toMatch(new RegExp(`namespace "${ns}" enforces Pod Security "restricted:latest": the pods of Deployment lenet-canary would be refused: allowPrivilegeEscalation != false \\(container "model-server" must set securityContext.allowPrivilegeEscalation=false\\)`));
      // the stable the canary would become is named too, and nothing was applied
      expect(r.stderr).toMatch(/the pods of Deployment lenet would be refused: allowPrivilegeEscalation != false/);
      expect(r.stderr).toContain('a server-side dry run, before anything was applied');
      for (const [kind, name] of [['deployment', 'lenet-canary'], ['deployment', 'lenet'], ['service', 'lenet-canary'], ['service', 'lenet'], ['poddisruptionbudget', 'lenet']]) expect([kind, name, exists(kind, ns, name)]).toEqual([kind, name, false]);
      expect(leaseOf(ns)).toBe(false);
      // the same into a namespace the run creates (restricted): the namespace goes again
      const fresh = `${nsPrefix}-psa-new`;
      const hostPath = patchFile('hostpath.yaml', `      volumes:\n      - name: cache\n        hostPath: {path: /var/cache/models}\n`);
      const created = await runCliProcess(base(fresh, images.a, ['--strategy', 'basic', '--patch', hostPath]));
      expectExit(created, 1);
      expect(created.stderr).toContain(`create namespace ${fresh}`);
      expect(created.stderr).toMatch(new RegExp(`namespace "${fresh}" enforces Pod Security "restricted:latest": the pods of Deployment lenet would be refused: restricted volume types \\(volume "cache" uses restricted volume type "hostPath"\\)`));
      await waitFor('the namespace the run created to go', () => !exists('namespace', '', fresh) || !!kubectlJson<any>(['get', 'namespace', fresh]).metadata.deletionTimestamp, 30_000);
    } finally {
      dropNamespaces(ns);
      dropNamespaces(`${nsPrefix}-psa-new`);
    }
  });

  test('the backstop: a namespace that enforces restricted but warns at privileged gives the dry run no warning; its refused pods fail the canary at once, not at the timeout', async () => {
    const ns = `${nsPrefix}-psa-quiet`;
    createRestrictedNamespace(ns, { 'pod-security.kubernetes.io/warn': 'privileged' });
    try {
      const r = await runCliProcess(base(ns, images.a, ['--patch', escalating(), '--rollout-timeout', '90']));
      expectExit(r, 1);
      expect(r.outputs).toMatchObject({ decision: 'rolled-back', 'gate-pods': 'fail' });
      expect(r.outputs.reason).toMatch(new RegExp(`gate "pods" failed: namespace "${ns}" enforces Pod Security "restricted:latest": the pods of Deployment lenet-canary are refused: allowPrivilegeEscalation != false`));
      expect(Number(r.outputs['decision-seconds'])).toBeLessThan(30);
      await waitFor('canary deleted', () => !exists('deployment', ns, 'lenet-canary'), 10_000);
      expect(leaseOf(ns)).toBe(false);
    } finally {
      dropNamespaces(ns);
    }
  });

  test('every object the stages generate passes a server-side dry run in a restricted namespace, without a warning', () => {
    const ns = `${nsPrefix}-psa-dry`;
    createRestrictedNamespace(ns);
    try {
      expect(privilegedPodRefusal(ns)).toMatch(/violates PodSecurity "restricted:latest"/);
      const objects = generatedObjects(ns, serverVersion());
      const answers = objects.map((o) => ({ what: o.what, ...serverDryRun(o.obj, o.obj.kind === 'SelfSubjectAccessReview' ? 'create' : 'apply') }));
      expect(answers.filter((a) => a.code !== 0 || a.stderr.trim() !== '')).toEqual([]);
      // and the API server does warn here: the same Deployment with a container that may escalate
      const d = JSON.parse(JSON.stringify(objects.find((o) => o.obj.kind === 'Deployment')!.obj));
      d.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true;
      expect(serverDryRun(d)).toEqual({ code: 0, stderr: expect.stringMatching(/^Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/) });
      expect(exists('deployment', ns, 'lenet')).toBe(false);
    } finally {
      dropNamespaces(ns);
    }
  });
});

labDescribe(['docker', 'registry', 'cluster', 'node24', 'prometheus'])('the Prometheus gate (lab/up.sh prometheus)', () => {
  test('no samples is a failure, never a pass', async () => {
    if (!PROMETHEUS) throw new Error('LAB_PROMETHEUS is not set: start Prometheus with `lab/up.sh prometheus` as root');
    const ns = `${nsPrefix}-prom`;
    // rollout-timeout: a canary pod at 50m CPU takes ~25 s to be Ready; the gate then waits what is left for samples
    const r = await runCliProcess(base(ns, images.a, ['--prometheus-url', PROMETHEUS, '--prometheus-samples-query', 'sum(modelship_no_such_metric{namespace="{{namespace}}",track="{{track}}"})', '--bake-time', '1', '--rollout-timeout', '60']));
    expectExit(r, 1);
    expect(r.outputs).toMatchObject({ decision: 'rolled-back', 'gate-pods': 'pass', 'gate-golden': 'pass', 'gate-prometheus': 'fail' });
    expect(r.outputs.reason).toMatch(/Prometheus has no samples for the canary .*no data is a failure/);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
  });

  test('a canary that served traffic passes on the server\'s own metrics (default queries), compared with the stable', async () => {
    if (!PROMETHEUS) throw new Error('LAB_PROMETHEUS is not set: start Prometheus with `lab/up.sh prometheus` as root');
    const ns = `${nsPrefix}-prom-ok`;
    // the stable first (no metrics gate), then a canary that must show min-samples requests in Prometheus
    expectExit(await runCliProcess(base(ns, images.a, ['--replicas', '1'])), 0);
    const r = await runCliProcess(base(ns, images.b, ['--replicas', '1', '--prometheus-url', PROMETHEUS, '--min-samples', '10', '--max-error-rate', '0', '--max-p99-ms', '5000', '--bake-time', '8', '--rollout-timeout', '120']));
    expectExit(r, 0);
    expect(r.outputs).toMatchObject({ decision: 'promoted', 'gate-prometheus': 'pass' });
    const g = JSON.parse(r.outputs['rollout-report']).gates.find((x: any) => x.gate === 'prometheus');
    expect(g.detail).toMatch(/^canary samples (\d+), error rate 0\.0000, p99 [\d.]+ ms; stable samples/);
    expect(Number(/^canary samples (\d+)/.exec(g.detail)![1])).toBeGreaterThanOrEqual(10);
    // Prometheus scraped the metrics-only port the annotations name (through the pod proxy): it serves /metrics, no inference
    const pod = pods(ns, 'lenet', 'stable')[0].name;
    expect(kubectlJson<any>(['-n', ns, 'get', 'pod', pod]).metadata.annotations['prometheus.io/port']).toBe('8002');
    const metrics = await apiRequest(`/api/v1/namespaces/${ns}/pods/${pod}:8002/proxy/metrics`);
    expect([metrics.status, metrics.body.toString()]).toEqual([200, expect.stringContaining('modelship_requests_total')]);
    expect((await apiRequest(`/api/v1/namespaces/${ns}/pods/${pod}:8002/proxy/v2/models/lenet`)).status).toBe(404);
    dropNamespaces(ns);
  });
});

