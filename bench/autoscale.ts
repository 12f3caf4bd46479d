// Benchmark: an autoscaled stable under a load ramp on the lab's real cluster (Kubernetes v1.34, metrics-server, the
// HPA controller): the seconds from the load's start to the HPA's scale-out, to the added pods Ready, and to the added
// pods serving (each has answered an inference request: its own modelship_requests_total, read through the pod
// proxy), then from the load's stop back to min. The same ramp as test/autoscale-rollout.lab.test.ts
// (test/helpers/autoscale-ramp.ts): the stable deployed by the rollout stage with autoscale min=1,max=3,cpu=50,
// scale-down=15, a 100m CPU request (bursting to 1 CPU), load from `loops` concurrent loops of the golden batch-1 request
// through the main Service (the API server's service proxy), `rounds` times.
//   npx tsx bench/autoscale.ts [rounds] [loops]   (needs lab/up.sh: docker, k134, autoscale; runs the bundle dist/index.js)
// What bounds it: metrics-server samples every 15 s and the HPA controller syncs every 15 s, so the scale-out decision
// comes 15 to 45 s after the CPU rises; then a pod starts (the server loads the model, its readiness probe passes) and
// the Service's endpoints take it in. Goals: every request succeeds; the added pods serve within 60 s of the load's start.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { LAB_PODS_PATCH, serviceClient } from '../test/helpers/kube';
import { watchRamp, rampFigures } from '../test/helpers/autoscale-ramp';

const REPO = path.resolve(__dirname, '..');
const LENET = path.join(REPO, 'test/fixtures/caffe/lenet');
const KUBECTL = process.env.LAB_KUBECTL ?? '/var/lib/modelship-lab/bin/kubectl';
const registry = process.env.LAB_REGISTRY ?? '127.0.0.1:5000';
const rounds = Number(process.argv[2] ?? 2);
const loops = Number(process.argv[3] ?? 6);
const AUTOSCALE = 'min=1,max=3,cpu=50,scale-down=15';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-autoscale-'));
const ns = `bench-autoscale-${Date.now() % 100000}`;

const cli = (args: string[]) =>
  JSON.parse(
    execFileSync(process.execPath, [path.join(REPO, 'dist/index.js'), ...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
  ) as Record<string, string>;
const kubectl = (args: string[]) => execFileSync(KUBECTL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const json = <T>(args: string[]) => JSON.parse(kubectl([...args, '-o', 'json'])) as T;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const replicas = () => json<{ spec: { replicas: number } }>(['-n', ns, 'get', 'deployment', 'lenet']).spec.replicas;
const utilization = () =>
  json<{ status: { currentMetrics?: { resource?: { current: { averageUtilization?: number } } }[] | null } }>(['-n', ns, 'get', 'hpa', 'lenet']).status
    .currentMetrics?.[0]?.resource?.current.averageUtilization;

async function until(what: string, cond: () => boolean, ms: number): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(1000)) if (cond()) return;
  throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
}

interface Round {
  scaledS?: number;
  readyS?: number;
  servingS?: number;
  peak: number;
  added: string;
  sent: number;
  failed: number;
  backS?: number;
  utilization?: number;
}

async function ramp(): Promise<Round> {
  await until('the stable at 1 replica, its CPU read', () => replicas() === 1 && utilization() !== undefined, 300_000);
  const client = serviceClient({ ns, service: 'lenet', model: 'lenet', reference: LENET, loops, maxMs: 600_000 });
  const watch = watchRamp(ns, 'lenet');
  let f = rampFigures(watch, 1);
  let util: number | undefined;
  try {
    for (const t0 = Date.now(); Date.now() - t0 < 300_000; await sleep(1000)) {
      f = rampFigures(watch, 1);
      if (watch.current() > 1 && f.addedServingS !== undefined && f.added.length >= watch.current() - 1) break;
    }
    util = utilization();
    // a little more load, so the figures are those of a settled scale-out, not of its first pod only
    await sleep(10_000);
    f = rampFigures(watch, 1);
  } finally {
    await watch.stop();
  }
  const stats = await client.stop();
  const stopped = Date.now();
  let backS: number | undefined;
  try {
    await until('the scale back to 1', () => replicas() === 1, 300_000);
    backS = (Date.now() - stopped) / 1000;
  } catch (e) {
    console.error((e as Error).message);
  }
  return {
    scaledS: f.scaledS,
    readyS: f.addedReadyS,
    servingS: f.addedServingS,
    peak: f.peak,
    added: f.added.map((p) => `${p.served}`).join('/'),
    sent: stats.sent,
    failed: stats.failed.length,
    backS,
    utilization: util,
  };
}

async function main(): Promise<void> {
  fs.writeFileSync(path.join(work, 'pods.yaml'), LAB_PODS_PATCH);
  const onnx = path.join(work, 'lenet.onnx');
  cli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', path.join(LENET, 'weights.caffemodel'), '--out', onnx]);
  // the Node.js running this script goes into the image (as bench/rollout.ts does): no download
  const image = cli([
    'image',
    '--image',
    `${registry}/modelship-bench/autoscale`,
    '--model',
    onnx,
    '--model-name',
    'lenet',
    '--base-image',
    process.env.LAB_BASE_IMAGE ?? 'local/debian:bookworm',
    '--revision',
    'a'.repeat(40),
    '--ref',
    'refs/heads/bench',
    '--compose-file',
    path.join(work, 'c.yml'),
    '--node-binary',
    process.execPath,
  ]).image;
  const deployed = cli([
    'rollout',
    '--image',
    image,
    '--model-name',
    'lenet',
    '--app',
    'lenet',
    '--namespace',
    ns,
    '--strategy',
    'basic',
    '--replicas',
    '1',
    '--bake-time',
    '2',
    '--rollout-timeout',
    '240',
    '--reference',
    LENET,
    '--cpu',
    '100m',
    '--memory',
    '256Mi',
    '--patch',
    path.join(work, 'pods.yaml'),
    '--autoscale',
    AUTOSCALE,
  ]);
  if (deployed.decision !== 'promoted') throw new Error(`the deploy was not promoted: ${deployed.reason}`);
  const results: Round[] = [];
  try {
    for (let i = 0; i < rounds; i++) results.push(await ramp());
  } finally {
    kubectl(['delete', 'namespace', ns, '--wait=false']);
  }
  const s = (x: number | undefined) => (x === undefined ? '—' : `${x.toFixed(1)} s`);
  console.log(
    `autoscale benchmark: lenet, autoscale ${AUTOSCALE}, cpu request 100m (limit 1), ${loops} loops through the Service, lab cluster (real kubelet, 2 CPUs shared)`,
  );
  console.log('  seconds from the load start to: the HPA scaling out | the added pods Ready | the added pods serving; then from the load stop back to 1');
  for (const [i, r] of results.entries()) {
    console.log(
      `  round ${i + 1}: HPA ${r.utilization ?? '?'}% of the request → scaled ${s(r.scaledS)} | Ready ${s(r.readyS)} | serving ${s(r.servingS)} (goal ≤ 60 s) | peak ${r.peak} replicas, the added pods answered ${r.added} requests; back to 1 after ${s(r.backS)} (scale-down window 15 s)`,
    );
    if (r.scaledS !== undefined && r.servingS !== undefined)
      console.log(
        `           detection (load → decision) ${s(r.scaledS)} = ${(r.scaledS / 30).toFixed(2)} × (metric resolution 15 s + HPA sync 15 s); pod start + first answer (decision → serving) ${s(r.servingS - r.scaledS)}`,
      );
    console.log(`           requests: sent ${r.sent}, failed ${r.failed} (goal 0)`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
