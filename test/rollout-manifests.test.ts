import { deployment, service, canaryReplicas, validateSpec, DeploySpec } from '../src/rollout/manifests';

const spec: DeploySpec = {
  app: 'googlenet',
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
};

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

  test('canary: its own Deployment with track canary; the main Service selects both tracks, the canary Service only the canary', () => {
    const cd = deployment(spec, 'canary', 1) as any;
    expect(cd.metadata.name).toBe('googlenet-canary');
    expect(cd.spec.template.metadata.labels.track).toBe('canary');
    const main = service(spec, 'main') as any;
    const canary = service(spec, 'canary') as any;
    expect(main.spec.selector).toEqual({ 'app.kubernetes.io/name': 'googlenet', 'app.kubernetes.io/component': 'model-server' });
    expect(canary.spec.selector).toEqual({ ...main.spec.selector, track: 'canary' });
    expect(main.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
  });

  test('canary replicas: percent of the stable count, rounded up, at least one; bad input named', () => {
    expect([canaryReplicas(4, 10), canaryReplicas(4, 25), canaryReplicas(10, 33), canaryReplicas(1, 100)]).toEqual([1, 1, 4, 1]);
    expect(() => canaryReplicas(4, 0)).toThrow(/input "canary-percent": must be between 1 and 100, got 0/);
    expect(() => canaryReplicas(4, 101)).toThrow(/canary-percent/);
    expect(() => validateSpec({ ...spec, image: 'repo:latest' })).toThrow(/input "image": deploy the image by digest/);
    expect(() => validateSpec({ ...spec, app: 'GoogLeNet' })).toThrow(/input "app": must be a DNS label/);
  });
});
