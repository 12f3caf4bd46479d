import {
  deployment,
  service,
  canaryReplicas,
  validateSpec,
  gracePeriodSeconds,
  sleepActionServed,
  unsupportedServer,
  budgetMaxUnavailable,
  disruptionBudget,
  DeploySpec,
} from '../src/rollout/manifests';
import { applyPatches } from '../src/rollout/patch';

const spec: DeploySpec = {
  app: 'googlenet',
  runtime: 'modelship',
  namespace: 'models',
  image: `127.0.0.1:5000/modelship/googlenet@sha256:${'a'.repeat(64)}`,
  modelName: 'googlenet',
  replicas: 4,
  gpu: true,
  resources: { cpu: '2', memory: '2Gi' },
  nodeSelector: { 'nvidia.com/gpu.present': 'true' },
  tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
  imagePullSecrets: ['regcred'],
  apiKeySecret: { name: 'googlenet-api', key: 'key' },
  modelKeySecret: { name: 'googlenet-model', key: 'key' },
  progressDeadlineSeconds: 120,
  port: 8000,
  metricsPort: 8002,
  drainDelayS: 5,
  drainTimeoutS: 20,
};
const envOf = (c: any) => Object.fromEntries(c.env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]));

describe('rollout manifests (issue 4 groundwork: declared data, no cluster)', () => {
  test('stable Deployment: image by digest, KServe v2 probes, GPU limit, scheduling, secrets by reference', () => {
    const d = deployment(spec, 'stable', 4) as any;
    expect(d.metadata).toMatchObject({ name: 'googlenet', namespace: 'models', labels: { track: 'stable', 'app.kubernetes.io/managed-by': 'modelship' } });
    expect(d.spec.selector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'googlenet', 'app.kubernetes.io/component': 'model-server', track: 'stable' });
    const c = d.spec.template.spec.containers[0];
    expect(c.image).toBe(spec.image);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'http' });
    expect(c.resources.limits['nvidia.com/gpu']).toBe('1');
    expect(c.env).toContainEqual({ name: 'MODELSHIP_API_KEY', valueFrom: { secretKeyRef: { name: 'googlenet-api', key: 'key' } } });
    expect(c.env).toContainEqual({ name: 'MODELSHIP_MODEL_KEY', valueFrom: { secretKeyRef: { name: 'googlenet-model', key: 'key' } } });
    expect(JSON.stringify(d)).not.toMatch(/"value":"[0-9a-f]{64}"/);
    expect(d.spec.template.spec).toMatchObject({ nodeSelector: spec.nodeSelector, tolerations: spec.tolerations, imagePullSecrets: [{ name: 'regcred' }] });
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
  });

  test.each(['modelship', 'triton'] as const)('%s pods meet Pod Security restricted (its container fields) and mount no token', (runtime) => {
    const pod = (deployment({ ...spec, runtime }, 'stable', 2) as any).spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const c of pod.containers) {
      expect(c.securityContext).toMatchObject({
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(c.securityContext.runAsUser).toBeGreaterThan(0);
    }
    // restricted allows only these volume types
    for (const v of pod.volumes ?? [])
      expect(Object.keys(v).filter((k) => k !== 'name')).toEqual(
        expect.arrayContaining([expect.stringMatching(/^(emptyDir|configMap|secret|projected|downwardAPI|persistentVolumeClaim|ephemeral|csi)$/)]),
      );
  });

  test('canary: its own Deployment with track canary; the main Service selects both tracks, the canary Service only the canary', () => {
    const cd = deployment(spec, 'canary', 1) as any;
    expect(cd.metadata.name).toBe('googlenet-canary');
    expect(cd.spec.template.metadata.labels.track).toBe('canary');
    const main = service(spec, 'main') as any;
    const canary = service(spec, 'canary') as any;
    expect(main.spec.selector).toEqual({ 'app.kubernetes.io/name': 'googlenet', 'app.kubernetes.io/component': 'model-server' });
    expect(canary.spec.selector).toEqual({ ...main.spec.selector, track: 'canary' });
    const ports = [
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'grpc', port: 8001, targetPort: 'grpc', protocol: 'TCP' },
    ];
    expect(main.spec.ports).toEqual(ports);
    expect(canary.spec.ports).toEqual(ports);
  });

  test('canary replicas: percent of the stable count, rounded up, at least one; bad input named', () => {
    expect([canaryReplicas(4, 10), canaryReplicas(4, 25), canaryReplicas(10, 33), canaryReplicas(1, 100)]).toEqual([1, 1, 4, 1]);
    expect(() => canaryReplicas(4, 0)).toThrow(/input "canary-percent": must be between 1 and 100, got 0/);
    expect(() => canaryReplicas(4, 101)).toThrow(/canary-percent/);
    expect(() => validateSpec({ ...spec, image: 'repo:latest' })).toThrow(/input "image": deploy the image by digest/);
    expect(() => validateSpec({ ...spec, app: 'GoogLeNet' })).toThrow(/input "app": must be a DNS label/);
  });

  test.each([
    [{ major: '1', minor: '20' }, false],
    [{ major: '1', minor: '30' }, false], // on by default in 1.30 kubelets, but a 1.30 API server allows 1.27 kubelets
    [{ major: '1', minor: '32+' }, false],
    [{ major: '1', minor: '33' }, true],
    [{ major: '1', minor: '34+' }, true],
    [{ major: '2', minor: '0' }, true],
  ])('the sleep action is used with API server %j: %s', (v, expected) => {
    expect(sleepActionServed(v)).toBe(expected);
  });

  test.each([
    [{ major: '1', minor: '20', gitVersion: 'v1.20.2' }, /Kubernetes v1\.20\.2, older than 1\.27, the oldest release modelship deploys to/],
    [{ major: '1', minor: '26+', gitVersion: 'v1.26.15-eks-1' }, /v1\.26\.15-eks-1, older than 1\.27/],
    [{ major: '1', minor: '27+' }, undefined],
    [{ major: '1', minor: '34', gitVersion: 'v1.34.4' }, undefined],
    [{ major: '2', minor: '0' }, undefined],
    [{ major: '', minor: '' }, undefined], // a server that does not say: the API server judges each object
  ])('API server %j against the supported floor', (v, expected) => {
    const r = unsupportedServer(v);
    if (expected) expect(r).toMatch(expected);
    else expect(r).toBeUndefined();
  });

  test.each([
    ['auto', 1, undefined], // one replica: a budget would block every drain or protect nothing
    ['auto', 2, 1],
    ['auto', 4, 1],
    ['auto', 8, 2],
    ['auto', 10, 2],
    ['none', 10, undefined],
    [3, 10, 3],
    ['30%', 10, '30%'],
  ] as const)('disruption-budget %s with %d replicas: maxUnavailable %s', (setting, replicas, expected) => {
    expect(budgetMaxUnavailable(setting, replicas)).toBe(expected);
  });

  test('the stable PodDisruptionBudget: policy/v1 over the stable pods, unhealthy pods always evictable', () => {
    const stable = deployment(spec, 'stable', 4) as any;
    const pdb = disruptionBudget(spec, 1, stable.spec.selector.matchLabels) as any;
    expect(pdb).toMatchObject({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'googlenet', namespace: 'models', labels: { 'app.kubernetes.io/managed-by': 'modelship' } },
    });
    expect(pdb.spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: { 'app.kubernetes.io/name': 'googlenet', 'app.kubernetes.io/component': 'model-server', track: 'stable' } },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    });
    // it selects the stable pods only: the canary is never held back by it
    const canaryLabels = (deployment(spec, 'canary', 1) as any).spec.template.metadata.labels;
    expect(Object.entries(pdb.spec.selector.matchLabels).every(([k, v]) => canaryLabels[k] === v)).toBe(false);
  });

  test.each(['stable', 'canary'] as const)('%s pods spread across nodes, softly, per ReplicaSet', (track) => {
    const t = (deployment(spec, track, 4) as any).spec.template;
    expect(t.spec.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'googlenet', 'app.kubernetes.io/component': 'model-server', track } },
        matchLabelKeys: ['pod-template-hash'],
      },
    ]);
    // the constraint's selector picks the Deployment's own pods
    for (const [k, v] of Object.entries(t.spec.topologySpreadConstraints[0].labelSelector.matchLabels)) expect(t.metadata.labels[k]).toBe(v);
  });

  test('graceful termination: a preStop hook keeps the pod serving for drain-delay, then the server drains at once within its timeout', () => {
    for (const track of ['stable', 'canary'] as const) {
      const d = deployment(spec, track, 2) as any;
      const c = d.spec.template.spec.containers[0];
      // below API server 1.33 the image's own Node.js waits: no shell or sleep binary is guaranteed in the image
      expect(c.lifecycle).toEqual({ preStop: { exec: { command: ['/opt/modelship/node/bin/node', '-e', 'setTimeout(() => {}, 5000)'] } } });
      // the hook already waited: the server's own drain delay only sheds keep-alive clients (2 s), its timeout explicit
      expect(envOf(c)).toMatchObject({ MODELSHIP_DRAIN_DELAY_S: '2', MODELSHIP_DRAIN_TIMEOUT_S: '20' });
      // the preStop hook runs inside the grace period: hook + drain timeout + margin, no more, no less
      const grace = d.spec.template.spec.terminationGracePeriodSeconds;
      expect(grace).toBe(32);
      expect(grace).toBeGreaterThan(spec.drainDelayS + 2 + spec.drainTimeoutS);
      expect(grace - spec.drainDelayS - spec.drainTimeoutS).toBeLessThanOrEqual(10);
    }
    const long = deployment({ ...spec, drainDelayS: 45 }, 'stable', 2) as any;
    expect(long.spec.template.spec.terminationGracePeriodSeconds).toBe(45 + 2 + 20 + 5);
    expect(long.spec.template.spec.containers[0].lifecycle.preStop.exec.command[2]).toBe('setTimeout(() => {}, 45000)');
    expect(gracePeriodSeconds({ drainDelayS: 0, drainTimeoutS: 60 })).toBe(65);
    // where every kubelet runs it, the kubelet's own sleep action: no process in the container, same grace period
    for (const runtime of ['modelship', 'triton'] as const) {
      const slept = deployment({ ...spec, runtime, sleepAction: true }, 'stable', 2) as any;
      expect(slept.spec.template.spec.containers[0].lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
      expect(slept.spec.template.spec.terminationGracePeriodSeconds).toBe(
        (deployment({ ...spec, runtime }, 'stable', 2) as any).spec.template.spec.terminationGracePeriodSeconds,
      );
    }
    // drain-delay 0: no hook at all (SIGTERM at once), the server still drains its in-flight requests
    const none = deployment({ ...spec, drainDelayS: 0 }, 'stable', 2) as any;
    expect(none.spec.template.spec.containers[0].lifecycle).toBeUndefined();
    expect(none.spec.template.spec.terminationGracePeriodSeconds).toBe(25);
    expect(envOf(none.spec.template.spec.containers[0]).MODELSHIP_DRAIN_DELAY_S).toBe('0');
  });

  test('metrics: a metrics-only port 8002 declared and pointed at by the scrape annotations; gRPC on 8001; the Service exposes http and grpc', () => {
    for (const track of ['stable', 'canary'] as const) {
      const d = deployment(spec, track, 2) as any;
      const c = d.spec.template.spec.containers[0];
      expect(c.ports).toEqual([
        { name: 'http', containerPort: 8000, protocol: 'TCP' },
        { name: 'grpc', containerPort: 8001, protocol: 'TCP' },
        { name: 'metrics', containerPort: 8002, protocol: 'TCP' },
      ]);
      expect(envOf(c)).toMatchObject({ PORT: '8000', MODELSHIP_GRPC_PORT: '8001', MODELSHIP_METRICS_PORT: '8002' });
      expect(d.spec.template.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8002', 'prometheus.io/path': '/metrics' });
      // the probes stay on the main port
      expect([c.readinessProbe.httpGet.port, c.livenessProbe.httpGet.port, c.startupProbe.httpGet.port]).toEqual(['http', 'http', 'http']);
    }
    // the metrics port is scraped from the pods, never served by the Service
    expect((service(spec, 'main') as any).spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'grpc', port: 8001, targetPort: 'grpc', protocol: 'TCP' },
    ]);
  });

  test('a patch can override the drain settings and the hook, merged by name', () => {
    const patched = applyPatches(
      deployment(spec, 'stable', 2),
      [
        {
          kind: 'Deployment',
          source: 'test',
          body: {
            spec: {
              template: {
                spec: { terminationGracePeriodSeconds: 90, containers: [{ name: 'model-server', env: [{ name: 'MODELSHIP_DRAIN_TIMEOUT_S', value: '60' }] }] },
              },
            },
          },
        },
      ],
      'googlenet',
    ) as any;
    const c = patched.spec.template.spec.containers[0];
    expect(patched.spec.template.spec.terminationGracePeriodSeconds).toBe(90);
    expect(envOf(c)).toMatchObject({ MODELSHIP_DRAIN_TIMEOUT_S: '60', MODELSHIP_DRAIN_DELAY_S: '2', MODELSHIP_METRICS_PORT: '8002' });
    expect(c.lifecycle.preStop.exec.command[0]).toBe('/opt/modelship/node/bin/node');
  });

  test('drain-delay is validated, naming the input', () => {
    expect(() => validateSpec(spec)).not.toThrow();
    expect(() => validateSpec({ ...spec, drainDelayS: 0 })).not.toThrow();
    expect(() => validateSpec({ ...spec, drainDelayS: -1 })).toThrow(/input "drain-delay": expected whole seconds from 0 to 300, got -1/);
    expect(() => validateSpec({ ...spec, drainDelayS: 2.5 })).toThrow(/input "drain-delay"/);
    expect(() => validateSpec({ ...spec, drainDelayS: 5000 })).toThrow(/input "drain-delay": expected whole seconds from 0 to 300, got 5000/);
    expect(() => validateSpec({ ...spec, drainDelayS: NaN })).toThrow(/input "drain-delay"/);
  });

  test('runtime triton: same ports, probes and scrape annotations; no modelship settings; sleep as the preStop hook; its own uid and a writable /tmp', () => {
    const t = { ...spec, runtime: 'triton' as const, apiKeySecret: undefined, modelKeySecret: undefined };
    for (const track of ['stable', 'canary'] as const) {
      const d = deployment(t, track, 2) as any;
      const pod = d.spec.template;
      const c = pod.spec.containers[0];
      // Triton serves KServe v2 on 8000 (HTTP) and 8001 (gRPC), its metrics on 8002 (the image's CMD sets them): the same named ports
      expect(c.ports).toEqual([
        { name: 'http', containerPort: 8000, protocol: 'TCP' },
        { name: 'grpc', containerPort: 8001, protocol: 'TCP' },
        { name: 'metrics', containerPort: 8002, protocol: 'TCP' },
      ]);
      expect(pod.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8002', 'prometheus.io/path': '/metrics' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'http' });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'http' });
      // nothing of modelship's server: Triton reads no MODELSHIP_* variables
      expect(c.env).toBeUndefined();
      // Triton's images have coreutils (no modelship Node.js in them)
      expect(c.lifecycle).toEqual({ preStop: { exec: { command: ['sleep', '5'] } } });
      // no server-side drain delay: Triton finishes in-flight work within --exit-timeout-secs (20) after SIGTERM
      expect(pod.spec.terminationGracePeriodSeconds).toBe(5 + 20 + 5);
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true });
      expect(c.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
      expect(pod.spec.volumes).toEqual([{ name: 'tmp', emptyDir: {} }]);
      expect(c.resources.limits['nvidia.com/gpu']).toBe('1');
    }
    // the modelship runtime keeps its own settings
    const m = deployment(spec, 'stable', 2) as any;
    expect(m.spec.template.spec.volumes).toBeUndefined();
    expect(m.spec.template.spec.containers[0].securityContext.runAsUser).toBe(10001);
  });
});
