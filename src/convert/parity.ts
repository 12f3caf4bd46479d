import * as fs from 'fs';
import * as path from 'path';
import type { ConversionResult, BlobVersion } from './converter';
import { checkOutputParity, LayerCheck, ParityModel, ParityReport, withLayerCheck } from '../shared/parity';
import { absMax, maxAbs, ParityTolerance } from '../shared/compare';
import { inputFile, blobFileName } from '../shared/reference';
import { NpyArray, readNpy } from '../util/npy';
import { ModelshipError } from '../util/errors';
import { runOnnx } from '../util/ort';

/**
 * The convert stage's parity check: the end-to-end gate (src/shared/parity.ts, which compile runs too) and, with
 * `perLayer`, the per-layer check, which only the conversion can make: it knows every layer's ONNX outputs, and runs
 * each layer on Caffe's own bottoms, comparing every intermediate blob at batch 1.
 */
export async function checkParity(
  conv: ParityModel | ConversionResult,
  dir: string,
  opts: {
    perLayer: boolean;
    tolerance?: ParityTolerance;
    /** ORT graph optimization of the end-to-end run (default: disabled, the graph as written) */ optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  },
): Promise<ParityReport> {
  const report = await checkOutputParity(conv, dir, { tolerance: opts.tolerance, optimization: opts.optimization });
  if (!opts.perLayer) return report;
  if (!('versions' in conv)) throw new ModelshipError('input', 'per-layer parity needs the conversion (layer outputs are only known while converting)');
  return withLayerCheck(report, await checkLayers(conv, dir, report.tolerance, conv.inputs.length === 1));
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
  const all = await runOnnx(
    conv.encodeWithAllOutputs(),
    inputs,
    conv.versions.map((v) => v.onnx),
  );

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
      const model = conv.encodeLayers(
        layers,
        ins,
        chain.map((v) => ({ name: v.onnx, shape: v.shape })),
      );
      outputs = (
        await runOnnx(
          model,
          feeds,
          chain.map((v) => v.onnx),
        )
      ).outputs;
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
