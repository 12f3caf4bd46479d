import { fail, InputSpec, OutputSpec, Reader } from '../inputs';
import type { SharedConfig } from '../shared/inputs';

/** The convert stage's own inputs and outputs (reference and tolerance are shared: src/shared/inputs.ts). */
export const CONVERT_INPUTS: InputSpec[] = [
  {
    name: 'prototxt',
    description: 'convert, pipeline: path of the Caffe deploy.prototxt (V2 `layer` or legacy V1 `layers`).',
    default: '',
    kind: 'path',
    stages: ['convert', 'pipeline'],
    required: ['convert', 'pipeline'],
  },
  {
    name: 'caffemodel',
    description: 'convert, pipeline: path of the trained .caffemodel weights.',
    default: '',
    kind: 'path',
    stages: ['convert', 'pipeline'],
    required: ['convert', 'pipeline'],
  },
  {
    name: 'out',
    description: 'convert: where to write the ONNX model; parity.json and parity.md are written next to it.',
    default: 'model.onnx',
    kind: 'path',
    stages: ['convert'],
  },
  {
    name: 'per-layer',
    description: 'convert: also compare every intermediate blob (needs blobs_b1/ in the reference) and name the first layer that diverges.',
    default: 'false',
    kind: 'boolean',
    stages: ['convert'],
  },
  {
    name: 'outputs',
    description:
      "convert: the blobs to make the ONNX outputs, comma-separated (intermediate blobs included); empty means Caffe's rule: the blobs no later layer reads (for a net that ends in Silence, the blobs only Silence reads). The reference must then hold output_b<N>__<blob>.npy for each.",
    default: '',
    kind: 'string',
    stages: ['convert'],
  },
  {
    name: 'layers',
    description:
      'convert: your own layers: a CommonJS module of layer handlers (the API of src/convert/layers/*) with the protobuf messages of their parameters; see the README\'s "Your own layers".',
    default: '',
    kind: 'path',
    stages: ['convert', 'pipeline'],
  },
];

export const CONVERT_OUTPUTS: OutputSpec[] = [
  { name: 'onnx-path', description: 'convert: path of the written ONNX model.', stages: ['convert'] },
  { name: 'sha256', description: 'convert: sha256 of the ONNX model file.', stages: ['convert'] },
  { name: 'parity', description: 'convert: pass, fail or skipped (no reference given).', stages: ['convert'] },
  {
    name: 'max-abs-diff',
    description: 'convert: largest |Δ| between ONNX and Caffe outputs over all reference batches (empty when skipped).',
    stages: ['convert'],
  },
  { name: 'parity-report', description: 'convert: path of parity.json (empty when skipped).', stages: ['convert'] },
];

export interface ConvertConfig {
  prototxt: string;
  caffemodel: string;
  out: string;
  reference?: string;
  perLayer: boolean;
  tolerance: number;
  /** outputs: the blobs to output (empty: Caffe's rule) */
  outputs: string[];
  /** layers: a module of your own layer handlers */
  layers: string;
}

export function readConvertConfig(r: Reader, s: SharedConfig): ConvertConfig {
  const c: ConvertConfig = {
    prototxt: r.raw('prototxt'),
    caffemodel: r.raw('caffemodel'),
    out: r.raw('out'),
    reference: s.reference,
    perLayer: r.bool('per-layer'),
    tolerance: s.tolerance,
    outputs: r
      .raw('outputs')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
    layers: r.raw('layers'),
  };
  if (r.stage === 'convert' && c.perLayer && !c.reference) fail('per-layer', 'needs a reference directory (input "reference")');
  return c;
}
