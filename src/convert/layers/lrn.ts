import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { scalar } from './common';

/**
 * LRN. ACROSS_CHANNELS → ONNX LRN (bias = k): the portable form, which CUDA and TensorRT run natively; the compile
 * stage rewrites it into primitive operators for the CPU where that measures faster (src/compile/lrn.ts).
 * WITHIN_CHANNEL follows Caffe's decomposition: x / (1 + alpha · avgpool(x², local_size, pad (size-1)/2))^beta
 * (Caffe's AVE pooling divides by size² everywhere at stride 1: count_include_pad); Caffe does not use k there.
 */
export const lrn: LayerHandler = {
  types: ['LRN'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('lrn_param');
    const x = ctx.x;
    const size = p.local_size as number;
    if (size % 2 !== 1) ctx.fail(`local_size ${size} must be odd`);
    if (x.shape.length !== 4) ctx.unsupported(`LRN works on 4-D blobs; input is [${x.shape.join(', ')}]`);
    const alpha = p.alpha as number;
    const beta = p.beta as number;
    if ((p.norm_region as string) === 'ACROSS_CHANNELS') {
      ctx.g.node('LRN', [x.name], [ctx.out()], { size: attr.i(size), alpha: attr.f(alpha), beta: attr.f(beta), bias: attr.f(p.k as number) }, ctx.layer.name);
      return [x.shape];
    }
    const pad = (size - 1) / 2;
    const sq = ctx.tmp('square');
    ctx.g.node('Mul', [x.name, x.name], [sq]);
    const avg = ctx.tmp('avg');
    ctx.g.node('AveragePool', [sq], [avg], { kernel_shape: attr.ints([size, size]), pads: attr.ints([pad, pad, pad, pad]), count_include_pad: attr.i(1) });
    const scaled = ctx.tmp('scaled');
    ctx.g.node('Mul', [avg, scalar(ctx, 'alpha', alpha)], [scaled]);
    const shifted = ctx.tmp('shifted');
    ctx.g.node('Add', [scaled, scalar(ctx, 'one', 1)], [shifted]);
    ctx.g.node('Div', [x.name, power(ctx, shifted, beta)], [ctx.out()], {}, ctx.layer.name);
    return [x.shape];
  },
};

/**
 * base^beta. Caffe's nets use beta 0.75, which is √b·√√b: two square roots cost a fraction of Pow's per-value
 * exp/log on ONNX Runtime's CPU kernels, within an ulp or two of it.
 */
function power(ctx: LayerContext, base: string, beta: number): string {
  if (beta === 1) return base;
  const out = ctx.tmp('pow');
  if (beta !== 0.5 && beta !== 0.75) {
    ctx.g.node('Pow', [base, scalar(ctx, 'beta', beta)], [out]);
    return out;
  }
  const root = beta === 0.5 ? out : ctx.tmp('sqrt');
  ctx.g.node('Sqrt', [base], [root]);
  if (beta === 0.5) return out;
  const root4 = ctx.tmp('sqrt4');
  ctx.g.node('Sqrt', [root], [root4]);
  ctx.g.node('Mul', [root, root4], [out]);
  return out;
}
