// Benchmark: time from the first apply to the rollout decision on the lab's real cluster, for a good canary and for
// bad ones, next to the configured bake time and timeout.
//   npx tsx bench/rollout.ts [bake-seconds]      (needs lab/up.sh: docker + k8s; runs the bundle dist/index.js)
// Goals: a good canary decides within bake time + 10 s; a bad canary is detected within one probe period of its
// failure. The "killed during the bake" case stops the canary's server (kill 1 in the pod) at a known moment and
// measures the time from that moment to the decision.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync, spawn } from 'child_process';

const REPO = path.resolve(__dirname, '..');
const LENET = path.join(REPO, 'test/fixtures/caffe/lenet');
const KUBECTL = process.env.LAB_KUBECTL ?? '/var/lib/modelship-lab/bin/kubectl';
const registry = process.env.LAB_REGISTRY ?? '127.0.0.1:5000';
const bakeS = Number(process.argv[2] ?? 10);
const timeoutS = 120;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-rollout-'));
const ns = `bench-rollout-${Date.now() % 100000}`;

const cli = (args: string[]) => JSON.parse(execFileSync(process.execPath, [path.join(REPO, 'dist/index.js'), ...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as Record<string, string>;
const kubectl = (args: string[]) => execFileSync(KUBECTL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function rollout(image: string, extra: string[] = []): Promise<{ outputs: Record<string, string>; log: string; child: ReturnType<typeof spawn> }> & { child: ReturnType<typeof spawn>; log: () => string } {
  const patch = extra.includes('--patch') ? [] : ['--patch', path.join(work, 'realnode.yaml')];
  const child = spawn(process.execPath, [path.join(REPO, 'dist/index.js'), 'rollout', '--image', image, '--model-name', 'lenet', '--app', 'lenet', '--namespace', ns, '--replicas', '2', '--bake-time', String(bakeS), '--rollout-timeout', String(timeoutS), '--reference', LENET, '--cpu', '400m', '--memory', '256Mi', ...patch, ...extra, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let log = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (log += d));
  const p = new Promise<{ outputs: Record<string, string>; log: string; child: typeof child }>((resolve) => child.on('close', () => resolve({ outputs: JSON.parse(out || '{}'), log, child })));
  return Object.assign(p, { child, log: () => log });
}

async function main(): Promise<void> {
  fs.writeFileSync(path.join(work, 'realnode.yaml'), 'kind: Deployment\nspec:\n  template:\n    spec:\n      nodeSelector: {realnode: "true"}\n      tolerations: [{key: realnode, operator: Exists, effect: NoSchedule}]\n      dnsPolicy: Default\n');
  fs.writeFileSync(path.join(work, 'crash.yaml'), fs.readFileSync(path.join(work, 'realnode.yaml'), 'utf8') + '      containers:\n      - name: model-server\n        env:\n        - {name: MODELSHIP_MODEL, value: /models/missing.onnx}\n');
  const onnx = path.join(work, 'lenet.onnx');
  cli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', path.join(LENET, 'weights.caffemodel'), '--out', onnx]);
  const repo = `${registry}/modelship-bench/rollout`;
  const img = (rev: string) => cli(['image', '--image', repo, '--model', onnx, '--model-name', 'lenet', '--base-image', process.env.LAB_BASE_IMAGE ?? 'local/debian:bookworm', '--revision', rev.repeat(40), '--ref', 'refs/heads/bench', '--compose-file', path.join(work, 'c.yml')]).image;
  const a = img('a');
  const b = img('b');
  const rows: [string, string, string][] = [];
  const first = await rollout(a);
  rows.push(['first deploy (canary verified, then stable created)', first.outputs.decision, first.outputs['decision-seconds']]);
  const good = await rollout(b);
  rows.push(['good canary', good.outputs.decision, good.outputs['decision-seconds']]);
  const crash = await rollout(a, ['--patch', path.join(work, 'crash.yaml')]);
  rows.push(['bad canary: crash-loops at start', crash.outputs.decision ?? `exit: ${crash.log.slice(-200)}`, crash.outputs['decision-seconds']]);
  // a canary that fails in the middle of its bake: its server is stopped at a known moment
  const killed = rollout(a);
  while (!/\] bake /.test(killed.log())) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, Math.min(3000, (bakeS * 1000) / 3)));
  const pod = kubectl(['-n', ns, 'get', 'pods', '-l', 'track=canary', '-o', 'jsonpath={.items[0].metadata.name}']);
  const tKill = Date.now();
  kubectl(['-n', ns, 'exec', pod, '--', 'sh', '-c', 'kill 1']);
  const killedRes = await killed;
  const detectS = (Date.now() - tKill) / 1000;
  rows.push(['bad canary: server stopped during the bake', killedRes.outputs.decision, killedRes.outputs['decision-seconds']]);
  kubectl(['delete', 'namespace', ns, '--wait=false']);

  console.log(`rollout benchmark: lenet, 2 replicas (1 canary), bake-time ${bakeS} s, rollout-timeout ${timeoutS} s, lab cluster (real kubelet)`);
  for (const [what, d, s] of rows) console.log(`  ${what.padEnd(50)} ${d.padEnd(12)} apply→decision ${s} s`);
  console.log(`  good canary: decision − bake time = ${(Number(good.outputs['decision-seconds']) - bakeS).toFixed(1)} s (goal ≤ 10 s)`);
  console.log(`  server stopped during the bake → decision (process exit): ${detectS.toFixed(1)} s (probe period: readiness 2 s, startup 1 s; the bake checks once a second)`);
  console.log(`  reason: ${killedRes.outputs.reason.split('\n')[0]}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
