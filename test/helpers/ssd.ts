import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { encodeNet, REPO, tmpDir } from './caffe';
import { pythonVenv } from './venv';

/** test/fixtures/ssd: OpenCV-made references of SSD nets (see its README) */
export const SSD_FIXTURES = path.join(REPO, 'test/fixtures/ssd');

let python: string | undefined;
/** The venv's python that runs scripts/ssd-reference.py (numpy) and OpenCV. */
export function ssdPython(): string {
  return (python ??= pythonVenv('opencv', 'import cv2, numpy'));
}

/**
 * An SSD fixture (`res10_300x300`, `zoo/multi_min`, ...) as a reference directory: its committed outputs, its inputs
 * (made from the seed where they are not committed) and its seeded weights (never committed), both made byte for byte
 * by scripts/ssd-reference.py. `outputs` are the blobs the reference has at batch 1.
 */
export function ssdReference(net: string): { dir: string; weights: string; outputs: string[] } {
  const src = path.join(SSD_FIXTURES, net);
  const script = path.join(REPO, 'scripts/ssd-reference.py');
  const dir = tmpDir('modelship-ssd-');
  for (const f of fs.readdirSync(src)) if (f.endsWith('.npy')) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  if (!fs.existsSync(path.join(dir, 'input_b1.npy'))) execFileSync(ssdPython(), [script, 'inputs', src, dir], { stdio: 'pipe' });
  const weights = path.join(dir, 'weights.caffemodel');
  execFileSync(ssdPython(), [script, 'weights', src, weights], { stdio: 'pipe' });
  const outputs = fs
    .readdirSync(dir)
    .flatMap((f) => /^output_b1__(.+)\.npy$/.exec(f)?.[1] ?? [])
    .sort();
  return { dir, weights, outputs };
}

/**
 * A tiny SSD (32x32 input, 3 classes: background and two), seeded weights: Normalize, Permute, Flatten, PriorBox,
 * Softmax and DetectionOutput as SSD's deploy nets use them. `confidence` is DetectionOutput's confidence_threshold,
 * `keepTopK` its keep_top_k. Returns the prototxt text and the caffemodel bytes.
 */
export function tinySsd(
  o: {
    confidence?: number;
    keepTopK?: number;
    seed?: number;
    /** replaces detection_output_param's body */ detectionParam?: string;
    /** replaces prior_box_param's body */ priorParam?: string;
  } = {},
): { prototxt: string; caffemodel: Uint8Array } {
  let seed = o.seed ?? 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  };
  const arr = (n: number, s: number) => Array.from({ length: n }, () => rnd() * s);
  const blob = (shape: number[], s: number, off = 0) => ({
    shape: { dim: shape },
    data: arr(
      shape.reduce((a, b) => a * b, 1),
      s,
    ).map((x) => x + off),
  });
  const conf = blob([9], 0.5);
  // the background class a little likelier: scores spread instead of every box being an object
  conf.data = conf.data.map((x, i) => (i % 3 === 0 ? x + 1.5 : x));
  const caffemodel = encodeNet({
    name: 'tiny_ssd',
    layer: [
      { name: 'conv1', type: 'Convolution', blobs: [blob([8, 3, 3, 3], 1), blob([8], 0.1)] },
      { name: 'norm', type: 'Normalize', blobs: [blob([8], 0.5, 1)] },
      { name: 'loc', type: 'Convolution', blobs: [blob([12, 8, 3, 3], 0.3), blob([12], 0.1)] },
      { name: 'conf', type: 'Convolution', blobs: [blob([9, 8, 3, 3], 1.5), conf] },
    ],
  });
  const prototxt = `name: "tiny_ssd"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm" type: "Normalize" bottom: "conv1" top: "norm" norm_param { across_spatial: false channel_shared: false } }
layer { name: "loc" type: "Convolution" bottom: "norm" top: "loc" convolution_param { num_output: 12 kernel_size: 3 pad: 1 } }
layer { name: "loc_perm" type: "Permute" bottom: "loc" top: "loc_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc_perm" top: "loc_flat" }
layer { name: "conf" type: "Convolution" bottom: "norm" top: "conf" convolution_param { num_output: 9 kernel_size: 3 pad: 1 } }
layer { name: "conf_perm" type: "Permute" bottom: "conf" top: "conf_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf_perm" top: "conf_flat" }
layer { name: "prior" type: "PriorBox" bottom: "norm" bottom: "data" top: "prior" prior_box_param { ${o.priorParam ?? 'min_size: 8 max_size: 16 aspect_ratio: 2 flip: false clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2'} } }
layer { name: "conf_r" type: "Reshape" bottom: "conf_flat" top: "conf_r" reshape_param { shape { dim: 0 dim: -1 dim: 3 } } }
layer { name: "conf_sm" type: "Softmax" bottom: "conf_r" top: "conf_sm" softmax_param { axis: 2 } }
layer { name: "conf_sf" type: "Flatten" bottom: "conf_sm" top: "conf_sf" }
layer { name: "detection_out" type: "DetectionOutput" bottom: "loc_flat" bottom: "conf_sf" bottom: "prior" top: "detection_out"
  detection_output_param { ${o.detectionParam ?? `num_classes: 3 share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 50 } code_type: CENTER_SIZE keep_top_k: ${o.keepTopK ?? 10} confidence_threshold: ${o.confidence ?? 0.3}`} } }
`;
  return { prototxt, caffemodel };
}
