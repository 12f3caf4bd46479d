import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { reshape } from './common';

/**
 * TopK with Caffe's tie-break: Caffe partial-sorts (value, index) pairs with std::greater, so among equal
 * values the larger index comes first; ONNX TopK prefers the smaller index. Reversing the axis first and
 * mapping indices back (len-1-i) gives Caffe's order. Returns [values, indices as float].
 */
function caffeTopK(ctx: LayerContext, input: string, axis: number, len: number, k: number): [string, string] {
  const n = ctx.layer.name;
  const rev = ctx.tmp('reversed');
  ctx.g.node(
    'Slice',
    [
      input,
      ctx.g.int64Init(`${n}/rev_starts`, [-1]),
      ctx.g.int64Init(`${n}/rev_ends`, [-(2 ** 53) + 1]),
      ctx.g.int64Init(`${n}/rev_axes`, [axis]),
      ctx.g.int64Init(`${n}/rev_steps`, [-1]),
    ],
    [rev],
  );
  const values = ctx.tmp('values');
  const revIdx = ctx.tmp('rev_indices');
  ctx.g.node('TopK', [rev, ctx.g.int64Init(`${n}/k`, [k])], [values, revIdx], { axis: attr.i(axis), largest: attr.i(1), sorted: attr.i(1) });
  const idx = ctx.tmp('indices');
  ctx.g.node('Sub', [ctx.g.int64Init(`${n}/last`, [len - 1]), revIdx], [idx]);
  const idxF = ctx.tmp('indices_f');
  ctx.g.node('Cast', [idx], [idxF], { to: attr.i(1) });
  return [values, idxF];
}

/**
 * ArgMax (top_k, out_max_val, axis). Caffe outputs indices as floats. Without `axis` each item is flattened
 * and the top is [N, 1, top_k] (indices) or [N, 2, top_k] (indices, then values), padded with 1s to the input rank.
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
    if ('axis' in raw) {
      const axis = ctx.axis(p.axis as number, x.shape.length);
      const len = ctx.staticDim(x.shape, axis, 'ArgMax');
      if (k < 1 || k > len) ctx.fail(`top_k ${k} must be between 1 and the size of axis ${axis}`);
      const [values, indices] = caffeTopK(ctx, x.name, axis, len, k);
      ctx.g.node('Identity', [outMax ? values : indices], [ctx.out()], {}, n);
      return [x.shape.map((d, i) => (i === axis ? k : d))];
    }
    const inner = x.shape.slice(1).reduce((a: number, _d, i) => a * ctx.staticDim(x.shape, i + 1, 'ArgMax'), 1);
    if (k < 1 || k > inner) ctx.fail(`top_k ${k} must be between 1 and ${inner}`);
    const flat = ctx.tmp('flatten');
    ctx.g.node('Flatten', [x.name], [flat], { axis: attr.i(1) });
    const [values, indices] = caffeTopK(ctx, flat, 1, inner, k);
    let joined = indices;
    if (outMax) {
      joined = ctx.tmp('joined');
      ctx.g.node('Concat', [indices, values], [joined], { axis: attr.i(1) });
    }
    const rank = Math.max(3, x.shape.length);
    const out: Shape = [x.shape[0], outMax ? 2 : 1, k, ...Array<number>(rank - 3).fill(1)];
    reshape(ctx, { name: joined, shape: [x.shape[0], (outMax ? 2 : 1) * k] }, out, ctx.out());
    return [out];
  },
};
