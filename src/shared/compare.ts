import { NpyArray } from '../util/npy';

/**
 * How an output is judged against Caffe's, the same everywhere: convert and compile parity, smoke and rollout golden
 * requests.
 */

/** Tolerances of the parity gate. */
export interface ParityTolerance {
  /** max |Δ| allowed on the net outputs, scaled by max(1, max|reference|): absolute for probabilities */
  maxAbsDiff: number;
  /** how many top classes must agree, in order */
  topK: number;
  /** per-layer: |Δ| ≤ layerRelative · max(1, max|reference|) */
  layerRelative: number;
}

export const DEFAULT_TOLERANCE: ParityTolerance = { maxAbsDiff: 1e-5, topK: 5, layerRelative: 1e-4 };

export interface OutputCheck {
  batch: number;
  output: string;
  shape: number[];
  maxAbsDiff: number;
  /** the allowed max |Δ| for this output: tolerance · max(1, max|reference|) */
  limit: number;
  topKMatch: boolean;
  topK: { onnx: number[]; reference: number[] }[];
  pass: boolean;
}

function topK(data: Float32Array, start: number, len: number, k: number): number[] {
  const idx = Array.from({ length: len }, (_, i) => i);
  idx.sort((a, b) => data[start + b] - data[start + a] || a - b);
  return idx.slice(0, Math.min(k, len));
}

export function absMax(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/**
 * One output of one batch against Caffe's: max |Δ| within tolerance · max(1, max|reference|) and the same top-k
 * for every item. The convert and compile stages and the smoke test all judge outputs with this.
 */
export function compareOutput(name: string, batch: number, got: NpyArray, ref: NpyArray, tol: ParityTolerance): OutputCheck {
  const limit = tol.maxAbsDiff * Math.max(1, absMax(ref.data));
  if (got.shape.join() !== ref.shape.join()) {
    return { batch, output: name, shape: got.shape, maxAbsDiff: Infinity, limit, topKMatch: false, topK: [], pass: false };
  }
  const diff = maxAbs(got.data, ref.data);
  const per = ref.data.length / batch;
  const tk: { onnx: number[]; reference: number[] }[] = [];
  let match = true;
  for (let n = 0; n < batch; n++) {
    const a = topK(got.data, n * per, per, tol.topK);
    const b = topK(ref.data, n * per, per, tol.topK);
    tk.push({ onnx: a, reference: b });
    if (a.join() !== b.join()) match = false;
  }
  return { batch, output: name, shape: ref.shape, maxAbsDiff: diff, limit, topKMatch: match, topK: tk, pass: diff <= limit && match };
}
