import { NpyArray } from '../util/npy';

/**
 * Detections, as Caffe's (SSD fork's) DetectionOutput writes them: a [1, 1, D, 7] table of rows (image_id, label,
 * score, xmin, ymin, xmax, ymax), box corners normalized to [0, 1]. Judged as sets, not tensors: the same detections
 * per image (count and labels), each score and box within a tolerance. Row order is not compared (Caffe writes rows
 * by class, OpenCV and the converter by score).
 */
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

/** A [1, 1, D, 7] table (D may be 0). */
export function isDetectionTable(shape: number[]): boolean {
  return shape.length === 4 && shape[0] === 1 && shape[1] === 1 && shape[3] === 7;
}

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
