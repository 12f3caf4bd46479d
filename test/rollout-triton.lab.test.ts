import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { FIXTURES, tmpDir, wrongLenetCaffemodel } from './helpers/caffe';
import { LAB, requireLab, docker } from './helpers/lab';
import {
  requireCluster,
  kubectl,
  kubectlJson,
  exists,
  pods,
  apiRequest,
  runCliProcess,
  PROMETHEUS,
  REAL_NODE_PATCH,
  rolloutArgs,
  dropNamespaces,
  withNodeGpus,
  serverVersion,
  RESTRICTED,
  privilegedPodRefusal,
} from './helpers/kube';
import { sleepActionServed } from '../src/rollout/manifests';
import { buildTritonLabImage } from './helpers/triton-lab';
import { readNpy } from '../src/util/npy';
import { encodeInferRequest, decodeInferResponse, HEADER_LENGTH } from '../src/protocol/kserve';
import { compareOutput, DEFAULT_TOLERANCE } from '../src/shared/compare';
import { DEFAULT_QUERIES, renderQuery } from '../src/rollout/prometheus';
import { labDescribe } from './helpers/needs';

// The rollout stage with runtime triton on the lab's real Kubernetes cluster (v1.34): images the image stage derives
// from the lab's real Triton Inference Server (2.51.0, test/triton-lab/) run on the real kubelet node (realnode), and
// are verified through the API server's service and pod proxies. Each describe gets its own namespace.
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24']);

const LENET = path.join(FIXTURES, 'lenet');
const work = tmpDir('modelship-rollout-triton-');
const repo = `${LAB.registry}/modelship-test/lenet-triton-${process.pid}`;
const images: Record<'good' | 'wrong', string> = { good: '', wrong: '' };
const nsPrefix = `rt${process.pid}`;
const onRealNode = path.join(work, 'realnode.yaml');
fs.writeFileSync(onRealNode, REAL_NODE_PATCH);

/**
 * CPU of a Triton pod. Measured on the lab (2 vCPU, a canary of 1 replica, then its promotion): at 50m (what the
 * modelship tests use) a Triton pod is Ready 9.5 s after the apply and the golden requests take 5.1 s; at 100m 5.4 s
 * and 2.4 s; at 250m 4.2 s and 1.2 s. Triton starts its Python backend stub and ONNX Runtime in the pod, which a 50m
 * quota throttles; 250m keeps the peak of this file (2 stable + 1 canary + 1 surge pod) at 1 CPU of the node's 2.
 */
const TRITON_CPU = '250m';

/** The rollout flags of these tests; `more` overrides any of them. */
const base = (ns: string, image: string, more: string[] = []) =>
  rolloutArgs(
    {
      image,
      runtime: 'triton',
      'model-name': 'lenet',
      app: 'lenet',
      namespace: ns,
      replicas: '2',
      'bake-time': '3',
      'rollout-timeout': '90',
      reference: LENET,
      cpu: TRITON_CPU,
      memory: '512Mi',
      patch: onRealNode,
    },
    more,
  );

/** The exit code, with the run's log in the failure message when it is not the expected one. */
function expectExit(r: { code: number | null; stderr: string }, code: number): void {
  if (r.code !== code) throw new Error(`exit code ${r.code}, expected ${code}; log:\n${r.stderr.slice(-3000)}`);
}

const golden = () => {
  const x = readNpy(path.join(LENET, 'input_b1.npy'));
  return {
    req: encodeInferRequest([{ name: 'data', shape: x.shape, data: x.data }], { binaryOutputs: true }),
    ref: readNpy(path.join(LENET, 'output_b1__prob.npy')),
  };
};

/** The golden batch-1 request to `p` (a service or pod proxy path to port 8000); throws unless 200 and the reference's answer. */
async function inferGolden(p: string): Promise<void> {
  const { req, ref } = golden();
  const r = await apiRequest(`${p}/v2/models/lenet/infer`, { body: req.body, headers: { [HEADER_LENGTH]: req.headerLength } });
  if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.toString().slice(0, 200)}`);
  const out = decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH])).outputs[0];
  if (!compareOutput('prob', 1, out, ref, DEFAULT_TOLERANCE).pass) throw new Error(`wrong output from ${p}`);
}

const sha256File = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** sha256 of /models/lenet/1/model.onnx in an image (docker create + cp: no container runs). */
function imageModelSha(image: string): string {
  const id = docker(['create', image]).trim();
  try {
    const out = path.join(work, `model-${id.slice(0, 12)}.onnx`);
    docker(['cp', `${id}:/models/lenet/1/model.onnx`, out]);
    return sha256File(out);
  } finally {
    docker(['rm', id]);
  }
}

/** An instant query at `time` (unix seconds). */
async function promValue(query: string, time: number): Promise<number | undefined> {
  const r = await fetch(`${PROMETHEUS}/api/v1/query?${new URLSearchParams({ query, time: time.toFixed(3) }).toString()}`);
  const body = (await r.json()) as { data: { result: { value: [number, string] }[] } };
  const v = body.data.result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

beforeAll(async () => {
  requireLab();
  requireCluster();
  const tritonImage = await buildTritonLabImage();
  const onnx = path.join(work, 'lenet.onnx');
  expect(
    (
      await runCli([
        'convert',
        '--prototxt',
        path.join(LENET, 'deploy.prototxt'),
        '--caffemodel',
        path.join(LENET, 'weights.caffemodel'),
        '--out',
        onnx,
        '--reference',
        LENET,
      ])
    ).code,
  ).toBe(0);
  const wrongModel = wrongLenetCaffemodel(LENET, path.join(work, 'wrong.caffemodel'));
  const wrongOnnx = path.join(work, 'wrong', 'lenet.onnx');
  expect((await runCli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', wrongModel, '--out', wrongOnnx])).code).toBe(0);
  for (const [k, model, rev] of [
    ['good', onnx, 'a'],
    ['wrong', wrongOnnx, 'c'],
  ] as const) {
    const r = await runCli([
      'image',
      '--image',
      repo,
      '--model',
      model,
      '--model-name',
      'lenet',
      '--runtime',
      'triton',
      '--triton-image',
      tritonImage,
      '--revision',
      rev.repeat(40),
      '--ref',
      `refs/heads/${k}`,
      '--compose-file',
      path.join(work, `${k}.yml`),
      '--json',
    ]);
    expectExit(r, 0);
    expect(r.json().metadata).toContain('"runtime":"triton"');
    images[k] = r.json().image;
  }
});

afterAll(() => dropNamespaces(nsPrefix));

labDescribe(['docker', 'registry', 'cluster', 'node24', 'prometheus'])('canary rollout of a Triton image on the real cluster', () => {
  const ns = `${nsPrefix}-canary`;
  afterAll(() => dropNamespaces(nsPrefix, ns));

  test('the canary passes the pods, golden and Prometheus gates (default Triton queries) and is promoted; the pods run Triton as generated', async () => {
    if (!PROMETHEUS) throw new Error('LAB_PROMETHEUS is not set: start Prometheus with `lab/up.sh prometheus` as root');
    // no prometheus-*-query flags: the gate uses the runtime's default queries (Triton's nv_inference_* metrics)
    const started = Date.now();
    const r = await runCliProcess(
      base(ns, images.good, [
        '--prometheus-url',
        PROMETHEUS,
        '--min-samples',
        '20',
        '--max-error-rate',
        '0',
        '--max-p99-ms',
        '5000',
        '--bake-time',
        '8',
        '--rollout-timeout',
        '120',
      ]),
    );
    expectExit(r, 0);
    expect(r.outputs).toMatchObject({ decision: 'promoted', 'gate-pods': 'pass', 'gate-golden': 'pass', 'gate-prometheus': 'pass', 'canary-replicas': '1' });
    // Triton's pods too run where Pod Security restricted is enforced: the namespace the run created refuses a privileged pod
    expect(kubectlJson<any>(['get', 'namespace', ns]).metadata.labels).toMatchObject(RESTRICTED);
    expect(privilegedPodRefusal(ns)).toMatch(/violates PodSecurity "restricted:latest"/);
    const report = JSON.parse(r.outputs['rollout-report']);
    expect(report.gates.find((g: any) => g.gate === 'golden').detail).toMatch(/^\d+ outputs match the reference/);

    // the Prometheus gate: Triton's own metrics, as scraped from the canary pod's metrics port
    const g = report.gates.find((x: any) => x.gate === 'prometheus');
    const vars = { namespace: ns, app: 'lenet', model: 'lenet', track: 'canary' };
    expect(g.evidence).toEqual([
      renderQuery(DEFAULT_QUERIES.triton.samples, vars),
      renderQuery(DEFAULT_QUERIES.triton.errorRate, vars),
      renderQuery(DEFAULT_QUERIES.triton.latency, vars),
    ]);
    const sel = `namespace="${ns}",track="canary",model="lenet"`;
    expect(g.evidence[0]).toContain(`nv_inference_request_success{${sel}}`);
    expect(g.evidence[0]).toContain(`nv_inference_request_failure{${sel}}`);
    expect(g.evidence[2]).toContain(`nv_inference_request_summary_us{${sel},quantile="0.99"}`);
    expect(g.detail).toMatch(/^canary samples (\d+), error rate 0\.0000, p99 [\d.]+ ms; stable none$/);
    expect(Number(/^canary samples (\d+)/.exec(g.detail)![1])).toBeGreaterThanOrEqual(20);
    // Prometheus itself, asked the same query as of the canary's deletion (no earlier than that, as the CLI's clock
    // starts after `started`): the canary's series end there (staleness markers once the pod is gone)
    const deleted = report.timeline.find((t: any) => t.step === 'delete lenet-canary');
    expect(await promValue(g.evidence[0], started / 1000 + deleted.atS)).toBeGreaterThanOrEqual(20);

    // the stable: 2 Ready pods of the Triton image, as the manifests generate them for runtime triton
    const stable = pods(ns, 'lenet', 'stable');
    expect(stable).toHaveLength(2);
    expect(stable.every((p) => p.image === images.good && p.ready && p.restarts === 0)).toBe(true);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
    const items = kubectlJson<{ items: any[] }>(['-n', ns, 'get', 'pods', '-l', 'app.kubernetes.io/name=lenet,track=stable']).items.filter(
      (p) => !p.metadata.deletionTimestamp,
    );
    expect(items).toHaveLength(2);
    for (const p of items) {
      const c = p.spec.containers[0];
      expect((c.env ?? []).filter((e: any) => /^MODELSHIP_/.test(e.name))).toEqual([]);
      expect(c.securityContext).toMatchObject({ runAsUser: 1000, runAsNonRoot: true, readOnlyRootFilesystem: true });
      expect(c.volumeMounts).toContainEqual(expect.objectContaining({ name: 'tmp', mountPath: '/tmp' }));
      expect(p.spec.volumes).toContainEqual({ name: 'tmp', emptyDir: {} });
      expect(c.lifecycle.preStop).toEqual(sleepActionServed(serverVersion()) ? { sleep: { seconds: 5 } } : { exec: { command: ['sleep', '5'] } });
      // drain-delay 5 + Triton's --exit-timeout-secs 20 + margin 5 (no modelship Connection: close phase)
      expect(p.spec.terminationGracePeriodSeconds).toBe(30);
      expect(c.ports).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'http', containerPort: 8000 }),
          expect.objectContaining({ name: 'grpc', containerPort: 8001 }),
          expect.objectContaining({ name: 'metrics', containerPort: 8002 }),
        ]),
      );
      expect(p.metadata.annotations['prometheus.io/port']).toBe('8002');
      // inside: Triton is PID 1 with the image's CMD flags (the lab's wrapper execs it, its --model-repository pointing
      // at a mirror of /models under /tmp: test/triton-lab/README.md), running as uid 1000
      const cmdline = kubectl(['-n', ns, 'exec', p.metadata.name, '--', 'cat', '/proc/1/cmdline']).split('\0');
      expect(cmdline[0]).toMatch(/\/tritonserver-2\.51\.0$/);
      expect(cmdline).toEqual(
        expect.arrayContaining([
          '--http-port=8000',
          '--grpc-port=8001',
          '--metrics-port=8002',
          '--metrics-config=summary_latencies=true',
          '--disable-auto-complete-config',
          '--strict-readiness=true',
          '--exit-timeout-secs=20',
        ]),
      );
      expect(kubectl(['-n', ns, 'logs', p.metadata.name])).toMatch(/Repository \/models copied to \/tmp\/[\s\S]*Started HTTPService at 0\.0\.0\.0:8000/);
      expect(kubectl(['-n', ns, 'exec', p.metadata.name, '--', 'id', '-u']).trim()).toBe('1000');
      // the metrics port serves Triton's metrics (what Prometheus scraped)
      const m = await apiRequest(`/api/v1/namespaces/${ns}/pods/${p.metadata.name}:8002/proxy/metrics`);
      expect([m.status, m.body.toString()]).toEqual([200, expect.stringMatching(/^nv_inference_request_success\{model="lenet",version="1"\} \d+/m)]);
    }

    // through the main Service: Triton answers, and answers right
    const v2 = await apiRequest(`/api/v1/namespaces/${ns}/services/lenet:http/proxy/v2`);
    expect(v2.status).toBe(200);
    expect(JSON.parse(v2.body.toString())).toMatchObject({ name: 'triton', version: '2.51.0' });
    await inferGolden(`/api/v1/namespaces/${ns}/services/lenet:http/proxy`);
  });

  test('a canary of the wrong model fails the golden gate and is rolled back; the stable pods are the same pods and kept serving', async () => {
    // the precondition: the wrong image's model repository holds the wrong model (the image stage built it from it)
    expect(imageModelSha(images.wrong)).toBe(sha256File(path.join(work, 'wrong', 'lenet.onnx')));
    const before = pods(ns, 'lenet', 'stable');
    expect(before).toHaveLength(2);
    const beforeDeploy = kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']);
    // the stable keeps answering right while the canary is tried: the golden request to each stable pod every 300 ms
    const stats = { ok: 0, failed: [] as string[] };
    let stop = false;
    const poller = (async () => {
      while (!stop) {
        for (const p of before) {
          await inferGolden(`/api/v1/namespaces/${ns}/pods/${p.name}:8000/proxy`).then(
            () => stats.ok++,
            (e: Error) => stats.failed.push(`${p.name}: ${e.message}`),
          );
        }
        await new Promise((res) => setTimeout(res, 300));
      }
    })();
    const r = await runCliProcess(base(ns, images.wrong));
    stop = true;
    await poller;
    expectExit(r, 1);
    expect(r.outputs).toMatchObject({ decision: 'rolled-back', 'gate-golden': 'fail' });
    expect(r.outputs.reason).toMatch(/^gate "golden" failed: golden requests to lenet-canary: output "prob" at batch 1 differs from the reference/);
    expect(r.stderr).toMatch(/error: rolled back: gate "golden" failed/);
    const report = JSON.parse(r.outputs['rollout-report']);
    // the canary's Triton came up Ready; its answers failed it
    expect(report.timeline).toContainEqual(expect.objectContaining({ step: 'canary pods Ready', result: 'ok' }));
    expect(report.timeline).toContainEqual(expect.objectContaining({ step: 'golden requests to lenet-canary', result: 'fail' }));
    expect(report.timeline).toContainEqual(expect.objectContaining({ step: 'roll back: delete lenet-canary', result: 'ok' }));
    // the stable: same pods (UIDs), no restarts, same template, and every golden request to it was answered right
    const after = pods(ns, 'lenet', 'stable');
    expect(after.map((p) => p.uid).sort()).toEqual(before.map((p) => p.uid).sort());
    expect(after.every((p) => p.restarts === 0 && p.ready && p.image === images.good)).toBe(true);
    const d = kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']);
    expect(d.metadata.generation).toBe(beforeDeploy.metadata.generation);
    expect(d.spec.template.spec.containers[0].image).toBe(images.good);
    expect(stats.failed).toEqual([]);
    expect(stats.ok).toBeGreaterThan(0);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
    expect(exists('service', ns, 'lenet-canary')).toBe(false);
  });
});

describeLab('gpu: true with a Triton image whose instance group is KIND_CPU', () => {
  test('the pods hold an nvidia.com/gpu on the real node; the pods gate reads the model configuration, names the pod and its KIND_CPU instance group, and the canary is rolled back', async () => {
    // no device plugin here: the real node advertises the extended resource in its status, so GPU pods schedule
    // there for real and Triton runs there on the CPU, as the image's config.pbtxt says (KIND_CPU: built without --gpu)
    // (the files that set the node's GPUs take turns: withNodeGpus)
    const ns = `${nsPrefix}-gpu`;
    await withNodeGpus('realnode', 4, async () => {
      try {
        // what the pods asked for, seen while they exist
        const limits = new Set<string>();
        let watching = true;
        const watcher = (async () => {
          while (watching) {
            try {
              for (const p of kubectlJson<{ items: any[] }>(['-n', ns, 'get', 'pods']).items) limits.add(JSON.stringify(p.spec.containers[0].resources.limits));
            } catch {
              /* the namespace is not there yet */
            }
            await new Promise((res) => setTimeout(res, 500));
          }
        })();
        const r = await runCliProcess(base(ns, images.good, ['--gpu', '--replicas', '1']));
        watching = false;
        await watcher;
        expectExit(r, 1);
        expect([...limits]).toEqual([JSON.stringify({ cpu: TRITON_CPU, memory: '512Mi', 'nvidia.com/gpu': '1' })]);
        expect(r.outputs).toMatchObject({ decision: 'rolled-back', 'gate-pods': 'fail', 'gate-golden': 'skipped' });
        expect(r.outputs.reason).toMatch(
          /^gate "pods" failed: gpu is true but 1 of 1 pod\(s\) do not serve the model on the GPU: lenet-canary-[a-z0-9]+-[a-z0-9]+ serves on cpu: triton: instance_group KIND_CPU/,
        );
        const report = JSON.parse(r.outputs['rollout-report']);
        const gate = report.gates.find((g: any) => g.gate === 'pods');
        expect(gate.evidence).toEqual([expect.stringMatching(/^pod lenet-canary-[a-z0-9]+-[a-z0-9]+: cpu \(triton: instance_group KIND_CPU/)]);
        // Triton started and was Ready: it is the placement check that failed it, not the pod
        expect(report.timeline).toContainEqual(expect.objectContaining({ step: 'canary pods Ready', result: 'ok' }));
        expect(report.timeline).toContainEqual(expect.objectContaining({ result: 'fail', step: expect.stringMatching(/^canary pods compute on the GPU/) }));
        // the canary asked for the GPU and landed on the node that has them; then it was deleted, and (a first deploy) nothing stayed
        const events = kubectl(['-n', ns, 'get', 'events', '-o', 'json']);
        expect(events).toMatch(/Successfully assigned .*lenet-canary-.* to realnode/);
        expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
        expect(exists('deployment', ns, 'lenet')).toBe(false);
      } finally {
        dropNamespaces(nsPrefix, ns);
      }
    });
  });
});
