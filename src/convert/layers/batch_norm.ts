import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';

/**
 * BatchNorm with stored statistics. Caffe keeps running sums: blobs = [mean·s, var·s, s] where s is the
 * moving-average scale factor; the statistics are the first two blobs divided by s (0 when s is 0),
 * computed in float32 as Caffe does. → BatchNormalization(scale 1, bias 0).
 */
export const batchNorm: LayerHandler = {
  types: ['BatchNorm'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('batch_norm_param');
    const raw = (ctx.layer.msg.batch_norm_param ?? {}) as Record<string, unknown>;
    if ('use_global_stats' in raw && raw.use_global_stats === false) {
      ctx.unsupported('use_global_stats: false normalises with batch statistics at test time; only stored statistics are supported');
    }
    // forks: fillers only initialise training; a scale and bias inside the layer change its output
    for (const f of ['scale_filler', 'bias_filler'])
      if (f in raw) ctx.note(`batch_norm_param.${f} (a field of NVIDIA Caffe) only initialises training: accepted, it does not change inference`);
    if (raw.scale_bias === true)
      ctx.unsupported(
        'batch_norm_param.scale_bias: true (NVIDIA Caffe: a learned scale and bias inside BatchNorm) is not supported; a BVLC net follows BatchNorm with a Scale layer',
      );
    const x = ctx.x;
    if (x.shape.length < 2) ctx.fail(`input [${x.shape.join(', ')}] needs a channel axis`);
    const C = ctx.staticDim(x.shape, 1, 'BatchNorm');
    const [meanData, varData, sfData] = ctx.weights([
      { name: 'mean', shape: [C] },
      { name: 'variance', shape: [C] },
      { name: 'scale factor', shape: [1] },
    ]);
    const [mean, variance, sf] = [meanData.values, varData.values, sfData.values];
    const factor = sf[0] === 0 ? 0 : Math.fround(1 / sf[0]);
    const m = new Float32Array(C);
    const v = new Float32Array(C);
    for (let i = 0; i < C; i++) {
      m[i] = Math.fround(mean[i] * factor);
      v[i] = Math.fround(variance[i] * factor);
    }
    const n = ctx.layer.name;
    ctx.g.node(
      'BatchNormalization',
      [
        x.name,
        ctx.g.floatInit(`${n}/scale`, [C], new Float32Array(C).fill(1)),
        ctx.g.floatInit(`${n}/bias`, [C], new Float32Array(C)),
        ctx.g.floatInit(`${n}/mean`, [C], m),
        ctx.g.floatInit(`${n}/var`, [C], v),
      ],
      [ctx.out()],
      { epsilon: attr.f(p.eps as number) },
      n,
    );
    return [x.shape];
  },
};
