import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/** Softmax over one axis (opset 13 semantics match Caffe: the other axes are independent). */
export const softmax: LayerHandler = {
  types: ['Softmax'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const axis = ctx.axis(ctx.params('softmax_param').axis as number, ctx.x.shape.length);
    ctx.g.node('Softmax', [ctx.x.name], [ctx.out()], { axis: attr.i(axis) }, ctx.layer.name);
    return [ctx.x.shape];
  },
};
