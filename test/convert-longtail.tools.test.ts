import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { execFileSync } from 'child_process';
import { readNpy } from '../src/util/npy';
import { runOnnx } from '../src/util/ort';
import { compareOutput, DEFAULT_TOLERANCE } from '../src/shared/compare';
import { pythonVenv } from './helpers/venv';

// The long tail of nets (test/convert-longtail.test.ts): the fork fields that Caffe lacks, against OpenCV's DNN module
// as the independent reader (test/requirements-opencv.txt, a venv made from PyPI: .venv-opencv/, scripts/test.sh).
const opencvPython = () => pythonVenv('opencv', 'import cv2');
const LENET = path.join(FIXTURES, 'lenet');
const lenetProto = fs.readFileSync(path.join(LENET, 'deploy.prototxt'), 'utf8');
const weights = path.join(LENET, 'weights.caffemodel');

function write(name: string, content: string | Uint8Array): string {
  const f = path.join(tmpDir(), name);
  fs.writeFileSync(f, content);
  return f;
}

test("ceil_mode (PoolingParameter of common forks): false rounds down, true up — as OpenCV's reader of Caffe nets computes it", async () => {
  // LeNet with pool1 3×3 stride 2 on conv1's 24×24: ceil gives 12×12, floor 11×11 (both fit ip1's 800 weights after
  // conv2 and pool2). OpenCV's DNN module (an independent implementation, test/requirements-opencv.txt) is the oracle.
  const py = opencvPython();
  const dir = tmpDir();
  const x = path.join(LENET, 'input_b2.npy');
  for (const mode of ['false', 'true']) {
    const proto = lenetProto.replace(/(name: "pool1"[\s\S]*?)kernel_size: 2\n(\s*)stride: 2\n/, `$1kernel_size: 3\n$2stride: 2\n$2ceil_mode: ${mode}\n`);
    expect(proto).toContain(`ceil_mode: ${mode}`);
    const f = path.join(dir, `ceil_${mode}.prototxt`);
    fs.writeFileSync(f, proto);
    execFileSync(py, ['-c', OPENCV_FORWARD, f, weights, x, path.join(dir, mode)], { stdio: 'pipe' });
    const out = path.join(dir, `${mode}.onnx`);
    const r = await runCli(['convert', '--prototxt', f, '--caffemodel', weights, '--out', out, '--outputs', 'pool1,prob']);
    expect(r.code).toBe(0);
    const got = (await runOnnx(fs.readFileSync(out), { data: readNpy(x) }, ['pool1', 'prob'])).outputs;
    for (const blob of ['pool1', 'prob']) {
      const ref = readNpy(path.join(dir, mode, `${blob}.npy`));
      expect(got[blob].shape).toEqual(ref.shape);
      const c = compareOutput(blob, 2, got[blob], ref, { ...DEFAULT_TOLERANCE, maxAbsDiff: 1e-5, topK: blob === 'prob' ? 5 : 0 });
      expect(c.maxAbsDiff).toBeLessThan(1e-5);
    }
    expect(readNpy(path.join(dir, mode, 'pool1.npy')).shape).toEqual(mode === 'false' ? [2, 20, 11, 11] : [2, 20, 12, 12]);
  }
  // the two spellings must not contradict each other
  const both = lenetProto.replace(/(name: "pool1"[\s\S]*?)stride: 2\n/, '$1stride: 2\n    ceil_mode: false\n    round_mode: CEIL\n');
  const r = await runCli(['convert', '--prototxt', write('both.prototxt', both), '--caffemodel', weights, '--out', path.join(tmpDir(), 'b.onnx')]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/layer "pool1".*ceil_mode: false and round_mode: CEIL contradict each other/);
});

/** argv: prototxt caffemodel input.npy outdir — writes every blob OpenCV computes for pool1 and prob */
const OPENCV_FORWARD = `
import os, sys, cv2, numpy as np
proto, model, x, out = sys.argv[1:5]
net = cv2.dnn.readNetFromCaffe(proto, model)
net.setInput(np.load(x))
os.makedirs(out, exist_ok=True)
for name, blob in zip(['pool1', 'prob'], net.forward(['pool1', 'prob'])):
    np.save(os.path.join(out, name + '.npy'), blob.astype(np.float32))
`;

test("Dropout's fork fields: scale_train: false scales at test time as OpenCV computes it; sample_weights_test is refused naming the field", async () => {
  const py = opencvPython();
  const dir = tmpDir();
  const x = path.join(LENET, 'input_b2.npy');
  const at = lenetProto.indexOf('layer {\n  name: "ip2"');
  for (const mode of ['false', 'true']) {
    const proto = `${lenetProto.slice(0, at)}layer {\n  name: "drop1"\n  type: "Dropout"\n  bottom: "ip1"\n  top: "ip1"\n  dropout_param { dropout_ratio: 0.25 scale_train: ${mode} }\n}\n${lenetProto.slice(at)}`;
    const f = path.join(dir, `drop_${mode}.prototxt`);
    fs.writeFileSync(f, proto);
    execFileSync(py, ['-c', OPENCV_FORWARD.split("['pool1', 'prob']").join("['ip2', 'prob']"), f, weights, x, path.join(dir, mode)], { stdio: 'pipe' });
    const out = path.join(dir, `${mode}.onnx`);
    const r = await runCli(['convert', '--prototxt', f, '--caffemodel', weights, '--out', out, '--outputs', 'ip2,prob']);
    expect(r.code).toBe(0);
    const got = (await runOnnx(fs.readFileSync(out), { data: readNpy(x) }, ['ip2'])).outputs;
    const ref = readNpy(path.join(dir, mode, 'ip2.npy'));
    const c = compareOutput('ip2', 2, got.ip2, ref, { ...DEFAULT_TOLERANCE, topK: 0 });
    expect(c.maxAbsDiff).toBeLessThan(1e-4 * Math.max(1, ...Array.from(ref.data, Math.abs)));
  }
  // the two answers differ: the test would not pass with Dropout as the identity in both
  expect(readNpy(path.join(dir, 'false', 'ip2.npy')).data[0]).not.toBeCloseTo(readNpy(path.join(dir, 'true', 'ip2.npy')).data[0], 3);
  const before = lenetProto.indexOf('layer {\n  name: "prob"');
  const stochastic = `${lenetProto.slice(0, before)}layer {\n  name: "drop2"\n  type: "Dropout"\n  bottom: "ip2"\n  top: "ip2"\n  dropout_param { sample_weights_test: true }\n}\n${lenetProto.slice(before)}`;
  const r = await runCli(['convert', '--prototxt', write('s.prototxt', stochastic), '--caffemodel', weights, '--out', path.join(tmpDir(), 's.onnx')]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/layer "drop2": \(Dropout\) dropout_param\.sample_weights_test: true samples at test time/);
});
