import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import * as ort from 'onnxruntime-node';
import { runCli } from './helpers/cli';
import { ORACLE, tmpDir } from './helpers/caffe';
import { LAB, requireLab, docker } from './helpers/lab';
import { buildTritonLabImage, tritonClientCheck } from './helpers/triton-lab';
import { fetchManifest } from '../src/shared/registry';
import { imageToTensor, GOOGLENET_PREPROCESS } from '../src/protocol/pixels';
import { parseTritonConfig } from '../src/image/triton-config';
import { tritonCommand } from '../src/image/triton';
import { detectServer, modelPlacement } from '../src/protocol/kserve-client';
import { httpTransport } from '../src/shared/golden';
import { labDescribe } from './helpers/needs';

// runtime: triton end to end on the lab: the image stage builds FROM the lab's REAL Triton Inference Server image
// (test/triton-lab/: Triton 2.51.0 from PyPI's nvidia-pytriton, laid out like nvcr.io/nvidia/tritonserver:24.10-py3;
// ONNX models run through its Python backend, since the wheel has no ONNX Runtime backend — everything else of the
// generated config.pbtxt is loaded and enforced by Triton itself), then smoke runs the pushed image by digest and
// asks it only what Triton defines. The TensorRT refusals use small lab images whose config declares a TensorRT
// version, as NVIDIA's images do (a plan itself needs a GPU: its load is gpu-check.sh's).
jest.setTimeout(300_000);

const describeLab = labDescribe(['docker', 'registry', 'node24']);

const GOOGLENET = path.join(ORACLE, 'models/bvlc_googlenet');
const work = tmpDir('modelship-image-triton-');
const repo = `${LAB.registry}/modelship-test/googlenet-triton-${process.pid}`;
const converted = path.join(work, 'googlenet.onnx');
/** what the pipeline serves: the converted model optimized by compile (ONNX Runtime 1.30; Triton 24.10 runs 1.19) */
const onnx = path.join(work, 'googlenet.ort.onnx');
let triton = '';
let image = '';

function cmd(args: string[]): Promise<{ code: number; stdout: string; stderr: string; json: () => any }> {
  return runCli(args);
}

/** a small lab image whose config declares a TensorRT version (TRT_VERSION, as NVIDIA's tritonserver images do) */
function trtImage(version: string | undefined): string {
  const ref = `${LAB.registry}/modelship-test/trt-serving-${process.pid}:${version ?? 'none'}`;
  const ctx = path.join(work, `trt-${version ?? 'none'}`);
  fs.mkdirSync(ctx, { recursive: true });
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${LAB.busybox}\n${version ? `ENV TRT_VERSION=${version}\n` : ''}ENV TRITON_SERVER_VERSION=2.51.0\n`);
  docker(['build', '-q', '--network', 'none', '-t', ref, ctx]);
  docker(['push', '-q', ref]);
  return ref;
}

/** a stand-in plan file with the metadata compile writes (no GPU here to build a real one) */
function fakePlan(dir: string, tensorrtVersion: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const plan = path.join(dir, 'googlenet.plan');
  fs.writeFileSync(plan, Buffer.from('not a real engine: refused or copied before any GPU could read it'));
  const sig = (name: string, rest: number[]) => ({ name, shape: ['N', ...rest], elemType: 1 });
  fs.writeFileSync(
    `${plan}.json`,
    JSON.stringify({
      format: 'tensorrt',
      inputs: [sig('data', [3, 224, 224])],
      outputs: [sig('prob', [1000])],
      tensorrt: {
        tensorrtVersion,
        computeCapability: '9.0',
        gpu: 'NVIDIA H200',
        tensorrtImage: `nvcr.io/nvidia/tensorrt:24.10-py3@sha256:${'e'.repeat(64)}`,
        tritonImage: 'nvcr.io/nvidia/tritonserver:24.10-py3',
        profile: { min: 1, opt: 4, max: 16 },
      },
    }),
  );
  return plan;
}

beforeAll(async () => {
  requireLab();
  triton = await buildTritonLabImage();
  const c = await cmd([
    'convert',
    '--prototxt',
    path.join(GOOGLENET, 'deploy.prototxt'),
    '--caffemodel',
    path.join(GOOGLENET, 'weights.caffemodel'),
    '--out',
    converted,
  ]);
  expect(c.code).toBe(0);
  const o = await cmd(['compile', '--model', converted, '--artifact', onnx]);
  expect(o.code).toBe(0);
});

describeLab('runtime triton: the image', () => {
  test('FROM the Triton image pinned by the digest it resolves to, the model repository with the generated config as the last layer', async () => {
    const r = await cmd([
      'image',
      '--image',
      repo,
      '--model',
      onnx,
      '--model-name',
      'googlenet',
      '--runtime',
      'triton',
      '--triton-image',
      triton,
      '--revision',
      'a'.repeat(40),
      '--compose-file',
      path.join(work, 'compose.yml'),
      '--json',
    ]);
    if (r.code !== 0) throw new Error(r.stderr.slice(-3000));
    const out = r.json();
    image = out.image;
    const meta = JSON.parse(out.metadata);
    // the digest the Triton tag points to in the registry now is what the image was built FROM, and it is recorded
    const baseDigest = docker(['buildx', 'imagetools', 'inspect', triton, '--format', '{{json .Manifest}}']);
    const digest = JSON.parse(baseDigest).digest as string;
    expect(meta.runtime).toBe('triton');
    expect(meta.baseImage).toBe(`${triton}@${digest}`);
    expect(meta.labels).toMatchObject({
      'dev.modelship.runtime': 'triton',
      'org.opencontainers.image.base.name': triton,
      'org.opencontainers.image.base.digest': digest,
      'dev.modelship.triton.platform': 'onnxruntime_onnx',
    });
    // the base image's layers, then exactly one more: the model repository
    const mine = await fetchManifest(image);
    const base = await fetchManifest(`${triton.replace(/:[^:/]+$/, '')}@${digest}`);
    expect(mine.layers.slice(0, base.layers.length).map((l) => l.digest)).toEqual(base.layers.map((l) => l.digest));
    expect(mine.layers).toHaveLength(base.layers.length + 1);
    expect(mine.layers[mine.layers.length - 1].size).toBeGreaterThan(0.5 * fs.statSync(onnx).size);
    // how it starts and as whom
    docker(['pull', '-q', image]);
    const cfg = JSON.parse(docker(['image', 'inspect', image, '--format', '{{json .Config}}']));
    expect(cfg.Cmd).toEqual(tritonCommand());
    expect(cfg.User).toBe('1000:1000');
    expect(Object.keys(cfg.ExposedPorts).sort()).toEqual(['8000/tcp', '8001/tcp', '8002/tcp']);
    // the generated config in the image: valid against Triton's schema, ONNX Runtime platform, batch dim left out
    const text = docker(['run', '--rm', '--network', 'none', image, 'cat', '/models/googlenet/config.pbtxt']);
    const parsed = parseTritonConfig(text, 'config.pbtxt') as any;
    expect(parsed).toMatchObject({ name: 'googlenet', platform: 'onnxruntime_onnx', max_batch_size: 32 });
    expect(parsed.input).toEqual([expect.objectContaining({ name: 'data', data_type: 'TYPE_FP32', dims: [3, 224, 224] })]);
    expect(parsed.output).toEqual([expect.objectContaining({ name: 'prob', data_type: 'TYPE_FP32', dims: [1000] })]);
    expect(parsed.instance_group).toEqual([expect.objectContaining({ kind: 'KIND_CPU', count: 1 })]);
    expect(parsed.dynamic_batching).toEqual(expect.objectContaining({ max_queue_delay_microseconds: 1000 }));
    const ls = docker(['run', '--rm', '--network', 'none', image, 'ls', '-l', '/models/googlenet/1']);
    expect(ls).toMatch(new RegExp(`${fs.statSync(onnx).size} .* model\\.onnx`));
    // the compose file serves it by digest, without modelship's settings
    const compose = fs.readFileSync(path.join(work, 'compose.yml'), 'utf8');
    expect(compose).toContain(image);
    expect(compose).not.toMatch(/environment|MODELSHIP_PROVIDER/);
  });

  test('smoke against the real Triton: runtime learnt from GET /v2, golden requests, a sample image through /infer, latency', async () => {
    expect(image).not.toBe('');
    const png = new PNG({ width: 320, height: 240 });
    for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 7919) % 251;
    const sample = path.join(work, 'sample.png');
    fs.writeFileSync(sample, PNG.sync.write(png));
    // the expected class, computed in-process with the same preprocessing
    const session = await ort.InferenceSession.create(fs.readFileSync(onnx));
    const x = imageToTensor(fs.readFileSync(sample), 224, 224, GOOGLENET_PREPROCESS);
    const prob = (await session.run({ data: new ort.Tensor('float32', x, [1, 3, 224, 224]) })).prob.data as Float32Array;
    const top1 = prob.indexOf(Math.max(...prob));
    const ok = await cmd([
      'smoke',
      '--image',
      image,
      '--runtime',
      'triton',
      '--model-name',
      'googlenet',
      '--reference',
      GOOGLENET,
      '--sample-image',
      sample,
      '--expected-top1',
      String(top1),
      '--requests',
      '20',
      '--concurrency',
      '2',
      '--ready-timeout',
      '120',
      '--json',
    ]);
    if (ok.code !== 0) throw new Error(ok.stderr.slice(-3000));
    const o = ok.json();
    expect(o.smoke).toBe('pass');
    expect(Number(o['throughput-rps'])).toBeGreaterThan(0);
    expect(ok.stderr).toMatch(/the server is triton 2\.51\.0/);
    // the same image smoked as if it were modelship's: the server says what it is, and smoke says it is not that
    const wrong = await cmd(['smoke', '--image', image, '--model-name', 'googlenet', '--reference', GOOGLENET, '--requests', '0', '--ready-timeout', '120']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/the image was meant for runtime modelship, but its server says it is triton 2\.51\.0 \(GET \/v2\)/);
    // a wrong expectation for the sample fails, naming what came back
    const bad = await cmd([
      'smoke',
      '--image',
      image,
      '--runtime',
      'triton',
      '--model-name',
      'googlenet',
      '--sample-image',
      sample,
      '--expected-top1',
      String((top1 + 1) % 1000),
      '--requests',
      '0',
      '--ready-timeout',
      '120',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`the sample image gave top-1 ${top1} \\(`));
  });

  test("the built image, run: Triton's own client agrees with Caffe; the model's placement read from Triton's model configuration", async () => {
    const name = `ms-triton-${process.pid}`;
    docker(['run', '-d', '--name', name, '-p', '127.0.0.1::8000', image]);
    try {
      const port = docker(['port', name, '8000/tcp']).trim().split('\n')[0].split(':').pop();
      const url = `http://127.0.0.1:${port}`;
      const t = httpTransport(url);
      for (let i = 0; ; i++) {
        const r = await t('/v2/health/ready').catch(() => ({ status: 0 }));
        if (r.status === 200) break;
        if (i > 480) throw new Error(`not ready: ${docker(['logs', '--tail', '30', name])}`);
        await new Promise((res) => setTimeout(res, 250));
      }
      const server = await detectServer(t);
      expect(server).toMatchObject({ runtime: 'triton', name: 'triton', version: '2.51.0' });
      expect(server.extensions).toContain('model_configuration');
      expect(await modelPlacement(t, server, 'googlenet')).toEqual({ device: 'cpu', detail: 'instance_group KIND_CPU×1' });
      const report = await tritonClientCheck(url, 'googlenet', GOOGLENET);
      expect(report.errors).toEqual([]);
      for (const step of ['infer_b1_binary', 'infer_b1_json', 'infer_b2_binary', 'infer_b2_json']) {
        expect(report.steps[step].max_abs_diff).toBeLessThan(1e-5);
        expect(report.steps[step].top5).toEqual(report.steps[step].ref_top5);
      }
    } finally {
      docker(['rm', '-f', name]);
    }
  });
});

describeLab('runtime triton: refusals before anything is built', () => {
  test('a TensorRT plan: refused by the modelship runtime; with Triton, only when the serving image has the TensorRT that built it', async () => {
    const plan = fakePlan(path.join(work, 'plan'), '10.5.0.18');
    const modelship = await cmd([
      'image',
      '--image',
      repo,
      '--model',
      plan,
      '--model-name',
      'googlenet',
      '--revision',
      'b'.repeat(40),
      '--compose-file',
      path.join(work, 'c1.yml'),
    ]);
    expect(modelship.code).toBe(2); // an input error
    expect(modelship.stderr).toMatch(/is a TensorRT plan, which the modelship runtime \(ONNX Runtime\) cannot load: serve it with runtime: triton/);
    // a plan runs on a GPU only
    const noGpu = await cmd([
      'image',
      '--image',
      repo,
      '--model',
      plan,
      '--model-name',
      'googlenet',
      '--runtime',
      'triton',
      '--triton-image',
      triton,
      '--revision',
      'b'.repeat(40),
      '--compose-file',
      path.join(work, 'c2.yml'),
    ]);
    expect(noGpu.code).toBe(2); // an input error
    expect(noGpu.stderr).toMatch(/input "gpu": .* is a TensorRT plan, which runs on a GPU only/);
    // the lab's Triton (from the pytriton wheel) carries no TensorRT and declares none
    const none = await cmd([
      'image',
      '--image',
      repo,
      '--model',
      plan,
      '--model-name',
      'googlenet',
      '--runtime',
      'triton',
      '--gpu',
      '--triton-image',
      trtImage(undefined),
      '--revision',
      'b'.repeat(40),
      '--compose-file',
      path.join(work, 'c3.yml'),
    ]);
    expect(none.code).toBe(2); // an input error
    expect(none.stderr).toMatch(
      /the serving image \S+trt-serving-\d+:none declares no TensorRT version \(looked for TRT_VERSION, TENSORRT_VERSION, NVIDIA_TENSORRT_VERSION/,
    );
    // another TensorRT: both named
    const older = trtImage('10.3.0.26');
    const mismatch = await cmd([
      'image',
      '--image',
      repo,
      '--model',
      plan,
      '--model-name',
      'googlenet',
      '--runtime',
      'triton',
      '--gpu',
      '--triton-image',
      older,
      '--revision',
      'b'.repeat(40),
      '--compose-file',
      path.join(work, 'c4.yml'),
    ]);
    expect(mismatch.code).toBe(2); // an input error
    expect(mismatch.stderr).toMatch(/TensorRT 10\.5\.0\.18 .*built it, but the serving image \S+:10\.3\.0\.26 has TensorRT 10\.3\.0\.26/);
    // nothing was pushed by the refused runs
    expect(() => docker(['buildx', 'imagetools', 'inspect', `${repo}:sha-bbbbbbb`])).toThrow();
    // the same TensorRT: the plan goes into a tensorrt_plan repository, max_batch_size from the plan's profile, on the GPU
    const same = await cmd([
      'image',
      '--image',
      repo,
      '--model',
      plan,
      '--model-name',
      'googlenet',
      '--runtime',
      'triton',
      '--gpu',
      '--triton-image',
      trtImage('10.5.0.18'),
      '--revision',
      'b'.repeat(40),
      '--compose-file',
      path.join(work, 'c5.yml'),
      '--json',
    ]);
    if (same.code !== 0) throw new Error(same.stderr.slice(-3000));
    const built = same.json().image;
    expect(JSON.parse(same.json().metadata).labels['dev.modelship.tensorrt.version']).toBe('10.5.0.18');
    docker(['pull', '-q', built]);
    const text = docker(['run', '--rm', '--network', 'none', built, 'cat', '/models/googlenet/config.pbtxt']);
    expect(parseTritonConfig(text, 'config.pbtxt')).toMatchObject({
      platform: 'tensorrt_plan',
      max_batch_size: 16,
      instance_group: [expect.objectContaining({ kind: 'KIND_GPU' })],
    });
    expect(docker(['run', '--rm', '--network', 'none', built, 'ls', '/models/googlenet/1'])).toBe('model.plan\n');
  });

  test('inputs only the modelship runtime honours, and an unresolvable Triton image, fail naming the input', async () => {
    const key = await cmd([
      'image',
      '--image',
      repo,
      '--model',
      onnx,
      '--model-name',
      'googlenet',
      '--runtime',
      'triton',
      '--api-key',
      's3cret',
      '--triton-image',
      triton,
    ]);
    expect(key.code).toBe(2); // an input error
    expect(key.stderr).toMatch(/input "api-key": is honoured by the modelship runtime only/);
    expect(key.stderr).not.toContain('s3cret');
    const missing = await cmd([
      'image',
      '--image',
      repo,
      '--model',
      onnx,
      '--model-name',
      'googlenet',
      '--runtime',
      'triton',
      '--triton-image',
      `${LAB.registry}/modelship-test/no-such-triton:24.10`,
      '--revision',
      'c'.repeat(40),
      '--compose-file',
      path.join(work, 'c6.yml'),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot resolve the Triton image \S+no-such-triton:24\.10 to a digest/);
  });
});
