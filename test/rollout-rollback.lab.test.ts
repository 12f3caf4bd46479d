import * as path from 'path';
import { requireLab } from './helpers/lab';
import { requireCluster, kubectlJson, exists, pods, apiRequest, runCliProcess, waitFor } from './helpers/kube';
import { readNpy } from '../src/util/npy';
import { encodeInferRequest, decodeInferResponse, HEADER_LENGTH } from '../src/protocol/kserve';
import { compareOutput, DEFAULT_TOLERANCE } from '../src/shared/compare';
import { labDescribe } from './helpers/needs';
import { lenetImage, LENET } from './helpers/lenet-image';
import { rolloutFile, expectExit, leaseHolder } from './helpers/rollout';

// The rollout stage on the lab's real Kubernetes cluster (v1.34): pods of the real serving image run on the real
// kubelet node (realnode), verified through the API server's service proxy. Each test gets its own namespace. The
// stage's lab tests are five files that the jest workers run at once: rollout.lab (the canary's way to promotion, Pod
// Security), rollout-rollback.lab (canaries that fail a gate), rollout-lease.lab (the deploy lease, the action's post
// step), rollout-basic.lab (takeover, the basic strategy, GPUs, bad inputs), rollout-prometheus.lab (the Prometheus
// gate). The LeNet images they deploy are built once per run (test/helpers/lenet-image.ts).
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24']);

const { nsPrefix, patchFile, base, dropNamespaces } = rolloutFile('rr');
const images: Record<'a' | 'b' | 'wrong', string> = { a: '', b: '', wrong: '' };

beforeAll(async () => {
  requireLab();
  requireCluster();
  images.a = await lenetImage('a');
  images.b = await lenetImage('b');
  images.wrong = await lenetImage('wrong');
});

afterAll(() => dropNamespaces());

/** Sends the golden batch-1 request to every stable pod (pod proxy) every 300 ms; counts right and wrong answers. */
function stablePoller(ns: string, app: string) {
  const x = readNpy(path.join(LENET, 'input_b1.npy'));
  const ref = readNpy(path.join(LENET, 'output_b1__prob.npy'));
  const req = encodeInferRequest([{ name: 'data', shape: x.shape, data: x.data }], { binaryOutputs: true });
  const stats = { ok: 0, failed: [] as string[] };
  let stop = false;
  const names = pods(ns, app, 'stable').map((p) => p.name);
  const loop = (async () => {
    while (!stop) {
      for (const n of names) {
        try {
          const r = await apiRequest(`/api/v1/namespaces/${ns}/pods/${n}:8000/proxy/v2/models/lenet/infer`, {
            body: req.body,
            headers: { [HEADER_LENGTH]: req.headerLength },
          });
          if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.toString().slice(0, 100)}`);
          const out = decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH])).outputs[0];
          const c = compareOutput('prob', 1, out, ref, DEFAULT_TOLERANCE);
          if (!c.pass) throw new Error(`wrong output from ${n}`);
          stats.ok++;
        } catch (e) {
          stats.failed.push(`${n}: ${(e as Error).message}`);
        }
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  return {
    stats,
    stop: async () => {
      stop = true;
      await loop;
      return stats;
    },
  };
}

describeLab('a canary that fails a gate is rolled back; the stable is untouched', () => {
  const ns = `${nsPrefix}-canary`;
  afterAll(() => dropNamespaces(ns));

  // the stable the canaries are tried against (image b; each canary is image a, or the wrong model)
  beforeAll(async () => {
    const r = await runCliProcess(base(ns, images.b));
    expectExit(r, 0);
    expect(r.outputs.decision).toBe('promoted');
  });

  const bad: [string, string[], RegExp, string][] = [
    [
      'readiness fails',
      [
        '--patch',
        patchFile(
          'not-ready.yaml',
          `      containers:\n      - name: model-server\n        readinessProbe:\n          httpGet: {path: /v2/models/nothing-here/ready, port: http}\n          periodSeconds: 1\n`,
        ),
      ],
      /fails its readiness probe[\s\S]*Readiness probe failed/,
      'pods',
    ],
    [
      'crash-loops',
      [
        '--patch',
        patchFile(
          'crash.yaml',
          `      containers:\n      - name: model-server\n        env:\n        - {name: MODELSHIP_MODEL, value: /models/missing.onnx}\n`,
        ),
      ],
      /restarted|CrashLoopBackOff|terminated/,
      'pods',
    ],
    ['returns wrong outputs', [], /golden requests to lenet-canary: output "prob" at batch 1 differs from the reference/, 'golden'],
    ['is too slow', ['--max-latency-ms', '0.2'], /latency p95 [\d.]+ ms > max-latency-ms 0.2/, 'golden'],
  ];
  test.each(bad)('canary that %s: rolled back; the stable pods are the same pods and kept serving', async (what, extra, why, gate) => {
    const before = pods(ns, 'lenet', 'stable');
    const beforeDeploy = kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']);
    const poller = stablePoller(ns, 'lenet');
    const r = await runCliProcess(base(ns, what === 'returns wrong outputs' ? images.wrong : images.a, extra));
    const stats = await poller.stop();
    expectExit(r, 1);
    expect(r.outputs.decision).toBe('rolled-back');
    expect(r.outputs[`gate-${gate}`]).toBe('fail');
    expect(r.outputs.reason).toMatch(why);
    expect(r.stderr).toMatch(/error: rolled back: gate "(pods|golden)" failed/);
    // the stable: same pods (UIDs), no restarts, same template, and every golden request to it was answered right
    const after = pods(ns, 'lenet', 'stable');
    expect(after.map((p) => p.uid).sort()).toEqual(before.map((p) => p.uid).sort());
    expect(after.every((p) => p.restarts === 0 && p.ready)).toBe(true);
    expect(kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']).metadata.generation).toBe(beforeDeploy.metadata.generation);
    expect(stats.failed).toEqual([]);
    expect(stats.ok).toBeGreaterThan(0);
    await waitFor('canary deleted', () => !exists('deployment', ns, 'lenet-canary') && !exists('service', ns, 'lenet-canary'), 10_000);
    expect(leaseHolder(ns)).toBeUndefined();
  });
});
