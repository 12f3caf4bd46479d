import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { product, reshape } from './common';

/** Flatten axes [axis, end_axis] into one. */
export const flatten: LayerHandler = {
  types: ['Flatten'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('flatten_param');
    const x = ctx.x;
    const rank = x.shape.length;
    const axis = ctx.axis(p.axis as number, rank);
    const end = ctx.axis(p.end_axis as number, rank, 'end_axis');
    if (end < axis) ctx.fail(`end_axis ${String(p.end_axis)} is before axis ${String(p.axis)}`);
    const out: Shape = [...x.shape.slice(0, axis), product(x.shape.slice(axis, end + 1)), ...x.shape.slice(end + 1)];
    if (end === rank - 1 && axis === 1) {
      ctx.g.node('Flatten', [x.name], [ctx.out()], { axis: attr.i(1) }, ctx.layer.name);
    } else {
      reshape(ctx, x, out, ctx.out());
    }
    return [out];
  },
};
