import { ProtocolError } from '../protocol/kserve';
import { TRITON_PLATFORM_BACKENDS, TritonTensorConfig, tritonConfigFields, tritonMaxBatchSize } from '../protocol/triton-model-config';
import type { OnnxInfo } from '../formats/onnxinfo';
import { ModelshipError } from '../util/errors';
import type { ServedModel } from './model';
import type { ServeOptions } from './options';

/**
 * Triton's model-configuration extension (GET /v2/models/{m}/config, gRPC ModelConfig): the served model's
 * configuration as Triton reports a model it has loaded. Its substance (max_batch_size, inputs and outputs with their
 * data types and dims, dynamic batching, the instance group) is what the image stage writes into config.pbtxt for the
 * same model (protocol/triton-model-config.ts); around it, what Triton fills in when it loads a configuration (version
 * policy, input format, optimization, preferred batch size, instance name, ...), as Triton 2.51 answers it.
 *
 * Field names and enum values are model_config.proto's, so one object is both the HTTP answer and the gRPC message
 * (proto-loader with keepCase, enums as strings, maps as objects). Fields newer than that proto (Triton 2.51's runtime,
 * is_non_linear_format_io) are left out.
 */

/** An input of the configuration, as Triton fills it in (ModelInput). */
export interface ModelConfigInput extends TritonTensorConfig {
  format: 'FORMAT_NONE';
  is_shape_tensor: boolean;
  allow_ragged_batch: boolean;
  optional: boolean;
}

/** An output of the configuration, as Triton fills it in (ModelOutput). */
export interface ModelConfigOutput extends TritonTensorConfig {
  label_filename: string;
  is_shape_tensor: boolean;
}

/** Triton's ModelConfig message for the served model. */
export interface ModelConfig {
  name: string;
  platform: string;
  backend: string;
  version_policy: { latest: { num_versions: number } };
  max_batch_size: number;
  input: ModelConfigInput[];
  output: ModelConfigOutput[];
  batch_input: never[];
  batch_output: never[];
  optimization: {
    priority: 'PRIORITY_DEFAULT';
    input_pinned_memory: { enable: boolean };
    output_pinned_memory: { enable: boolean };
    gather_kernel_buffer_threshold: number;
    eager_batching: boolean;
  };
  dynamic_batching?: {
    preferred_batch_size: number[];
    max_queue_delay_microseconds: number;
    preserve_ordering: boolean;
    priority_levels: number;
    default_priority_level: number;
    priority_queue_policy: Record<string, never>;
  };
  instance_group: {
    name: string;
    kind: 'KIND_CPU' | 'KIND_GPU';
    count: number;
    gpus: number[];
    secondary_devices: never[];
    profile: never[];
    passive: boolean;
    host_policy: string;
  }[];
  default_model_filename: string;
  cc_model_filenames: Record<string, string>;
  metric_tags: Record<string, string>;
  parameters: Record<string, { string_value: string }>;
  model_warmup: never[];
}

/**
 * The max_batch_size of the served model's configuration: the server's --max-batch-size, or 0 (any batch) for a
 * detection model (tritonMaxBatchSize: its outputs are not batch-first) and for a model with a tensor whose first dim
 * is fixed or that has none (it has no batch dimension: Triton would load it only with max_batch_size 0, and the image
 * stage refuses to write it otherwise; the server serves it as it is).
 */
export function servedMaxBatchSize(sig: Pick<OnnxInfo, 'inputs' | 'outputs'>, detectionOutputs: string[], maxBatchSize: number): number {
  const batchFirst = [...sig.inputs, ...sig.outputs].every((t) => t.shape.length > 0 && (typeof t.shape[0] === 'string' || t.shape[0] === -1));
  return batchFirst ? tritonMaxBatchSize({ maxBatchSize, detectionOutputs, outputs: sig.outputs }) : 0;
}

/** The served model's configuration, as Triton answers GET /v2/models/{m}/config. */
export function modelConfig(model: ServedModel, opts: Pick<ServeOptions, 'maxQueueDelayMs'>): ModelConfig {
  const gpu = model.engine.provider === 'cuda';
  const platform = 'onnxruntime_onnx';
  let fields;
  try {
    fields = tritonConfigFields({
      name: model.name,
      platform,
      maxBatchSize: model.maxBatchSize,
      inputs: model.sig.inputs,
      outputs: model.sig.outputs,
      maxQueueDelayUs: opts.maxQueueDelayMs * 1000,
      gpu,
      detectionOutputs: model.detectionOutputs,
    });
  } catch (e) {
    // (a tensor of a type Triton has none for: the model is served, but has no configuration Triton could load)
    if (e instanceof ModelshipError) throw new ProtocolError(500, `model "${model.name}" has no Triton model configuration: ${e.message}`);
    throw e;
  }
  const max = fields.max_batch_size;
  return {
    name: fields.name,
    platform,
    backend: TRITON_PLATFORM_BACKENDS[platform]!,
    version_policy: { latest: { num_versions: 1 } },
    max_batch_size: max,
    input: fields.input.map((t) => ({ ...t, format: 'FORMAT_NONE', is_shape_tensor: false, allow_ragged_batch: false, optional: false })),
    output: fields.output.map((t) => ({ ...t, label_filename: '', is_shape_tensor: false })),
    batch_input: [],
    batch_output: [],
    optimization: {
      priority: 'PRIORITY_DEFAULT',
      input_pinned_memory: { enable: true },
      output_pinned_memory: { enable: true },
      gather_kernel_buffer_threshold: 0,
      eager_batching: false,
    },
    // Triton prefers the max batch size when the configuration names no preferred size
    ...(fields.dynamic_batching
      ? {
          dynamic_batching: {
            preferred_batch_size: [max],
            max_queue_delay_microseconds: fields.dynamic_batching.max_queue_delay_microseconds,
            preserve_ordering: false,
            priority_levels: 0,
            default_priority_level: 0,
            priority_queue_policy: {},
          },
        }
      : {}),
    // Triton names a group <model>_<index>, and gives a GPU group its devices (ONNX Runtime's CUDA provider: device 0)
    instance_group: fields.instance_group.map((g, i) => ({
      name: `${model.name}_${i}`,
      kind: g.kind,
      count: g.count,
      gpus: g.kind === 'KIND_GPU' ? [0] : [],
      secondary_devices: [],
      profile: [],
      passive: false,
      host_policy: '',
    })),
    // what the image stage names the model in Triton's repository (<model>/1/model.onnx)
    default_model_filename: 'model.onnx',
    cc_model_filenames: {},
    metric_tags: {},
    parameters: {},
    model_warmup: [],
  };
}

/** A model in the repository index (RepositoryIndexResponse.ModelIndex). */
export interface ModelIndexEntry {
  name: string;
  version: string;
  state: 'READY' | 'UNAVAILABLE';
  reason?: string;
}

/**
 * Triton's repository index (HTTP POST /v2/repository/index, gRPC RepositoryIndex) of the one model: READY, or
 * UNAVAILABLE with the reason once it cannot serve (`broken`: its inference thread has died); `readyOnly` (the
 * request's `ready`) leaves out a model that is not ready.
 */
export function repositoryIndex(model: Pick<ServedModel, 'name' | 'version'>, broken: string | undefined, readyOnly = false): ModelIndexEntry[] {
  const { name, version } = model;
  if (broken) return readyOnly ? [] : [{ name, version, state: 'UNAVAILABLE', reason: broken }];
  return [{ name, version, state: 'READY' }];
}
