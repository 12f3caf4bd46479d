import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { convertCaffe, ConversionResult } from '../src/convert/converter';
import { checkParity } from '../src/convert/parity';
import { onnxSchema } from '../src/formats/schema/onnx';
import { sha256 } from '../src/util/fsx';
import { FIXTURES, ORACLE, caffeRoot } from './helpers/caffe';

function convertDir(dir: string, weights = path.join(dir, 'weights.caffemodel')): ConversionResult {
  return convertCaffe({
    prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')),
    prototxtFile: path.join(dir, 'deploy.prototxt'),
    caffemodel: fs.readFileSync(weights),
    caffemodelFile: weights,
  });
}

// Each case: the net, and the directory holding real Caffe's outputs for it.
const fixtureCases: [string, string, string][] = [
  ['lenet (V2)', 'lenet', 'lenet'],
  ['lenet (legacy V1 prototxt + V1 caffemodel with 4-D legacy blobs)', 'lenet_v1', 'lenet'],
  ['zoo_conv', 'zoo_conv', 'zoo_conv'],
  ['zoo_branch', 'zoo_branch', 'zoo_branch'],
  ['zoo_legacy', 'zoo_legacy', 'zoo_legacy'],
  ['zoo_pool (ceil overhang of a kernel or more, stride > kernel)', 'zoo_pool', 'zoo_pool'],
];

describe('parity against real Caffe: committed fixtures', () => {
  test.each(fixtureCases)('%s: batch 1 and 2 from one ONNX file, every layer', async (_n, net, ref) => {
    const conv = convertDir(path.join(FIXTURES, net));
    const report = await checkParity(conv, path.join(FIXTURES, ref), { perLayer: true });
    expect(report.batches).toEqual([1, 2]);
    for (const c of report.outputs) {
      expect({ out: c.output, batch: c.batch, diff: c.maxAbsDiff, topk: c.topKMatch }).toEqual({
        out: c.output,
        batch: c.batch,
        diff: expect.any(Number),
        topk: true,
      });
      expect(c.maxAbsDiff).toBeLessThanOrEqual(c.limit);
    }
    expect(report.perLayer!.firstDivergence).toBeNull();
    expect(report.perLayer!.checked).toBeGreaterThan(5);
    expect(report.status).toBe('pass');
  });
});

const oracleNets = ['lenet', 'bvlc_googlenet', 'squeezenet_v1.1', 'mobilenet_v1'];
describe('parity against real Caffe: ../shared/caffe-oracle', () => {
  test.each(oracleNets)('%s passes at batch 1 and 2 (max |Δ| ≤ 1e-5, identical top-5) and per layer', async (name) => {
    const dir = path.join(ORACLE, 'models', name);
    expect(fs.existsSync(dir)).toBe(true); // the oracle is part of the lab; CI has ../shared beside the clone
    const conv = convertDir(dir);
    const report = await checkParity(conv, dir, { perLayer: true });
    expect(report.batches).toEqual([1, 2]);
    expect(report.outputs.map((o) => [o.batch, o.output, o.topKMatch])).toEqual([
      [1, 'prob', true],
      [2, 'prob', true],
    ]);
    expect(report.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(report.perLayer!.firstDivergence).toBeNull();
    // Caffe keeps every bottom a layer reads, so every layer is checked on its own
    expect(report.perLayer!.layers.every((l) => l.scope === 'layer')).toBe(true);
    expect(report.status).toBe('pass');
  });

  test('the V1 LeNet of the oracle (models-v1) matches the V2 outputs', async () => {
    const conv = convertDir(path.join(ORACLE, 'models-v1/lenet'));
    const report = await checkParity(conv, path.join(ORACLE, 'models/lenet'), { perLayer: false });
    expect(report.status).toBe('pass');
  });
});

describe('the ONNX model', () => {
  const dir = path.join(FIXTURES, 'lenet');
  const conv = convertDir(dir);
  const Model = onnxSchema().lookupType('onnx.ModelProto');
  const model = Model.toObject(Model.decode(conv.onnx), { longs: Number, bytes: Array }) as any;

  test('opset 13, input named as the Caffe blob with a symbolic batch, output named as the Caffe top', () => {
    expect(model.opset_import).toEqual([{ domain: '', version: 13 }]);
    expect(model.ir_version).toBe(7);
    const dims = (v: any) => v.type.tensor_type.shape.dim.map((d: any) => d.dim_param ?? d.dim_value);
    expect(model.graph.input.map((i: any) => [i.name, dims(i)])).toEqual([['data', ['N', 1, 28, 28]]]);
    expect(model.graph.output.map((o: any) => [o.name, dims(o)])).toEqual([['prob', ['N', 10]]]);
  });

  test('weights are raw little-endian initializers; metadata records version and source hashes', () => {
    const w = model.graph.initializer.find((t: any) => t.name === 'conv1/W');
    expect(w.dims).toEqual([20, 1, 5, 5]);
    expect(w.data_type).toBe(1);
    expect(w.raw_data.length).toBe(20 * 25 * 4);
    const meta = Object.fromEntries(model.metadata_props.map((p: any) => [p.key, p.value]));
    expect(meta['modelship.prototxt_sha256']).toBe(sha256(fs.readFileSync(path.join(dir, 'deploy.prototxt'))));
    expect(meta['modelship.caffemodel_sha256']).toBe(sha256(fs.readFileSync(path.join(dir, 'weights.caffemodel'))));
    expect(meta['modelship.converter_version']).toMatch(/^\d+\.\d+\.\d+/);
  });

  test('in-place layers get distinct internal names; the last version keeps the blob name', () => {
    const conv2 = convertDir(path.join(FIXTURES, 'zoo_legacy'));
    const v = conv2.versions.filter((x) => x.blob === 'conv1').map((x) => [x.layer, x.onnx, x.final]);
    expect(v).toEqual([
      ['conv1', 'conv1__conv1', false],
      ['relu1', 'conv1__relu1', false],
      ['scaled', 'conv1', true],
    ]);
  });
});

describe('per-layer parity names the first layer that diverges', () => {
  test('a perturbed conv2 weight in LeNet is found at conv2, and the gate fails', async () => {
    const dir = path.join(FIXTURES, 'lenet');
    const T = caffeRoot().lookupType('caffe.NetParameter');
    const net = T.decode(fs.readFileSync(path.join(dir, 'weights.caffemodel'))) as any;
    const conv2 = net.layer.find((l: any) => l.name === 'conv2');
    conv2.blobs[0].data[7] += 0.05;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-perturb-'));
    const weights = path.join(tmp, 'weights.caffemodel');
    fs.writeFileSync(weights, T.encode(net).finish());
    const conv = convertDir(dir, weights);
    const report = await checkParity(conv, dir, { perLayer: true });
    expect(report.status).toBe('fail');
    expect(report.perLayer!.firstDivergence).toMatchObject({ layer: 'conv2', type: 'Convolution', blob: 'conv2', scope: 'layer' });
    // each layer runs on Caffe's own bottoms: the layers after conv2 are not blamed for its error
    expect(report.perLayer!.layers.filter((l) => !l.pass).map((l) => l.layer)).toEqual(['conv2']);
    expect(report.perLayer!.layers.find((l) => l.layer === 'ip1')!.endToEnd).toBeGreaterThan(1e-4);
  });
});
