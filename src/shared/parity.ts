import * as fs from 'fs';
import * as path from 'path';
import type { ConversionResult, BlobVersion } from '../convert/converter';
import { referenceBatches, inputFile, outputFile, blobFileName } from './reference';
import { absMax, compareOutput, DEFAULT_TOLERANCE, maxAbs, OutputCheck, ParityTolerance } from './compare';
import { compareDetections, DetectionCheck, describeDetections, detectionOutputNames, isDetectionShape } from './detections';
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
 * Run the converted model with onnxruntime on the reference inputs (every batch size the reference has, from
 * one ONNX file) and compare with Caffe's outputs. With `perLayer`, also compare every intermediate blob at batch 1.
 */
export async function checkParity(
  conv: ParityModel | ConversionResult,
  dir: string,
  opts: { perLayer: boolean; tolerance?: ParityTolerance; /** ORT graph optimization of the end-to-end run (default: disabled, the graph as written) */ optimization?: 'disabled' | 'basic' | 'extended' | 'all' },
): Promise<ParityReport> {
  const tol = opts.tolerance ?? DEFAULT_TOLERANCE;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ModelshipError('input', 'reference directory not found', { file: dir, field: 'reference' });
  }
  const batches = referenceBatches(dir);
  if (batches.length === 0) throw new ModelshipError('input', 'no reference inputs (input_b<N>.npy) in the reference directory', { file: dir, field: 'reference' });
  const single = conv.inputs.length === 1;
  const checks: OutputCheck[] = [];
  const detections: DetectionCheck[] = [];
  const detectionNames = new Set(detectionOutputNames(conv.metadata ?? {}, conv.outputs.map((o) => o.name)));
  let runtime = '';
  for (const batch of batches) {
    const feeds: Record<string, NpyArray> = {};
    for (const inp of conv.inputs) {
      const arr = readNpy(inputFile(dir, batch, inp.name, single));
      const want = [batch, ...inp.shape.slice(1)];
      if (arr.shape.join() !== want.join()) {
        throw new ModelshipError('input', `reference input for "${inp.name}" has shape [${arr.shape}], the net expects [${want}]`, { file: dir });
      }
      feeds[inp.name] = arr;
    }
    const result = await runOnnx(conv.onnx, feeds, conv.outputs.map((o) => o.name), opts.optimization);
    runtime = result.runtime;
    for (const out of conv.outputs) {
      const refFile = outputFile(dir, batch, out.name);
      if (!fs.existsSync(refFile)) throw new ModelshipError('input', `reference output ${path.basename(refFile)} not found`, { file: dir });
      const got = result.outputs[out.name];
      const ref = readNpy(refFile);
      if (detectionNames.has(out.name) && isDetectionShape(ref.shape) && isDetectionShape(got.shape)) detections.push(compareDetections(out.name, batch, got, ref));
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
  if (opts.perLayer) {
    if (!('versions' in conv)) throw new ModelshipError('input', 'per-layer parity needs the conversion (layer outputs are only known while converting)');
    report.perLayer = await checkLayers(conv, dir, tol, single);
    report.verdict = verdictOf(endToEnd, report.perLayer.firstDivergence ? 'fail' : 'pass', report.perLayer.firstDivergence?.layer);
    if (report.perLayer.firstDivergence) report.status = 'fail';
  }
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

interface LayerStats {
  min: number;
  max: number;
  mean: number;
  std: number;
}

async function checkLayers(conv: ConversionResult, dir: string, tol: ParityTolerance, single: boolean): Promise<NonNullable<ParityReport['perLayer']>> {
  const batch = 1;
  const blobDir = path.join(dir, `blobs_b${batch}`);
  if (!fs.existsSync(blobDir)) throw new ModelshipError('input', `--per-layer needs the intermediate blobs in ${path.basename(blobDir)}/`, { file: dir });
  // Optional summary.json (caffe-oracle layout): blob → file, and per-layer statistics for in-place versions.
  const blobFiles = new Map<string, string>();
  const statsAfterLayer = new Map<string, LayerStats>(); // key: layer + '\0' + blob
  const summaryPath = path.join(dir, 'summary.json');
  if (fs.existsSync(summaryPath)) {
    try {
      const summary = JSON.parse(fs.readFileSync(summaryPath, 'utf8')) as {
        blobs_b1?: { blob: string; file: string }[];
        layers_b1?: { name: string; top_stats?: Record<string, LayerStats> }[];
      };
      for (const b of summary.blobs_b1 ?? []) blobFiles.set(b.blob, path.join(dir, b.file));
      for (const l of summary.layers_b1 ?? []) for (const [blob, s] of Object.entries(l.top_stats ?? {})) statsAfterLayer.set(`${l.name}\0${blob}`, s);
    } catch (e) {
      throw new ModelshipError('input', `cannot read summary.json: ${(e as Error).message}`, { file: summaryPath });
    }
  }
  const inputs: Record<string, NpyArray> = {};
  for (const inp of conv.inputs) inputs[inp.name] = readNpy(inputFile(dir, batch, inp.name, single));

  // Caffe's exact values: the net inputs and every blob's final version (what net.blobs holds after a forward),
  // each file read once: it serves as the reference of its layer and as the bottom of the layers after it.
  const byOnnx = new Map(conv.versions.map((v) => [v.onnx, v]));
  const cache = new Map<string, NpyArray | null>();
  const finalBlob = (v: BlobVersion): NpyArray | null => {
    if (!v.final) return null;
    if (!cache.has(v.blob)) {
      const file = blobFiles.get(v.blob) ?? path.join(blobDir, `${blobFileName(v.blob)}.npy`);
      cache.set(v.blob, fs.existsSync(file) ? readNpy(file) : null);
    }
    return cache.get(v.blob)!;
  };
  const exact = (onnx: string): NpyArray | null => {
    if (inputs[onnx]) return inputs[onnx];
    const v = byOnnx.get(onnx);
    return v ? finalBlob(v) : null;
  };

  // The whole net with every layer output exposed: each layer's drift from Caffe end to end (reported, not gated).
  const all = await runOnnx(conv.encodeWithAllOutputs(), inputs, conv.versions.map((v) => v.onnx));

  // A layer is checked on Caffe's own bottoms. Caffe lets only in-place layers read a blob version that is
  // later overwritten, so each blob's chain of versions (producer, then in-place layers) runs as one unit.
  const chains = new Map<string, BlobVersion[]>();
  for (const v of conv.versions) chains.set(v.blob, [...(chains.get(v.blob) ?? []), v]);
  const order = new Map(conv.versions.map((v, i) => [v, i]));
  const found: { check: LayerCheck; at: number }[] = [];
  for (const chain of chains.values()) {
    const layers = new Set(chain.map((v) => v.layer));
    const external = conv.externalInputs(layers);
    const feeds: Record<string, NpyArray> = {};
    let local = true;
    for (const name of external) {
      const value = exact(name);
      // a bottom Caffe did not keep, or one whose shape the conversion got wrong (the layer that made it is blamed)
      const shape = byOnnx.get(name)?.shape ?? conv.inputs.find((i) => i.name === name)?.shape;
      if (!value || !shape || value.shape.slice(1).join() !== shape.slice(1).join()) {
        local = false;
        break;
      }
      feeds[name] = value;
    }
    let outputs: Record<string, NpyArray>;
    if (local) {
      const ins = external.map((name) => ({ name, shape: byOnnx.get(name)?.shape ?? conv.inputs.find((i) => i.name === name)!.shape }));
      const model = conv.encodeLayers(layers, ins, chain.map((v) => ({ name: v.onnx, shape: v.shape })));
      outputs = (await runOnnx(model, feeds, chain.map((v) => v.onnx))).outputs;
    } else {
      outputs = all.outputs; // no usable bottoms from Caffe: fall back to the end-to-end values
    }
    for (const v of chain) {
      const check = compareVersion(v, outputs[v.onnx], finalBlob(v), statsAfterLayer, tol);
      if (!check) continue;
      check.scope = local ? 'layer' : 'end-to-end';
      const drift = compareVersion(v, all.outputs[v.onnx], finalBlob(v), statsAfterLayer, tol);
      if (drift) check.endToEnd = drift.maxAbsDiff;
      found.push({ check, at: order.get(v)! });
    }
  }
  const layers = found.sort((a, b) => a.at - b.at).map((f) => f.check);
  return { checked: layers.length, firstDivergence: layers.find((l) => !l.pass) ?? null, layers };
}

/** One layer output against Caffe: the whole blob (`ref`, for final versions) or Caffe's statistics of it. */
function compareVersion(v: BlobVersion, got: NpyArray, ref: NpyArray | null, stats: Map<string, LayerStats>, tol: ParityTolerance): LayerCheck | undefined {
  const base = { layer: v.layer, type: v.layerType, blob: v.blob, onnx: v.onnx };
  if (v.final) {
    if (!ref) return undefined;
    const limit = tol.layerRelative * Math.max(1, absMax(ref.data));
    if (ref.shape.join() !== got.shape.join()) return { ...base, against: 'blob', maxAbsDiff: Infinity, limit, pass: false };
    const d = maxAbs(got.data, ref.data);
    return { ...base, against: 'blob', maxAbsDiff: d, limit, pass: d <= limit };
  }
  const s = stats.get(`${v.layer}\0${v.blob}`);
  if (!s) return undefined;
  // in-place intermediate: Caffe only kept statistics of it
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  const data = got.data;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  const mean = sum / data.length;
  let sq = 0;
  for (let i = 0; i < data.length; i++) sq += (data[i] - mean) * (data[i] - mean);
  const std = Math.sqrt(sq / got.data.length);
  const scale = Math.max(1, Math.abs(s.min), Math.abs(s.max));
  const limit = tol.layerRelative * scale;
  const d = Math.max(Math.abs(min - s.min), Math.abs(max - s.max), Math.abs(mean - s.mean), Math.abs(std - s.std));
  return { ...base, against: 'stats', maxAbsDiff: d, limit, pass: d <= limit };
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
    ...r.outputs.map((c) => `| ${c.batch} | ${c.output} | [${c.shape.join(', ')}] | ${fmt(c.maxAbsDiff)} | ${fmt(c.limit)} | ${c.topKMatch ? 'yes' : 'no'} | ${c.pass ? 'pass' : '**fail**'} |`),
  ];
  if (r.detections?.length) {
    const t = r.detections[0].tolerance;
    lines.push(
      '',
      `Detections (each reference detection matched to one of the same image and label; score and box \\|Δ\\| ≤ ${t.score} and ${t.box}):`,
      '',
      '| batch | output | detections per image (got / reference) | max score \\|Δ\\| | max box \\|Δ\\| | unmatched | result |',
      '|---:|---|---|---:|---:|---:|:---:|',
      ...r.detections.map((d) => `| ${d.batch} | ${d.output} | ${d.counts.map((c) => `${c.got} / ${c.reference}`).join(', ') || 'none'} | ${fmt(d.maxScoreDiff)} | ${fmt(d.maxBoxDiff)} | ${d.unmatched} | ${d.pass ? 'pass' : '**fail**'} |`),
    );
  }
  if (r.perLayer) {
    lines.push('', `Per-layer: ${r.perLayer.checked} layer outputs compared at batch 1, each layer run on Caffe's own bottoms (max \\|Δ\\| ≤ ${r.tolerance.layerRelative} · max(1, max \\|reference\\|)): **${r.verdict.perLayer}**.`);
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
