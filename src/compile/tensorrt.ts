import * as fs from 'fs';
import * as path from 'path';
import { ModelshipError } from '../util/errors';
import { TensorSig } from '../formats/onnxinfo';

/**
 * TensorRT plans, built by `trtexec` in NVIDIA's TensorRT image (tensorrt-image, default
 * nvcr.io/nvidia/tensorrt:<triton-release>-py3) on a GPU runner. A plan only loads in the TensorRT that built it,
 * so the image is pinned by digest before the build and the plan's metadata records which TensorRT built it and which
 * Triton image it is meant for (the image stage checks that pairing, see src/shared/tensorrt.ts).
 *
 * Pure planning and parsing here (argv as data); running docker is the stage's effect (src/compile/index.ts).
 */
export interface TrtOptions {
  /** the image that runs trtexec, pinned: repository@sha256:<digest> */
  image: string;
  /** min / opt / max batch for the dynamic batch profile */
  batches: [number, number, number];
  fp16: boolean;
  int8: boolean;
  workspaceMiB: number;
  /** timing cache path inside the work dir (reused across builds on the same runner) */
  timingCache: string;
  /** with int8: the calibration cache's file name inside the work dir (passed as --calib=/work/<name>) */
  calibrationCache?: string;
  /** `uid:gid` to run as, so the plan in the mounted work dir belongs to the runner's user (absent: the image's user) */
  user?: string;
}

export interface TrtBuildPlan {
  /** docker argv (after `docker`) that runs trtexec in the pinned image */
  dockerArgs: string[];
  /** docker argv that reports the GPU (compute capability, name, driver) from inside the same image */
  gpuQueryArgs: string[];
  /** the trtexec command line, as recorded in the artifact metadata */
  trtexec: string[];
}

const PINNED = /^[^@\s]+@sha256:[0-9a-f]{64}$/;

/** trtexec's shape list at batch `b` (`data:8x3x224x224,...`); only the batch may be dynamic. */
export function shapesAt(inputs: TensorSig[], b: number): string {
  return inputs
    .map((i) => {
      const rest = i.shape.slice(1);
      if (rest.some((d) => typeof d !== 'number'))
        throw new ModelshipError('input', `input "${i.name}" has dynamic dimensions other than the batch: [${i.shape.join(', ')}]`);
      return `${i.name}:${[b, ...rest].join('x')}`;
    })
    .join(',');
}

/**
 * The trtexec invocation for an ONNX with a dynamic batch; `workDir` is mounted at /work in the container. float32
 * builds (neither fp16 nor int8) pass --noTF32: trtexec otherwise allows TF32 kernels, whose 10-bit mantissa breaks
 * the float32 parity the smoke stage checks against Caffe.
 */
export function planTensorRT(inputs: TensorSig[], onnxName: string, planName: string, workDir: string, trt: TrtOptions): TrtBuildPlan {
  if (!PINNED.test(trt.image))
    throw new ModelshipError('input', `trtexec runs in an image pinned by digest (repository@sha256:...), got "${trt.image}"`, { field: 'tensorrt-image' });
  if (trt.int8 && !trt.calibrationCache)
    throw new ModelshipError('input', 'input "calibration-cache": is required with int8: true (trtexec --int8 --calib=<cache>)', {
      field: 'calibration-cache',
    });
  const trtexec = [
    'trtexec',
    `--onnx=/work/${onnxName}`,
    `--saveEngine=/work/${planName}`,
    `--minShapes=${shapesAt(inputs, trt.batches[0])}`,
    `--optShapes=${shapesAt(inputs, trt.batches[1])}`,
    `--maxShapes=${shapesAt(inputs, trt.batches[2])}`,
    `--timingCacheFile=/work/${trt.timingCache}`,
    `--memPoolSize=workspace:${trt.workspaceMiB}M`,
    ...(trt.fp16 ? ['--fp16'] : []),
    ...(trt.int8 ? ['--int8', `--calib=/work/${trt.calibrationCache}`] : []),
    ...(!trt.fp16 && !trt.int8 ? ['--noTF32'] : []),
  ];
  const base = ['run', '--rm', '--gpus', 'all'];
  const mount = [...(trt.user ? ['--user', trt.user] : []), '-v', `${workDir}:/work`, '-w', '/work'];
  return {
    trtexec,
    dockerArgs: [...base, ...mount, trt.image, ...trtexec],
    // nvidia-smi straight, without the image's entrypoint: NVIDIA's prints a banner on stdout first
    gpuQueryArgs: [...base, '--entrypoint', 'nvidia-smi', trt.image, '--query-gpu=compute_cap,name,driver_version', '--format=csv,noheader'],
  };
}

/** The repository part of a reference, as docker writes it in RepoDigests (docker.io/library/x and x are the same). */
function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  let repo = at >= 0 ? ref.slice(0, at) : ref;
  const slash = repo.lastIndexOf('/');
  const colon = repo.lastIndexOf(':');
  if (colon > slash) repo = repo.slice(0, colon);
  repo = repo.replace(/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '');
  return repo.replace(/^library\//, '');
}

/**
 * The pinned reference (`repository@sha256:...`) of `ref` after a pull: the digest `docker pull` reported, else the
 * one given in `ref`, checked against (or else taken from) the image's RepoDigests of the same repository.
 * undefined when the image has no digest in that repository (built locally, never pushed or pulled).
 */
export function pinnedRef(ref: string, repoDigests: string[], pulledDigest?: string): string | undefined {
  const repo = repositoryOf(ref);
  const mine = repoDigests.filter((d) => repositoryOf(d) === repo && /@sha256:[0-9a-f]{64}$/.test(d));
  const want = pulledDigest ?? /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1];
  const hit = want ? mine.find((d) => d.endsWith(`@${want}`)) : mine.length === 1 ? mine[0] : undefined;
  return hit;
}

/** The digest `docker pull` prints ("Digest: sha256:..."). */
export function parsePullDigest(out: string): string | undefined {
  return /^Digest:\s*(sha256:[0-9a-f]{64})\s*$/m.exec(out)?.[1];
}

/**
 * The INT8 calibration cache, checked before anything runs: required with int8, must be a file. Returns its path, or
 * undefined without int8 (trtexec only calibrates int8 builds; the stage warns about a cache given without it).
 */
export function checkCalibrationCache(int8: boolean, cache: string): string | undefined {
  if (!int8) return undefined;
  if (!cache)
    throw new ModelshipError(
      'input',
      'input "calibration-cache": is required with int8: true (trtexec --int8 --calib=<cache>; write one with TensorRT\'s calibrator on representative inputs)',
      { field: 'calibration-cache' },
    );
  let st: fs.Stats;
  try {
    st = fs.statSync(cache);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ModelshipError('input', `input "calibration-cache": cannot read ${cache}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, {
      field: 'calibration-cache',
      file: cache,
    });
  }
  if (!st.isFile()) throw new ModelshipError('input', `input "calibration-cache": ${cache} is not a file`, { field: 'calibration-cache', file: cache });
  return path.resolve(cache);
}

/** The TensorRT version trtexec prints ("[I] TensorRT version: 10.3.0" or "=== ... TensorRT v100300"). */
export function parseTensorRTVersion(log: string): string {
  const m = /TensorRT version:\s*([0-9]+(?:\.[0-9]+){1,3})/.exec(log);
  if (m) return m[1];
  const v = /TensorRT\.trtexec \[TensorRT v(\d+)\]/.exec(log) ?? /TensorRT v(\d{5,6})\b/.exec(log);
  if (v) {
    const n = Number(v[1]);
    return `${Math.floor(n / 10000)}.${Math.floor((n % 10000) / 100)}.${n % 100}`;
  }
  throw new ModelshipError('graph', 'could not find the TensorRT version in the trtexec log');
}

export interface GpuInfo {
  computeCapability: string;
  name: string;
  driver: string;
}

/** `nvidia-smi --query-gpu=compute_cap,name,driver_version --format=csv,noheader` (first GPU; other lines are skipped). */
export function parseNvidiaSmi(out: string): GpuInfo {
  const line = out
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^\d+\.\d+\s*,[^,]+,/.test(l));
  const parts = line?.split(',').map((s) => s.trim());
  if (!parts || parts.length < 3) throw new ModelshipError('graph', `unexpected nvidia-smi output: "${out.trim().slice(0, 200)}"`);
  return { computeCapability: parts[0], name: parts[1], driver: parts[2] };
}
