import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as http from 'http';
import { spawnSync, spawn } from 'child_process';
import { PNG } from 'pngjs';
import * as ort from 'onnxruntime-node';
import { imageToTensor, GOOGLENET_PREPROCESS } from '../src/protocol/pixels';
import { runCli } from './helpers/cli';
import { fetchManifest } from '../src/shared/registry';
import { ORACLE, REPO, caffeRoot, tmpDir } from './helpers/caffe';
import { LAB, requireLab, docker } from './helpers/lab';
import { labDescribe } from './helpers/needs';
import { composeServe } from './helpers/compose';

// Real engine, real buildx, real registry (lab/up.sh docker). Slow by nature: one image build is ~10 s.
jest.setTimeout(300_000);

const describeLab = labDescribe(['docker', 'registry', 'node24']);

const run = runCli;

function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

function getJson(url: string): Promise<any> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(JSON.parse(b)));
      })
      .on('error', reject);
  });
}

async function waitReady(url: string, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    try {
      if ((await get(`${url}/v2/health/ready`)) === 200) return;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} not ready`);
}

/** Run the serving image (imageA, defined below) as container `name` with extra `docker run` flags, ready, then remove it. */
async function withServer(name: string, flags: string[], env: NodeJS.ProcessEnv, fn: (url: string, name: string) => Promise<void>): Promise<void> {
  docker(['run', '-d', '--name', name, '-p', '127.0.0.1::8000', ...flags, imageA], env);
  try {
    const port = docker(['port', name, '8000/tcp']).trim().split('\n')[0].split(':').pop();
    const url = `http://127.0.0.1:${port}`;
    await waitReady(url);
    await fn(url, name);
  } finally {
    docker(['rm', '-f', name]);
  }
}

const GOOGLENET = path.join(ORACLE, 'models/bvlc_googlenet');
const repo = `${LAB.registry}/modelship-test/googlenet-${process.pid}`;
const work = tmpDir('modelship-image-');
const modelA = path.join(work, 'a/googlenet.onnx');
const modelB = path.join(work, 'b/googlenet.onnx');
let imageA = '';
let imageB = '';

beforeAll(async () => {
  requireLab();
  // the pipeline as it runs: convert, then compile (ORT-optimized, parity re-checked); the image serves the artifact
  const converted = path.join(work, 'googlenet.onnx');
  expect(
    (
      await run([
        'convert',
        '--prototxt',
        path.join(GOOGLENET, 'deploy.prototxt'),
        '--caffemodel',
        path.join(GOOGLENET, 'weights.caffemodel'),
        '--out',
        converted,
        '--reference',
        GOOGLENET,
      ])
    ).code,
  ).toBe(0);
  const compiled = await run(['compile', '--model', converted, '--artifact', modelA, '--reference', GOOGLENET, '--json']);
  expect(compiled.code).toBe(0);
  expect(compiled.json()['compile-parity']).toBe('pass');
  // the "wrong model": the same net with one classifier bias moved, which changes the answer for class 7
  const T = caffeRoot().lookupType('caffe.NetParameter');
  const net = T.decode(fs.readFileSync(path.join(GOOGLENET, 'weights.caffemodel'))) as any;
  net.layer.find((l: any) => l.name === 'loss3/classifier').blobs[1].data[7] += 20;
  const wrong = path.join(work, 'wrong.caffemodel');
  fs.writeFileSync(wrong, T.encode(net).finish());
  expect((await run(['convert', '--prototxt', path.join(GOOGLENET, 'deploy.prototxt'), '--caffemodel', wrong, '--out', modelB])).code).toBe(0);
});

describeLab('image and smoke against the real engine, buildx and registry', () => {
  test('convert → compile → build → push → pull back by digest → smoke passes (golden outputs, latency)', async () => {
    const r = await run([
      'image',
      '--image',
      repo,
      '--model',
      modelA,
      '--model-name',
      'googlenet',
      '--base-image',
      LAB.baseImage,
      '--revision',
      'a'.repeat(40),
      '--ref',
      'refs/heads/feature/new-model',
      '--parity',
      'pass',
      '--compose-file',
      path.join(work, 'docker-compose.yml'),
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/error:/);
    expect(r.code).toBe(0);
    const o = r.json();
    expect(o.image).toMatch(new RegExp(`^${repo.replace(/[./]/g, '\\$&')}@sha256:[0-9a-f]{64}$`));
    expect(o.tags.split('\n')).toEqual([`${repo}:feature-new-model`, `${repo}:sha-aaaaaaa`]);
    const meta = JSON.parse(o.metadata);
    expect(meta.labels).toMatchObject({
      'org.opencontainers.image.revision': 'a'.repeat(40),
      'dev.modelship.parity': 'pass',
      'dev.modelship.model.name': 'googlenet',
    });
    imageA = o.image;
    // the image as pushed: OCI labels, non-root user, the model layer last
    docker(['pull', imageA]);
    const cfg = JSON.parse(docker(['image', 'inspect', imageA]))[0].Config;
    expect(cfg.User).toBe('10001:10001');
    expect(cfg.Labels['org.opencontainers.image.created']).toMatch(/^\d{4}-\d\d-\d\dT/);
    // the serving port, KServe v2 over gRPC and the metrics-only port
    expect(cfg.ExposedPorts).toEqual({ '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {} });
    expect(cfg.Env.join('\n')).not.toMatch(/KEY/);

    const s = await run([
      'smoke',
      '--image',
      imageA,
      '--model-name',
      'googlenet',
      '--reference',
      GOOGLENET,
      '--requests',
      '40',
      '--concurrency',
      '4',
      '--json',
    ]);
    expect(s.stderr).not.toMatch(/error:/);
    expect(s.code).toBe(0);
    const so = s.json();
    expect(so.smoke).toBe('pass');
    for (const k of ['latency-p50-ms', 'latency-p95-ms', 'latency-p99-ms', 'throughput-rps']) expect(Number(so[k])).toBeGreaterThan(0);
    expect(Number(so['latency-p50-ms'])).toBeLessThanOrEqual(Number(so['latency-p99-ms']));
    expect(docker(['ps', '-a', '--filter', 'label=dev.modelship.smoke=true', '--format', '{{.Names}}']).trim()).toBe('');
  });

  test('a wrong model fails smoke with the diff and the container log; the container is removed', async () => {
    const r = await run([
      'image',
      '--image',
      repo,
      '--model',
      modelB,
      '--model-name',
      'googlenet',
      '--base-image',
      LAB.baseImage,
      '--revision',
      'b'.repeat(40),
      '--ref',
      'refs/heads/feature/new-model',
      '--compose-file',
      path.join(work, 'b.yml'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    imageB = r.json().image;
    const s = await run(['smoke', '--image', imageB, '--model-name', 'googlenet', '--reference', GOOGLENET, '--requests', '5']);
    expect(s.code).toBe(1);
    expect(s.stdout).toMatch(/^smoke=fail$/m);
    expect(s.stderr).toMatch(/output "prob" at batch 1 differs from the reference: max \|Δ\| [0-9.e+-]+ > 1\.000e-3; item 0: top-5 \[7,/);
    expect(s.stderr).toMatch(/container log \(last lines\):\n[\s\S]*\[modelship serve\] listening on/);
    expect(docker(['ps', '-a', '--filter', 'label=dev.modelship.smoke=true', '--format', '{{.Names}}']).trim()).toBe('');
  });

  test('a model-only rebuild changes exactly one layer digest in the pushed manifest (the last)', async () => {
    const a = await fetchManifest(imageA);
    const b = await fetchManifest(imageB);
    expect(a.layers.length).toBe(b.layers.length);
    const differing = a.layers.map((l, i) => (l.digest !== b.layers[i].digest ? i : -1)).filter((i) => i >= 0);
    expect(differing).toEqual([a.layers.length - 1]);
  });

  test('API key: 401 without it, 200 with it; health stays open', async () => {
    await withServer(
      `modelship-auth-${process.pid}`,
      ['-e', 'MODELSHIP_API_KEY'],
      { ...process.env, MODELSHIP_API_KEY: 'k3y-for-tests' },
      async (url, name) => {
        expect(await get(`${url}/v2/models/googlenet`)).toBe(401);
        expect(await get(`${url}/v2/models/googlenet`, { authorization: 'Bearer k3y-for-tests' })).toBe(200);
        expect(docker(['inspect', '-f', '{{json .Config.Cmd}} {{json .Args}}', name])).not.toContain('k3y-for-tests');
      },
    );
    const s = await run(['smoke', '--image', imageA, '--model-name', 'googlenet', '--api-key', 'k3y-for-tests', '--reference', GOOGLENET, '--requests', '0']);
    expect(s.code).toBe(0);
  });

  test('in a container limited to one CPU the server runs one onnxruntime thread (cgroup quota read inside)', async () => {
    await withServer(`modelship-cpus-${process.pid}`, ['--cpus', '1'], process.env, async (url, name) => {
      const meta = await getJson(`${url}/v2/models/googlenet`);
      // this machine has more than one CPU: the figure comes from the container's CFS quota, not from the host
      expect(os.availableParallelism()).toBeGreaterThan(1);
      expect(meta.parameters.intra_op_threads).toBe(1);
      const logs = spawnSync('docker', ['logs', name], { encoding: 'utf8' });
      expect(logs.stdout + logs.stderr).toMatch(/with 1 intra-op thread \(cgroup v[12] [a-z_.]+: 1 CPU\)/);
    });
  });

  test('encrypted model: the right key serves, a wrong key refuses to start (and smoke says why)', async () => {
    const key = 'ab'.repeat(32);
    const r = await run([
      'image',
      '--image',
      repo,
      '--model',
      modelA,
      '--model-name',
      'googlenet',
      '--base-image',
      LAB.baseImage,
      '--revision',
      'c'.repeat(40),
      '--ref',
      'refs/pull/7/merge',
      '--encrypt-model',
      '--model-key',
      key,
      '--compose-file',
      path.join(work, 'c.yml'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    const img = r.json().image;
    expect(r.json().tags.split('\n')).toEqual([`${repo}:pr-7`, `${repo}:sha-ccccccc`]);
    // the key is in no layer and no config
    const saved = path.join(work, 'img.tar');
    docker(['save', '-o', saved, img]);
    expect(spawnSync('grep', ['-c', key, saved]).stdout.toString().trim()).toBe('0');
    const ok = await run(['smoke', '--image', img, '--model-name', 'googlenet', '--model-key', key, '--reference', GOOGLENET, '--requests', '0']);
    expect(ok.code).toBe(0);
    const bad = await run([
      'smoke',
      '--image',
      img,
      '--model-name',
      'googlenet',
      '--model-key',
      'cd'.repeat(32),
      '--reference',
      GOOGLENET,
      '--requests',
      '0',
      '--ready-timeout',
      '30',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/the container exited before it became ready/);
    expect(bad.stderr).toMatch(/cannot decrypt the model: wrong key/);
  });

  labDescribe(['compose'])('the compose file', () => {
    test('docker-compose.yml from the image stage serves the image by digest, healthy, on its three ports (Debian docker-compose)', async () => {
      const compose = path.join(work, 'docker-compose.yml');
      expect(fs.readFileSync(compose, 'utf8')).toContain(imageA);
      // (test/compose.lab.test.ts does the same for both runtimes with LeNet)
      const r = await composeServe(compose, `mscompose${process.pid}`);
      expect(r.ps).toMatch(/Up \(healthy\)/);
      expect({ ready: r.ready, grpcReady: r.grpcReady, metrics: r.metrics.status }).toEqual({ ready: 200, grpcReady: true, metrics: 200 });
    });
  });

  test('a sample image must give the expected top-1', async () => {
    const png = new PNG({ width: 300, height: 260 });
    for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 7919) % 251;
    const file = path.join(work, 'sample.png');
    fs.writeFileSync(file, PNG.sync.write(png));
    // the expected class, computed in-process from the same preprocessing and model
    const session = await ort.InferenceSession.create(fs.readFileSync(modelA));
    const x = imageToTensor(fs.readFileSync(file), 224, 224, GOOGLENET_PREPROCESS);
    const prob = (await session.run({ data: new ort.Tensor('float32', x, [1, 3, 224, 224]) })).prob.data as Float32Array;
    const top1 = prob.indexOf(Math.max(...prob));
    const ok = await run(['smoke', '--image', imageA, '--model-name', 'googlenet', '--sample-image', file, '--expected-top1', String(top1), '--requests', '0']);
    expect(ok.code).toBe(0);
    const bad = await run([
      'smoke',
      '--image',
      imageA,
      '--model-name',
      'googlenet',
      '--sample-image',
      file,
      '--expected-top1',
      String((top1 + 1) % 1000),
      '--requests',
      '0',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`the sample image gave top-1 ${top1} \\(0\\.\\d{4}\\), expected ${(top1 + 1) % 1000}`));
  });

  test('a cancelled smoke run (SIGTERM) still removes its container', async () => {
    const child = spawn(
      process.execPath,
      [path.join(REPO, 'dist/index.js'), 'smoke', '--image', imageA, '--model-name', 'googlenet', '--reference', GOOGLENET, '--requests', '100000'],
      { stdio: 'ignore' },
    );
    const running = () => docker(['ps', '-a', '--filter', 'label=dev.modelship.smoke=true', '--format', '{{.Names}}']).trim();
    for (let i = 0; i < 120 && running() === ''; i++) await new Promise((r) => setTimeout(r, 250));
    expect(running()).not.toBe('');
    await new Promise((r) => setTimeout(r, 2000)); // inside the run
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 143 : null))));
    child.kill('SIGTERM');
    await exited;
    expect(running()).toBe('');
  });

  test('smoke refuses an image that is not pinned by digest, before running anything', async () => {
    const s = await run(['smoke', '--image', `${repo}:latest`]);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/smoke runs the pushed image by digest/);
  });
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
  void REPO;
});
