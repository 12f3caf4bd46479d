import { modelConfigSchema } from '../src/formats/schema/model_config';
import { parseTritonConfig, tritonConfig, tritonDataType, tritonMaxBatchSize } from '../src/image/triton-config';
import { planTritonModel } from '../src/image/triton';
import { ModelshipError } from '../src/util/errors';
import {
  ModelConfig,
  convertFixture,
  RICH,
  SCHEMA,
  SEMANTIC,
  SEQUENCE,
  T_IN,
  T_OUT,
  googlenetInputs,
  lenet,
  proto3Json,
  spec,
  ssd,
  ssdBytes,
  ssdSpec,
  zooBranch,
} from './helpers/triton-config-cases';

// The generated config.pbtxt and our parser of the text format; against Google's protobuf text-format parser (protoc
// and python3-protobuf): test/triton-config.tools.test.ts.

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
      [1, 'TYPE_FP32'],
      [2, 'TYPE_UINT8'],
      [3, 'TYPE_INT8'],
      [4, 'TYPE_UINT16'],
      [5, 'TYPE_INT16'],
      [6, 'TYPE_INT32'],
      [7, 'TYPE_INT64'],
      [8, 'TYPE_STRING'],
      [9, 'TYPE_BOOL'],
      [10, 'TYPE_FP16'],
      [11, 'TYPE_FP64'],
      [12, 'TYPE_UINT32'],
      [13, 'TYPE_UINT64'],
      [16, 'TYPE_BF16'],
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
    const text = tritonConfig({
      name: 'lenet',
      platform: 'onnxruntime_onnx',
      maxBatchSize: 16,
      inputs: lenet.inputs,
      outputs: lenet.outputs,
      maxQueueDelayUs: 250,
      gpu: false,
    });
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
    const text = tritonConfig({
      name: 'zoo_branch',
      platform: 'onnxruntime_onnx',
      maxBatchSize: 4,
      inputs: zooBranch.inputs,
      outputs: zooBranch.outputs,
      maxQueueDelayUs: 0,
      gpu: true,
    });
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
    const text = tritonConfig(
      spec({
        maxBatchSize: 0,
        maxQueueDelayUs: 100,
        inputs: [{ name: 'data', shape: ['N', 3, 'H', 'W'], elemType: 10 }],
        outputs: [{ name: 'logits', shape: [1, 1000], elemType: 10 }],
      }),
    );
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
    expect(thrown(() => tritonConfig(ssdSpec({ detectionOutputs: undefined }))).message).toMatch(
      /output "detection_out": its first dimension is fixed at 1, so it cannot be the batch dimension while max_batch_size is 32/,
    );
    // a name in the list that is no output of the model changes nothing
    expect(tritonMaxBatchSize(spec({ detectionOutputs: ['detection_out'] }))).toBe(8);
  });

  test("the image stage plans a detection ONNX with max_batch_size 0 (from the model's metadata)", async () => {
    const m = await planTritonModel({
      model: 'ssd.onnx',
      bytes: ssdBytes,
      modelName: 'ssd',
      gpu: true,
      maxQueueDelayUs: 100,
      maxBatch: 32,
      servingImage: 'triton',
      servingRef: 'triton@sha256:x',
      env: {},
    });
    expect(m.maxBatchSize).toBe(0);
    expect(m.config).toMatch(/max_batch_size: 0\n/);
    expect(m.config).not.toContain('dynamic_batching');
    expect(m.config).toContain('kind: KIND_GPU');
    const l = await planTritonModel({
      model: 'lenet.onnx',
      bytes: convertFixture('lenet'),
      modelName: 'lenet',
      gpu: false,
      maxQueueDelayUs: 100,
      maxBatch: 32,
      servingImage: 'triton',
      servingRef: 'triton@sha256:x',
      env: {},
    });
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
    expect(parseTritonConfig(tritonConfig(spec({ inputs: [{ name: 'data', shape: [-1, 3], elemType: 1 }] })), 'x').input).toEqual([
      { name: 'data', data_type: 'TYPE_FP32', dims: [3] },
    ]);
    expect(thrown(() => tritonConfig(spec({ outputs: [{ name: 'score', shape: [], elemType: 1 }] }))).message).toMatch(
      /output "score": a scalar has no batch dimension/,
    );
    expect(thrown(() => tritonConfig(spec({ outputs: [{ name: 'empty', shape: ['N', 0], elemType: 1 }] }))).message).toMatch(
      /output "empty": dimension 1 is 0/,
    );
    expect(thrown(() => tritonConfig(spec({ inputs: [{ name: 'data', shape: ['N', 3] }] }))).message).toMatch(
      /tensor "data": the model does not give its element type/,
    );
    expect(thrown(() => tritonConfig(spec({ inputs: [{ name: 'c', shape: ['N', 3], elemType: 15 }] }))).message).toMatch(
      /tensor "c": ONNX element type 15 \(COMPLEX128\)/,
    );
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
    const text = [
      'name: "m"',
      'platform: "tensorrt_plan" backend: "tensorrt"',
      'max_batch_size: 2',
      T_IN,
      T_OUT,
      'dynamic_batching { }',
      'instance_group [ { kind: KIND_GPU }, { kind: KIND_CPU }, { kind: KIND_AUTO }, { count: 1 } ]',
    ].join('\n');
    const cfg = parseTritonConfig(text, 'm/config.pbtxt') as Record<string, any>;
    expect(cfg.instance_group.map((g: any) => g.kind)).toEqual(['KIND_GPU', 'KIND_CPU', 'KIND_AUTO', undefined]);
    expect(cfg.dynamic_batching).toEqual({});
  });
});

describe('hand-written configs', () => {
  // (as Google's parser reads them too: test/triton-config.tools.test.ts)
  test('much of the schema and of the text format (RICH), and sequence batching (SEQUENCE), read', () => {
    const rich = proto3Json(parseTritonConfig(RICH, 'rich/config.pbtxt'), ModelConfig()) as Record<string, any>;
    expect(rich.name).toBe('ensemble');
    expect(rich.max_batch_size).toBe(16);
    expect(rich.parameters).toEqual({ a: { string_value: '2' }, '': { string_value: 'keyless' } });
    expect(rich.dynamic_batching.priority_queue_policy).toEqual({ '1': { max_queue_size: 3 }, '2': { allow_timeout_override: true } });
    expect(rich.dynamic_batching.default_queue_policy.default_timeout_microseconds).toBe('9007199254740991');
    const seq = proto3Json(parseTritonConfig(SEQUENCE, 'seq/config.pbtxt'), ModelConfig()) as Record<string, any>;
    expect(seq.sequence_batching.oldest).toEqual({ max_candidate_sequences: 4, preferred_batch_size: [2] });
  });
});
