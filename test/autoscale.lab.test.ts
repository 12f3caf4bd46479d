import { apiRequest, createRestrictedNamespace, dropNamespaces, kubectlJson, requireCluster, serverDryRun, waitFor, PROMETHEUS } from './helpers/kube';
import { labDescribe } from './helpers/needs';
import { FIELD_MANAGER } from '../src/rollout/owner';
import { deployment, DeploySpec, K8sObject } from '../src/rollout/manifests';
import { horizontalPodAutoscaler, inflightQuery, kedaHpaName, parseAutoscale, scaledObject, AutoscaleSpec } from '../src/rollout/autoscale';
import {
  appliesReplicas,
  handOverReplicas,
  replicasOwners,
  stableForAutoscale,
  HANDOVER_MANAGER,
  ReplicasObject,
  ReplicaStore,
} from '../src/rollout/autoscale-writes';

// Issue 23 §3, autoscaling, on the lab's Kubernetes v1.34 cluster (its HPA controller, metrics-server v0.9.1, KEDA
// v2.19.0): how the rollout leaves the stable Deployment's replicas to an autoscaler with server-side apply, and that
// the autoscalers modelship generates are accepted (the HPA; KEDA's ScaledObject, for which KEDA makes its HPA).
//
// The Deployments are the generated stable (deployment(), Pod Security restricted) with a nodeSelector no node has:
// their pods stay Pending, so nothing runs and no metric exists. The HPA controller still acts where it needs no
// metric (replicas below its minReplicas: it scales up to min), and leaves the count alone where it cannot read one.
// The writes go the way Kube.apply makes them (a PATCH of application/apply-patch+yaml with fieldManager and force),
// through the API server with the lab's admin certificate: jest cannot load @kubernetes/client-node (ESM).
jest.setTimeout(300_000);

const describeLab = labDescribe(['cluster']);
const describeKeda = labDescribe(['cluster', 'autoscale', 'prometheus']);

const ns = `as${process.pid}`;

const RESOURCES: Record<string, string> = {
  Deployment: 'deployments',
  HorizontalPodAutoscaler: 'horizontalpodautoscalers',
  ScaledObject: 'scaledobjects',
};
const objectPath = (apiVersion: string, kind: string, namespace: string, name: string) =>
  `${apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`}/namespaces/${namespace}/${RESOURCES[kind]}/${name}`;
const messageOf = (body: Buffer) => {
  try {
    return (JSON.parse(body.toString()) as { message?: string }).message ?? '';
  } catch {
    return body.toString().slice(0, 300);
  }
};

/** Kube.get and Kube.apply as the API server sees them; errors in Kube's words ("... failed (HTTP 409): ..."). */
const labKube = {
  async get<T extends K8sObject = K8sObject>(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<T | undefined> {
    const r = await apiRequest(objectPath(apiVersion, kind, namespace ?? '', name));
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`Kubernetes: read ${kind} ${namespace}/${name} failed (HTTP ${r.status}): ${messageOf(r.body)}`);
    return JSON.parse(r.body.toString()) as T;
  },
  async apply<T extends K8sObject = K8sObject>(obj: K8sObject, dryRun = false, as: { fieldManager?: string; force?: boolean } = {}): Promise<T> {
    const q = new URLSearchParams({
      fieldManager: as.fieldManager ?? FIELD_MANAGER,
      force: String(as.force ?? true),
      ...(dryRun ? { dryRun: 'All' } : {}),
    });
    const r = await apiRequest(`${objectPath(obj.apiVersion, obj.kind, obj.metadata.namespace ?? '', obj.metadata.name)}?${q.toString()}`, {
      method: 'PATCH',
      body: Buffer.from(JSON.stringify(obj)),
      headers: { 'content-type': 'application/apply-patch+yaml', accept: 'application/json' },
    });
    if (r.status < 200 || r.status > 299)
      throw new Error(`Kubernetes: apply ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name} failed (HTTP ${r.status}): ${messageOf(r.body)}`);
    return JSON.parse(r.body.toString()) as T;
  },
};
const kube: ReplicaStore = labKube;

/** The generated stable Deployment `app`, its pods held Pending (no node has the label). */
function stable(app: string, replicas: number): K8sObject {
  const spec: DeploySpec = {
    app,
    runtime: 'modelship',
    namespace: ns,
    image: `127.0.0.1:5000/modelship-test/never-pulled@sha256:${'a'.repeat(64)}`,
    modelName: 'lenet',
    replicas,
    gpu: false,
    resources: { cpu: '50m', memory: '64Mi' },
    nodeSelector: { 'modelship.dev/autoscale-test': 'no-such-node' },
    tolerations: [],
    imagePullSecrets: [],
    progressDeadlineSeconds: 60,
    port: 8000,
    metricsPort: 8002,
    drainDelayS: 0,
    drainTimeoutS: 20,
    sleepAction: true,
  };
  return deployment(spec, 'stable', replicas);
}

const read = async (app: string) => (await labKube.get<ReplicasObject>('apps/v1', 'Deployment', ns, app))!;
const replicasOf = async (app: string) => (await read(app)).spec?.replicas;
const applied = (o: K8sObject) => (o as ReplicasObject).spec?.replicas;
/** What the evidence lines say about a Deployment: its replicas and who owns them. */
const state = async (app: string) => {
  const d = await read(app);
  return `${app}: replicas ${d.spec?.replicas}, owned by [${replicasOwners(d).join(', ')}]`;
};
const evidence: string[] = [];
const note = (line: string) => evidence.push(line);

beforeAll(() => {
  requireCluster();
  createRestrictedNamespace(ns);
});

afterAll(() => {
  if (evidence.length) console.log(`autoscale on the lab:\n${evidence.join('\n')}`);
  dropNamespaces(ns, ns);
});

describeLab('lab: the stable replicas are left to the HPA (server-side apply ownership)', () => {
  test("the HPA has scaled the stable (2 → 3, its minReplicas): it owns the field, and modelship's apply without it keeps 3", async () => {
    const as = parseAutoscale('min=3,max=4,cpu=70')!;
    await labKube.apply(stable('scaled', 2));
    expect(replicasOwners(await read('scaled'))).toEqual([`${FIELD_MANAGER} Apply`]);
    // the generated HPA, applied as modelship applies it: the API server takes it, and its controller acts on it
    await labKube.apply(horizontalPodAutoscaler(as, 'scaled', ns));
    await waitFor('the HPA to scale Deployment scaled to its minReplicas 3', async () => (await replicasOf('scaled')) === 3, 120_000);
    const live = await read('scaled');
    note(`HPA scaled the stable 2 -> 3: ${await state('scaled')}`);
    // an update through the scale subresource that changed the value: the field is the controller's, no longer modelship's
    expect(appliesReplicas(live)).toBe(false);
    expect(replicasOwners(live)).toEqual([expect.stringMatching(/ Update\/scale$/)]);
    // so there is nothing to hand over, and the apply without replicas keeps the HPA's count
    expect(await handOverReplicas(kube, ns, 'scaled')).toMatchObject({ replicas: 3, handedOver: false });
    const next = stableForAutoscale(stable('scaled', 2), live, as);
    expect(next.spec).not.toHaveProperty('replicas');
    expect(applied(await labKube.apply(next))).toBe(3);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await replicasOf('scaled')).toBe(3);
    note(`after modelship's apply without replicas: ${await state('scaled')}`);
  });

  test("the HPA has not moved it (it reads no metric yet): modelship's apply still owns the field; without the hand-over leaving it out resets the stable to 1 (control), with it the 3 stay", async () => {
    const as = parseAutoscale('min=2,max=5,cpu=70,scale-down=30')!;
    for (const app of ['control', 'handover']) {
      await labKube.apply(stable(app, 3));
      await labKube.apply(horizontalPodAutoscaler(as, app, ns));
    }
    // the HPA controller has looked at them (its conditions are set) and left 3 (between min and max, no metric to act on)
    for (const app of ['control', 'handover'])
      await waitFor(
        `HPA ${app} to have reconciled`,
        () => (kubectlJson<{ status?: { conditions?: unknown[] } }>(['-n', ns, 'get', 'hpa', app]).status?.conditions ?? []).length > 0,
        120_000,
      );
    const hpa = kubectlJson<{ status: { conditions: { type: string; status: string; reason: string }[] } }>(['-n', ns, 'get', 'hpa', 'handover']);
    note(`HPA handover: ${hpa.status.conditions.map((c) => `${c.type}=${c.status} (${c.reason})`).join(', ')}`);
    for (const app of ['control', 'handover']) {
      expect(await replicasOf(app)).toBe(3);
      expect(appliesReplicas(await read(app))).toBe(true);
    }
    note(`before: ${await state('control')}; ${await state('handover')}`);

    // the hand-over: {replicas: 3} alone under modelship-handover-to-hpa, then modelship's apply without replicas
    const h = await handOverReplicas(kube, ns, 'handover');
    expect(h).toEqual({ replicas: 3, handedOver: true, ownersBefore: [`${FIELD_MANAGER} Apply`] });
    expect(replicasOwners(await read('handover')).sort()).toEqual([`${FIELD_MANAGER} Apply`, `${HANDOVER_MANAGER} Apply`]);
    note(`after the hand-over apply: ${await state('handover')}`);
    const handedOver = await labKube.apply(stableForAutoscale(stable('handover', 3), await read('handover'), as));
    expect(applied(handedOver)).toBe(3);
    expect(replicasOwners(await read('handover'))).toEqual([`${HANDOVER_MANAGER} Apply`]);
    note(`after modelship's apply without replicas: ${await state('handover')}`);

    // the control: the same apply without the hand-over removes the field modelship owned, and the Deployment's default is 1
    const reset = await labKube.apply(stableForAutoscale(stable('control', 3), await read('control'), as));
    expect(applied(reset)).toBe(1);
    note(`control, the same apply without the hand-over: replicas ${applied(reset)} in the API server's answer`);
    // ... which the HPA only brings back to its minReplicas: capacity went 3 → 1 → 2
    await waitFor('the HPA to bring control back to its minReplicas 2', async () => (await replicasOf('control')) === 2, 120_000);
    note(`control afterwards: ${await state('control')}`);

    // the hand-over's result holds, and the next deploy has nothing to hand over: its apply keeps the 3 too
    expect(await replicasOf('handover')).toBe(3);
    expect(await handOverReplicas(kube, ns, 'handover')).toMatchObject({ replicas: 3, handedOver: false });
    expect(applied(await labKube.apply(stableForAutoscale(stable('handover', 3), await read('handover'), as)))).toBe(3);
    note(`next deploy: ${await state('handover')}`);
  });
});

describeKeda('lab: the generated autoscalers are accepted; KEDA makes the HPA of the ScaledObject', () => {
  const cpu = parseAutoscale('min=2,max=8,cpu=70')!;
  const inflight = (more = ''): AutoscaleSpec => parseAutoscale(`min=2,max=4,inflight=4,prometheus=${PROMETHEUS},scale-down=60${more}`)!;

  test('a server-side dry run takes the HPA and the ScaledObjects (one and two triggers), without a warning', () => {
    for (const obj of [horizontalPodAutoscaler(cpu, 'dry', ns), scaledObject(inflight(), 'dry', ns), scaledObject(inflight(',cpu=70'), 'dry', ns)])
      expect({ kind: obj.kind, ...serverDryRun(obj) }).toEqual({ kind: obj.kind, code: 0, stderr: '' });
  });

  test("the in-flight query is PromQL the lab's Prometheus answers", async () => {
    const r = await fetch(`${PROMETHEUS}/api/v1/query?${new URLSearchParams({ query: inflightQuery(ns) }).toString()}`);
    expect([r.status, ((await r.json()) as { status: string }).status]).toEqual([200, 'success']);
  });

  test('the ScaledObject: KEDA creates keda-hpa-<app> on the stable, which scales it to minReplicaCount and owns its replicas', async () => {
    await labKube.apply(stable('keda', 1));
    await labKube.apply(scaledObject(inflight(), 'keda', ns));
    type Hpa = K8sObject & {
      spec: {
        scaleTargetRef: unknown;
        minReplicas: number;
        maxReplicas: number;
        behavior?: { scaleDown?: { stabilizationWindowSeconds?: number } };
        metrics: { type: string; external?: { metric: { name: string }; target: { type: string; averageValue?: string } } }[];
      };
    };
    let hpa: Hpa | undefined;
    await waitFor(
      `KEDA to create HPA ${kedaHpaName('keda')}`,
      async () => (hpa = await labKube.get<Hpa>('autoscaling/v2', 'HorizontalPodAutoscaler', ns, kedaHpaName('keda'))) !== undefined,
      120_000,
    );
    expect(hpa!.spec).toMatchObject({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'keda' },
      minReplicas: 2,
      maxReplicas: 4,
      behavior: { scaleDown: { stabilizationWindowSeconds: 60 } },
    });
    expect(hpa!.spec.metrics).toEqual([
      expect.objectContaining({ type: 'External', external: expect.objectContaining({ target: { type: 'AverageValue', averageValue: '4' } }) }),
    ]);
    expect(hpa!.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'modelship', 'scaledobject.keda.sh/name': 'keda' });
    note(`KEDA's HPA ${kedaHpaName('keda')}: min ${hpa!.spec.minReplicas}, max ${hpa!.spec.maxReplicas}, metric ${hpa!.spec.metrics[0].external?.metric.name}`);
    await waitFor("KEDA's HPA to scale Deployment keda to minReplicaCount 2", async () => (await replicasOf('keda')) === 2, 120_000);
    const live = await read('keda');
    expect(appliesReplicas(live)).toBe(false);
    note(`after KEDA's HPA: ${await state('keda')}`);
    // modelship's next apply leaves them: nothing to hand over, the count stays
    expect(await handOverReplicas(kube, ns, 'keda')).toMatchObject({ replicas: 2, handedOver: false });
    expect(applied(await labKube.apply(stableForAutoscale(stable('keda', 1), live, inflight())))).toBe(2);
    const so = kubectlJson<{ status?: { hpaName?: string; conditions?: { type: string; status: string; reason?: string }[] } }>([
      '-n',
      ns,
      'get',
      'scaledobject',
      'keda',
    ]);
    expect(so.status?.hpaName).toBe(kedaHpaName('keda'));
    note(`ScaledObject keda: ${(so.status?.conditions ?? []).map((c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ''}`).join(', ')}`);
  });
});
