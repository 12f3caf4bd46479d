import * as path from 'path';
import { requireLab } from './helpers/lab';
import {
  requireCluster,
  kubectl,
  kubectlJson,
  exists,
  pods,
  serviceAccountKubeconfig,
  runCliProcess,
  waitFor,
  withNodeGpus,
  createRestrictedNamespace,
} from './helpers/kube';
import { labDescribe } from './helpers/needs';
import { lenetImage, LENET } from './helpers/lenet-image';
import { rolloutFile, expectExit } from './helpers/rollout';

// The rollout stage on the lab's real Kubernetes cluster (v1.34): pods of the real serving image run on the real
// kubelet node (realnode), verified through the API server's service proxy. Each test gets its own namespace. The
// stage's lab tests are five files that the jest workers run at once: rollout.lab (the canary's way to promotion, Pod
// Security), rollout-rollback.lab (canaries that fail a gate), rollout-lease.lab (the deploy lease, the action's post
// step), rollout-basic.lab (takeover, the basic strategy, GPUs, bad inputs), rollout-prometheus.lab (the Prometheus
// gate). The LeNet images they deploy are built once per run (test/helpers/lenet-image.ts).
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24']);

const { work, nsPrefix, patchFile, base, dropNamespaces } = rolloutFile('rs');
const images: Record<'a' | 'b', string> = { a: '', b: '' };

beforeAll(async () => {
  requireLab();
  requireCluster();
  images.a = await lenetImage('a');
  images.b = await lenetImage('b');
});

afterAll(() => dropNamespaces());

describeLab('taking over, basic strategy, bad inputs', () => {
  test('takeover of a hand-made Deployment: its selector is kept, it ends up managed by modelship', async () => {
    const ns = `${nsPrefix}-takeover`;
    createRestrictedNamespace(ns);
    // (a hand-made Deployment that Pod Security restricted admits: its pods run)
    const restricted = {
      runAsNonRoot: true,
      runAsUser: 10001,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    };
    kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'lenet', labels: { app: 'handmade' } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'handmade' } },
          template: {
            metadata: { labels: { app: 'handmade' } },
            spec: {
              nodeSelector: { realnode: 'true' },
              tolerations: [{ key: 'realnode', operator: 'Exists', effect: 'NoSchedule' }],
              containers: [{ name: 'server', image: images.a, ports: [{ containerPort: 8000 }], securityContext: restricted }],
            },
          },
        },
      }),
    );
    const r = await runCliProcess(base(ns, images.b));
    expect(r.stderr).not.toMatch(/field is immutable|selector/i);
    expectExit(r, 0);
    expect(r.outputs.decision).toBe('promoted');
    const d = kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']);
    expect(d.spec.selector.matchLabels).toEqual({ app: 'handmade' });
    expect(d.metadata.labels['app.kubernetes.io/managed-by']).toBe('modelship');
    expect(d.spec.template.spec.containers.map((c: any) => [c.name, c.image])).toEqual([['model-server', images.b]]);
    expect(JSON.parse(r.outputs['rollout-report']).takeover).toBe(true);
    dropNamespaces(ns);
  });

  test('basic: update in place; a failing update returns to the previous ReplicaSet template', async () => {
    const ns = `${nsPrefix}-basic`;
    const ok = await runCliProcess(base(ns, images.a, ['--strategy', 'basic']));
    expectExit(ok, 0);
    expect(ok.outputs).toMatchObject({ decision: 'promoted', 'canary-replicas': '0' });
    const crash = patchFile(
      'crash-basic.yaml',
      `      containers:\n      - name: model-server\n        env:\n        - {name: MODELSHIP_MODEL, value: /models/missing.onnx}\n`,
    );
    const r = await runCliProcess(base(ns, images.b, ['--strategy', 'basic', '--patch', crash]));
    expectExit(r, 1);
    expect(r.outputs.decision).toBe('rolled-back');
    expect(r.outputs.reason).toMatch(/restarted|CrashLoopBackOff|terminated/);
    expect(r.outputs.reason).toMatch(/exit code/);
    const d = kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']);
    expect(d.spec.template.spec.containers[0].image).toBe(images.a);
    expect(d.spec.template.spec.containers[0].env.some((e: any) => e.value === '/models/missing.onnx')).toBe(false);
    await waitFor(
      'the previous template serving again',
      () => {
        const p = pods(ns, 'lenet', 'stable');
        return p.length === 2 && p.every((x) => x.image === images.a && x.ready);
      },
      90_000,
    );
    dropNamespaces(ns);
  });

  test('gpu: true — pods hold an nvidia.com/gpu on the real node; a canary that serves on the CPU is rolled back, naming the pod; one whose CUDA provider cannot start is rolled back', async () => {
    // no device plugin here: the real node advertises the extended resource in its status, so GPU pods schedule
    // there for real (and run on its CPU: this image has no CUDA provider, which is what the gate must catch)
    // (the files that set the node's GPUs take turns: withNodeGpus)
    const ns = `${nsPrefix}-gpu`;
    await withNodeGpus('realnode', 4, async () => {
      try {
        // the server asked to fall back (cuda,cpu): it starts, serves on the CPU, and the provider check names the pod
        const fallback = patchFile(
          'gpu-fallback.yaml',
          `      containers:\n      - name: model-server\n        env:\n        - {name: MODELSHIP_PROVIDER, value: "cuda,cpu"}\n`,
        );
        const r = await runCliProcess(base(ns, images.a, ['--gpu', '--patch', fallback]));
        expectExit(r, 1);
        expect(r.outputs).toMatchObject({ decision: 'rolled-back', 'gate-pods': 'fail' });
        expect(r.outputs.reason).toMatch(
          /gpu is true but 1 of 1 pod\(s\) do not serve the model on the GPU: lenet-canary-[a-z0-9]+-[a-z0-9]+ serves on cpu: modelship: execution provider cpu \(libonnxruntime_providers_shared\.so is missing/,
        );
        const report = JSON.parse(r.outputs['rollout-report']);
        expect(report.timeline.map((t: any) => t.step)).toContain('canary pods compute on the GPU');
        expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
        // strict (the default with gpu: true): the server refuses to start, the pod fails, the canary is rolled back
        const strict = await runCliProcess(base(ns, images.a, ['--gpu']));
        expectExit(strict, 1);
        expect(strict.outputs.decision).toBe('rolled-back');
        expect(strict.outputs.reason).toMatch(/exit code [1-9]/);
        expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
        // the pods asked for the GPU and landed on the node that has them
        const events = kubectl(['-n', ns, 'get', 'events', '-o', 'json']);
        expect(events).toMatch(/Successfully assigned .*lenet-canary-.* to realnode/);
      } finally {
        dropNamespaces(ns);
      }
    });
  });

  test('bad inputs fail before anything is applied, naming the input', async () => {
    const ns = `${nsPrefix}-inputs`;
    const cases: [string[], RegExp][] = [
      [['--strategy', 'blue-green'], /input "strategy": expected one of canary, basic, got "blue-green"/],
      [['--canary-percent', '0'], /input "canary-percent": must be between 1 and 100, got 0/],
      [['--canary-percent', '150'], /input "canary-percent": must be between 1 and 100/],
      [['--kubeconfig', path.join(work, 'no-such-kubeconfig')], /input "kubeconfig": cannot read .*no-such-kubeconfig: ENOENT/],
      [['--kubeconfig', path.join(LENET, 'deploy.prototxt')], /input "kubeconfig": .* (is not a usable kubeconfig|has no current cluster)/],
    ];
    for (const [extra, msg] of cases) {
      const r = await runCliProcess(base(ns, images.a, extra));
      expectExit(r, 2);
      expect(r.stderr).toMatch(msg);
    }
    // a user that may read namespaces but not create them, deploying into one that does not exist
    const saNs = `${nsPrefix}-sa`;
    const limited = path.join(work, 'limited.kubeconfig');
    serviceAccountKubeconfig(saNs, 'deployer', [{ apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list'] }], limited);
    const r = await runCliProcess(base(ns, images.a, ['--kubeconfig', limited]));
    expectExit(r, 2);
    // the preflight (rollout/permissions.ts) names what is missing: creating the namespace among the rest
    expect(r.stderr).toMatch(
      /input "kubeconfig": the kubeconfig's user \(system:serviceaccount:\S+-sa:deployer\) may not: .*create, delete namespaces \(cluster-wide\) \(needed to create the namespace, which does not exist yet/,
    );
    expect(exists('namespace', '', ns)).toBe(false);
  });
});
