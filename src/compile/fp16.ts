import { onnxSchema } from '../formats/schema/onnx';
import { ModelshipError } from '../util/errors';

const FLOAT = 1;
const FLOAT16 = 10;
const FP16_MAX = 65504;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, round to nearest even; out-of-range values saturate to ±65504 (not ±inf). */
export function toHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const c = Math.max(-FP16_MAX, Math.min(FP16_MAX, v));
  f32[0] = c;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp < 103) return sign; // too small even for a subnormal half: ±0
  if (exp < 113) {
    // subnormal half
    mant |= 0x800000;
    const shift = 126 - exp;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = ((exp - 112) << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

interface TensorObj {
  name: string;
  dims?: number[];
  data_type?: number;
  raw_data?: Uint8Array;
  float_data?: number[];
}
interface NodeObj {
  name?: string;
  op_type: string;
  input?: string[];
  output?: string[];
  attribute?: { name: string; type?: number; i?: number }[];
}

/**
 * Convert a float32 ONNX model to float16 with float32 inputs and outputs kept (Cast nodes at the edges), as
 * onnxconverter-common's keep_io_types does: every float initializer becomes FLOAT16 (saturating at ±65504),
 * Cast-to-float nodes inside the graph cast to float16. For GPU execution providers (CUDA, TensorRT); ONNX
 * Runtime's x86 CPU kernels mostly lack fp16.
 */
export function convertToFloat16(model: Uint8Array): Uint8Array {
  const Model = onnxSchema().lookupType('onnx.ModelProto');
  const m = Model.toObject(Model.decode(model), { longs: Number, bytes: Array }) as {
    graph: {
      node: NodeObj[];
      initializer?: TensorObj[];
      input: { name: string; type: { tensor_type: { elem_type: number } } }[];
      output: { name: string; type: { tensor_type: { elem_type: number } } }[];
    };
  };
  const g = m.graph;
  for (const t of g.initializer ?? []) {
    if (t.data_type !== FLOAT) continue;
    const count = (t.dims ?? []).reduce((a, d) => a * d, 1);
    let src: Float32Array;
    if (t.raw_data && t.raw_data.length) {
      const b = Uint8Array.from(t.raw_data);
      src = new Float32Array(b.buffer, 0, count);
    } else src = Float32Array.from(t.float_data ?? []);
    const out = new Uint16Array(count);
    for (let i = 0; i < count; i++) out[i] = toHalf(src[i]);
    t.raw_data = new Uint8Array(out.buffer);
    t.float_data = [];
    t.data_type = FLOAT16;
  }
  for (const n of g.node) {
    if (n.op_type === 'Cast') for (const a of n.attribute ?? []) if (a.name === 'to' && Number(a.i) === FLOAT) a.i = FLOAT16;
  }
  const rename = new Map<string, string>();
  const pre: NodeObj[] = [];
  for (const inp of g.input) {
    if (inp.type.tensor_type.elem_type !== FLOAT) continue;
    const half = `${inp.name}__fp16`;
    rename.set(inp.name, half);
    pre.push({ name: `${inp.name}/to_fp16`, op_type: 'Cast', input: [inp.name], output: [half], attribute: [{ name: 'to', type: 2, i: FLOAT16 }] });
  }
  for (const n of g.node) n.input = (n.input ?? []).map((i) => rename.get(i) ?? i);
  const post: NodeObj[] = [];
  for (const out of g.output) {
    if (out.type.tensor_type.elem_type !== FLOAT) continue;
    const half = `${out.name}__fp16`;
    const producer = g.node.find((n) => (n.output ?? []).includes(out.name));
    if (!producer) throw new ModelshipError('graph', `output "${out.name}" has no producing node`);
    producer.output = producer.output!.map((o) => (o === out.name ? half : o));
    for (const n of g.node) n.input = (n.input ?? []).map((i) => (i === out.name ? half : i));
    post.push({ name: `${out.name}/to_fp32`, op_type: 'Cast', input: [half], output: [out.name], attribute: [{ name: 'to', type: 2, i: FLOAT }] });
  }
  g.node = [...pre, ...g.node, ...post];
  return Model.encode(Model.fromObject(m)).finish();
}
