import type { NpyArray } from '../util/npy';

/**
 * Detections, as Caffe's (SSD fork's) DetectionOutput writes them: a [1, 1, D, 7] table of rows (image_id, label,
 * score, xmin, ymin, xmax, ymax), box corners normalized to [0, 1], rows per image by score; D is dynamic and may be
 * 0. The converter names such outputs in the ONNX metadata (`modelship.detection_outputs`, comma-separated); a
 * Triton server does not pass that on, so a client also knows one by its shape. One module for the converter,
 * parity, the server and its clients: parity judges tables as sets, not tensors (the same detections per image,
 * count and labels, each score and box within a tolerance; row order is not compared — Caffe writes rows by
 * class, OpenCV and the converter by score); the server splits batched tables and scales boxes to images; smoke
 * matches expected boxes.
 */
/** The ONNX metadata key naming a model's detection outputs (comma-separated), as the converter writes it. */
export const DETECTION_OUTPUTS_KEY = 'modelship.detection_outputs';

/** The detection outputs a model's metadata names, those of `outputs` only, in the model's order. */
export function detectionOutputNames(metadata: Record<string, string>, outputs: readonly string[]): string[] {
  const listed = new Set(
    (metadata[DETECTION_OUTPUTS_KEY] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
  return outputs.filter((o) => listed.has(o));
}

/** A declared shape that can be a detection table: [1, 1, D, 7], D variable (-1 or symbolic) or a number. */
export function isDetectionShape(shape: readonly (number | string)[]): boolean {
  return shape.length === 4 && shape[0] === 1 && shape[1] === 1 && shape[3] === 7;
}

/**
 * The rows of items [start, start + items) of a batch's detection table, their image_id re-based to the first of
 * them (so a request sees its own item indices). Rows of no item (Caffe's "nothing found" rows, image_id -1) are
 * left out; the rows keep their order (per image by score).
 */
export function splitDetectionTable(table: Float32Array, start: number, items: number): Float32Array {
  let n = 0;
  for (let i = 0; i + 7 <= table.length; i += 7) if (table[i] >= start && table[i] < start + items) n++;
  const out = new Float32Array(n * 7);
  let o = 0;
  for (let i = 0; i + 7 <= table.length; i += 7) {
    const id = table[i];
    if (!(id >= start && id < start + items)) continue;
    out.set(table.subarray(i, i + 7), o);
    out[o] = id - start;
    o += 7;
  }
  return out;
}

/** A detection in an image's pixels: the label (class index; SSD's 0 is the background), score and box corners. */
export interface ImageDetection {
  label: number;
  label_name?: string;
  score: number;
  /** [xmin, ymin, xmax, ymax] in pixels of the original image (not clipped to it, as DetectionOutput writes them) */
  box: [number, number, number, number];
}

/**
 * Item `image`'s detections with a score of at least `threshold`, scaled from normalized corners to an image of
 * `width` x `height` pixels (the whole image was resized to the model's input, so x scales by the width and y by
 * the height), highest score first; `labels[label]` as `label_name` when there is one.
 */
export function imageDetections(
  table: Float32Array,
  frame: { image?: number; threshold: number; width: number; height: number; labels?: readonly string[] },
): ImageDetection[] {
  const image = frame.image ?? 0;
  const out: ImageDetection[] = [];
  for (let i = 0; i + 7 <= table.length; i += 7) {
    if (table[i] !== image || !(table[i + 2] >= frame.threshold)) continue;
    const label = table[i + 1];
    const name = Number.isInteger(label) ? frame.labels?.[label] : undefined;
    out.push({
      label,
      ...(name !== undefined ? { label_name: name } : {}),
      score: table[i + 2],
      box: [table[i + 3] * frame.width, table[i + 4] * frame.height, table[i + 5] * frame.width, table[i + 6] * frame.height],
    });
  }
  // (stable: rows of equal score keep the model's order)
  return out.sort((a, b) => b.score - a.score);
}

/** Intersection over union of two [xmin, ymin, xmax, ymax] boxes (0 when either is empty). */
export function iou(a: readonly number[], b: readonly number[]): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (!(iw > 0 && ih > 0)) return 0;
  const inter = iw * ih;
  const area = (r: readonly number[]) => Math.max(0, r[2] - r[0]) * Math.max(0, r[3] - r[1]);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

export interface ExpectedDetection {
  label: number;
  box: [number, number, number, number];
}

export interface DetectionMatch {
  /** same number of detections, and every expected one matched (one to one) by one of the same label with IoU ≥ minIou */
  pass: boolean;
  /** for each expected detection: the index of its match in `got`, or -1, and their IoU */
  matches: { got: number; iou: number }[];
  /** indices in `got` matched by no expected detection */
  extra: number[];
}

/**
 * Match expected detections to those the server found, one to one: a pair must have the same label and an IoU of
 * at least `minIou`. The matching is a maximum one (augmenting paths, as a greedy choice can leave a detection
 * unmatched that another assignment would match), preferring higher IoU.
 */
export function matchDetections(
  expected: readonly ExpectedDetection[],
  got: readonly { label: number; box: readonly number[] }[],
  minIou = 0.5,
): DetectionMatch {
  // candidates per expected detection, best IoU first
  const cand = expected.map((e) =>
    got
      .map((g, j) => ({ j, iou: g.label === e.label ? iou(e.box, g.box) : 0 }))
      .filter((c) => c.iou >= minIou)
      .sort((a, b) => b.iou - a.iou),
  );
  const owner = new Array<number>(got.length).fill(-1);
  const augment = (i: number, seen: Set<number>): boolean => {
    for (const { j } of cand[i]) {
      if (seen.has(j)) continue;
      seen.add(j);
      if (owner[j] < 0 || augment(owner[j], seen)) {
        owner[j] = i;
        return true;
      }
    }
    return false;
  };
  // expected detections with fewer candidates first: a better chance that the greedy first pick is the final one
  const order = expected.map((_, i) => i).sort((a, b) => cand[a].length - cand[b].length);
  for (const i of order) augment(i, new Set());
  const matches = expected.map(() => ({ got: -1, iou: 0 }));
  owner.forEach((i, j) => {
    if (i >= 0) matches[i] = { got: j, iou: cand[i].find((c) => c.j === j)!.iou };
  });
  const extra = owner.flatMap((i, j) => (i < 0 ? [j] : []));
  return { pass: expected.length === got.length && matches.every((m) => m.got >= 0), matches, extra };
}

/** A box for messages: corners rounded to a tenth of a pixel. */
export function formatBox(b: readonly number[]): string {
  return `[${b.map((v) => (Math.round(v * 10) / 10).toString()).join(', ')}]`;
}

/**
 * Parse a list of expected detections (`[{"label": 1, "box": [x1, y1, x2, y2]}, ...]`, pixels of the image);
 * throws an Error naming the first bad entry.
 */
export function parseExpectedDetections(text: string): ExpectedDetection[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(v)) throw new Error('expected a JSON list of {"label": N, "box": [xmin, ymin, xmax, ymax]} (pixels of the sample image)');
  return v.map((d, i): ExpectedDetection => {
    const at = `entry ${i}`;
    if (typeof d !== 'object' || d === null || Array.isArray(d)) throw new Error(`${at} is not an object {"label": N, "box": [xmin, ymin, xmax, ymax]}`);
    const fields = d as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((k) => !['label', 'box', 'score', 'label_name'].includes(k));
    if (unknown.length)
      throw new Error(
        `${at} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (label and box are compared; score and label_name are ignored)`,
      );
    if (typeof fields.label !== 'number' || !Number.isInteger(fields.label) || fields.label < 0)
      throw new Error(`${at}: "label" must be a class index (a whole number ≥ 0), got ${JSON.stringify(fields.label)}`);
    const b = fields.box;
    if (!Array.isArray(b) || b.length !== 4 || b.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
      throw new Error(`${at}: "box" must be four numbers [xmin, ymin, xmax, ymax] in pixels, got ${JSON.stringify(b)}`);
    const box = b as [number, number, number, number];
    if (!(box[2] > box[0] && box[3] > box[1])) throw new Error(`${at}: "box" ${JSON.stringify(box)} is empty: xmax must exceed xmin and ymax ymin`);
    return { label: fields.label, box };
  });
}

export interface Detection {
  image: number;
  label: number;
  score: number;
  box: [number, number, number, number];
}

/** Tolerances for detections, in score units and in normalized box coordinates. */
export interface DetectionTolerance {
  score: number;
  box: number;
}

/**
 * Measured on the SSD fixtures (test/fixtures/ssd: OpenCV's DNN module against ONNX Runtime, batch 1 and 2, graph
 * optimizations off and all): worst score |Δ| 7.4e-6 (face detector; MobileNet-SSD 9.2e-7), worst box |Δ| 9.5e-7.
 * 1e-4 keeps a 13× margin on scores; on boxes it is 0.03 px of a 300 px image.
 */
export const DETECTION_TOLERANCE: DetectionTolerance = { score: 1e-4, box: 1e-4 };

/** The rows of a detection table; Caffe's "nothing found" rows (image_id -1) and OpenCV's zero padding are not detections. */
export function detectionRows(a: NpyArray): Detection[] {
  const rows: Detection[] = [];
  for (let i = 0; i + 7 <= a.data.length; i += 7) {
    const r = a.data.subarray(i, i + 7);
    if (r[0] < 0 || r.every((x) => x === 0)) continue;
    rows.push({ image: r[0], label: r[1], score: r[2], box: [r[3], r[4], r[5], r[6]] });
  }
  return rows;
}

export interface DetectionCheck {
  batch: number;
  output: string;
  /** detections per image: [converted, reference] */
  counts: { image: number; got: number; reference: number }[];
  /** reference rows with no converted row of the same image and label */
  unmatched: number;
  maxScoreDiff: number;
  maxBoxDiff: number;
  tolerance: DetectionTolerance;
  pass: boolean;
}

/**
 * Match each reference detection to a converted one of the same image and label (closest first, each used once)
 * and measure the worst score and box differences.
 */
export function compareDetections(name: string, batch: number, got: NpyArray, ref: NpyArray, tol: DetectionTolerance = DETECTION_TOLERANCE): DetectionCheck {
  const g = detectionRows(got);
  const r = detectionRows(ref);
  const images = [...new Set([...g, ...r].map((d) => d.image))].sort((a, b) => a - b);
  const counts = images.map((image) => ({ image, got: g.filter((d) => d.image === image).length, reference: r.filter((d) => d.image === image).length }));
  const used = new Set<number>();
  let unmatched = 0;
  let maxScoreDiff = 0;
  let maxBoxDiff = 0;
  const boxDiff = (a: Detection, b: Detection) => Math.max(...a.box.map((v, i) => Math.abs(v - b.box[i])));
  for (const d of [...r].sort((a, b) => b.score - a.score)) {
    let best = -1;
    let bestCost = Infinity;
    g.forEach((c, i) => {
      if (used.has(i) || c.image !== d.image || c.label !== d.label) return;
      const cost = Math.max(Math.abs(c.score - d.score) / tol.score, boxDiff(c, d) / tol.box);
      if (cost < bestCost) [best, bestCost] = [i, cost];
    });
    if (best < 0) {
      unmatched++;
      continue;
    }
    used.add(best);
    maxScoreDiff = Math.max(maxScoreDiff, Math.abs(g[best].score - d.score));
    maxBoxDiff = Math.max(maxBoxDiff, boxDiff(g[best], d));
  }
  const pass = unmatched === 0 && counts.every((c) => c.got === c.reference) && maxScoreDiff <= tol.score && maxBoxDiff <= tol.box;
  return { batch, output: name, counts, unmatched, maxScoreDiff, maxBoxDiff, tolerance: tol, pass };
}

/** One line on a detection check for reports and errors. */
export function describeDetections(c: DetectionCheck): string {
  const counts = c.counts.map((x) => (x.got === x.reference ? `image ${x.image}: ${x.got}` : `image ${x.image}: ${x.got}, expected ${x.reference}`)).join('; ');
  return `detections ${counts || 'none'}; max score |Δ| ${c.maxScoreDiff.toExponential(2)} (≤ ${c.tolerance.score}), max box |Δ| ${c.maxBoxDiff.toExponential(2)} (≤ ${c.tolerance.box})${c.unmatched ? `; ${c.unmatched} reference detection(s) without a match of the same label` : ''}`;
}
