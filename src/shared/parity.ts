import * as fs from 'fs';
import * as path from 'path';
import { referenceBatches, inputFile, outputFile } from './reference';
import { compareOutput, DEFAULT_TOLERANCE, OutputCheck, ParityTolerance } from './compare';
import { compareDetections, DetectionCheck, describeDetections, detectionOutputNames, isDetectionShape } from '../protocol/detections';
import { NpyArray, readNpy } from '../util/npy';
import { ModelshipError } from '../util/errors';
import { runOnnx } from '../util/ort';

export interface LayerCheck {
  layer: string;
  type: string;
  blob: string;
  onnx: string;
  /** compared against the full blob (final version) or against Caffe's per-layer statistics (in-place versions) */
  against: 'blob' | 'stats';
  /** 'layer': run on Caffe's own bottoms (the gate); 'end-to-end': bottoms unavailable, whole-net value used */
  scope?: 'layer' | 'end-to-end';
  maxAbsDiff: number;
  /** the same output's difference when the whole net runs from the input (float drift accumulates; not gated) */
  endToEnd?: number;
  limit: number;
  pass: boolean;
}

/**
 * Which of the two checks failed. The end-to-end gate judges the net's outputs from its input (float32 drift
 * accumulates over the layers: its tolerance has headroom over the worst correct net measured); the per-layer check
 * runs each layer on Caffe's own bottoms (no accumulation: the precise instrument, it names the layer).
 */
export interface ParityVerdict {
  endToEnd: 'pass' | 'fail';
  perLayer: 'pass' | 'fail' | 'not run';
  failed: 'none' | 'end-to-end' | 'per-layer' | 'both';
  /** one sentence saying which check failed (or that both passed), for logs, the markdown and the failure message */
  summary: string;
}

export interface ParityReport {
  status: 'pass' | 'fail';
  verdict: ParityVerdict;
  reference: string;
  tolerance: ParityTolerance;
  maxAbsDiff: number;
  batches: number[];
  outputs: OutputCheck[];
  /** detection tables (DetectionOutput tops), compared as detections rather than tensors */
  detections?: DetectionCheck[];
  perLayer?: { checked: number; firstDivergence: LayerCheck | null; layers: LayerCheck[] };
  runtime: string;
}

/** What the output parity check needs: the model and its input/output names and shapes (dim 0 is the batch). */
export interface ParityModel {
  onnx: Uint8Array;
  /** the model's metadata: `modelship.detection_outputs` names the detection tables */
  metadata?: Record<string, string>;
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: { name: string }[];
}

/**
 * The end-to-end gate: run the model with onnxruntime on the reference inputs (every batch size the reference has,
 * from one ONNX file) and compare with Caffe's outputs. Convert and compile run it; the convert stage's per-layer
 * check (src/convert/parity.ts) adds its verdict with withLayerCheck.
 */
export async function checkOutputParity(
  conv: ParityModel,
  dir: string,
  opts: {
    tolerance?: ParityTolerance;
    /** ORT graph optimization of the end-to-end run (default: disabled, the graph as written) */ optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  },
): Promise<ParityReport> {
  const tol = opts.tolerance ?? DEFAULT_TOLERANCE;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ModelshipError('input', 'reference directory not found', { file: dir, field: 'reference' });
  }
  const batches = referenceBatches(dir);
  if (batches.length === 0)
    throw new ModelshipError('input', 'no reference inputs (input_b<N>.npy) in the reference directory', { file: dir, field: 'reference' });
  const single = conv.inputs.length === 1;
  const checks: OutputCheck[] = [];
  const detections: DetectionCheck[] = [];
  const detectionNames = new Set(
    detectionOutputNames(
      conv.metadata ?? {},
      conv.outputs.map((o) => o.name),
    ),
  );
  let runtime = '';
  for (const batch of batches) {
    const feeds: Record<string, NpyArray> = {};
    for (const inp of conv.inputs) {
      const arr = readNpy(inputFile(dir, batch, inp.name, single));
      const want = [batch, ...inp.shape.slice(1)];
      if (arr.shape.join() !== want.join()) {
        throw new ModelshipError('input', `reference input for "${inp.name}" has shape [${arr.shape.join(',')}], the net expects [${want.join(',')}]`, {
          file: dir,
        });
      }
      feeds[inp.name] = arr;
    }
    const result = await runOnnx(
      conv.onnx,
      feeds,
      conv.outputs.map((o) => o.name),
      opts.optimization,
    );
    runtime = result.runtime;
    for (const out of conv.outputs) {
      const refFile = outputFile(dir, batch, out.name);
      if (!fs.existsSync(refFile)) throw new ModelshipError('input', `reference output ${path.basename(refFile)} not found`, { file: dir });
      const got = result.outputs[out.name];
      const ref = readNpy(refFile);
      if (detectionNames.has(out.name) && isDetectionShape(ref.shape) && isDetectionShape(got.shape))
        detections.push(compareDetections(out.name, batch, got, ref));
      else checks.push(compareOutput(out.name, batch, got, ref, tol));
    }
  }
  const endToEnd = checks.every((c) => c.pass) && detections.every((d) => d.pass) ? 'pass' : 'fail';
  const report: ParityReport = {
    status: endToEnd,
    verdict: verdictOf(endToEnd, 'not run'),
    reference: dir,
    tolerance: tol,
    maxAbsDiff: checks.reduce((m, c) => Math.max(m, c.maxAbsDiff), 0),
    batches,
    outputs: checks,
    ...(detections.length ? { detections } : {}),
    runtime,
  };
  return report;
}

/** Add the per-layer check's result to an end-to-end report: its verdict, and a failure when a layer diverges. */
export function withLayerCheck(report: ParityReport, perLayer: NonNullable<ParityReport['perLayer']>): ParityReport {
  report.perLayer = perLayer;
  report.verdict = verdictOf(report.verdict.endToEnd, perLayer.firstDivergence ? 'fail' : 'pass', perLayer.firstDivergence?.layer);
  if (perLayer.firstDivergence) report.status = 'fail';
  return report;
}

function verdictOf(endToEnd: 'pass' | 'fail', perLayer: ParityVerdict['perLayer'], layer?: string): ParityVerdict {
  const failed: ParityVerdict['failed'] = endToEnd === 'fail' ? (perLayer === 'fail' ? 'both' : 'end-to-end') : perLayer === 'fail' ? 'per-layer' : 'none';
  const summary = {
    none: perLayer === 'pass' ? 'both checks pass (the end-to-end gate and the per-layer check)' : 'the end-to-end gate passes (per-layer check not run)',
    both: `both checks failed (the end-to-end gate and the per-layer check, first diverging layer "${layer}")`,
    'end-to-end':
      perLayer === 'pass'
        ? "the end-to-end gate failed; the per-layer check passes (every layer matches Caffe on Caffe's own bottoms: look outside the layers, at the input, preprocessing or outputs, or at drift accumulated over a deep net)"
        : 'the end-to-end gate failed (per-layer check not run)',
    'per-layer': `the per-layer check failed (first diverging layer "${layer}"); the end-to-end gate passes`,
  }[failed];
  return { endToEnd, perLayer, failed, summary };
}

/**
 * The failure message of a failed report: which check failed (the end-to-end gate, the per-layer check, or both),
 * then each one's worst number against its limit.
 */
export function parityFailure(r: ParityReport): string {
  const fmt = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(3)).toString() : String(x));
  const ratio = (c: OutputCheck) => c.maxAbsDiff / c.limit;
  const failing = r.outputs.filter((c) => !c.pass);
  const badDetections = (r.detections ?? []).filter((d) => !d.pass);
  let e2e: string;
  if (badDetections.length && !failing.length) {
    const d = badDetections[0];
    e2e = `end-to-end gate: "${d.output}" at batch ${d.batch}: ${describeDetections(d)}`;
  } else {
    const worst = (failing.length ? failing : r.outputs).reduce((m, c) => (ratio(c) > ratio(m) ? c : m));
    e2e =
      `end-to-end gate: max |Δ| ${fmt(worst.maxAbsDiff)} ${worst.maxAbsDiff <= worst.limit ? '≤' : '>'} limit ${fmt(worst.limit)} ` +
      `(tolerance ${r.tolerance.maxAbsDiff} · max(1, max |reference|)) on "${worst.output}" at batch ${worst.batch}${worst.topKMatch ? '' : `, top-${r.tolerance.topK} differs`}` +
      (badDetections.length ? `; "${badDetections[0].output}" at batch ${badDetections[0].batch}: ${describeDetections(badDetections[0])}` : '');
  }
  const f = r.perLayer?.firstDivergence;
  const layer = f ? `; per-layer check: layer "${f.layer}" (${f.type}), max |Δ| ${fmt(f.maxAbsDiff)} > limit ${fmt(f.limit)}` : '';
  return `parity check failed: ${r.verdict.summary}. ${e2e.charAt(0).toUpperCase()}${e2e.slice(1)}${layer}`;
}

/** The markdown table written next to the model and into the job summary. */
export function parityMarkdown(r: ParityReport): string {
  const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));
  const lines = [
    `### Parity against Caffe: ${r.status === 'pass' ? '✅ pass' : '❌ fail'}`,
    '',
    `**Verdict:** ${r.verdict.summary}.`,
    '',
    `End-to-end gate (max \\|Δ\\| ≤ ${r.tolerance.maxAbsDiff} · max(1, max \\|reference\\|), same top-${r.tolerance.topK} up to near-ties): **${r.verdict.endToEnd}**; runtime: ${r.runtime}`,
    '',
    `| batch | output | shape | max \\|Δ\\| | limit | top-${r.tolerance.topK} match | result |`,
    '|---:|---|---|---:|---:|:---:|:---:|',
    ...r.outputs.map(
      (c) =>
        `| ${c.batch} | ${c.output} | [${c.shape.join(', ')}] | ${fmt(c.maxAbsDiff)} | ${fmt(c.limit)} | ${c.topKMatch ? 'yes' : 'no'} | ${c.pass ? 'pass' : '**fail**'} |`,
    ),
  ];
  if (r.detections?.length) {
    const t = r.detections[0].tolerance;
    lines.push(
      '',
      `Detections (each reference detection matched to one of the same image and label; score and box \\|Δ\\| ≤ ${t.score} and ${t.box}):`,
      '',
      '| batch | output | detections per image (got / reference) | max score \\|Δ\\| | max box \\|Δ\\| | unmatched | result |',
      '|---:|---|---|---:|---:|---:|:---:|',
      ...r.detections.map(
        (d) =>
          `| ${d.batch} | ${d.output} | ${d.counts.map((c) => `${c.got} / ${c.reference}`).join(', ') || 'none'} | ${fmt(d.maxScoreDiff)} | ${fmt(d.maxBoxDiff)} | ${d.unmatched} | ${d.pass ? 'pass' : '**fail**'} |`,
      ),
    );
  }
  if (r.perLayer) {
    lines.push(
      '',
      `Per-layer: ${r.perLayer.checked} layer outputs compared at batch 1, each layer run on Caffe's own bottoms (max \\|Δ\\| ≤ ${r.tolerance.layerRelative} · max(1, max \\|reference\\|)): **${r.verdict.perLayer}**.`,
    );
    const f = r.perLayer.firstDivergence;
    if (f) {
      lines.push(`First divergence: layer \`${f.layer}\` (${f.type}), blob \`${f.blob}\`: max |Δ| ${fmt(f.maxAbsDiff)} > ${fmt(f.limit)}.`);
    } else {
      const worst = r.perLayer.layers.reduce((m, l) => (l.maxAbsDiff / l.limit > m.maxAbsDiff / m.limit ? l : m), r.perLayer.layers[0]);
      if (worst) lines.push(`No layer diverges; closest to its limit: \`${worst.layer}\` (${fmt(worst.maxAbsDiff)} of ${fmt(worst.limit)}).`);
    }
  }
  return lines.join('\n') + '\n';
}

export type { OutputCheck, ParityTolerance };
export { DEFAULT_TOLERANCE };
