import { ModelshipError } from './util/errors';
import { parseBatches } from './compile/tensorrt';

/**
 * The one surface shared by the action and the CLI: every action input is a CLI flag of the same name
 * (`--per-layer`), read once into a typed Config. action.yml and the README tables are checked against
 * INPUTS and OUTPUTS by a test, so the three cannot drift.
 */

export const STAGES = ['convert', 'compile'] as const;
export type Stage = (typeof STAGES)[number];

export interface InputSpec {
  name: string;
  description: string;
  /** default as action.yml states it ('' when there is none) */
  default: string;
  kind: 'string' | 'path' | 'boolean' | 'number';
  /** stages that use it; `required` lists those where it must be given */
  stages: Stage[] | 'all';
  required?: Stage[];
  secret?: boolean;
}

export interface OutputSpec {
  name: string;
  description: string;
  stages: Stage[];
}

export const INPUTS: InputSpec[] = [
  {
    name: 'stage',
    description: `Which stage to run: ${STAGES.join(' | ')}.`,
    default: '',
    kind: 'string',
    stages: 'all',
    required: [...STAGES],
  },
  {
    name: 'prototxt',
    description: 'convert: path of the Caffe deploy.prototxt (V2 `layer` or legacy V1 `layers`).',
    default: '',
    kind: 'path',
    stages: ['convert'],
    required: ['convert'],
  },
  {
    name: 'caffemodel',
    description: 'convert: path of the trained .caffemodel weights.',
    default: '',
    kind: 'path',
    stages: ['convert'],
    required: ['convert'],
  },
  {
    name: 'out',
    description: 'convert: where to write the ONNX model; parity.json and parity.md are written next to it.',
    default: 'model.onnx',
    kind: 'path',
    stages: ['convert'],
  },
  {
    name: 'reference',
    description:
      'convert, compile: directory with reference inputs and outputs from real Caffe (input_b<N>.npy, output_b<N>__<blob>.npy, optional blobs_b1/ and summary.json). Empty skips the parity check.',
    default: '',
    kind: 'path',
    stages: ['convert', 'compile'],
  },
  {
    name: 'per-layer',
    description: 'convert: also compare every intermediate blob (needs blobs_b1/ in the reference) and name the first layer that diverges.',
    default: 'false',
    kind: 'boolean',
    stages: ['convert'],
  },
  {
    name: 'tolerance',
    description: 'convert, compile: largest allowed max |Δ| between the ONNX and the Caffe outputs, scaled by max(1, max |reference|); top-5 must also be identical.',
    default: '1e-5',
    kind: 'number',
    stages: ['convert', 'compile'],
  },
  {
    name: 'model',
    description: 'compile: the ONNX model to compile (the convert stage\'s onnx-path).',
    default: 'model.onnx',
    kind: 'path',
    stages: ['compile'],
  },
  {
    name: 'target',
    description: 'compile: onnxruntime (ORT-optimized ONNX) or tensorrt (a TensorRT plan built by trtexec in base-image; needs a GPU runner).',
    default: 'onnxruntime',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'artifact',
    description: 'compile: where to write the artifact; empty means next to the model (<model>.ort.onnx or <model>.plan). Its metadata goes to <artifact>.json.',
    default: '',
    kind: 'path',
    stages: ['compile'],
  },
  {
    name: 'execution-provider',
    description: 'compile: the ONNX Runtime execution provider the artifact is optimized for: cpu or cuda.',
    default: 'cpu',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'base-image',
    description: 'compile (tensorrt): the serving base image that runs trtexec, so the plan matches the TensorRT that serves it.',
    default: 'nvcr.io/nvidia/tensorrt:24.08-py3',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'batch-sizes',
    description: 'compile (tensorrt): min,opt,max batch of the dynamic-batch optimization profile.',
    default: '1,8,32',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'fp16',
    description: 'compile: build with float16 (tensorrt: --fp16).',
    default: 'false',
    kind: 'boolean',
    stages: ['compile'],
  },
  {
    name: 'int8',
    description: 'compile (tensorrt): also allow int8 kernels (--int8).',
    default: 'false',
    kind: 'boolean',
    stages: ['compile'],
  },
  {
    name: 'workspace-mib',
    description: 'compile (tensorrt): builder workspace memory pool in MiB (--memPoolSize=workspace:<n>M).',
    default: '4096',
    kind: 'number',
    stages: ['compile'],
  },
];

export const OUTPUTS: OutputSpec[] = [
  { name: 'onnx-path', description: 'convert: path of the written ONNX model.', stages: ['convert'] },
  { name: 'sha256', description: 'convert: sha256 of the ONNX model file.', stages: ['convert'] },
  { name: 'parity', description: 'convert: pass, fail or skipped (no reference given).', stages: ['convert'] },
  { name: 'max-abs-diff', description: 'convert: largest |Δ| between ONNX and Caffe outputs over all reference batches (empty when skipped).', stages: ['convert'] },
  { name: 'parity-report', description: 'convert: path of parity.json (empty when skipped).', stages: ['convert'] },
  { name: 'artifact-path', description: 'compile: path of the deployment artifact (optimized ONNX or TensorRT plan).', stages: ['compile'] },
  { name: 'artifact-sha256', description: 'compile: sha256 of the artifact.', stages: ['compile'] },
  { name: 'artifact-metadata', description: 'compile: path of the artifact metadata JSON (runtime versions, execution provider; TensorRT version and compute capability).', stages: ['compile'] },
  { name: 'compile-parity', description: 'compile: pass, fail or skipped: the parity check of the optimized model.', stages: ['compile'] },
];

export interface ConvertConfig {
  prototxt: string;
  caffemodel: string;
  out: string;
  reference?: string;
  perLayer: boolean;
  tolerance: number;
}

export interface CompileConfig {
  model: string;
  target: 'onnxruntime' | 'tensorrt';
  artifact: string;
  executionProvider: 'cpu' | 'cuda';
  baseImage: string;
  batchSizes: [number, number, number];
  fp16: boolean;
  int8: boolean;
  workspaceMiB: number;
  reference?: string;
  tolerance: number;
}

export interface Config {
  stage: Stage;
  convert: ConvertConfig;
  compile: CompileConfig;
}

/** Where raw input values come from: the action's INPUT_* environment or the CLI's flags. */
export type InputSource = (name: string) => string | undefined;

function fail(input: string, message: string): never {
  throw new ModelshipError('input', `input "${input}": ${message}`, { field: input });
}

export function parseBoolean(name: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off', ''].includes(v)) return false;
  return fail(name, `expected true or false, got "${raw}"`);
}

/** Read and validate every input once, before any work. Unknown stage, missing or malformed values fail here. */
export function readConfig(source: InputSource): Config {
  const spec = new Map(INPUTS.map((i) => [i.name, i]));
  const raw = (name: string): string => {
    const v = source(name);
    return (v === undefined || v.trim() === '' ? spec.get(name)!.default : v).trim();
  };
  const stageRaw = raw('stage');
  if (stageRaw === '') fail('stage', `is required: one of ${STAGES.join(', ')}`);
  if (!(STAGES as readonly string[]).includes(stageRaw)) fail('stage', `unknown stage "${stageRaw}"; expected one of ${STAGES.join(', ')}`);
  const stage = stageRaw as Stage;
  for (const s of INPUTS) {
    if (s.required?.includes(stage) && raw(s.name) === '') fail(s.name, `is required for stage ${stage}`);
  }
  const num = (name: string): number => {
    const v = raw(name);
    const n = Number(v);
    if (v === '' || !Number.isFinite(n) || n < 0) fail(name, `expected a non-negative number, got "${v}"`);
    return n;
  };
  const convert: ConvertConfig = {
    prototxt: raw('prototxt'),
    caffemodel: raw('caffemodel'),
    out: raw('out'),
    reference: raw('reference') || undefined,
    perLayer: parseBoolean('per-layer', raw('per-layer')),
    tolerance: num('tolerance'),
  };
  if (stage === 'convert' && convert.perLayer && !convert.reference) fail('per-layer', 'needs a reference directory (input "reference")');
  const oneOf = <T extends string>(name: string, values: readonly T[]): T => {
    const v = raw(name);
    if (!(values as readonly string[]).includes(v)) fail(name, `expected one of ${values.join(', ')}, got "${v}"`);
    return v as T;
  };
  const compile: CompileConfig = {
    model: raw('model'),
    target: oneOf('target', ['onnxruntime', 'tensorrt'] as const),
    artifact: raw('artifact'),
    executionProvider: oneOf('execution-provider', ['cpu', 'cuda'] as const),
    baseImage: raw('base-image'),
    batchSizes: parseBatches(raw('batch-sizes')),
    fp16: parseBoolean('fp16', raw('fp16')),
    int8: parseBoolean('int8', raw('int8')),
    workspaceMiB: num('workspace-mib'),
    reference: convert.reference,
    tolerance: convert.tolerance,
  };
  if (compile.int8 && compile.target !== 'tensorrt') fail('int8', 'is only for target tensorrt');
  return { stage, convert, compile };
}
