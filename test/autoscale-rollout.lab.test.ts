import * as fs from 'fs';
import { requireLab } from './helpers/lab';
import { requireCluster, kubectl, kubectlJson, exists, KUBECONFIG, runCliProcess, startCli, serviceClient, waitFor, PROMETHEUS } from './helpers/kube';
import { labDescribe } from './helpers/needs';
import { lenetImage, LENET } from './helpers/lenet-image';
import { rolloutFile, expectExit } from './helpers/rollout';
import { watchRamp, rampFigures } from './helpers/autoscale-ramp';
import { appliesReplicas, replicasOwners, HANDOVER_MANAGER, ReplicasObject } from '../src/rollout/autoscale-writes';
import { inflightQuery, kedaHpaName } from '../src/rollout/autoscale';
import { startAction, runAction, parseOutputFile } from './helpers/runner';

// Issue 23 §3, the rollout stage with `autoscale`, on the lab's Kubernetes v1.34 cluster (its HPA controller,
// metrics-server, KEDA v2.19.0, the lab Prometheus): the real LeNet server on the real kubelet node, a low CPU request
// (100m, bursting to 1 CPU: CPU_BURST_PATCH) so modest load through the Service exceeds the HPA's target. Load ramps
// up: the HPA scales the stable out, the added pods serve (their own request counters say so), every request
// succeeds; a canary rollout during the ramp is sized from the HPA's count, never writes the replicas, and is promoted
// with no failed request, the HPA following the stable (the same Deployment `<app>`) through the promotion; the load
// stops: it scales back after the scale-down window. Then the same app switched to KEDA (inflight, from the lab
// Prometheus) and to autoscale off (the replicas input takes spec.replicas back). The machine has 2 CPUs and other lab
// files run beside this one: the load is modest and the waits generous. Figures: bench/autoscale.ts.
jest.setTimeout(900_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24', 'autoscale', 'prometheus']);

const { nsPrefix, base, dropNamespaces } = rolloutFile('asr');
const images: Record<'a' | 'b', string> = { a: '', b: '' };
/** The HPA: 1 to 3 replicas, 50 % of the 100m request, 15 s before scaling down (Kubernetes' default: 300 s). */
const CPU_AUTOSCALE = 'min=1,max=3,cpu=50,scale-down=15';
const LOOPS = 6;
/** KEDA's target: average requests in flight per pod (a low one: the loops keep a fraction of LeNet's pod busy) */
const INFLIGHT = 0.05;

beforeAll(async () => {
  requireLab();
  requireCluster();
  images.a = await lenetImage('a');
  images.b = await lenetImage('b');
});

afterAll(() => dropNamespaces());

interface Hpa {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number };
  status: { currentReplicas?: number; desiredReplicas?: number; currentMetrics?: { resource?: { current: { averageUtilization?: number } } }[] | null };
}
const hpa = (ns: string, name = 'lenet') => kubectlJson<Hpa>(['-n', ns, 'get', 'hpa', name]);
const stable = (ns: string) =>
  kubectlJson<ReplicasObject & { spec: { template: { spec: { containers: { image: string }[] } } } }>([
    '-n',
    ns,
    'get',
    'deployment',
    'lenet',
    '--show-managed-fields',
  ]);
const has = (ns: string, kind: string, name: string) => {
  try {
    kubectlJson(['-n', ns, 'get', kind, name]);
    return true;
  } catch {
    return false;
  }
};
const utilization = (h: Hpa) => h.status.currentMetrics?.[0]?.resource?.current.averageUtilization;
const evidence: string[] = [];
const note = (line: string) => evidence.push(line);

afterAll(() => {
  if (evidence.length) console.log(`autoscale rollout on the lab:\n${evidence.join('\n')}`);
});

describeLab('lab: a rollout with autoscale (HPA on CPU), under a load ramp', () => {
  const ns = `${nsPrefix}-cpu`;
  const flags = (image: string, more: string[] = []) =>
    base(ns, image, ['--replicas', '1', '--cpu', '100m', '--bake-time', '5', '--rollout-timeout', '240', '--autoscale', CPU_AUTOSCALE, ...more]);

  test('the HPA scales out under load, the added pods serve, a canary during the ramp is promoted with 0 failed requests, and it scales back', async () => {
    // ---- the first deploy: the stable at the replicas input (1), handed over to the HPA, which modelship creates
    const first = await runCliProcess(flags(images.a));
    expectExit(first, 0);
    expect(first.outputs.decision).toBe('promoted');
    expect(first.stderr).toContain('created HorizontalPodAutoscaler lenet on Deployment lenet (1 to 3 replicas)');
    const h0 = hpa(ns);
    expect(h0.spec).toMatchObject({ scaleTargetRef: { kind: 'Deployment', name: 'lenet' }, minReplicas: 1, maxReplicas: 3 });
    expect(h0.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'modelship' });
    expect(h0.metadata.annotations?.['modelship.dev/created-by']).toBeTruthy();
    const d0 = stable(ns);
    expect(d0.spec?.replicas).toBe(1);
    expect(replicasOwners(d0)).toContain(`${HANDOVER_MANAGER} Apply`);
    note(`first deploy: ${first.outputs['decision-seconds']} s; stable replicas ${d0.spec?.replicas}, owned by [${replicasOwners(d0).join(', ')}]`);
    // the HPA reads the idle pod's CPU before the load starts (metrics-server's first samples take up to ~30 s)
    await waitFor('the HPA to read the stable pods CPU', () => utilization(hpa(ns)) !== undefined, 180_000);
    note(`idle: HPA reads ${utilization(hpa(ns))}% of the CPU request, replicas ${stable(ns).spec?.replicas}`);

    // ---- the ramp: load through the Service, the HPA scales out, the added pods serve
    const client = serviceClient({ ns, service: 'lenet', model: 'lenet', reference: LENET, loops: LOOPS, maxMs: 900_000 });
    const watch = watchRamp(ns, 'lenet');
    let rolloutAt = 0;
    try {
      await waitFor('the HPA to scale the stable out', () => watch.current() > 1, 240_000);
      await waitFor(
        'the added pods to serve',
        () => rampFigures(watch, 1).addedServingS !== undefined && rampFigures(watch, 1).added.length >= watch.current() - 1,
        240_000,
      );
      const ramp = rampFigures(watch, 1);
      note(
        `ramp (${LOOPS} loops through the Service): HPA ${utilization(hpa(ns))}%, scaled out at ${ramp.scaledS?.toFixed(1)} s to ${watch.current()}; the ${ramp.added.length} added pod(s) Ready at ${ramp.addedReadyS?.toFixed(1)} s, serving at ${ramp.addedServingS?.toFixed(1)} s (${ramp.added.map((p) => `${p.name}: ${p.served} requests`).join(', ')})`,
      );
      expect(ramp.added.every((p) => p.served > 0)).toBe(true);

      // ---- a canary rollout during the ramp: sized from the HPA's count, promoted, the replicas never written
      const before = watch.current();
      rolloutAt = watch.now();
      const rollout = await startCli(flags(images.b, ['--canary-percent', '50'])).done;
      const rolloutEnd = watch.now();
      expectExit(rollout, 0);
      expect(rollout.outputs.decision).toBe('promoted');
      const sized = /apply lenet-canary \((\d+) of (\d+) replicas\)/.exec(rollout.stderr);
      expect(sized).not.toBeNull();
      // the canary's size: 50 % of what the stable ran when the rollout planned (the HPA's count, not the replicas input 1)
      expect(Number(sized![2])).toBeGreaterThan(1);
      expect(Number(sized![1])).toBe(Math.ceil(Number(sized![2]) / 2));
      expect(rollout.stderr).toContain('applied HorizontalPodAutoscaler lenet on Deployment lenet (1 to 3 replicas)');
      // the stable's replicas during the rollout: the HPA's alone (never reset to 1 by an apply)
      const during = watch.replicas.filter(([t]) => t >= rolloutAt && t <= rolloutEnd).map(([, n]) => n);
      const atStart = watch.replicas.filter(([t]) => t <= rolloutAt).at(-1)![1];
      note(
        `rollout during the ramp: ${rollout.outputs['decision-seconds']} s to the decision, canary ${sized![1]} of ${sized![2]} replicas (stable ${before} when it started); spec.replicas during it: ${[atStart, ...during].join(' → ')}`,
      );
      // (the HPA may scale down itself while the canary takes a share of the traffic: then its own event says so)
      if (Math.min(atStart, ...during) <= 1)
        expect(
          kubectl(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name=lenet', '-o', 'json']),
        ).toMatch(/New size: 1; reason: All metrics below target/);
      const d1 = stable(ns);
      expect(d1.spec.template.spec.containers[0].image).toBe(images.b);
      expect(appliesReplicas(d1)).toBe(false);
      // the HPA follows the stable through the promotion: the same Deployment, by name
      const h1 = hpa(ns);
      expect(h1.spec.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'lenet' });
      expect(h1.metadata.annotations ?? {}).not.toHaveProperty('modelship.dev/created-by');
      note(
        `after the promotion: stable runs ${images.b.slice(-12)}, replicas ${d1.spec?.replicas} owned by [${replicasOwners(d1).join(', ')}]; HPA on Deployment ${h1.spec.scaleTargetRef.name}, ${h1.status.currentReplicas} current`,
      );
      // the new pods serve too, and the HPA still holds the stable above 1 under the load
      await waitFor('the promoted stable to settle', () => (stable(ns) as any).status?.updatedReplicas === stable(ns).spec?.replicas, 120_000);
    } finally {
      const stats = await client.stop();
      await watch.stop();
      note(
        `requests through the Service during the ramp and the rollout: sent ${stats.sent}, ok ${stats.ok}, failed ${stats.failed.length} in ${stats.seconds.toFixed(1)} s`,
      );
      expect(stats.failed).toEqual([]);
      expect(stats.ok).toBeGreaterThan(300);
    }

    // ---- the load stops: the HPA scales back to min after its 15 s window (and metrics-server's lag)
    const stopped = Date.now();
    await waitFor('the HPA to scale the stable back to 1', () => stable(ns).spec?.replicas === 1, 300_000);
    note(`load stopped: back to 1 replica after ${((Date.now() - stopped) / 1000).toFixed(1)} s (scale-down window 15 s)`);
    expect(hpa(ns).spec.scaleTargetRef.name).toBe('lenet');
  });

  test('switched to KEDA (inflight from Prometheus): the HPA modelship made goes, the ScaledObject comes and KEDA scales the stable; then autoscale off: both go, and the replicas input takes spec.replicas back', async () => {
    // the stable from the test before (1 replica, its HPA): the same app, autoscale now on the requests in flight
    const keda = await runCliProcess(
      base(ns, images.a, [
        '--replicas',
        '1',
        '--cpu',
        '100m',
        '--bake-time',
        '2',
        '--rollout-timeout',
        '240',
        '--autoscale',
        `min=1,max=3,inflight=${INFLIGHT},prometheus=${PROMETHEUS},scale-down=15`,
      ]),
    );
    expectExit(keda, 0);
    expect(keda.stderr).toContain('deleted HorizontalPodAutoscaler lenet, which modelship made (autoscale now makes a ScaledObject)');
    expect(keda.stderr).toContain('created ScaledObject lenet on Deployment lenet (1 to 3 replicas)');
    expect(has(ns, 'hpa', 'lenet')).toBe(false);
    await waitFor(`KEDA to make ${kedaHpaName('lenet')}`, () => has(ns, 'hpa', kedaHpaName('lenet')), 120_000);
    expect(hpa(ns, kedaHpaName('lenet')).spec.scaleTargetRef.name).toBe('lenet');
    // under load the requests in flight (the stable pods' average over a minute, by Little's law, from the lab
    // Prometheus) exceed INFLIGHT per pod: LeNet answers in about a millisecond, so the loops keep a fraction of a
    // request in flight (the value when it scaled is noted)
    const client = serviceClient({ ns, service: 'lenet', model: 'lenet', reference: LENET, loops: LOOPS, maxMs: 600_000 });
    const watch = watchRamp(ns, 'lenet');
    try {
      await waitFor("KEDA's HPA to scale the stable out on the requests in flight", () => watch.current() > 1, 240_000);
      const f = rampFigures(watch, 1);
      const q = await fetch(`${PROMETHEUS}/api/v1/query?${new URLSearchParams({ query: inflightQuery(ns) }).toString()}`);
      const value = ((await q.json()) as { data: { result: { value: [number, string] }[] } }).data.result[0]?.value[1];
      note(`KEDA (inflight=${INFLIGHT} per pod): scaled out at ${f.scaledS?.toFixed(1)} s to ${watch.current()}; requests in flight then: ${value}`);
    } finally {
      const stats = await client.stop();
      await watch.stop();
      note(`requests during the KEDA ramp: sent ${stats.sent}, ok ${stats.ok}, failed ${stats.failed.length}`);
      expect(stats.failed).toEqual([]);
    }
    const scaled = stable(ns).spec.replicas!;

    // ---- autoscale off: the ScaledObject goes (KEDA removes its HPA), the replicas input (2) is applied and owned again
    const off = await runCliProcess(base(ns, images.a, ['--replicas', '2', '--cpu', '100m', '--bake-time', '2', '--rollout-timeout', '240']));
    expectExit(off, 0);
    expect(off.stderr).toContain('deleted ScaledObject lenet, which modelship made (autoscale is off)');
    expect(has(ns, 'scaledobject', 'lenet')).toBe(false);
    await waitFor(`KEDA to remove ${kedaHpaName('lenet')}`, () => !has(ns, 'hpa', kedaHpaName('lenet')), 120_000);
    const d = stable(ns);
    expect(d.spec?.replicas).toBe(2);
    expect(appliesReplicas(d)).toBe(true);
    await new Promise((r) => setTimeout(r, 20_000));
    expect(stable(ns).spec?.replicas).toBe(2);
    note(`autoscale off: ${scaled} → ${d.spec?.replicas} replicas (the input), owned by [${replicasOwners(d).join(', ')}], still 2 after 20 s`);
  });

  test("a killed first deploy (basic): the action's post step removes the HPA it created with its Deployment, Service, lease and namespace", async () => {
    const killedNs = `${nsPrefix}-killed`;
    const { onRealNode } = rolloutFile('asp');
    const env = { GITHUB_RUN_ID: '9301', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'deploy' };
    const started = startAction(
      {
        stage: 'rollout',
        image: images.a,
        'model-name': 'lenet',
        app: 'lenet',
        namespace: killedNs,
        strategy: 'basic',
        replicas: '1',
        'bake-time': '60',
        'drain-delay': '0',
        reference: LENET,
        cpu: '100m',
        memory: '256Mi',
        patch: onRealNode,
        autoscale: CPU_AUTOSCALE,
        kubeconfig: fs.readFileSync(KUBECONFIG, 'utf8'),
      },
      { env },
    );
    try {
      await waitFor('the bake to start', () => /bake 60 s/.test(started.log()), 180_000);
    } finally {
      started.child.kill('SIGKILL'); // the runner, once cancellation's grace period is over
    }
    const state = parseOutputFile(fs.readFileSync((await started.done).stateFile, 'utf8'));
    const owner = 'gh-9301-1-deploy';
    expect(kubectlJson<Hpa>(['-n', killedNs, 'get', 'hpa', 'lenet']).metadata.annotations?.['modelship.dev/created-by']).toBe(owner);
    const post = runAction({}, { env: { ...env, ...Object.fromEntries(Object.entries(state).map(([n, v]) => [`STATE_${n}`, v])) } });
    if (post.code !== 0) throw new Error(`post step exit ${post.code}:\n${post.stdout.slice(-2000)}\n${post.stderr.slice(-2000)}`);
    const lines = post.stdout
      .split('\n')
      .filter((l) => l.startsWith('modelship post:'))
      .sort();
    expect(lines).toEqual(
      [
        `modelship post: deleted Deployment ${killedNs}/lenet, which this run created`,
        `modelship post: deleted HorizontalPodAutoscaler ${killedNs}/lenet, which this run created`,
        `modelship post: deleted Service ${killedNs}/lenet, which this run created`,
        `modelship post: deleted namespace ${killedNs}, which this run created`,
        `modelship post: released the deploy lease of ${killedNs}/lenet`,
      ].sort(),
    );
    expect(exists('hpa', killedNs, 'lenet')).toBe(false);
    note(`killed first deploy: the post step said\n  ${lines.join('\n  ')}`);
  });
});
