import { ModelshipError } from '../util/errors';
import type { TensorSig } from '../formats/onnxinfo';

/**
 * What Triton's model configuration (inference.ModelConfig, model_config.proto) says of a model, from its ONNX
 * signature: the name, platform, max_batch_size, inputs and outputs (data types, dims without the batch), dynamic
 * batching and the instance group. Below the two that state it: the image stage writes it as config.pbtxt for Triton
 * (image/triton-config.ts), and modelship's own server answers it from GET /v2/models/{m}/config and gRPC's
 * ModelConfig (serve/model-config.ts), so the two runtimes describe the same model the same way by construction.
 * Field names and enum values are the proto's (snake_case, `TYPE_FP32`, `KIND_CPU`).
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

/** platform → the backend Triton runs it with (`ensemble` has none) */
export const TRITON_PLATFORM_BACKENDS: Readonly<Record<string, string | undefined>> = {
  tensorrt_plan: 'tensorrt',
  onnxruntime_onnx: 'onnxruntime',
  tensorflow_graphdef: 'tensorflow',
  tensorflow_savedmodel: 'tensorflow',
  pytorch_libtorch: 'pytorch',
  ensemble: undefined,
};

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

/** An input or output of the configuration (ModelInput / ModelOutput). */
export interface TritonTensorConfig {
  name: string;
  data_type: string;
  /** without the batch dim when max_batch_size > 0; -1 for a symbolic dim */
  dims: number[];
  /** a tensor with no dims besides the batch (or a scalar): Triton wants `dims: [1]` reshaped to `[]` */
  reshape?: { shape: number[] };
}

/** The fields of a model's configuration that its signature and the spec decide. */
export interface TritonConfigFields {
  name: string;
  platform: TritonModelSpec['platform'];
  max_batch_size: number;
  input: TritonTensorConfig[];
  output: TritonTensorConfig[];
  /** only when max_batch_size > 0 */
  dynamic_batching?: { max_queue_delay_microseconds: number };
  instance_group: { count: number; kind: 'KIND_GPU' | 'KIND_CPU' }[];
}

function tensorConfig(t: TensorSig, maxBatchSize: number, kind: 'input' | 'output', modelName: string): TritonTensorConfig {
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
  return dims.length === 0 ? { name: t.name, data_type: dataType, dims: [1], reshape: { shape: [] } } : { name: t.name, data_type: dataType, dims };
}

/**
 * The configuration's fields for a model, checked as Triton checks them when it loads the model: a bad spec (max
 * batch size or queue delay out of range, no inputs or outputs, a tensor Triton cannot type or shape) is a
 * ModelshipError naming the model and the tensor or field.
 */
export function tritonConfigFields(spec: TritonModelSpec): TritonConfigFields {
  const bad = (message: string): never => {
    throw new ModelshipError('input', `Triton model "${spec.name}": ${message}`);
  };
  if (typeof spec.name !== 'string' || spec.name === '') throw new ModelshipError('input', 'Triton model name is empty');
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
  return {
    name: spec.name,
    platform: spec.platform,
    max_batch_size: maxBatchSize,
    input: spec.inputs.map((t) => tensorConfig(t, maxBatchSize, 'input', spec.name)),
    output: spec.outputs.map((t) => tensorConfig(t, maxBatchSize, 'output', spec.name)),
    ...(maxBatchSize > 0 ? { dynamic_batching: { max_queue_delay_microseconds: spec.maxQueueDelayUs } } : {}),
    instance_group: [{ count: 1, kind: spec.gpu ? 'KIND_GPU' : 'KIND_CPU' }],
  };
}
