import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { spatialParam } from './common';

/**
 * Pooling (MAX, AVE, global) with Caffe's geometry: output size rounded up (round_mode CEIL, the default; forks
 * spell it `ceil_mode: true`, and `ceil_mode: false` rounds down as round_mode FLOOR does),
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
    if (pad.some((v, i) => v >= k[i])) ctx.fail(`pad [${pad.join(',')}] must be smaller than kernel [${k.join(',')}]`);
    // BVLC's round_mode, or the forks' ceil_mode (false: floor); both given must agree
    const raw = (ctx.layer.msg.pooling_param ?? {}) as Record<string, unknown>;
    if ('ceil_mode' in raw && 'round_mode' in raw && (p.ceil_mode as boolean) !== ((p.round_mode as string) !== 'FLOOR'))
      ctx.fail(`ceil_mode: ${String(p.ceil_mode)} and round_mode: ${String(p.round_mode)} contradict each other; give one`);
    const ceil = 'ceil_mode' in raw ? (p.ceil_mode as boolean) : (p.round_mode as string) !== 'FLOOR';
    const dims = [2, 3].map((a) => ctx.staticDim(x.shape, a, 'pooling'));
    const out = dims.map((H, i) => {
      const span = (H + 2 * pad[i] - k[i]) / stride[i];
      let o = (ceil ? Math.ceil(span) : Math.floor(span)) + 1;
      if (pad[i] > 0 && (o - 1) * stride[i] >= H + pad[i]) o--;
      if (o < 1) ctx.fail(`kernel ${k[i]} does not fit input size ${H}`);
      return o;
    });
    const common = { kernel_shape: attr.ints(k), strides: attr.ints(stride) };
    const n = ctx.layer.name;
    // end padding that makes the floor-mode ONNX op produce Caffe's (ceil) output size
    const endMax = dims.map((H, i) => Math.max(0, (out[i] - 1) * stride[i] + k[i] - H - pad[i]));
    const endAve = dims.map((H, i) => Math.max(0, (out[i] - 1) * stride[i] + k[i] - (H + 2 * pad[i])));
    const padTo = (value: number, ends: number[]): string => {
      const padded = ctx.tmp('pad');
      const pads = ctx.g.int64Init(`${n}/pads`, [0, 0, pad[0], pad[1], 0, 0, pad[0] + ends[0], pad[1] + ends[1]]);
      const inputs = [x.name, pads];
      if (value !== 0) inputs.push(ctx.g.floatInit(`${n}/pad_value`, [], [value]));
      ctx.g.node('Pad', inputs, [padded], { mode: attr.s('constant') });
      return padded;
    };
    if (isMax) {
      if (endMax.every((e, i) => e < k[i])) {
        ctx.g.node('MaxPool', [x.name], [ctx.out()], { ...common, pads: attr.ints([...pad, ...endMax]) }, n);
      } else {
        // ONNX runtimes refuse pads ≥ kernel (stride > kernel with ceil overhang): pad explicitly with -FLT_MAX,
        // Caffe's initial max value; no window lies wholly in the padding
        ctx.g.node('MaxPool', [padTo(-3.4028234663852886e38, endMax)], [ctx.out()], common, n);
      }
    } else if (endAve.every((e, i) => e < k[i])) {
      const src = pad.some((v) => v > 0) ? padTo(0, [0, 0]) : x.name;
      ctx.g.node('AveragePool', [src], [ctx.out()], { ...common, pads: attr.ints([0, 0, ...endAve]), count_include_pad: attr.i(0) }, n);
    } else {
      // Same limit for AVE: sum over a zero-padded input, then divide by Caffe's own window sizes, computed here
      // (window clipped to [-pad, H + pad), so padding counts and the ceil overhang does not)
      const pooled = ctx.tmp('window_mean');
      ctx.g.node('AveragePool', [padTo(0, endAve)], [pooled], common);
      const scale = new Float32Array(out[0] * out[1]);
      for (let i = 0; i < out[0]; i++) {
        const h = Math.min(i * stride[0] - pad[0] + k[0], dims[0] + pad[0]) - (i * stride[0] - pad[0]);
        for (let j = 0; j < out[1]; j++) {
          const w = Math.min(j * stride[1] - pad[1] + k[1], dims[1] + pad[1]) - (j * stride[1] - pad[1]);
          scale[i * out[1] + j] = (k[0] * k[1]) / (h * w);
        }
      }
      ctx.g.node('Mul', [pooled, ctx.g.floatInit(`${n}/window_scale`, [out[0], out[1]], scale)], [ctx.out()], {}, n);
    }
    return [[x.shape[0], x.shape[1], ...out]];
  },
};
