import { fieldLocOf, itemLocOf, Loc, locOf, parseTextFormat } from '../formats/textformat';
import { ModelshipError } from '../util/errors';
import { modelConfigSchema } from '../formats/schema/model_config';
import {
  TRITON_PLATFORM_BACKENDS,
  TritonModelSpec,
  TritonTensorConfig,
  tritonConfigFields,
  tritonDataType,
  tritonMaxBatchSize,
} from '../protocol/triton-model-config';

/**
 * Triton Inference Server model configuration (`<repository>/<model>/config.pbtxt`): written from an ONNX model's
 * signature, and read back and checked against Triton's own schema (inference.ModelConfig, vendored in
 * ./schema/model_config.ts) with the project's text-format parser, plus the checks Triton makes when it loads a
 * model, so a bad configuration is refused here with `file:line:column` instead of at server start. What the
 * configuration says of a model is decided below this stage (protocol/triton-model-config.ts), where modelship's own
 * server, which answers the same configuration from GET /v2/models/{m}/config, takes it too.
 */

export { tritonDataType, tritonMaxBatchSize };
export type { TritonModelSpec };

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

/** A text-format list: `[ 1, 28, 28 ]`, `[ ]`. */
const list = (xs: number[]): string => (xs.length ? `[ ${xs.join(', ')} ]` : '[ ]');

function tensorBlock(field: 'input' | 'output', entries: TritonTensorConfig[]): string[] {
  const lines = [`${field} [`];
  entries.forEach((e, i) => {
    lines.push('  {');
    lines.push(`    name: ${quote(e.name)}`);
    lines.push(`    data_type: ${e.data_type}`);
    lines.push(`    dims: ${list(e.dims)}`);
    if (e.reshape) lines.push(`    reshape: { shape: ${list(e.reshape.shape)} }`);
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
  if (typeof spec.name !== 'string' || spec.name === '') throw new ModelshipError('input', 'Triton model name is empty');
  if (spec.name === '.' || spec.name === '..' || /[/\\\0]/.test(spec.name)) {
    throw new ModelshipError(
      'input',
      `Triton model "${spec.name}": the name is the model directory in the repository; it cannot be "." or ".." or contain "/", "\\" or NUL`,
    );
  }
  const fields = tritonConfigFields(spec);
  const maxBatchSize = fields.max_batch_size;

  const lines = [
    '# Triton model configuration, written by modelship',
    `name: ${quote(spec.name)}`,
    `platform: ${quote(spec.platform)}`,
    ...(maxBatchSize !== spec.maxBatchSize
      ? [`# a detection model (${spec.detectionOutputs!.join(', ')}: one [1, 1, D, 7] table per batch, not batch-first): no batching`]
      : []),
    `max_batch_size: ${maxBatchSize}`,
    ...tensorBlock('input', fields.input),
    ...tensorBlock('output', fields.output),
  ];
  if (fields.dynamic_batching) {
    lines.push('dynamic_batching {', `  max_queue_delay_microseconds: ${fields.dynamic_batching.max_queue_delay_microseconds}`, '}');
  }
  lines.push('instance_group [');
  fields.instance_group.forEach((g, i) =>
    lines.push('  {', `    count: ${g.count}`, `    kind: ${g.kind}`, i === fields.instance_group.length - 1 ? '  }' : '  },'),
  );
  lines.push(']');
  const text = lines.join('\n') + '\n';
  parseTritonConfig(text, `${spec.name}/config.pbtxt`);
  return text;
}

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
  if (platform !== undefined && !(platform in TRITON_PLATFORM_BACKENDS)) {
    fail(`unknown platform ${JSON.stringify(platform)} (known: ${Object.keys(TRITON_PLATFORM_BACKENDS).join(', ')})`, fieldLocOf(cfg, 'platform'), 'platform');
  }
  if (backend !== undefined && !BACKENDS.has(backend)) {
    fail(`unknown backend ${JSON.stringify(backend)} (known: ${[...BACKENDS].join(', ')})`, fieldLocOf(cfg, 'backend'), 'backend');
  }
  if (platform !== undefined && backend !== undefined && TRITON_PLATFORM_BACKENDS[platform] !== backend) {
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
