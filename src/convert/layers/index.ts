import { LayerHandler } from './types';
import { convolution } from './convolution';
import { deconvolution } from './deconvolution';
import { innerProduct } from './inner_product';
import { pooling } from './pooling';
import { lrn } from './lrn';
import { relu } from './relu';
import { prelu } from './prelu';
import { sigmoid, tanh, absval, bnll, dropout, elu, power, exp, log, threshold } from './elementwise';
import { softmax } from './softmax';
import { batchNorm } from './batch_norm';
import { scale, bias } from './scale';
import { eltwise } from './eltwise';
import { concat } from './concat';
import { slice } from './slice';
import { split } from './split';
import { flatten } from './flatten';
import { reshapeLayer } from './reshape';
import { crop } from './crop';
import { argmax } from './argmax';
import { reduction } from './reduction';
import { tile } from './tile';
import { permute } from './permute';
import { normalize } from './normalize';
import { priorBox } from './prior_box';
import { detectionOutput } from './detection_output';

/**
 * The layer registry: Caffe type name → handler. A new Caffe layer is one file exporting a LayerHandler,
 * added to this list.
 */
const HANDLERS: LayerHandler[] = [
  convolution,
  deconvolution,
  innerProduct,
  pooling,
  lrn,
  relu,
  prelu,
  sigmoid,
  tanh,
  absval,
  bnll,
  dropout,
  elu,
  power,
  exp,
  log,
  threshold,
  softmax,
  batchNorm,
  scale,
  bias,
  eltwise,
  concat,
  slice,
  split,
  flatten,
  reshapeLayer,
  crop,
  argmax,
  reduction,
  tile,
  permute,
  normalize,
  priorBox,
  detectionOutput,
];

export const REGISTRY: ReadonlyMap<string, LayerHandler> = new Map(HANDLERS.flatMap((h) => h.types.map((t) => [t, h] as const)));

/** Layer types that produce nothing at inference and are dropped. */
export const SKIPPED_TYPES = new Set(['Silence']);

export function supportedTypes(): string[] {
  return [...REGISTRY.keys(), 'Input'].sort();
}
