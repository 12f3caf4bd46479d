import { fieldLocOf, itemLocOf, Loc, locOf, parseTextFormat } from '../formats/textformat';
import { ModelshipError } from '../util/errors';
import { TensorSig } from '../formats/onnxinfo';
import { modelConfigSchema } from '../formats/schema/model_config';

/**
 * Triton Inference Server model configuration (`<repository>/<model>/config.pbtxt`): written from an ONNX model's
 * signature, and read back and checked against Triton's own schema (inference.ModelConfig, vendored in
 * ./schema/model_config.ts) with the project's text-format parser, plus the checks Triton makes when it loads a
 * model, so a bad configuration is refused here with `file:line:column` instead of at server start.
 */

export interface TritonModelSpec {
  /** model name (the model's directory name in the repository) */
  name: string;
  platform: 'onnxruntime_onnx' | 'tensorrt_plan';
  /** > 0: the first dim of every input/output is the batch and is left out of `dims`; 0: no batching */
  maxBatchSize: number;
  /** from onnxInfo: shapes include the batch dim (symbolic or a number) */
  inputs: TensorSig[];
  outputs: TensorSig[];
  /** dynamic_batching.max_queue_delay_microseconds (only written when maxBatchSize > 0) */
  maxQueueDelayUs: number;
  /** instance_group KIND_GPU (count 1), else KIND_CPU (count 1) */
  gpu: boolean;
  /**
   * the model's detection outputs (its ONNX metadata's `modelship.detection_outputs`): SSD's DetectionOutput, one
   * [1, 1, D, 7] table for the whole batch, rows tagged with their item. Not batch-first, so Triton cannot batch the
   * model: such a model gets max_batch_size 0 (whatever maxBatchSize says), full dims and no dynamic_batching.
   */
  detectionOutputs?: string[];
}

/**
 * The max_batch_size a model gets: 0 for a detection model (its outputs are not batch-first; a request still sends
 * any batch, as the input's first dim is -1), else the spec's.
 */
export function tritonMaxBatchSize(spec: Pick<TritonModelSpec, 'maxBatchSize' | 'detectionOutputs' | 'outputs'>): number {
  const names = new Set(spec.outputs.map((o) => o.name));
  return (spec.detectionOutputs ?? []).some((d) => names.has(d)) ? 0 : spec.maxBatchSize;
}

/** ONNX TensorProto.DataType → Triton DataType, for the types Triton has */
const ONNX_TO_TRITON: Record<number, string> = {
  1: 'TYPE_FP32',
  2: 'TYPE_UINT8',
  3: 'TYPE_INT8',
  4: 'TYPE_UINT16',
  5: 'TYPE_INT16',
  6: 'TYPE_INT32',
  7: 'TYPE_INT64',
  8: 'TYPE_STRING',
  9: 'TYPE_BOOL',
  10: 'TYPE_FP16',
  11: 'TYPE_FP64',
  12: 'TYPE_UINT32',
  13: 'TYPE_UINT64',
  16: 'TYPE_BF16',
};

/** names of ONNX element types (for messages about the ones Triton has no type for) */
const ONNX_TYPE_NAMES: Record<number, string> = {
  0: 'UNDEFINED',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
  23: 'FLOAT4E2M1',
};

/** Triton's data type (`TYPE_FP32`, ...) for an ONNX element type; a type Triton lacks is refused, naming the tensor. */
export function tritonDataType(elemType: number | undefined, tensor: string): string {
  if (elemType === undefined) {
    throw new ModelshipError('unsupported', `tensor "${tensor}": the model does not give its element type, so its Triton data_type is unknown`);
  }
  const t = ONNX_TO_TRITON[elemType];
  if (t === undefined) {
    const name = ONNX_TYPE_NAMES[elemType];
    throw new ModelshipError('unsupported', `tensor "${tensor}": ONNX element type ${elemType}${name ? ` (${name})` : ''} has no Triton data type`);
  }
  return t;
}

/** A text-format string literal: quotes, backslashes and control characters escaped; other characters as they are (UTF-8). */
function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\' + c.toString(8).padStart(3, '0');
    else out += ch;
  }
  return out + '"';
}

interface TensorEntry {
  name: string;
  dataType: string;
  dims: number[];
  /** the tensor has no dims besides the batch (or is a scalar): Triton wants `dims: [1]` with `reshape { shape: [] }` */
  scalar: boolean;
}

function tensorEntry(t: TensorSig, maxBatchSize: number, kind: 'input' | 'output', modelName: string): TensorEntry {
  const fail = (message: string): never => {
    throw new ModelshipError('input', `model "${modelName}": ${kind} "${t.name}": ${message}`);
  };
  if (typeof t.name !== 'string' || t.name === '') fail('a tensor without a name');
  const dataType = tritonDataType(t.elemType, t.name);
  let shape = t.shape;
  if (maxBatchSize > 0) {
    if (shape.length === 0) {
      fail(`a scalar has no batch dimension, but max_batch_size is ${maxBatchSize} (use a max batch size of 0)`);
    }
    const first = shape[0];
    if (typeof first === 'number' && first !== -1) {
      fail(
        `its first dimension is fixed at ${first}, so it cannot be the batch dimension while max_batch_size is ${maxBatchSize} ` +
          `(export the model with a symbolic batch dimension, or use a max batch size of 0)`,
      );
    }
    shape = shape.slice(1);
  }
  const dims = shape.map((d, i) => {
    if (typeof d === 'string') return -1; // symbolic or unknown
    if (!Number.isSafeInteger(d) || (d <= 0 && d !== -1)) {
      return fail(`dimension ${i + (maxBatchSize > 0 ? 1 : 0)} is ${d}; Triton takes only dims > 0 or -1 (variable)`);
    }
    return d;
  });
  return { name: t.name, dataType, dims, scalar: dims.length === 0 };
}

function tensorBlock(field: 'input' | 'output', entries: TensorEntry[]): string[] {
  const lines = [`${field} [`];
  entries.forEach((e, i) => {
    lines.push('  {');
    lines.push(`    name: ${quote(e.name)}`);
    lines.push(`    data_type: ${e.dataType}`);
    if (e.scalar) {
      lines.push('    dims: [ 1 ]');
      lines.push('    reshape: { shape: [ ] }');
    } else {
      lines.push(`    dims: [ ${e.dims.join(', ')} ]`);
    }
    lines.push(i === entries.length - 1 ? '  }' : '  },');
  });
  lines.push(']');
  return lines;
}

/**
 * The config.pbtxt text for a model. The result is read back with parseTritonConfig before it is returned, so a
 * configuration this writes is always one Triton's schema and load-time checks accept.
 */
export function tritonConfig(spec: TritonModelSpec): string {
  const bad = (message: string): never => {
    throw new ModelshipError('input', `Triton model "${spec.name}": ${message}`);
  };
  if (typeof spec.name !== 'string' || spec.name === '') throw new ModelshipError('input', 'Triton model name is empty');
  if (spec.name === '.' || spec.name === '..' || /[/\\\0]/.test(spec.name)) {
    bad('the name is the model directory in the repository; it cannot be "." or ".." or contain "/", "\\" or NUL');
  }
  if (spec.platform !== 'onnxruntime_onnx' && spec.platform !== 'tensorrt_plan') {
    bad(`platform ${JSON.stringify(spec.platform)} is not one of onnxruntime_onnx, tensorrt_plan`);
  }
  if (!Number.isSafeInteger(spec.maxBatchSize) || spec.maxBatchSize < 0 || spec.maxBatchSize > 0x7fffffff) {
    bad(`max batch size ${spec.maxBatchSize} is not an integer from 0 to 2147483647`);
  }
  if (spec.maxBatchSize > 0 && (!Number.isSafeInteger(spec.maxQueueDelayUs) || spec.maxQueueDelayUs < 0)) {
    bad(`max queue delay ${spec.maxQueueDelayUs} µs is not a non-negative integer`);
  }
  if (spec.inputs.length === 0) bad('the model has no inputs');
  if (spec.outputs.length === 0) bad('the model has no outputs');
  const maxBatchSize = tritonMaxBatchSize(spec);
  const inputs = spec.inputs.map((t) => tensorEntry(t, maxBatchSize, 'input', spec.name));
  const outputs = spec.outputs.map((t) => tensorEntry(t, maxBatchSize, 'output', spec.name));

  const lines = [
    '# Triton model configuration, written by modelship',
    `name: ${quote(spec.name)}`,
    `platform: ${quote(spec.platform)}`,
    ...(maxBatchSize !== spec.maxBatchSize
      ? [`# a detection model (${spec.detectionOutputs!.join(', ')}: one [1, 1, D, 7] table per batch, not batch-first): no batching`]
      : []),
    `max_batch_size: ${maxBatchSize}`,
    ...tensorBlock('input', inputs),
    ...tensorBlock('output', outputs),
  ];
  if (maxBatchSize > 0) {
    lines.push('dynamic_batching {', `  max_queue_delay_microseconds: ${spec.maxQueueDelayUs}`, '}');
  }
  lines.push('instance_group [', '  {', '    count: 1', `    kind: ${spec.gpu ? 'KIND_GPU' : 'KIND_CPU'}`, '  }', ']');
  const text = lines.join('\n') + '\n';
  parseTritonConfig(text, `${spec.name}/config.pbtxt`);
  return text;
}

/** platform → the backend Triton runs it with (`ensemble` has none) */
const PLATFORMS: Record<string, string | undefined> = {
  tensorrt_plan: 'tensorrt',
  onnxruntime_onnx: 'onnxruntime',
  tensorflow_graphdef: 'tensorflow',
  tensorflow_savedmodel: 'tensorflow',
  pytorch_libtorch: 'pytorch',
  ensemble: undefined,
};
const BACKENDS = new Set(['tensorrt', 'onnxruntime', 'tensorflow', 'pytorch', 'python', 'openvino', 'dali', 'fil', 'identity', 'vllm', 'tensorrtllm']);
const INSTANCE_KINDS = new Set(['KIND_GPU', 'KIND_CPU', 'KIND_AUTO']);

type Msg = Record<string, unknown>;

function has(m: Msg, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(m, field);
}

/** the field is written in the text, even as an empty list (which leaves no value) */
function written(m: Msg, field: string): boolean {
  return has(m, field) || Object.prototype.hasOwnProperty.call((m as { $fieldLocs?: object }).$fieldLocs ?? {}, field);
}

/**
 * Parse config.pbtxt text as Triton's inference.ModelConfig and check it the way Triton does when it loads the model.
 * Throws ModelshipError naming `file:line:column` for a syntax error, an unknown field, a value of the wrong type
 * or enum (from the parser), and for: an empty model name; neither (or an unknown, or a conflicting) platform and
 * backend; max_batch_size < 0; an input/output without a name, with data_type TYPE_INVALID or missing, without
 * dims or with a dim that is neither > 0 nor -1; two inputs (or two outputs) of the same name; dynamic_batching
 * without max_batch_size > 0; an instance_group kind other than KIND_GPU, KIND_CPU, KIND_AUTO.
 * Fields left out are absent from the result (not filled with proto3 defaults); maps are plain objects.
 */
export function parseTritonConfig(text: string, file: string): Record<string, unknown> {
  const type = modelConfigSchema().lookupType('inference.ModelConfig');
  const cfg = parseTextFormat(text, type, { file });
  const fail = (message: string, at: Loc | undefined, field?: string): never => {
    throw new ModelshipError('schema', message, { file, line: at?.line ?? 1, column: at?.column ?? 1, field });
  };

  if (!has(cfg, 'name')) fail('model name is missing: "name" must be set', locOf(cfg), 'name');
  if (cfg.name === '') fail('model name is empty', fieldLocOf(cfg, 'name'), 'name');

  const platform = cfg.platform as string | undefined;
  const backend = cfg.backend as string | undefined;
  if (platform === undefined && backend === undefined) fail('neither "platform" nor "backend" is set', locOf(cfg), 'platform');
  if (platform !== undefined && !(platform in PLATFORMS)) {
    fail(`unknown platform ${JSON.stringify(platform)} (known: ${Object.keys(PLATFORMS).join(', ')})`, fieldLocOf(cfg, 'platform'), 'platform');
  }
  if (backend !== undefined && !BACKENDS.has(backend)) {
    fail(`unknown backend ${JSON.stringify(backend)} (known: ${[...BACKENDS].join(', ')})`, fieldLocOf(cfg, 'backend'), 'backend');
  }
  if (platform !== undefined && backend !== undefined && PLATFORMS[platform] !== backend) {
    // both may be given only when they name the same thing (Triton's own autocompleted configs carry both)
    const pl = fieldLocOf(cfg, 'platform')!;
    const bl = fieldLocOf(cfg, 'backend')!;
    const later = pl.line > bl.line || (pl.line === bl.line && pl.column > bl.column) ? 'platform' : 'backend';
    fail(
      `platform ${JSON.stringify(platform)} and backend ${JSON.stringify(backend)} disagree: give exactly one of them`,
      later === 'platform' ? pl : bl,
      later,
    );
  }

  const maxBatch = (cfg.max_batch_size as number | undefined) ?? 0;
  if (maxBatch < 0) fail(`max_batch_size is ${maxBatch}; it must be >= 0`, fieldLocOf(cfg, 'max_batch_size'), 'max_batch_size');

  for (const field of ['input', 'output'] as const) {
    const tensors = (cfg[field] as Msg[] | undefined) ?? [];
    const seen = new Set<string>();
    tensors.forEach((t, i) => {
      const at = itemLocOf(cfg, field, i);
      const name = t.name as string | undefined;
      if (name === undefined) fail(`${field} #${i + 1} has no name`, at, 'name');
      if (name === '') fail(`${field} #${i + 1} has an empty name`, fieldLocOf(t, 'name'), 'name');
      const what = `${field} "${name}"`;
      if (seen.has(name!)) fail(`${what} is declared twice`, fieldLocOf(t, 'name'), 'name');
      seen.add(name!);
      if (!has(t, 'data_type')) fail(`${what} has no data_type`, at, 'data_type');
      if (t.data_type === 'TYPE_INVALID') fail(`${what} has data_type TYPE_INVALID`, fieldLocOf(t, 'data_type'), 'data_type');
      const dims = (t.dims as number[] | undefined) ?? [];
      if (dims.length === 0) {
        fail(
          `${what} has no dims${maxBatch > 0 ? ' (besides the batch; a per-item scalar is dims: [ 1 ] with reshape: { shape: [ ] })' : ''}`,
          written(t, 'dims') ? fieldLocOf(t, 'dims') : at,
          'dims',
        );
      }
      dims.forEach((d, j) => {
        if (!(d > 0 || d === -1)) fail(`${what}: dims[${j}] is ${d}; a dim must be > 0 or -1 (variable)`, itemLocOf(t, 'dims', j), 'dims');
      });
    });
  }

  if (has(cfg, 'dynamic_batching') && maxBatch <= 0) {
    fail('dynamic_batching needs max_batch_size > 0 (the model does not batch)', fieldLocOf(cfg, 'dynamic_batching'), 'dynamic_batching');
  }

  ((cfg.instance_group as Msg[] | undefined) ?? []).forEach((g, i) => {
    if (has(g, 'kind') && !INSTANCE_KINDS.has(g.kind as string)) {
      fail(`instance_group #${i + 1}: kind ${g.kind as string} is not one of ${[...INSTANCE_KINDS].join(', ')}`, fieldLocOf(g, 'kind'), 'kind');
    }
  });
  return cfg;
}
