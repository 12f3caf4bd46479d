import * as fs from 'fs';
import * as path from 'path';
import { REPO } from './helpers/caffe';
import {
  AUTOSCALE_INPUT,
  AUTOSCALER_KINDS,
  autoscaler,
  autoscalerObject,
  horizontalPodAutoscaler,
  inflightQuery,
  kedaHpaName,
  parseAutoscale,
  scaledObject,
  AutoscaleSpec,
} from '../src/rollout/autoscale';
import {
  appliesReplicas,
  handOverReplicas,
  initialReplicas,
  replicasOwners,
  stableForAutoscale,
  stableReplicas,
  HANDOVER_MANAGER,
  ReplicasObject,
  ReplicaStore,
  checkAutoscalerServed,
  Discovery,
} from '../src/rollout/autoscale-writes';
import { deployment, canaryReplicas, DeploySpec, K8sObject } from '../src/rollout/manifests';
import { accessChecks, rbacHint, rbacObjects, rolloutOptions } from '../src/rollout/permissions';
import { rbacMain } from '../src/cli/rbac';
import { readConfig } from '../src/config';
import { ROLLOUT_INPUTS } from '../src/rollout/inputs';
import { planRollout, LiveDeployment } from '../src/rollout/plan';
import { ModelshipError } from '../src/util/errors';

// Issue 23 §3, autoscaling: the `autoscale` input, the HorizontalPodAutoscaler and KEDA ScaledObject it makes, and how
// the rollout leaves the stable's replicas to them (the server-side apply hand-over). On the lab's v1.34 cluster with
// metrics-server and KEDA: test/autoscale.lab.test.ts.

const LABELS = { 'app.kubernetes.io/name': 'lenet', 'app.kubernetes.io/component': 'model-server', 'app.kubernetes.io/managed-by': 'modelship' };

describe('the autoscale input', () => {
  test.each<[string, AutoscaleSpec | undefined]>([
    ['', undefined],
    ['   ', undefined],
    ['min=2,max=8,cpu=70', { min: 2, max: 8, cpu: 70, scaleDownS: 300 }],
    [' min = 2 , max = 8 , cpu = 70 ', { min: 2, max: 8, cpu: 70, scaleDownS: 300 }],
    ['max=4,cpu=50', { min: 1, max: 4, cpu: 50, scaleDownS: 300 }],
    ['min=3,max=3,cpu=80,scale-down=0', { min: 3, max: 3, cpu: 80, scaleDownS: 0 }],
    [
      'min=2,max=8,inflight=4,prometheus=http://prometheus.monitoring:9090',
      { min: 2, max: 8, inflight: 4, prometheus: 'http://prometheus.monitoring:9090', scaleDownS: 300 },
    ],
    [
      'prometheus=https://prom.example/api?x=1,inflight=0.5,max=10,cpu=70,scale-down=3600',
      { min: 1, max: 10, cpu: 70, inflight: 0.5, prometheus: 'https://prom.example/api?x=1', scaleDownS: 3600 },
    ],
  ])('%j', (raw, want) => {
    expect(parseAutoscale(raw)).toEqual(want);
  });

  test.each<[string, string]>([
    ['min=2', 'max is required: the most replicas the autoscaler may run'],
    ['min=2,max=8', 'needs a target: cpu=PERCENT (a HorizontalPodAutoscaler on CPU) or inflight=N with prometheus=URL (KEDA, requests in flight per pod)'],
    ['min=0,max=8,cpu=70', 'min must be a whole number of replicas, 1 or more (no scale to zero), got "0"'],
    ['min=2.5,max=8,cpu=70', 'min must be a whole number of replicas, 1 or more (no scale to zero), got "2.5"'],
    ['min=4,max=2,cpu=70', 'max (2) is below min (4)'],
    ['max=8,cpu=0', `cpu must be a whole percentage of the pods' CPU request, 1 or more, got "0"`],
    ['max=8,cpu=70%', `cpu must be a whole percentage of the pods' CPU request, 1 or more, got "70%"`],
    ['max=8,inflight=4', 'inflight needs prometheus=URL: the Prometheus KEDA asks for the requests in flight'],
    ['max=8,cpu=70,prometheus=http://p:9090', 'prometheus is only used with inflight=N'],
    ['max=8,inflight=0,prometheus=http://p:9090', 'inflight must be a positive number of requests per pod, got "0"'],
    ['max=8,inflight=-1,prometheus=http://p:9090', 'inflight must be a positive number of requests per pod, got "-1"'],
    ['max=8,inflight=4,prometheus=prometheus:9090', 'prometheus must be an http(s) URL, got "prometheus:9090"'],
    ['max=8,cpu=70,scale-down=3601', 'scale-down must be whole seconds from 0 to 3600, got "3601"'],
    ['max=8,cpu=70,scale-down=5m', 'scale-down must be whole seconds from 0 to 3600, got "5m"'],
    ['max=8,cpu=70,memory=80', 'unknown key "memory"; the keys are min, max, cpu, inflight, prometheus, scale-down'],
    ['max=8,cpu=70,max=9', '"max" is given twice'],
    ['max=8,cpu=', 'cpu= has no value'],
    ['max=8,,cpu=70', 'an empty item in "max=8,,cpu=70"; expected key=value pairs separated by commas'],
    ['max=8,cpu', 'expected key=value, got "cpu"'],
    ['true', 'expected key=value, got "true"'],
  ])('%j fails: %s', (raw, why) => {
    let err: unknown;
    try {
      parseAutoscale(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelshipError);
    expect((err as ModelshipError).message).toBe(
      `input "autoscale": ${why} (e.g. min=2,max=8,cpu=70 or min=2,max=8,inflight=4,prometheus=http://prometheus.monitoring:9090)`,
    );
    expect([(err as ModelshipError).code, (err as ModelshipError).location.field]).toEqual(['input', 'autoscale']);
  });

  test('its declaration: a rollout string input, off by default', () => {
    expect(AUTOSCALE_INPUT).toMatchObject({ name: 'autoscale', default: '', kind: 'string', stages: ['rollout'] });
    expect(AUTOSCALE_INPUT.description).toContain('min=2,max=8,cpu=70');
  });
});

describe('the autoscalers', () => {
  const cpu = parseAutoscale('min=2,max=8,cpu=70')!;
  const inflight = parseAutoscale('min=2,max=8,inflight=4,prometheus=http://prometheus.monitoring:9090,scale-down=60')!;

  test('cpu: an autoscaling/v2 HorizontalPodAutoscaler <app> on the stable Deployment', () => {
    expect(horizontalPodAutoscaler(cpu, 'lenet', 'prod')).toEqual({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'lenet', namespace: 'prod', labels: LABELS },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'lenet' },
        minReplicas: 2,
        maxReplicas: 8,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
        behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
      },
    });
    expect(autoscaler(cpu)).toBe('hpa');
    expect(autoscalerObject(cpu, 'lenet', 'prod')).toEqual(horizontalPodAutoscaler(cpu, 'lenet', 'prod'));
    expect(() => horizontalPodAutoscaler(inflight, 'lenet', 'prod')).toThrow(/no cpu target/);
  });

  test('inflight: a KEDA ScaledObject <app> with a prometheus trigger on the stable pods requests in flight', () => {
    expect(scaledObject(inflight, 'lenet', 'prod')).toEqual({
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: { name: 'lenet', namespace: 'prod', labels: LABELS },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'lenet' },
        minReplicaCount: 2,
        maxReplicaCount: 8,
        advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: 60 } } } },
        triggers: [
          {
            type: 'prometheus',
            metricType: 'AverageValue',
            metadata: {
              serverAddress: 'http://prometheus.monitoring:9090',
              query: inflightQuery('prod'),
              threshold: '4',
              ignoreNullValues: 'false',
            },
          },
        ],
      },
    });
    expect(autoscaler(inflight)).toBe('keda');
    expect(kedaHpaName('lenet')).toBe('keda-hpa-lenet');
    expect(() => scaledObject(cpu, 'lenet', 'prod')).toThrow(/no inflight target/);
  });

  test('inflight and cpu: KEDA with both triggers', () => {
    const both = parseAutoscale('max=8,inflight=2.5,cpu=70,prometheus=http://p:9090')!;
    const so = autoscalerObject(both, 'lenet', 'prod') as K8sObject & { spec: { triggers: { type: string; metadata: Record<string, string> }[] } };
    expect(so.kind).toBe('ScaledObject');
    expect(so.spec.triggers.map((t) => t.type)).toEqual(['prometheus', 'cpu']);
    expect(so.spec.triggers[0].metadata.threshold).toBe('2.5');
    expect(so.spec.triggers[1]).toEqual({ type: 'cpu', metricType: 'Utilization', metadata: { value: '70' } });
  });

  test("the query: the average requests in flight from the latency sum modelship's server exports (src/serve/metrics.ts, its inference routes), or Triton's", () => {
    // Little's law over a minute: the seconds of request time served per second (the gauge's scrape samples miss
    // requests shorter than the scrape interval)
    expect(inflightQuery('prod')).toBe('sum(rate(modelship_request_duration_seconds_sum{namespace="prod",track="stable",route=~"infer|classify|detect"}[1m]))');
    expect(inflightQuery('prod', 'triton')).toBe('sum(rate(nv_inference_request_duration_us{namespace="prod",track="stable"}[1m])) / 1e6');
    expect(fs.readFileSync(path.join(REPO, 'src/serve/metrics.ts'), 'utf8')).toContain("name: 'modelship_request_duration_seconds'");
    const routes = fs.readFileSync(path.join(REPO, 'src/serve/routes.ts'), 'utf8');
    for (const route of ['infer', 'classify', 'detect']) expect(routes).toContain(`{ name: '${route}', path: modelPath('/${route}')`);
    // the stable's pods carry the label the query selects (the lab's pod discovery, like Prometheus' usual
    // labelmap, turns pod labels into series labels)
    const stable = deployment(spec(), 'stable', 2) as K8sObject & { spec: { template: { metadata: { labels: Record<string, string> } } } };
    expect(stable.spec.template.metadata.labels.track).toBe('stable');
  });

  test('both kinds named, for deleting the one a deploy no longer uses', () => {
    expect(AUTOSCALER_KINDS.map((k) => `${k.apiVersion} ${k.kind} ${k.when}`)).toEqual([
      'autoscaling/v2 HorizontalPodAutoscaler hpa',
      'keda.sh/v1alpha1 ScaledObject keda',
    ]);
  });
});

function spec(): DeploySpec {
  return {
    app: 'lenet',
    runtime: 'modelship',
    namespace: 'prod',
    image: `r/lenet@sha256:${'a'.repeat(64)}`,
    modelName: 'lenet',
    replicas: 2,
    gpu: false,
    resources: { cpu: '1', memory: '1Gi' },
    nodeSelector: {},
    tolerations: [],
    imagePullSecrets: [],
    progressDeadlineSeconds: 60,
    port: 8000,
    metricsPort: 8002,
    drainDelayS: 5,
    drainTimeoutS: 20,
  };
}

/** managedFields as the v1.34 lab's API server writes them (test/autoscale.lab.test.ts shows them) */
const entry = (manager: string, operation: string, replicas: boolean, subresource?: string) => ({
  manager,
  operation,
  ...(subresource ? { subresource } : {}),
  fieldsV1: { 'f:spec': { ...(replicas ? { 'f:replicas': {} } : {}), 'f:template': {} } },
});
const live = (replicas: number, managedFields: ReturnType<typeof entry>[]): ReplicasObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'lenet', namespace: 'prod', managedFields },
  spec: { replicas },
});

describe('the replicas with an autoscaler', () => {
  const as = parseAutoscale('min=2,max=8,cpu=70')!;

  test("who owns spec.replicas: modelship's apply, until the HPA changes it (an update through the scale subresource)", () => {
    const applied = live(2, [entry('modelship', 'Apply', true), entry('kube-controller-manager', 'Update', false, 'status')]);
    expect(replicasOwners(applied)).toEqual(['modelship Apply']);
    expect(appliesReplicas(applied)).toBe(true);
    const scaled = live(3, [entry('modelship', 'Apply', false), entry('kube-controller-manager', 'Update', true, 'scale')]);
    expect(replicasOwners(scaled)).toEqual(['kube-controller-manager Update/scale']);
    expect(appliesReplicas(scaled)).toBe(false);
    // a takeover's replace (an update under modelship's name) is no apply: leaving the field out removes nothing
    expect(appliesReplicas(live(2, [entry('modelship', 'Update', true)]))).toBe(false);
    expect(appliesReplicas(live(2, [entry(HANDOVER_MANAGER, 'Apply', true)]))).toBe(false);
    expect(appliesReplicas(live(2, [entry(HANDOVER_MANAGER, 'Apply', true)]), HANDOVER_MANAGER)).toBe(true);
  });

  test('the stable as modelship writes it: initial replicas on a first deploy, then none (apply) or the live count (replace)', () => {
    const planned = deployment(spec(), 'stable', 12) as K8sObject & { spec: Record<string, unknown> };
    expect(stableForAutoscale(planned, undefined, as).spec).toMatchObject({ replicas: 8 });
    expect(stableForAutoscale({ ...planned, spec: { ...planned.spec, replicas: 1 } }, undefined, as).spec).toMatchObject({ replicas: 2 });
    const applied = stableForAutoscale(planned, { spec: { replicas: 5 } }, as);
    expect(applied.spec).not.toHaveProperty('replicas');
    expect(applied.spec).toMatchObject({ selector: planned.spec.selector, template: planned.spec.template });
    expect(planned.spec.replicas).toBe(12); // a copy
    expect(stableForAutoscale(planned, { spec: { replicas: 5 } }, as, 'replace').spec).toMatchObject({ replicas: 5 });
  });

  test('the canary is sized from the stable it runs beside: the live count with autoscale', () => {
    expect(initialReplicas(as, 1)).toBe(2);
    expect(initialReplicas(as, 4)).toBe(4);
    expect(initialReplicas(as, 20)).toBe(8);
    expect(stableReplicas({ spec: { replicas: 7 } }, as, 2)).toBe(7);
    expect(stableReplicas(undefined, as, 1)).toBe(2);
    expect(stableReplicas({ spec: { replicas: 7 } }, undefined, 2)).toBe(2);
    expect(canaryReplicas(stableReplicas({ spec: { replicas: 7 } }, as, 2), 20)).toBe(2);
  });
});

/** A fake Kube: one Deployment whose managedFields the test sets; applies recorded, a conflict on request. */
function fakeKube(states: (ReplicasObject | undefined)[], conflicts = 0, error?: Error) {
  const applied: { obj: K8sObject; as: unknown }[] = [];
  let reads = 0;
  const kube: ReplicaStore = {
    get: (async () => states[Math.min(reads++, states.length - 1)]) as unknown as ReplicaStore['get'],
    apply: (async (obj: K8sObject, _dryRun?: boolean, as?: unknown) => {
      if (error) throw error;
      if (conflicts-- > 0)
        throw new ModelshipError(
          'cluster',
          'Kubernetes: apply Deployment prod/lenet failed (HTTP 409): Apply failed with 1 conflict: conflict with "kube-controller-manager" using apps/v1 with subresource "scale": .spec.replicas',
        );
      applied.push({ obj, as });
      return obj;
    }) as unknown as ReplicaStore['apply'],
  };
  return { kube, applied, reads: () => reads };
}

describe('the hand-over of spec.replicas (server-side apply, "Transferring ownership")', () => {
  test("modelship's apply owns it: applied alone, at its current value, under the hand-over manager, without force", async () => {
    const f = fakeKube([live(3, [entry('modelship', 'Apply', true)])]);
    expect(await handOverReplicas(f.kube, 'prod', 'lenet')).toEqual({ replicas: 3, handedOver: true, ownersBefore: ['modelship Apply'] });
    expect(f.applied).toEqual([
      {
        obj: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'lenet', namespace: 'prod' }, spec: { replicas: 3 } },
        as: { fieldManager: 'modelship-handover-to-hpa', force: false },
      },
    ]);
  });

  test('the HPA owns it (it changed the count), or it was handed over before: nothing written', async () => {
    for (const owners of [[entry('kube-controller-manager', 'Update', true, 'scale')], [entry(HANDOVER_MANAGER, 'Apply', true)]]) {
      const f = fakeKube([live(5, [entry('modelship', 'Apply', false), ...owners])]);
      expect(await handOverReplicas(f.kube, 'prod', 'lenet')).toMatchObject({ replicas: 5, handedOver: false });
      expect(f.applied).toEqual([]);
    }
  });

  test('no stable yet: nothing to hand over', async () => {
    const f = fakeKube([undefined]);
    expect(await handOverReplicas(f.kube, 'prod', 'lenet')).toBeUndefined();
    expect(f.applied).toEqual([]);
  });

  test('a conflict (the HPA changed the count in between): read again, and the HPA owns it now', async () => {
    const f = fakeKube([live(3, [entry('modelship', 'Apply', true)]), live(4, [entry('kube-controller-manager', 'Update', true, 'scale')])], 1);
    expect(await handOverReplicas(f.kube, 'prod', 'lenet')).toEqual({
      replicas: 4,
      handedOver: false,
      ownersBefore: ['kube-controller-manager Update/scale'],
    });
    expect(f.reads()).toBe(2);
  });

  test('other errors are thrown; a conflict that never ends too', async () => {
    const refused = new ModelshipError('cluster', 'Kubernetes: apply Deployment prod/lenet failed (HTTP 403): forbidden');
    await expect(handOverReplicas(fakeKube([live(3, [entry('modelship', 'Apply', true)])], 0, refused).kube, 'prod', 'lenet')).rejects.toBe(refused);
    await expect(handOverReplicas(fakeKube([live(3, [entry('modelship', 'Apply', true)])], 99).kube, 'prod', 'lenet')).rejects.toThrow(
      /handing spec\.replicas of Deployment prod\/lenet over to its autoscaler kept conflicting/,
    );
  });
});

describe('permissions with autoscale', () => {
  const rules = (o: Record<string, unknown> | undefined) =>
    ((o?.rules ?? []) as { apiGroups: string[]; resources: string[]; verbs: string[] }[]).map(
      (r) => `${r.apiGroups[0] ? `${r.apiGroups[0]}/` : ''}${r.resources[0]}: ${r.verbs.join(',')}`,
    );

  test('only with autoscale: the HorizontalPodAutoscaler and the ScaledObject, get, create, patch, delete', () => {
    const role = (autoscale: boolean) => rbacObjects({ namespace: 'prod', serviceAccount: 'd', stage: 'rollout', autoscale }).find((o) => o.kind === 'Role');
    expect(rules(role(true))).toEqual(
      expect.arrayContaining(['autoscaling/horizontalpodautoscalers: get,create,patch,delete', 'keda.sh/scaledobjects: get,create,patch,delete']),
    );
    expect(JSON.stringify(role(false))).not.toMatch(/horizontalpodautoscalers|scaledobjects/);
    const opts = rolloutOptions({ gpu: false, verifyUrl: '', autoscale: parseAutoscale('max=4,cpu=70') }, false);
    expect(opts).toContain('autoscale');
    expect(rolloutOptions({ gpu: false, verifyUrl: '' }, false)).not.toContain('autoscale');
    const checks = accessChecks({ stage: 'rollout', namespace: 'prod', options: opts }).map((c) => `${c.verb} ${c.group}/${c.resource}`);
    expect(checks).toEqual(
      expect.arrayContaining([
        'get autoscaling/horizontalpodautoscalers',
        'create autoscaling/horizontalpodautoscalers',
        'patch autoscaling/horizontalpodautoscalers',
        'delete autoscaling/horizontalpodautoscalers',
        'get keda.sh/scaledobjects',
        'delete keda.sh/scaledobjects',
      ]),
    );
    expect(rbacHint({ stage: 'rollout', namespace: 'prod', options: opts })).toContain('`modelship rbac --namespace prod --autoscale`');
  });

  test('modelship rbac --autoscale', () => {
    let text = '';
    const out = { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream;
    expect(rbacMain(['--namespace', 'prod', '--autoscale'], out)).toBe(0);
    expect(text).toContain('# horizontalpodautoscalers.autoscaling: apply the stable');
    expect(text).toContain('- apiGroups: [keda.sh]\n  resources: [scaledobjects]\n  verbs: [get, create, patch, delete]');
  });
});

describe('autoscale in the rollout stage', () => {
  const IMAGE = `registry.example/lenet@sha256:${'b'.repeat(64)}`;
  const config = (inputs: Record<string, string> = {}) =>
    readConfig((n: string) => ({ stage: 'rollout', image: IMAGE, 'model-name': 'lenet', app: 'lenet', namespace: 'prod', 'bake-time': '0', ...inputs })[n])
      .rollout;
  const liveStable = (replicas: number, labels: Record<string, string> = LABELS): LiveDeployment => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'lenet', namespace: 'prod', labels },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'lenet-old' } },
      template: { metadata: { labels: { app: 'lenet-old' } } },
    },
  });
  const plan = (inputs: Record<string, string>, stable?: LiveDeployment) =>
    planRollout(config(inputs), [], 'gh-1-1-deploy', { namespaceExists: true, stable, sleepAction: true });

  test('the input: in the rollout inputs (action.yml, README), read into the config; replicas says what it means with autoscale', () => {
    expect(ROLLOUT_INPUTS).toContain(AUTOSCALE_INPUT);
    expect(ROLLOUT_INPUTS.find((i) => i.name === 'replicas')!.description).toContain("With autoscale: only a first deploy's (within its min and max)");
    expect(config().autoscale).toBeUndefined();
    expect(config({ autoscale: 'min=1,max=3,cpu=50,scale-down=15' }).autoscale).toEqual({ min: 1, max: 3, cpu: 50, scaleDownS: 15 });
    expect(() => config({ autoscale: 'min=3' })).toThrow(/^input "autoscale": max is required/);
    expect(fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8')).toMatch(/\n {2}autoscale:\n/);
  });

  test('off: the plan has no autoscaler and the stable its replicas input, whatever the live count', () => {
    const p = plan({ replicas: '2' }, liveStable(5));
    expect(p.objects.autoscaler).toBeUndefined();
    expect(p.stableReplicas).toBe(2);
    expect((p.objects.stable.spec as { replicas?: number }).replicas).toBe(2);
  });

  test('on, the stable exists: sized from its live count (canary steps, budget), applied without replicas, the autoscaler planned and admitted', () => {
    const p = plan({ autoscale: 'min=2,max=10,cpu=70', replicas: '2', 'canary-steps': '25,100' }, liveStable(8));
    expect(p.stableReplicas).toBe(8);
    expect(p.steps).toEqual([
      { percent: 25, replicas: 2 },
      { percent: 100, replicas: 8 },
    ]);
    expect(p.objects.stable.spec).not.toHaveProperty('replicas');
    // auto: a quarter of the 8 it runs now
    expect((p.objects.disruptionBudget as K8sObject & { spec: { maxUnavailable: number } }).spec.maxUnavailable).toBe(2);
    expect(p.objects.autoscaler).toEqual(horizontalPodAutoscaler(parseAutoscale('min=2,max=10,cpu=70')!, 'lenet', 'prod'));
    expect(p.planned.at(-1)).toBe(p.objects.autoscaler);
    expect(p.admitted).toContain(p.objects.autoscaler);
    // KEDA: the ScaledObject, its query by the runtime
    const keda = plan({ autoscale: 'max=4,inflight=3,prometheus=http://p:9090', runtime: 'triton' }, liveStable(2)).objects.autoscaler!;
    expect(keda.kind).toBe('ScaledObject');
    expect(JSON.stringify(keda)).toContain('nv_inference_request_duration_us');
  });

  test('a takeover with autoscale: the full replace keeps the live count (a PUT without it would set 1), the apply after it has none', () => {
    const p = plan({ autoscale: 'max=6,cpu=70' }, liveStable(4, { app: 'handmade' }));
    expect(p.takeover).toBe(true);
    expect((p.objects.takeoverStable.spec as { replicas?: number }).replicas).toBe(4);
    expect(p.objects.stable.spec).not.toHaveProperty('replicas');
    expect(p.replaced).toEqual([p.objects.takeoverStable]);
    expect(p.admitted).toContain(p.objects.takeoverStable);
    expect(p.admitted).not.toContain(p.objects.stable);
    // without autoscale: one object, as before
    const off = plan({}, liveStable(4, { app: 'handmade' }));
    expect(off.objects.takeoverStable).toBe(off.objects.stable);
  });

  test('a first deploy: the replicas input within min and max', () => {
    expect((plan({ autoscale: 'min=3,max=6,cpu=70', replicas: '2' }).objects.stable.spec as { replicas?: number }).replicas).toBe(3);
    expect((plan({ autoscale: 'min=1,max=4,cpu=70', replicas: '9' }).objects.stable.spec as { replicas?: number }).replicas).toBe(4);
    expect(plan({ autoscale: 'min=1,max=4,cpu=70', replicas: '9' }).stableReplicas).toBe(4);
  });

  test('the cluster must serve the autoscaler: KEDA for inflight (a clear error naming the input); no resource metrics is a warning', async () => {
    const served = (kinds: string[]): Discovery => ({ serves: async (gv: string, kind: string) => kinds.includes(`${gv} ${kind}`) });
    const cpu = parseAutoscale('max=4,cpu=70')!;
    const inflight = parseAutoscale('max=4,inflight=3,prometheus=http://p:9090')!;
    const all = ['autoscaling/v2 HorizontalPodAutoscaler', 'keda.sh/v1alpha1 ScaledObject', 'metrics.k8s.io/v1beta1 PodMetrics'];
    expect(await checkAutoscalerServed(served(all), cpu, horizontalPodAutoscaler(cpu, 'lenet', 'prod'))).toBeUndefined();
    expect(await checkAutoscalerServed(served(all), inflight, scaledObject(inflight, 'lenet', 'prod'))).toBeUndefined();
    let err: unknown;
    await checkAutoscalerServed(served(all.slice(0, 1)), inflight, scaledObject(inflight, 'lenet', 'prod')).catch((e: unknown) => (err = e));
    expect(err).toBeInstanceOf(ModelshipError);
    expect((err as ModelshipError).message).toBe(
      'input "autoscale": inflight=3 makes a KEDA ScaledObject (keda.sh/v1alpha1), and this cluster does not serve it: install KEDA (its CRDs, operator and metrics API server: https://keda.sh/docs/latest/deploy/), or autoscale on cpu alone (a HorizontalPodAutoscaler)',
    );
    expect((err as ModelshipError).location.field).toBe('autoscale');
    expect(await checkAutoscalerServed(served(all.slice(0, 2)), cpu, horizontalPodAutoscaler(cpu, 'lenet', 'prod'))).toMatch(
      /^autoscale cpu=70: the cluster serves no resource metrics \(metrics\.k8s\.io, from metrics-server\)/,
    );
    await expect(checkAutoscalerServed(served([]), cpu, horizontalPodAutoscaler(cpu, 'lenet', 'prod'))).rejects.toThrow(
      'input "autoscale": the cluster does not serve autoscaling/v2 HorizontalPodAutoscaler (Kubernetes 1.23 and later do)',
    );
  });

  test('the post step of a killed run looks for the autoscalers it created, as for its other objects', () => {
    const cleanup = fs.readFileSync(path.join(REPO, 'src/rollout/cleanup.ts'), 'utf8');
    expect(cleanup).toContain('...AUTOSCALER_KINDS.map(');
  });
});
