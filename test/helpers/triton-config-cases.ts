import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { convertCaffe } from '../../src/convert/converter';
import { modelConfigSchema } from '../../src/formats/schema/model_config';
import { TritonModelSpec } from '../../src/image/triton-config';
import { detectionOutputNames } from '../../src/protocol/detections';
import { tinySsd } from './ssd';
import { onnxInfo, TensorSig } from '../../src/formats/onnxinfo';
import { FIXTURES } from './caffe';

// The configs and models that test/triton-config.test.ts (our generator and parser) and
// test/triton-config.tools.test.ts (the same against Google's protobuf text-format parser) share.

/**
 * Our parse result in the form json_format.MessageToDict writes (proto3 JSON, proto field names), derived from the
 * schema: 64-bit integers as strings, proto3 scalars at their default left out (except oneof members, which have
 * presence), empty repeated fields left out, present sub-messages kept even when empty, maps as objects.
 */
export function proto3Json(msg: Record<string, unknown>, type: protobuf.Type): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const scalar = (v: unknown, f: { type: string; resolvedType: protobuf.ReflectionObject | null }): unknown => {
    if (f.resolvedType instanceof protobuf.Type) return proto3Json(v as Record<string, unknown>, f.resolvedType);
    if (/^(u?int64|sint64|s?fixed64)$/.test(f.type)) return String(v);
    if ((f.type === 'float' || f.type === 'double') && typeof v === 'number' && !Number.isFinite(v))
      return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
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

export const ModelConfig = () => modelConfigSchema().lookupType('inference.ModelConfig');

// ---------------------------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------------------------
export function convertFixture(dir: string): Uint8Array {
  const d = path.join(FIXTURES, dir);
  return convertCaffe({
    prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
    prototxtFile: 'deploy.prototxt',
    caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
    caffemodelFile: 'weights.caffemodel',
  }).onnx;
}

export const lenet = onnxInfo(convertFixture('lenet'));
/** a tiny SSD: its DetectionOutput is one [1, 1, D, 7] table per batch, named in the ONNX metadata */
export const ssdNet = tinySsd();
export const ssdBytes = convertCaffe({
  prototxt: Buffer.from(ssdNet.prototxt),
  prototxtFile: 'deploy.prototxt',
  caffemodel: ssdNet.caffemodel,
  caffemodelFile: 'w.caffemodel',
}).onnx;
export const ssd = onnxInfo(ssdBytes);
export const ssdSpec = (over: Partial<TritonModelSpec> = {}): TritonModelSpec => ({
  name: 'ssd',
  platform: 'onnxruntime_onnx',
  maxBatchSize: 32,
  inputs: ssd.inputs,
  outputs: ssd.outputs,
  maxQueueDelayUs: 100,
  gpu: false,
  detectionOutputs: detectionOutputNames(
    ssd.metadata,
    ssd.outputs.map((o) => o.name),
  ),
  ...over,
});
export const zooBranch = onnxInfo(convertFixture('zoo_branch'));

/** GoogLeNet's deploy signature (BVLC bvlc_googlenet: data 3x224x224 → prob 1000), as onnxInfo reports it */
export const googlenetInputs: TensorSig[] = [{ name: 'data', shape: ['N', 3, 224, 224], elemType: 1 }];
export const googlenetOutputs: TensorSig[] = [{ name: 'prob', shape: ['N', 1000], elemType: 1 }];

export function spec(over: Partial<TritonModelSpec>): TritonModelSpec {
  return {
    name: 'm',
    platform: 'onnxruntime_onnx',
    maxBatchSize: 8,
    inputs: googlenetInputs,
    outputs: googlenetOutputs,
    maxQueueDelayUs: 100,
    gpu: true,
    ...over,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// parseTritonConfig refusals (semantic checks): exact file:line:column
// ---------------------------------------------------------------------------------------------------------------
export const T_IN = 'input [ { name: "x" data_type: TYPE_FP32 dims: [ 3, -1 ] } ]';
export const T_OUT = 'output [ { name: "y" data_type: TYPE_FP32 dims: [ 10 ] } ]';

/** semantically invalid, schema-valid configs: [what, text, line, column, message] */
export const SEMANTIC: [string, string, number, number, RegExp][] = [
  ['no name', ['platform: "onnxruntime_onnx"', T_IN, T_OUT].join('\n'), 1, 1, /model name is missing/],
  ['empty name', ['# c', '  name: ""', 'platform: "onnxruntime_onnx"', T_IN, T_OUT].join('\n'), 2, 3, /model name is empty/],
  ['neither platform nor backend', ['name: "m"', T_IN, T_OUT].join('\n'), 1, 1, /neither "platform" nor "backend"/],
  ['unknown platform', ['name: "m"', 'platform: "onnx"', T_IN].join('\n'), 2, 1, /unknown platform "onnx"/],
  ['unknown backend', ['name: "m"', '  backend: "caffe"', T_IN].join('\n'), 2, 3, /unknown backend "caffe"/],
  ['platform and backend disagree', ['name: "m"', 'platform: "onnxruntime_onnx" backend: "tensorrt"', T_IN].join('\n'), 2, 30, /disagree: give exactly one/],
  ['negative max_batch_size', ['name: "m"', 'platform: "tensorrt_plan"', '', 'max_batch_size: -2'].join('\n'), 4, 1, /max_batch_size is -2; it must be >= 0/],
  ['input without name', ['name: "m"', 'backend: "onnxruntime"', 'input [ { data_type: TYPE_FP32 dims: [ 3 ] } ]'].join('\n'), 3, 9, /input #1 has no name/],
  ['output with empty name', ['name: "m"', 'backend: "onnxruntime"', T_IN, 'output {', '  name: ""', '}'].join('\n'), 5, 3, /output #1 has an empty name/],
  [
    'missing data_type',
    ['name: "m"', 'backend: "onnxruntime"', T_IN, T_OUT, 'output {', '  name: "z" dims: 4', '}'].join('\n'),
    5,
    8,
    /output "z" has no data_type/,
  ],
  [
    'TYPE_INVALID',
    ['name: "m"', 'backend: "onnxruntime"', 'input [ { name: "x" data_type: TYPE_INVALID dims: 3 } ]'].join('\n'),
    3,
    21,
    /input "x" has data_type TYPE_INVALID/,
  ],
  [
    'TYPE_INVALID by number',
    ['name: "m"', 'backend: "onnxruntime"', 'input [ { name: "x" data_type: 0 dims: 3 } ]'].join('\n'),
    3,
    21,
    /input "x" has data_type TYPE_INVALID/,
  ],
  [
    'no dims',
    ['name: "m"', 'backend: "onnxruntime"', T_IN, 'input [', '  { name: "a" data_type: TYPE_FP32 },', '  { name: "b" data_type: TYPE_FP32 }', ']'].join('\n'),
    5,
    3,
    /input "a" has no dims/,
  ],
  [
    'empty dims list',
    ['name: "m"', 'backend: "onnxruntime"', 'max_batch_size: 4', 'input [ { name: "x" data_type: TYPE_FP32 dims: [ ] } ]'].join('\n'),
    4,
    42,
    /input "x" has no dims \(besides the batch/,
  ],
  [
    'dim 0',
    ['name: "m"', 'backend: "onnxruntime"', 'input [ { name: "x" data_type: TYPE_FP32 dims: [ 3, 0, 5 ] } ]'].join('\n'),
    3,
    53,
    /input "x": dims\[1\] is 0; a dim must be > 0 or -1/,
  ],
  [
    'dim -2 (repeated form)',
    ['name: "m"', 'backend: "onnxruntime"', 'output {', '  name: "y" data_type: TYPE_FP32', '  dims: 3', '  dims: -2', '}'].join('\n'),
    6,
    9,
    /output "y": dims\[1\] is -2/,
  ],
  [
    'duplicate input',
    [
      'name: "m"',
      'platform: "onnxruntime_onnx"',
      T_IN,
      'input { name: "q" data_type: TYPE_INT64 dims: 1 }',
      'input { name: "x" data_type: TYPE_INT64 dims: 1 }',
    ].join('\n'),
    5,
    9,
    /input "x" is declared twice/,
  ],
  [
    'duplicate output',
    [
      'name: "m"',
      'platform: "onnxruntime_onnx"',
      T_IN,
      'output [',
      '  { name: "y" data_type: TYPE_FP32 dims: 1 },',
      '  { data_type: TYPE_FP32 dims: 1 name: "y" }',
      ']',
    ].join('\n'),
    6,
    34,
    /output "y" is declared twice/,
  ],
  [
    'dynamic_batching without max_batch_size',
    ['name: "m"', 'platform: "onnxruntime_onnx"', T_IN, T_OUT, '  dynamic_batching { }'].join('\n'),
    5,
    3,
    /dynamic_batching needs max_batch_size > 0/,
  ],
  [
    'dynamic_batching with max_batch_size 0',
    ['name: "m"', 'platform: "onnxruntime_onnx"', 'max_batch_size: 0', T_IN, 'dynamic_batching { max_queue_delay_microseconds: 10 }'].join('\n'),
    5,
    1,
    /dynamic_batching needs max_batch_size > 0/,
  ],
  [
    'instance_group KIND_MODEL',
    ['name: "m"', 'platform: "onnxruntime_onnx"', T_IN, 'instance_group [ { kind: KIND_GPU }, { count: 2 kind: KIND_MODEL } ]'].join('\n'),
    4,
    49,
    /instance_group #2: kind KIND_MODEL is not one of KIND_GPU, KIND_CPU, KIND_AUTO/,
  ],
];

/** text-format / schema errors the parser itself raises: [what, text, line, column, message] */
export const SCHEMA: [string, string, number, number, RegExp][] = [
  ['unknown field', ['name: "m"', 'platform: "onnxruntime_onnx"', 'max_batch: 8'].join('\n'), 3, 1, /unknown field "max_batch" in ModelConfig/],
  ['unknown nested field', ['name: "m"', 'input { name: "x" shape: [ 3 ] }'].join('\n'), 2, 19, /unknown field "shape" in ModelInput/],
  [
    'bad data_type enum',
    ['name: "m"', 'input { name: "x" data_type: TYPE_FLOAT32 dims: 3 }'].join('\n'),
    2,
    30,
    /field "data_type" expects one of TYPE_INVALID, .*TYPE_FP32/,
  ],
  [
    'bad instance kind enum',
    ['name: "m"', 'instance_group { kind: KIND_TPU }'].join('\n'),
    2,
    24,
    /field "kind" expects one of KIND_AUTO, KIND_GPU, KIND_CPU, KIND_MODEL/,
  ],
  ['string for int', 'max_batch_size: "8"', 1, 17, /field "max_batch_size" expects an integer/],
  ['float for int64 dim', 'input { dims: 2.5 }', 1, 15, /field "dims" expects an integer/],
  ['int32 overflow', 'max_batch_size: 4294967296', 1, 17, /expects a 32-bit integer/],
  ['negative uint64', 'dynamic_batching { max_queue_delay_microseconds: -1 }', 1, 50, /expects a non-negative integer/],
  ['unclosed message', ['name: "m"', 'dynamic_batching {', '  max_queue_delay_microseconds: 1'].join('\n'), 3, 34, /unexpected end of file: missing '}'/],
  ['singular field twice', ['name: "m"', 'name: "n"'].join('\n'), 2, 1, /non-repeated field "name" of ModelConfig is given more than once/],
  [
    'two members of a oneof',
    ['name: "m"', 'dynamic_batching { }', 'sequence_batching { }'].join('\n'),
    3,
    1,
    /"sequence_batching" of ModelConfig is given along with "dynamic_batching": both belong to oneof "scheduling_choice"/,
  ],
  ['unknown field in a map entry', 'parameters { key: "a" val { string_value: "b" } }', 1, 23, /unknown field "val" in parameters entry/],
  ['map value of the wrong type', 'metric_tags { key: "a" value: 3 }', 1, 31, /field "value" expects a quoted string/],
  ['unknown field in a map value', 'parameters { key: "a" value { text: "b" } }', 1, 31, /unknown field "text" in ModelParameter/],
];

// ---------------------------------------------------------------------------------------------------------------
// Hand-written configs
// ---------------------------------------------------------------------------------------------------------------

/** A config using much of the schema and of the text format: comments, `<>`, list forms, maps (string, message and
 * uint64 keys), oneofs, enum by number, hex and octal integers, separators, concatenated and escaped strings. */
export const RICH = String.raw`# a hand-written configuration
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

export const SEQUENCE = String.raw`name: "seq"
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
