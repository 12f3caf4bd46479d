import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { scalar } from './common';

/**
 * LRN. ACROSS_CHANNELS → ONNX LRN (bias = k). WITHIN_CHANNEL follows Caffe's decomposition:
 * x · (1 + alpha · avgpool(x², local_size, pad (size-1)/2))^(-beta); Caffe does not use k there.
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
    const pw = ctx.tmp('pow');
    ctx.g.node('Pow', [shifted, scalar(ctx, 'neg_beta', -beta)], [pw]);
    ctx.g.node('Mul', [x.name, pw], [ctx.out()], {}, ctx.layer.name);
    return [x.shape];
  },
};
