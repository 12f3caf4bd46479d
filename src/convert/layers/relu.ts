import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/** ReLU, with negative_slope → LeakyRelu. */
export const relu: LayerHandler = {
  types: ['ReLU'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const slope = ctx.params('relu_param').negative_slope as number;
    if (slope !== 0) ctx.g.node('LeakyRelu', [ctx.x.name], [ctx.out()], { alpha: attr.f(slope) }, ctx.layer.name);
    else ctx.g.node('Relu', [ctx.x.name], [ctx.out()], {}, ctx.layer.name);
    return [ctx.x.shape];
  },
};
