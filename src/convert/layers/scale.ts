import { Shape, Value } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { reshape } from './common';
import { FloatData } from '../floatdata';

/**
 * The axes of bottom[0] that a Scale/Bias operand covers: [axis, axis + num_axes) for a learned operand,
 * or the shape of bottom[1]. Returns the operand's shape and the broadcastable shape (trailing 1s).
 */
function operandGeometry(ctx: LayerContext, x: Value, axisParam: number, numAxes: number, second?: Value): { shape: Shape; bcast: Shape } {
  const rank = x.shape.length;
  if (second && second.shape.length === 0) return { shape: [], bcast: [] };
  const axis = ctx.axis(axisParam, rank === 0 ? 1 : rank);
  let covered: Shape;
  if (second) {
    covered = second.shape;
    const ok = covered.every((d, i) => x.shape[axis + i] === d);
    if (!ok || axis + covered.length > rank)
      ctx.fail(`bottom[1] shape [${covered.join(', ')}] does not match bottom[0] [${x.shape.join(', ')}] at axis ${axis}`);
  } else {
    if (numAxes < -1) ctx.fail(`num_axes ${numAxes} must be -1 or non-negative`);
    const end = numAxes === -1 ? rank : axis + numAxes;
    if (end > rank) ctx.fail(`axis ${axis} + num_axes ${numAxes} exceeds the input rank ${rank}`);
    covered = x.shape.slice(axis, end);
  }
  return { shape: covered, bcast: [...covered, ...Array<number>(rank - axis - covered.length).fill(1)] };
}

function scaleOrBias(kind: 'Scale' | 'Bias') {
  return (ctx: LayerContext): Shape[] => {
    ctx.arity([1, 2], 1);
    const field = kind === 'Scale' ? 'scale_param' : 'bias_param';
    const p = ctx.params(field);
    const x = ctx.x;
    const op = kind === 'Scale' ? 'Mul' : 'Add';
    const second = ctx.inputs[1];
    const { shape, bcast } = operandGeometry(ctx, x, p.axis as number, p.num_axes as number, second);
    const withBias = kind === 'Scale' && (p.bias_term as boolean);
    const n = ctx.layer.name;
    let operand: string;
    let biasData: FloatData | undefined;
    if (second) {
      operand = second.name;
      if (bcast.length !== shape.length) {
        operand = ctx.tmp('operand');
        reshape(ctx, second, bcast, operand);
      }
      if (withBias) [biasData] = ctx.weights([{ name: 'bias', shape: shape.map((_, i) => ctx.staticDim(shape, i)) }]);
    } else {
      const st = shape.map((_, i) => ctx.staticDim(shape, i, kind));
      const expected = [{ name: kind === 'Scale' ? 'scale' : 'bias', shape: st }];
      if (withBias) expected.push({ name: 'bias', shape: st });
      const [data, b] = ctx.weights(expected);
      biasData = b;
      operand = ctx.g.floatInit(`${n}/${kind === 'Scale' ? 'gamma' : 'beta'}`, bcast as number[], data);
    }
    if (!withBias) {
      ctx.g.node(op, [x.name, operand], [ctx.out()], {}, n);
      return [x.shape];
    }
    const mid = ctx.tmp('scaled');
    ctx.g.node(op, [x.name, operand], [mid]);
    ctx.g.node('Add', [mid, ctx.g.floatInit(`${n}/beta`, bcast as number[], biasData!)], [ctx.out()], {}, n);
    return [x.shape];
  };
}

/** Scale: y = x · gamma (+ beta), gamma learned or from bottom[1], broadcast from `axis`. */
export const scale: LayerHandler = { types: ['Scale'], convert: scaleOrBias('Scale') };
/** Bias: y = x + beta, beta learned or from bottom[1]. */
export const bias: LayerHandler = { types: ['Bias'], convert: scaleOrBias('Bias') };
