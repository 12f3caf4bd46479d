import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { tmpDir } from './helpers/caffe';
import { tinySsd } from './helpers/ssd';
import { onnxInfo } from '../src/formats/onnxinfo';

// SSD detection nets (issue 14, part 1): the SSD fork's Normalize, Permute, PriorBox and DetectionOutput in standard
// ONNX ops. This file: what the converter refuses, by name. Parity against OpenCV's DNN module (the independent
// implementation of these layers) on the face detector, MobileNet-SSD and the zoo:
// test/convert-ssd-parity.tools.test.ts.

const DETECTION =
  'num_classes: 3 share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 50 } code_type: CENTER_SIZE keep_top_k: 20 confidence_threshold: 0.4';

/** test/helpers/ssd.ts's tiny SSD with these detection_output_param / prior_box_param bodies */
const net = (detectionParam: string, priorParam?: string) => tinySsd({ detectionParam, priorParam }).prototxt;

async function convert(proto: string) {
  const dir = tmpDir();
  const f = path.join(dir, 'deploy.prototxt');
  fs.writeFileSync(f, proto);
  const w = path.join(dir, 'weights.caffemodel');
  fs.writeFileSync(w, tinySsd().caffemodel);
  const out = path.join(dir, 'model.onnx');
  const r = await runCli(['convert', '--prototxt', f, '--caffemodel', w, '--out', out]);
  return { ...r, out, line: (needle: string) => proto.split('\n').findIndex((l) => l.includes(needle)) + 1 };
}

test('a detection net converts: dynamic batch in, a [1, 1, D, 7] table out, named in the metadata', async () => {
  const r = await convert(net(DETECTION));
  expect(r.code).toBe(0);
  const info = onnxInfo(fs.readFileSync(r.out));
  expect(info.inputs.map((i) => [i.name, i.shape])).toEqual([['data', ['N', 3, 32, 32]]]);
  expect(info.outputs.map((o) => [o.name, o.shape])).toEqual([['detection_out', [1, 1, 'detections', 7]]]);
  expect(info.metadata['modelship.detection_outputs']).toBe('detection_out');
});

test.each([
  ['code_type CORNER_SIZE', DETECTION.replace('CENTER_SIZE', 'CORNER_SIZE'), /\(DetectionOutput\) code_type CORNER_SIZE is not supported/],
  ['adaptive NMS (eta)', DETECTION.replace('top_k: 50', 'top_k: 50 eta: 0.9'), /nms_param\.eta 0\.9 \(adaptive NMS\) is not supported/],
  ["OpenCV's normalized_bbox: false", `${DETECTION} normalized_bbox: false`, /normalized_bbox: false is not supported/],
  ['visualize', `${DETECTION} visualize: true`, /visualize: true is not supported/],
  ['no num_classes', DETECTION.replace('num_classes: 3 ', ''), /detection_output_param\.num_classes is required/],
  [
    'a conf blob of the wrong size',
    DETECTION.replace('num_classes: 3', 'num_classes: 4'),
    /bottom\[1\] \(conf\) has 2304 values per image; 768 priors × 4 classes = 3072 expected/,
  ],
])('DetectionOutput refuses %s, naming the layer and its line', async (_what, param, message) => {
  const r = await convert(net(param));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toContain(`:${r.line('name: "detection_out"')}`);
  expect(r.stderr).toContain('layer "detection_out"');
  expect(fs.existsSync(r.out)).toBe(false);
});

test.each([
  ['no min_size', 'clip: false', /prior_box_param\.min_size is required/],
  ['max_size not above min_size', 'min_size: 8 max_size: 8 clip: false', /max_size 8 must be greater than min_size 8/],
  ['3 variances', 'min_size: 8 clip: false variance: 0.1 variance: 0.1 variance: 0.2', /variance has 3 values; give 1 or 4/],
  ['img_size with img_h', 'min_size: 8 clip: false img_size: 32 img_h: 32 img_w: 32', /either img_size or img_h\/img_w, not both/],
])('PriorBox refuses %s', async (_what, prior, message) => {
  const r = await convert(net(DETECTION, prior));
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toContain('layer "prior"');
});

test('Permute refuses an order that repeats an axis or leaves the input', async () => {
  for (const [order, message] of [
    ['order: 0 order: 2 order: 2 order: 1', /permute_param\.order has 2 twice/],
    ['order: 0 order: 4', /permute_param\.order 4 is out of range for a 4-D input/],
  ] as const) {
    const r = await convert(net(DETECTION).replace('order: 0 order: 2 order: 3 order: 1', order));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('layer "loc_perm"');
  }
});

test('fractional prior sizes are truncated as the SSD fork does, and said so', async () => {
  const r = await convert(net(DETECTION, 'min_size: 8.5 max_size: 16 aspect_ratio: 2 flip: false clip: false'));
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/layer "prior".*prior sizes 8\.5 are truncated to integers, as the SSD fork of Caffe does/);
});
