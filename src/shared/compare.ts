import { NpyArray } from '../util/npy';

/**
 * How an output is judged against Caffe's, the same everywhere: convert and compile parity, smoke and rollout golden
 * requests.
 */

/** Tolerances of the parity gate. */
export interface ParityTolerance {
  /** end to end: max |Δ| allowed on the net outputs, scaled by max(1, max|reference|): absolute for probabilities */
  maxAbsDiff: number;
  /** how many top classes must agree, in order (classes whose reference scores are within the limit are ties) */
  topK: number;
  /** per-layer (each layer on Caffe's own bottoms): |Δ| ≤ layerRelative · max(1, max|reference|) */
  layerRelative: number;
}

/**
 * The defaults, from measurements (README "The parity gate", bench/parity-table.ts). End to end, float32 drift of
 * correct conversions grows with depth: up to 1.65e-4 on probabilities (ResNet-152, batch 2), while the mildest real
 * mistake measured moves them by 1.4e-2 (a pooling size rounded down); 1e-3 sits between the two with about 6× and
 * 14× to spare. Per layer there is no accumulation: correct layers reach at most 2.6% of 1e-4.
 */
export const DEFAULT_TOLERANCE: ParityTolerance = { maxAbsDiff: 1e-3, topK: 5, layerRelative: 1e-4 };

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

// The loops below run over every value of every layer; they avoid Math.* calls, which cost a hundred times more per value
// in a vm context (Jest's) than in plain Node.

/** max |x| (NaN if any value is NaN) */
export function absMax(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const v = x < 0 ? -x : x;
    if (!(v <= m)) {
      if (v !== v) return NaN;
      m = v;
    }
  }
  return m;
}

/** max |a - b| (Infinity if any difference is NaN) */
export function maxAbs(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] - b[i];
    const d = x < 0 ? -x : x;
    if (!(d <= m)) m = d !== d ? Infinity : d;
  }
  return m;
}

/**
 * One output of one batch against Caffe's: max |Δ| within tolerance · max(1, max|reference|) and the same top-k
 * for every item. Two classes whose reference scores differ by no more than that limit are a tie: their order in the
 * top-k may differ (float32 drift legitimately swaps near-ties; a mistake big enough to matter fails max |Δ|).
 * The convert and compile stages and the smoke and rollout golden requests all judge outputs with this.
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
    // rank by rank: the same class, or one whose reference score ties (within the limit) with the reference's
    if (a.length !== b.length || a.some((c, i) => c !== b[i] && !(Math.abs(ref.data[n * per + c] - ref.data[n * per + b[i]]) <= limit))) match = false;
  }
  return { batch, output: name, shape: ref.shape, maxAbsDiff: diff, limit, topKMatch: match, topK: tk, pass: diff <= limit && match };
}
