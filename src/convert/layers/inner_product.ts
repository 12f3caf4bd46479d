import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { reshape } from './common';
import { FloatData } from '../floatdata';

/** InnerProduct (axis, transpose, bias_term) → Flatten + Gemm (axis 1) or Reshape + MatMul + Add. */
export const innerProduct: LayerHandler = {
  types: ['InnerProduct'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('inner_product_param');
    const x = ctx.x;
    const axis = ctx.axis(p.axis as number, x.shape.length);
    const numOutput = p.num_output as number;
    if (!numOutput) ctx.fail('inner_product_param.num_output is required');
    const K = x.shape.slice(axis).reduce((a: number, _d, i) => a * ctx.staticDim(x.shape, axis + i, 'inner product'), 1);
    const transpose = p.transpose as boolean;
    const biasTerm = p.bias_term as boolean;
    const expected = [{ name: 'weights', shape: transpose ? [K, numOutput] : [numOutput, K] }];
    if (biasTerm) expected.push({ name: 'bias', shape: [numOutput] });
    const [w, b] = ctx.weights(expected);
    const outShape: Shape = [...x.shape.slice(0, axis), numOutput];
    if (axis === 1) {
      const flat = ctx.tmp('flatten');
      ctx.g.node('Flatten', [x.name], [flat], { axis: attr.i(1) });
      const inputs = [flat, ctx.g.floatInit(`${ctx.layer.name}/W`, expected[0].shape, w)];
      if (biasTerm) inputs.push(ctx.g.floatInit(`${ctx.layer.name}/B`, [numOutput], b));
      ctx.g.node('Gemm', inputs, [ctx.out()], { transB: attr.i(transpose ? 0 : 1) }, ctx.layer.name);
      return [outShape];
    }
    // General axis: [d0..d(axis-1), K] x W^T
    const flat = ctx.tmp('reshape');
    reshape(ctx, x, [...x.shape.slice(0, axis), K], flat);
    let wt: FloatData | Float32Array = w;
    if (!transpose) {
      const src = w.values;
      const t = new Float32Array(K * numOutput);
      for (let o = 0; o < numOutput; o++) for (let i = 0; i < K; i++) t[i * numOutput + o] = src[o * K + i];
      wt = t;
    }
    const wName = ctx.g.floatInit(`${ctx.layer.name}/W`, [K, numOutput], wt);
    if (biasTerm) {
      const mm = ctx.tmp('matmul');
      ctx.g.node('MatMul', [flat, wName], [mm]);
      ctx.g.node('Add', [mm, ctx.g.floatInit(`${ctx.layer.name}/B`, [numOutput], b)], [ctx.out()], {}, ctx.layer.name);
    } else {
      ctx.g.node('MatMul', [flat, wName], [ctx.out()], {}, ctx.layer.name);
    }
    return [outShape];
  },
};
