import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { convertCaffe, ConversionResult } from '../src/convert/converter';
import { checkParity } from '../src/convert/parity';
import { runCompile } from '../src/compile';
import { chooseLrnForm, decideLrnForm, decomposeLrn, LRN_MARGIN, LrnRound } from '../src/compile/lrn';
import { onnxSchema } from '../src/formats/schema/onnx';
import { onnxInfo } from '../src/formats/onnxinfo';
import { Logger } from '../src/stage';
import { readNpy } from '../src/util/npy';
import { loadOrt } from '../src/util/ort';
import { DEFAULT_TOLERANCE, absMax, maxAbs } from '../src/shared/compare';
import { runCli } from './helpers/cli';
import { FIXTURES, ORACLE, tmpDir } from './helpers/caffe';
import { rng } from './helpers/rng';

// The compile stage's LRN forms (src/compile/lrn.ts): the primitive form replaces every LRN node, computes what ONNX
// Runtime's LRN op computes, and what real Caffe's LRN layers computed (GoogLeNet from the oracle; zoo_conv, whose
// LRN has k = 2, local_size 3 and beta 0.6); the choice follows the measured rounds.

const GOOGLENET = path.join(ORACLE, 'models/bvlc_googlenet');
const ZOO_CONV = path.join(FIXTURES, 'zoo_conv');

function convertDir(dir: string): ConversionResult {
  return convertCaffe({
    prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')),
    prototxtFile: path.join(dir, 'deploy.prototxt'),
    caffemodel: fs.readFileSync(path.join(dir, 'weights.caffemodel')),
    caffemodelFile: path.join(dir, 'weights.caffemodel'),
  });
}

interface Attr {
  name: string;
  f?: number;
  i?: number;
  ints?: number[];
}
interface Node {
  name?: string;
  op_type: string;
  input?: string[];
  output?: string[];
  attribute?: Attr[];
}
interface ModelObj {
  graph: { node: Node[]; initializer?: { name: string; raw_data?: Uint8Array }[]; input: { name: string }[]; output: { name: string }[] };
  metadata_props?: { key: string; value: string }[];
  opset_import: { version: number }[];
}
function decode(model: Uint8Array): ModelObj {
  const M = onnxSchema().lookupType('onnx.ModelProto');
  return M.toObject(M.decode(model), { longs: Number, bytes: Buffer, defaults: false }) as ModelObj;
}

const F = (name: string, f: number) => ({ name, type: 1, f });
const I = (name: string, i: number) => ({ name, type: 2, i });

/** A model of one LRN node over a 4-D float input of `shape`, at `opset`. */
function lrnModel(shape: number[], a: { size: number; alpha?: number; beta?: number; bias?: number }, opset = 13): Uint8Array {
  const M = onnxSchema().lookupType('onnx.ModelProto');
  const vi = (name: string) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: shape.map((d) => ({ dim_value: d })) } } } });
  const attribute: { name: string; type: number; f?: number; i?: number }[] = [I('size', a.size)];
  if (a.alpha !== undefined) attribute.push(F('alpha', a.alpha));
  if (a.beta !== undefined) attribute.push(F('beta', a.beta));
  if (a.bias !== undefined) attribute.push(F('bias', a.bias));
  return M.encode(
    M.fromObject({
      ir_version: 7,
      opset_import: [{ version: opset }],
      graph: { name: 'g', node: [{ name: 'norm', op_type: 'LRN', input: ['x'], output: ['y'], attribute }], input: [vi('x')], output: [vi('y')] },
    }),
  ).finish();
}

async function run(model: Uint8Array, feeds: Record<string, { shape: number[]; data: Float32Array }>, output: string): Promise<Float32Array> {
  const ort = loadOrt();
  const s = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  try {
    const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.shape)]));
    const r = await s.run(tensors, [output]);
    return new Float32Array(r[output].data as Float32Array);
  } finally {
    await s.release();
  }
}

/** ONNX's LRN, in float64: x / (bias + alpha/size · Σ x² over channels c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉)^beta. */
function lrnReference(x: Float32Array, shape: number[], a: { size: number; alpha: number; beta: number; bias: number }): Float32Array {
  const [n, c] = shape;
  const plane = shape[2] * shape[3];
  const y = new Float32Array(x.length);
  const lo = Math.floor((a.size - 1) / 2);
  const hi = a.size - 1 - lo;
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < plane; p++) {
        let sum = 0;
        for (let k = Math.max(0, ch - lo); k <= Math.min(c - 1, ch + hi); k++) sum += x[(b * c + k) * plane + p] ** 2;
        const i = (b * c + ch) * plane + p;
        y[i] = x[i] / (a.bias + (a.alpha / a.size) * sum) ** a.beta;
      }
  return y;
}

const quiet: Logger = { info: () => undefined, warning: () => undefined, group: (_n, fn) => fn() };

let googlenet: ConversionResult;
beforeAll(() => {
  expect(fs.existsSync(GOOGLENET)).toBe(true); // the oracle is part of the lab; CI has ../shared beside the clone
  googlenet = convertDir(GOOGLENET);
});

describe('the primitive form', () => {
  test('GoogLeNet: no LRN node left, each replaced by Mul → Unsqueeze → AveragePool [5,1,1] → Squeeze → ·alpha + k → √·√√ → Div; the rest byte for byte', () => {
    const source = googlenet.onnx;
    const d = decomposeLrn(source);
    expect(d.kept).toBeUndefined();
    expect(d.nodes).toEqual([
      { name: 'pool1/norm1', input: 'pool1/3x3_s2', size: 5, alpha: expect.closeTo(1e-4, 10), beta: 0.75, bias: 1 },
      { name: 'conv2/norm2', input: 'conv2/3x3', size: 5, alpha: expect.closeTo(1e-4, 10), beta: 0.75, bias: 1 },
    ]);
    const before = decode(source);
    const after = decode(d.model);
    expect(before.graph.node.filter((n) => n.op_type === 'LRN')).toHaveLength(2);
    expect(after.graph.node.filter((n) => n.op_type === 'LRN')).toHaveLength(0);
    expect(d.operators).toEqual(['Mul', 'Unsqueeze', 'AveragePool', 'Squeeze', 'Add', 'Sqrt', 'Div']);

    for (const lrn of before.graph.node.filter((n) => n.op_type === 'LRN')) {
      // the chain from the LRN's input to its output, in graph order
      const at = after.graph.node.findIndex((n) => n.op_type === 'Mul' && n.input![0] === lrn.input![0] && n.input![1] === lrn.input![0]);
      const end = after.graph.node.findIndex((n) => n.output![0] === lrn.output![0]);
      const chain = after.graph.node.slice(at, end + 1);
      expect(chain.map((n) => n.op_type)).toEqual([
        'Mul',
        'Constant',
        'Unsqueeze',
        'AveragePool',
        'Squeeze',
        'Constant',
        'Mul',
        'Constant',
        'Add',
        'Sqrt',
        'Sqrt',
        'Mul',
        'Div',
      ]);
      const pool = chain.find((n) => n.op_type === 'AveragePool')!;
      const attrs = Object.fromEntries(pool.attribute!.map((a) => [a.name, a.ints ?? a.i]));
      expect(attrs).toEqual({ kernel_shape: [5, 1, 1], pads: [2, 0, 0, 2, 0, 0], count_include_pad: 1 });
      const div = chain[chain.length - 1];
      expect(div).toMatchObject({ name: lrn.name, input: [lrn.input![0], chain[chain.length - 2].output![0]], output: lrn.output });
    }
    // everything but the LRN nodes is the source's: weights, inputs, outputs, metadata, the other nodes in order
    // (compared with Buffer.equals: jest's deep equality over 28 MB of weights takes minutes)
    const weights = (m: ModelObj) => m.graph.initializer!.map((t) => [t.name, Buffer.from(t.raw_data!)] as const);
    const [wa, wb] = [weights(after), weights(before)];
    expect(wa.map(([n]) => n)).toEqual(wb.map(([n]) => n));
    expect(wa.every(([, b], i) => b.equals(wb[i][1]))).toBe(true);
    expect(after.metadata_props).toEqual(before.metadata_props);
    expect([after.graph.input, after.graph.output]).toEqual([before.graph.input, before.graph.output]);
    const others = (m: ModelObj) => m.graph.node.filter((n) => !n.name?.startsWith('pool1/norm1') && !n.name?.startsWith('conv2/norm2'));
    expect(others(after)).toEqual(others(before));
  });

  test('fields the schema does not know are kept (edited on the wire, not re-encoded)', () => {
    // a ModelProto field modelship's ONNX schema lacks (functions = 25), with a payload: it must pass through untouched
    const extra = Buffer.from(
      protobuf.Writer.create()
        .uint32((25 << 3) | 2)
        .bytes(Buffer.from([0xaa, 0xbb, 0xcc]))
        .finish(),
    );
    const source = Buffer.concat([lrnModel([1, 8, 4, 4], { size: 5 }), extra]);
    const d = decomposeLrn(source);
    expect(d.nodes).toHaveLength(1);
    expect(Buffer.from(d.model).subarray(-extra.length)).toEqual(extra);
    expect(decode(d.model).graph.node.map((n) => n.op_type)).not.toContain('LRN');
  });

  test('a model without LRN is returned as it is', () => {
    const lenet = convertDir(path.join(FIXTURES, 'lenet')).onnx;
    const d = decomposeLrn(lenet);
    expect(d.nodes).toEqual([]);
    expect(d.model).toBe(lenet);
  });

  // sizes odd and even (ONNX's window is asymmetric then), wider than the channels, ONNX's defaults, every power
  // path (√·√√, √, none, Pow), opset 11 (Unsqueeze/Squeeze axes as attributes)
  const cases: [string, number[], Parameters<typeof lrnModel>[1], number][] = [
    ['AlexNet/GoogLeNet (5, 1e-4, 0.75, 1)', [2, 96, 7, 6], { size: 5, alpha: 1e-4, beta: 0.75, bias: 1 }, 13],
    ["zoo_conv's (3, 0.3, 0.6, k 2)", [2, 6, 5, 4], { size: 3, alpha: 0.3, beta: 0.6, bias: 2 }, 13],
    ['even size 4, beta 0.5', [1, 10, 3, 3], { size: 4, alpha: 0.02, beta: 0.5, bias: 1.5 }, 13],
    ['size 7 over 3 channels, beta 1', [1, 3, 4, 5], { size: 7, alpha: 0.05, beta: 1, bias: 0.5 }, 13],
    ["ONNX's defaults, opset 11", [1, 16, 4, 4], { size: 5 }, 11],
  ];
  test.each(cases)('%s: ONNX LRN as defined (float64), as close as the LRN op in onnxruntime-node', async (_n, shape, attrs, opset) => {
    const source = lrnModel(shape, attrs, opset);
    const d = decomposeLrn(source);
    expect(decode(d.model).graph.node.map((n) => n.op_type)).not.toContain('LRN');
    const r = rng(shape.reduce((a, b) => a * b, 1));
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => (r() - 0.5) * 300); // activations in the hundreds
    const feeds = { x: { shape, data } };
    const want = lrnReference(data, shape, { alpha: 1e-4, beta: 0.75, bias: 1, ...attrs });
    const prim = await run(d.model, feeds, 'y');
    // float32 rounding of the largest value: a wrong window, scale or power is off by orders more
    const err = maxAbs(prim, want);
    expect(err).toBeLessThanOrEqual(1e-6 * absMax(want));
    // ONNX Runtime's kernel takes odd sizes only
    if (attrs.size % 2 === 1) expect(err).toBeLessThanOrEqual(2 * maxAbs(await run(source, feeds, 'y'), want) + 1e-7 * absMax(want));
  });

  test('opset 6 keeps the op (AveragePool had no count_include_pad)', () => {
    const d = decomposeLrn(lrnModel([1, 4, 2, 2], { size: 3 }, 6));
    expect(d.kept).toMatch(/opset 6/);
  });
});

describe('the primitive form against real Caffe, layer by layer', () => {
  // Each LRN layer of the converted net alone (the convert stage's per-layer subgraph), rewritten, run on Caffe's own
  // bottom blob and compared with Caffe's top blob at the per-layer tolerance of the parity gate.
  const cases: [string, string, string, string][] = [
    ['GoogLeNet pool1/norm1', GOOGLENET, 'pool1/norm1', 'pool1/3x3_s2'],
    ['GoogLeNet conv2/norm2', GOOGLENET, 'conv2/norm2', 'conv2/3x3'],
    ['zoo_conv lrn_across (k 2, local_size 3, beta 0.6)', ZOO_CONV, 'lrn_across', 'lrn_within'],
  ];
  test.each(cases)('%s', async (_n, dir, layer, bottom) => {
    const conv = dir === GOOGLENET ? googlenet : convertDir(dir);
    const top = conv.versions.find((v) => v.layer === layer)!;
    const inShape = conv.versions.filter((v) => v.blob === bottom).pop()!.shape;
    const sub = conv.encodeLayers(new Set([layer]), [{ name: bottom, shape: inShape }], [{ name: top.onnx, shape: top.shape }]);
    const d = decomposeLrn(sub);
    expect(d.nodes).toHaveLength(1);
    const file = (b: string) => path.join(dir, 'blobs_b1', `${b.replace(/\//g, '_')}.npy`);
    const x = readNpy(file(bottom));
    const caffe = readNpy(file(top.blob));
    const op = await run(sub, { [bottom]: x }, top.onnx);
    const prim = await run(d.model, { [bottom]: x }, top.onnx);
    const limit = DEFAULT_TOLERANCE.layerRelative * Math.max(1, absMax(caffe.data));
    expect(maxAbs(prim, caffe.data)).toBeLessThanOrEqual(limit);
    // as close to Caffe as the op is: within float32 rounding of its distance
    expect(maxAbs(prim, caffe.data)).toBeLessThanOrEqual(maxAbs(op, caffe.data) + 1e-6 * absMax(caffe.data));
  });

  test('WITHIN_CHANNEL (converted to primitives by the converter): beta 0.75 as square roots, at parity per layer', async () => {
    const conv = convertDir(ZOO_CONV);
    const ops = decode(conv.onnx).graph.node.filter((n) => n.name?.startsWith('lrn_within') || n.output![0].startsWith('lrn_within'));
    expect(ops.map((n) => n.op_type)).toEqual(['Mul', 'AveragePool', 'Mul', 'Add', 'Sqrt', 'Sqrt', 'Mul', 'Div']);
    const report = await checkParity(conv, ZOO_CONV, { perLayer: true });
    expect(report.perLayer!.layers.find((l) => l.layer === 'lrn_within')).toMatchObject({ scope: 'layer', pass: true });
    expect(report.status).toBe('pass');
  });
});

describe('the choice', () => {
  const rounds = (pairs: [number, number][]): LrnRound[] => pairs.map(([op, primitive]) => ({ op, primitive }));

  test('decideLrnForm: the primitive form when its median time beats the op by the margin', () => {
    expect(
      decideLrnForm(
        rounds([
          [0.027, 0.019],
          [0.026, 0.019],
          [0.028, 0.02],
        ]),
      ),
    ).toEqual({ form: 'primitive', speedup: expect.closeTo(0.027 / 0.019, 6) });
    // 3% faster is within the margin: the op stays
    expect(decideLrnForm(rounds([[0.0103, 0.01]]))).toEqual({ form: 'op', speedup: expect.closeTo(1.03, 6) });
    expect(decideLrnForm(rounds([[0.01, 0.012]])).form).toBe('op');
    // the margin itself counts as faster
    expect(decideLrnForm(rounds([[0.01 * (1 + LRN_MARGIN), 0.01]])).form).toBe('primitive');
    // one round where a neighbour slowed the primitive form tenfold does not decide
    expect(
      decideLrnForm(
        rounds([
          [0.03, 0.02],
          [0.03, 0.2],
          [0.03, 0.02],
        ]),
      ).form,
    ).toBe('primitive');
    expect(() => decideLrnForm([])).toThrow(/no rounds/);
  });

  test('auto on the CPU: the LRN nodes timed alone on the activations they read, the net too, and the form the rounds decide', async () => {
    const source = googlenet.onnx;
    const c = await chooseLrnForm(
      source,
      {
        setting: 'auto',
        executionProvider: 'cpu',
        inputs: googlenet.inputs,
        reference: GOOGLENET,
        tolerance: 1e-3,
        measure: { threads: 1, rounds: 3, sampleMs: 20 },
      },
      quiet,
    );
    const r = c.record!;
    const m = r.measured!;
    expect(r).toMatchObject({ setting: 'auto', nodes: 2, measured: { threads: 1, batch: 1, runtime: `onnxruntime-node ${loadOrt().env.versions.node}` } });
    // the LRN nodes alone read what they read in the net: its blobs' shapes at batch 1
    const bottom = (layer: string) => googlenet.versions.filter((v) => v.blob === googlenet.net.layers.find((l) => l.name === layer)!.bottoms[0]).pop()!.shape;
    expect(m.lrn.shapes).toEqual(['pool1/norm1', 'conv2/norm2'].map((l) => [1, ...bottom(l).slice(1)]));
    expect([m.lrn.rounds, m.net.rounds].map((x) => x.length)).toEqual([3, 3]);
    // what the record says follows from its rounds
    expect(r.form).toBe(decideLrnForm(m.lrn.rounds).form);
    expect(m.lrn.speedup).toBeCloseTo(m.lrn.opMs / m.lrn.primitiveMs, 9);
    expect(m.net.speedup).toBeCloseTo(m.net.primitiveImagesPerSecond / m.net.opImagesPerSecond, 9);
    expect(r.maxAbsDiffVsOp).toBeLessThanOrEqual(1e-6);
    expect(r.reason).toMatch(
      /^measured on onnxruntime-node \S+ \(cpu, 1 intra-op thread, batch 1, 3 interleaved rounds\): the LRN nodes [\d.]+ ms as the op, [\d.]+ ms as primitives, [\d.]+× .*; the whole net [\d.]+ → [\d.]+ img\/s/,
    );
    expect(decode(c.model).graph.node.filter((n) => n.op_type === 'LRN')).toHaveLength(r.form === 'op' ? 2 : 0);
  });

  test('cuda keeps the op without measuring; lrn: op keeps it; a net without LRN has no record', async () => {
    const source = googlenet.onnx;
    const base = { inputs: googlenet.inputs, tolerance: 1e-3 };
    const cuda = await chooseLrnForm(source, { ...base, setting: 'auto', executionProvider: 'cuda' }, quiet);
    expect(cuda.model).toBe(source);
    expect(cuda.record).toEqual({ setting: 'auto', form: 'op', nodes: 2, reason: expect.stringMatching(/cuda/) });
    const op = await chooseLrnForm(source, { ...base, setting: 'op', executionProvider: 'cpu' }, quiet);
    expect(op.model).toBe(source);
    expect(op.record).toMatchObject({ form: 'op', reason: 'as set' });
    const lenet = convertDir(path.join(FIXTURES, 'lenet')).onnx;
    const none = await chooseLrnForm(lenet, { ...base, inputs: onnxInfo(lenet).inputs, setting: 'primitive', executionProvider: 'cpu' }, quiet);
    expect(none.model).toBe(lenet);
    expect(none.record).toBeUndefined();
  });
});

describe('compile with lrn', () => {
  test('GoogLeNet, lrn: primitive: an artifact without LRN, at parity with real Caffe, the choice in the summary and metadata', async () => {
    const dir = tmpDir();
    const model = path.join(dir, 'googlenet.onnx');
    await googlenet.writeOnnx(model);
    const r = await runCompile(
      {
        model,
        target: 'onnxruntime',
        artifact: '',
        executionProvider: 'cpu',
        lrn: 'primitive',
        batchSizes: [1, 8, 32],
        fp16: false,
        int8: false,
        workspaceMiB: 4096,
        tensorrtImage: '',
        tritonImage: '',
        calibrationCache: '',
        reference: GOOGLENET,
        tolerance: 1e-3,
      },
      quiet,
    );
    expect(r.ok).toBe(true);
    const o = r.outputs;
    expect(o['compile-parity']).toBe('pass');
    const artifact = decode(fs.readFileSync(o['artifact-path']));
    const ops = artifact.graph.node.map((n) => n.op_type);
    expect(ops).not.toContain('LRN');
    expect(ops.filter((op) => op === 'AveragePool')).toHaveLength(2 + 1); // the two LRN windows and pool5/7x7_s1
    const meta = JSON.parse(fs.readFileSync(o['artifact-metadata'], 'utf8'));
    expect(meta.lrn).toEqual({
      setting: 'primitive',
      form: 'primitive',
      nodes: 2,
      reason: 'as set',
      operators: ['Mul', 'Unsqueeze', 'AveragePool', 'Squeeze', 'Add', 'Sqrt', 'Div'],
      maxAbsDiffVsOp: expect.any(Number),
    });
    expect(meta.lrn.maxAbsDiffVsOp).toBeLessThanOrEqual(1e-6);
    expect(meta.parity.status).toBe('pass');
    expect(meta.parity.maxAbsDiff).toBeLessThanOrEqual(1e-5);
    expect(r.summary).toContain('LRN (2 nodes, `lrn: primitive`): **primitive operators** (Mul, Unsqueeze, AveragePool, Squeeze, Add, Sqrt, Div): as set');
  });

  test('zoo_conv, lrn: primitive (Pow for beta 0.6, k 2): at parity with real Caffe', async () => {
    const dir = tmpDir();
    const model = path.join(dir, 'zoo_conv.onnx');
    await convertDir(ZOO_CONV).writeOnnx(model);
    const r = await runCli(['compile', '--model', model, '--reference', ZOO_CONV, '--lrn', 'primitive', '--json']);
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o['compile-parity']).toBe('pass');
    const meta = JSON.parse(fs.readFileSync(o['artifact-metadata'], 'utf8'));
    expect(meta.lrn).toMatchObject({ form: 'primitive', nodes: 1, operators: expect.arrayContaining(['Pow']) });
    expect(decode(fs.readFileSync(o['artifact-path'])).graph.node.map((n) => n.op_type)).not.toContain('LRN');
  });

  test.each([
    [['--lrn', 'primitive', '--execution-provider', 'cuda', '--fp16'], /lrn.*float32 only/],
    [['--lrn', 'primitive', '--target', 'tensorrt'], /lrn.*target onnxruntime/],
    [['--lrn', 'fast'], /lrn.*expected one of auto, op, primitive/],
  ])('refused: %j', async (args, message) => {
    const r = await runCli(['compile', '--model', path.join(tmpDir(), 'absent.onnx'), ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
  });
});
