import { Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/** Tile: repeat the blob `tiles` times along `axis`. */
export const tile: LayerHandler = {
  types: ['Tile'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('tile_param');
    const x = ctx.x;
    const axis = ctx.axis(p.axis as number, x.shape.length);
    const tiles = p.tiles as number;
    if (!(tiles >= 1)) ctx.fail('tile_param.tiles must be a positive integer');
    const repeats = x.shape.map((_, i) => (i === axis ? tiles : 1));
    ctx.g.node('Tile', [x.name, ctx.g.int64Init(`${ctx.layer.name}/repeats`, repeats)], [ctx.out()], {}, ctx.layer.name);
    const d = x.shape[axis];
    return [x.shape.map((v, i) => (i === axis ? (typeof d === 'number' ? d * tiles : `${d}*${tiles}`) : v))];
  },
};
