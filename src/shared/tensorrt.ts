import * as fs from 'fs';
import * as path from 'path';
import { ModelshipError } from '../util/errors';
import { runProcess } from '../util/proc';
import { fetchImageConfig } from './registry';

/**
 * TensorRT versions, for the compile stage (which builds plans) and the image stage (which serves them): the TensorRT
 * a container image carries, read from its image config (no container is started, no GPU needed), what a plan's
 * metadata records, and the checks that keep a TensorRT plan away from a runtime that cannot load it.
 *
 * Where NVIDIA's images declare their TensorRT (the image config's Env):
 * - TRT_VERSION (full version, e.g. 10.4.0.26): set by the CUDA deep-learning base that both
 *   nvcr.io/nvidia/tritonserver and nvcr.io/nvidia/tensorrt start from. triton-inference-server/server's build.py,
 *   which writes the Triton image's Dockerfile, builds FROM nvcr.io/nvidia/tritonserver:<yy.mm>-py3-min and reads
 *   TRT_VERSION from that environment (`for k in ("TRT_VERSION", ...)` in its cmake() helper), while it only sets
 *   TRITON_SERVER_VERSION and NVIDIA_TRITON_SERVER_VERSION itself (dockerfile_prepare_container_linux). Its
 *   qa/common/reporter.py records TRT_VERSION beside them, and qa/common/gen_qa_model_repository reads ${TRT_VERSION}
 *   inside nvcr.io/nvidia/tensorrt:<yy.mm>-py3 (TENSORRT_IMAGE). A `docker inspect` of a 24.09 Triton-based NGC
 *   image lists TRT_VERSION=10.4.0.26, TRITON_SERVER_VERSION=2.50.0, NVIDIA_TRITON_SERVER_VERSION=24.09.
 *   NVIDIA/TensorRT's own docker/ubuntu-*.Dockerfile sets `ENV TRT_VERSION=<x.y.z.w>` the same way.
 * - TENSORRT_VERSION (full version): the TensorRT image's entrypoint banner (/opt/nvidia/entrypoint.d) prints
 *   "NVIDIA TensorRT ${TENSORRT_VERSION}" cut to three parts.
 * - NVIDIA_TENSORRT_VERSION is NOT a TensorRT version in NGC images: it is the container release (yy.mm; the same
 *   banner prints "NVIDIA Release ${NVIDIA_TENSORRT_VERSION} (build ${NVIDIA_BUILD_ID})"). It is read last and only
 *   when it has the shape of a TensorRT version (x.y.z), as some non-NGC images use it.
 */
export const TENSORRT_ENV_VARS = ['TRT_VERSION', 'TENSORRT_VERSION', 'NVIDIA_TENSORRT_VERSION'] as const;

const VERSION = /^\d+\.\d+\.\d+(\.\d+)?$/;

/** The TensorRT version in an image config's Env (`NAME=value` strings); undefined when none is declared. */
export function tensorRTVersionFromEnv(env: readonly string[] | null | undefined): string | undefined {
  const vars = new Map<string, string>();
  for (const e of env ?? []) {
    const eq = e.indexOf('=');
    if (eq > 0) vars.set(e.slice(0, eq), e.slice(eq + 1).trim());
  }
  for (const name of TENSORRT_ENV_VARS) {
    const v = vars.get(name);
    if (v && VERSION.test(v)) return v;
  }
  return undefined;
}

/**
 * The Env of an image in the local engine (`docker image inspect`), or undefined when the engine does not have it
 * (or there is no engine): then the registry is asked.
 */
export async function localImageEnv(image: string, env: NodeJS.ProcessEnv = process.env): Promise<string[] | undefined> {
  let r;
  try {
    r = await runProcess('docker', ['image', 'inspect', '--format', '{{json .Config.Env}}', image], { env });
  } catch {
    return undefined;
  }
  if (r.code !== 0) return undefined;
  try {
    const parsed = JSON.parse(r.stdout.trim()) as string[] | null;
    return parsed ?? [];
  } catch {
    return undefined;
  }
}

/** The Env of an image through the registry API (manifest → config blob; no layer is downloaded). */
export async function registryImageEnv(image: string, creds?: { username: string; password: string }): Promise<string[]> {
  const config = await fetchImageConfig(image, creds?.username ? creds : undefined);
  return config.config?.Env ?? [];
}

/**
 * The TensorRT version `image` declares (TRT_VERSION, ...; see TENSORRT_ENV_VARS), e.g. "10.5.0.18"; undefined
 * when it declares none. Read from the local engine when it has the image, else from the registry. `env` is the
 * environment docker runs with (the stage's registry session), `creds` the registry credentials for the API.
 */
export async function imageTensorRTVersion(
  image: string,
  env: NodeJS.ProcessEnv = process.env,
  creds?: { username: string; password: string },
): Promise<string | undefined> {
  let vars = await localImageEnv(image, env);
  if (!vars) {
    try {
      vars = await registryImageEnv(image, creds);
    } catch (e) {
      if (e instanceof ModelshipError)
        throw new ModelshipError(
          'io',
          `cannot read the image config of ${image}: the local Docker engine does not have it, and the registry API failed: ${e.message}`,
        );
      throw e;
    }
  }
  return tensorRTVersionFromEnv(vars);
}

/** `major.minor.patch` of a TensorRT version (10.5.0.18 → 10.5.0; a missing patch counts as 0). */
export function tensorrtRelease(version: string): string {
  const parts = version.trim().split('.').slice(0, 3);
  while (parts.length < 3) parts.push('0');
  return parts.map((p) => String(Number(p))).join('.');
}

/** The `tensorrt` block of a plan's metadata (`<plan>.json`), written by the compile stage. */
export interface PlanMetadata {
  /** the TensorRT that built the plan, from trtexec's log */
  tensorrtVersion: string;
  /** the TensorRT version the tensorrt image declares in its config (TRT_VERSION, ...); absent when it declares none */
  imageTensorRTVersion?: string;
  computeCapability: string;
  gpu: string;
  driver?: string;
  /** the image trtexec ran in, pinned: repository@sha256:... */
  tensorrtImage: string;
  /** the Triton image the plan is meant for (triton-image, else that of triton-release) */
  tritonImage?: string;
  /** the trtexec command line */
  trtexec?: string;
  /** the dynamic batch profile; Triton's max_batch_size is `max` */
  profile?: { min: number; opt: number; max: number };
  precision?: { fp16: boolean; int8: boolean };
  calibrationCache?: { name: string; sha256: string };
}

/** A plan's metadata file (`<plan>.json`, written by the compile stage next to the plan). */
export interface PlanArtifactMetadata {
  format?: string;
  sha256?: string;
  tensorrt?: PlanMetadata;
  [key: string]: unknown;
}

function readMetadataFile(file: string): PlanArtifactMetadata | undefined {
  const metaPath = `${file}.json`;
  if (!fs.existsSync(metaPath)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(metaPath, 'utf8')) as PlanArtifactMetadata;
  } catch (e) {
    throw new ModelshipError('input', `${metaPath} (the metadata of ${path.basename(file)}) is not JSON: ${(e as Error).message}`, { file: metaPath });
  }
}

/** Is `file` a TensorRT plan? Its metadata says so (`<file>.json` with format tensorrt), else its extension (.plan, .engine). */
export function isTensorRTPlan(file: string): boolean {
  return isPlan(file, readMetadataFile(file));
}

function isPlan(file: string, meta: PlanArtifactMetadata | undefined): boolean {
  if (meta && typeof meta.format === 'string') return meta.format === 'tensorrt';
  return /\.(plan|engine)$/i.test(file);
}

/**
 * The metadata of a TensorRT plan (`<file>.json`), or undefined when `file` is not a plan (an ONNX model). A plan
 * without its metadata is refused: nothing then says which TensorRT built it.
 */
export function readPlanMetadata(file: string): PlanArtifactMetadata | undefined {
  const meta = readMetadataFile(file);
  if (!isPlan(file, meta)) return undefined;
  if (!meta?.tensorrt?.tensorrtVersion) {
    throw new ModelshipError(
      'input',
      `${file} is a TensorRT plan without the metadata that says which TensorRT built it (${file}.json with a "tensorrt" block); build it with stage compile (target: tensorrt), which writes both`,
      { field: 'model', file },
    );
  }
  return meta;
}

/**
 * The modelship runtime serves ONNX with ONNX Runtime, which cannot load a TensorRT plan: refuse one (no-op for
 * anything else). The image stage calls it when runtime is modelship.
 */
export function refuseModelshipPlan(file: string): void {
  if (!isTensorRTPlan(file)) return;
  throw new ModelshipError(
    'input',
    `${file} is a TensorRT plan, which the modelship runtime (ONNX Runtime) cannot load: serve it with runtime: triton (Triton's TensorRT backend), or give the ONNX model (the convert stage's onnx-path, or compile with target onnxruntime)`,
    { field: 'runtime', file },
  );
}

/**
 * A plan loads only in the TensorRT that built it: refuse (ModelshipError 'input') a plan whose TensorRT
 * (major.minor.patch) differs from the serving image's, or a serving image that declares no TensorRT version.
 * `planMeta` is the plan's metadata (readPlanMetadata) or its `tensorrt` block; `servingVersion` what
 * imageTensorRTVersion(servingImage) returned. Returns the plan's `tensorrt` block (profile.max is Triton's
 * max_batch_size).
 */
export function checkPlanForImage(planMeta: PlanArtifactMetadata | PlanMetadata, servingImage: string, servingVersion: string | undefined): PlanMetadata {
  const trt: PlanMetadata | undefined = 'tensorrtVersion' in planMeta ? (planMeta as PlanMetadata) : planMeta.tensorrt;
  if (!trt?.tensorrtVersion)
    throw new ModelshipError(
      'input',
      'the plan\'s metadata records no TensorRT version (its "tensorrt" block); build it with stage compile (target: tensorrt)',
      { field: 'model' },
    );
  const built = `TensorRT ${trt.tensorrtVersion}${trt.tensorrtImage ? ` in ${trt.tensorrtImage}` : ''}`;
  if (!servingVersion) {
    throw new ModelshipError(
      'input',
      `the serving image ${servingImage} declares no TensorRT version (looked for ${TENSORRT_ENV_VARS.join(', ')} in its config's environment), so nothing shows it can load the TensorRT plan built by ${built}. Use NVIDIA's Triton image (nvcr.io/nvidia/tritonserver:<release>-py3) or a mirror of it`,
      { field: 'triton-image' },
    );
  }
  if (tensorrtRelease(trt.tensorrtVersion) !== tensorrtRelease(servingVersion)) {
    throw new ModelshipError(
      'input',
      `refusing the TensorRT plan: ${built} built it, but the serving image ${servingImage} has TensorRT ${servingVersion}; a plan loads only in the TensorRT (major.minor.patch) that built it. Compile again with a tensorrt-image of the serving image's release (the same triton-release), or serve with the Triton image ${trt.tritonImage && trt.tritonImage !== servingImage ? `it was built for (${trt.tritonImage})` : `of TensorRT ${tensorrtRelease(trt.tensorrtVersion)}`}`,
      { field: 'triton-image' },
    );
  }
  return trt;
}

/**
 * A TensorRT plan only runs with the TensorRT that built it and on the compute capability it was built for.
 * Checked on the GPU that serves it (the image stage checks the TensorRT version without a GPU: checkPlanForImage).
 * Throws naming both sides when they differ.
 */
export function checkPlanCompatibility(plan: PlanMetadata, target: { tensorrtVersion: string; computeCapability: string; image?: string }): void {
  const problems: string[] = [];
  if (tensorrtRelease(plan.tensorrtVersion) !== tensorrtRelease(target.tensorrtVersion)) {
    problems.push(`TensorRT ${plan.tensorrtVersion} built the plan, the serving image has TensorRT ${target.tensorrtVersion}`);
  }
  if (plan.computeCapability !== target.computeCapability) {
    problems.push(`the plan is for compute capability ${plan.computeCapability} (${plan.gpu}), the target GPU is ${target.computeCapability}`);
  }
  if (problems.length) {
    throw new ModelshipError(
      'input',
      `refusing to deploy the TensorRT plan: ${problems.join('; ')}. Rebuild it with stage compile (tensorrt-image of the serving image's release) on the target GPU${target.image ? `, for ${target.image}` : ''}.`,
    );
  }
}
