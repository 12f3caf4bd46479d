import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';
import { onnxInfo } from '../src/formats/onnxinfo';
import { readNpy } from '../src/util/npy';
import { runOnnx } from '../src/util/ort';
import { compareOutput, DEFAULT_TOLERANCE } from '../src/shared/compare';

// The long tail of nets (issue 14, part 2): nets that end in Silence, outputs chosen by the user, and every
// unsupported layer of a net named at once, before the weights are read, fork fields. Real LeNet weights and the
// real-Caffe reference; where Caffe lacks the field, OpenCV's DNN module is the independent reader:
// test/convert-longtail.tools.test.ts (a venv from PyPI).
const LENET = path.join(FIXTURES, 'lenet');
const lenetProto = fs.readFileSync(path.join(LENET, 'deploy.prototxt'), 'utf8');
const weights = path.join(LENET, 'weights.caffemodel');

function write(name: string, content: string | Uint8Array): string {
  const f = path.join(tmpDir(), name);
  fs.writeFileSync(f, content);
  return f;
}

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

test("a net that ends in Silence outputs what only Silence reads (colorization's class8_ab), named in a warning", async () => {
  const proto = `${lenetProto}\nlayer {\n  name: "silence_prob"\n  type: "Silence"\n  bottom: "prob"\n}\n`;
  const f = write('deploy.prototxt', proto);
  const out = path.join(tmpDir(), 'model.onnx');
  const r = await runCli(['convert', '--prototxt', f, '--caffemodel', weights, '--out', out, '--reference', LENET, '--json']);
  expect(r.code).toBe(0);
  expect(r.json().parity).toBe('pass');
  expect(onnxInfo(fs.readFileSync(out)).outputs.map((o) => o.name)).toEqual(['prob']);
  expect(r.stderr).toMatch(
    new RegExp(`the outputs are what only Silence reads: "prob" \\(layer "silence_prob", line ${lineOf(proto, 'name: "silence_prob"') - 1}\\)`),
  );
});

test('outputs: chosen blobs, intermediate ones included; an unknown blob is refused naming the input', async () => {
  const out = path.join(tmpDir(), 'model.onnx');
  const r = await runCli([
    'convert',
    '--prototxt',
    path.join(LENET, 'deploy.prototxt'),
    '--caffemodel',
    weights,
    '--out',
    out,
    '--outputs',
    'pool1, prob',
    '--json',
  ]);
  expect(r.code).toBe(0);
  const info = onnxInfo(fs.readFileSync(out));
  expect(info.outputs.map((o) => [o.name, o.shape])).toEqual([
    ['pool1', ['N', 20, 12, 12]],
    ['prob', ['N', 10]],
  ]);
  const bad = await runCli([
    'convert',
    '--prototxt',
    path.join(LENET, 'deploy.prototxt'),
    '--caffemodel',
    weights,
    '--out',
    path.join(tmpDir(), 'x.onnx'),
    '--outputs',
    'prob,fc7',
  ]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/input "outputs": no layer produces a blob "fc7"; the net's blobs: conv1, pool1, conv2, pool2, ip1, ip2, prob/);
  const input = await runCli([
    'convert',
    '--prototxt',
    path.join(LENET, 'deploy.prototxt'),
    '--caffemodel',
    weights,
    '--out',
    path.join(tmpDir(), 'y.onnx'),
    '--outputs',
    'data',
  ]);
  expect(input.stderr).toMatch(/no layer produces a blob "data" \(it is a net input\)/);
});

test('every unsupported layer is named at once (name, type, line), before the weights are read', async () => {
  // common forks' Interp and ShuffleChannel in place of LeNet's ReLU and Softmax; the caffemodel is empty: the layers
  // are the problem to report, not the weights
  const proto = lenetProto.replace('type: "ReLU"', 'type: "Interp"').replace('type: "Softmax"', 'type: "ShuffleChannel"');
  const f = write('deploy.prototxt', proto);
  const r = await runCli(['convert', '--prototxt', f, '--caffemodel', write('empty.caffemodel', ''), '--out', path.join(tmpDir(), 'z.onnx')]);
  expect(r.code).not.toBe(0);
  const relu = lineOf(proto, 'name: "relu1"') - 1;
  const prob = lineOf(proto, 'name: "prob"') - 1;
  expect(r.stderr).toMatch(
    new RegExp(
      `2 layers of unsupported types \\("Interp", "ShuffleChannel"\\): "relu1" \\(type "Interp", line ${relu}\\); "prob" \\(type "ShuffleChannel", line ${prob}\\)\\. Supported types: `,
    ),
  );
  expect(r.stderr).not.toMatch(/caffemodel is empty/);
});

test('your own layers (input "layers"): the README\'s Upsample module converts a net at parity; without it the layer is named', async () => {
  const plugin = path.join(REPO, 'examples/layers/upsample.js');
  // LeNet with a second output: pool2 upsampled ×2 by the fork layer
  const proto = `${lenetProto}\nlayer {\n  name: "up"\n  type: "Upsample"\n  bottom: "pool2"\n  top: "up"\n  upsample_param { scale: 2 }\n}\n`;
  const f = write('deploy.prototxt', proto);
  const without = await runCli(['convert', '--prototxt', f, '--caffemodel', weights, '--out', path.join(tmpDir(), 'w.onnx')]);
  expect(without.code).not.toBe(0);
  expect(without.stderr).toMatch(
    /unsupported layer type "Upsample": "up" \(type "Upsample", line \d+; it also uses fields modelship does not know: upsample_param\)/,
  );
  const out = path.join(tmpDir(), 'up.onnx');
  const r = await runCli(['convert', '--prototxt', f, '--caffemodel', weights, '--out', out, '--layers', plugin]);
  if (r.code !== 0) throw new Error(r.stderr);
  expect(r.stderr).toMatch(/your own layers from .*upsample\.js: Upsample/);
  // the reference the test makes: real Caffe's pool2 (blobs_b1/) repeated 2×2, and real Caffe's prob
  const pool2 = readNpy(path.join(LENET, 'blobs_b1/pool2.npy'));
  const [n, c, h, w] = pool2.shape;
  const up = new Float32Array(n * c * h * 2 * w * 2);
  for (let i = 0; i < n * c; i++)
    for (let y = 0; y < 2 * h; y++) for (let x = 0; x < 2 * w; x++) up[(i * 2 * h + y) * 2 * w + x] = pool2.data[(i * h + (y >> 1)) * w + (x >> 1)];
  const got = (await runOnnx(fs.readFileSync(out), { data: readNpy(path.join(LENET, 'input_b1.npy')) }, ['up', 'prob'])).outputs;
  expect(got.up.shape).toEqual([n, c, 2 * h, 2 * w]);
  expect(compareOutput('up', 1, got.up, { shape: [n, c, 2 * h, 2 * w], data: up }, { ...DEFAULT_TOLERANCE, topK: 0 }).pass).toBe(true);
  expect(compareOutput('prob', 1, got.prob, readNpy(path.join(LENET, 'output_b1__prob.npy')), DEFAULT_TOLERANCE).pass).toBe(true);
  // the parameter's default (scale 2) and a bad value, from the module's own schema and check
  const bad = await runCli([
    'convert',
    '--prototxt',
    write('bad.prototxt', proto.replace('scale: 2', 'scale: 0')),
    '--caffemodel',
    weights,
    '--out',
    path.join(tmpDir(), 'b.onnx'),
    '--layers',
    plugin,
  ]);
  expect(bad.stderr).toMatch(/layer "up": \(Upsample\) scale must be ≥ 1, got 0/);
  const typo = await runCli([
    'convert',
    '--prototxt',
    write('typo.prototxt', proto.replace('scale: 2', 'scael: 2')),
    '--caffemodel',
    weights,
    '--out',
    path.join(tmpDir(), 't.onnx'),
    '--layers',
    plugin,
  ]);
  expect(typo.stderr).toMatch(/unknown field "scael"/);
  // a module that would replace a built-in type is refused, naming the input
  const clash = write('clash.js', "module.exports = { handlers: [{ types: ['ReLU'], convert() { return []; } }] };");
  const c2 = await runCli(['convert', '--prototxt', f, '--caffemodel', weights, '--out', path.join(tmpDir(), 'c.onnx'), '--layers', clash]);
  expect(c2.code).toBe(2);
  expect(c2.stderr).toMatch(/input "layers": type "ReLU" is converted by modelship itself/);
});

test("BatchNorm's NVIDIA Caffe fields: fillers (training only) accepted with a note, parity kept; scale_bias refused naming the field", async () => {
  const ZOO = path.join(FIXTURES, 'zoo_conv');
  const proto = fs.readFileSync(path.join(ZOO, 'deploy.prototxt'), 'utf8');
  const fillers = proto.replace(
    'batch_norm_param { eps: 0.001 }',
    'batch_norm_param { eps: 0.001 scale_filler { type: "constant" value: 1 } bias_filler { type: "constant" value: 0 } }',
  );
  expect(fillers).not.toBe(proto);
  const f = write('deploy.prototxt', fillers);
  const r = await runCli([
    'convert',
    '--prototxt',
    f,
    '--caffemodel',
    path.join(ZOO, 'weights.caffemodel'),
    '--out',
    path.join(tmpDir(), 'm.onnx'),
    '--reference',
    ZOO,
    '--json',
  ]);
  expect(r.code).toBe(0);
  expect(r.json().parity).toBe('pass');
  const line = lineOf(fillers, 'name: "bn"');
  expect(r.stderr).toContain(
    `${f}:${line}: layer "bn": batch_norm_param.scale_filler (a field of NVIDIA Caffe) only initialises training: accepted, it does not change inference`,
  );
  expect(r.stderr).toContain('batch_norm_param.bias_filler');
  const scaled = proto.replace('batch_norm_param { eps: 0.001 }', 'batch_norm_param { eps: 0.001 scale_bias: true }');
  const bad = await runCli([
    'convert',
    '--prototxt',
    write('s.prototxt', scaled),
    '--caffemodel',
    path.join(ZOO, 'weights.caffemodel'),
    '--out',
    path.join(tmpDir(), 's.onnx'),
  ]);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/layer "bn": \(BatchNorm\) batch_norm_param\.scale_bias: true .* is not supported/);
});
