import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { spatialParam } from './common';

/** Deconvolution (transposed convolution, Caffe weight layout [C_in, C_out/group, k...]) → ConvTranspose. */
export const deconvolution: LayerHandler = {
  types: ['Deconvolution'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('convolution_param');
    const x = ctx.x;
    if ((p.axis as number) !== 1) ctx.unsupported(`axis ${p.axis} is not supported (only channel axis 1)`);
    const nsp = x.shape.length - 2;
    if (nsp < 1) ctx.fail(`input [${x.shape.join(', ')}] has no spatial axes`);
    const C = ctx.staticDim(x.shape, 1, 'deconvolution');
    const numOutput = p.num_output as number;
    const group = p.group as number;
    if (!numOutput) ctx.fail('convolution_param.num_output is required');
    if (group < 1 || C % group !== 0 || numOutput % group !== 0) ctx.fail(`channels ${C} → ${numOutput} are not divisible by group ${group}`);
    const k = spatialParam(ctx, 'convolution_param', 'kernel', nsp, undefined);
    const pad = spatialParam(ctx, 'convolution_param', 'pad', nsp, 0);
    const stride = spatialParam(ctx, 'convolution_param', 'stride', nsp, 1);
    const dil = spatialParam(ctx, 'convolution_param', 'dilation', nsp, 1);
    const spatial = x.shape.slice(2).map((_, i) => {
      const H = ctx.staticDim(x.shape, 2 + i, 'deconvolution');
      const o = stride[i] * (H - 1) + dil[i] * (k[i] - 1) + 1 - 2 * pad[i];
      if (o < 1) ctx.fail(`output size ${o} is not positive`);
      return o;
    });
    const biasTerm = p.bias_term as boolean;
    const expected = [{ name: 'weights', shape: [C, numOutput / group, ...k] }];
    if (biasTerm) expected.push({ name: 'bias', shape: [numOutput] });
    const [w, b] = ctx.weights(expected);
    const inputs = [x.name, ctx.g.floatInit(`${ctx.layer.name}/W`, expected[0].shape, w)];
    if (biasTerm) inputs.push(ctx.g.floatInit(`${ctx.layer.name}/B`, [numOutput], b));
    ctx.g.node('ConvTranspose', inputs, [ctx.out()], {
      kernel_shape: attr.ints(k),
      pads: attr.ints([...pad, ...pad]),
      strides: attr.ints(stride),
      dilations: attr.ints(dil),
      group: attr.i(group),
      output_shape: attr.ints(spatial),
    }, ctx.layer.name);
    return [[x.shape[0], numOutput, ...spatial]];
  },
};
