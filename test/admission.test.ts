import { parseWarnings, podSecurityVerdict, refusesPods, judgeDryRun, replicaSetRefusal, namespacePolicy } from '../src/rollout/admission';
import { namespaceManifest, K8sObject } from '../src/rollout/manifests';

// The stage's reading of the API server's admission (src/rollout/admission.ts), on the texts Kubernetes v1.34 sends:
// Warning headers of a server-side dry run, and a ReplicaSet's FailedCreate condition. On the cluster:
// rollout.lab.test.ts ("Pod Security").

const VIOLATIONS =
  'allowPrivilegeEscalation != false (container "model-server" must set securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true (pod or container "model-server" must set securityContext.runAsNonRoot=true)';
/** The Warning header of a Deployment dry run in a namespace enforcing restricted (as Node hands it: one string). */
const HEADER = `299 - "would violate PodSecurity \\"restricted:latest\\": ${VIOLATIONS.replace(/"/g, '\\"')}"`;
const deployment: K8sObject = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'lenet-canary', namespace: 'models' } };

describe('Warning headers', () => {
  test('one warning: its text, unescaped', () => {
    expect(parseWarnings(HEADER)).toEqual([`would violate PodSecurity "restricted:latest": ${VIOLATIONS}`]);
  });

  test('repeated headers joined by Node with ", " (the texts hold commas too) are told apart', () => {
    const deprecated = '299 - "policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+, unavailable in v1.25+; use policy/v1 PodDisruptionBudget"';
    expect(parseWarnings(`${deprecated}, ${HEADER}`)).toEqual([
      'policy/v1beta1 PodDisruptionBudget is deprecated in v1.21+, unavailable in v1.25+; use policy/v1 PodDisruptionBudget',
      `would violate PodSecurity "restricted:latest": ${VIOLATIONS}`,
    ]);
    expect(parseWarnings([deprecated, HEADER])).toHaveLength(2);
    expect(parseWarnings(undefined)).toEqual([]);
  });

  test('a Pod Security verdict: level, version and violations, as a warning or a refusal', () => {
    expect(podSecurityVerdict(`would violate PodSecurity "restricted:latest": ${VIOLATIONS}`)).toEqual({
      level: 'restricted',
      version: 'latest',
      violations: VIOLATIONS,
    });
    expect(podSecurityVerdict(`pods "x" is forbidden: violates PodSecurity "baseline:v1.27": hostPath volumes (volume "cache")`)).toEqual({
      level: 'baseline',
      version: 'v1.27',
      violations: 'hostPath volumes (volume "cache")',
    });
    expect(podSecurityVerdict('spec.template.spec.containers[0].env[0]: duplicate name')).toBeUndefined();
  });
});

describe("warning → the stage's error", () => {
  const restricted = namespacePolicy({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'models', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
  });

  test("a pod template the namespace's enforce level refuses: an error naming the namespace, its level, the object and the violations", () => {
    const j = judgeDryRun('models', deployment, { status: 200, warnings: parseWarnings(HEADER), message: '' }, restricted);
    expect(j.refused).toBe(`namespace "models" enforces Pod Security "restricted:latest": the pods of Deployment lenet-canary would be refused: ${VIOLATIONS}`);
    expect(j.warnings).toEqual([]);
  });

  test('a warning at the warn level only (enforce lower) is logged, not a refusal', () => {
    const warnOnly = { enforce: 'baseline', warn: 'restricted' };
    expect(refusesPods('restricted', warnOnly)).toBe(false);
    expect(refusesPods('baseline', warnOnly)).toBe(true);
    const j = judgeDryRun('models', deployment, { status: 200, warnings: parseWarnings(HEADER), message: '' }, warnOnly);
    expect(j.refused).toBeUndefined();
    expect(j.warnings).toEqual([`Deployment lenet-canary: would violate PodSecurity "restricted:latest": ${VIOLATIONS}`]);
  });

  test("no enforce label, or a namespace that cannot be read: the cluster's default may enforce it, so refused unless the warn label accounts for it", () => {
    expect(refusesPods('restricted', undefined)).toBe(true);
    expect(refusesPods('restricted', { warn: 'restricted' })).toBe(false);
    expect(judgeDryRun('models', deployment, { status: 200, warnings: parseWarnings(HEADER), message: '' }, undefined).refused).toMatch(
      /^namespace "models" enforces Pod Security "restricted:latest" \(the cluster's default: it has no enforce label\): the pods of Deployment lenet-canary would be refused: allowPrivilegeEscalation != false/,
    );
  });

  test("any refusal of the dry run fails, with the API server's message; other warnings are only logged", () => {
    const j = judgeDryRun(
      'models',
      deployment,
      {
        status: 422,
        warnings: ['unknown field "spec.template.spec.containers[0].securityContext.privilegd"'],
        message: 'Deployment.apps "lenet-canary" is invalid: spec.replicas: Invalid value: -1',
      },
      restricted,
    );
    expect(j.refused).toBe(
      'Kubernetes: Deployment lenet-canary in namespace "models" would be refused (HTTP 422): Deployment.apps "lenet-canary" is invalid: spec.replicas: Invalid value: -1',
    );
    expect(j.warnings).toEqual(['Deployment lenet-canary: unknown field "spec.template.spec.containers[0].securityContext.privilegd"']);
    expect(judgeDryRun('models', deployment, { status: 200, warnings: [], message: '' }, restricted)).toEqual({ refused: undefined, warnings: [] });
  });
});

describe('the backstop: a ReplicaSet whose pods Pod Security refuses', () => {
  const rs = (conditions: object[]) =>
    ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'lenet-canary-5d9f' }, status: { conditions } }) as K8sObject;

  test('ReplicaFailure / FailedCreate "violates PodSecurity": the stage\'s message', () => {
    const failed = rs([
      {
        type: 'ReplicaFailure',
        status: 'True',
        reason: 'FailedCreate',
        message: `pods "lenet-canary-5d9f-x7k2p" is forbidden: violates PodSecurity "restricted:latest": ${VIOLATIONS}`,
      },
    ]);
    expect(replicaSetRefusal('models', 'lenet-canary', failed)).toBe(
      `namespace "models" enforces Pod Security "restricted:latest": the pods of Deployment lenet-canary are refused: ${VIOLATIONS}`,
    );
  });

  test('other create failures (a quota) and healthy ReplicaSets are not this', () => {
    expect(
      replicaSetRefusal(
        'models',
        'lenet',
        rs([{ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'pods "x" is forbidden: exceeded quota: compute, requested: cpu=2' }]),
      ),
    ).toBeUndefined();
    expect(replicaSetRefusal('models', 'lenet', rs([]))).toBeUndefined();
    expect(replicaSetRefusal('models', 'lenet', undefined)).toBeUndefined();
  });
});

test("a namespace modelship creates enforces Pod Security restricted (latest), and is marked as modelship's", () => {
  expect(namespaceManifest('lenet-pr-7', { 'modelship.dev/created-by': 'gh-1-1-deploy' })).toEqual({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: 'lenet-pr-7',
      labels: {
        'app.kubernetes.io/managed-by': 'modelship',
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/enforce-version': 'latest',
      },
      annotations: { 'modelship.dev/created-by': 'gh-1-1-deploy' },
    },
  });
});
