import { Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/** Split copies its bottom to every top; in ONNX a value may feed many nodes, so each top is an Identity. */
export const split: LayerHandler = {
  types: ['Split'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, [1, Infinity]);
    return ctx.layer.tops.map((_, i) => {
      ctx.g.node('Identity', [ctx.x.name], [ctx.out(i)], {}, `${ctx.layer.name}/${i}`);
      return ctx.x.shape;
    });
  },
};
