import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CompileConfig } from './inputs';
import { Logger, StageResult } from '../stage';
import { readFileChecked, sha256, writeFileAtomic } from '../util/fsx';
import { onnxInfo, TensorSig } from '../formats/onnxinfo';
import { runProcess } from '../util/proc';
import { loadOrt } from '../util/ort';
import { ModelshipError } from '../util/errors';
import { checkOutputParity, parityMarkdown, DEFAULT_TOLERANCE, ParityReport } from '../shared/parity';
import { checkCalibrationCache, parseNvidiaSmi, parsePullDigest, parseTensorRTVersion, pinnedRef, planTensorRT, shapesAt } from './tensorrt';
import { imageTensorRTVersion, localImageEnv, PlanMetadata, tensorrtRelease, tensorRTVersionFromEnv } from '../shared/tensorrt';
import { VERSION } from '../version';
import { convertToFloat16 } from './fp16';
import { chooseLrnForm, lrnMarkdown, LrnRecord } from './lrn';

/** The parity tolerance of float16 artifacts (float32 models use the `tolerance` input). */
export const FP16_TOLERANCE = 2e-3;

/** Where the artifact goes when `artifact` is not given: next to the model. */
export function defaultArtifactPath(model: string, target: 'onnxruntime' | 'tensorrt'): string {
  const base = model.replace(/\.onnx$/i, '');
  return target === 'tensorrt' ? `${base}.plan` : `${base}.ort.onnx`;
}

/**
 * The compile stage: the deployment artifact for the target.
 * - onnxruntime: ONNX Runtime's offline graph optimization, saved as ONNX ("extended" for the CPU EP, "basic",
 *   provider-independent, for CUDA), then the parity check again on the optimized model.
 * - tensorrt: trtexec in tensorrt-image (pinned by digest first) on a GPU runner; the TensorRT version, the GPU, the
 *   pinned image and the Triton image it is meant for are recorded, so a plan is never deployed onto a Triton of
 *   another TensorRT (checkPlanForImage in the image stage, checkPlanCompatibility on the GPU).
 * Writes the artifact and `<artifact>.json` (its metadata) atomically.
 */
export async function runCompile(cfg: CompileConfig, log: Logger): Promise<StageResult> {
  const source = readFileChecked(cfg.model, 'model');
  const info = onnxInfo(source, cfg.model);
  const artifact = cfg.artifact || defaultArtifactPath(cfg.model, cfg.target);
  const meta: Record<string, unknown> = {
    format: cfg.target,
    modelship: VERSION,
    source: { path: cfg.model, sha256: sha256(source), opset: info.opset },
    inputs: info.inputs,
    outputs: info.outputs,
    created: new Date().toISOString(),
  };
  let bytes: Buffer;
  let report: ParityReport | undefined;
  let tolerance = cfg.tolerance;
  if (cfg.target === 'onnxruntime') {
    if (cfg.fp16 && cfg.executionProvider !== 'cuda')
      throw new ModelshipError('input', 'input "fp16": float16 artifacts are for GPU execution providers; set execution-provider to cuda', { field: 'fp16' });
    const level = cfg.executionProvider === 'cuda' ? 'basic' : 'extended';
    // the LRN op, or the same function in primitive operators where that runs faster (src/compile/lrn.ts)
    const lrn = await chooseLrnForm(
      source,
      { setting: cfg.lrn, executionProvider: cfg.executionProvider, inputs: info.inputs, reference: cfg.reference, tolerance: cfg.tolerance, file: cfg.model },
      log,
    );
    if (lrn.record) meta.lrn = lrn.record;
    bytes = await log.group(`Optimize with ONNX Runtime (${level}, for the ${cfg.executionProvider} execution provider)`, async () => {
      const ort = loadOrt();
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-compile-'));
      try {
        const out = path.join(tmp, 'optimized.onnx');
        const t0 = Date.now();
        const s = await ort.InferenceSession.create(lrn.model, { executionProviders: ['cpu'], graphOptimizationLevel: level, optimizedModelFilePath: out });
        await s.release();
        const b = fs.readFileSync(out);
        log.info(`optimized in ${Date.now() - t0} ms: ${source.length} → ${b.length} bytes`);
        return b;
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
    if (cfg.fp16) {
      // float16 weights and activations, float32 inputs and outputs; run by the GPU execution provider
      bytes = Buffer.from(convertToFloat16(bytes));
      log.info(`converted to float16: ${bytes.length} bytes`);
    }
    // float16 keeps about 3 significant digits: its parity check allows FP16_TOLERANCE (top-5 must still match)
    if (cfg.fp16) tolerance = Math.max(cfg.tolerance, FP16_TOLERANCE);
    meta.onnxruntime = {
      version: loadOrt().env.versions.node,
      executionProvider: cfg.executionProvider,
      graphOptimizationLevel: level,
      precision: cfg.fp16 ? 'float16' : 'float32',
    };
    if (cfg.reference) {
      report = await log.group(`Parity of the optimized model (tolerance ${tolerance})`, async () => {
        const r = await checkOutputParity({ onnx: bytes, inputs: info.inputs, outputs: info.outputs, metadata: info.metadata }, cfg.reference!, {
          tolerance: { ...DEFAULT_TOLERANCE, maxAbsDiff: tolerance },
        });
        log.info(`parity ${r.status}: max |Δ| ${r.maxAbsDiff.toExponential(3)}`);
        return r;
      });
    }
  } else {
    const r = await compileTensorRT(cfg, info.inputs, artifact, log);
    bytes = r.bytes;
    meta.tensorrt = r.metadata;
  }
  const digest = sha256(bytes);
  meta.sha256 = digest;
  if (report) meta.parity = { status: report.status, maxAbsDiff: report.maxAbsDiff, batches: report.batches };
  const metaPath = `${artifact}.json`;
  if (cfg.target === 'onnxruntime') writeFileAtomic(artifact, bytes);
  writeFileAtomic(metaPath, JSON.stringify(meta, null, 2) + '\n');
  const ok = !report || report.status === 'pass';
  let summary = `## modelship compile\n\n\`${cfg.model}\` → \`${artifact}\` (${cfg.target}, sha256 \`${digest.slice(0, 16)}…\`, ${bytes.length} bytes)\n\n`;
  if (meta.lrn) summary += lrnMarkdown(meta.lrn as LrnRecord) + '\n';
  if (report) summary += parityMarkdown(report).replace('### Parity against Caffe', '### Parity of the optimized model against Caffe');
  const trt = meta.tensorrt as PlanMetadata | undefined;
  if (trt)
    summary += `TensorRT ${trt.tensorrtVersion} in \`${trt.tensorrtImage}\` on ${trt.gpu} (compute ${trt.computeCapability}), batch ${trt.profile?.min}/${trt.profile?.opt}/${trt.profile?.max}${trt.precision?.int8 ? ', int8' : trt.precision?.fp16 ? ', fp16' : ''}; for \`${trt.tritonImage}\`\n`;
  return {
    outputs: { 'artifact-path': artifact, 'artifact-sha256': digest, 'artifact-metadata': metaPath, 'compile-parity': report ? report.status : 'skipped' },
    summary,
    ok,
    failure: ok
      ? undefined
      : `the optimized model fails the parity check: max |Δ| ${report!.maxAbsDiff} (tolerance ${tolerance}${cfg.fp16 ? ', float16' : ''})`,
  };
}

/**
 * Pin `ref` by digest: pull it (so a tag resolves to what the registry has now), then the digest pull reported, checked
 * against the image's RepoDigests. A failed pull of an image the engine already has (an offline runner) is a warning.
 */
export async function resolvePinnedImage(ref: string, log: Logger, env: NodeJS.ProcessEnv = process.env, input = 'tensorrt-image'): Promise<string> {
  const pull = await log.group(`docker pull ${ref}`, () => runProcess('docker', ['pull', ref], { env, onLine: log.info }));
  if (pull.code !== 0)
    log.warning(`docker pull ${ref} failed (exit ${pull.code}): ${pull.stderr.trim().split('\n').slice(-1)[0] ?? ''}; using the engine's copy if it has one`);
  const inspect = await runProcess('docker', ['image', 'inspect', '--format', '{{json .RepoDigests}}', ref], { env });
  if (inspect.code !== 0) {
    throw new ModelshipError(
      'input',
      `input "${input}": cannot resolve ${ref}: ${pull.code !== 0 ? `docker pull failed (${(pull.stderr.trim().split('\n').slice(-1)[0] ?? '').slice(0, 300)}) and ` : ''}the local engine does not have it (${inspect.stderr.trim().slice(0, 200)})`,
      { field: input },
    );
  }
  let digests: string[] = [];
  try {
    digests = (JSON.parse(inspect.stdout.trim()) as string[] | null) ?? [];
  } catch {
    digests = [];
  }
  const pinned = pinnedRef(ref, digests, pull.code === 0 ? parsePullDigest(pull.stdout) : undefined);
  if (!pinned)
    throw new ModelshipError(
      'input',
      `input "${input}": ${ref} has no registry digest to pin it by (RepoDigests: ${digests.length ? digests.join(', ') : 'none'}); push it to a registry, or give repository@sha256:...`,
      { field: input },
    );
  return pinned;
}

/**
 * target tensorrt: everything that can be checked without a GPU first (the model's shapes, the calibration cache,
 * tensorrt-image pinned by digest and its TensorRT against triton-image's), then the GPU query and trtexec. Writes the
 * plan next to the model and returns it with the metadata's `tensorrt` block.
 */
async function compileTensorRT(cfg: CompileConfig, inputs: TensorSig[], artifact: string, log: Logger): Promise<{ bytes: Buffer; metadata: PlanMetadata }> {
  const dir = path.dirname(path.resolve(artifact));
  const onnxName = path.basename(cfg.model);
  if (path.dirname(path.resolve(cfg.model)) !== dir)
    throw new ModelshipError('input', 'for target tensorrt the artifact must be written next to the model (both are mounted into the container)', {
      field: 'artifact',
    });
  shapesAt(inputs, 1); // only the batch may be dynamic
  const calib = checkCalibrationCache(cfg.int8, cfg.calibrationCache);
  if (cfg.calibrationCache && !cfg.int8) log.warning('input "calibration-cache" is only used with int8: true; ignored');
  const image = await resolvePinnedImage(cfg.tensorrtImage, log);
  const imageVersion = tensorRTVersionFromEnv(await localImageEnv(image));
  log.info(`${cfg.tensorrtImage} → ${image}${imageVersion ? ` (TensorRT ${imageVersion})` : ' (declares no TensorRT version)'}`);
  // the plan is for cfg.tritonImage: refuse now, not after the build, when its TensorRT is known to differ
  let tritonVersion: string | undefined;
  try {
    tritonVersion = await imageTensorRTVersion(cfg.tritonImage);
  } catch (e) {
    log.warning(`cannot read the TensorRT version of ${cfg.tritonImage} (the image stage checks it): ${(e as Error).message}`);
  }
  if (imageVersion && tritonVersion && tensorrtRelease(imageVersion) !== tensorrtRelease(tritonVersion)) {
    throw new ModelshipError(
      'input',
      `input "tensorrt-image": ${cfg.tensorrtImage} has TensorRT ${imageVersion}, but the Triton image the plan is for, ${cfg.tritonImage}, has TensorRT ${tritonVersion}: Triton could not load the plan. Use the same triton-release for both (or matching tensorrt-image and triton-image)`,
      { field: 'tensorrt-image' },
    );
  }
  let calibName: string | undefined;
  let calibSha: string | undefined;
  if (calib) {
    calibName = path.basename(calib);
    const inWork = path.join(dir, calibName);
    const data = fs.readFileSync(calib);
    calibSha = sha256(data);
    if (path.resolve(inWork) !== calib) {
      if (fs.existsSync(inWork) && sha256(fs.readFileSync(inWork)) !== calibSha)
        throw new ModelshipError(
          'input',
          `input "calibration-cache": ${inWork} exists and differs from ${calib}; the cache is copied next to the model, so rename one of them`,
          { field: 'calibration-cache' },
        );
      fs.writeFileSync(inWork, data);
    }
  }
  const uid = process.getuid?.();
  const plan = planTensorRT(inputs, onnxName, path.basename(artifact), dir, {
    image,
    batches: cfg.batchSizes,
    fp16: cfg.fp16,
    int8: cfg.int8,
    workspaceMiB: cfg.workspaceMiB,
    timingCache: 'trt-timing.cache',
    calibrationCache: calibName,
    user: uid !== undefined && uid !== 0 ? `${uid}:${process.getgid?.() ?? uid}` : undefined,
  });
  // the GPU boundary: nothing below runs without a GPU runner (NVIDIA driver and container toolkit)
  const gpu = await runProcess('docker', plan.gpuQueryArgs);
  if (gpu.code !== 0)
    throw new ModelshipError(
      'io',
      `the GPU query in ${image} failed (target tensorrt needs a GPU runner with the NVIDIA container toolkit): ${gpu.stderr.trim().slice(-400)}`,
    );
  const g = parseNvidiaSmi(gpu.stdout);
  const build = await log.group(`trtexec in ${image} on ${g.name} (compute ${g.computeCapability})`, () =>
    runProcess('docker', plan.dockerArgs, { onLine: log.info }),
  );
  if (build.code !== 0) throw new ModelshipError('graph', `trtexec failed (exit ${build.code}): ${(build.stdout + build.stderr).trim().slice(-800)}`);
  const bytes = readFileChecked(artifact, 'TensorRT plan');
  const tensorrtVersion = parseTensorRTVersion(build.stdout + build.stderr);
  if (imageVersion && tensorrtRelease(imageVersion) !== tensorrtRelease(tensorrtVersion))
    log.warning(`trtexec reports TensorRT ${tensorrtVersion}, but ${cfg.tensorrtImage} declares ${imageVersion}; the plan's metadata records trtexec's`);
  const [min, opt, max] = cfg.batchSizes;
  return {
    bytes,
    metadata: {
      tensorrtVersion,
      imageTensorRTVersion: imageVersion,
      computeCapability: g.computeCapability,
      gpu: g.name,
      driver: g.driver,
      tensorrtImage: image,
      tritonImage: cfg.tritonImage,
      trtexec: plan.trtexec.join(' '),
      profile: { min, opt, max },
      precision: { fp16: cfg.fp16, int8: cfg.int8 },
      ...(calibName && calibSha ? { calibrationCache: { name: calibName, sha256: calibSha } } : {}),
    },
  };
}
