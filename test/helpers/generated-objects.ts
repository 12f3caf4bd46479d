import {
  deployment,
  service,
  pullSecret,
  disruptionBudget,
  budgetMaxUnavailable,
  namespaceManifest,
  selectorLabels,
  sleepActionServed,
  DeploySpec,
  K8sObject,
} from '../../src/rollout/manifests';
import { leaseObject } from '../../src/rollout/lease';
import { MicroTime } from '../../src/rollout/kube-errors';
import { rbacObjects } from '../../src/rollout/permissions';
import { horizontalPodAutoscaler, parseAutoscale } from '../../src/rollout/autoscale';

/**
 * Every object the rollout and preview stages generate, over the options that change what they write: both runtimes,
 * canary and stable Deployments, with and without GPU, drain delay, API and model key Secrets, scheduling and pull
 * Secrets; both Services, the pull Secret, the PodDisruptionBudget (a count and a percentage), the stable's
 * HorizontalPodAutoscaler (autoscale with cpu; KEDA's ScaledObject is a custom resource, left out: test/served-apis.test.ts
 * says why, test/autoscale.lab.test.ts has KEDA accept it), the namespace it creates, its deploy Lease, a permission check (SelfSubjectAccessReview), and the RBAC objects `modelship rbac`
 * prints. For test/served-apis.test.ts (the floor's schema) and the lab's server-side dry run (rollout.lab.test.ts).
 * `version`: the API server's, which picks the preStop hook (sleepActionServed).
 */
export interface Generated {
  what: string;
  obj: K8sObject;
}

export function generatedObjects(namespace: string, version: { major: string; minor: string }): Generated[] {
  const spec = (runtime: 'modelship' | 'triton', gpu: boolean, drainDelayS: number): DeploySpec => ({
    app: 'lenet',
    runtime,
    namespace,
    image: `127.0.0.1:5000/models/lenet@sha256:${'a'.repeat(64)}`,
    modelName: 'lenet',
    replicas: 4,
    gpu,
    resources: { cpu: '50m', memory: '256Mi' },
    nodeSelector: gpu ? { 'nvidia.com/gpu.present': 'true' } : {},
    tolerations: gpu ? [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] : [],
    imagePullSecrets: gpu ? ['lenet-registry'] : [],
    apiKeySecret: gpu ? { name: 'lenet-api', key: 'key' } : undefined,
    modelKeySecret: gpu ? { name: 'lenet-model', key: 'key' } : undefined,
    progressDeadlineSeconds: 120,
    port: 8000,
    metricsPort: 8002,
    drainDelayS,
    drainTimeoutS: 20,
    sleepAction: sleepActionServed(version),
  });
  const out: Generated[] = [];
  for (const runtime of ['modelship', 'triton'] as const) {
    for (const gpu of [false, true]) {
      const s = spec(runtime, gpu, gpu ? 0 : 5);
      for (const track of ['stable', 'canary'] as const)
        out.push({
          what: `Deployment (${runtime}, ${track}${gpu ? ', gpu, secrets, no drain delay' : ''})`,
          obj: deployment(s, track, track === 'stable' ? 4 : 1),
        });
    }
  }
  const s = spec('modelship', false, 5);
  out.push({ what: 'Service (main)', obj: service(s, 'main') }, { what: 'Service (canary)', obj: service(s, 'canary') });
  out.push({ what: 'pull Secret', obj: pullSecret(s, '127.0.0.1:5000', 'robot', 'hunter2') });
  for (const budget of [2, '25%'] as const)
    out.push({
      what: `PodDisruptionBudget (maxUnavailable ${budget})`,
      obj: disruptionBudget(s, budgetMaxUnavailable(budget, 4)!, { ...selectorLabels('lenet'), track: 'stable' }),
    });
  for (const autoscale of ['min=2,max=8,cpu=70', 'min=1,max=4,cpu=50,scale-down=60'])
    out.push({ what: `HorizontalPodAutoscaler (autoscale ${autoscale})`, obj: horizontalPodAutoscaler(parseAutoscale(autoscale)!, 'lenet', namespace) });
  out.push({ what: 'Namespace', obj: namespaceManifest(namespace, { 'modelship.dev/created-by': 'gh-1-1-deploy' }) });
  // as the API server receives them: JSON (MicroTime's six decimals)
  out.push({ what: 'Lease', obj: JSON.parse(JSON.stringify(leaseObject(namespace, 'lenet', 'gh-1-1-deploy', 15, new MicroTime()))) as K8sObject });
  // Kube.canI's body (client-node sends the kind's apiVersion and kind with it)
  out.push({
    what: 'SelfSubjectAccessReview',
    obj: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      metadata: { name: '' },
      spec: { resourceAttributes: { verb: 'get', resource: 'services', subresource: 'proxy', group: '', namespace } },
    },
  });
  for (const stage of ['rollout', 'preview'] as const) {
    for (const createNamespace of [false, true]) {
      for (const o of rbacObjects({ namespace, serviceAccount: 'deployer', stage, createNamespace, createPullSecret: true, gpu: true, autoscale: true }))
        out.push({ what: `modelship rbac (${stage}${createNamespace ? ', create-namespace' : ''}): ${String(o.kind)}`, obj: o as K8sObject });
    }
  }
  return out;
}
