import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/**
 * Normalize (SSD fork's NormalizeLayer, `norm_param`): x / sqrt(Σx² + eps), the sum over C·H·W per item
 * (across_spatial) or over C at each position, eps inside the square root; then × the learned scale, one value
 * (channel_shared) or one per channel.
 */
export const normalize: LayerHandler = {
  types: ['Normalize'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('norm_param');
    const x = ctx.x;
    const rank = x.shape.length;
    if (rank < 2) ctx.fail(`Normalize needs at least 2 axes; input is [${x.shape.join(', ')}]`);
    const n = ctx.layer.name;
    const axes = p.across_spatial ? Array.from({ length: rank - 1 }, (_, i) => i + 1) : [1];
    const sumsq = ctx.tmp('sumsq');
    ctx.g.node('ReduceSumSquare', [x.name], [sumsq], { axes: attr.ints(axes), keepdims: attr.i(1) });
    const withEps = ctx.tmp('sumsq_eps');
    ctx.g.node('Add', [sumsq, ctx.g.floatInit(`${n}/eps`, [], [p.eps as number])], [withEps]);
    const norm = ctx.tmp('norm');
    ctx.g.node('Sqrt', [withEps], [norm]);
    const normalized = ctx.tmp('normalized');
    ctx.g.node('Div', [x.name, norm], [normalized]);
    const C = ctx.staticDim(x.shape, 1, 'Normalize');
    const shared = p.channel_shared as boolean;
    const [scale] = ctx.weights([{ name: 'scale', shape: [shared ? 1 : C] }]);
    const dims = shared ? [] : [C, ...Array<number>(rank - 2).fill(1)];
    ctx.g.node('Mul', [normalized, ctx.g.floatInit(`${n}/scale`, dims, scale)], [ctx.out()], {}, n);
    return [x.shape];
  },
};
