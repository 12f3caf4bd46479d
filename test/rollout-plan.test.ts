import * as fs from 'fs';
import * as path from 'path';
import { strategicMerge, readPatches, applyPatches, readManifest } from '../src/rollout/patch';
import { podView, fatalReason, waitDeployment, GateFailure, PULL_GRACE_MS } from '../src/rollout/health';
import type { Kube } from '../src/rollout/kube';
import { heldByOther } from '../src/rollout/lease';
import { renderQuery, DEFAULT_QUERIES } from '../src/rollout/prometheus';
import { deployment, DeploySpec } from '../src/rollout/manifests';
import { readConfig } from '../src/config';
import { tmpDir } from './helpers/caffe';

// The pure parts of the rollout stage: overlays, pod health classification, lease validity, PromQL templates and
// the rollout inputs. The cluster behaviour itself is tested on the lab cluster in rollout.lab.test.ts.

const spec: DeploySpec = {
  app: 'googlenet',
  runtime: 'modelship',
  namespace: 'prod',
  image: `r/googlenet@sha256:${'a'.repeat(64)}`,
  modelName: 'googlenet',
  replicas: 4,
  gpu: true,
  resources: { cpu: '2', memory: '4Gi' },
  nodeSelector: {},
  tolerations: [],
  imagePullSecrets: [],
  progressDeadlineSeconds: 600,
  port: 8000,
  metricsPort: 8002,
  drainDelayS: 5,
  drainTimeoutS: 20,
};

describe('strategic merge overlays', () => {
  test('maps merge, null deletes, containers and env merge by name, other lists are replaced', () => {
    const base = {
      spec: {
        replicas: 2,
        template: {
          spec: {
            containers: [
              {
                name: 'a',
                image: 'x',
                env: [
                  { name: 'K', value: '1' },
                  { name: 'L', value: '2' },
                ],
                args: ['--x'],
              },
            ],
            dnsPolicy: 'ClusterFirst',
          },
        },
      },
    };
    const patch = {
      spec: {
        template: {
          spec: {
            dnsPolicy: null,
            containers: [
              {
                name: 'a',
                env: [
                  { name: 'L', value: '3' },
                  { name: 'M', value: '4' },
                ],
                args: ['--y'],
              },
              { name: 'sidecar', image: 'y' },
            ],
          },
        },
      },
    };
    expect(strategicMerge(base as any, patch as any)).toEqual({
      spec: {
        replicas: 2,
        template: {
          spec: {
            containers: [
              {
                name: 'a',
                image: 'x',
                env: [
                  { name: 'K', value: '1' },
                  { name: 'L', value: '3' },
                  { name: 'M', value: '4' },
                ],
                args: ['--y'],
              },
              { name: 'sidecar', image: 'y' },
            ],
          },
        },
      },
    });
  });

  test('$patch: delete removes a list item, $patch: replace replaces a map', () => {
    const base = { containers: [{ name: 'a' }, { name: 'b' }], resources: { limits: { cpu: '1', memory: '1Gi' } } };
    expect(
      strategicMerge(base as any, { containers: [{ name: 'b', $patch: 'delete' }], resources: { $patch: 'replace', limits: { cpu: '2' } } } as any),
    ).toEqual({ containers: [{ name: 'a' }], resources: { limits: { cpu: '2' } } });
  });

  test('a patch applies to the stable and its canary, and cannot move the selector or routing labels', () => {
    const dir = tmpDir('modelship-patch-');
    const f = path.join(dir, 'p.yaml');
    fs.writeFileSync(
      f,
      'kind: Deployment\nmetadata: {name: googlenet, labels: {team: vision}}\nspec:\n  selector: {matchLabels: {app: other}}\n  template:\n    metadata: {labels: {track: hijack, extra: "1"}}\n    spec:\n      nodeSelector: {gpu: a100}\n---\nkind: Service\nspec: {type: NodePort}\n',
    );
    const patches = readPatches(f);
    for (const track of ['stable', 'canary'] as const) {
      const d = applyPatches(deployment(spec, track, 1), patches, 'googlenet') as any;
      expect(d.metadata.name).toBe(track === 'stable' ? 'googlenet' : 'googlenet-canary');
      expect(d.metadata.labels.team).toBe('vision');
      expect(d.spec.template.spec.nodeSelector).toEqual({ gpu: 'a100' });
      expect(d.spec.selector.matchLabels.track).toBe(track);
      expect(d.spec.template.metadata.labels.track).toBe(track);
      expect(d.spec.template.metadata.labels.extra).toBe('1');
      expect(d.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
    }
  });

  test('your own manifest is laid over the generated one: its single container is the model server, the image stays ours', () => {
    const dir = tmpDir('modelship-manifest-');
    const f = path.join(dir, 'deploy.yaml');
    fs.writeFileSync(
      f,
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: googlenet}\nspec:\n  template:\n    spec:\n      serviceAccountName: inference\n      containers:\n      - name: server\n        image: someone/else:latest\n        resources: {limits: {memory: 8Gi}}\n',
    );
    const d = applyPatches(deployment(spec, 'stable', 4), readManifest(f), 'googlenet') as any;
    expect(d.spec.template.spec.serviceAccountName).toBe('inference');
    expect(d.spec.template.spec.containers).toHaveLength(1);
    const c = d.spec.template.spec.containers[0];
    expect([c.name, c.resources.limits.memory, c.resources.limits['nvidia.com/gpu']]).toEqual(['model-server', '8Gi', '1']);
    expect(c.image).toBe(spec.image);
  });

  test('a patch file that is not YAML, or a document without kind, names the file and line', () => {
    const dir = tmpDir('modelship-patch-');
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'kind: Deployment\nspec:\n  replicas: [1,\n');
    expect(() => readPatches(bad)).toThrow(/input "patch": .*bad.yaml is not YAML.*\n?|bad\.yaml:\d+/);
    const nokind = path.join(dir, 'nokind.yaml');
    fs.writeFileSync(nokind, 'spec: {replicas: 1}\n');
    expect(() => readPatches(nokind)).toThrow(/document 1 of .*nokind.yaml needs a "kind"/);
    expect(() => readPatches(path.join(dir, 'missing.yaml'))).toThrow(/input "patch": cannot read .*missing.yaml: ENOENT/);
  });
});

describe('pod health', () => {
  const pod = (status: object, name = 'p') => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, uid: 'u' }, status });
  test('crash loops, pull errors, restarts and terminations are fatal, with the exit reason', () => {
    expect(
      fatalReason(
        podView(
          pod({
            phase: 'Running',
            containerStatuses: [
              {
                name: 'c',
                ready: false,
                restartCount: 2,
                state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s' } },
                lastState: { terminated: { reason: 'Error', exitCode: 1 } },
              },
            ],
          }),
        ),
      ),
    ).toBe('pod p: CrashLoopBackOff: back-off 10s; last exit Error (exit code 1)');
    expect(
      fatalReason(
        podView(
          pod({
            phase: 'Pending',
            containerStatuses: [{ name: 'c', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'not found' } } }],
          }),
        ),
      ),
    ).toMatch(/ImagePullBackOff: not found/);
    expect(
      fatalReason(
        podView(
          pod({
            phase: 'Running',
            containerStatuses: [
              { name: 'c', ready: true, restartCount: 1, state: { running: {} }, lastState: { terminated: { reason: 'OOMKilled', exitCode: 137 } } },
            ],
          }),
        ),
      ),
    ).toMatch(/restarted 1 time\(s\); last exit OOMKilled \(exit code 137\)/);
    expect(
      fatalReason(
        podView(pod({ phase: 'Running', containerStatuses: [{ name: 'c', ready: false, started: false, restartCount: 0, state: { running: {} } }] })),
      ),
    ).toBeUndefined();
    expect(fatalReason(podView(pod({ phase: 'Pending' })))).toBeUndefined();
  });

  test("a failed image pull is judged only once it outlasts the kubelet's retry", () => {
    const pulling = podView(
      pod({
        phase: 'Pending',
        containerStatuses: [{ name: 'c', ready: false, restartCount: 0, state: { waiting: { reason: 'ErrImagePull', message: '401 Unauthorized' } } }],
      }),
    );
    expect(fatalReason(pulling, 0)).toBeUndefined();
    expect(fatalReason(pulling, PULL_GRACE_MS - 1)).toBeUndefined();
    expect(fatalReason(pulling, PULL_GRACE_MS)).toBe('pod p: ErrImagePull: 401 Unauthorized');
    // a name the kubelet can never pull is not retried: at once
    const invalid = podView(
      pod({ phase: 'Pending', containerStatuses: [{ name: 'c', ready: false, restartCount: 0, state: { waiting: { reason: 'InvalidImageName' } } }] }),
    );
    expect(fatalReason(invalid, 0)).toBe('pod p: InvalidImageName');
  });

  // A stand-in Kube (the API server's answers as data): the real kubelet race this covers — a pull Secret applied a
  // moment before the pod, not yet in the kubelet's cache, one ErrImagePull, then the retry pulls — was seen on the
  // lab cluster in registry-auth.lab.test.ts.
  function kubeOf(podStates: object[]): { kube: Kube; polls: () => number } {
    let poll = 0;
    const labels = { app: 'lenet', 'pod-template-hash': 'h1' };
    const kube = {
      get: async () => {
        const ready = (podStates[Math.min(poll, podStates.length - 1)] as { ready?: boolean }).ready;
        poll++;
        return {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'lenet', namespace: 'ns', uid: 'd1', generation: 1 },
          spec: { replicas: 1, selector: { matchLabels: { app: 'lenet' } }, template: {} },
          status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: ready ? 1 : 0 },
        };
      },
      list: async (_v: string, kind: string) =>
        kind === 'ReplicaSet'
          ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'lenet-h1', uid: 'rs1', labels, ownerReferences: [{ uid: 'd1' }] } }]
          : [
              {
                apiVersion: 'v1',
                kind: 'Pod',
                metadata: { name: 'lenet-h1-x', uid: 'p1', labels, ownerReferences: [{ uid: 'rs1' }] },
                status: podStates[Math.min(poll - 1, podStates.length - 1)],
              },
            ],
      events: async () => [
        { type: 'Warning', reason: 'FailedToRetrieveImagePullSecret', message: 'Unable to retrieve some image pull secrets (lenet-registry)', count: 1 },
      ],
    } as unknown as Kube;
    return { kube, polls: () => poll };
  }
  const failedPull = (reason: string) => ({
    phase: 'Pending',
    containerStatuses: [{ name: 'c', ready: false, restartCount: 0, state: { waiting: { reason, message: 'pull failed' } } }],
  });
  const running = {
    phase: 'Running',
    ready: true,
    conditions: [{ type: 'Ready', status: 'True' }],
    containerStatuses: [{ name: 'c', ready: true, started: true, restartCount: 0, state: { running: {} } }],
  };

  test('the rollout waits out a failed pull the kubelet then retries successfully', async () => {
    const k = kubeOf([failedPull('ErrImagePull'), failedPull('ImagePullBackOff'), running]);
    const { pods } = await waitDeployment(k.kube, 'ns', 'lenet', { timeoutMs: 20_000, readinessGraceMs: 10_000, pullGraceMs: 10_000 });
    expect(pods.map((p) => p.name)).toEqual(['lenet-h1-x']);
    expect(k.polls()).toBe(3);
  });

  test('a pull still failing past the grace fails the rollout with the pull error and its events', async () => {
    const k = kubeOf([failedPull('ErrImagePull'), failedPull('ImagePullBackOff'), failedPull('ErrImagePull')]);
    const err = await waitDeployment(k.kube, 'ns', 'lenet', { timeoutMs: 20_000, readinessGraceMs: 10_000, pullGraceMs: 1_500 }).catch((e) => e);
    expect(err).toBeInstanceOf(GateFailure);
    expect(err.message).toMatch(/^pod lenet-h1-x: (ErrImagePull|ImagePullBackOff): pull failed$/);
    expect((err as GateFailure).evidence.join('\n')).toContain('FailedToRetrieveImagePullSecret');
    expect(k.polls()).toBeGreaterThanOrEqual(3);
  });
});

describe('lease validity', () => {
  test('held by another only while renewed within its duration', () => {
    const now = Date.parse('2026-11-25T10:00:00Z');
    expect(heldByOther({ holder: 'run-1', renewTime: '2026-11-25T09:59:50.000000Z', durationS: 30 }, 'run-2', now)).toBe(true);
    expect(heldByOther({ holder: 'run-1', renewTime: '2026-11-25T09:59:00.000000Z', durationS: 30 }, 'run-2', now)).toBe(false);
    expect(heldByOther({ holder: 'run-2', renewTime: '2026-11-25T09:59:50.000000Z', durationS: 30 }, 'run-2', now)).toBe(false);
    expect(heldByOther(undefined, 'run-2', now)).toBe(false);
  });
});

describe('PromQL templates', () => {
  test('placeholders are filled; an unknown one is an error', () => {
    expect(renderQuery(DEFAULT_QUERIES.modelship.samples, { namespace: 'prod', app: 'g', track: 'canary', model: 'g' })).toBe(
      'sum(modelship_requests_total{namespace="prod",track="canary",route="infer"})',
    );
    expect(() => renderQuery('up{job="{{jobname}}"}', { namespace: 'prod' })).toThrow(/\{\{jobname\}\}/);
  });
});

describe('rollout inputs', () => {
  const inputs = (o: Record<string, string>) => (n: string) => ({ stage: 'rollout', image: spec.image, ...o })[n];
  test('validated before any cluster access, naming the input', () => {
    expect(() => readConfig(inputs({ strategy: 'blue-green' }))).toThrow(/input "strategy": expected one of canary, basic, got "blue-green"/);
    expect(() => readConfig(inputs({ 'canary-percent': '0' }))).toThrow(/input "canary-percent": must be between 1 and 100, got 0/);
    expect(() => readConfig(inputs({ 'canary-percent': '101' }))).toThrow(/input "canary-percent"/);
    expect(() => readConfig(inputs({ image: 'r/googlenet:latest' }))).toThrow(/input "image": rollout deploys the image by digest/);
    expect(() => readConfig(inputs({ app: 'GoogLeNet' }))).toThrow(/input "app": the app name must be a DNS label/);
    expect(() => readConfig(inputs({ 'node-selector': 'gpu' }))).toThrow(/input "node-selector": expected key=value/);
    expect(() => readConfig(inputs({ tolerations: 'key: x' }))).toThrow(/input "tolerations": expected a list/);
    expect(() => readConfig(inputs({ 'api-key-secret': 'keys/api', reference: '/r' }))).toThrow(/input "verify-url": is required with api-key-secret/);
    expect(() => readConfig(inputs({ 'drain-delay': '-1' }))).toThrow(/input "drain-delay": expected a non-negative number, got "-1"/);
    expect(() => readConfig(inputs({ 'drain-delay': '2.5' }))).toThrow(/input "drain-delay": expected an integer ≥ 0, got "2.5"/);
    expect(() => readConfig(inputs({ 'drain-delay': '5s' }))).toThrow(/input "drain-delay": expected a non-negative number, got "5s"/);
    expect(() => readConfig(inputs({ 'drain-delay': '5000' }))).toThrow(/input "drain-delay": expected whole seconds from 0 to 300 .*got "5000"/);
    expect(() => readConfig(inputs({ stage: 'preview', 'drain-delay': '301' }))).toThrow(/input "drain-delay"/);
    expect(() => readConfig(inputs({ 'disruption-budget': '0' }))).toThrow(
      /input "disruption-budget": expected auto, none, a number of pods \(1 or more\) or a percentage \(1% to 100%\).*got "0" \(0 would block every node drain/,
    );
    expect(() => readConfig(inputs({ 'disruption-budget': '120%' }))).toThrow(/input "disruption-budget".*got "120%"/);
    expect(() => readConfig(inputs({ 'disruption-budget': 'half' }))).toThrow(/input "disruption-budget"/);
  });
  test('canary-steps: whole percentages, increasing, at most 10; canary-percent is the one-step form', () => {
    const steps = (o: Record<string, string>) => readConfig(inputs(o)).rollout.canarySteps;
    expect(steps({ 'canary-steps': '10,25,50,100' })).toEqual([10, 25, 50, 100]);
    expect(steps({ 'canary-steps': ' 5%, 50% ,100 ' })).toEqual([5, 50, 100]);
    expect(steps({ 'canary-steps': '30' })).toEqual([30]);
    expect(steps({})).toEqual([20]);
    expect(steps({ 'canary-percent': '40' })).toEqual([40]);
    // the default canary-percent (as the action passes every input) does not conflict
    expect(steps({ 'canary-percent': '20', 'canary-steps': '10,100' })).toEqual([10, 100]);
    expect(readConfig(inputs({ strategy: 'basic' })).rollout.canarySteps).toEqual([20]);
    expect(() => steps({ 'canary-steps': '10,5,50' })).toThrow(
      /input "canary-steps": each step must be larger than the one before .*got 5 after 10 in "10,5,50"/,
    );
    expect(() => steps({ 'canary-steps': '10,10' })).toThrow(/input "canary-steps": each step must be larger/);
    expect(() => steps({ 'canary-steps': '0,50' })).toThrow(/input "canary-steps": expected whole percentages from 1 to 100.*got "0" at step 1 of "0,50"/);
    expect(() => steps({ 'canary-steps': '50,101' })).toThrow(/input "canary-steps": .*got "101" at step 2/);
    expect(() => steps({ 'canary-steps': '10,,50' })).toThrow(/input "canary-steps": .*got "" at step 2/);
    expect(() => steps({ 'canary-steps': '12.5,50' })).toThrow(/input "canary-steps": expected whole percentages .*got "12.5"/);
    expect(() => steps({ 'canary-steps': '10 25 50' })).toThrow(/input "canary-steps": .*comma-separated.*got "10 25 50"/);
    expect(() => steps({ 'canary-steps': Array.from({ length: 11 }, (_, i) => i + 1).join(',') })).toThrow(/input "canary-steps": at most 10 steps .*got 11/);
    expect(() => steps({ strategy: 'basic', 'canary-steps': '10,100' })).toThrow(
      /input "canary-steps": is for strategy canary \(strategy basic updates the stable in place/,
    );
    expect(() => steps({ 'canary-percent': '30', 'canary-steps': '10,100' })).toThrow(
      /input "canary-steps": and canary-percent 30 are both given: canary-percent is the one-step form of canary-steps/,
    );
  });
  test('parsed into one typed config', () => {
    const c = readConfig(
      inputs({
        'model-name': 'googlenet',
        'node-selector': 'gpu=a100, zone=b',
        tolerations: '[{key: gpu, operator: Exists}]',
        'model-key-secret': 'model-keys/key',
        'prometheus-url': 'http://prom:9090',
      }),
    ).rollout;
    expect(c).toMatchObject({
      app: 'googlenet',
      namespace: 'default',
      strategy: 'canary',
      replicas: 2,
      canaryPercent: 20,
      canarySteps: [20],
      nodeSelector: { gpu: 'a100', zone: 'b' },
      tolerations: [{ key: 'gpu', operator: 'Exists' }],
      modelKeySecret: { name: 'model-keys', key: 'key' },
    });
    expect(c.prometheus).toMatchObject({ url: 'http://prom:9090', minSamples: 20, maxErrorRate: 0.01 });
    expect(c.drainDelayS).toBe(5);
    expect(readConfig(inputs({ 'drain-delay': '0' })).rollout.drainDelayS).toBe(0);
    expect(c.disruptionBudget).toBe('auto');
    expect(
      [
        readConfig(inputs({ 'disruption-budget': '2' })),
        readConfig(inputs({ 'disruption-budget': '25%' })),
        readConfig(inputs({ 'disruption-budget': 'none' })),
      ].map((x) => x.rollout.disruptionBudget),
    ).toEqual([2, '25%', 'none']);
    expect(readConfig(inputs({ stage: 'preview', 'drain-delay': '12' })).preview.rollout.drainDelayS).toBe(12);
  });
});

describe('runtime triton: inputs', () => {
  const inputs = (o: Record<string, string>) => (n: string) =>
    ({ stage: 'rollout', image: spec.image, 'model-name': 'googlenet', 'prometheus-url': 'http://prom:9090', ...o })[n];
  test('the default Prometheus queries follow the runtime; a given query wins', () => {
    const m = readConfig(inputs({})).rollout.prometheus!;
    expect(m.samplesQuery).toBe(DEFAULT_QUERIES.modelship.samples);
    const t = readConfig(inputs({ runtime: 'triton' })).rollout.prometheus!;
    const vars = { namespace: 'prod', app: 'g', track: 'canary', model: 'googlenet' };
    expect(renderQuery(t.samplesQuery, vars)).toBe(
      '(sum(nv_inference_request_success{namespace="prod",track="canary",model="googlenet"}) + sum(nv_inference_request_failure{namespace="prod",track="canary",model="googlenet"}))',
    );
    expect(renderQuery(t.errorRateQuery, vars)).toMatch(
      /^sum\(nv_inference_request_failure\{namespace="prod",track="canary",model="googlenet"\}\) \/ \(sum\(nv_inference_request_success/,
    );
    expect(renderQuery(t.latencyQuery, vars)).toBe(
      'max(nv_inference_request_summary_us{namespace="prod",track="canary",model="googlenet",quantile="0.99"}) / 1000',
    );
    expect(readConfig(inputs({ runtime: 'triton', 'prometheus-samples-query': 'sum(x)' })).rollout.prometheus!.samplesQuery).toBe('sum(x)');
  });
  test('inputs only the modelship runtime honours are refused with triton, naming the input', () => {
    expect(() => readConfig(inputs({ runtime: 'triton', 'api-key': 's3cret' }))).toThrow(
      /input "api-key": is honoured by the modelship runtime only.*runtime: triton/,
    );
    expect(() => readConfig(inputs({ runtime: 'triton', 'api-key-secret': 'keys/api' }))).toThrow(
      /input "api-key-secret": is honoured by the modelship runtime only/,
    );
    expect(() => readConfig(inputs({ runtime: 'triton', 'model-key-secret': 'keys/model' }))).toThrow(/input "model-key-secret"/);
    expect(() =>
      readConfig(
        (n: string) => ({ stage: 'image', image: 'r/g', model: 'm.onnx', runtime: 'triton', 'encrypt-model': 'true', 'model-key': 'a'.repeat(64) })[n],
      ),
    ).toThrow(/input "(encrypt-model|model-key)": is honoured by the modelship runtime only/);
    expect(() => readConfig(inputs({ runtime: 'tensorflow' }))).toThrow(/input "runtime": expected one of modelship, triton, got "tensorflow"/);
    expect(() => readConfig((n: string) => ({ stage: 'compile', 'triton-release': '24.1' })[n])).toThrow(
      /input "triton-release": expected NVIDIA's container release yy.mm/,
    );
    // the same inputs pass with the modelship runtime
    expect(readConfig(inputs({ 'api-key': 's3cret' })).rollout.apiKey).toBe('s3cret');
  });
});
