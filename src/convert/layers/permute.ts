import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/**
 * Permute (SSD fork): the axes reordered as `order`; axes it leaves out follow in their original order (the fork's
 * PermuteLayer::LayerSetUp). ONNX Transpose.
 */
export const permute: LayerHandler = {
  types: ['Permute'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const rank = ctx.x.shape.length;
    const order = ((ctx.params('permute_param').order as number[] | undefined) ?? []).slice();
    for (const o of order) {
      if (o >= rank) ctx.fail(`permute_param.order ${o} is out of range for a ${rank}-D input`);
    }
    const dup = order.find((o, i) => order.indexOf(o) !== i);
    if (dup !== undefined) ctx.fail(`permute_param.order has ${dup} twice`);
    for (let a = 0; a < rank; a++) if (!order.includes(a)) order.push(a);
    ctx.g.node('Transpose', [ctx.x.name], [ctx.out()], { perm: attr.ints(order) }, ctx.layer.name);
    return [order.map((a) => ctx.x.shape[a])];
  },
};
