import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './helpers/caffe';
import { checkCalibrationCache, parsePullDigest, pinnedRef, planTensorRT, shapesAt } from '../src/compile/tensorrt';
import { TENSORRT_ENV_VARS, tensorrtRelease, isTensorRTPlan, readPlanMetadata, refuseModelshipPlan, tensorRTVersionFromEnv } from '../src/shared/tensorrt';
import { ModelshipError } from '../src/util/errors';
import { INPUTS, inputUsedBy } from '../src/config';
import { REPO } from './helpers/caffe';

/**
 * The TensorRT path up to the GPU. What needs a GPU (nvidia-smi in the TensorRT image, trtexec building the plan, Triton
 * loading it) cannot run on this machine: there is no NVIDIA driver or container toolkit, and nvcr.io is out of
 * reach. scripts/gpu-check.sh --triton runs that part on a GPU runner. Here: the planning (docker argv as data) and
 * the input checks. test/tensorrt.lab.test.ts: the version checks against real images in the lab's Docker engine and
 * registry, built to declare their TensorRT the way NVIDIA's images do, and the compile stage for real up to its GPU
 * query, which then fails as it must without a GPU (no fake docker).
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
      'trtexec',
      '--onnx=/work/model.onnx',
      '--saveEngine=/work/model.plan',
      '--minShapes=data:1x3x224x224,im_info:1x3',
      '--optShapes=data:8x3x224x224,im_info:8x3',
      '--maxShapes=data:32x3x224x224,im_info:32x3',
      '--timingCacheFile=/work/trt-timing.cache',
      '--memPoolSize=workspace:1024M',
      '--noTF32',
    ]);
    expect(p.dockerArgs.slice(9)).toEqual(p.trtexec);
    expect(p.gpuQueryArgs).toEqual([
      'run',
      '--rm',
      '--gpus',
      'all',
      '--entrypoint',
      'nvidia-smi',
      PINNED,
      '--query-gpu=compute_cap,name,driver_version',
      '--format=csv,noheader',
    ]);
    expect(shapesAt(inputs, 4)).toBe('data:4x3x224x224,im_info:4x3');
  });

  test("--fp16; --int8 with --calib=/work/<cache>; the runner's user", () => {
    expect(planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', { ...opts, fp16: true }).trtexec.slice(-1)).toEqual(['--fp16']);
    const int8 = planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', { ...opts, fp16: true, int8: true, calibrationCache: 'calib.cache', user: '1001:121' });
    expect(int8.trtexec.slice(-3)).toEqual(['--fp16', '--int8', '--calib=/work/calib.cache']);
    expect(int8.trtexec).not.toContain('--noTF32');
    expect(int8.dockerArgs.slice(0, 10)).toEqual(['run', '--rm', '--gpus', 'all', '--user', '1001:121', '-v', '/w:/work', '-w', '/work']);
  });

  test('refused in planning: a tag instead of a digest, int8 without a cache, a dynamic non-batch dimension', () => {
    expect(() => planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', { ...opts, image: 'nvcr.io/nvidia/tensorrt:24.10-py3' })).toThrow(
      /pinned by digest \(repository@sha256:\.\.\.\), got "nvcr\.io\/nvidia\/tensorrt:24\.10-py3"/,
    );
    expect(() => planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', { ...opts, int8: true })).toThrow(/input "calibration-cache": is required with int8: true/);
    expect(() => planTensorRT([{ name: 'x', shape: ['N', 3, 'H', 'W'] }], 'm.onnx', 'm.plan', '/w', opts)).toThrow(
      /input "x" has dynamic dimensions other than the batch/,
    );
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
    expect(() => checkCalibrationCache(true, path.join(dir, 'absent.cache'))).toThrow(
      new RegExp(`input "calibration-cache": cannot read ${path.join(dir, 'absent.cache').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: no such file`),
    );
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
    expect(() => refuseModelshipPlan(plan)).toThrow(
      /model\.plan is a TensorRT plan, which the modelship runtime \(ONNX Runtime\) cannot load: serve it with runtime: triton/,
    );
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
        expect({ stage: c.stage, flag, known: byName.has(flag) && inputUsedBy(byName.get(flag)!, c.stage as never) }).toEqual({
          stage: c.stage,
          flag,
          known: true,
        });
      }
    }
    expect(commands[1].line).toMatch(/--target tensorrt .*--tensorrt-image .*--triton-image .*--int8 --calibration-cache/);
    expect(commands[2].line).toMatch(/^--runtime triton --gpu .*--model "\$plan"/);
    expect(commands[4].line).toMatch(/^--runtime triton --gpu .*--model "\$plan" .*--triton-release "\$mismatch" --push false/);
    expect(commands[3].line).toMatch(/^--runtime triton --gpu /);
  });
});
