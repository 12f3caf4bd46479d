import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';
import { runCli } from './helpers/cli';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { LAB, docker, requireLab } from './helpers/lab';
import { checkCalibrationCache, parsePullDigest, pinnedRef, planTensorRT, shapesAt } from '../src/compile/tensorrt';
import {
  TENSORRT_ENV_VARS,
  tensorrtRelease,
  checkPlanForImage,
  imageTensorRTVersion,
  isTensorRTPlan,
  localImageEnv,
  readPlanMetadata,
  refuseModelshipPlan,
  registryImageEnv,
  tensorRTVersionFromEnv,
} from '../src/shared/tensorrt';
import { fetchImageConfig, registryBase, removeTags } from '../src/shared/registry';
import { ModelshipError } from '../src/util/errors';
import { INPUTS, inputUsedBy } from '../src/config';
import { REPO } from './helpers/caffe';

/** Remove a test image's tag (registry/repository:tag) from the lab registry, nothing else. */
const untag = (ref: string) => removeTags(ref.slice(0, ref.lastIndexOf(':')), [ref.slice(ref.lastIndexOf(':') + 1)]);

/**
 * The TensorRT path up to the GPU. What needs a GPU (nvidia-smi in the TensorRT image, trtexec building the plan, Triton
 * loading it) cannot run on this machine: there is no NVIDIA driver or container toolkit, and nvcr.io is out of
 * reach. scripts/gpu-check.sh --triton runs that part on a GPU runner. Here: the planning (docker argv as data), the
 * input checks, and the version checks against real images in the lab's Docker engine and registry, built to declare
 * their TensorRT the way NVIDIA's images do. The compile stage itself runs for real up to its GPU query, which then
 * fails as it must without a GPU (no fake docker).
 */

const PINNED = `nvcr.io/nvidia/tensorrt@sha256:${'b'.repeat(64)}`;
const opts = { image: PINNED, batches: [1, 8, 32] as [number, number, number], fp16: false, int8: false, workspaceMiB: 1024, timingCache: 'trt-timing.cache' };

describe('planning: the docker argv, as data', () => {
  const inputs = [
    { name: 'data', shape: ['N', 3, 224, 224] as (number | string)[] },
    { name: 'im_info', shape: ['batch', 3] as (number | string)[] },
  ];

  test('--gpus all, the pinned image, shapes per batch for every input; float32 builds without TF32', () => {
    const p = planTensorRT(inputs, 'model.onnx', 'model.plan', '/ws', opts);
    expect(p.dockerArgs.slice(0, 9)).toEqual(['run', '--rm', '--gpus', 'all', '-v', '/ws:/work', '-w', '/work', PINNED]);
    expect(p.trtexec).toEqual([
      'trtexec', '--onnx=/work/model.onnx', '--saveEngine=/work/model.plan',
      '--minShapes=data:1x3x224x224,im_info:1x3', '--optShapes=data:8x3x224x224,im_info:8x3', '--maxShapes=data:32x3x224x224,im_info:32x3',
      '--timingCacheFile=/work/trt-timing.cache', '--memPoolSize=workspace:1024M', '--noTF32',
    ]);
    expect(p.dockerArgs.slice(9)).toEqual(p.trtexec);
    expect(p.gpuQueryArgs).toEqual(['run', '--rm', '--gpus', 'all', '--entrypoint', 'nvidia-smi', PINNED, '--query-gpu=compute_cap,name,driver_version', '--format=csv,noheader']);
    expect(shapesAt(inputs, 4)).toBe('data:4x3x224x224,im_info:4x3');
  });

  test('--fp16; --int8 with --calib=/work/<cache>; the runner\'s user', () => {
    expect(planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', { ...opts, fp16: true }).trtexec.slice(-1)).toEqual(['--fp16']);
    const int8 = planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', { ...opts, fp16: true, int8: true, calibrationCache: 'calib.cache', user: '1001:121' });
    expect(int8.trtexec.slice(-3)).toEqual(['--fp16', '--int8', '--calib=/work/calib.cache']);
    expect(int8.trtexec).not.toContain('--noTF32');
    expect(int8.dockerArgs.slice(0, 10)).toEqual(['run', '--rm', '--gpus', 'all', '--user', '1001:121', '-v', '/w:/work', '-w', '/work']);
  });

  test('refused in planning: a tag instead of a digest, int8 without a cache, a dynamic non-batch dimension', () => {
    expect(() => planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', { ...opts, image: 'nvcr.io/nvidia/tensorrt:24.10-py3' })).toThrow(/pinned by digest \(repository@sha256:\.\.\.\), got "nvcr\.io\/nvidia\/tensorrt:24\.10-py3"/);
    expect(() => planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', { ...opts, int8: true })).toThrow(/input "calibration-cache": is required with int8: true/);
    expect(() => planTensorRT([{ name: 'x', shape: ['N', 3, 'H', 'W'] }], 'm.onnx', 'm.plan', '/w', opts)).toThrow(/input "x" has dynamic dimensions other than the batch/);
  });

  test('pinning: the digest docker pull reported, checked against RepoDigests of the same repository', () => {
    const d1 = `sha256:${'1'.repeat(64)}`;
    const d2 = `sha256:${'2'.repeat(64)}`;
    const digests = [`nvcr.io/nvidia/tensorrt@${d1}`, `mirror.example.com/nvidia/tensorrt@${d2}`, `nvcr.io/nvidia/tensorrt@${d2}`];
    expect(pinnedRef('nvcr.io/nvidia/tensorrt:24.10-py3', digests, d2)).toBe(`nvcr.io/nvidia/tensorrt@${d2}`);
    expect(pinnedRef('mirror.example.com/nvidia/tensorrt:24.10-py3', digests)).toBe(`mirror.example.com/nvidia/tensorrt@${d2}`);
    // two digests in the repository and no pull to say which the tag is: not guessed
    expect(pinnedRef('nvcr.io/nvidia/tensorrt:24.10-py3', digests)).toBeUndefined();
    expect(pinnedRef(`nvcr.io/nvidia/tensorrt@${d1}`, digests)).toBe(`nvcr.io/nvidia/tensorrt@${d1}`);
    expect(pinnedRef('127.0.0.1:5000/x/y:1', [`127.0.0.1:5000/x/y@${d1}`])).toBe(`127.0.0.1:5000/x/y@${d1}`);
    expect(pinnedRef('docker.io/library/busybox:1', [`busybox@${d1}`])).toBe(`busybox@${d1}`);
    expect(pinnedRef('local/busybox:static', [])).toBeUndefined();
    expect(parsePullDigest(`24.10-py3: Pulling from nvidia/tensorrt\nDigest: ${d1}\nStatus: Image is up to date\n`)).toBe(d1);
  });

  test('the calibration cache: required with int8 (naming the input), must exist (naming the file)', () => {
    const dir = tmpDir();
    const cache = path.join(dir, 'calib.cache');
    fs.writeFileSync(cache, 'TRT-100500-EntropyCalibration2\ndata: 3c010a14\n');
    expect(checkCalibrationCache(false, '')).toBeUndefined();
    expect(checkCalibrationCache(true, cache)).toBe(cache);
    expect(() => checkCalibrationCache(true, '')).toThrow(/input "calibration-cache": is required with int8: true/);
    expect(() => checkCalibrationCache(true, path.join(dir, 'absent.cache'))).toThrow(new RegExp(`input "calibration-cache": cannot read ${path.join(dir, 'absent.cache').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: no such file`));
    expect(() => checkCalibrationCache(true, dir)).toThrow(/is not a file/);
  });

  test('TensorRT versions: what the image config declares, compared as major.minor.patch', () => {
    expect(TENSORRT_ENV_VARS).toEqual(['TRT_VERSION', 'TENSORRT_VERSION', 'NVIDIA_TENSORRT_VERSION']);
    expect(tensorRTVersionFromEnv(['PATH=/usr/bin', 'TRT_VERSION=10.5.0.18', 'NVIDIA_TRITON_SERVER_VERSION=24.10'])).toBe('10.5.0.18');
    expect(tensorRTVersionFromEnv(['TENSORRT_VERSION=10.3.0.26'])).toBe('10.3.0.26');
    // NGC's NVIDIA_TENSORRT_VERSION is the container release (yy.mm), not a TensorRT version
    expect(tensorRTVersionFromEnv(['NVIDIA_TENSORRT_VERSION=24.10'])).toBeUndefined();
    expect(tensorRTVersionFromEnv(['NVIDIA_TENSORRT_VERSION=8.6.2'])).toBe('8.6.2');
    expect(tensorRTVersionFromEnv(null)).toBeUndefined();
    expect(tensorrtRelease('10.5.0.18')).toBe('10.5.0');
    expect(tensorrtRelease('10.5')).toBe('10.5.0');
  });
});

describe('plan files: which runtime may load them', () => {
  const meta = (format: string, extra: Record<string, unknown> = {}) => JSON.stringify({ format, sha256: 'x', ...extra });

  test('a plan is told by its metadata (format tensorrt), else by its extension', () => {
    const dir = tmpDir();
    const w = (name: string, json?: string) => {
      fs.writeFileSync(path.join(dir, name), 'bytes');
      if (json) fs.writeFileSync(path.join(dir, `${name}.json`), json);
      return path.join(dir, name);
    };
    expect(isTensorRTPlan(w('a.plan'))).toBe(true);
    expect(isTensorRTPlan(w('a.engine'))).toBe(true);
    expect(isTensorRTPlan(w('custom.bin', meta('tensorrt')))).toBe(true);
    expect(isTensorRTPlan(w('model.onnx'))).toBe(false);
    expect(isTensorRTPlan(w('model.ort.onnx', meta('onnxruntime')))).toBe(false);
  });

  test('the modelship runtime refuses a plan, naming runtime: triton; an ONNX passes', () => {
    const dir = tmpDir();
    const plan = path.join(dir, 'model.plan');
    fs.writeFileSync(plan, 'bytes');
    expect(() => refuseModelshipPlan(plan)).toThrow(/model\.plan is a TensorRT plan, which the modelship runtime \(ONNX Runtime\) cannot load: serve it with runtime: triton/);
    try {
      refuseModelshipPlan(plan);
    } catch (e) {
      expect(e).toBeInstanceOf(ModelshipError);
      expect((e as ModelshipError).code).toBe('input');
      expect((e as ModelshipError).location.field).toBe('runtime');
    }
    const renamed = path.join(dir, 'weights.bin');
    fs.writeFileSync(renamed, 'bytes');
    fs.writeFileSync(`${renamed}.json`, meta('tensorrt'));
    expect(() => refuseModelshipPlan(renamed)).toThrow(/weights\.bin is a TensorRT plan/);
    const onnx = path.join(dir, 'model.onnx');
    fs.writeFileSync(onnx, 'bytes');
    expect(() => refuseModelshipPlan(onnx)).not.toThrow();
  });

  test('a plan without its metadata is refused: nothing says which TensorRT built it', () => {
    const dir = tmpDir();
    const plan = path.join(dir, 'model.plan');
    fs.writeFileSync(plan, 'bytes');
    expect(() => readPlanMetadata(plan)).toThrow(/model\.plan is a TensorRT plan without the metadata .*model\.plan\.json/);
    fs.writeFileSync(`${plan}.json`, '{not json');
    expect(() => readPlanMetadata(plan)).toThrow(/model\.plan\.json .* is not JSON/);
    expect(readPlanMetadata(path.join(dir, 'model.onnx'))).toBeUndefined();
  });
});

/** Lab images declaring their TensorRT in the image config, as NVIDIA's do (see src/shared/tensorrt.ts). */
describe('the serving image\'s TensorRT, read from real images (lab Docker engine and registry)', () => {
  const id = `${process.pid}-${Date.now() % 100000}`;
  const repo = (name: string) => `${LAB.registry}/modelship-test/trt-${name}-${id}`;
  // registry-only refs (their local copy is removed), local-only refs (never pushed), and pushed digests
  const images = {
    triton105: { ref: `${repo('triton')}:24.10`, env: ['TRT_VERSION=10.5.0.18', 'TRITON_SERVER_VERSION=2.51.0', 'NVIDIA_TRITON_SERVER_VERSION=24.10'] },
    triton103: { ref: `${repo('triton')}:24.08`, env: ['TRT_VERSION=10.3.0.26', 'TRITON_SERVER_VERSION=2.49.0', 'NVIDIA_TRITON_SERVER_VERSION=24.08'] },
    tensorrt105: { ref: `${repo('tensorrt')}:24.10`, env: ['TRT_VERSION=10.5.0.18', 'TENSORRT_VERSION=10.5.0.18', 'NVIDIA_TENSORRT_VERSION=24.10'] },
    tensorrt103: { ref: `${repo('tensorrt')}:24.08`, env: ['TRT_VERSION=10.3.0.26', 'TENSORRT_VERSION=10.3.0.26', 'NVIDIA_TENSORRT_VERSION=24.08'] },
    none: { ref: `${repo('none')}:1`, env: ['NVIDIA_TRITON_SERVER_VERSION=24.10', 'NVIDIA_TENSORRT_VERSION=24.10'] },
  };
  const local = (k: keyof typeof images) => `modelship-test-local/trt-${k}-${id}:1`;
  const digests: Record<string, string> = {};
  let ctx: string;

  beforeAll(() => {
    requireLab();
    ctx = tmpDir();
    for (const [k, img] of Object.entries(images) as [keyof typeof images, { ref: string; env: string[] }][]) {
      const dir = path.join(ctx, k);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${LAB.busybox}\n${img.env.map((e) => `ENV ${e}`).join('\n')}\nLABEL dev.modelship.test=${k}\n`);
      docker(['build', '-q', '-t', img.ref, '-t', local(k), dir]);
      const out = docker(['push', img.ref]);
      digests[k] = /digest: (sha256:[0-9a-f]{64})/.exec(out)![1];
      docker(['image', 'rm', img.ref]); // the local-only tag keeps the image; the registry ref is now registry-only
    }
  }, 240_000);

  afterAll(async () => {
    for (const [k, img] of Object.entries(images) as [keyof typeof images, { ref: string }][]) {
      try {
        docker(['image', 'rm', '-f', local(k), img.ref]);
      } catch {
        /* already gone */
      }
      await untag(img.ref).catch(() => undefined);
    }
  });

  test('from the local engine (docker image inspect): TRT_VERSION, or none', async () => {
    expect(await localImageEnv(local('triton105'))).toEqual(expect.arrayContaining(['TRT_VERSION=10.5.0.18', 'NVIDIA_TRITON_SERVER_VERSION=24.10']));
    expect(await imageTensorRTVersion(local('triton105'))).toBe('10.5.0.18');
    expect(await imageTensorRTVersion(local('tensorrt103'))).toBe('10.3.0.26');
    expect(await imageTensorRTVersion(local('none'))).toBeUndefined();
  });

  test('from the registry API (image config blob via the manifest), with no local copy', async () => {
    expect(await localImageEnv(images.triton105.ref)).toBeUndefined();
    expect(await registryImageEnv(images.triton105.ref)).toEqual(expect.arrayContaining(['TRT_VERSION=10.5.0.18']));
    expect(await imageTensorRTVersion(images.triton105.ref)).toBe('10.5.0.18');
    expect(await imageTensorRTVersion(images.triton103.ref)).toBe('10.3.0.26');
    expect(await imageTensorRTVersion(images.none.ref)).toBeUndefined();
    // by digest, as the image stage pins triton-image
    const pinned = `${repo('triton')}@${digests.triton103}`;
    expect(await localImageEnv(pinned)).toBeUndefined();
    expect(await imageTensorRTVersion(pinned)).toBe('10.3.0.26');
    await expect(imageTensorRTVersion(`${repo('absent')}:1`)).rejects.toThrow(new RegExp(`cannot read the image config of ${repo('absent')}:1: the local Docker engine does not have it, and the registry API failed: registry answered 404`));
  });

  test('a multi-platform index (as nvcr.io serves): the manifest for this platform', async () => {
    const r = registryBase(images.triton105.ref);
    const manifest = await new Promise<{ size: number; type: string }>((resolve, reject) => {
      http.get(`${r.base}/manifests/${digests.triton105}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ size: Buffer.concat(chunks).length, type: String(res.headers['content-type']) }));
      }).on('error', reject);
    });
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: manifest.type, digest: digests.triton105, size: manifest.size, platform: { os: 'linux', architecture: 'amd64' } }],
    });
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${r.base}/manifests/multi`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`PUT index: HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(index);
    });
    const multi = `${repo('triton')}:multi`;
    try {
      expect((await fetchImageConfig(multi, undefined, { os: 'linux', architecture: 'amd64' })).config?.Env).toEqual(expect.arrayContaining(['TRT_VERSION=10.5.0.18']));
      await expect(fetchImageConfig(multi, undefined, { os: 'linux', architecture: 'arm64' })).rejects.toThrow(/has no image for linux\/arm64 \(it has linux\/amd64\)/);
    } finally {
      await untag(multi).catch(() => undefined);
    }
  });

  test('a registry that wants a Bearer token (nvcr.io, ghcr.io): the token from its realm; the blob from a CDN without it', async () => {
    const seen: { tokenAuth?: string; cdnAuth?: string } = {};
    const forward = (target: string, req: http.IncomingMessage, res: http.ServerResponse) => {
      http.get(`http://${LAB.registry}${target}`, { headers: { accept: String(req.headers.accept ?? '*/*') } }, (up) => {
        res.writeHead(up.statusCode ?? 502, { 'content-type': String(up.headers['content-type'] ?? 'application/octet-stream') });
        up.pipe(res);
      }).on('error', () => res.writeHead(502).end());
    };
    const cdn = http.createServer((req, res) => {
      seen.cdnAuth = req.headers.authorization;
      forward(req.url!, req, res);
    });
    const reg = http.createServer((req, res) => {
      const self = `http://127.0.0.1:${(reg.address() as AddressInfo).port}`;
      if (req.url!.startsWith('/token')) {
        seen.tokenAuth = req.headers.authorization;
        const ok = req.headers.authorization === `Basic ${Buffer.from('robot:s3cret').toString('base64')}`;
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? JSON.stringify({ token: 'T0K' }) : '{}');
        return;
      }
      if (req.headers.authorization !== 'Bearer T0K') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${self}/token",service="lab",scope="repository:modelship-test/trt-triton-${id}:pull"` }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      if (req.url!.includes('/blobs/')) {
        res.writeHead(307, { location: `http://127.0.0.1:${(cdn.address() as AddressInfo).port}${req.url}` }).end();
        return;
      }
      forward(req.url!, req, res);
    });
    await Promise.all([reg, cdn].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
    try {
      const ref = `127.0.0.1:${(reg.address() as AddressInfo).port}/modelship-test/trt-triton-${id}:24.10`;
      expect(await imageTensorRTVersion(ref, process.env, { username: 'robot', password: 's3cret' })).toBe('10.5.0.18');
      expect(seen.tokenAuth).toBe(`Basic ${Buffer.from('robot:s3cret').toString('base64')}`);
      expect(seen.cdnAuth).toBeUndefined();
      await expect(imageTensorRTVersion(ref, process.env, { username: 'robot', password: 'wrong' })).rejects.toThrow(/token service answered 401 .*scope repository:modelship-test\/trt-triton-/);
    } finally {
      reg.close();
      cdn.close();
    }
  });

  test('checkPlanForImage: match passes; another TensorRT is refused naming both versions and images; none declared is refused', async () => {
    const plan = {
      format: 'tensorrt',
      tensorrt: {
        tensorrtVersion: '10.5.0',
        imageTensorRTVersion: '10.5.0.18',
        computeCapability: '9.0',
        gpu: 'NVIDIA H200',
        tensorrtImage: `${repo('tensorrt')}@${digests.tensorrt105}`,
        tritonImage: images.triton105.ref,
        profile: { min: 1, opt: 8, max: 32 },
      },
    };
    // the image stage's call, once per image: from the registry, and from the local engine
    for (const ref of [images.triton105.ref, local('triton105')]) {
      expect(checkPlanForImage(plan, ref, await imageTensorRTVersion(ref)).profile?.max).toBe(32);
    }
    expect(() => checkPlanForImage(plan.tensorrt, images.triton105.ref, '10.5.0.18')).not.toThrow();
    const v103 = await imageTensorRTVersion(images.triton103.ref);
    const mismatch = () => checkPlanForImage(plan, images.triton103.ref, v103);
    expect(mismatch).toThrow(ModelshipError);
    expect(mismatch).toThrow(/refusing the TensorRT plan: TensorRT 10\.5\.0 in 127\.0\.0\.1:5000\/modelship-test\/trt-tensorrt-[0-9-]+@sha256:[0-9a-f]{64} built it, but the serving image 127\.0\.0\.1:5000\/modelship-test\/trt-triton-[0-9-]+:24\.08 has TensorRT 10\.3\.0\.26/);
    expect(mismatch).toThrow(new RegExp(`serve with the Triton image it was built for \\(${images.triton105.ref.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
    const missing = async () => checkPlanForImage(plan, images.none.ref, await imageTensorRTVersion(images.none.ref));
    await expect(missing()).rejects.toThrow(/the serving image 127\.0\.0\.1:5000\/modelship-test\/trt-none-[0-9-]+:1 declares no TensorRT version \(looked for TRT_VERSION, TENSORRT_VERSION, NVIDIA_TENSORRT_VERSION in its config's environment\)/);
    expect(() => checkPlanForImage({ format: 'tensorrt' }, images.triton105.ref, '10.5.0.18')).toThrow(/records no TensorRT version/);
  });

  describe('the compile stage, for real up to its GPU query', () => {
    let model: string;
    beforeAll(async () => {
      const dir = tmpDir();
      model = path.join(dir, 'lenet.onnx');
      const d = path.join(FIXTURES, 'lenet');
      const r = await runCli(['convert', '--prototxt', path.join(d, 'deploy.prototxt'), '--caffemodel', path.join(d, 'weights.caffemodel'), '--out', model]);
      expect(r.code).toBe(0);
    });
    const compile = (...args: string[]) => runCli(['compile', '--model', model, '--target', 'tensorrt', ...args]);

    test('int8 without a calibration cache, or with a missing one: refused before docker runs', async () => {
      const r1 = await compile('--int8', '--tensorrt-image', images.tensorrt105.ref);
      expect(r1.code).toBe(2); // a bad input
      expect(r1.stderr).toMatch(/input "calibration-cache": is required with int8: true/);
      expect(r1.stderr).not.toMatch(/docker pull/);
      const absent = path.join(path.dirname(model), 'no-such.cache');
      const r2 = await compile('--int8', '--calibration-cache', absent, '--tensorrt-image', images.tensorrt105.ref);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toContain(`input "calibration-cache": cannot read ${absent}: no such file`);
      expect(r2.stderr).not.toMatch(/docker pull/);
    });

    test('a tensorrt-image that cannot be resolved, or has no registry digest, is refused before the GPU query', async () => {
      const r1 = await compile('--tensorrt-image', `${repo('absent')}:1`, '--triton-image', images.triton105.ref);
      expect(r1.code).toBe(2);
      expect(r1.stderr).toMatch(new RegExp(`input "tensorrt-image": cannot resolve ${repo('absent')}:1: docker pull failed`));
      expect(r1.stderr).not.toMatch(/GPU query/);
      const r2 = await compile('--tensorrt-image', local('tensorrt105'), '--triton-image', images.triton105.ref);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toMatch(/has no registry digest to pin it by \(RepoDigests: none\)/);
      expect(r2.stderr).not.toMatch(/GPU query/);
    });

    test('a TensorRT image of another TensorRT than the Triton image is refused before the GPU query, naming both', async () => {
      const r = await compile('--tensorrt-image', images.tensorrt103.ref, '--triton-image', images.triton105.ref);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`input "tensorrt-image": ${images.tensorrt103.ref} has TensorRT 10.3.0.26, but the Triton image the plan is for, ${images.triton105.ref}, has TensorRT 10.5.0.18`);
      expect(r.stderr).not.toMatch(/GPU query/);
    });

    test('matching images: pulled, pinned by digest, the cache copied next to the model, then the GPU query (no GPU here)', async () => {
      const cache = path.join(tmpDir(), 'lenet-int8.cache');
      fs.writeFileSync(cache, 'TRT-100500-EntropyCalibration2\ndata: 3c010a14\n');
      const r = await compile('--int8', '--calibration-cache', cache, '--batch-sizes', '1,4,16', '--tensorrt-image', images.tensorrt105.ref, '--triton-image', images.triton105.ref);
      expect(r.code).toBe(1); // an io error: the GPU query
      expect(r.stderr).toContain(`docker pull ${images.tensorrt105.ref}`);
      expect(r.stderr).toContain(`${images.tensorrt105.ref} → ${repo('tensorrt')}@${digests.tensorrt105} (TensorRT 10.5.0.18)`);
      // what needs a GPU starts here, in the image pinned by digest
      expect(r.stderr).toContain(`the GPU query in ${repo('tensorrt')}@${digests.tensorrt105} failed (target tensorrt needs a GPU runner with the NVIDIA container toolkit)`);
      expect(fs.readFileSync(path.join(path.dirname(model), 'lenet-int8.cache'), 'utf8')).toBe(fs.readFileSync(cache, 'utf8'));
      expect(fs.existsSync(path.join(path.dirname(model), 'lenet.plan.json'))).toBe(false);
    });
  });
});

describe('scripts/gpu-check.sh --triton (the GPU part, run on a GPU runner)', () => {
  test('its CLI flags are inputs of the stages it runs them with', () => {
    const script = fs.readFileSync(path.join(REPO, 'scripts/gpu-check.sh'), 'utf8');
    const section = script.slice(script.indexOf('if [ "$triton" = 1 ]; then'), script.lastIndexOf('echo "gpu-check: PASS"'));
    // the flag arrays, expanded where they are used
    const arrays: Record<string, string> = {};
    for (const m of section.matchAll(/^\s*(\w+)=\((.*)\)$/gm)) arrays[m[1]] = m[2].replace(/"\$\{(\w+)\[@\]\}"/g, (_, n) => arrays[n] ?? '');
    const commands = section
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((l) => /\bms (\w+) (.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => ({ stage: m[1], line: m[2].replace(/"\$\{(\w+)\[@\]\}"/g, (_, n) => arrays[n] ?? '') }));
    expect(commands.map((c) => c.stage)).toEqual(['convert', 'compile', 'image', 'smoke', 'image']);
    const byName = new Map(INPUTS.map((i) => [i.name, i]));
    for (const c of commands) {
      for (const [, flag] of c.line.matchAll(/--([a-z][a-z0-9-]*)/g)) {
        expect({ stage: c.stage, flag, known: byName.has(flag) && inputUsedBy(byName.get(flag)!, c.stage as never) }).toEqual({ stage: c.stage, flag, known: true });
      }
    }
    expect(commands[1].line).toMatch(/--target tensorrt .*--tensorrt-image .*--triton-image .*--int8 --calibration-cache/);
    expect(commands[2].line).toMatch(/^--runtime triton --gpu .*--model "\$plan"/);
    expect(commands[4].line).toMatch(/^--runtime triton --gpu .*--model "\$plan" .*--triton-release "\$mismatch" --push false/);
    expect(commands[3].line).toMatch(/^--runtime triton --gpu /);
  });
});
