// Benchmark: the deploy workflow end to end through a GitHub Actions engine (nektos/act, .tools/bin/act) on the lab:
// the caller template workflows/deploy-caller.yml calling .github/workflows/deploy.yml (build → smoke → rollout)
// with LeNet, bake 10 s, one replica on the real node. Baseline in the same run: the same five stages in one
// process, `modelship pipeline` with the same inputs (the engine's and the jobs' overhead is the difference).
//   npx tsx bench/act-deploy.ts [warm-rounds]   (needs lab/up.sh all; runs the committed dist/ as org/modelship@v1)
// cold: a fresh HOME for act (no cached actions, an empty runner tool cache: the Node.js release is downloaded from the
//       local mirror), a new image repository and namespace (nothing to reuse in the registry, a first deploy). The
//       Docker engine's build cache is shared and not cleared (clearing it would delete what this bench did not make).
// warm: the same HOME, repository and namespace, a new commit of the caller: a canary against the running stable.
// Goal: warm deploy ≤ 45 s wall.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { actionCheckout, callerFromTemplate, callerRepo, lenetFiles, LENET_WITH, LAB_ROLLOUT_WITH, runAct, standIns, requireAct } from '../test/helpers/act';
import { releaseMirror } from '../test/helpers/node-release';
import { DEFAULT_NODE_VERSION } from '../src/image/node';

const REPO = path.resolve(__dirname, '..');
const ORACLE = path.resolve(REPO, '../shared/caffe-oracle/models/lenet');
const LENET = fs.existsSync(ORACLE) ? ORACLE : path.join(REPO, 'test/fixtures/caffe/lenet');
const KUBECONFIG = process.env.KUBECONFIG ?? '/var/lib/modelship-lab/pki/admin.kubeconfig';
const KUBECTL = process.env.LAB_KUBECTL ?? '/var/lib/modelship-lab/bin/kubectl';
const registry = process.env.LAB_REGISTRY ?? '127.0.0.1:5000';
const baseImage = process.env.LAB_BASE_IMAGE ?? 'local/debian:bookworm';
const warmRounds = Number(process.argv[2] ?? 2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  requireAct();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-act-'));
  const tag = `${Date.now() % 100000}`;
  const ns = `bench-act-${tag}`;
  const actionDir = actionCheckout(path.join(work, 'modelship'));
  const stand = standIns(path.join(work, 'stand-ins'));
  const mirror = await releaseMirror(DEFAULT_NODE_VERSION);
  const home = path.join(work, 'home');
  fs.mkdirSync(home);
  const repo = path.join(work, 'models');
  const withValues = {
    ...LENET_WITH,
    image: `${registry}/bench/lenet-${tag}`,
    'model-name': 'lenet',
    'base-image': baseImage,
    'node-mirror': mirror.url,
    gpu: false,
    environment: 'production',
    namespace: ns,
    replicas: 1,
    ...LAB_ROLLOUT_WITH,
  };
  let sha = callerRepo(repo, lenetFiles(LENET), { 'deploy.yml': callerFromTemplate('deploy-caller.yml', 'deploy', withValues) });
  const deploy = async () => {
    const r = await runAct({
      repo,
      workflow: 'deploy.yml',
      event: 'push',
      payload: { ref: 'refs/heads/main', after: sha },
      actionDir,
      standIns: stand,
      secrets: { GITHUB_TOKEN: 'bench', KUBECONFIG: fs.readFileSync(KUBECONFIG, 'utf8') },
      work,
      home,
    });
    if (r.code !== 0 || r.needs.deploy?.outputs.decision !== 'promoted')
      throw new Error(`act deploy failed (${r.code}, ${JSON.stringify(r.needs)}):\n${r.log.slice(-4000)}`);
    return r.seconds;
  };
  // the same inputs in one process: modelship pipeline (convert → compile → image → smoke → rollout)
  // (spawned, not spawnSync: the Node.js mirror answers from this process's event loop)
  const pipeline = async () => {
    const t0 = Date.now();
    const child = spawn(
      process.execPath,
      [
        path.join(REPO, 'dist/index.js'),
        'pipeline',
        '--prototxt',
        path.join(repo, LENET_WITH.prototxt),
        '--caffemodel',
        path.join(repo, LENET_WITH.caffemodel),
        '--reference',
        path.join(repo, LENET_WITH.reference),
        '--out',
        path.join(work, 'model.onnx'),
        '--image',
        `${registry}/bench/lenet-${tag}-cli`,
        '--model-name',
        'lenet',
        '--base-image',
        baseImage,
        '--node-mirror',
        mirror.url,
        '--namespace',
        `${ns}-cli`,
        '--replicas',
        '1',
        '--node-selector',
        'realnode=true',
        '--tolerations',
        LAB_ROLLOUT_WITH.tolerations,
        '--cpu',
        '200m',
        '--memory',
        '512Mi',
        '--bake-time',
        '10',
        '--revision',
        sha,
        '--ref',
        'refs/heads/main',
        '--compose-file',
        path.join(work, 'compose.yml'),
        '--json',
      ],
      { env: { ...process.env, KUBECONFIG }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    if (code !== 0) throw new Error(`pipeline failed: ${stderr.slice(-3000)}`);
    return (Date.now() - t0) / 1000;
  };
  try {
    const cold = await deploy();
    console.log(`cold act deploy: ${cold.toFixed(1)} s`);
    const warm: number[] = [];
    const cli: number[] = [];
    await pipeline(); // the CLI's own first deploy (its namespace and repository), not counted
    for (let i = 0; i < warmRounds; i++) {
      sha = callerRepo(repo, { 'models/lenet/ROUND': `${i}\n` }, {});
      warm.push(await deploy());
      cli.push(await pipeline());
      console.log(`round ${i + 1}: act ${warm[i].toFixed(1)} s, pipeline ${cli[i].toFixed(1)} s`);
    }
    const w = median(warm);
    const c = median(cli);
    console.log(
      `\nwarm act deploy median ${w.toFixed(1)} s (goal ≤ 45 s: ${w <= 45 ? 'met' : 'missed'}); modelship pipeline (same stages, one process) ${c.toFixed(1)} s; ratio ${(w / c).toFixed(2)}×; cold ${cold.toFixed(1)} s`,
    );
  } finally {
    await mirror.close();
    for (const n of [ns, `${ns}-cli`]) spawnSync(KUBECTL, ['delete', 'namespace', n, '--wait=false'], { env: { ...process.env, KUBECONFIG } });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
