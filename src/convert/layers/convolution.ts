import { Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { convGeometry, emitConv } from './common';

/** Convolution (group incl. depthwise, dilation, kernel/pad/stride incl. *_h/*_w, bias_term) → Conv. */
export const convolution: LayerHandler = {
  types: ['Convolution'],
  convert(ctx: LayerContext): Shape[] {
    const g = convGeometry(ctx);
    const x = ctx.x;
    const spatial = x.shape.slice(2).map((_, i) => {
      const H = ctx.staticDim(x.shape, 2 + i, 'convolution');
      const ext = g.dilation[i] * (g.kernel[i] - 1) + 1;
      const o = Math.floor((H + 2 * g.pad[i] - ext) / g.stride[i]) + 1;
      if (o < 1) ctx.fail(`kernel extent ${ext} does not fit input size ${H} with pad ${g.pad[i]}`);
      return o;
    });
    emitConv(ctx, 'Conv', g, [g.numOutput, g.C / g.group, ...g.kernel]);
    return [[x.shape[0], g.numOutput, ...spatial]];
  },
};
