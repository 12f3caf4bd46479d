import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { decodeCaffeModel } from '../src/convert/caffemodel';
import { convertCaffe } from '../src/convert/converter';
import { checkParity } from '../src/convert/parity';
import { parsePrototxt } from '../src/convert/net';
import { CAFFE_PROTO } from '../src/formats/schema/caffe';
import { ModelshipError } from '../src/util/errors';
import { FIXTURES, caffeRoot } from './helpers/caffe';

const LENET = path.join(FIXTURES, 'lenet');
const lenetWeights = fs.readFileSync(path.join(LENET, 'weights.caffemodel'));
const lenetProto = fs.readFileSync(path.join(LENET, 'deploy.prototxt'));

function decodeFull(bytes: Uint8Array): any {
  return caffeRoot().lookupType('caffe.NetParameter').decode(bytes);
}

async function parityWith(weights: Uint8Array) {
  const conv = convertCaffe({ prototxt: lenetProto, prototxtFile: 'deploy.prototxt', caffemodel: weights, caffemodelFile: 'w.caffemodel' });
  return checkParity(conv, LENET, { perLayer: false });
}

describe('caffemodel decoding', () => {
  test('blobs stored as double_data convert to the same model', async () => {
    const net = decodeFull(lenetWeights);
    for (const l of net.layer)
      for (const b of l.blobs) {
        b.double_data = Array.from(b.data as number[]);
        b.data = [];
      }
    const T = caffeRoot().lookupType('caffe.NetParameter');
    const bytes = T.encode(net).finish();
    const w = decodeCaffeModel(bytes, 'x');
    expect(w.layers.get('conv1')!.blobs[0].shape).toEqual([20, 1, 5, 5]);
    expect((await parityWith(bytes)).status).toBe('pass');
  });

  test('unpacked (non-packed) float data is read too', async () => {
    // the same schema with packed=false writes one tag per float, as some old writers did
    const root = protobuf.parse(CAFFE_PROTO.replace('repeated float data = 5 [packed = true];', 'repeated float data = 5 [packed = false];'), {
      keepCase: true,
    }).root;
    const T = root.lookupType('caffe.NetParameter');
    const bytes = T.encode(decodeFull(lenetWeights)).finish();
    expect(bytes.length).toBeGreaterThan(lenetWeights.length * 1.1); // really unpacked: a tag byte per value
    expect((await parityWith(bytes)).status).toBe('pass');
  });

  test('legacy 4-D blob dims (num/channels/height/width) are accepted where Caffe accepts them', () => {
    const w = decodeCaffeModel(fs.readFileSync(path.join(FIXTURES, 'lenet_v1/weights.caffemodel')), 'v1');
    expect(w.format).toBe('V1');
    const ip1 = w.layers.get('ip1')!;
    expect(ip1.type).toBe('INNER_PRODUCT');
    expect(ip1.blobs.map((b) => [b.legacy, b.shape])).toEqual([
      [true, [1, 1, 500, 800]],
      [true, [1, 1, 1, 500]],
    ]);
  });

  test('a 0-D blob (no shape, no legacy dims) has one value, as Caffe saves a shared PReLU slope', () => {
    const w = decodeCaffeModel(fs.readFileSync(path.join(FIXTURES, 'zoo_conv/weights.caffemodel')), 'zoo');
    expect(w.layers.get('prelu_shared')!.blobs[0].shape).toEqual([]);
    expect(w.layers.get('prelu_shared')!.blobs[0].data.length).toBe(1);
  });

  test('a blob whose data does not match its shape is a typed error naming the layer', () => {
    const net = decodeFull(lenetWeights);
    net.layer[1].blobs[0].shape.dim = [20, 1, 5, 6];
    const bytes = caffeRoot().lookupType('caffe.NetParameter').encode(net).finish();
    expect(() => decodeCaffeModel(bytes, 'bad.caffemodel')).toThrow(
      /bad\.caffemodel: layer "conv1": blob 0 declares shape \[20, 1, 5, 6\] \(600 values\) but holds 500 float values/,
    );
  });
});

describe('prototxt semantics', () => {
  test('layers excluded from the TEST phase are dropped; included ones kept', () => {
    const src = `name: "p"
      input: "data" input_shape { dim: 1 dim: 2 }
      layer { name: "train_only" type: "Dropout" bottom: "data" top: "a" include { phase: TRAIN } }
      layer { name: "test_only" type: "ReLU" bottom: "data" top: "b" include { phase: TEST } }
      layer { name: "not_test" type: "Sigmoid" bottom: "data" top: "c" exclude { phase: TEST } }
      layer { name: "staged" type: "TanH" bottom: "data" top: "d" include { stage: "deploy-extra" } }`;
    const net = parsePrototxt(Buffer.from(src), 'p.prototxt');
    expect(net.layers.map((l) => l.name)).toEqual(['test_only']);
  });

  test('the net must declare an input, with positive dims', () => {
    expect(() => parsePrototxt(Buffer.from('layer { name: "r" type: "ReLU" bottom: "x" top: "x" }'), 'n.prototxt')).toThrow(/declares no input/);
    expect(() => parsePrototxt(Buffer.from('input: "data" input_dim: 1 input_dim: 3 input_dim: 0 input_dim: 4'), 'n.prototxt')).toThrow(
      /n\.prototxt:1: input "data" has an invalid shape \[1, 3, 0, 4\]/,
    );
    expect(() => parsePrototxt(Buffer.from('input: "data" input_dim: 1 input_dim: 3'), 'n.prototxt')).toThrow(ModelshipError);
  });
});
