import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { convGeometry, emitConv } from './common';

/** Deconvolution (transposed convolution, Caffe weight layout [C_in, C_out/group, k...]) → ConvTranspose. */
export const deconvolution: LayerHandler = {
  types: ['Deconvolution'],
  convert(ctx: LayerContext): Shape[] {
    const g = convGeometry(ctx);
    const x = ctx.x;
    const spatial = x.shape.slice(2).map((_, i) => {
      const H = ctx.staticDim(x.shape, 2 + i, 'deconvolution');
      const o = g.stride[i] * (H - 1) + g.dilation[i] * (g.kernel[i] - 1) + 1 - 2 * g.pad[i];
      if (o < 1) ctx.fail(`output size ${o} is not positive`);
      return o;
    });
    emitConv(ctx, 'ConvTranspose', g, [g.C, g.numOutput / g.group, ...g.kernel], { output_shape: attr.ints(spatial) });
    return [[x.shape[0], g.numOutput, ...spatial]];
  },
};
