import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { convertCaffe } from '../src/convert/converter';
import { MODEL_CONFIG_PROTO, MODEL_CONFIG_PROTO_SOURCE, modelConfigSchema } from '../src/formats/schema/model_config';
import { parseTritonConfig, tritonConfig, tritonDataType, tritonMaxBatchSize, TritonModelSpec } from '../src/image/triton-config';
import { planTritonModel } from '../src/image/triton';
import { detectionOutputNames } from '../src/protocol/detections';
import { tinySsd } from './helpers/ssd';
import { ModelshipError } from '../src/util/errors';
import { onnxInfo, TensorSig } from '../src/formats/onnxinfo';
import { FIXTURES, tmpDir } from './helpers/caffe';

// ---------------------------------------------------------------------------------------------------------------
// Independent oracle: Google's protobuf (Debian's protoc + python3-protobuf, under /usr/bin/python3) compiles the
// vendored schema and parses config text with google.protobuf.text_format into inference.ModelConfig.
// ---------------------------------------------------------------------------------------------------------------
const PY = '/usr/bin/python3';

function oracleTools(): boolean {
  const protoc = spawnSync('protoc', ['--version'], { encoding: 'utf8' });
  const py = spawnSync(PY, ['-c', 'import google.protobuf.text_format, google.protobuf.json_format'], { encoding: 'utf8' });
  return protoc.status === 0 && py.status === 0;
}

/** true when the oracle can run; installs it with apt when missing (as root); false only where there is no apt */
function ensureOracle(): boolean {
  if (oracleTools()) return true;
  if (spawnSync('apt-get', ['--version']).status !== 0) return false; // no apt: the only case the oracle is skipped
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', 'python3-protobuf', 'protobuf-compiler'], { env, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], { env, timeout: 300_000 });
    r = spawnSync('apt-get', ['install', '-y', '-qq', 'python3-protobuf', 'protobuf-compiler'], { env, encoding: 'utf8', timeout: 300_000 });
  }
  if (!oracleTools()) {
    throw new Error(`apt is here but protoc / python3-protobuf are missing and could not be installed:\n${r.stderr ?? ''}`);
  }
  return true;
}

const HAVE_ORACLE = ensureOracle();
const describeOracle = HAVE_ORACLE ? describe : describe.skip;

const ORACLE_PY = `
import json, sys
from google.protobuf import text_format, json_format
import model_config_pb2
out = []
for text in json.load(sys.stdin):
    m = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, m)
        out.append({"ok": True, "dict": json_format.MessageToDict(m, preserving_proto_field_name=True)})
    except text_format.ParseError as e:
        out.append({"ok": False, "error": str(e)})
print(json.dumps(out))
`;

type OracleResult = { ok: true; dict: Record<string, unknown> } | { ok: false; error: string };

let oracleDir: string | undefined;
function googleParse(texts: string[]): OracleResult[] {
  if (!oracleDir) {
    oracleDir = tmpDir('modelship-triton-oracle-');
    fs.writeFileSync(path.join(oracleDir, 'model_config.proto'), MODEL_CONFIG_PROTO);
    fs.writeFileSync(path.join(oracleDir, 'oracle.py'), ORACLE_PY);
    const c = spawnSync('protoc', [`-I${oracleDir}`, `--python_out=${oracleDir}`, path.join(oracleDir, 'model_config.proto')], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`protoc refused the vendored schema:\n${c.stderr}`);
  }
  const r = spawnSync(PY, [path.join(oracleDir, 'oracle.py')], {
    input: JSON.stringify(texts),
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: oracleDir, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION: 'python' },
  });
  if (r.status !== 0) throw new Error(`oracle failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as OracleResult[];
}

afterAll(() => {
  if (oracleDir) fs.rmSync(oracleDir, { recursive: true, force: true });
});

/**
 * Our parse result in the form json_format.MessageToDict writes (proto3 JSON, proto field names), derived from the
 * schema: 64-bit integers as strings, proto3 scalars at their default left out (except oneof members, which have
 * presence), empty repeated fields left out, present sub-messages kept even when empty, maps as objects.
 */
function proto3Json(msg: Record<string, unknown>, type: protobuf.Type): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const scalar = (v: unknown, f: { type: string; resolvedType: protobuf.ReflectionObject | null }): unknown => {
    if (f.resolvedType instanceof protobuf.Type) return proto3Json(v as Record<string, unknown>, f.resolvedType);
    if (/^(u?int64|sint64|s?fixed64)$/.test(f.type)) return String(v);
    if ((f.type === 'float' || f.type === 'double') && typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    return v;
  };
  const isDefault = (v: unknown, f: protobuf.Field): boolean => {
    if (f.resolvedType instanceof protobuf.Enum) return f.resolvedType.values[v as string] === 0;
    return v === 0 || v === '' || v === false;
  };
  for (const [key, v] of Object.entries(msg)) {
    const f = type.fields[key];
    expect(f).toBeDefined();
    if ((f as unknown as protobuf.MapField).map) {
      out[key] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, scalar(x, f)]));
    } else if (f.repeated) {
      if ((v as unknown[]).length) out[key] = (v as unknown[]).map((x) => scalar(x, f));
    } else if (f.resolvedType instanceof protobuf.Type || f.partOf || !isDefault(v, f)) {
      out[key] = scalar(v, f);
    }
  }
  return out;
}

const ModelConfig = () => modelConfigSchema().lookupType('inference.ModelConfig');

// ---------------------------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------------------------
function convertFixture(dir: string): Uint8Array {
  const d = path.join(FIXTURES, dir);
  return convertCaffe({
    prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
    prototxtFile: 'deploy.prototxt',
    caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
    caffemodelFile: 'weights.caffemodel',
  }).onnx;
}

const lenet = onnxInfo(convertFixture('lenet'));
/** a tiny SSD: its DetectionOutput is one [1, 1, D, 7] table per batch, named in the ONNX metadata */
const ssdNet = tinySsd();
const ssdBytes = convertCaffe({ prototxt: Buffer.from(ssdNet.prototxt), prototxtFile: 'deploy.prototxt', caffemodel: ssdNet.caffemodel, caffemodelFile: 'w.caffemodel' }).onnx;
const ssd = onnxInfo(ssdBytes);
const ssdSpec = (over: Partial<TritonModelSpec> = {}): TritonModelSpec => ({ name: 'ssd', platform: 'onnxruntime_onnx', maxBatchSize: 32, inputs: ssd.inputs, outputs: ssd.outputs, maxQueueDelayUs: 100, gpu: false, detectionOutputs: detectionOutputNames(ssd.metadata, ssd.outputs.map((o) => o.name)), ...over });
const zooBranch = onnxInfo(convertFixture('zoo_branch'));

/** GoogLeNet's deploy signature (BVLC bvlc_googlenet: data 3x224x224 → prob 1000), as onnxInfo reports it */
const googlenetInputs: TensorSig[] = [{ name: 'data', shape: ['N', 3, 224, 224], elemType: 1 }];
const googlenetOutputs: TensorSig[] = [{ name: 'prob', shape: ['N', 1000], elemType: 1 }];

function spec(over: Partial<TritonModelSpec>): TritonModelSpec {
  return { name: 'm', platform: 'onnxruntime_onnx', maxBatchSize: 8, inputs: googlenetInputs, outputs: googlenetOutputs, maxQueueDelayUs: 100, gpu: true, ...over };
}

function thrown(fn: () => unknown): ModelshipError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelshipError);
  return err as ModelshipError;
}

describe('onnxInfo element types', () => {
  test('converted Caffe models report FLOAT (1) for every input and output', () => {
    expect(lenet.inputs).toEqual([{ name: 'data', shape: ['N', 1, 28, 28], elemType: 1 }]);
    expect(lenet.outputs).toEqual([{ name: 'prob', shape: ['N', 10], elemType: 1 }]);
    expect(zooBranch.outputs.map((o) => o.elemType)).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });
});

describe('tritonDataType', () => {
  test('ONNX element types map to Triton data types', () => {
    const table: [number, string][] = [
      [1, 'TYPE_FP32'], [2, 'TYPE_UINT8'], [3, 'TYPE_INT8'], [4, 'TYPE_UINT16'], [5, 'TYPE_INT16'], [6, 'TYPE_INT32'],
      [7, 'TYPE_INT64'], [8, 'TYPE_STRING'], [9, 'TYPE_BOOL'], [10, 'TYPE_FP16'], [11, 'TYPE_FP64'], [12, 'TYPE_UINT32'],
      [13, 'TYPE_UINT64'], [16, 'TYPE_BF16'],
    ];
    const tritonEnum = modelConfigSchema().lookupEnum('inference.DataType');
    for (const [onnx, triton] of table) {
      expect(tritonDataType(onnx, 't')).toBe(triton);
      expect(triton in tritonEnum.values).toBe(true); // a real value of the vendored enum
    }
  });

  test('types Triton lacks, and a missing type, are refused naming the tensor', () => {
    expect(thrown(() => tritonDataType(14, 'cplx')).message).toMatch(/tensor "cplx": ONNX element type 14 \(COMPLEX64\) has no Triton data type/);
    expect(thrown(() => tritonDataType(17, 'f8')).message).toMatch(/tensor "f8": .*17 \(FLOAT8E4M3FN\)/);
    expect(thrown(() => tritonDataType(0, 'u')).message).toMatch(/tensor "u": .*0 \(UNDEFINED\)/);
    expect(thrown(() => tritonDataType(99, 'x')).message).toMatch(/tensor "x": ONNX element type 99 has no/);
    expect(thrown(() => tritonDataType(undefined, 'noType')).message).toMatch(/tensor "noType": the model does not give its element type/);
  });
});

describe('tritonConfig', () => {
  test('LeNet (converted from the Caffe fixture), CPU: the whole text', () => {
    const text = tritonConfig({ name: 'lenet', platform: 'onnxruntime_onnx', maxBatchSize: 16, inputs: lenet.inputs, outputs: lenet.outputs, maxQueueDelayUs: 250, gpu: false });
    expect(text).toBe(
      [
        '# Triton model configuration, written by modelship',
        'name: "lenet"',
        'platform: "onnxruntime_onnx"',
        'max_batch_size: 16',
        'input [',
        '  {',
        '    name: "data"',
        '    data_type: TYPE_FP32',
        '    dims: [ 1, 28, 28 ]',
        '  }',
        ']',
        'output [',
        '  {',
        '    name: "prob"',
        '    data_type: TYPE_FP32',
        '    dims: [ 10 ]',
        '  }',
        ']',
        'dynamic_batching {',
        '  max_queue_delay_microseconds: 250',
        '}',
        'instance_group [',
        '  {',
        '    count: 1',
        '    kind: KIND_CPU',
        '  }',
        ']',
        '',
      ].join('\n'),
    );
    const cfg = parseTritonConfig(text, 'lenet/config.pbtxt') as Record<string, any>;
    expect(cfg.instance_group).toEqual([{ count: 1, kind: 'KIND_CPU' }]);
    expect(cfg.input[0].dims).toEqual([1, 28, 28]);
  });

  test('GoogLeNet-like on the GPU, ONNX Runtime and TensorRT plan', () => {
    for (const platform of ['onnxruntime_onnx', 'tensorrt_plan'] as const) {
      const text = tritonConfig(spec({ name: 'googlenet', platform, maxBatchSize: 32, maxQueueDelayUs: 5000, gpu: true }));
      expect(text).toContain(`platform: "${platform}"\n`);
      expect(text).not.toMatch(/backend:/);
      const cfg = parseTritonConfig(text, 'googlenet/config.pbtxt') as Record<string, any>;
      expect(cfg).toEqual({
        name: 'googlenet',
        platform,
        max_batch_size: 32,
        input: [{ name: 'data', data_type: 'TYPE_FP32', dims: [3, 224, 224] }],
        output: [{ name: 'prob', data_type: 'TYPE_FP32', dims: [1000] }],
        dynamic_batching: { max_queue_delay_microseconds: 5000 },
        instance_group: [{ count: 1, kind: 'KIND_GPU' }],
      });
    }
  });

  test('outputs that are only the batch dim (zoo_branch: red, mean, total) become dims [1] with an empty reshape', () => {
    const text = tritonConfig({ name: 'zoo_branch', platform: 'onnxruntime_onnx', maxBatchSize: 4, inputs: zooBranch.inputs, outputs: zooBranch.outputs, maxQueueDelayUs: 0, gpu: true });
    const cfg = parseTritonConfig(text, 'zoo_branch/config.pbtxt') as Record<string, any>;
    expect(cfg.input).toEqual([{ name: 'data', data_type: 'TYPE_FP32', dims: [4, 8, 8] }]);
    const outs = Object.fromEntries((cfg.output as any[]).map((o) => [o.name, o]));
    expect(Object.keys(outs)).toEqual(['prob', 'red', 'top3', 'best', 'mean', 'asum', 'total']);
    expect(outs.best.dims).toEqual([2, 2]);
    for (const scalar of ['red', 'mean', 'total']) {
      expect(outs[scalar].dims).toEqual([1]);
      expect(outs[scalar].reshape).toEqual({}); // reshape { shape: [ ] }: present, no dims
    }
    expect(outs.prob.reshape).toBeUndefined();
    expect(text).toContain('    name: "red"\n    data_type: TYPE_FP32\n    dims: [ 1 ]\n    reshape: { shape: [ ] }\n');
  });

  test('max_batch_size 0: the full shape, symbolic dims as -1, no dynamic_batching', () => {
    const text = tritonConfig(spec({ maxBatchSize: 0, maxQueueDelayUs: 100, inputs: [{ name: 'data', shape: ['N', 3, 'H', 'W'], elemType: 10 }], outputs: [{ name: 'logits', shape: [1, 1000], elemType: 10 }] }));
    const cfg = parseTritonConfig(text, 'm/config.pbtxt') as Record<string, any>;
    expect(cfg.max_batch_size).toBe(0);
    expect(cfg.input[0]).toEqual({ name: 'data', data_type: 'TYPE_FP16', dims: [-1, 3, -1, -1] });
    expect(cfg.output[0]).toEqual({ name: 'logits', data_type: 'TYPE_FP16', dims: [1, 1000] });
    expect(cfg.dynamic_batching).toBeUndefined();
    expect(text).not.toContain('dynamic_batching');
  });

  test('a detection model (SSD): max_batch_size 0 whatever the batch size asked, full dims, no dynamic_batching', () => {
    expect(ssd.metadata['modelship.detection_outputs']).toBe('detection_out');
    const text = tritonConfig(ssdSpec());
    expect(text).toContain('# a detection model (detection_out: one [1, 1, D, 7] table per batch, not batch-first): no batching\nmax_batch_size: 0\n');
    const cfg = parseTritonConfig(text, 'ssd/config.pbtxt') as Record<string, any>;
    expect(cfg).toEqual({
      name: 'ssd',
      platform: 'onnxruntime_onnx',
      max_batch_size: 0,
      input: [{ name: 'data', data_type: 'TYPE_FP32', dims: [-1, 3, 32, 32] }],
      output: [{ name: 'detection_out', data_type: 'TYPE_FP32', dims: [1, 1, -1, 7] }],
      instance_group: [{ count: 1, kind: 'KIND_CPU' }],
    });
    expect(tritonMaxBatchSize(ssdSpec())).toBe(0);
    // without the metadata's list the table's fixed first dim cannot be a batch: refused as before, naming it
    expect(thrown(() => tritonConfig(ssdSpec({ detectionOutputs: undefined }))).message).toMatch(/output "detection_out": its first dimension is fixed at 1, so it cannot be the batch dimension while max_batch_size is 32/);
    // a name in the list that is no output of the model changes nothing
    expect(tritonMaxBatchSize(spec({ detectionOutputs: ['detection_out'] }))).toBe(8);
  });

  test('the image stage plans a detection ONNX with max_batch_size 0 (from the model\'s metadata)', async () => {
    const m = await planTritonModel({ model: 'ssd.onnx', bytes: ssdBytes, modelName: 'ssd', gpu: true, maxQueueDelayUs: 100, maxBatch: 32, servingImage: 'triton', servingRef: 'triton@sha256:x', env: {} });
    expect(m.maxBatchSize).toBe(0);
    expect(m.config).toMatch(/max_batch_size: 0\n/);
    expect(m.config).not.toContain('dynamic_batching');
    expect(m.config).toContain('kind: KIND_GPU');
    const l = await planTritonModel({ model: 'lenet.onnx', bytes: convertFixture('lenet'), modelName: 'lenet', gpu: false, maxQueueDelayUs: 100, maxBatch: 32, servingImage: 'triton', servingRef: 'triton@sha256:x', env: {} });
    expect(l.maxBatchSize).toBe(32);
  });

  test('symbolic non-batch dims become -1 and names with quotes, backslashes and non-ASCII survive the round trip', () => {
    const name = 'in "x"\\y:0 é\t';
    const text = tritonConfig(spec({ inputs: [{ name, shape: ['batch', 3, 'height', 'width'], elemType: 2 }] }));
    expect(text).toContain(String.raw`name: "in \"x\"\\y:0 é\t"`);
    const cfg = parseTritonConfig(text, 'm/config.pbtxt') as Record<string, any>;
    expect(cfg.input[0]).toEqual({ name, data_type: 'TYPE_UINT8', dims: [3, -1, -1] });
  });

  test('a batch dim that cannot be one, a scalar, a bad dim, a bad name, platform or size are refused naming the tensor or model', () => {
    expect(thrown(() => tritonConfig(spec({ inputs: [{ name: 'data', shape: [1, 3, 224, 224], elemType: 1 }] }))).message).toMatch(
      /model "m": input "data": its first dimension is fixed at 1, so it cannot be the batch dimension while max_batch_size is 8/,
    );
    // -1 as the first dim is a variable batch
    expect(parseTritonConfig(tritonConfig(spec({ inputs: [{ name: 'data', shape: [-1, 3], elemType: 1 }] })), 'x').input).toEqual([{ name: 'data', data_type: 'TYPE_FP32', dims: [3] }]);
    expect(thrown(() => tritonConfig(spec({ outputs: [{ name: 'score', shape: [], elemType: 1 }] }))).message).toMatch(/output "score": a scalar has no batch dimension/);
    expect(thrown(() => tritonConfig(spec({ outputs: [{ name: 'empty', shape: ['N', 0], elemType: 1 }] }))).message).toMatch(/output "empty": dimension 1 is 0/);
    expect(thrown(() => tritonConfig(spec({ inputs: [{ name: 'data', shape: ['N', 3] }] }))).message).toMatch(/tensor "data": the model does not give its element type/);
    expect(thrown(() => tritonConfig(spec({ inputs: [{ name: 'c', shape: ['N', 3], elemType: 15 }] }))).message).toMatch(/tensor "c": ONNX element type 15 \(COMPLEX128\)/);
    expect(thrown(() => tritonConfig(spec({ name: '' }))).message).toMatch(/name is empty/);
    expect(thrown(() => tritonConfig(spec({ name: 'a/b' }))).message).toMatch(/Triton model "a\/b": the name is the model directory/);
    expect(thrown(() => tritonConfig(spec({ platform: 'pytorch_libtorch' as never }))).message).toMatch(/platform "pytorch_libtorch" is not one of/);
    expect(thrown(() => tritonConfig(spec({ maxBatchSize: -1 }))).message).toMatch(/max batch size -1/);
    expect(thrown(() => tritonConfig(spec({ maxBatchSize: 2.5 }))).message).toMatch(/max batch size 2.5/);
    expect(thrown(() => tritonConfig(spec({ maxQueueDelayUs: -5 }))).message).toMatch(/max queue delay -5/);
    expect(thrown(() => tritonConfig(spec({ inputs: [] }))).message).toMatch(/no inputs/);
  });

  test('the generated text is validated: duplicate tensor names surface as a config.pbtxt error', () => {
    const e = thrown(() => tritonConfig(spec({ name: 'dup', inputs: [googlenetInputs[0], googlenetInputs[0]] })));
    // second input's name: line 12 (header, name, platform, max_batch_size, "input [", "{", 3 fields, "},", "{", name)
    expect(e.message).toBe('dup/config.pbtxt:12:5: input "data" is declared twice');
    expect(e.location).toMatchObject({ file: 'dup/config.pbtxt', line: 12, column: 5 });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// parseTritonConfig refusals (semantic checks): exact file:line:column
// ---------------------------------------------------------------------------------------------------------------
const T_IN = 'input [ { name: "x" data_type: TYPE_FP32 dims: [ 3, -1 ] } ]';
const T_OUT = 'output [ { name: "y" data_type: TYPE_FP32 dims: [ 10 ] } ]';

/** semantically invalid, schema-valid configs: [what, text, line, column, message] */
const SEMANTIC: [string, string, number, number, RegExp][] = [
  ['no name', ['platform: "onnxruntime_onnx"', T_IN, T_OUT].join('\n'), 1, 1, /model name is missing/],
  ['empty name', ['# c', '  name: ""', 'platform: "onnxruntime_onnx"', T_IN, T_OUT].join('\n'), 2, 3, /model name is empty/],
  ['neither platform nor backend', ['name: "m"', T_IN, T_OUT].join('\n'), 1, 1, /neither "platform" nor "backend"/],
  ['unknown platform', ['name: "m"', 'platform: "onnx"', T_IN].join('\n'), 2, 1, /unknown platform "onnx"/],
  ['unknown backend', ['name: "m"', '  backend: "caffe"', T_IN].join('\n'), 2, 3, /unknown backend "caffe"/],
  ['platform and backend disagree', ['name: "m"', 'platform: "onnxruntime_onnx" backend: "tensorrt"', T_IN].join('\n'), 2, 30, /disagree: give exactly one/],
  ['negative max_batch_size', ['name: "m"', 'platform: "tensorrt_plan"', '', 'max_batch_size: -2'].join('\n'), 4, 1, /max_batch_size is -2; it must be >= 0/],
  ['input without name', ['name: "m"', 'backend: "onnxruntime"', 'input [ { data_type: TYPE_FP32 dims: [ 3 ] } ]'].join('\n'), 3, 9, /input #1 has no name/],
  ['output with empty name', ['name: "m"', 'backend: "onnxruntime"', T_IN, 'output {', '  name: ""', '}'].join('\n'), 5, 3, /output #1 has an empty name/],
  ['missing data_type', ['name: "m"', 'backend: "onnxruntime"', T_IN, T_OUT, 'output {', '  name: "z" dims: 4', '}'].join('\n'), 5, 8, /output "z" has no data_type/],
  ['TYPE_INVALID', ['name: "m"', 'backend: "onnxruntime"', 'input [ { name: "x" data_type: TYPE_INVALID dims: 3 } ]'].join('\n'), 3, 21, /input "x" has data_type TYPE_INVALID/],
  ['TYPE_INVALID by number', ['name: "m"', 'backend: "onnxruntime"', 'input [ { name: "x" data_type: 0 dims: 3 } ]'].join('\n'), 3, 21, /input "x" has data_type TYPE_INVALID/],
  ['no dims', ['name: "m"', 'backend: "onnxruntime"', T_IN, 'input [', '  { name: "a" data_type: TYPE_FP32 },', '  { name: "b" data_type: TYPE_FP32 }', ']'].join('\n'), 5, 3, /input "a" has no dims/],
  ['empty dims list', ['name: "m"', 'backend: "onnxruntime"', 'max_batch_size: 4', 'input [ { name: "x" data_type: TYPE_FP32 dims: [ ] } ]'].join('\n'), 4, 42, /input "x" has no dims \(besides the batch/],
  ['dim 0', ['name: "m"', 'backend: "onnxruntime"', 'input [ { name: "x" data_type: TYPE_FP32 dims: [ 3, 0, 5 ] } ]'].join('\n'), 3, 53, /input "x": dims\[1\] is 0; a dim must be > 0 or -1/],
  ['dim -2 (repeated form)', ['name: "m"', 'backend: "onnxruntime"', 'output {', '  name: "y" data_type: TYPE_FP32', '  dims: 3', '  dims: -2', '}'].join('\n'), 6, 9, /output "y": dims\[1\] is -2/],
  ['duplicate input', ['name: "m"', 'platform: "onnxruntime_onnx"', T_IN, 'input { name: "q" data_type: TYPE_INT64 dims: 1 }', 'input { name: "x" data_type: TYPE_INT64 dims: 1 }'].join('\n'), 5, 9, /input "x" is declared twice/],
  ['duplicate output', ['name: "m"', 'platform: "onnxruntime_onnx"', T_IN, 'output [', '  { name: "y" data_type: TYPE_FP32 dims: 1 },', '  { data_type: TYPE_FP32 dims: 1 name: "y" }', ']'].join('\n'), 6, 34, /output "y" is declared twice/],
  ['dynamic_batching without max_batch_size', ['name: "m"', 'platform: "onnxruntime_onnx"', T_IN, T_OUT, '  dynamic_batching { }'].join('\n'), 5, 3, /dynamic_batching needs max_batch_size > 0/],
  ['dynamic_batching with max_batch_size 0', ['name: "m"', 'platform: "onnxruntime_onnx"', 'max_batch_size: 0', T_IN, 'dynamic_batching { max_queue_delay_microseconds: 10 }'].join('\n'), 5, 1, /dynamic_batching needs max_batch_size > 0/],
  ['instance_group KIND_MODEL', ['name: "m"', 'platform: "onnxruntime_onnx"', T_IN, 'instance_group [ { kind: KIND_GPU }, { count: 2 kind: KIND_MODEL } ]'].join('\n'), 4, 49, /instance_group #2: kind KIND_MODEL is not one of KIND_GPU, KIND_CPU, KIND_AUTO/],
];

/** text-format / schema errors the parser itself raises: [what, text, line, column, message] */
const SCHEMA: [string, string, number, number, RegExp][] = [
  ['unknown field', ['name: "m"', 'platform: "onnxruntime_onnx"', 'max_batch: 8'].join('\n'), 3, 1, /unknown field "max_batch" in ModelConfig/],
  ['unknown nested field', ['name: "m"', 'input { name: "x" shape: [ 3 ] }'].join('\n'), 2, 19, /unknown field "shape" in ModelInput/],
  ['bad data_type enum', ['name: "m"', 'input { name: "x" data_type: TYPE_FLOAT32 dims: 3 }'].join('\n'), 2, 30, /field "data_type" expects one of TYPE_INVALID, .*TYPE_FP32/],
  ['bad instance kind enum', ['name: "m"', 'instance_group { kind: KIND_TPU }'].join('\n'), 2, 24, /field "kind" expects one of KIND_AUTO, KIND_GPU, KIND_CPU, KIND_MODEL/],
  ['string for int', 'max_batch_size: "8"', 1, 17, /field "max_batch_size" expects an integer/],
  ['float for int64 dim', 'input { dims: 2.5 }', 1, 15, /field "dims" expects an integer/],
  ['int32 overflow', 'max_batch_size: 4294967296', 1, 17, /expects a 32-bit integer/],
  ['negative uint64', 'dynamic_batching { max_queue_delay_microseconds: -1 }', 1, 50, /expects a non-negative integer/],
  ['unclosed message', ['name: "m"', 'dynamic_batching {', '  max_queue_delay_microseconds: 1'].join('\n'), 3, 34, /unexpected end of file: missing '}'/],
  ['singular field twice', ['name: "m"', 'name: "n"'].join('\n'), 2, 1, /non-repeated field "name" of ModelConfig is given more than once/],
  ['two members of a oneof', ['name: "m"', 'dynamic_batching { }', 'sequence_batching { }'].join('\n'), 3, 1, /"sequence_batching" of ModelConfig is given along with "dynamic_batching": both belong to oneof "scheduling_choice"/],
  ['unknown field in a map entry', 'parameters { key: "a" val { string_value: "b" } }', 1, 23, /unknown field "val" in parameters entry/],
  ['map value of the wrong type', 'metric_tags { key: "a" value: 3 }', 1, 31, /field "value" expects a quoted string/],
  ['unknown field in a map value', 'parameters { key: "a" value { text: "b" } }', 1, 31, /unknown field "text" in ModelParameter/],
];

function refusal(text: string): ModelshipError {
  return thrown(() => parseTritonConfig(text, 'repo/m/config.pbtxt'));
}

describe('parseTritonConfig refusals', () => {
  test.each(SEMANTIC)('%s', (_what, text, line, column, message) => {
    const e = refusal(text);
    expect(e.location).toMatchObject({ file: 'repo/m/config.pbtxt', line, column });
    expect(e.message.startsWith(`repo/m/config.pbtxt:${line}:${column}: `)).toBe(true);
    expect(e.message).toMatch(message);
  });

  test.each(SCHEMA)('%s', (_what, text, line, column, message) => {
    const e = refusal(text);
    expect(e.location).toMatchObject({ file: 'repo/m/config.pbtxt', line, column });
    expect(e.message.startsWith(`repo/m/config.pbtxt:${line}:${column}: `)).toBe(true);
    expect(e.message).toMatch(message);
  });

  test('platform and backend together are accepted when they agree; every allowed instance kind is accepted', () => {
    const text = ['name: "m"', 'platform: "tensorrt_plan" backend: "tensorrt"', 'max_batch_size: 2', T_IN, T_OUT, 'dynamic_batching { }', 'instance_group [ { kind: KIND_GPU }, { kind: KIND_CPU }, { kind: KIND_AUTO }, { count: 1 } ]'].join('\n');
    const cfg = parseTritonConfig(text, 'm/config.pbtxt') as Record<string, any>;
    expect(cfg.instance_group.map((g: any) => g.kind)).toEqual(['KIND_GPU', 'KIND_CPU', 'KIND_AUTO', undefined]);
    expect(cfg.dynamic_batching).toEqual({});
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Oracle comparisons
// ---------------------------------------------------------------------------------------------------------------

/** A config using much of the schema and of the text format: comments, `<>`, list forms, maps (string, message and
 * uint64 keys), oneofs, enum by number, hex and octal integers, separators, concatenated and escaped strings. */
const RICH = String.raw`# a hand-written configuration
name: "ens" 'emble'   # adjacent strings concatenate
backend: "onnxruntime"
max_batch_size: 0x10
version_policy: { specific { versions: [ 1, 3 ] } }
input [
  { name: "in\t0", data_type: TYPE_UINT8, format: FORMAT_NCHW, dims: [ 3, -1, -1 ] },
  < name: "len" data_type: 9 dims: 1 reshape { shape: [ ] } is_shape_tensor: false optional: true >
]
output { name: "out" data_type: TYPE_BF16 dims: [ 5 ] label_filename: "labels.txt" }
optimization {
  graph { level: -1 }
  priority: PRIORITY_MAX
  cuda { graphs: true graph_spec [ { batch_size: 4 input { key: "in\t0" value { dim: [ 3, 224, 224 ] } } } ] }
  execution_accelerators {
    gpu_execution_accelerator: [ { name: "tensorrt" parameters { key: "precision_mode" value: "FP16" } parameters { key: "max_workspace_size_bytes" value: "1073741824" } } ]
  }
  input_pinned_memory { enable: false }
  gather_kernel_buffer_threshold: 010
}
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]; max_queue_delay_microseconds: 1500
  preserve_ordering: true
  priority_levels: 2
  default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 9007199254740991 }
  priority_queue_policy { key: 1 value { max_queue_size: 3 } }
  priority_queue_policy: [ { key: 2 value: { allow_timeout_override: true } } ]
}
instance_group [ { name: "g" kind: KIND_GPU count: 2 gpus: [ 0, 1 ] rate_limiter { resources [ { name: "R" count: 4 } ] priority: 1 } } ]
default_model_filename: "model.onnx"
parameters { key: "a" value { string_value: "1" } }
parameters { key: "a" value { string_value: "2" } }   # the later entry with a key wins
parameters [ { key: "" }, { value: { string_value: "keyless" } } ]
metric_tags { key: "team" value: "ml" }
model_warmup [ { name: "w" batch_size: 1 inputs { key: "in\t0" value: { data_type: TYPE_UINT8 dims: [ 3, 8, 8 ] zero_data: false } } } ]
model_transaction_policy { decoupled: False }
response_cache { enable: t }
model_repository_agents { agents [ { name: "checksum" parameters { key: "MD5:model.onnx" value: "0123" } } ] }
model_metrics { metric_control [ { metric_identifier { family: "nv_inference_request_duration" } histogram_options { buckets: [ 0.5, 1e3, 2.25 ] } } ] }
`;

const SEQUENCE = String.raw`name: "seq"
platform: "onnxruntime_onnx"
max_batch_size: 4
input { name: "x" data_type: TYPE_FP32 dims: 8 }
output { name: "y" data_type: TYPE_FP32 dims: 8 }
sequence_batching {
  max_sequence_idle_microseconds: 5000000
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] },
    { name: "CORRID" control { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 } }
  ]
  state { input_name: "s_in" output_name: "s_out" data_type: TYPE_FP32 dims: [ -1 ] initial_state { name: "zero" data_type: TYPE_FP32 dims: 1 zero_data: true } }
  oldest { max_candidate_sequences: 4 preferred_batch_size: 2 }
}
`;

describeOracle("agreement with Google's protobuf text-format parser", () => {
  test('protoc compiles the vendored schema, which names its source commit', () => {
    expect(MODEL_CONFIG_PROTO_SOURCE.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(googleParse(['name: "x"'])).toEqual([{ ok: true, dict: { name: 'x' } }]);
  });

  test('generated configs and hand-written ones read the same with both parsers', () => {
    const texts = [
      tritonConfig({ name: 'lenet', platform: 'onnxruntime_onnx', maxBatchSize: 16, inputs: lenet.inputs, outputs: lenet.outputs, maxQueueDelayUs: 250, gpu: false }),
      tritonConfig(spec({ name: 'googlenet', platform: 'tensorrt_plan', maxBatchSize: 32, maxQueueDelayUs: 5000 })),
      tritonConfig({ name: 'zoo_branch', platform: 'onnxruntime_onnx', maxBatchSize: 4, inputs: zooBranch.inputs, outputs: zooBranch.outputs, maxQueueDelayUs: 0, gpu: true }),
      tritonConfig(spec({ name: 'nobatch', maxBatchSize: 0, inputs: [{ name: 'in "q"\\', shape: ['N', 3, 'H', 'W'], elemType: 7 }], outputs: [{ name: 'é', shape: [2], elemType: 9 }] })),
      RICH,
      SEQUENCE,
    ];
    const google = googleParse(texts);
    texts.forEach((text, i) => {
      const g = google[i];
      if (!g.ok) throw new Error(`Google's parser refused config #${i}: ${g.error}\n${text}`);
      const ours = parseTritonConfig(text, `config${i}.pbtxt`);
      expect(proto3Json(ours, ModelConfig())).toEqual(g.dict);
    });
    // a few fields of Google's reading, checked directly (not through our normalisation)
    const [lenetG, googG, zooG, nobatchG, richG, seqG] = google.map((g) => (g as { dict: Record<string, any> }).dict);
    expect(lenetG.input).toEqual([{ name: 'data', data_type: 'TYPE_FP32', dims: ['1', '28', '28'] }]);
    expect(lenetG.instance_group).toEqual([{ count: 1, kind: 'KIND_CPU' }]);
    expect(lenetG.dynamic_batching).toEqual({ max_queue_delay_microseconds: '250' });
    expect(googG.platform).toBe('tensorrt_plan');
    expect(googG.instance_group).toEqual([{ count: 1, kind: 'KIND_GPU' }]);
    expect(zooG.output.find((o: any) => o.name === 'total')).toEqual({ name: 'total', data_type: 'TYPE_FP32', dims: ['1'], reshape: {} });
    expect(nobatchG.input[0]).toEqual({ name: 'in "q"\\', data_type: 'TYPE_INT64', dims: ['-1', '3', '-1', '-1'] });
    expect(nobatchG.output[0]).toEqual({ name: 'é', data_type: 'TYPE_BOOL', dims: ['2'] });
    expect(nobatchG.dynamic_batching).toBeUndefined();
    expect(richG.name).toBe('ensemble');
    expect(richG.parameters).toEqual({ a: { string_value: '2' }, '': { string_value: 'keyless' } });
    expect(richG.dynamic_batching.priority_queue_policy).toEqual({ '1': { max_queue_size: 3 }, '2': { allow_timeout_override: true } });
    expect(seqG.sequence_batching.oldest).toEqual({ max_candidate_sequences: 4, preferred_batch_size: [2] });
  });

  test("a detection model's config reads the same with Google's parser: max_batch_size 0, full dims, no dynamic_batching", () => {
    const text = tritonConfig(ssdSpec({ gpu: true }));
    const [g] = googleParse([text]);
    if (!g.ok) throw new Error(`Google's parser refused the detection config: ${g.error}\n${text}`);
    expect(proto3Json(parseTritonConfig(text, 'ssd/config.pbtxt'), ModelConfig())).toEqual(g.dict);
    // (proto3 JSON leaves out max_batch_size 0, a default)
    expect(g.dict.max_batch_size).toBeUndefined();
    expect(g.dict.input).toEqual([{ name: 'data', data_type: 'TYPE_FP32', dims: ['-1', '3', '32', '32'] }]);
    expect(g.dict.output).toEqual([{ name: 'detection_out', data_type: 'TYPE_FP32', dims: ['1', '1', '-1', '7'] }]);
    expect(g.dict.dynamic_batching).toBeUndefined();
  });

  test("what our parser refuses as text format or schema, Google's parser refuses too", () => {
    const google = googleParse(SCHEMA.map((c) => c[1]));
    SCHEMA.forEach(([what], i) => {
      expect({ what, ok: google[i].ok }).toEqual({ what, ok: false });
    });
    // spot-check Google's reason for the two the brief names
    expect((google[0] as { error: string }).error).toMatch(/has no field named "max_batch"/);
    expect((google[2] as { error: string }).error).toMatch(/has no value named TYPE_FLOAT32/);
  });

  test("the semantic refusals are Triton's rules, not the schema's: Google's parser accepts those configs", () => {
    const google = googleParse(SEMANTIC.map((c) => c[1]));
    SEMANTIC.forEach(([what], i) => {
      expect({ what, ok: google[i].ok }).toEqual({ what, ok: true });
    });
  });
});
