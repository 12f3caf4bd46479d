import { attr, Dim, Shape, Value } from '../graph';
import { LayerContext } from './types';
import { ParsedMessage } from '../../formats/textformat';

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
    return Array<number>(nsp).fill(fallback);
  }
  if (list.length === 1) return Array<number>(nsp).fill(list[0]);
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
  if (spec.filter((d) => d === -1).length > 1)
    ctx.unsupported(`cannot express reshape of [${x.shape.join(', ')}] to [${target.join(', ')}] with a dynamic batch`);
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

/** What Convolution and Deconvolution read from `convolution_param` (Caffe's BaseConvolutionLayer). */
export interface ConvGeometry {
  C: number;
  numOutput: number;
  group: number;
  kernel: number[];
  pad: number[];
  stride: number[];
  dilation: number[];
  biasTerm: boolean;
}

export function convGeometry(ctx: LayerContext): ConvGeometry {
  ctx.arity(1, 1);
  const p = ctx.params('convolution_param');
  const x = ctx.x;
  if ((p.axis as number) !== 1) ctx.unsupported(`axis ${String(p.axis)} is not supported (only channel axis 1)`);
  const nsp = x.shape.length - 2;
  if (nsp < 1) ctx.fail(`input [${x.shape.join(', ')}] has no spatial axes`);
  const C = ctx.staticDim(x.shape, 1, ctx.layer.type);
  const numOutput = p.num_output as number;
  const group = p.group as number;
  if (!numOutput) ctx.fail('convolution_param.num_output is required');
  if (group < 1 || C % group !== 0) ctx.fail(`input channels ${C} are not divisible by group ${group}`);
  if (numOutput % group !== 0) ctx.fail(`num_output ${numOutput} is not divisible by group ${group}`);
  const g: ConvGeometry = {
    C,
    numOutput,
    group,
    kernel: spatialParam(ctx, 'convolution_param', 'kernel', nsp, undefined),
    pad: spatialParam(ctx, 'convolution_param', 'pad', nsp, 0),
    stride: spatialParam(ctx, 'convolution_param', 'stride', nsp, 1),
    dilation: spatialParam(ctx, 'convolution_param', 'dilation', nsp, 1),
    biasTerm: p.bias_term as boolean,
  };
  if ([...g.kernel, ...g.stride, ...g.dilation].some((v) => v < 1)) ctx.fail('kernel, stride and dilation must be positive');
  return g;
}

/** Emit Conv / ConvTranspose with the layer's checked weights; `weightShape` is Caffe's blob 0 layout. */
export function emitConv(
  ctx: LayerContext,
  op: 'Conv' | 'ConvTranspose',
  g: ConvGeometry,
  weightShape: number[],
  extra: Record<string, ReturnType<typeof attr.f>> = {},
): void {
  const expected = [{ name: 'weights', shape: weightShape }];
  if (g.biasTerm) expected.push({ name: 'bias', shape: [g.numOutput] });
  const [w, b] = ctx.weights(expected);
  const inputs = [ctx.x.name, ctx.g.floatInit(`${ctx.layer.name}/W`, weightShape, w)];
  if (g.biasTerm) inputs.push(ctx.g.floatInit(`${ctx.layer.name}/B`, [g.numOutput], b));
  ctx.g.node(
    op,
    inputs,
    [ctx.out()],
    {
      kernel_shape: attr.ints(g.kernel),
      pads: attr.ints([...g.pad, ...g.pad]),
      strides: attr.ints(g.stride),
      dilations: attr.ints(g.dilation),
      group: attr.i(g.group),
      ...extra,
    },
    ctx.layer.name,
  );
}
