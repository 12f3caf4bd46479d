import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { spatialParam } from './common';

/** Convolution (group incl. depthwise, dilation, kernel/pad/stride incl. *_h/*_w, bias_term) → Conv. */
export const convolution: LayerHandler = {
  types: ['Convolution'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('convolution_param');
    const x = ctx.x;
    if ((p.axis as number) !== 1) ctx.unsupported(`axis ${p.axis} is not supported (only channel axis 1)`);
    const nsp = x.shape.length - 2;
    if (nsp < 1) ctx.fail(`input [${x.shape.join(', ')}] has no spatial axes`);
    const C = ctx.staticDim(x.shape, 1, 'convolution');
    const numOutput = p.num_output as number;
    const group = p.group as number;
    if (!numOutput) ctx.fail('convolution_param.num_output is required');
    if (group < 1 || C % group !== 0) ctx.fail(`input channels ${C} are not divisible by group ${group}`);
    if (numOutput % group !== 0) ctx.fail(`num_output ${numOutput} is not divisible by group ${group}`);
    const k = spatialParam(ctx, 'convolution_param', 'kernel', nsp, undefined);
    const pad = spatialParam(ctx, 'convolution_param', 'pad', nsp, 0);
    const stride = spatialParam(ctx, 'convolution_param', 'stride', nsp, 1);
    const dil = spatialParam(ctx, 'convolution_param', 'dilation', nsp, 1);
    if (k.some((v) => v < 1) || stride.some((v) => v < 1) || dil.some((v) => v < 1)) ctx.fail('kernel, stride and dilation must be positive');
    const spatial = x.shape.slice(2).map((_, i) => {
      const H = ctx.staticDim(x.shape, 2 + i, 'convolution');
      const ext = dil[i] * (k[i] - 1) + 1;
      const o = Math.floor((H + 2 * pad[i] - ext) / stride[i]) + 1;
      if (o < 1) ctx.fail(`kernel extent ${ext} does not fit input size ${H} with pad ${pad[i]}`);
      return o;
    });
    const biasTerm = p.bias_term as boolean;
    const expected = [{ name: 'weights', shape: [numOutput, C / group, ...k] }];
    if (biasTerm) expected.push({ name: 'bias', shape: [numOutput] });
    const [w, b] = ctx.weights(expected);
    const inputs = [x.name, ctx.g.floatInit(`${ctx.layer.name}/W`, expected[0].shape, w)];
    if (biasTerm) inputs.push(ctx.g.floatInit(`${ctx.layer.name}/B`, [numOutput], b));
    ctx.g.node('Conv', inputs, [ctx.out()], {
      kernel_shape: attr.ints(k),
      pads: attr.ints([...pad, ...pad]),
      strides: attr.ints(stride),
      dilations: attr.ints(dil),
      group: attr.i(group),
    }, ctx.layer.name);
    return [[x.shape[0], numOutput, ...spatial]];
  },
};
