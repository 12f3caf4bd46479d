import { Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/** PReLU: one learned slope per channel (or one shared), broadcast as [C, 1, ...]. */
export const prelu: LayerHandler = {
  types: ['PReLU'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const x = ctx.x;
    if (x.shape.length < 2) ctx.fail(`input [${x.shape.join(', ')}] needs a channel axis`);
    const shared = ctx.params('prelu_param').channel_shared as boolean;
    const C = shared ? 1 : ctx.staticDim(x.shape, 1, 'PReLU');
    // Caffe stores a shared slope as a 0-D blob
    const [slope] = ctx.weights([{ name: 'slope', shape: shared ? [] : [C] }]);
    const dims = shared ? [1] : [C, ...Array<number>(x.shape.length - 2).fill(1)];
    ctx.g.node('PRelu', [x.name, ctx.g.floatInit(`${ctx.layer.name}/slope`, dims, slope)], [ctx.out()], {}, ctx.layer.name);
    return [x.shape];
  },
};
