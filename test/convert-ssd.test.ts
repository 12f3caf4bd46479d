import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { encodeNet, tmpDir } from './helpers/caffe';
import { onnxInfo } from '../src/util/onnxinfo';

// SSD detection nets (issue 14, part 1): the SSD fork's Normalize, Permute, PriorBox and DetectionOutput in standard
// ONNX ops. This file: what the converter refuses, by name. Parity against OpenCV's DNN module (the independent
// implementation of these layers) on the face detector, MobileNet-SSD and the zoo: test/convert-ssd-parity.test.ts.

/** A tiny SSD head on a 32×32 input: conv → Normalize → loc/conf → Permute/Flatten → PriorBox → DetectionOutput. */
export function tinySsd(detectionParam: string, priorParam = 'min_size: 8 max_size: 16 aspect_ratio: 2 flip: true clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2'): string {
  return `name: "tiny_ssd"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "norm" type: "Normalize" bottom: "conv1" top: "norm" norm_param { across_spatial: false channel_shared: false } }
layer { name: "loc" type: "Convolution" bottom: "norm" top: "loc" convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
layer { name: "loc_perm" type: "Permute" bottom: "loc" top: "loc_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc_perm" top: "loc_flat" }
layer { name: "conf" type: "Convolution" bottom: "norm" top: "conf" convolution_param { num_output: 12 kernel_size: 3 pad: 1 } }
layer { name: "conf_perm" type: "Permute" bottom: "conf" top: "conf_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf_perm" top: "conf_flat" }
layer { name: "prior" type: "PriorBox" bottom: "norm" bottom: "data" top: "prior" prior_box_param { ${priorParam} } }
layer { name: "det" type: "DetectionOutput" bottom: "loc_flat" bottom: "conf_flat" bottom: "prior" top: "det"
  detection_output_param { ${detectionParam} } }
`;
}

function tinyWeights(): Uint8Array {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5);
  const blob = (shape: number[], scale: number, offset = 0) => ({ shape: { dim: shape }, data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rnd() * scale + offset) });
  return encodeNet({ name: 'tiny', layer: [
    { name: 'conv1', type: 'Convolution', blobs: [blob([8, 3, 3, 3], 1), blob([8], 0.1)] },
    { name: 'norm', type: 'Normalize', blobs: [blob([8], 2, 10)] },
    { name: 'loc', type: 'Convolution', blobs: [blob([16, 8, 3, 3], 0.3), blob([16], 0.1)] },
    { name: 'conf', type: 'Convolution', blobs: [blob([12, 8, 3, 3], 0.6), blob([12], 0.5)] },
  ] });
}

const DETECTION = 'num_classes: 3 share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 50 } code_type: CENTER_SIZE keep_top_k: 20 confidence_threshold: 0.4';

async function convert(proto: string) {
  const dir = tmpDir();
  const f = path.join(dir, 'deploy.prototxt');
  fs.writeFileSync(f, proto);
  const w = path.join(dir, 'weights.caffemodel');
  fs.writeFileSync(w, tinyWeights());
  const out = path.join(dir, 'model.onnx');
  const r = await runCli(['convert', '--prototxt', f, '--caffemodel', w, '--out', out]);
  return { ...r, out, line: (needle: string) => proto.split('\n').findIndex((l) => l.includes(needle)) + 1 };
}

test('a detection net converts: dynamic batch in, a [1, 1, D, 7] table out, named in the metadata', async () => {
  const r = await convert(tinySsd(DETECTION));
  expect(r.code).toBe(0);
  const info = onnxInfo(fs.readFileSync(r.out));
  expect(info.inputs.map((i) => [i.name, i.shape])).toEqual([['data', ['N', 3, 32, 32]]]);
  expect(info.outputs.map((o) => [o.name, o.shape])).toEqual([['det', [1, 1, 'detections', 7]]]);
  expect(info.metadata['modelship.detection_outputs']).toBe('det');
});

test.each([
  ['code_type CORNER_SIZE', DETECTION.replace('CENTER_SIZE', 'CORNER_SIZE'), /\(DetectionOutput\) code_type CORNER_SIZE is not supported/],
  ['adaptive NMS (eta)', DETECTION.replace('top_k: 50', 'top_k: 50 eta: 0.9'), /nms_param\.eta 0\.9 \(adaptive NMS\) is not supported/],
  ["OpenCV's normalized_bbox: false", `${DETECTION} normalized_bbox: false`, /normalized_bbox: false is not supported/],
  ['visualize', `${DETECTION} visualize: true`, /visualize: true is not supported/],
  ['no num_classes', DETECTION.replace('num_classes: 3 ', ''), /detection_output_param\.num_classes is required/],
  ['a conf blob of the wrong size', DETECTION.replace('num_classes: 3', 'num_classes: 4'), /bottom\[1\] \(conf\) has 3072 values per image; 1024 priors × 4 classes = 4096 expected/],
])('DetectionOutput refuses %s, naming the layer and its line', async (_what, param, message) => {
  const r = await convert(tinySsd(param));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toContain(`:${r.line('name: "det"')}`);
  expect(r.stderr).toContain('layer "det"');
  expect(fs.existsSync(r.out)).toBe(false);
});

test.each([
  ['no min_size', 'clip: false', /prior_box_param\.min_size is required/],
  ['max_size not above min_size', 'min_size: 8 max_size: 8 clip: false', /max_size 8 must be greater than min_size 8/],
  ['3 variances', 'min_size: 8 clip: false variance: 0.1 variance: 0.1 variance: 0.2', /variance has 3 values; give 1 or 4/],
  ['img_size with img_h', 'min_size: 8 clip: false img_size: 32 img_h: 32 img_w: 32', /either img_size or img_h\/img_w, not both/],
])('PriorBox refuses %s', async (_what, prior, message) => {
  const r = await convert(tinySsd(DETECTION, prior));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toContain('layer "prior"');
});

test('Permute refuses an order that repeats an axis or leaves the input', async () => {
  for (const [order, message] of [['order: 0 order: 2 order: 2 order: 1', /permute_param\.order has 2 twice/], ['order: 0 order: 4', /permute_param\.order 4 is out of range for a 4-D input/]] as const) {
    const r = await convert(tinySsd(DETECTION).replace('order: 0 order: 2 order: 3 order: 1', order));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('layer "loc_perm"');
  }
});

test('fractional prior sizes are truncated as the SSD fork does, and said so', async () => {
  const r = await convert(tinySsd(DETECTION, 'min_size: 8.5 max_size: 16 aspect_ratio: 2 clip: false'));
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/layer "prior".*prior sizes 8\.5 are truncated to integers, as the SSD fork of Caffe does/);
});
