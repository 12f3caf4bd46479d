import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { reshape } from './common';

/**
 * ArgMax (top_k, out_max_val, axis). Caffe outputs indices as floats. Without `axis` each item is flattened
 * and the top is [N, 1, top_k] (indices) or [N, 2, top_k] (indices, then values) padded with 1s to the input rank.
 */
export const argmax: LayerHandler = {
  types: ['ArgMax'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('argmax_param');
    const raw = (ctx.layer.msg.argmax_param ?? {}) as Record<string, unknown>;
    const x = ctx.x;
    const k = p.top_k as number;
    const outMax = p.out_max_val as boolean;
    const n = ctx.layer.name;
    const kName = ctx.g.int64Init(`${n}/k`, [k]);
    if ('axis' in raw) {
      const axis = ctx.axis(p.axis as number, x.shape.length);
      if (k < 1 || k > ctx.staticDim(x.shape, axis, 'ArgMax')) ctx.fail(`top_k ${k} must be between 1 and the size of axis ${axis}`);
      const values = ctx.tmp('values');
      const indices = ctx.tmp('indices');
      ctx.g.node('TopK', [x.name, kName], [values, indices], { axis: attr.i(axis), largest: attr.i(1), sorted: attr.i(1) });
      if (outMax) ctx.g.node('Identity', [values], [ctx.out()], {}, n);
      else ctx.g.node('Cast', [indices], [ctx.out()], { to: attr.i(1) }, n);
      return [x.shape.map((d, i) => (i === axis ? k : d))];
    }
    const inner = x.shape.slice(1).reduce((a: number, _d, i) => a * ctx.staticDim(x.shape, i + 1, 'ArgMax'), 1);
    if (k < 1 || k > inner) ctx.fail(`top_k ${k} must be between 1 and ${inner}`);
    const flat = ctx.tmp('flatten');
    ctx.g.node('Flatten', [x.name], [flat], { axis: attr.i(1) });
    const values = ctx.tmp('values');
    const indices = ctx.tmp('indices');
    ctx.g.node('TopK', [flat, kName], [values, indices], { axis: attr.i(1), largest: attr.i(1), sorted: attr.i(1) });
    const idx = ctx.tmp('indices_f');
    ctx.g.node('Cast', [indices], [idx], { to: attr.i(1) });
    let joined = idx;
    if (outMax) {
      joined = ctx.tmp('joined');
      ctx.g.node('Concat', [idx, values], [joined], { axis: attr.i(1) });
    }
    const rank = Math.max(3, x.shape.length);
    const out: Shape = [x.shape[0], outMax ? 2 : 1, k, ...Array(rank - 3).fill(1)];
    reshape(ctx, { name: joined, shape: [x.shape[0], (outMax ? 2 : 1) * k] }, out, ctx.out());
    return [out];
  },
};
