import { ModelshipError } from '../util/errors';
import { TensorSig } from '../util/onnxinfo';

/**
 * TensorRT plans, built by `trtexec` inside the serving base image on a GPU runner so the TensorRT that builds
 * the plan is the one that runs it. Pure planning and parsing here; running docker is the stage's effect.
 */
export interface TrtOptions {
  baseImage: string;
  /** min / opt / max batch for the dynamic batch profile */
  batches: [number, number, number];
  fp16: boolean;
  int8: boolean;
  workspaceMiB: number;
  /** timing cache path inside the work dir (reused across builds on the same runner) */
  timingCache: string;
}

export interface TrtBuildPlan {
  /** docker argv (after `docker`) that runs trtexec in the base image */
  dockerArgs: string[];
  /** docker argv that reports the GPU (compute capability, name, driver) from inside the same image */
  gpuQueryArgs: string[];
  /** the trtexec command line, as recorded in the artifact metadata */
  trtexec: string[];
}

export function parseBatches(text: string): [number, number, number] {
  const parts = text.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 1) || !(parts[0] <= parts[1] && parts[1] <= parts[2])) {
    throw new ModelshipError('input', `input "batch-sizes": expected min,opt,max batch sizes with min ≤ opt ≤ max, got "${text}"`, { field: 'batch-sizes' });
  }
  return parts as [number, number, number];
}

/** The trtexec invocation for an ONNX with a dynamic batch; `workDir` is mounted at /work in the container. */
export function planTensorRT(inputs: TensorSig[], onnxName: string, planName: string, workDir: string, o: TrtOptions): TrtBuildPlan {
  const shapeAt = (b: number) =>
    inputs
      .map((i) => {
        const rest = i.shape.slice(1);
        if (rest.some((d) => typeof d !== 'number')) throw new ModelshipError('input', `input "${i.name}" has dynamic dimensions other than the batch: [${i.shape.join(', ')}]`);
        return `${i.name}:${[b, ...rest].join('x')}`;
      })
      .join(',');
  const trtexec = [
    'trtexec',
    `--onnx=/work/${onnxName}`,
    `--saveEngine=/work/${planName}`,
    `--minShapes=${shapeAt(o.batches[0])}`,
    `--optShapes=${shapeAt(o.batches[1])}`,
    `--maxShapes=${shapeAt(o.batches[2])}`,
    `--timingCacheFile=/work/${o.timingCache}`,
    `--memPoolSize=workspace:${o.workspaceMiB}M`,
    ...(o.fp16 ? ['--fp16'] : []),
    ...(o.int8 ? ['--int8'] : []),
  ];
  const run = ['run', '--rm', '--gpus', 'all', '-v', `${workDir}:/work`, '-w', '/work', o.baseImage];
  return {
    trtexec,
    dockerArgs: [...run, ...trtexec],
    gpuQueryArgs: [...run, 'nvidia-smi', '--query-gpu=compute_cap,name,driver_version', '--format=csv,noheader'],
  };
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

/** `nvidia-smi --query-gpu=compute_cap,name,driver_version --format=csv,noheader` (first GPU). */
export function parseNvidiaSmi(out: string): GpuInfo {
  const line = out.split('\n').map((l) => l.trim()).find((l) => l.length > 0);
  const parts = line?.split(',').map((s) => s.trim());
  if (!parts || parts.length < 3 || !/^\d+\.\d+$/.test(parts[0])) throw new ModelshipError('graph', `unexpected nvidia-smi output: "${out.trim().slice(0, 200)}"`);
  return { computeCapability: parts[0], name: parts[1], driver: parts[2] };
}

export interface PlanMetadata {
  tensorrtVersion: string;
  computeCapability: string;
  gpu: string;
  baseImage: string;
}

/**
 * A TensorRT plan only runs with the TensorRT that built it and on the compute capability it was built for.
 * Checked before deploy: throws naming both sides when they differ.
 */
export function checkPlanCompatibility(plan: PlanMetadata, target: { tensorrtVersion: string; computeCapability: string; image?: string }): void {
  const problems: string[] = [];
  const majorMinor = (v: string) => v.split('.').slice(0, 2).join('.');
  if (majorMinor(plan.tensorrtVersion) !== majorMinor(target.tensorrtVersion) || plan.tensorrtVersion.split('.')[2] !== target.tensorrtVersion.split('.')[2]) {
    problems.push(`TensorRT ${plan.tensorrtVersion} built the plan, the serving image has TensorRT ${target.tensorrtVersion}`);
  }
  if (plan.computeCapability !== target.computeCapability) {
    problems.push(`the plan is for compute capability ${plan.computeCapability} (${plan.gpu}), the target GPU is ${target.computeCapability}`);
  }
  if (problems.length) {
    throw new ModelshipError('input', `refusing to deploy the TensorRT plan: ${problems.join('; ')}. Rebuild it with stage compile in ${target.image ?? 'the serving image'} on the target GPU.`);
  }
}
