import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/** Slice along `axis` (legacy `slice_dim`) at `slice_point`s, or into equal parts → Split. */
export const slice: LayerHandler = {
  types: ['Slice'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, [1, Infinity]);
    const p = ctx.params('slice_param');
    const raw = (ctx.layer.msg.slice_param ?? {}) as Record<string, unknown>;
    const x = ctx.x;
    const axis = 'slice_dim' in raw && !('axis' in raw) ? (p.slice_dim as number) : ctx.axis(p.axis as number, x.shape.length);
    const dim = ctx.staticDim(x.shape, axis, 'slice');
    const tops = ctx.layer.tops.length;
    const points = p.slice_point as number[];
    let sizes: number[];
    if (points.length > 0) {
      if (points.length !== tops - 1) ctx.fail(`${points.length} slice_point(s) need ${points.length + 1} tops, found ${tops}`);
      const bounds = [0, ...points, dim];
      sizes = [];
      for (let i = 1; i < bounds.length; i++) {
        if (bounds[i] <= bounds[i - 1]) ctx.fail(`slice_point values must increase and stay inside (0, ${dim})`);
        sizes.push(bounds[i] - bounds[i - 1]);
      }
    } else {
      if (dim % tops !== 0) ctx.fail(`axis ${axis} of size ${dim} cannot be split evenly into ${tops} tops`);
      sizes = Array<number>(tops).fill(dim / tops);
    }
    const outs = ctx.layer.tops.map((_, i) => ctx.out(i));
    ctx.g.node('Split', [x.name, ctx.g.int64Init(`${ctx.layer.name}/split`, sizes)], outs, { axis: attr.i(axis) }, ctx.layer.name);
    return sizes.map((s) => x.shape.map((d, j) => (j === axis ? s : d)));
  },
};
