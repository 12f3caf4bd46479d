import { Dim, Shape } from '../graph';
import { LayerContext, LayerHandler } from './types';
import { ParsedMessage } from '../../formats/textformat';

/**
 * Reshape with Caffe's rules: `axis`/`num_axes` select the part of the input shape that is replaced;
 * in `shape.dim`, 0 copies the input dimension at that position and one -1 is inferred.
 */
export const reshapeLayer: LayerHandler = {
  types: ['Reshape'],
  convert(ctx: LayerContext): Shape[] {
    ctx.arity(1, 1);
    const p = ctx.params('reshape_param');
    const x = ctx.x;
    const rank = x.shape.length;
    const dims = (((p.shape as ParsedMessage | undefined)?.dim as number[] | undefined) ?? []).slice();
    let axis = p.axis as number;
    if (axis < -(rank + 1) || axis > rank) ctx.fail(`axis ${axis} is out of range for a ${rank}-D input`);
    if (axis < 0) axis = rank + 1 + axis;
    const numAxes = p.num_axes as number;
    if (numAxes < -1) ctx.fail(`num_axes ${numAxes} must be -1 or non-negative`);
    const end = numAxes === -1 ? rank : axis + numAxes;
    if (end > rank) ctx.fail(`axis ${axis} + num_axes ${numAxes} exceeds the input rank ${rank}`);
    const replaced = x.shape.slice(axis, end);
    if (dims.filter((d) => d === -1).length > 1) ctx.fail('at most one dim may be -1');
    const newPart: Dim[] = dims.map((d, i) => {
      if (d === 0) {
        if (axis + i >= rank) ctx.fail(`dim ${i} is 0 (copy) but the input has no axis ${axis + i}`);
        return x.shape[axis + i];
      }
      if (d < -1) ctx.fail(`dim ${i} is ${d}; only -1 (infer) and 0 (copy) may be non-positive`);
      return d;
    });
    const infer = newPart.indexOf(-1);
    if (infer >= 0) {
      // static product of the replaced part / static product of the explicit new dims; symbols carry over
      let num = 1;
      const syms: string[] = [];
      for (const d of replaced) {
        if (typeof d === 'number') num *= d;
        else syms.push(d);
      }
      let den = 1;
      for (const [i, d] of newPart.entries()) {
        if (i === infer) continue;
        if (typeof d === 'number') den *= d;
        else {
          const j = syms.indexOf(d);
          if (j < 0) ctx.unsupported('cannot infer the -1 dimension with a dynamic batch');
          syms.splice(j, 1);
        }
      }
      if (den === 0 || num % den !== 0) ctx.fail(`cannot reshape [${x.shape.join(', ')}]: ${num} is not divisible by ${den}`);
      const r = num / den;
      newPart[infer] = syms.length === 0 ? r : r === 1 && syms.length === 1 ? syms[0] : [...syms, String(r)].join('*');
    } else {
      const a = replaced.filter((d): d is number => typeof d === 'number').reduce((m, d) => m * d, 1);
      const b = newPart.filter((d): d is number => typeof d === 'number').reduce((m, d) => m * d, 1);
      const symA = replaced
        .filter((d) => typeof d !== 'number')
        .sort()
        .join();
      const symB = newPart
        .filter((d) => typeof d !== 'number')
        .sort()
        .join();
      if (symA === symB && a !== b) ctx.fail(`cannot reshape [${x.shape.join(', ')}] (${a} values in the reshaped axes) to [${newPart.join(', ')}] (${b})`);
    }
    const out: Shape = [...x.shape.slice(0, axis), ...newPart, ...x.shape.slice(end)];
    // ONNX target: prefix copied with 0, explicit Caffe dims kept, the inferred one as -1
    const spec = out.map((d, i) => {
      if (i < axis && typeof d !== 'number') return 0;
      if (i >= axis && i < axis + newPart.length) {
        const caffe = dims[i - axis];
        if (caffe === -1) return -1;
        if (caffe === 0) return typeof d === 'number' ? d : 0;
        return caffe;
      }
      if (typeof d === 'number') return d;
      return -1;
    });
    if (spec.filter((d) => d === -1).length > 1) ctx.unsupported(`cannot express reshape to [${out.join(', ')}] with a dynamic batch`);
    const shapeName = ctx.g.int64Init(`${ctx.layer.name}/shape`, spec);
    ctx.g.node('Reshape', [x.name, shapeName], [ctx.out()], {}, ctx.layer.name);
    return [out];
  },
};
