import { attr, Dim, Shape, Value } from '../graph';
import { LayerContext } from './types';
import { ParsedMessage } from '../textformat';

/**
 * Kernel / pad / stride / dilation of Convolution and Pooling, as Caffe reads them: `*_h`/`*_w` for 2-D,
 * else one value for every spatial axis or one per axis. `fallback` undefined means the value is required.
 */
export function spatialParam(
  ctx: LayerContext,
  field: 'convolution_param' | 'pooling_param',
  name: 'kernel' | 'pad' | 'stride' | 'dilation',
  nsp: number,
  fallback: number | undefined,
): number[] {
  const raw = (ctx.layer.msg[field] as ParsedMessage | undefined) ?? {};
  const has = (k: string) => Object.prototype.hasOwnProperty.call(raw, k);
  const base = name === 'kernel' ? 'kernel_size' : name;
  const hKey = `${name}_h`;
  const wKey = `${name}_w`;
  if (name !== 'dilation' && (has(hKey) || has(wKey))) {
    if (nsp !== 2) ctx.fail(`${hKey}/${wKey} can only be used for 2-D data`);
    if (has(base)) ctx.fail(`either ${base} or ${hKey}/${wKey} may be given, not both`);
    if (name === 'kernel' && !(has(hKey) && has(wKey))) ctx.fail('kernel_h and kernel_w must both be given');
    const h = has(hKey) ? (raw[hKey] as number) : (fallback ?? 0);
    const w = has(wKey) ? (raw[wKey] as number) : (fallback ?? 0);
    return [h, w];
  }
  const v = raw[base];
  const list = v === undefined ? [] : Array.isArray(v) ? (v as number[]) : [v as number];
  if (list.length === 0) {
    if (fallback === undefined) ctx.fail(`${base} is required`);
    return Array(nsp).fill(fallback);
  }
  if (list.length === 1) return Array(nsp).fill(list[0]);
  if (list.length !== nsp) ctx.fail(`${base} has ${list.length} values for ${nsp} spatial axes`);
  return list;
}

/**
 * Reshape `x` to `target` (symbolic dims allowed). Symbolic dims that stay at the same index are copied (0);
 * at most one other dim may be unknown (-1).
 */
export function reshape(ctx: LayerContext, x: Value, target: Shape, out: string): void {
  const spec = target.map((d, i) => {
    if (typeof d === 'number') return d;
    if (x.shape[i] === d) return 0;
    return -1;
  });
  if (spec.filter((d) => d === -1).length > 1) ctx.unsupported(`cannot express reshape of [${x.shape.join(', ')}] to [${target.join(', ')}] with a dynamic batch`);
  const shapeName = ctx.g.int64Init(`${ctx.layer.name}/shape`, spec);
  ctx.g.node('Reshape', [x.name, shapeName], [out]);
}

export function product(dims: Dim[]): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') n *= d;
    else syms.push(d);
  }
  if (syms.length === 0) return n;
  return n === 1 && syms.length === 1 ? syms[0] : [...syms, ...(n === 1 ? [] : [String(n)])].join('*');
}

export function unary(op: string, attrs: Record<string, ReturnType<typeof attr.f>> = {}) {
  return (ctx: LayerContext): Shape[] => {
    ctx.arity(1, 1);
    ctx.g.node(op, [ctx.x.name], [ctx.out()], attrs);
    return [ctx.x.shape];
  };
}

/** A float scalar constant (shape []) for element-wise ops. */
export function scalar(ctx: LayerContext, suffix: string, v: number): string {
  return ctx.g.floatInit(`${ctx.layer.name}/${suffix}`, [], [v]);
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
