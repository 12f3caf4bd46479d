import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { scalar } from './common';

/** Reduction over all axes from `axis` on: SUM, ASUM, SUMSQ, MEAN, times coeff. */
export const reduction: LayerHandler = {
  types: ['Reduction'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('reduction_param');
    const x = ctx.x;
    const axis = ctx.axis(p.axis as number, x.shape.length);
    const axes = x.shape.map((_, i) => i).filter((i) => i >= axis);
    const op = p.operation as string;
    const coeff = p.coeff as number;
    const n = ctx.layer.name;
    const red = coeff === 1 ? ctx.out() : ctx.tmp('reduced');
    if (op === 'SUM') {
      ctx.g.node('ReduceSum', [x.name, ctx.g.int64Init(`${n}/axes`, axes)], [red], { keepdims: attr.i(0) }, coeff === 1 ? n : undefined);
    } else {
      const onnxOp = op === 'ASUM' ? 'ReduceL1' : op === 'SUMSQ' ? 'ReduceSumSquare' : 'ReduceMean';
      ctx.g.node(onnxOp, [x.name], [red], { axes: attr.ints(axes), keepdims: attr.i(0) }, coeff === 1 ? n : undefined);
    }
    if (coeff !== 1) ctx.g.node('Mul', [red, scalar(ctx, 'coeff', coeff)], [ctx.out()], {}, n);
    return [x.shape.slice(0, axis)];
  },
};
