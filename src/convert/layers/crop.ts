import { Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/** Crop bottom[0] to the shape of bottom[1] from `axis` on, starting at `offset` (one for all, or one per axis). */
export const crop: LayerHandler = {
  types: ['Crop'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(2, 1);
    const p = ctx.params('crop_param');
    const [x, ref] = ctx.inputs;
    const rank = x.shape.length;
    if (ref.shape.length !== rank) ctx.fail(`bottom[1] rank ${ref.shape.length} differs from bottom[0] rank ${rank}`);
    const axis = ctx.axis(p.axis as number, rank);
    const offsets = p.offset as number[];
    const n = rank - axis;
    if (offsets.length > 1 && offsets.length !== n) ctx.fail(`${offsets.length} offsets for ${n} cropped axes`);
    const starts: number[] = [];
    const ends: number[] = [];
    const axes: number[] = [];
    const out: Shape = x.shape.slice();
    for (let i = axis; i < rank; i++) {
      const off = offsets.length === 0 ? 0 : offsets.length === 1 ? offsets[0] : offsets[i - axis];
      const size = ctx.staticDim(ref.shape, i, 'crop');
      const have = ctx.staticDim(x.shape, i, 'crop');
      if (off + size > have) ctx.fail(`crop of size ${size} at offset ${off} exceeds axis ${i} of size ${have}`);
      starts.push(off);
      ends.push(off + size);
      axes.push(i);
      out[i] = size;
    }
    const n0 = ctx.layer.name;
    ctx.g.node(
      'Slice',
      [x.name, ctx.g.int64Init(`${n0}/starts`, starts), ctx.g.int64Init(`${n0}/ends`, ends), ctx.g.int64Init(`${n0}/axes`, axes)],
      [ctx.out()],
      {},
      n0,
    );
    return [out];
  },
};
