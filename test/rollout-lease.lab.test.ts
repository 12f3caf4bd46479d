import * as fs from 'fs';
import { requireLab } from './helpers/lab';
import { requireCluster, kubectl, kubectlJson, exists, startCli, runCliProcess, waitFor, KUBECONFIG } from './helpers/kube';
import { startAction, runAction, parseOutputFile } from './helpers/runner';
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

const { nsPrefix, onRealNode, base, dropNamespaces } = rolloutFile('rl');
const images: Record<'a' | 'b', string> = { a: '', b: '' };

beforeAll(async () => {
  requireLab();
  requireCluster();
  images.a = await lenetImage('a');
  images.b = await lenetImage('b');
});

afterAll(() => dropNamespaces());

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
    expect(repB.timeline.find((t: any) => t.step === 'take the deploy lease').seconds).toBeGreaterThan(
      endA.gates.find((g: any) => g.gate === 'pods').seconds - 1,
    );
    expect(kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']).spec.template.spec.containers[0].image).toBe(images.b);
  });

  test('a lease left by a dead run is taken over after its duration', async () => {
    const old = new Date(Date.now() - 120_000)
      .toISOString()
      .replace('Z', '000Z')
      .replace(/\.(\d{3})000000Z$/, '.$1000Z');
    kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: 'modelship-lenet' },
        spec: { holderIdentity: 'dead-run-42', leaseDurationSeconds: 15, renewTime: old, acquireTime: old },
      }),
    );
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
    const inputs = {
      stage: 'rollout',
      image: images.a,
      'model-name': 'lenet',
      app: 'lenet',
      namespace: ns,
      'bake-time': '60',
      reference: LENET,
      cpu: '50m',
      memory: '256Mi',
      patch: onRealNode,
      kubeconfig,
    };
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
