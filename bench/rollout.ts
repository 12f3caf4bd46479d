// Benchmark: time from the first apply to the rollout decision on the lab's real cluster, for a good canary and for
// bad ones, next to the configured bake time and timeout; and the requests lost while a rollout promotes under load.
//   npx tsx bench/rollout.ts [bake-seconds] [promotions]   (needs lab/up.sh: docker + k8s; runs the bundle dist/index.js)
// Goals: a good canary decides within bake time + 10 s; a bad canary is detected within one probe period of its
// failure; no request is lost while a good canary is promoted. The "killed during the bake" case stops the canary's
// server (kill 1 in the pod) at a known moment and measures the time from that moment to the decision. The load is
// the golden batch-1 request from 4 concurrent loops through the main Service (the API server's service proxy, which
// picks a ready endpoint per request), from before the rollout starts until the replaced stable pods and the canary's
// have exited, plus 3 s; `promotions` good canaries (alternating digests, default 2) are promoted under it.
// Then a four-step canary (canary-steps 10,25,50,100, judged against the stable at every step) under the same load:
// each step's time from its apply to its last check, against bake-time (goal: bake + ≤ 5 s), and the requests lost
// (goal 0); beside it, in the same run, the one-step canary's decision − bake (the baseline).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn } from 'child_process';
import { REAL_NODE_PATCH, serviceClient } from '../test/helpers/kube';

const REPO = path.resolve(__dirname, '..');
const LENET = path.join(REPO, 'test/fixtures/caffe/lenet');
const KUBECTL = process.env.LAB_KUBECTL ?? '/var/lib/modelship-lab/bin/kubectl';
const registry = process.env.LAB_REGISTRY ?? '127.0.0.1:5000';
const bakeS = Number(process.argv[2] ?? 10);
const promotions = Number(process.argv[3] ?? 2);
const timeoutS = 120;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-rollout-'));
const ns = `bench-rollout-${Date.now() % 100000}`;

const cli = (args: string[]) =>
  JSON.parse(
    execFileSync(process.execPath, [path.join(REPO, 'dist/index.js'), ...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
  ) as Record<string, string>;
const kubectl = (args: string[]) => execFileSync(KUBECTL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** The fields of a pod this benchmark reads. */
interface Pod {
  metadata: { name: string; labels: Record<string, string>; deletionTimestamp?: string };
  spec: { containers: { image: string }[] };
  status: { phase: string; containerStatuses?: { ready: boolean; state?: { running?: unknown } }[] };
}
/** `kubectl get pods` in the benchmark's namespace, by label selector. */
const pods = (selector: string) => (JSON.parse(kubectl(['-n', ns, 'get', 'pods', '-l', selector, '-o', 'json'])) as { items: Pod[] }).items;

function rollout(
  image: string,
  extra: string[] = [],
): Promise<{ outputs: Record<string, string>; log: string; child: ReturnType<typeof spawn> }> & { child: ReturnType<typeof spawn>; log: () => string } {
  const patch = extra.includes('--patch') ? [] : ['--patch', path.join(work, 'realnode.yaml')];
  const child = spawn(
    process.execPath,
    [
      path.join(REPO, 'dist/index.js'),
      'rollout',
      '--image',
      image,
      '--model-name',
      'lenet',
      '--app',
      'lenet',
      '--namespace',
      ns,
      '--replicas',
      '2',
      '--bake-time',
      String(bakeS),
      '--rollout-timeout',
      String(timeoutS),
      '--reference',
      LENET,
      '--cpu',
      '400m',
      '--memory',
      '256Mi',
      ...patch,
      ...extra,
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let log = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (log += d));
  const p = new Promise<{ outputs: Record<string, string>; log: string; child: typeof child }>((resolve) =>
    child.on('close', () => resolve({ outputs: JSON.parse(out || '{}') as Record<string, string>, log, child })),
  );
  return Object.assign(p, { child, log: () => log });
}

/** Wait until every pod of the app is a stable pod of `image` that is not terminating, or has exited (`gone`: is deleted). */
async function settled(image: string, gone = false): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < 180_000; await new Promise((r) => setTimeout(r, 500))) {
    const current = pods('app.kubernetes.io/name=lenet');
    // (once its container has stopped, a terminating pod on the 1.20 kubelet may show it as waiting again)
    const exited = (p: Pod) =>
      !gone &&
      (['Succeeded', 'Failed'].includes(p.status.phase) ||
        (!!p.metadata.deletionTimestamp && !(p.status.containerStatuses ?? []).some((c) => c.state?.running)));
    if (current.every((p) => (p.metadata.labels.track === 'stable' && p.spec.containers[0].image === image && !p.metadata.deletionTimestamp) || exited(p)))
      return;
  }
  throw new Error(`the replaced pods were not ${gone ? 'deleted' : 'stopped'} within 180 s`);
}

/**
 * A four-step canary of `image` under 4 loops of load through the main Service: each step's seconds from its apply
 * to its last check (the timeline of rollout-report), the decision, and the requests lost until the replaced pods
 * have exited.
 */
async function steppedCanary(image: string) {
  const load = serviceClient({ ns, service: 'lenet', model: 'lenet', reference: LENET, maxMs: Infinity });
  const r = await rollout(image, ['--canary-steps', '10,25,50,100']);
  await settled(image).catch((e: Error) => console.error(e.message));
  await new Promise((res) => setTimeout(res, 3000));
  const stats = await load.stop();
  if (r.outputs.decision !== 'promoted') console.error(`the four-step canary was not promoted: ${r.outputs.reason ?? r.log.slice(-800)}`);
  const report = JSON.parse(r.outputs['rollout-report'] ?? '{"timeline":[],"gates":[]}') as {
    timeline: { step: string; atS: number; seconds: number }[];
    gates: { gate: string; detail: string }[];
  };
  const steps = [1, 2, 3, 4].map((n) => {
    const mine = report.timeline.filter((e) => e.step.startsWith(`step ${n}/4`));
    const start = Math.min(...mine.map((e) => e.atS));
    const end = Math.max(...mine.map((e) => e.atS + e.seconds));
    return { name: mine[0]?.step.split(': ').slice(0, 2).join(': ') ?? `step ${n}/4`, seconds: end - start };
  });
  await settled(image, true).catch((e: Error) => console.error(e.message));
  return {
    decision: r.outputs.decision,
    decisionS: r.outputs['decision-seconds'],
    steps,
    load: stats,
    analysis: report.gates.find((g) => g.gate === 'analysis')?.detail ?? 'none',
  };
}

async function main(): Promise<void> {
  fs.writeFileSync(path.join(work, 'realnode.yaml'), REAL_NODE_PATCH);
  fs.writeFileSync(
    path.join(work, 'crash.yaml'),
    fs.readFileSync(path.join(work, 'realnode.yaml'), 'utf8') +
      '      containers:\n      - name: model-server\n        env:\n        - {name: MODELSHIP_MODEL, value: /models/missing.onnx}\n',
  );
  const onnx = path.join(work, 'lenet.onnx');
  cli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', path.join(LENET, 'weights.caffemodel'), '--out', onnx]);
  const repo = `${registry}/modelship-bench/rollout`;
  // the Node.js running this script goes into the image (as bench/image.ts and scripts/demo.sh do): no download
  const img = (rev: string) =>
    cli([
      'image',
      '--image',
      repo,
      '--model',
      onnx,
      '--model-name',
      'lenet',
      '--base-image',
      process.env.LAB_BASE_IMAGE ?? 'local/debian:bookworm',
      '--revision',
      rev.repeat(40),
      '--ref',
      'refs/heads/bench',
      '--compose-file',
      path.join(work, 'c.yml'),
      '--node-binary',
      process.execPath,
    ]).image;
  const a = img('a');
  const b = img('b');
  const rows: [string, string, string][] = [];
  const first = await rollout(a);
  rows.push(['first deploy (canary verified, then stable created)', first.outputs.decision, first.outputs['decision-seconds']]);
  if (first.outputs.decision !== 'promoted')
    throw new Error(`the first deploy was not promoted (${first.outputs.reason ?? first.log.slice(-500)}); is realnode's CPU taken by other namespaces?`);
  await settled(a, true);
  // good canaries promoted while the Service is under load: the first is the timed "good canary"
  const lost: { image: string; decision: string; sent: number; ok: number; failed: string[]; seconds: number }[] = [];
  let good: Awaited<ReturnType<typeof rollout>> | undefined;
  let stableImage = a;
  for (let i = 0; i < Math.max(1, promotions); i++) {
    const image = i % 2 === 0 ? b : a;
    stableImage = image;
    // 4 loops sending the golden request through the main Service (every answer must be 200 and match the reference)
    const load = serviceClient({ ns, service: 'lenet', model: 'lenet', reference: LENET, maxMs: Infinity });
    const r = await rollout(image);
    await settled(image).catch((e: Error) => console.error(e.message));
    await new Promise((res) => setTimeout(res, 3000));
    lost.push({ image, decision: r.outputs.decision, ...(await load.stop()) });
    const l = lost[lost.length - 1];
    console.error(
      `promotion ${i + 1} under load: ${l.decision}${l.decision === 'promoted' ? '' : ` (${r.outputs.reason?.split('\n')[0]})`}; sent ${l.sent}, ok ${l.ok}, failed ${l.failed.length}`,
    );
    // the lab's kubelet keeps terminated pods (and their CPU requests) up to ~70 s: let them go before the next canary
    await settled(image, true).catch((e: Error) => console.error(e.message));
    good ??= r;
  }
  rows.push(['good canary', good!.outputs.decision, good!.outputs['decision-seconds']]);
  const stepped = await steppedCanary(stableImage === a ? b : a);
  stableImage = stableImage === a ? b : a;
  const crash = await rollout(a, ['--patch', path.join(work, 'crash.yaml')]);
  rows.push(['bad canary: crash-loops at start', crash.outputs.decision ?? `exit: ${crash.log.slice(-200)}`, crash.outputs['decision-seconds']]);
  // a canary that fails in the middle of its bake: its server is stopped at a known moment
  const killed = rollout(a);
  while (!/\] bake /.test(killed.log())) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, Math.min(3000, (bakeS * 1000) / 3)));
  // this canary's running pod (earlier canaries' pods may still be terminating)
  const pod = pods('track=canary').find((p) => !p.metadata.deletionTimestamp && (p.status.containerStatuses ?? []).some((c) => c.ready))!.metadata.name;
  const tKill = Date.now();
  kubectl(['-n', ns, 'exec', pod, '--', 'sh', '-c', 'kill 1']);
  const killedRes = await killed;
  const detectS = (Date.now() - tKill) / 1000;
  rows.push(['bad canary: server stopped during the bake', killedRes.outputs.decision, killedRes.outputs['decision-seconds']]);
  kubectl(['delete', 'namespace', ns, '--wait=false']);

  console.log(`rollout benchmark: lenet, 2 replicas (1 canary), bake-time ${bakeS} s, rollout-timeout ${timeoutS} s, lab cluster (real kubelet)`);
  for (const [what, d, s] of rows) console.log(`  ${what.padEnd(50)} ${d.padEnd(12)} apply→decision ${s} s`);
  console.log(`  good canary: decision − bake time = ${(Number(good!.outputs['decision-seconds']) - bakeS).toFixed(1)} s (goal ≤ 10 s)`);
  console.log('  requests through the Service while a good canary is promoted (4 loops, until the replaced pods exited + 3 s; goal: 0 failed):');
  for (const [i, l] of lost.entries()) {
    console.log(`    promotion ${i + 1} (${l.decision}): sent ${l.sent}, ok ${l.ok}, failed ${l.failed.length} in ${l.seconds.toFixed(1)} s`);
    for (const f of l.failed.slice(0, 5)) console.log(`      ${f.slice(0, 240)}`);
  }
  console.log(`  four-step canary (canary-steps 10,25,50,100, compare-with-stable auto): ${stepped.decision} after ${stepped.decisionS} s`);
  for (const st of stepped.steps)
    console.log(`    ${st.name.padEnd(48)} ${st.seconds.toFixed(1)} s = bake + ${(st.seconds - bakeS).toFixed(1)} s (goal ≤ 5 s)`);
  console.log(
    `    requests through the Service during the four steps and the promotion: sent ${stepped.load.sent}, ok ${stepped.load.ok}, failed ${stepped.load.failed.length} in ${stepped.load.seconds.toFixed(1)} s (goal 0 failed)`,
  );
  for (const f of stepped.load.failed.slice(0, 5)) console.log(`      ${f.slice(0, 240)}`);
  console.log(`    analysis: ${stepped.analysis}`);
  console.log(
    `  server stopped during the bake → decision (process exit): ${detectS.toFixed(1)} s (probe period: readiness 2 s, startup 1 s; the bake checks once a second)`,
  );
  console.log(`  reason: ${killedRes.outputs.reason.split('\n')[0]}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
