import * as fs from 'fs';
import * as path from 'path';
import type { ConversionResult, BlobVersion } from '../convert/converter';
import { referenceBatches, inputFile, outputFile, blobFileName } from './reference';
import { absMax, compareOutput, DEFAULT_TOLERANCE, maxAbs, OutputCheck, ParityTolerance } from './compare';
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

export interface ParityReport {
  status: 'pass' | 'fail';
  reference: string;
  tolerance: ParityTolerance;
  maxAbsDiff: number;
  batches: number[];
  outputs: OutputCheck[];
  perLayer?: { checked: number; firstDivergence: LayerCheck | null; layers: LayerCheck[] };
  runtime: string;
}

/** What the output parity check needs: the model and its input/output names and shapes (dim 0 is the batch). */
export interface ParityModel {
  onnx: Uint8Array;
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: { name: string }[];
}

/**
 * Run the converted model with onnxruntime on the reference inputs (every batch size the reference has, from
 * one ONNX file) and compare with Caffe's outputs. With `perLayer`, also compare every intermediate blob at batch 1.
 */
export async function checkParity(conv: ParityModel | ConversionResult, dir: string, opts: { perLayer: boolean; tolerance?: ParityTolerance }): Promise<ParityReport> {
  const tol = opts.tolerance ?? DEFAULT_TOLERANCE;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new ModelshipError('input', 'reference directory not found', { file: dir, field: 'reference' });
  }
  const batches = referenceBatches(dir);
  if (batches.length === 0) throw new ModelshipError('input', 'no reference inputs (input_b<N>.npy) in the reference directory', { file: dir, field: 'reference' });
  const single = conv.inputs.length === 1;
  const checks: OutputCheck[] = [];
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
    const result = await runOnnx(conv.onnx, feeds, conv.outputs.map((o) => o.name));
    runtime = result.runtime;
    for (const out of conv.outputs) {
      const refFile = outputFile(dir, batch, out.name);
      if (!fs.existsSync(refFile)) throw new ModelshipError('input', `reference output ${path.basename(refFile)} not found`, { file: dir });
      checks.push(compareOutput(out.name, batch, result.outputs[out.name], readNpy(refFile), tol));
    }
  }
  const report: ParityReport = {
    status: checks.every((c) => c.pass) ? 'pass' : 'fail',
    reference: dir,
    tolerance: tol,
    maxAbsDiff: checks.reduce((m, c) => Math.max(m, c.maxAbsDiff), 0),
    batches,
    outputs: checks,
    runtime,
  };
  if (opts.perLayer) {
    if (!('versions' in conv)) throw new ModelshipError('input', 'per-layer parity needs the conversion (layer outputs are only known while converting)');
    report.perLayer = await checkLayers(conv, dir, tol, single);
    if (report.perLayer.firstDivergence) report.status = 'fail';
  }
  return report;
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
      if (!value) {
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
      outputs = all.outputs; // bottoms Caffe did not keep: fall back to the end-to-end values
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
  for (const x of got.data) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
  }
  const mean = sum / got.data.length;
  let sq = 0;
  for (const x of got.data) sq += (x - mean) * (x - mean);
  const std = Math.sqrt(sq / got.data.length);
  const scale = Math.max(1, Math.abs(s.min), Math.abs(s.max));
  const limit = tol.layerRelative * scale;
  const d = Math.max(Math.abs(min - s.min), Math.abs(max - s.max), Math.abs(mean - s.mean), Math.abs(std - s.std));
  return { ...base, against: 'stats', maxAbsDiff: d, limit, pass: d <= limit };
}

/** The markdown table written next to the model and into the job summary. */
export function parityMarkdown(r: ParityReport): string {
  const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));
  const lines = [
    `### Parity against Caffe: ${r.status === 'pass' ? '✅ pass' : '❌ fail'}`,
    '',
    `Tolerance: max \\|Δ\\| ≤ ${r.tolerance.maxAbsDiff} · max(1, max \\|reference\\|) and identical top-${r.tolerance.topK}; runtime: ${r.runtime}`,
    '',
    `| batch | output | shape | max \\|Δ\\| | limit | top-${r.tolerance.topK} match | result |`,
    '|---:|---|---|---:|---:|:---:|:---:|',
    ...r.outputs.map((c) => `| ${c.batch} | ${c.output} | [${c.shape.join(', ')}] | ${fmt(c.maxAbsDiff)} | ${fmt(c.limit)} | ${c.topKMatch ? 'yes' : 'no'} | ${c.pass ? 'pass' : '**fail**'} |`),
  ];
  if (r.perLayer) {
    lines.push('', `Per-layer: ${r.perLayer.checked} layer outputs compared at batch 1, each layer run on Caffe's own bottoms.`);
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
