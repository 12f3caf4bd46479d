import { readConfig } from '../src/config';
import type { RolloutConfig } from '../src/rollout/inputs';
import type { Kube } from '../src/rollout/kube';
import type { K8sObject } from '../src/rollout/manifests';
import { CREATED_BY, OWNER_LABEL, PROMOTED_BY } from '../src/rollout/owner';
import { planRollout, LiveDeployment, RolloutPlan } from '../src/rollout/plan';
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
import type { Logger } from '../src/stage';

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
    expect(plan.verification.release).toEqual({
      track: 'canary',
      deployment: 'lenet-canary',
      service: 'lenet-canary',
      podSelector: { 'app.kubernetes.io/name': 'lenet', 'app.kubernetes.io/component': 'model-server', track: 'canary' },
    });
    expect(plan.verification.gates.map((g) => [g.gate, g.name, !!g.silent])).toEqual([
      ['pods', 'canary pods Ready', false],
      ['golden', 'golden requests to lenet-canary', false],
      ['pods', 'bake 0 s', true],
    ]);
    expect(plan.gates).toEqual([
      { gate: 'pods', result: 'skipped', detail: '', evidence: [], seconds: 0 },
      { gate: 'golden', result: 'skipped', detail: 'no reference given: only /v2/models/<model>/ready was checked', evidence: [], seconds: 0 },
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
    expect(plan.verification.gates.map((g) => `${g.gate}: ${g.name}`)).toEqual([
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
    expect(plan.verification.release).toMatchObject({ track: 'stable', deployment: 'lenet', service: 'lenet' });
    expect(plan.verification.gates.map((g) => g.name)).toEqual(['lenet rollout', 'lenet pods compute on the GPU', 'golden requests to lenet', 'bake 5 s']);
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

/** The plan with these gates in place of its own. */
const withGates = (plan: RolloutPlan, gates: Gate[]): RolloutPlan => ({ ...plan, verification: { ...plan.verification, gates } });

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
    expect(r.gates).toEqual({ pods: 'skipped', golden: 'fail', prometheus: 'skipped' });
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
    expect(passing.gates).toEqual({ pods: 'pass', golden: 'pass', prometheus: 'skipped' });
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
