import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { spatialParam } from './common';

/**
 * Pooling (MAX, AVE, global) with Caffe's geometry: output size rounded up (round_mode CEIL, the default),
 * minus the last window when it would start inside the padding. Expressed with explicit end padding so the
 * ONNX op (floor mode) reproduces Caffe exactly. AVE divides by the window clipped to the padded input
 * (padding counts, the extra ceil region does not): zero Pad + AveragePool(count_include_pad=0).
 */
export const pooling: LayerHandler = {
  types: ['Pooling'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('pooling_param');
    const x = ctx.x;
    const nsp = x.shape.length - 2;
    if (nsp !== 2) ctx.unsupported(`Caffe pooling works on 4-D blobs; input is [${x.shape.join(', ')}]`);
    const method = p.pool as string;
    if (method === 'STOCHASTIC') ctx.unsupported('STOCHASTIC pooling is not supported');
    const isMax = method === 'MAX';
    if (p.global_pooling) {
      const raw = (ctx.layer.msg.pooling_param ?? {}) as Record<string, unknown>;
      if ('kernel_size' in raw || 'kernel_h' in raw || 'kernel_w' in raw) ctx.fail('with global_pooling the kernel size cannot be specified');
      ctx.g.node(isMax ? 'GlobalMaxPool' : 'GlobalAveragePool', [x.name], [ctx.out()], {}, ctx.layer.name);
      return [[x.shape[0], x.shape[1], 1, 1]];
    }
    const k = spatialParam(ctx, 'pooling_param', 'kernel', 2, undefined);
    const pad = spatialParam(ctx, 'pooling_param', 'pad', 2, 0);
    const stride = spatialParam(ctx, 'pooling_param', 'stride', 2, 1);
    if (k.some((v) => v < 1) || stride.some((v) => v < 1)) ctx.fail('kernel and stride must be positive');
    if (pad.some((v, i) => v >= k[i])) ctx.fail(`pad [${pad}] must be smaller than kernel [${k}]`);
    const ceil = (p.round_mode as string) !== 'FLOOR';
    const dims = [2, 3].map((a) => ctx.staticDim(x.shape, a, 'pooling'));
    const out = dims.map((H, i) => {
      const span = (H + 2 * pad[i] - k[i]) / stride[i];
      let o = (ceil ? Math.ceil(span) : Math.floor(span)) + 1;
      if (pad[i] > 0 && (o - 1) * stride[i] >= H + pad[i]) o--;
      if (o < 1) ctx.fail(`kernel ${k[i]} does not fit input size ${H}`);
      return o;
    });
    const common = { kernel_shape: attr.ints(k), strides: attr.ints(stride) };
    if (isMax) {
      const end = dims.map((H, i) => Math.max(0, (out[i] - 1) * stride[i] + k[i] - H - pad[i]));
      ctx.g.node('MaxPool', [x.name], [ctx.out()], { ...common, pads: attr.ints([...pad, ...end]) }, ctx.layer.name);
    } else {
      let src = x.name;
      if (pad.some((v) => v > 0)) {
        src = ctx.tmp('pad');
        const pads = ctx.g.int64Init(`${ctx.layer.name}/pads`, [0, 0, pad[0], pad[1], 0, 0, pad[0], pad[1]]);
        ctx.g.node('Pad', [x.name, pads], [src], { mode: attr.s('constant') });
      }
      const end = dims.map((H, i) => Math.max(0, (out[i] - 1) * stride[i] + k[i] - (H + 2 * pad[i])));
      ctx.g.node('AveragePool', [src], [ctx.out()], { ...common, pads: attr.ints([0, 0, ...end]), count_include_pad: attr.i(0) }, ctx.layer.name);
    }
    return [[x.shape[0], x.shape[1], ...out]];
  },
};
