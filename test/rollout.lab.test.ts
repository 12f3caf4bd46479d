import * as path from 'path';
import { requireLab } from './helpers/lab';
import {
  requireCluster,
  kubectl,
  kubectlJson,
  exists,
  pods,
  apiRequest,
  startCli,
  runCliProcess,
  waitFor,
  serviceClient,
  serverVersion,
  RESTRICTED,
  createRestrictedNamespace,
  privilegedPodRefusal,
  serverDryRun,
} from './helpers/kube';
import { generatedObjects } from './helpers/generated-objects';
import { sleepActionServed } from '../src/rollout/manifests';
import { readNpy } from '../src/util/npy';
import { encodeInferRequest, HEADER_LENGTH } from '../src/protocol/kserve';
import { labDescribe } from './helpers/needs';
import { lenetImage, LENET } from './helpers/lenet-image';
import { rolloutFile, expectExit, leaseHolder } from './helpers/rollout';

// The rollout stage on the lab's real Kubernetes cluster (v1.34): pods of the real serving image run on the real
// kubelet node (realnode), verified through the API server's service proxy. Each test gets its own namespace. The
// stage's lab tests are five files that the jest workers run at once: rollout.lab (the canary's way to promotion, Pod
// Security), rollout-rollback.lab (canaries that fail a gate), rollout-lease.lab (the deploy lease, the action's post
// step), rollout-basic.lab (takeover, the basic strategy, GPUs, bad inputs), rollout-prometheus.lab (the Prometheus
// gate). The LeNet images they deploy are built once per run (test/helpers/lenet-image.ts).
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24']);

/** Requests the Service must answer right during a promotion (4 loops for half a minute or more; ~1500 measured on the lab). */
const MIN_PROMOTION_REQUESTS = 300;

const { nsPrefix, patchFile, base, dropNamespaces } = rolloutFile('ro');
const images: Record<'a' | 'b', string> = { a: '', b: '' };

beforeAll(async () => {
  requireLab();
  requireCluster();
  images.a = await lenetImage('a');
  images.b = await lenetImage('b');
});

afterAll(() => dropNamespaces());

/** Every pod of the app, terminating ones included: name, track, image, deleting, and whether its server has exited. */
function allPods(ns: string, app: string): { name: string; track: string; image: string; deleting: boolean; exited: boolean }[] {
  return kubectlJson<{ items: any[] }>(['-n', ns, 'get', 'pods', '-l', `app.kubernetes.io/name=${app}`]).items.map((p) => ({
    name: p.metadata.name,
    track: p.metadata.labels.track,
    image: p.spec.containers[0].image,
    deleting: !!p.metadata.deletionTimestamp,
    // (once its container has stopped, a terminating pod on the 1.20 kubelet may show it as waiting again)
    exited:
      ['Succeeded', 'Failed'].includes(p.status.phase) ||
      (!!p.metadata.deletionTimestamp && !(p.status.containerStatuses ?? []).some((c: any) => c.state?.running)),
  }));
}

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
    expect(r.stderr).toMatch(
      new RegExp(
        `server-side dry run: the API server admits Deployment lenet-canary, Service lenet-canary, Deployment lenet, Service lenet, PodDisruptionBudget lenet in namespace ${ns}`,
      ),
    );
    expect(r.outputs).toMatchObject({ decision: 'promoted', 'gate-pods': 'pass', 'gate-golden': 'pass', 'gate-prometheus': 'skipped', 'canary-replicas': '1' });
    const stable = pods(ns, 'lenet', 'stable');
    expect(stable).toHaveLength(2);
    expect(stable.every((p) => p.image === images.a && p.ready)).toBe(true);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
    expect(exists('service', ns, 'lenet-canary')).toBe(false);
    expect(exists('service', ns, 'lenet')).toBe(true);
    expect(leaseHolder(ns)).toBeUndefined();
    const report = JSON.parse(r.outputs['rollout-report']);
    expect(report.timeline.map((t: any) => t.step)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^apply lenet-canary/),
        'canary pods Ready',
        expect.stringMatching(/^golden requests/),
        'bake 3 s',
        expect.stringMatching(/^promote/),
        expect.stringMatching(/^delete lenet-canary/),
      ]),
    );
    // the main Service serves the golden request through the API server's service proxy
    const x = readNpy(path.join(LENET, 'input_b1.npy'));
    const req = encodeInferRequest([{ name: 'data', shape: x.shape, data: x.data }], { binaryOutputs: true });
    const res = await apiRequest(`/api/v1/namespaces/${ns}/services/lenet:http/proxy/v2/models/lenet/infer`, {
      body: req.body,
      headers: { [HEADER_LENGTH]: req.headerLength },
    });
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
      await waitFor(
        'the old stable and the canary pods to exit',
        () => allPods(ns, 'lenet').every((p) => (p.track === 'stable' && p.image === images.b && !p.deleting) || p.exited),
        120_000,
      );
      await new Promise((res) => setTimeout(res, 3000));
    } finally {
      stats = await client.stop();
    }
    console.log(
      `requests through the Service during the promotion: ${stats.sent} sent, ${stats.ok} ok, ${stats.failed.length} failed in ${stats.seconds.toFixed(1)} s${stats.failed.length ? `\n${stats.failed.slice(0, 20).join('\n')}` : ''}`,
    );
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
    expect(pod.containers[0].lifecycle.preStop).toEqual(
      sleepActionServed(serverVersion())
        ? { sleep: { seconds: 5 } }
        : { exec: { command: ['/opt/modelship/node/bin/node', '-e', 'setTimeout(() => {}, 5000)'] } },
    );
    expect(pod.containers[0].ports).toContainEqual({ name: 'metrics', containerPort: 8002, protocol: 'TCP' });
    expect(d.spec.template.metadata.annotations['prometheus.io/port']).toBe('8002');
    expect(stats.failed).toEqual([]);
    expect(stats.ok).toBeGreaterThanOrEqual(MIN_PROMOTION_REQUESTS);
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

describeLab('Pod Security: namespaces that enforce restricted', () => {
  /** A patch that makes the model server's pods break `restricted` (on top of the real-node patch). */
  const escalating = () =>
    patchFile('escalating.yaml', `      containers:\n      - name: model-server\n        securityContext:\n          allowPrivilegeEscalation: true\n`);
  const leaseOf = (ns: string) => exists('lease', ns, 'modelship-lenet');

  test('a pod template the namespace refuses: the stage fails before applying anything, naming the namespace, its level, the object and the violations', async () => {
    const ns = `${nsPrefix}-psa`;
    createRestrictedNamespace(ns);
    try {
      const r = await runCliProcess(base(ns, images.a, ['--patch', escalating()]));
      expectExit(r, 1);
      expect(r.stderr).toMatch(
        new RegExp(
          `namespace "${ns}" enforces Pod Security "restricted:latest": the pods of Deployment lenet-canary would be refused: allowPrivilegeEscalation != false \\(container "model-server" must set securityContext.allowPrivilegeEscalation=false\\)`,
        ),
      );
      // the stable the canary would become is named too, and nothing was applied
      expect(r.stderr).toMatch(/the pods of Deployment lenet would be refused: allowPrivilegeEscalation != false/);
      expect(r.stderr).toContain('a server-side dry run, before anything was applied');
      for (const [kind, name] of [
        ['deployment', 'lenet-canary'],
        ['deployment', 'lenet'],
        ['service', 'lenet-canary'],
        ['service', 'lenet'],
        ['poddisruptionbudget', 'lenet'],
      ])
        expect([kind, name, exists(kind, ns, name)]).toEqual([kind, name, false]);
      expect(leaseOf(ns)).toBe(false);
      // the same into a namespace the run creates (restricted): the namespace goes again
      const fresh = `${nsPrefix}-psa-new`;
      const hostPath = patchFile('hostpath.yaml', `      volumes:\n      - name: cache\n        hostPath: {path: /var/cache/models}\n`);
      const created = await runCliProcess(base(fresh, images.a, ['--strategy', 'basic', '--patch', hostPath]));
      expectExit(created, 1);
      expect(created.stderr).toContain(`create namespace ${fresh}`);
      expect(created.stderr).toMatch(
        new RegExp(
          `namespace "${fresh}" enforces Pod Security "restricted:latest": the pods of Deployment lenet would be refused: restricted volume types \\(volume "cache" uses restricted volume type "hostPath"\\)`,
        ),
      );
      await waitFor(
        'the namespace the run created to go',
        () => !exists('namespace', '', fresh) || !!kubectlJson<any>(['get', 'namespace', fresh]).metadata.deletionTimestamp,
        30_000,
      );
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
      expect(r.outputs.reason).toMatch(
        new RegExp(
          `gate "pods" failed: namespace "${ns}" enforces Pod Security "restricted:latest": the pods of Deployment lenet-canary are refused: allowPrivilegeEscalation != false`,
        ),
      );
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
      expect(serverDryRun(d)).toEqual({
        code: 0,
        stderr: expect.stringMatching(/^Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false/),
      });
      expect(exists('deployment', ns, 'lenet')).toBe(false);
    } finally {
      dropNamespaces(ns);
    }
  });
});
