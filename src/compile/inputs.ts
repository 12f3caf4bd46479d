import { fail, InputSpec, OutputSpec, Reader } from '../inputs';
import type { SharedConfig } from '../shared/inputs';
import { tensorrtImageFor } from '../protocol/runtime';

/** The compile stage's own inputs and outputs (model, batch-sizes, triton-release, reference, tolerance are shared). */
export const COMPILE_INPUTS: InputSpec[] = [
  {
    name: 'target',
    description:
      "compile: onnxruntime (ORT-optimized ONNX) or tensorrt (a TensorRT plan built by trtexec in tensorrt-image, the TensorRT image of the serving Triton's release; needs a GPU runner; served by runtime triton only).",
    default: 'onnxruntime',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'artifact',
    description:
      'compile: where to write the artifact; empty means next to the model (<model>.ort.onnx or <model>.plan). Its metadata goes to <artifact>.json.',
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
    name: 'lrn',
    description:
      "compile (onnxruntime): the form of LRN layers in the artifact: op (ONNX LRN), primitive (the same function in Mul, AveragePool, Sqrt or Pow, Div, checked against the op), or auto: for execution-provider cpu the faster of the two on the bundled ONNX Runtime, measured while compiling (ONNX Runtime's CPU LRN kernel is ~3x slower after 1.20); for cuda the op. The choice and its figures go to the summary and <artifact>.json.",
    default: 'auto',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'tensorrt-image',
    description:
      'compile (tensorrt): the image that runs trtexec (a mirror, or repository@sha256:...); empty means nvcr.io/nvidia/tensorrt:<triton-release>-py3.',
    default: '',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'calibration-cache',
    description: 'compile (tensorrt): an INT8 calibration cache for trtexec --calib; required with int8: true.',
    default: '',
    kind: 'path',
    stages: ['compile'],
  },
  {
    name: 'fp16',
    description:
      'compile: float16 artifact. onnxruntime (execution-provider cuda): float16 weights and activations, float32 inputs/outputs, parity checked with max(tolerance, 2e-3); tensorrt: --fp16.',
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

export const COMPILE_OUTPUTS: OutputSpec[] = [
  { name: 'artifact-path', description: 'compile: path of the deployment artifact (optimized ONNX or TensorRT plan).', stages: ['compile'] },
  { name: 'artifact-sha256', description: 'compile: sha256 of the artifact.', stages: ['compile'] },
  {
    name: 'artifact-metadata',
    description: 'compile: path of the artifact metadata JSON (runtime versions, execution provider; TensorRT version and compute capability).',
    stages: ['compile'],
  },
  { name: 'compile-parity', description: 'compile: pass, fail or skipped: the parity check of the optimized model.', stages: ['compile'] },
];

export interface CompileConfig {
  model: string;
  target: 'onnxruntime' | 'tensorrt';
  artifact: string;
  executionProvider: 'cpu' | 'cuda';
  /** lrn: the LRN form of an onnxruntime artifact (src/compile/lrn.ts) */
  lrn: 'auto' | 'op' | 'primitive';
  batchSizes: [number, number, number];
  fp16: boolean;
  int8: boolean;
  workspaceMiB: number;
  /** the image that runs trtexec (tensorrt-image, else the TensorRT image of triton-release) */
  tensorrtImage: string;
  /** the Triton image of the same release (whose TensorRT serves the plan) */
  tritonImage: string;
  /** calibration-cache: INT8 calibration cache for trtexec --calib */
  calibrationCache: string;
  reference?: string;
  tolerance: number;
}

export function readCompileConfig(r: Reader, s: SharedConfig): CompileConfig {
  const c: CompileConfig = {
    model: s.model,
    target: r.oneOf('target', ['onnxruntime', 'tensorrt'] as const),
    artifact: r.raw('artifact'),
    executionProvider: r.oneOf('execution-provider', ['cpu', 'cuda'] as const),
    lrn: r.oneOf('lrn', ['auto', 'op', 'primitive'] as const),
    batchSizes: s.batchSizes,
    fp16: r.bool('fp16'),
    int8: r.bool('int8'),
    workspaceMiB: r.num('workspace-mib'),
    tensorrtImage: r.raw('tensorrt-image') || tensorrtImageFor(s.tritonRelease),
    tritonImage: s.tritonImage,
    calibrationCache: r.raw('calibration-cache'),
    reference: s.reference,
    tolerance: s.tolerance,
  };
  if (c.int8 && c.target !== 'tensorrt') fail('int8', 'is only for target tensorrt');
  if (c.lrn === 'primitive' && c.target !== 'onnxruntime') fail('lrn', 'primitive is for target onnxruntime (TensorRT runs the LRN op natively)');
  // x² of activations in the hundreds passes float16's largest value, 65504: the squares would be inf
  if (c.lrn === 'primitive' && c.fp16) fail('lrn', 'primitive is float32 only: its squares overflow float16');
  return c;
}
