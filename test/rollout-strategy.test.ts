import { readConfig } from '../src/config';
import type { RolloutConfig } from '../src/rollout/inputs';
import type { Kube } from '../src/rollout/kube';
import type { K8sObject } from '../src/rollout/manifests';
import { CREATED_BY, OWNER_LABEL, PROMOTED_BY } from '../src/rollout/owner';
import { planRollout, LiveDeployment, RolloutPlan, atStep, stepLabel } from '../src/rollout/plan';
import { DeployRun } from '../src/rollout/context';
import { GateFailure, sleep } from '../src/rollout/health';
import type { Gate } from '../src/rollout/gates/gate';
import { podsReadyGate } from '../src/rollout/gates/pods';
import { bakeGate } from '../src/rollout/gates/bake';
import { judgeCanaryMetrics, metricsGate } from '../src/rollout/gates/prometheus';
import type { MetricProvider } from '../src/rollout/prometheus';
import { runStrategy, Strategy } from '../src/rollout/strategies/strategy';
import { canaryStrategy } from '../src/rollout/strategies/canary';
import { basicStrategy } from '../src/rollout/strategies/basic';
import { rolloutResult } from '../src/rollout/report';
import { dryRun } from '../src/rollout/dry-run';
import type { Logger } from '../src/stage';
import { withoutReplicas } from '../src/rollout/autoscale-writes';

// The rollout as a plan (pure) and a strategy's one step sequence (apply, the gates in order, then promote or roll
// back), on an in-memory cluster with fake gates where a gate's own checks are not the point. The same on the lab's
// real cluster: test/rollout.lab.test.ts.

const IMAGE = `registry.example/lenet@sha256:${'b'.repeat(64)}`;
const OWNER = 'gh-1-1-deploy';

function config(inputs: Record<string, string> = {}): RolloutConfig {
  const all: Record<string, string> = {
    stage: 'rollout',
    image: IMAGE,
    'model-name': 'lenet',
    app: 'lenet',
    namespace: 'prod',
    'bake-time': '0',
    'rollout-timeout': '30',
    ...inputs,
  };
  return readConfig((n: string) => all[n]).rollout;
}

const names = (objs: K8sObject[]) => objs.map((o) => `${o.kind} ${o.metadata.name}`);

/** A Deployment someone else made (no managed-by label), as the cluster returns it. */
const handMade: LiveDeployment = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'lenet', namespace: 'prod', labels: { app: 'handmade' } },
  spec: {
    selector: { matchLabels: { app: 'handmade' } },
    template: { metadata: { labels: { app: 'handmade' } }, spec: { containers: [{ name: 'server', image: 'old' }] } } as LiveDeployment['spec']['template'],
  },
};

describe('the plan', () => {
  test('canary, first deploy into a new namespace: what is applied, admitted and checked, in order', () => {
    const plan = planRollout(config(), [], OWNER, { namespaceExists: false, sleepAction: true });
    expect(plan).toMatchObject({ strategy: 'canary', canaryReplicas: 1, createsNamespace: true, takeover: false, liveStable: undefined });
    expect(names(plan.planned)).toEqual(['Deployment lenet-canary', 'Service lenet-canary', 'Deployment lenet', 'Service lenet', 'PodDisruptionBudget lenet']);
    expect(plan.admitted).toEqual(plan.planned);
    expect(plan.replaced).toEqual([]);
    // the canary is this run's: its owner label is what the post step of a killed run looks for
    expect([plan.objects.canary.metadata.labels?.[OWNER_LABEL], plan.objects.canaryService.metadata.labels?.[OWNER_LABEL]]).toEqual([OWNER, OWNER]);
    expect((plan.objects.canary as any).spec.replicas).toBe(1);
    expect((plan.objects.stable as any).spec.template.spec.containers[0].lifecycle.preStop).toEqual({ sleep: { seconds: 5 } });
    expect(plan.verifications[0].release).toEqual({
      track: 'canary',
      deployment: 'lenet-canary',
      service: 'lenet-canary',
      podSelector: { 'app.kubernetes.io/name': 'lenet', 'app.kubernetes.io/component': 'model-server', track: 'canary' },
    });
    expect(plan.verifications[0].gates.map((g) => [g.gate, g.name, !!g.silent])).toEqual([
      ['pods', 'canary pods Ready', false],
      ['golden', 'golden requests to lenet-canary', false],
      ['pods', 'bake 0 s', true],
    ]);
    expect(plan.gates).toEqual([
      { gate: 'pods', result: 'skipped', detail: '', evidence: [], seconds: 0 },
      { gate: 'golden', result: 'skipped', detail: 'no reference given: only /v2/models/<model>/ready was checked', evidence: [], seconds: 0 },
      { gate: 'analysis', result: 'skipped', detail: 'compare-with-stable is off (auto: on with canary-steps)', evidence: [], seconds: 0 },
      { gate: 'prometheus', result: 'skipped', detail: 'no prometheus-url', evidence: [], seconds: 0 },
    ]);
  });

  test('every gate the inputs ask for, in the order the canary runs them', () => {
    const plan = planRollout(
      config({ gpu: 'true', 'bake-time': '60', 'prometheus-url': 'http://prom:9090', replicas: '10', 'canary-percent': '25' }),
      [],
      OWNER,
      { namespaceExists: true, sleepAction: false },
    );
    expect(plan.canaryReplicas).toBe(3);
    expect(plan.verifications[0].gates.map((g) => `${g.gate}: ${g.name}`)).toEqual([
      'pods: canary pods Ready',
      'pods: canary pods compute on the GPU',
      'golden: golden requests to lenet-canary',
      'pods: bake 60 s',
      'prometheus: Prometheus gate',
    ]);
    expect(plan.gates.find((g) => g.gate === 'prometheus')!.detail).toBe('');
  });

  test('takeover of a Deployment modelship did not make: its selector is kept, it is replaced whole, the main Service comes with the promotion', () => {
    const plan = planRollout(config(), [], OWNER, { namespaceExists: true, stable: handMade, sleepAction: true });
    expect(plan.takeover).toBe(true);
    expect(plan.objects.stable.spec.selector).toEqual({ matchLabels: { app: 'handmade' } });
    expect(plan.objects.stable.spec.template.metadata.labels).toMatchObject({ app: 'handmade', track: 'stable' });
    expect(names(plan.planned)).toEqual(['Deployment lenet-canary', 'Service lenet-canary', 'Deployment lenet', 'PodDisruptionBudget lenet']);
    expect(names(plan.admitted)).toEqual([...names(plan.planned), 'Service lenet']);
    expect(plan.replaced).toEqual([plan.objects.stable]);
    // the budget selects the stable's pods by its live selector
    expect((plan.objects.disruptionBudget as any).spec.selector).toEqual({ matchLabels: { app: 'handmade' } });
  });

  test('basic: the stable in place, no canary, no metrics gate; the pull Secret is admitted but never diffed', () => {
    const plan = planRollout(
      config({
        strategy: 'basic',
        gpu: 'true',
        'bake-time': '5',
        'prometheus-url': 'http://prom:9090',
        'create-pull-secret': 'true',
        'registry-username': 'u',
        'registry-password': 'p',
        replicas: '1',
      }),
      [],
      OWNER,
      { namespaceExists: true, sleepAction: true },
    );
    expect(plan.canaryReplicas).toBe(0);
    // one replica: no budget (disruption-budget auto)
    expect(names(plan.planned)).toEqual(['Deployment lenet', 'Service lenet']);
    expect(names(plan.admitted)).toEqual(['Deployment lenet', 'Service lenet', 'Secret lenet-registry']);
    expect(plan.objects.pullSecret?.registry).toBe('registry.example');
    expect(plan.budgetSetting).toBe('disruption-budget auto: 1 replica');
    expect(plan.verifications[0].release).toMatchObject({ track: 'stable', deployment: 'lenet', service: 'lenet' });
    expect(plan.verifications[0].gates.map((g) => g.name)).toEqual(['lenet rollout', 'lenet pods compute on the GPU', 'golden requests to lenet', 'bake 5 s']);
  });
});

describe('the analysis against the stable (compare-with-stable)', () => {
  const live = (): LiveDeployment => JSON.parse(JSON.stringify(handMadeManaged())) as LiveDeployment;
  /** a stable modelship made before: the same plan's stable */
  const handMadeManaged = () =>
    planRollout(config({ replicas: '4' }), [], OWNER, { namespaceExists: true, sleepAction: true }).objects.stable as unknown as LiveDeployment;
  /** stable null: a first deploy */
  const plan = (inputs: Record<string, string>, stable: LiveDeployment | null = live()) =>
    planRollout(config({ replicas: '4', 'bake-time': '30', ...inputs }), [], OWNER, { namespaceExists: true, stable: stable ?? undefined, sleepAction: true });
  const gateNames = (p: RolloutPlan, i: number) => p.verifications[i].gates.map((g) => `${g.gate}: ${g.name}${g.silent ? ' (silent)' : ''}`);

  test('on with canary-steps (auto): its window opens before the bake and is judged right after it, at every step', () => {
    const p = plan({ 'canary-steps': '25,100' });
    expect(gateNames(p, 0)).toEqual([
      'pods: step 1/2 (25%): canary pods Ready',
      'golden: step 1/2 (25%): golden requests to lenet-canary',
      'analysis: step 1/2 (25%): open the analysis window (silent)',
      'pods: step 1/2 (25%): bake 30 s',
      'analysis: step 1/2 (25%): analysis against the stable, 30 s',
    ]);
    expect(gateNames(p, 1)).toEqual([
      'pods: step 2/2 (100%): canary pods Ready',
      'analysis: step 2/2 (100%): open the analysis window (silent)',
      'pods: step 2/2 (100%): bake 30 s',
      'analysis: step 2/2 (100%): analysis against the stable, 30 s',
    ]);
    expect(p.gates.find((g) => g.gate === 'analysis')).toMatchObject({ result: 'skipped', detail: '' });
  });

  test('off without canary-steps (auto) or with false; on for one step with true; never without a stable to compare with', () => {
    expect(gateNames(plan({}), 0).filter((n) => n.startsWith('analysis'))).toEqual([]);
    expect(plan({}).gates.find((g) => g.gate === 'analysis')!.detail).toBe('compare-with-stable is off (auto: on with canary-steps)');
    expect(gateNames(plan({ 'canary-steps': '25,100', 'compare-with-stable': 'false' }), 0).filter((n) => n.startsWith('analysis'))).toEqual([]);
    expect(gateNames(plan({ 'compare-with-stable': 'true' }), 0).filter((n) => n.startsWith('analysis'))).toEqual([
      'analysis: open the analysis window (silent)',
      'analysis: analysis against the stable, 30 s',
    ]);
    const first = plan({ 'canary-steps': '25,100' }, null);
    expect(first.verifications.flatMap((v) => v.gates).filter((g) => g.gate === 'analysis')).toEqual([]);
    expect(first.gates.find((g) => g.gate === 'analysis')!.detail).toBe('no stable to compare with (a first deploy)');
  });

  test.each([
    [{ 'compare-with-stable': 'maybe' }, /input "compare-with-stable"/],
    [{ 'compare-with-stable': 'true', 'max-latency-ratio': '0.5' }, /input "max-latency-ratio": expected a ratio of 1 or more, got "0.5"/],
    [{ 'compare-with-stable': 'true', 'max-error-rate-increase': '2' }, /input "max-error-rate-increase": expected a share from 0 to 1, got "2"/],
    [{ 'compare-with-stable': 'true', 'analysis-min-samples': '0' }, /input "analysis-min-samples"/],
  ])('bad thresholds name their input: %j', (inputs, error) => {
    expect(() => config(inputs)).toThrow(error);
  });
});

describe('the plan of a stepped canary (canary-steps)', () => {
  const stepped = (inputs: Record<string, string> = {}) =>
    planRollout(config({ replicas: '4', 'canary-steps': '10,25,50,100', ...inputs }), [], OWNER, { namespaceExists: true, sleepAction: true });

  test('each step sized from the stable replicas (rounded up, at least 1); the canary object is applied at the first', () => {
    const plan = stepped();
    expect(plan.stableReplicas).toBe(4);
    expect(plan.steps).toEqual([
      { percent: 10, replicas: 1 },
      { percent: 25, replicas: 1 },
      { percent: 50, replicas: 2 },
      { percent: 100, replicas: 4 },
    ]);
    expect(plan.canaryReplicas).toBe(1);
    expect((plan.objects.canary as any).spec.replicas).toBe(1);
    // the same objects as one step: the stable keeps its replicas, the main Service selects both tracks
    expect((plan.objects.stable as any).spec.replicas).toBe(4);
    expect((plan.objects.mainService as any).spec.selector).not.toHaveProperty('track');
    // with 2 replicas 10% and 25% are both one pod; 100% as many as the stable
    expect(stepped({ replicas: '2', 'canary-steps': '10,25,100' }).steps.map((s) => s.replicas)).toEqual([1, 1, 2]);
    // the one-step form: canary-percent
    expect(planRollout(config({ replicas: '10', 'canary-percent': '25' }), [], OWNER, { namespaceExists: true, sleepAction: true }).steps).toEqual([
      { percent: 25, replicas: 3 },
    ]);
    expect(planRollout(config({ strategy: 'basic' }), [], OWNER, { namespaceExists: true, sleepAction: true })).toMatchObject({ steps: [], canaryReplicas: 0 });
  });

  test('the gates of each step: the golden requests at the first only; pods (on the GPU), bake and analysis at every one, named by step', () => {
    const plan = stepped({ gpu: 'true', 'bake-time': '30', 'prometheus-url': 'http://prom:9090' });
    expect(plan.verifications).toHaveLength(4);
    expect(plan.verifications.map((v) => v.release.deployment)).toEqual(Array(4).fill('lenet-canary'));
    expect(plan.verifications.map((v) => v.gates.map((g) => `${g.gate}: ${g.name}`))).toEqual([
      [
        'pods: step 1/4 (10%): canary pods Ready',
        'pods: step 1/4 (10%): canary pods compute on the GPU',
        'golden: step 1/4 (10%): golden requests to lenet-canary',
        'pods: step 1/4 (10%): bake 30 s',
        'prometheus: step 1/4 (10%): Prometheus gate',
      ],
      ...[2, 3, 4].map((n) => {
        const label = `step ${n}/4 (${[0, 10, 25, 50, 100][n]}%)`;
        return [
          `pods: ${label}: canary pods Ready`,
          `pods: ${label}: canary pods compute on the GPU`,
          `pods: ${label}: bake 30 s`,
          `prometheus: ${label}: Prometheus gate`,
        ];
      }),
    ]);
    // one step is named as before
    const one = planRollout(config({ 'prometheus-url': 'http://prom:9090' }), [], OWNER, { namespaceExists: true, sleepAction: true });
    expect(one.verifications.map((v) => v.gates.map((g) => g.name))).toEqual([
      ['canary pods Ready', 'golden requests to lenet-canary', 'bake 0 s', 'Prometheus gate'],
    ]);
  });

  test('the dry run prints each step: its size, its share of the traffic, what it verifies', async () => {
    const cfg = config({ replicas: '2', 'canary-steps': '10,25,100', 'bake-time': '60', 'prometheus-url': 'http://prom:9090' });
    const plan = planRollout(cfg, [], OWNER, { namespaceExists: false, sleepAction: true });
    // a namespace that does not exist yet: the dry run asks the cluster nothing
    const r = await dryRun({} as Kube, cfg, plan, quietLog());
    const lines = JSON.parse(r.outputs['rollout-report']).plan as string[];
    expect(lines.slice(1, 6)).toEqual([
      '- would create namespace prod',
      '- would run the canary in 3 steps beside the 2 stable replicas (which keep running until the promotion), then promote lenet, or delete the canary at the first step that fails:',
      '  - step 1/3: 10%: 1 canary replica(s) (about 33% of the traffic); verify pods, golden requests, bake 60 s, Prometheus',
      '  - step 2/3: 25%: 1 canary replica(s), the same as step 1 (about 33% of the traffic); verify pods, bake 60 s, Prometheus',
      '  - step 3/3: 100%: 2 canary replica(s) (about 50% of the traffic); verify pods, bake 60 s, Prometheus',
    ]);
    expect(r.outputs).toMatchObject({ decision: 'dry-run', 'canary-replicas': '1', 'canary-step': '' });
  });
});

/**
 * A namespace of an in-memory API server: objects by kind and name, and Deployments that roll out at once (one
 * ReplicaSet each, all pods Running and Ready), so health.ts's waits and the bake see them as the real thing would.
 */
class FakeCluster {
  readonly objects = new Map<string, K8sObject>();
  readonly writes: string[] = [];
  private uids = 0;

  private key = (kind: string, name: string) => `${kind} ${name}`;
  private copy = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

  add(obj: K8sObject): void {
    this.store(obj);
  }

  async get<T extends K8sObject = K8sObject>(_apiVersion: string, kind: string, _ns: string | undefined, name: string): Promise<T | undefined> {
    const obj = this.objects.get(this.key(kind, name));
    return obj ? this.copy(obj as T) : undefined;
  }

  async apply<T extends K8sObject = K8sObject>(obj: K8sObject): Promise<T> {
    this.writes.push(`apply ${obj.kind} ${obj.metadata.name}`);
    const live = this.objects.get(this.key(obj.kind, obj.metadata.name));
    return this.store({
      ...obj,
      metadata: { ...obj.metadata, annotations: obj.metadata.annotations, uid: (live?.metadata as { uid?: string } | undefined)?.uid } as K8sObject['metadata'],
    }) as T;
  }

  async replace<T extends K8sObject = K8sObject>(obj: K8sObject): Promise<T> {
    this.writes.push(`replace ${obj.kind} ${obj.metadata.name}`);
    return this.store(obj) as T;
  }

  async create<T extends K8sObject = K8sObject>(obj: K8sObject): Promise<T> {
    this.writes.push(`create ${obj.kind} ${obj.metadata.name}`);
    return this.store(obj) as T;
  }

  async remove(_apiVersion: string, kind: string, _ns: string, name: string): Promise<boolean> {
    this.writes.push(`delete ${kind} ${name}`);
    return this.objects.delete(this.key(kind, name));
  }

  async list<T extends K8sObject = K8sObject>(_apiVersion: string, kind: string, _ns: string, labelSelector = ''): Promise<T[]> {
    const wanted = Object.fromEntries(
      labelSelector
        .split(',')
        .filter(Boolean)
        .map((kv) => kv.split('=')),
    );
    const matches = (labels: Record<string, string> = {}) => Object.entries(wanted).every(([k, v]) => labels[k] === v);
    const deployments = [...this.objects.values()].filter((o) => o.kind === 'Deployment') as any[];
    const replicaSets = deployments.map((d) => ({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata.name}-rs`,
        uid: `${d.metadata.uid}-rs`,
        labels: { ...d.spec.template.metadata.labels, 'pod-template-hash': 'h' },
        ownerReferences: [{ uid: d.metadata.uid }],
        annotations: { 'deployment.kubernetes.io/revision': '1' },
      },
      replicas: d.spec.replicas as number,
    }));
    const pods = replicaSets.flatMap((rs) =>
      Array.from({ length: rs.replicas }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${rs.metadata.name}-${i}`, uid: `${rs.metadata.uid}-${i}`, labels: rs.metadata.labels, ownerReferences: [{ uid: rs.metadata.uid }] },
        status: {
          phase: 'Running',
          conditions: [{ type: 'Ready', status: 'True' }],
          containerStatuses: [{ name: 'model-server', ready: true, started: true, restartCount: 0, state: { running: {} } }],
        },
      })),
    );
    const all: K8sObject[] = kind === 'ReplicaSet' ? replicaSets : kind === 'Pod' ? pods : [];
    return all.filter((o) => matches(o.metadata.labels)) as T[];
  }

  async events(): Promise<never[]> {
    return [];
  }

  private store(obj: K8sObject): K8sObject {
    const stored = this.copy(obj) as any;
    if (stored.kind === 'Deployment') {
      stored.metadata.uid ??= `uid-${++this.uids}`;
      stored.metadata.generation = 1;
      const n = stored.spec.replicas ?? 1;
      stored.status = { observedGeneration: 1, replicas: n, updatedReplicas: n, availableReplicas: n, readyReplicas: n };
    }
    this.objects.set(this.key(stored.kind, stored.metadata.name), stored);
    return this.copy(stored);
  }
}

function quietLog(lines: string[] = []): Logger {
  return { info: (m) => lines.push(m), warning: (m) => lines.push(`warning: ${m}`), group: (_n, fn) => fn() };
}

/** A gate that passes (saying `detail`), or fails with `failure`. */
const fakeGate = (gate: Gate['gate'], name: string, outcome: { detail?: string; evidence?: string[]; failure?: Error; passes?: boolean }): Gate => ({
  gate,
  name,
  async run() {
    if (outcome.failure) throw outcome.failure;
    return { passes: outcome.passes, detail: outcome.detail, evidence: outcome.evidence };
  },
});

/** The plan with these gates in place of its own, at every step (or, a function, each step's own). */
const withGates = (plan: RolloutPlan, gates: Gate[] | ((step: number) => Gate[])): RolloutPlan => ({
  ...plan,
  verifications: plan.verifications.map((v, i) => ({ ...v, gates: typeof gates === 'function' ? gates(i) : gates })),
});

async function deploy(plan: RolloutPlan, strategy: (p: RolloutPlan) => Strategy, cluster: FakeCluster, timeoutS = 30) {
  const log: string[] = [];
  const run = new DeployRun(cluster as unknown as Kube, 'prod', quietLog(log), { timeoutS, verifyUrl: '' }, plan.gates);
  const outcome = await runStrategy(strategy(plan), run);
  run.close();
  return {
    outcome,
    run,
    log,
    steps: run.timeline.entries.map((t) => `${t.step}: ${t.result}`),
    gates: Object.fromEntries(run.gates.records.map((g) => [g.gate, g.result])),
  };
}

describe('the canary strategy, one step sequence', () => {
  const golden = (failure?: Error) =>
    fakeGate('golden', 'golden requests to lenet-canary', failure ? { failure } : { passes: true, detail: '3 outputs match the reference' });

  test('a golden gate that fails: the canary (and the main Service this first deploy created) are deleted; the reason names the gate and its evidence', async () => {
    const cluster = new FakeCluster();
    const plan = planRollout(config({ 'bake-time': '0' }), [], OWNER, { namespaceExists: true, sleepAction: true });
    const wrong = new GateFailure('golden requests to lenet-canary: output "prob" at batch 1 differs from the reference', [
      '| batch | output |',
      '| 1 | prob |',
    ]);
    const r = await deploy(
      withGates(plan, [
        podsReadyGate('canary pods Ready', (n) => `${n} canary pod(s) Ready`),
        golden(wrong),
        bakeGate(0, 'canary pod(s)', { modelName: 'lenet', apiKey: '' }),
      ]),
      canaryStrategy,
      cluster,
    );
    expect(r.outcome.decision).toBe('rolled-back');
    expect(r.outcome.reason).toBe(
      'gate "golden" failed: golden requests to lenet-canary: output "prob" at batch 1 differs from the reference\n| batch | output |\n| 1 | prob |',
    );
    expect(r.steps).toEqual([
      'apply lenet-canary (1 of 2 replicas) and its Service: ok',
      'canary pods Ready: ok',
      'golden requests to lenet-canary: fail',
      'roll back: delete lenet-canary: ok',
    ]);
    // the pods gate ends with the bake, which never came: Ready, but not passed
    expect(r.gates).toEqual({ pods: 'skipped', golden: 'fail', analysis: 'skipped', prometheus: 'skipped' });
    expect(r.run.gates.record('pods').detail).toBe('1 canary pod(s) Ready');
    expect(r.run.gates.record('golden').evidence).toEqual(wrong.evidence);
    expect([...cluster.objects.keys()]).toEqual([]);
    expect(cluster.writes).toEqual([
      'apply Deployment lenet-canary',
      'apply Service lenet-canary',
      'apply Service lenet',
      'delete Deployment lenet-canary',
      'delete Service lenet-canary',
      'delete Service lenet',
    ]);
    expect(r.log).toContainEqual(expect.stringMatching(/^\[\d+\.\d s\] golden requests to lenet-canary$/));
    // the report: outputs and summary from the same records
    const result = rolloutResult(plan, { outcome: r.outcome, gates: r.run.gates.records, timeline: r.run.timeline.entries, totalSeconds: 1 });
    expect(result).toMatchObject({
      ok: false,
      failure: `rolled back: ${r.outcome.reason}`,
      outputs: {
        decision: 'rolled-back',
        'gate-pods': 'skipped',
        'gate-golden': 'fail',
        'gate-prometheus': 'skipped',
        'canary-replicas': '1',
        'canary-step': '1/1',
        'verify-latency-p95-ms': '',
      },
    });
    expect(Object.keys(JSON.parse(result.outputs['rollout-report']))).toEqual([
      'decision',
      'reason',
      'strategy',
      'namespace',
      'app',
      'image',
      'takeover',
      'canarySteps',
      'canaryStep',
      'gates',
      'timeline',
      'totalSeconds',
    ]);
    expect(result.summary).toContain('## modelship rollout: ❌ rolled-back');
    expect(result.summary).toContain('<details><summary>evidence: golden</summary>');
  });

  test("every gate passes: promoted, the stable runs the new image marked as this run's, the canary is gone", async () => {
    const cluster = new FakeCluster();
    const plan = planRollout(config({ 'bake-time': '1' }), [], OWNER, { namespaceExists: true, sleepAction: true });
    const r = await deploy(
      withGates(plan, [
        podsReadyGate('canary pods Ready', (n) => `${n} canary pod(s) Ready`),
        golden(),
        bakeGate(1, 'canary pod(s)', { modelName: 'lenet', apiKey: '' }),
      ]),
      canaryStrategy,
      cluster,
    );
    expect(r.outcome).toMatchObject({ decision: 'promoted', reason: `canary verified (pods, golden) and promoted: lenet runs ${IMAGE}` });
    expect(r.outcome.decisionSeconds).toBeGreaterThanOrEqual(1);
    expect(r.steps).toEqual([
      'apply lenet-canary (1 of 2 replicas) and its Service: ok',
      'canary pods Ready: ok',
      'golden requests to lenet-canary: ok',
      'bake 1 s: ok',
      'promote: lenet takes the new image: ok',
      'stable rollout of lenet: ok',
      'delete lenet-canary: ok',
    ]);
    expect(r.run.gates.record('pods')).toMatchObject({ result: 'pass', detail: '1 canary pod(s) Ready, no restart or NotReady during 1 s' });
    const stable = await cluster.get<any>('apps/v1', 'Deployment', 'prod', 'lenet');
    expect(stable.spec.template.spec.containers[0].image).toBe(IMAGE);
    expect(stable.metadata.annotations).toMatchObject({ [CREATED_BY]: OWNER, [PROMOTED_BY]: OWNER });
    expect([...cluster.objects.keys()].sort()).toEqual(['Deployment lenet', 'PodDisruptionBudget lenet', 'Service lenet']);
  });

  test('rollout-timeout aborts a gate that waits: rolled back, the reason is the timeout', async () => {
    const cluster = new FakeCluster();
    const plan = planRollout(config(), [], OWNER, { namespaceExists: true, sleepAction: true });
    const stuck: Gate = { gate: 'pods', name: 'canary pods Ready', run: async (ctx) => (await sleep(60_000, ctx.signal), {}) };
    const r = await deploy(withGates(plan, [stuck, golden()]), canaryStrategy, cluster, 0.2);
    expect(r.outcome).toMatchObject({ decision: 'rolled-back', reason: 'timeout: no decision within rollout-timeout 0.2 s' });
    expect(r.outcome.decisionSeconds).toBeLessThan(5);
    expect(r.gates.pods).toBe('fail');
    expect(r.steps.at(-1)).toBe('roll back: delete lenet-canary: ok');
    expect(cluster.objects.has('Deployment lenet-canary')).toBe(false);
  });

  test('any error inside a gate fails that gate, with the evidence it had reported; its measurement stays', async () => {
    const cluster = new FakeCluster();
    const plan = planRollout(config(), [], OWNER, { namespaceExists: true, sleepAction: true });
    const flaky: Gate = {
      gate: 'golden',
      name: 'golden requests to lenet-canary',
      run: async (ctx) => (ctx.observed({ evidence: ['| table |'], latencyP95Ms: 12.5 }), Promise.reject(new Error('socket hang up'))),
    };
    const r = await deploy(withGates(plan, [flaky]), canaryStrategy, cluster);
    expect(r.outcome.reason).toBe('gate "golden" failed: socket hang up\n| table |');
    expect(r.run.latencyP95Ms).toBe(12.5);
  });
});

describe('a stepped canary: the same sequence, one step per canary size', () => {
  /** An earlier deploy's stable (4 replicas) and main Service, as the cluster returns them. */
  const earlier = planRollout(config({ replicas: '4' }), [], 'gh-0-0-deploy', { namespaceExists: true, sleepAction: true });
  const liveStable = (): LiveDeployment => {
    const stable = JSON.parse(JSON.stringify(earlier.objects.stable)) as LiveDeployment;
    (stable.spec as any).template.spec.containers[0].image = 'registry.example/lenet@sha256:' + 'a'.repeat(64);
    return stable;
  };
  /** the cluster, with the canary's size at each of its applies (and its owner label) recorded */
  const clusterWith = (stable?: LiveDeployment) => {
    const cluster = new FakeCluster();
    if (stable) [stable, earlier.objects.mainService].forEach((o) => cluster.add(o));
    const canarySizes: string[] = [];
    const apply = cluster.apply.bind(cluster);
    cluster.apply = async (obj: K8sObject) => {
      if (obj.kind === 'Deployment' && obj.metadata.name === 'lenet-canary')
        canarySizes.push(`${(obj as any).spec.replicas} ${obj.metadata.labels?.[OWNER_LABEL]}`);
      return apply(obj);
    };
    return { cluster, canarySizes };
  };
  const golden = fakeGate('golden', 'golden requests to lenet-canary', { passes: true, detail: '3 outputs match the reference' });
  /** the plan's own gates, but the golden requests (which need a server) and the metrics (a Prometheus) faked, at their step */
  const faked = (plan: RolloutPlan, metrics: (step: number) => Gate, analysis: (step: number) => Gate = analysisPass) =>
    withGates(plan, (i) =>
      plan.verifications[i].gates
        // the analysis's window is opened by a silent gate before the bake: the fake needs none
        .filter((g) => !(g.gate === 'analysis' && g.silent))
        .map((g) =>
          g.gate === 'golden'
            ? atStep(golden, stepLabel(i, plan.steps))
            : g.gate === 'prometheus'
              ? atStep(metrics(i), stepLabel(i, plan.steps))
              : g.gate === 'analysis'
                ? atStep(analysis(i), stepLabel(i, plan.steps))
                : g,
        ),
    );
  /** the analysis against the stable (which needs traffic and metrics) faked */
  const analysisPass = (i: number) =>
    fakeGate('analysis', 'analysis against the stable', { passes: true, detail: `canary ${100 * (i + 1)} requests, stable ${300 * (i + 1)} requests` });
  const metricsPass = (i: number) => fakeGate('prometheus', 'Prometheus gate', { passes: true, detail: `canary samples ${20 * (i + 1)}` });
  /** the writes to the stable Deployment `lenet` */
  const stableWrites = (cluster: FakeCluster) => cluster.writes.filter((w) => / Deployment lenet$/.test(w));

  test('every step passes: the canary grows 1, 1, 2, 4 pods beside the untouched stable, then the promotion', async () => {
    const live = liveStable();
    const { cluster, canarySizes } = clusterWith(live);
    const plan = planRollout(config({ replicas: '4', 'canary-steps': '10,25,50,100', 'prometheus-url': 'http://prom:9090' }), [], OWNER, {
      namespaceExists: true,
      stable: live,
      sleepAction: true,
    });
    const r = await deploy(faked(plan, metricsPass), canaryStrategy, cluster);
    expect(r.outcome).toMatchObject({
      decision: 'promoted',
      reason: `canary verified (pods, golden, analysis, prometheus) through 4 steps (10%, 25%, 50%, 100%) and promoted: lenet runs ${IMAGE}`,
      steps: { reached: 4, of: 4 },
    });
    expect(r.steps).toEqual([
      'step 1/4: canary at 10% (1 of 4 replicas): apply lenet-canary and its Service: ok',
      'step 1/4 (10%): canary pods Ready: ok',
      'step 1/4 (10%): golden requests to lenet-canary: ok',
      'step 1/4 (10%): analysis against the stable: ok',
      'step 1/4 (10%): Prometheus gate: ok',
      'step 2/4: canary at 25% (still 1 of 4 replicas): ok',
      'step 2/4 (25%): canary pods Ready: ok',
      'step 2/4 (25%): analysis against the stable: ok',
      'step 2/4 (25%): Prometheus gate: ok',
      'step 3/4: canary at 50% (2 of 4 replicas): ok',
      'step 3/4 (50%): canary pods Ready: ok',
      'step 3/4 (50%): analysis against the stable: ok',
      'step 3/4 (50%): Prometheus gate: ok',
      'step 4/4: canary at 100% (4 of 4 replicas): ok',
      'step 4/4 (100%): canary pods Ready: ok',
      'step 4/4 (100%): analysis against the stable: ok',
      'step 4/4 (100%): Prometheus gate: ok',
      'promote: lenet takes the new image: ok',
      'stable rollout of lenet: ok',
      'delete lenet-canary: ok',
    ]);
    // the same Deployment applied again at each size, always this run's (the post step of a killed run finds it)
    expect(canarySizes).toEqual([`1 ${OWNER}`, `1 ${OWNER}`, `2 ${OWNER}`, `4 ${OWNER}`]);
    expect(r.log).toContainEqual(
      '25% of 4 replicas is still 1 canary pod(s), as at step 1 (replica weighting): no new pods; the step bakes and is analysed again',
    );
    // the stable: written once, by the promotion, after the last step
    expect(stableWrites(cluster)).toEqual(['apply Deployment lenet']);
    expect(cluster.writes.indexOf('apply Deployment lenet')).toBeGreaterThan(cluster.writes.lastIndexOf('apply Deployment lenet-canary'));
    expect(r.gates).toEqual({ pods: 'pass', golden: 'pass', analysis: 'pass', prometheus: 'pass' });
    expect(r.run.gates.record('pods').detail).toBe('step 4/4 (100%): 4 canary pod(s) Ready, no restart or NotReady during 0 s');
    expect(r.run.gates.record('prometheus').detail).toBe('step 4/4 (100%): canary samples 80');
    expect(r.run.gates.record('golden').detail).toBe('step 1/4 (10%): 3 outputs match the reference');
    const result = rolloutResult(plan, { outcome: r.outcome, gates: r.run.gates.records, timeline: r.run.timeline.entries, totalSeconds: 1 });
    expect(result.outputs).toMatchObject({ decision: 'promoted', 'canary-replicas': '4', 'canary-step': '4/4', 'gate-prometheus': 'pass' });
    expect(JSON.parse(result.outputs['rollout-report'])).toMatchObject({ canarySteps: plan.steps, canaryStep: { reached: 4, of: 4 } });
    expect(result.summary).toContain('strategy canary (canary steps 10%: 1, 25%: 1, 50%: 2, 100%: 4 of 4 replicas; reached step 4/4).');
    expect(result.summary).toContain('| step 3/4: canary at 50% (2 of 4 replicas) | ');
    expect(result.summary).toContain('| step 3/4 (50%): Prometheus gate | ');
  });

  test('a failed analysis at step 3 of 4 rolls back to the untouched stable: the canary goes, the report names the step', async () => {
    const live = liveStable();
    const { cluster, canarySizes } = clusterWith(live);
    const before = await cluster.get('apps/v1', 'Deployment', 'prod', 'lenet');
    const plan = planRollout(config({ replicas: '4', 'canary-steps': '10,25,50,100', 'prometheus-url': 'http://prom:9090' }), [], OWNER, {
      namespaceExists: true,
      stable: live,
      sleepAction: true,
    });
    const worse = new GateFailure("canary error rate 0.2000 exceeds the stable's 0.0000 by more than max-error-rate-increase 0.01", [
      'sum(increase(modelship_requests_total{track="canary"}[30s]))',
    ]);
    const r = await deploy(
      faked(plan, metricsPass, (i) => (i === 2 ? fakeGate('analysis', 'analysis against the stable', { failure: worse }) : analysisPass(i))),
      canaryStrategy,
      cluster,
    );
    expect(r.outcome).toMatchObject({
      decision: 'rolled-back',
      reason:
        'gate "analysis" failed: step 3/4 (50%): canary error rate 0.2000 exceeds the stable\'s 0.0000 by more than max-error-rate-increase 0.01\nsum(increase(modelship_requests_total{track="canary"}[30s]))',
      steps: { reached: 3, of: 4 },
    });
    expect(r.steps.slice(9)).toEqual([
      'step 3/4: canary at 50% (2 of 4 replicas): ok',
      'step 3/4 (50%): canary pods Ready: ok',
      'step 3/4 (50%): analysis against the stable: fail',
      'roll back at step 3/4: delete lenet-canary: ok',
    ]);
    expect(canarySizes).toEqual([`1 ${OWNER}`, `1 ${OWNER}`, `2 ${OWNER}`]);
    // the stable was never written, and is as it was; the canary and its Service are gone
    expect(stableWrites(cluster)).toEqual([]);
    expect(await cluster.get('apps/v1', 'Deployment', 'prod', 'lenet')).toEqual(before);
    expect([...cluster.objects.keys()].sort()).toEqual(['Deployment lenet', 'Service lenet']);
    // step 3's pods passed (its bake comes before its analysis); the golden requests ran at step 1 only; the
    // Prometheus gate, after the analysis, passed at steps 1-2 and never ran at step 3: no pass
    expect(r.gates).toEqual({ pods: 'pass', golden: 'pass', analysis: 'fail', prometheus: 'skipped' });
    expect(r.run.gates.record('pods').detail).toBe('step 3/4 (50%): 2 canary pod(s) Ready, no restart or NotReady during 0 s');
    const result = rolloutResult(plan, { outcome: r.outcome, gates: r.run.gates.records, timeline: r.run.timeline.entries, totalSeconds: 1 });
    expect(result).toMatchObject({ ok: false, outputs: { decision: 'rolled-back', 'canary-replicas': '2', 'canary-step': '3/4', 'gate-analysis': 'fail' } });
    expect(result.summary).toContain('reached step 3/4');
    expect(result.summary).toContain(
      "| step 3/4 (50%): analysis against the stable | 0.0 s | **fail**: step 3/4 (50%): canary error rate 0.2000 exceeds the stable's 0.0000 by more than max-error-rate-increase 0.01 |",
    );
  });

  test('rollout-timeout is the whole run: a step that waits past it is aborted and rolled back; what passed before is no pass', async () => {
    const { cluster } = clusterWith();
    const plan = planRollout(config({ replicas: '4', 'canary-steps': '25,100', 'prometheus-url': 'http://prom:9090' }), [], OWNER, {
      namespaceExists: true,
      sleepAction: true,
    });
    const stuck = atStep({ gate: 'pods', name: 'canary pods Ready', run: async (ctx) => (await sleep(60_000, ctx.signal), {}) }, stepLabel(1, plan.steps));
    const passing = faked(plan, metricsPass);
    const r = await deploy(
      withGates(passing, (i) => (i === 0 ? passing.verifications[0].gates : [stuck, ...passing.verifications[1].gates.slice(1)])),
      canaryStrategy,
      cluster,
      0.5,
    );
    expect(r.outcome).toMatchObject({ decision: 'rolled-back', reason: 'timeout: no decision within rollout-timeout 0.5 s', steps: { reached: 2, of: 2 } });
    expect(r.steps.slice(-3)).toEqual([
      'step 2/2: canary at 100% (4 of 4 replicas): ok',
      'step 2/2 (100%): canary pods Ready: fail',
      'roll back at step 2/2: delete lenet-canary: ok',
    ]);
    // the Prometheus gate passed at step 1 and never ran at step 2
    expect(r.gates).toEqual({ pods: 'fail', golden: 'pass', analysis: 'skipped', prometheus: 'skipped' });
    expect(r.run.gates.record('prometheus').detail).toBe('step 2/2 (100%): not verified (the steps before it passed)');
    // a first deploy: the main Service this run created goes with the canary
    expect([...cluster.objects.keys()]).toEqual([]);
  });
});

describe('the basic strategy, the same sequence', () => {
  test('a failing check returns the live stable to its template and removes the budget this run created', async () => {
    const cluster = new FakeCluster();
    const live: LiveDeployment = { ...handMade, metadata: { ...handMade.metadata, labels: { 'app.kubernetes.io/managed-by': 'modelship' } } };
    cluster.add(live);
    const plan = planRollout(config({ strategy: 'basic' }), [], OWNER, { namespaceExists: true, stable: live, sleepAction: true });
    const onCpu = new GateFailure('gpu is true but 2 of 2 pod(s) do not serve the model on the GPU', ['pod a: cpu', 'pod b: cpu']);
    const r = await deploy(
      withGates(plan, [podsReadyGate('lenet rollout'), fakeGate('pods', 'lenet pods compute on the GPU', { failure: onCpu })]),
      basicStrategy,
      cluster,
    );
    expect(r.outcome).toMatchObject({
      decision: 'rolled-back',
      reason: 'gate "pods" failed: gpu is true but 2 of 2 pod(s) do not serve the model on the GPU\npod a: cpu\npod b: cpu',
    });
    expect(r.steps).toEqual([
      'apply lenet: ok',
      'lenet rollout: ok',
      'lenet pods compute on the GPU: fail',
      "roll lenet back to the previous ReplicaSet's template: ok",
    ]);
    // basic's pods gate says nothing before its bake
    expect(r.run.gates.record('pods')).toMatchObject({ result: 'fail', evidence: onCpu.evidence });
    const stable = await cluster.get<any>('apps/v1', 'Deployment', 'prod', 'lenet');
    expect(stable.spec.template).toEqual(live.spec.template);
    expect(cluster.objects.has('PodDisruptionBudget lenet')).toBe(false);
  });

  test("verified: promoted, the stable marked as this run's", async () => {
    const cluster = new FakeCluster();
    const plan = planRollout(config({ strategy: 'basic' }), [], OWNER, { namespaceExists: true, sleepAction: true });
    const passing = await deploy(
      withGates(plan, [
        podsReadyGate('lenet rollout'),
        fakeGate('golden', 'golden requests to lenet', { passes: true }),
        bakeGate(0, 'pod(s)', { modelName: 'lenet', apiKey: '' }),
      ]),
      basicStrategy,
      cluster,
    );
    expect(passing.outcome).toMatchObject({ decision: 'promoted', reason: `lenet updated and verified: runs ${IMAGE}` });
    expect(passing.steps).toEqual(['apply lenet: ok', 'lenet rollout: ok', 'golden requests to lenet: ok']);
    expect(passing.gates).toEqual({ pods: 'pass', golden: 'pass', analysis: 'skipped', prometheus: 'skipped' });
    expect(passing.run.gates.record('pods').detail).toBe('2 pod(s) Ready, no restart or NotReady during 0 s');
    expect((await cluster.get('apps/v1', 'Deployment', 'prod', 'lenet'))?.metadata.annotations).toMatchObject({ [CREATED_BY]: OWNER, [PROMOTED_BY]: OWNER });
    expect(cluster.writes).toEqual(['apply Deployment lenet', 'apply Service lenet', 'apply PodDisruptionBudget lenet', 'apply Deployment lenet']);
  });
});

describe('the metrics gate on a metric provider', () => {
  const thresholds = {
    samplesQuery: 'samples{track="{{track}}"}',
    errorRateQuery: 'errors{track="{{track}}"}',
    latencyQuery: 'p99{track="{{track}}"}',
    minSamples: 20,
    maxErrorRate: 0.01,
    maxP99Ms: 100,
  };
  const provider = (values: Record<string, number | undefined>): MetricProvider => ({ measure: async (q) => values[q] });
  const vars = { namespace: 'prod', app: 'lenet', model: 'lenet' };

  test('no data is a failure, never a pass', async () => {
    await expect(judgeCanaryMetrics(provider({}), thresholds, 0, vars, false)).rejects.toThrow(
      /^Prometheus has no samples for the canary \(query: samples\{track="canary"\}\); no data is a failure$/,
    );
    await expect(judgeCanaryMetrics(provider({ 'samples{track="canary"}': 25 }), thresholds, 0, vars, false)).rejects.toThrow(
      /no error rate for the canary; no data is a failure \(canary samples 25, error rate none, p99 none; stable none\)/,
    );
  });

  test('judged on the canary, reported beside the stable', async () => {
    const values = {
      'samples{track="canary"}': 25,
      'errors{track="canary"}': 0,
      'p99{track="canary"}': 12,
      'samples{track="stable"}': 400,
      'errors{track="stable"}': 0.001,
      'p99{track="stable"}': 10,
    };
    const gate = metricsGate(provider(values), thresholds, vars, true);
    const result = await gate.run({ remainingMs: () => 0, signal: new AbortController().signal } as never);
    expect(result).toEqual({
      passes: true,
      detail: 'canary samples 25, error rate 0.0000, p99 12.0 ms; stable samples 400, error rate 0.0010, p99 10.0 ms',
      evidence: ['samples{track="canary"}', 'errors{track="canary"}', 'p99{track="canary"}'],
    });
    await expect(judgeCanaryMetrics(provider({ ...values, 'p99{track="canary"}': 150 }), thresholds, 0, vars, true)).rejects.toThrow(
      /^canary p99 latency 150\.0 ms > max-p99-ms 100/,
    );
  });
});

// ---- autoscale (issue 23 §3): the stable's replicas are the autoscaler's; see also test/rollout-autoscale.test.ts

/**
 * FakeCluster with what server-side apply does to a Deployment's spec.replicas, as the lab's v1.34 API server does it
 * (test/autoscale.lab.test.ts): its owners are tracked (managedFields); an apply that leaves the field out drops its
 * manager's claim, and a field nobody owns any more goes back to the default, 1; an HPA's scaling (scale()) is an
 * update through the scale subresource, which takes the field from everyone. Every apply of the stable is recorded
 * with the replicas it carried.
 */
class AutoscaleCluster extends FakeCluster {
  /** `manager replicas`: each write to the stable `lenet`, `-` for an apply without replicas */
  readonly stableWrites: string[] = [];
  /** kinds the deploy identity may not read (HTTP 403) */
  readonly forbidden = new Set<string>();
  private owners = new Set<string>();

  /** the stable as an earlier deploy left it: `replicas`, owned by `owners` (e.g. 'modelship Apply') */
  addStable(stable: K8sObject, replicas: number, owners: string[]): void {
    this.owners = new Set(owners);
    this.add(this.withFields({ ...stable, spec: { ...(stable.spec as object), replicas } }));
  }

  /** the HPA controller scales the stable (an update through the scale subresource) */
  scale(replicas: number): void {
    const live = this.objects.get('Deployment lenet') as any;
    this.owners = new Set(['kube-controller-manager Update/scale']);
    this.add(this.withFields({ ...live, spec: { ...live.spec, replicas } }));
  }

  replicasOf(): number {
    return (this.objects.get('Deployment lenet') as any).spec.replicas;
  }

  ownersOf(): string[] {
    return [...this.owners].sort();
  }

  override async get<T extends K8sObject = K8sObject>(apiVersion: string, kind: string, ns: string | undefined, name: string): Promise<T | undefined> {
    if (this.forbidden.has(kind)) throw new Error(`Kubernetes: read ${kind} ${ns}/${name} failed (HTTP 403): forbidden`);
    return super.get<T>(apiVersion, kind, ns, name);
  }

  override async apply<T extends K8sObject = K8sObject>(obj: K8sObject, dryRun = false, as: { fieldManager?: string; force?: boolean } = {}): Promise<T> {
    if (obj.kind !== 'Deployment' || obj.metadata.name !== 'lenet') return dryRun ? (JSON.parse(JSON.stringify(obj)) as T) : super.apply<T>(obj);
    const live = this.objects.get('Deployment lenet') as any;
    const manager = `${as.fieldManager ?? 'modelship'} Apply`;
    const replicas = (obj.spec as { replicas?: number }).replicas;
    const owners = new Set(this.owners);
    let next: number;
    if (replicas !== undefined) {
      // force (modelship's): a value that differs takes the field from the others; the same value is shared
      if (live && live.spec.replicas !== replicas) owners.clear();
      owners.add(manager);
      next = replicas;
    } else {
      owners.delete(manager);
      next = owners.size > 0 && live ? live.spec.replicas : 1;
    }
    const merged =
      as.fieldManager && live
        ? { ...live, spec: { ...live.spec, replicas: next } } // the hand-over: spec.replicas alone
        : { ...obj, spec: { ...(obj.spec as object), replicas: next } };
    if (dryRun) return this.withFields(merged, owners) as T;
    this.stableWrites.push(`${as.fieldManager ?? 'modelship'} ${replicas ?? '-'}`);
    this.owners = owners;
    if (as.fieldManager && live) {
      this.add(this.withFields(merged));
      return (await this.get<T>('apps/v1', 'Deployment', 'prod', 'lenet'))!;
    }
    return super.apply<T>(this.withFields(merged));
  }

  private withFields(obj: any, owners = this.owners): K8sObject {
    const managedFields = [...owners].map((o) => {
      const [manager, op] = o.split(' ');
      const [operation, subresource] = op.split('/');
      return { manager, operation, ...(subresource ? { subresource } : {}), fieldsV1: { 'f:spec': { 'f:replicas': {} } } };
    });
    return { ...obj, metadata: { ...obj.metadata, managedFields } };
  }
}

describe('autoscale: the rollout works with the autoscaler, not against it', () => {
  const passing = (plan: RolloutPlan, during?: (step: number) => void) =>
    withGates(plan, (i) => [
      {
        gate: 'pods',
        name: 'canary pods Ready',
        async run() {
          during?.(i);
          return { passes: true, detail: 'Ready' };
        },
      },
      fakeGate('golden', 'golden requests', { passes: true }),
    ]);
  /** an earlier deploy's stable and main Service (modelship's), as the cluster has them */
  const earlier = (cluster: AutoscaleCluster, replicas: number, owners: string[]) => {
    const prior = planRollout(config({ replicas: String(replicas) }), [], 'gh-0-0-deploy', { namespaceExists: true, sleepAction: true });
    const stable = JSON.parse(JSON.stringify(prior.objects.stable)) as LiveDeployment;
    (stable.spec as any).template.spec.containers[0].image = `registry.example/lenet@sha256:${'a'.repeat(64)}`;
    cluster.addStable(stable, replicas, owners);
    cluster.add(prior.objects.mainService);
    return cluster.get<LiveDeployment>('apps/v1', 'Deployment', 'prod', 'lenet');
  };
  const hpaOf = (cluster: AutoscaleCluster, as = 'min=1,max=8,cpu=50') =>
    planRollout(config({ autoscale: as }), [], 'gh-0-0-deploy', { namespaceExists: true, sleepAction: true }).objects.autoscaler!;

  test('a first deploy (canary): the canary sized from the initial replicas; the promotion creates the stable at them, hands them over at once, and creates the HPA', async () => {
    const cluster = new AutoscaleCluster();
    const plan = planRollout(config({ autoscale: 'min=2,max=6,cpu=50', replicas: '1' }), [], OWNER, { namespaceExists: true, sleepAction: true });
    // replicas 1 is below min: the first deploy runs min
    expect(plan).toMatchObject({ stableReplicas: 2, canaryReplicas: 1 });
    expect((plan.objects.stable as any).spec.replicas).toBe(2);
    expect(names(plan.planned)).toEqual([
      'Deployment lenet-canary',
      'Service lenet-canary',
      'Deployment lenet',
      'Service lenet',
      'PodDisruptionBudget lenet',
      'HorizontalPodAutoscaler lenet',
    ]);
    const r = await deploy(passing(plan), canaryStrategy, cluster);
    expect(r.outcome.decision).toBe('promoted');
    expect(r.steps[0]).toBe('apply lenet-canary (1 of 2 replicas) and its Service: ok');
    // created at 2 by modelship's apply, then shared with the hand-over manager: no later apply of modelship's owns it alone
    expect(cluster.stableWrites).toEqual(['modelship 2', 'modelship-handover-to-hpa 2']);
    expect(cluster.ownersOf()).toEqual(['modelship Apply', 'modelship-handover-to-hpa Apply']);
    const hpa = await cluster.get<any>('autoscaling/v2', 'HorizontalPodAutoscaler', 'prod', 'lenet');
    expect(hpa.spec).toMatchObject({ scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'lenet' }, minReplicas: 2, maxReplicas: 6 });
    expect(hpa.metadata.annotations).toMatchObject({ [CREATED_BY]: OWNER });
    expect(cluster.writes.indexOf('apply HorizontalPodAutoscaler lenet')).toBeGreaterThan(cluster.writes.indexOf('apply Deployment lenet'));
    expect(r.log).toContainEqual('created HorizontalPodAutoscaler lenet on Deployment lenet (2 to 6 replicas)');
    // the next deploy's apply without replicas keeps the 2
    await cluster.apply(withoutReplicas(plan.objects.stable));
    expect(cluster.replicasOf()).toBe(2);
  });

  test('a later canary: the HPA owns 5 replicas; the steps are sized from 5, spec.replicas is never written, and the HPA scaling during the run is kept', async () => {
    const cluster = new AutoscaleCluster();
    const live = await earlier(cluster, 5, ['kube-controller-manager Update/scale']);
    cluster.add(hpaOf(cluster, 'min=2,max=8,cpu=50'));
    const plan = planRollout(config({ autoscale: 'min=2,max=8,cpu=50', replicas: '2', 'canary-steps': '20,60,100' }), [], OWNER, {
      namespaceExists: true,
      stable: live,
      sleepAction: true,
    });
    expect(plan.stableReplicas).toBe(5);
    expect(plan.steps).toEqual([
      { percent: 20, replicas: 1 },
      { percent: 60, replicas: 3 },
      { percent: 100, replicas: 5 },
    ]);
    expect(plan.objects.stable.spec).not.toHaveProperty('replicas');
    // auto: a quarter of the 5 it runs (1), not of the replicas input (2: none... 1 anyway) — 8 would be 2
    expect((plan.objects.disruptionBudget as any).spec.maxUnavailable).toBe(1);
    expect(plan.budgetSetting).toBe('disruption-budget auto: 5 replica');
    // the HPA scales the stable out to 7 while the canary is at its second step
    const r = await deploy(
      passing(plan, (i) => i === 1 && cluster.scale(7)),
      canaryStrategy,
      cluster,
    );
    expect(r.outcome.decision).toBe('promoted');
    expect(r.steps.filter((s) => s.startsWith('step '))).toEqual([
      'step 1/3: canary at 20% (1 of 5 replicas): apply lenet-canary and its Service: ok',
      'step 2/3: canary at 60% (3 of 5 replicas): ok',
      'step 3/3: canary at 100% (5 of 5 replicas): ok',
    ]);
    // one write of the stable, without replicas; nothing to hand over (the HPA owns them)
    expect(cluster.stableWrites).toEqual(['modelship -']);
    expect(cluster.replicasOf()).toBe(7);
    expect(cluster.ownersOf()).toEqual(['kube-controller-manager Update/scale']);
    const stable = await cluster.get<any>('apps/v1', 'Deployment', 'prod', 'lenet');
    expect(stable.spec.template.spec.containers[0].image).toBe(IMAGE);
    // the HPA is applied again (not created: no mark), still on the stable
    const hpa = await cluster.get<any>('autoscaling/v2', 'HorizontalPodAutoscaler', 'prod', 'lenet');
    expect(hpa.spec.scaleTargetRef.name).toBe('lenet');
    expect(hpa.metadata.annotations ?? {}).not.toHaveProperty(CREATED_BY);
    expect(r.log).toContainEqual('applied HorizontalPodAutoscaler lenet on Deployment lenet (2 to 8 replicas)');
  });

  test('autoscale turned on for a stable whose replicas modelship applied: handed over first, so the apply without them keeps 3 (not 1)', async () => {
    const cluster = new AutoscaleCluster();
    const live = await earlier(cluster, 3, ['modelship Apply']);
    const plan = planRollout(config({ autoscale: 'max=6,cpu=50', strategy: 'basic' }), [], OWNER, { namespaceExists: true, stable: live, sleepAction: true });
    const r = await deploy(passing(plan), basicStrategy, cluster);
    expect(r.outcome.decision).toBe('promoted');
    // the step: hand-over, the apply without replicas; the promotion's mark: without replicas too
    expect(cluster.stableWrites).toEqual(['modelship-handover-to-hpa 3', 'modelship -', 'modelship -']);
    expect(cluster.replicasOf()).toBe(3);
    expect(cluster.ownersOf()).toEqual(['modelship-handover-to-hpa Apply']);
    expect(r.log).toContainEqual(
      "spec.replicas of Deployment lenet (3) handed over to its autoscaler (field manager modelship-handover-to-hpa): modelship's apply leaves it out from now on",
    );
    // the control: the same apply without the hand-over would have dropped the field (the Deployment's default, 1)
    const control = new AutoscaleCluster();
    await earlier(control, 3, ['modelship Apply']);
    await control.apply(plan.objects.stable);
    expect(control.replicasOf()).toBe(1);
  });

  test('basic, a first deploy: the HPA moves the replicas during the verification, and the promotion (its mark) keeps them', async () => {
    const cluster = new AutoscaleCluster();
    const plan = planRollout(config({ autoscale: 'min=1,max=4,cpu=50', strategy: 'basic', replicas: '2' }), [], OWNER, {
      namespaceExists: true,
      sleepAction: true,
    });
    const r = await deploy(
      passing(plan, () => cluster.scale(4)),
      basicStrategy,
      cluster,
    );
    expect(r.outcome.decision).toBe('promoted');
    expect(cluster.stableWrites).toEqual(['modelship 2', 'modelship-handover-to-hpa 2', 'modelship -']);
    expect(cluster.replicasOf()).toBe(4);
    expect((await cluster.get('apps/v1', 'Deployment', 'prod', 'lenet'))?.metadata.annotations).toMatchObject({ [PROMOTED_BY]: OWNER });
  });

  test('basic, a first deploy that fails: the Deployment and the HPA this run created are deleted', async () => {
    const cluster = new AutoscaleCluster();
    const plan = planRollout(config({ autoscale: 'min=1,max=4,cpu=50', strategy: 'basic' }), [], OWNER, { namespaceExists: true, sleepAction: true });
    const r = await deploy(
      withGates(plan, [fakeGate('golden', 'golden requests to lenet', { failure: new GateFailure('wrong outputs') })]),
      basicStrategy,
      cluster,
    );
    expect(r.outcome.decision).toBe('rolled-back');
    expect(cluster.writes.slice(cluster.writes.indexOf('delete HorizontalPodAutoscaler lenet'))).toEqual([
      'delete HorizontalPodAutoscaler lenet',
      'delete Deployment lenet',
      'delete PodDisruptionBudget lenet',
    ]);
    expect(cluster.objects.has('HorizontalPodAutoscaler lenet')).toBe(false);
    expect(cluster.objects.has('Deployment lenet')).toBe(false);
    expect(r.log).toContainEqual('deleted HorizontalPodAutoscaler lenet, which this run created');
  });

  test('switching cpu → inflight: the HPA modelship made is deleted before the ScaledObject is applied; one it did not make is left alone', async () => {
    const cluster = new AutoscaleCluster();
    const live = await earlier(cluster, 4, ['kube-controller-manager Update/scale']);
    cluster.add(hpaOf(cluster));
    const as = 'min=2,max=8,inflight=4,prometheus=http://prom:9090';
    const plan = planRollout(config({ autoscale: as }), [], OWNER, { namespaceExists: true, stable: live, sleepAction: true });
    expect(plan.objects.autoscaler?.kind).toBe('ScaledObject');
    const r = await deploy(passing(plan), canaryStrategy, cluster);
    expect(r.outcome.decision).toBe('promoted');
    const promotion = cluster.writes.slice(cluster.writes.indexOf('delete HorizontalPodAutoscaler lenet'));
    expect(promotion.slice(0, 3)).toEqual(['delete HorizontalPodAutoscaler lenet', 'apply Deployment lenet', 'apply ScaledObject lenet']);
    expect(cluster.objects.has('HorizontalPodAutoscaler lenet')).toBe(false);
    expect(cluster.replicasOf()).toBe(4);
    expect(r.log).toContainEqual('deleted HorizontalPodAutoscaler lenet, which modelship made (autoscale now makes a ScaledObject)');

    // someone else's HPA named lenet: not deleted, said
    const other = new AutoscaleCluster();
    const live2 = await earlier(other, 4, ['kube-controller-manager Update/scale']);
    const theirs = hpaOf(other);
    other.add({ ...theirs, metadata: { ...theirs.metadata, labels: {} } });
    const r2 = await deploy(
      passing(planRollout(config({ autoscale: as }), [], OWNER, { namespaceExists: true, stable: live2, sleepAction: true })),
      canaryStrategy,
      other,
    );
    expect(other.objects.has('HorizontalPodAutoscaler lenet')).toBe(true);
    expect(r2.log).toContainEqual(
      "HorizontalPodAutoscaler lenet is not modelship's (no managed-by label): left alone, though it may scale Deployment lenet against the ScaledObject",
    );
  });

  test('autoscale off: the HPA modelship made is deleted first, then the apply with the replicas input takes them back', async () => {
    const cluster = new AutoscaleCluster();
    const live = await earlier(cluster, 5, ['kube-controller-manager Update/scale']);
    cluster.add(hpaOf(cluster));
    const plan = planRollout(config({ replicas: '2' }), [], OWNER, { namespaceExists: true, stable: live, sleepAction: true });
    expect(plan.objects.autoscaler).toBeUndefined();
    expect(plan.stableReplicas).toBe(2);
    const r = await deploy(passing(plan), canaryStrategy, cluster);
    expect(r.outcome.decision).toBe('promoted');
    expect(cluster.writes.indexOf('delete HorizontalPodAutoscaler lenet')).toBeLessThan(cluster.writes.lastIndexOf('apply Deployment lenet'));
    expect(cluster.stableWrites).toEqual(['modelship 2']);
    expect(cluster.replicasOf()).toBe(2);
    expect(cluster.ownersOf()).toEqual(['modelship Apply']);
    expect(r.log).toContainEqual('deleted HorizontalPodAutoscaler lenet, which modelship made (autoscale is off)');
  });

  test('autoscale off, an identity that may not read autoscalers: the deploy goes on; the log says so only when the replicas show an autoscaler', async () => {
    for (const [owners, said] of [
      [['modelship Apply'], false],
      [['kube-controller-manager Update/scale'], true],
    ] as const) {
      const cluster = new AutoscaleCluster();
      const live = await earlier(cluster, 3, [...owners]);
      cluster.forbidden.add('HorizontalPodAutoscaler').add('ScaledObject');
      const r = await deploy(
        passing(planRollout(config({ replicas: '3' }), [], OWNER, { namespaceExists: true, stable: live, sleepAction: true })),
        canaryStrategy,
        cluster,
      );
      expect(r.outcome.decision).toBe('promoted');
      expect(r.log.some((l) => l.startsWith('the deploy identity may not read HorizontalPodAutoscaler or ScaledObject objects in prod'))).toBe(said);
    }
  });

  test('the dry run: the autoscaler would be created; the stable keeps its live replicas in the diff (the hand-over), no change to 1', async () => {
    const cluster = new AutoscaleCluster();
    const prior = planRollout(config({ replicas: '3' }), [], OWNER, { namespaceExists: true, sleepAction: true });
    cluster.addStable(prior.objects.stable, 3, ['modelship Apply']);
    cluster.add(prior.objects.mainService);
    const live = await cluster.get<LiveDeployment>('apps/v1', 'Deployment', 'prod', 'lenet');
    const cfg = config({ replicas: '3', autoscale: 'min=2,max=6,cpu=60', 'dry-run': 'true' });
    const plan = planRollout(cfg, [], OWNER, { namespaceExists: true, stable: live, sleepAction: true });
    const r = await dryRun(cluster as unknown as Kube, cfg, plan, quietLog());
    const lines = JSON.parse(r.outputs['rollout-report']).plan as string[];
    expect(lines).toEqual(
      expect.arrayContaining([
        '- would autoscale the stable with HorizontalPodAutoscaler lenet on Deployment lenet (2 to 6 replicas); it runs 3 now',
        '- would hand spec.replicas of Deployment lenet (3) over to the autoscaler, then apply it without them',
        '- Deployment lenet: unchanged',
        '- HorizontalPodAutoscaler lenet: would create',
      ]),
    );
    expect(r.summary).toContain('### Deployment lenet: unchanged');
    // nothing was written
    expect(cluster.stableWrites).toEqual([]);
    expect(cluster.objects.has('HorizontalPodAutoscaler lenet')).toBe(false);
  });
});
