import { attr, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { scalar } from './common';

/** Parameter-free element-wise layers, one ONNX op each. */
const simple = (type: string, op: string): LayerHandler => ({
  types: [type],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    ctx.g.node(op, [ctx.x.name], [ctx.out()], {}, ctx.layer.name);
    return [ctx.x.shape];
  },
});

export const sigmoid = simple('Sigmoid', 'Sigmoid');
export const tanh = simple('TanH', 'Tanh');
export const absval = simple('AbsVal', 'Abs');
/** BNLL: log(1 + exp(x)) */
export const bnll = simple('BNLL', 'Softplus');
/**
 * Dropout is the identity at test time (BVLC Caffe scales by 1/(1 - ratio) during training). Forks' `scale_train:
 * false` moves that scaling to test time: × (1 - ratio), as OpenCV's reader applies it too. `sample_weights_test`
 * (stochastic at test time) cannot be converted and is refused, naming the field.
 */
export const dropout: LayerHandler = {
  types: ['Dropout'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('dropout_param');
    if (p.sample_weights_test)
      ctx.unsupported('dropout_param.sample_weights_test: true samples at test time (a fork field); modelship converts deterministic inference only');
    const ratio = p.dropout_ratio as number;
    if (p.scale_train === false) {
      if (!(ratio >= 0 && ratio < 1)) ctx.fail(`dropout_ratio must be in [0, 1), got ${ratio}`);
      ctx.g.node('Mul', [ctx.x.name, scalar(ctx, 'keep', 1 - ratio)], [ctx.out()], {}, ctx.layer.name);
    } else {
      ctx.g.node('Identity', [ctx.x.name], [ctx.out()], {}, ctx.layer.name);
    }
    return [ctx.x.shape];
  },
};

export const elu: LayerHandler = {
  types: ['ELU'],
  convert(ctx) {
    ctx.arity(1, 1);
    ctx.g.node('Elu', [ctx.x.name], [ctx.out()], { alpha: attr.f(ctx.params('elu_param').alpha as number) }, ctx.layer.name);
    return [ctx.x.shape];
  },
};

/** Emit y = op_n(...op_1(x)) as a chain that ends in ctx.out(). Empty chain → Identity. */
function chain(ctx: LayerContext, steps: { op: string; operand?: string }[]): void {
  if (steps.length === 0) steps = [{ op: 'Identity' }];
  let cur = ctx.x.name;
  steps.forEach((s, i) => {
    const last = i === steps.length - 1;
    const out = last ? ctx.out() : ctx.tmp(s.op.toLowerCase());
    ctx.g.node(s.op, s.operand ? [cur, s.operand] : [cur], [out], {}, last ? ctx.layer.name : undefined);
    cur = out;
  });
}

/** Power: y = (shift + scale · x) ^ power */
export const power: LayerHandler = {
  types: ['Power'],
  convert(ctx) {
    ctx.arity(1, 1);
    const p = ctx.params('power_param');
    const steps: { op: string; operand?: string }[] = [];
    if ((p.scale as number) !== 1) steps.push({ op: 'Mul', operand: scalar(ctx, 'scale', p.scale as number) });
    if ((p.shift as number) !== 0) steps.push({ op: 'Add', operand: scalar(ctx, 'shift', p.shift as number) });
    if ((p.power as number) !== 1) steps.push({ op: 'Pow', operand: scalar(ctx, 'power', p.power as number) });
    chain(ctx, steps);
    return [ctx.x.shape];
  },
};

/** Exp: y = base ^ (shift + scale · x), base -1 meaning e */
export const exp: LayerHandler = {
  types: ['Exp'],
  convert(ctx) {
    ctx.arity(1, 1);
    const p = ctx.params('exp_param');
    const base = p.base as number;
    if (base !== -1 && !(base > 0)) ctx.fail(`exp_param.base must be positive or -1, got ${base}`);
    const lnBase = base === -1 ? 1 : Math.log(base);
    const scale = (p.scale as number) * lnBase;
    const shift = (p.shift as number) * lnBase;
    const steps: { op: string; operand?: string }[] = [];
    if (scale !== 1) steps.push({ op: 'Mul', operand: scalar(ctx, 'scale', scale) });
    if (shift !== 0) steps.push({ op: 'Add', operand: scalar(ctx, 'shift', shift) });
    steps.push({ op: 'Exp' });
    chain(ctx, steps);
    return [ctx.x.shape];
  },
};

/** Log: y = log_base(shift + scale · x), base -1 meaning e */
export const log: LayerHandler = {
  types: ['Log'],
  convert(ctx) {
    ctx.arity(1, 1);
    const p = ctx.params('log_param');
    const base = p.base as number;
    if (base !== -1 && !(base > 0 && base !== 1)) ctx.fail(`log_param.base must be positive (not 1) or -1, got ${base}`);
    const steps: { op: string; operand?: string }[] = [];
    if ((p.scale as number) !== 1) steps.push({ op: 'Mul', operand: scalar(ctx, 'scale', p.scale as number) });
    if ((p.shift as number) !== 0) steps.push({ op: 'Add', operand: scalar(ctx, 'shift', p.shift as number) });
    steps.push({ op: 'Log' });
    if (base !== -1) steps.push({ op: 'Mul', operand: scalar(ctx, 'inv_ln_base', 1 / Math.log(base)) });
    chain(ctx, steps);
    return [ctx.x.shape];
  },
};

/** Threshold: y = x > threshold ? 1 : 0 */
export const threshold: LayerHandler = {
  types: ['Threshold'],
  convert(ctx) {
    ctx.arity(1, 1);
    const gt = ctx.tmp('greater');
    ctx.g.node('Greater', [ctx.x.name, scalar(ctx, 'threshold', ctx.params('threshold_param').threshold as number)], [gt]);
    ctx.g.node('Cast', [gt], [ctx.out()], { to: attr.i(1) }, ctx.layer.name);
    return [ctx.x.shape];
  },
};
