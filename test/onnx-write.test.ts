import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import { execFileSync, spawnSync } from 'child_process';
import { GraphBuilder, ModelMeta, Value, attr, IR_VERSION, OPSET } from '../src/convert/graph';
import { FloatData } from '../src/convert/floatdata';
import { writeModelFile } from '../src/convert/onnxfile';
import { convertCaffe } from '../src/convert/converter';
import { onnxSchema, TensorDataType } from '../src/formats/schema/onnx';
import { ModelshipError } from '../src/util/errors';
import { writeFileAtomic } from '../src/util/fsx';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');

/** The model as one protobufjs encode of the whole ModelProto: what graph.ts wrote before it encoded by hand. */
function protobufjsEncode(g: GraphBuilder, meta: ModelMeta): Uint8Array {
  const Model = onnxSchema().lookupType('onnx.ModelProto');
  const valueInfo = (v: Value) => ({
    name: v.name,
    type: {
      tensor_type: { elem_type: TensorDataType.FLOAT, shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } },
    },
  });
  const attrObj = (name: string, a: any) => ({
    name,
    type: a.type,
    ...(a.type === 3 ? { s: Buffer.from(a.s, 'utf8') } : { f: a.f, i: a.i, floats: a.floats, ints: a.ints }),
  });
  const model = {
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'modelship',
    producer_version: meta.producerVersion,
    doc_string: meta.docString ?? '',
    graph: {
      name: meta.graphName,
      node: g.nodes.map((n) => ({
        name: n.name,
        op_type: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs).map(([k, a]) => attrObj(k, a)),
      })),
      initializer: g.initializers.map((t) => ({ name: t.name, dims: t.dims, data_type: t.dataType, raw_data: t.raw })),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
    },
    metadata_props: Object.entries(meta.metadata).map(([key, value]) => ({ key, value })),
  };
  return Model.encode(Model.fromObject(model)).finish();
}

/** Every kind of field the converter writes, with the edge values of each. */
function sampleGraph(bigWeights = 0): GraphBuilder {
  const g = new GraphBuilder();
  const x = g.addInput('data', ['N', 3, 224, 224]);
  g.addInput('scalarish', []);
  // packed floats as they lie in a caffemodel: at an odd offset of a larger buffer
  const buf = Buffer.alloc(4 * 6 + 1);
  [1.5, -0, NaN, Infinity, 1e-40, -3.25].forEach((v, i) => buf.writeFloatLE(v, 1 + 4 * i));
  const w = g.floatInit('conv/W', [2, 3], FloatData.fromBytes(buf.subarray(1)));
  const b = g.floatInit('conv/b', [], [0.5]);
  const empty = g.floatInit('empty', [0], []);
  const shape = g.int64Init('shape', [-1, 0, 2 ** 40, -(2 ** 40), 7]);
  const inputs = [x.name, w, b, '', empty, shape];
  if (bigWeights) inputs.push(g.floatInit('big', [bigWeights], FloatData.fromBytes(crypto.randomBytes(bigWeights * 4))));
  g.currentLayer = 'l1';
  g.node('Conv', inputs, ['y'], {
    f: attr.f(0.1),
    neg0: attr.f(-0),
    i: attr.i(-3),
    big: attr.i(2 ** 35),
    s: attr.s('naïve — 名'),
    fs: attr.floats([1, -2.5, 3e38]),
    is: attr.ints([-1, 0, 300, -(2 ** 33)]),
    none: attr.ints([]),
  });
  g.node('Identity', ['y'], ['z'], { odd: attr.i(NaN), frac: attr.i(-2.7), huge: attr.ints([2 ** 64 + 2 ** 12, -(2 ** 70), Infinity]) }, '');
  g.addOutput({ name: 'z', shape: ['N', 'C2', 7] });
  return g;
}

const META: ModelMeta = { producerVersion: '9.9.9', graphName: 'sample', docString: 'doc', metadata: { a: '1', 'b/é': '', c: 'x'.repeat(300) } };

describe('ONNX serialisation (graph.ts by hand, onnxfile.ts streamed)', () => {
  test('the hand encoding is byte for byte what protobufjs writes for the same model', () => {
    const g = sampleGraph();
    const bytes = g.encode(META);
    expect(Buffer.compare(Buffer.from(bytes), Buffer.from(protobufjsEncode(g, META)))).toBe(0);
    // and it reads back as ONNX
    const Model = onnxSchema().lookupType('onnx.ModelProto');
    const m = Model.toObject(Model.decode(bytes), { longs: Number }) as any;
    expect(m.graph.node[0].attribute.find((a: any) => a.name === 'is').ints).toEqual([-1, 0, 300, -(2 ** 33)]);
    expect(m.graph.initializer.find((t: any) => t.name === 'shape').dims).toEqual([5]);
    expect(m.metadata_props).toHaveLength(3);
  });

  test('EncodedModel keeps the weights as views, reads the metadata only when it is encoded', () => {
    const g = sampleGraph(1000);
    let reads = 0;
    const meta: ModelMeta = {
      ...META,
      metadata: {
        get late() {
          reads++;
          return 'late';
        },
      },
    };
    const m = g.model(meta);
    expect(reads).toBe(0);
    const big = g.initializers.find((t) => t.name === 'big')!.raw;
    expect(m.body.some((p) => p === big)).toBe(true); // the very bytes given, not a copy
    expect(Buffer.compare(Buffer.from(m.toBytes()), Buffer.from(protobufjsEncode(g, meta)))).toBe(0);
    expect(reads).toBe(2); // once for the tail, once for the reference encode
  });

  test('the streamed file is the encoded model; its sha256 and size are returned; a side hash is computed on the way', async () => {
    // 5 M floats: pieces larger than a write chunk (8 MiB), sliced across chunks, flushed while written
    const g = sampleGraph(5_000_000);
    const side = crypto.randomBytes(3_000_001);
    let sideSha = '';
    const m = g.model({
      ...META,
      metadata: {
        get side() {
          return sideSha;
        },
      },
    });
    const file = path.join(tmpDir(), 'sub', 'm.onnx');
    const r = await writeModelFile(file, m, { bytes: side, done: (h) => (sideSha = h) });
    const onDisk = fs.readFileSync(file);
    expect(sideSha).toBe(sha256(side));
    expect(Buffer.compare(onDisk, Buffer.from(m.toBytes()))).toBe(0);
    expect(r).toEqual({ sha256: sha256(onDisk), size: onDisk.length });
    expect(fs.readdirSync(path.dirname(file))).toEqual(['m.onnx']);
  });

  test('convert: writeOnnx writes what `onnx` holds, with the caffemodel digest in the metadata', async () => {
    const dir = path.join(FIXTURES, 'lenet');
    const caffemodel = fs.readFileSync(path.join(dir, 'weights.caffemodel'));
    const conv = convertCaffe({ prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')), prototxtFile: 'p', caffemodel, caffemodelFile: 'w' });
    const file = path.join(tmpDir(), 'lenet.onnx');
    const r = await conv.writeOnnx(file); // first: the digest comes from the writer's side hash
    const onDisk = fs.readFileSync(file);
    expect(Buffer.compare(onDisk, Buffer.from(conv.onnx))).toBe(0);
    expect(r.sha256).toBe(sha256(onDisk));
    expect(conv.metadata['modelship.caffemodel_sha256']).toBe(sha256(caffemodel));
    const Model = onnxSchema().lookupType('onnx.ModelProto');
    const meta = Object.fromEntries((Model.toObject(Model.decode(onDisk)) as any).metadata_props.map((p: any) => [p.key, p.value]));
    expect(meta['modelship.caffemodel_sha256']).toBe(sha256(caffemodel));
  });

  test('a path that cannot be written is an io error naming it, and leaves no temporary file', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    const target = path.join(dir, 'file', 'm.onnx'); // under a regular file
    await expect(writeModelFile(target, sampleGraph().model(META))).rejects.toThrow(ModelshipError);
    await expect(writeModelFile(target, sampleGraph().model(META))).rejects.toThrow(`cannot write ${target}`);
    expect(fs.readdirSync(dir)).toEqual(['file']);
  });

  test('a read-only directory: an io error naming the file, which keeps its old content, and no temporary file', () => {
    // Root writes anywhere, and CI runs as root: there the writer runs as an unprivileged user (nobody), in a process
    // of its own, in a directory it owns and has made read-only. Elsewhere as the user running the tests.
    const asRoot = process.getuid?.() === 0;
    const owner = asRoot
      ? { uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' })) }
      : undefined;
    // (the run's own temporary directory is 0700: nobody could not reach a file in it at all)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-ro-'));
    try {
      const ro = path.join(dir, 'ro');
      fs.mkdirSync(ro);
      fs.writeFileSync(path.join(ro, 'm.onnx'), 'old');
      const script = path.join(dir, 'write.ts');
      fs.writeFileSync(
        script,
        `import { GraphBuilder } from ${JSON.stringify(path.join(REPO, 'src/convert/graph'))};
import { writeModelFile } from ${JSON.stringify(path.join(REPO, 'src/convert/onnxfile'))};
const g = new GraphBuilder();
g.addInput('x', [1]);
g.node('Identity', ['x'], ['y'], {});
g.addOutput({ name: 'y', shape: [1] });
writeModelFile(process.argv[2], g.model({ producerVersion: '0', graphName: 'g', metadata: {} })).then(
  () => console.log(JSON.stringify({ ok: true })),
  (e) => console.log(JSON.stringify({ ok: false, name: e.constructor.name, message: e.message })),
);
`,
      );
      if (owner) for (const f of [dir, ro, path.join(ro, 'm.onnx'), script]) fs.chownSync(f, owner.uid, owner.gid);
      fs.chmodSync(ro, 0o500);
      const r = spawnSync(process.execPath, ['--require', require.resolve('tsx/cjs'), script, path.join(ro, 'm.onnx')], {
        encoding: 'utf8',
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: dir },
        ...owner,
      });
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout);
      expect(out).toMatchObject({ ok: false, name: 'ModelshipError' });
      expect(out.message).toContain(`cannot write ${path.join(ro, 'm.onnx')}: EACCES`);
      fs.chmodSync(ro, 0o700);
      expect(fs.readFileSync(path.join(ro, 'm.onnx'), 'utf8')).toBe('old');
      expect(fs.readdirSync(ro)).toEqual(['m.onnx']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('writeFileAtomic (reports, summaries) fails like the model writer when the directory is a file: a ModelshipError naming the file', () => {
  const dir = tmpDir();
  const notADir = path.join(dir, 'file');
  fs.writeFileSync(notADir, 'x');
  const target = path.join(notADir, 'sub', 'parity.json');
  expect(() => writeFileAtomic(target, '{}')).toThrow(ModelshipError);
  expect(() => writeFileAtomic(target, '{}')).toThrow(new RegExp(`cannot write ${target.replace(/[/.]/g, '\\$&')}: ENOTDIR`));
  expect(fs.readdirSync(dir)).toEqual(['file']);
});
