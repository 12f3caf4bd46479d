import { attr, Dim, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/** Concat along `axis` (or the legacy `concat_dim`). */
export const concat: LayerHandler = {
  types: ['Concat'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity([1, Infinity], 1);
    const p = ctx.params('concat_param');
    const raw = (ctx.layer.msg.concat_param ?? {}) as Record<string, unknown>;
    if ('axis' in raw && 'concat_dim' in raw) ctx.fail('either axis or concat_dim may be given, not both');
    const first = ctx.inputs[0];
    const rank = first.shape.length;
    const axis = 'concat_dim' in raw ? (p.concat_dim as number) : ctx.axis(p.axis as number, rank);
    if (axis >= rank) ctx.fail(`concat_dim ${axis} is out of range for a ${rank}-D input`);
    const parts: Dim[] = [];
    for (const [i, v] of ctx.inputs.entries()) {
      if (v.shape.length !== rank || v.shape.some((d, j) => j !== axis && d !== first.shape[j])) {
        ctx.fail(`bottom ${i} shape [${v.shape.join(', ')}] does not match bottom 0 [${first.shape.join(', ')}] outside axis ${axis}`);
      }
      parts.push(v.shape[axis]);
    }
    const total = parts.every((d) => typeof d === 'number') ? parts.reduce((a, b) => a + b, 0) : parts.join('+');
    ctx.g.node(
      'Concat',
      ctx.inputs.map((v) => v.name),
      [ctx.out()],
      { axis: attr.i(axis) },
      ctx.layer.name,
    );
    return [first.shape.map((d, j) => (j === axis ? total : d))];
  },
};
