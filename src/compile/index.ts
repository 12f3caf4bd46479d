import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CompileConfig } from '../config';
import { Logger, StageResult } from '../stage';
import { readFileChecked, sha256, writeFileAtomic } from '../util/fsx';
import { onnxInfo } from '../util/onnxinfo';
import { runProcess } from '../util/proc';
import { loadOrt } from '../util/ort';
import { ModelshipError } from '../util/errors';
import { checkParity, parityMarkdown, DEFAULT_TOLERANCE, ParityReport } from '../convert/parity';
import { planTensorRT, parseNvidiaSmi, parseTensorRTVersion } from './tensorrt';
import { VERSION } from '../version';
import { convertToFloat16 } from './fp16';

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
 * - tensorrt: trtexec inside the serving base image on a GPU runner; TensorRT version and compute capability
 *   are recorded so a plan is never deployed onto a mismatched image (see checkPlanCompatibility).
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
    if (cfg.fp16 && cfg.executionProvider !== 'cuda') throw new ModelshipError('input', 'input "fp16": float16 artifacts are for GPU execution providers; set execution-provider to cuda', { field: 'fp16' });
    const level = cfg.executionProvider === 'cuda' ? 'basic' : 'extended';
    bytes = await log.group(`Optimize with ONNX Runtime (${level}, for the ${cfg.executionProvider} execution provider)`, async () => {
      const ort = loadOrt();
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-compile-'));
      try {
        const out = path.join(tmp, 'optimized.onnx');
        const t0 = Date.now();
        const s = await ort.InferenceSession.create(source, { executionProviders: ['cpu'], graphOptimizationLevel: level, optimizedModelFilePath: out });
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
    meta.onnxruntime = { version: loadOrt().env.versions.node, executionProvider: cfg.executionProvider, graphOptimizationLevel: level, precision: cfg.fp16 ? 'float16' : 'float32' };
    if (cfg.reference) {
      report = await log.group(`Parity of the optimized model (tolerance ${tolerance})`, async () => {
        const r = await checkParity({ onnx: bytes, inputs: info.inputs, outputs: info.outputs }, cfg.reference!, { perLayer: false, tolerance: { ...DEFAULT_TOLERANCE, maxAbsDiff: tolerance } });
        log.info(`parity ${r.status}: max |Δ| ${r.maxAbsDiff.toExponential(3)}`);
        return r;
      });
    }
  } else {
    const dir = path.dirname(path.resolve(artifact));
    const onnxName = path.basename(cfg.model);
    if (path.dirname(path.resolve(cfg.model)) !== dir) throw new ModelshipError('input', 'for target tensorrt the artifact must be written next to the model (both are mounted into the container)', { field: 'artifact' });
    const plan = planTensorRT(info.inputs, onnxName, path.basename(artifact), dir, {
      baseImage: cfg.baseImage,
      batches: cfg.batchSizes,
      fp16: cfg.fp16,
      int8: cfg.int8,
      workspaceMiB: cfg.workspaceMiB,
      timingCache: 'trt-timing.cache',
    });
    const gpu = await runProcess('docker', plan.gpuQueryArgs);
    if (gpu.code !== 0) throw new ModelshipError('io', `the GPU query in ${cfg.baseImage} failed (target tensorrt needs a GPU runner with the NVIDIA container toolkit): ${gpu.stderr.trim().slice(-400)}`);
    const g = parseNvidiaSmi(gpu.stdout);
    const build = await log.group(`trtexec in ${cfg.baseImage} on ${g.name} (compute ${g.computeCapability})`, () => runProcess('docker', plan.dockerArgs, { onLine: log.info }));
    if (build.code !== 0) throw new ModelshipError('graph', `trtexec failed (exit ${build.code}): ${(build.stdout + build.stderr).trim().slice(-800)}`);
    bytes = readFileChecked(artifact, 'TensorRT plan');
    meta.tensorrt = { tensorrtVersion: parseTensorRTVersion(build.stdout + build.stderr), computeCapability: g.computeCapability, gpu: g.name, driver: g.driver, baseImage: cfg.baseImage, trtexec: plan.trtexec.join(' ') };
  }
  const digest = sha256(bytes);
  meta.sha256 = digest;
  if (report) meta.parity = { status: report.status, maxAbsDiff: report.maxAbsDiff, batches: report.batches };
  const metaPath = `${artifact}.json`;
  if (cfg.target === 'onnxruntime') writeFileAtomic(artifact, bytes);
  writeFileAtomic(metaPath, JSON.stringify(meta, null, 2) + '\n');
  const ok = !report || report.status === 'pass';
  let summary = `## modelship compile\n\n\`${cfg.model}\` → \`${artifact}\` (${cfg.target}, sha256 \`${digest.slice(0, 16)}…\`, ${bytes.length} bytes)\n\n`;
  if (report) summary += parityMarkdown(report).replace('### Parity against Caffe', '### Parity of the optimized model against Caffe');
  return {
    outputs: { 'artifact-path': artifact, 'artifact-sha256': digest, 'artifact-metadata': metaPath, 'compile-parity': report ? report.status : 'skipped' },
    summary,
    ok,
    failure: ok ? undefined : `the optimized model fails the parity check: max |Δ| ${report!.maxAbsDiff} (tolerance ${tolerance}${cfg.fp16 ? ', float16' : ''})`,
  };
}
