import { requireLab } from './helpers/lab';
import { requireCluster, kubectlJson, exists, pods, apiRequest, runCliProcess, PROMETHEUS } from './helpers/kube';
import { labDescribe } from './helpers/needs';
import { lenetImage } from './helpers/lenet-image';
import { rolloutFile, expectExit } from './helpers/rollout';

// The rollout stage on the lab's real Kubernetes cluster (v1.34): pods of the real serving image run on the real
// kubelet node (realnode), verified through the API server's service proxy. Each test gets its own namespace. The
// stage's lab tests are five files that the jest workers run at once: rollout.lab (the canary's way to promotion, Pod
// Security), rollout-rollback.lab (canaries that fail a gate), rollout-lease.lab (the deploy lease, the action's post
// step), rollout-basic.lab (takeover, the basic strategy, GPUs, bad inputs), rollout-prometheus.lab (the Prometheus
// gate). The LeNet images they deploy are built once per run (test/helpers/lenet-image.ts).
jest.setTimeout(600_000);

const { nsPrefix, base, dropNamespaces } = rolloutFile('rm');
const images: Record<'a' | 'b', string> = { a: '', b: '' };

beforeAll(async () => {
  requireLab();
  requireCluster();
  images.a = await lenetImage('a');
  images.b = await lenetImage('b');
});

afterAll(() => dropNamespaces());

labDescribe(['docker', 'registry', 'cluster', 'node24', 'prometheus'])('the Prometheus gate (lab/up.sh prometheus)', () => {
  test('no samples is a failure, never a pass', async () => {
    if (!PROMETHEUS) throw new Error('LAB_PROMETHEUS is not set: start Prometheus with `lab/up.sh prometheus` as root');
    const ns = `${nsPrefix}-prom`;
    // rollout-timeout: a canary pod is Ready in ~5 s (~15 s at 50m without the CPU burst patch, more on a busy node);
    // the gate then waits what is left for samples, at most 30 s
    const r = await runCliProcess(
      base(ns, images.a, [
        '--prometheus-url',
        PROMETHEUS,
        '--prometheus-samples-query',
        'sum(modelship_no_such_metric{namespace="{{namespace}}",track="{{track}}"})',
        '--bake-time',
        '1',
        '--rollout-timeout',
        '60',
      ]),
    );
    expectExit(r, 1);
    expect(r.outputs).toMatchObject({ decision: 'rolled-back', 'gate-pods': 'pass', 'gate-golden': 'pass', 'gate-prometheus': 'fail' });
    expect(r.outputs.reason).toMatch(/Prometheus has no samples for the canary .*no data is a failure/);
    expect(exists('deployment', ns, 'lenet-canary')).toBe(false);
  });

  test("a canary that served traffic passes on the server's own metrics (default queries), compared with the stable", async () => {
    if (!PROMETHEUS) throw new Error('LAB_PROMETHEUS is not set: start Prometheus with `lab/up.sh prometheus` as root');
    const ns = `${nsPrefix}-prom-ok`;
    // the stable first (no metrics gate), then a canary that must show min-samples requests in Prometheus
    expectExit(await runCliProcess(base(ns, images.a, ['--replicas', '1'])), 0);
    const r = await runCliProcess(
      base(ns, images.b, [
        '--replicas',
        '1',
        '--prometheus-url',
        PROMETHEUS,
        '--min-samples',
        '10',
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
    expect(r.outputs).toMatchObject({ decision: 'promoted', 'gate-prometheus': 'pass' });
    const g = JSON.parse(r.outputs['rollout-report']).gates.find((x: any) => x.gate === 'prometheus');
    expect(g.detail).toMatch(/^canary samples (\d+), error rate 0\.0000, p99 [\d.]+ ms; stable samples/);
    expect(Number(/^canary samples (\d+)/.exec(g.detail)![1])).toBeGreaterThanOrEqual(10);
    // Prometheus scraped the metrics-only port the annotations name (through the pod proxy): it serves /metrics, no inference
    const pod = pods(ns, 'lenet', 'stable')[0].name;
    expect(kubectlJson<any>(['-n', ns, 'get', 'pod', pod]).metadata.annotations['prometheus.io/port']).toBe('8002');
    const metrics = await apiRequest(`/api/v1/namespaces/${ns}/pods/${pod}:8002/proxy/metrics`);
    expect([metrics.status, metrics.body.toString()]).toEqual([200, expect.stringContaining('modelship_requests_total')]);
    expect((await apiRequest(`/api/v1/namespaces/${ns}/pods/${pod}:8002/proxy/v2/models/lenet`)).status).toBe(404);
    dropNamespaces(ns);
  });
});
