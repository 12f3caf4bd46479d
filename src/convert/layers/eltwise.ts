import { Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { sameShape, scalar } from './common';

/** Eltwise: SUM (with per-bottom coeff), PROD, MAX over two or more same-shaped bottoms. */
export const eltwise: LayerHandler = {
  types: ['Eltwise'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity([2, Infinity], 1);
    const p = ctx.params('eltwise_param');
    const first = ctx.inputs[0];
    ctx.inputs.forEach((v, i) => {
      if (!sameShape(v.shape, first.shape)) ctx.fail(`bottom ${i} shape [${v.shape.join(', ')}] differs from bottom 0 [${first.shape.join(', ')}]`);
    });
    const op = p.operation as string;
    const coeff = p.coeff as number[];
    let names = ctx.inputs.map((v) => v.name);
    if (op === 'SUM') {
      if (coeff.length > 0 && coeff.length !== names.length) ctx.fail(`eltwise_param has ${coeff.length} coeff values for ${names.length} bottoms`);
      names = names.map((nm, i) => {
        if (coeff.length === 0 || coeff[i] === 1) return nm;
        const out = ctx.tmp(`coeff${i}`);
        ctx.g.node('Mul', [nm, scalar(ctx, `coeff${i}`, coeff[i])], [out]);
        return out;
      });
      ctx.g.node('Sum', names, [ctx.out()], {}, ctx.layer.name);
    } else {
      if (coeff.length > 0) ctx.fail('coeff is only allowed for SUM');
      ctx.g.node(
        op === 'PROD' ? 'Mul' : 'Max',
        op === 'PROD' ? names.slice(0, 2) : names,
        [op === 'PROD' && names.length > 2 ? ctx.tmp('prod') : ctx.out()],
        {},
        ctx.layer.name,
      );
      if (op === 'PROD' && names.length > 2) {
        // left fold: ((a*b)*c)*d, as Caffe multiplies in order
        let acc = ctx.g.nodes[ctx.g.nodes.length - 1].outputs[0];
        for (let i = 2; i < names.length; i++) {
          const out = i === names.length - 1 ? ctx.out() : ctx.tmp('prod');
          ctx.g.node('Mul', [acc, names[i]], [out]);
          acc = out;
        }
      }
    }
    return [first.shape];
  },
};
