import * as protobuf from 'protobufjs';
import type * as Ort from 'onnxruntime-node';
import { onnxSchema } from '../formats/schema/onnx';
import type { TensorSig } from '../formats/onnxinfo';
import type { Logger } from '../stage';
import { absMax, maxAbs } from '../shared/compare';
import { inputFile, referenceBatches } from '../shared/reference';
import { loadOrt } from '../util/ort';
import { NpyArray, readNpy } from '../util/npy';
import { ModelshipError } from '../util/errors';

/**
 * LRN in the CPU artifact. ONNX Runtime's CPU LRN kernel runs on one thread and got ~3× slower after 1.20 (GoogLeNet's
 * two LRN nodes: 2.9 → 8.9 ms per image; the whole net 53 → 37 img/s), while the same function written with primitive
 * operators (a windowed mean of squares over the channels as a 5-D AveragePool, then square roots and a division) runs
 * 3–4× faster on 1.30.0, on kernels that use the whole thread pool. The converter keeps the LRN op (the portable form,
 * which CUDA and TensorRT run natively); the compile stage picks the form of the artifact it makes for the CPU
 * execution provider, by measuring both on the ONNX Runtime that serves it, and checks the primitive form against the op.
 */

export type LrnForm = 'op' | 'primitive';
export type LrnSetting = 'auto' | LrnForm;

/** An LRN node of the source model and its attributes (ONNX defaults filled in). */
export interface LrnNode {
  name: string;
  /** the tensor it reads */
  input: string;
  size: number;
  alpha: number;
  beta: number;
  bias: number;
}

export interface Decomposition {
  /** the model with every LRN node of the main graph replaced (the source itself when there is none, or `kept`) */
  model: Uint8Array;
  nodes: LrnNode[];
  /** the operator types that replace them, in order */
  operators: string[];
  /** why the nodes could not be replaced (the model is the source) */
  kept?: string;
}

/** One interleaved round of a measurement: seconds per run of each form. */
export interface LrnRound {
  op: number;
  primitive: number;
}

/**
 * The primitive form must be at least this much faster (median over the rounds) to be chosen: below it the gain is
 * within what a shared runner's run-to-run noise moves, and the op is the standard form (fewer nodes, the one every
 * other runtime reads).
 */
export const LRN_MARGIN = 0.05;

/** What the compile stage records in `<artifact>.json` (`lrn`) for a model with LRN nodes. */
export interface LrnRecord {
  setting: LrnSetting;
  form: LrnForm;
  nodes: number;
  reason: string;
  /** the primitive form's operator types */
  operators?: string[];
  measured?: {
    runtime: string;
    threads: number;
    batch: number;
    /** the LRN nodes alone, on the activations they read in the net: what decides */
    lrn: { shapes: number[][]; rounds: LrnRound[]; opMs: number; primitiveMs: number; speedup: number };
    /** the whole net, for the record: img/s of each form */
    net: { rounds: LrnRound[]; opImagesPerSecond: number; primitiveImagesPerSecond: number; speedup: number };
  };
  /** largest |Δ| between the primitive form's outputs and the op's on the probe input */
  maxAbsDiffVsOp?: number;
}

export interface LrnChoice {
  /** the model to optimize: the source, or its primitive form */
  model: Uint8Array;
  /** undefined when the model has no LRN node */
  record?: LrnRecord;
}

// ---- the rewrite ------------------------------------------------------------------------------------------------

interface Field {
  no: number;
  wire: number;
  /** the field's bytes, tag included: [start, end) */
  start: number;
  end: number;
  /** where a length-delimited field's value begins */
  body: number;
}

/** The top-level fields of the message in buf[from, to), in order, read without decoding their values. */
function fields(buf: Uint8Array, from: number, to: number): Field[] {
  const r = protobuf.Reader.create(buf);
  r.pos = from;
  r.len = to;
  const out: Field[] = [];
  while (r.pos < to) {
    const start = r.pos;
    const tag = r.uint32();
    const wire = tag & 7;
    let body = r.pos;
    if (wire === 2) {
      const len = r.uint32();
      body = r.pos;
      r.skip(len);
    } else r.skipType(wire);
    out.push({ no: tag >>> 3, wire, start, end: r.pos, body });
  }
  return out;
}

interface NodeObj {
  name?: string;
  op_type?: string;
  domain?: string;
  input?: string[];
  output?: string[];
  attribute?: { name?: string; type?: number; f?: number; i?: number; ints?: number[]; t?: unknown }[];
}

const FLOAT = 1;
const INT64 = 7;
const ATTR = { FLOAT: 1, INT: 2, TENSOR: 4, INTS: 7 } as const;

/** A model's top-level fields, its main graph's fields and its default-domain opset. */
interface Parsed {
  top: Field[];
  graph: Field;
  g: Field[];
  opset: number;
}

function parse(model: Uint8Array, file: string): Parsed {
  const top = fields(model, 0, model.length);
  const graph = top.filter((f) => f.no === 7 && f.wire === 2).pop();
  if (!graph) throw new ModelshipError('binary', 'not an ONNX model (no graph)', { file });
  const OpsetId = onnxSchema().lookupType('onnx.OperatorSetIdProto');
  let opset = 0;
  for (const f of top.filter((x) => x.no === 8 && x.wire === 2)) {
    const o = OpsetId.toObject(OpsetId.decode(model.subarray(f.body, f.end)), { longs: Number }) as { domain?: string; version?: number };
    if (!o.domain || o.domain === 'ai.onnx') opset = o.version ?? 0;
  }
  return { top, graph, g: fields(model, graph.body, graph.end), opset };
}

/** The model with graph fields replaced (`replace`: field → its new entries) and entries appended to the graph. */
function splice(model: Uint8Array, p: Parsed, replace: Map<Field, Uint8Array[]>, append: Uint8Array[] = []): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const f of p.g) chunks.push(...(replace.get(f) ?? [model.subarray(f.start, f.end)]));
  chunks.push(...append);
  const len = chunks.reduce((n, c) => n + c.length, 0);
  const out: Uint8Array[] = [];
  for (const f of p.top) {
    if (f !== p.graph) out.push(model.subarray(f.start, f.end));
    else
      out.push(
        protobuf.Writer.create()
          .uint32((7 << 3) | 2)
          .uint32(len)
          .finish(),
        ...chunks,
      );
  }
  return Buffer.concat(out);
}

/** One length-delimited entry of field `no`: its tag, length and bytes. */
function entry(no: number, bytes: Uint8Array): Uint8Array {
  return protobuf.Writer.create()
    .uint32((no << 3) | 2)
    .bytes(bytes)
    .finish();
}

/**
 * Replace every LRN node of the model's main graph by the same function in primitive operators:
 *   x / (bias + alpha · mean over the window of x²)^beta
 * where the window mean is AveragePool over [x²] unsqueezed to [N, 1, C, H, W] with kernel [size, 1, 1], ONNX's
 * asymmetric window (⌊(size−1)/2⌋ channels before, ⌈(size−1)/2⌉ after) as pads, and count_include_pad, so that
 * alpha · mean is ONNX's alpha/size · sum at the edges too. The power is square roots for beta 0.5 and 0.75 (every
 * classic Caffe net has 0.75: x^0.75 = √x·√√x, a fraction of Pow's cost per value), else Pow.
 *
 * The model is edited on the wire: only the LRN node entries of the graph are re-encoded; everything else (weights,
 * metadata, fields modelship's ONNX schema does not know) is copied byte for byte. LRN inputs are taken as 4-D float32:
 * the only input ONNX Runtime's CPU LRN kernel runs (it refuses other ranks at run time), checked against the op
 * afterwards by running both (chooseLrnForm).
 */
export function decomposeLrn(model: Uint8Array, file = 'model.onnx'): Decomposition {
  const NodeProto = onnxSchema().lookupType('onnx.NodeProto');
  const p = parse(model, file);
  const lrn = new Map<Field, NodeObj>();
  const used = new Set<string>();
  for (const f of p.g) {
    if (f.wire !== 2) continue;
    if (f.no === 1) {
      const n = NodeProto.toObject(NodeProto.decode(model.subarray(f.body, f.end)), { longs: Number }) as NodeObj;
      for (const s of [...(n.input ?? []), ...(n.output ?? []), n.name ?? '']) used.add(s);
      if (n.op_type === 'LRN' && (!n.domain || n.domain === 'ai.onnx')) lrn.set(f, n);
    } else if (f.no === 5 || f.no === 11 || f.no === 12 || f.no === 13) {
      // initializers (TensorProto) and inputs/outputs/value_info (ValueInfoProto): only the name, field 8 or 1
      const name = fields(model, f.body, f.end).find((x) => x.no === (f.no === 5 ? 8 : 1) && x.wire === 2);
      if (name) used.add(protobuf.util.utf8.read(model, name.body, name.end));
    }
  }
  const nodes = [...lrn.values()].map(lrnAttributes);
  if (nodes.length === 0) return { model, nodes, operators: [] };
  // AveragePool's count_include_pad came with opset 7
  if (p.opset < 7) return { model, nodes, operators: [], kept: `opset ${p.opset} has no AveragePool count_include_pad (opset 7)` };

  const unique = (base: string): string => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };
  const operators = new Set<string>();
  const replace = new Map<Field, Uint8Array[]>();
  for (const [f, n] of lrn) {
    const prim = primitiveNodes(n, lrnAttributes(n), p.opset, unique);
    for (const x of prim) if (x.op_type !== 'Constant') operators.add(x.op_type!);
    replace.set(
      f,
      prim.map((x) => entry(1, NodeProto.encode(NodeProto.fromObject(x)).finish())),
    );
  }
  return { model: splice(model, p, replace), nodes, operators: [...operators] };
}

/** The model with `names` (float tensors) added to the graph's outputs: the probe that reads the LRN nodes' inputs. */
function withOutputs(model: Uint8Array, names: string[]): Uint8Array {
  const ValueInfo = onnxSchema().lookupType('onnx.ValueInfoProto');
  const p = parse(model, 'model.onnx');
  const outputs = new Set(
    p.g.filter((f) => f.no === 12 && f.wire === 2).map((f) => (ValueInfo.decode(model.subarray(f.body, f.end)) as unknown as { name: string }).name),
  );
  const add = names.filter((n) => !outputs.has(n));
  return splice(
    model,
    p,
    new Map(),
    add.map((name) => entry(12, ValueInfo.encode(ValueInfo.fromObject({ name, type: { tensor_type: { elem_type: FLOAT } } })).finish())),
  );
}

/** A model of the LRN nodes alone, one graph input per node at `shapes[i]`: how long the LRN part of a run takes. */
function lrnOnly(nodes: LrnNode[], shapes: number[][]): Uint8Array {
  const M = onnxSchema().lookupType('onnx.ModelProto');
  const vi = (name: string, shape: number[]) => ({ name, type: { tensor_type: { elem_type: FLOAT, shape: { dim: shape.map((d) => ({ dim_value: d })) } } } });
  return M.encode(
    M.fromObject({
      ir_version: 7,
      opset_import: [{ version: 13 }],
      graph: {
        name: 'lrn',
        node: nodes.map((n, i) => ({
          name: `lrn${i}`,
          op_type: 'LRN',
          input: [`x${i}`],
          output: [`y${i}`],
          attribute: [
            { name: 'size', type: ATTR.INT, i: n.size },
            { name: 'alpha', type: ATTR.FLOAT, f: n.alpha },
            { name: 'beta', type: ATTR.FLOAT, f: n.beta },
            { name: 'bias', type: ATTR.FLOAT, f: n.bias },
          ],
        })),
        input: nodes.map((_, i) => vi(`x${i}`, shapes[i])),
        output: nodes.map((_, i) => vi(`y${i}`, shapes[i])),
      },
    }),
  ).finish();
}

function lrnAttributes(n: NodeObj): LrnNode {
  const a = new Map((n.attribute ?? []).map((x) => [x.name, x]));
  const size = a.get('size')?.i;
  if (!size || size < 1) throw new ModelshipError('graph', `LRN node "${n.name ?? n.output?.[0] ?? ''}" has no size`);
  return {
    name: n.name || (n.output?.[0] ?? ''),
    input: n.input?.[0] ?? '',
    size,
    // ONNX's defaults
    alpha: a.get('alpha')?.f ?? 1e-4,
    beta: a.get('beta')?.f ?? 0.75,
    bias: a.get('bias')?.f ?? 1,
  };
}

function tensor(dataType: number, dims: number[], raw: ArrayBufferView): unknown {
  return { dims, data_type: dataType, raw_data: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
}

/** The nodes that replace one LRN node `n` (its input and output names kept; the last node keeps its name). */
function primitiveNodes(n: NodeObj, p: LrnNode, opset: number, unique: (base: string) => string): NodeObj[] {
  const x = n.input![0];
  const y = n.output![0];
  const base = `${p.name}/lrn`;
  const out: NodeObj[] = [];
  const node = (op: string, input: string[], attribute: NodeObj['attribute'] = [], output = unique(`${base}/${op.toLowerCase()}`)): string => {
    out.push({ name: output, op_type: op, input, output: [output], attribute });
    return output;
  };
  const constant = (suffix: string, t: unknown): string => node('Constant', [], [{ name: 'value', type: ATTR.TENSOR, t }], unique(`${base}/${suffix}`));
  const scalar = (suffix: string, v: number) => constant(suffix, tensor(FLOAT, [], new Float32Array([v])));
  const before = Math.floor((p.size - 1) / 2);
  const after = p.size - 1 - before;

  const sq = node('Mul', [x, x]);
  // axes: an input from opset 13, an attribute before
  const axes = opset >= 13 ? [constant('axes', tensor(INT64, [1], new BigInt64Array([1n])))] : [];
  const axesAttr = opset >= 13 ? [] : [{ name: 'axes', type: ATTR.INTS, ints: [1] }];
  const sq5 = node('Unsqueeze', [sq, ...axes], axesAttr);
  const mean5 = node(
    'AveragePool',
    [sq5],
    [
      { name: 'kernel_shape', type: ATTR.INTS, ints: [p.size, 1, 1] },
      { name: 'pads', type: ATTR.INTS, ints: [before, 0, 0, after, 0, 0] },
      { name: 'count_include_pad', type: ATTR.INT, i: 1 },
    ],
  );
  const mean = node('Squeeze', [mean5, ...axes], axesAttr);
  const scaled = node('Mul', [mean, scalar('alpha', p.alpha)]);
  const shifted = node('Add', [scaled, scalar('bias', p.bias)]);
  let den = shifted;
  if (p.beta === 0.5) den = node('Sqrt', [shifted]);
  else if (p.beta === 0.75) {
    const r2 = node('Sqrt', [shifted]);
    den = node('Mul', [r2, node('Sqrt', [r2])]);
  } else if (p.beta !== 1) den = node('Pow', [shifted, scalar('beta', p.beta)]);
  out.push({ name: n.name || y, op_type: 'Div', input: [x, den], output: [y] });
  return out;
}

// ---- the choice -------------------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The decision from measured rounds (each timing both forms back to back, so that what else the machine does moves
 * both): the speedup is the op's median time over the primitive form's, the figures the report gives as img/s; the
 * primitive form when it clears LRN_MARGIN. Medians: one round slowed by a neighbour does not decide.
 */
export function decideLrnForm(rounds: LrnRound[], margin = LRN_MARGIN): { form: LrnForm; speedup: number } {
  if (rounds.length === 0) throw new Error('internal: no rounds measured');
  const speedup = median(rounds.map((r) => r.op)) / median(rounds.map((r) => r.primitive));
  return { form: speedup >= 1 + margin ? 'primitive' : 'op', speedup };
}

/**
 * The input the forms are measured and compared on, at batch 1: the reference's smallest batch (real data) when there
 * is one, else seeded values in [−128, 128) (mean-subtracted pixels) for the declared shape, the batch dim 1. A string
 * says why there is none (a float input with other symbolic dims and no reference).
 */
export function probeFeeds(inputs: TensorSig[], reference?: string): Record<string, NpyArray> | string {
  if (reference) {
    try {
      const b = referenceBatches(reference)[0];
      if (b !== undefined) return Object.fromEntries(inputs.map((i) => [i.name, readNpy(inputFile(reference, b, i.name, inputs.length === 1))]));
    } catch {
      // a reference the parity check will name the problem of; measure on seeded values meanwhile
    }
  }
  const feeds: Record<string, NpyArray> = {};
  let seed = 20240601;
  for (const i of inputs) {
    if (i.elemType !== undefined && i.elemType !== FLOAT) return `input "${i.name}" is not float32`;
    const shape = i.shape.map((d, k) => (typeof d === 'number' ? d : k === 0 ? 1 : NaN));
    const sym = i.shape.find((d, k) => k > 0 && typeof d !== 'number');
    if (sym !== undefined) return `input "${i.name}" has the symbolic dimension "${sym}" (a reference gives the inputs to measure with)`;
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    for (let k = 0; k < data.length; k++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      data[k] = (seed / 2 ** 32) * 256 - 128;
    }
    feeds[i.name] = { shape, data };
  }
  return feeds;
}

interface Measurement {
  runtime: string;
  batch: number;
  /** the LRN nodes alone (and the shapes they read) and the whole net, when timed */
  lrn?: LrnRound[];
  shapes?: number[][];
  net?: LrnRound[];
  maxAbsDiff: number;
  limit: number;
}

type Session = Ort.InferenceSession;

/** The modelship server's session options (src/serve/worker.ts): graph optimization all, intra-op threads that sleep when idle. */
function serverOptions(threads: number): Ort.InferenceSession.SessionOptions {
  return { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: threads, extra: { session: { intra_op: { allow_spinning: '0' } } } };
}

function tensors(feeds: Record<string, NpyArray>): Record<string, Ort.Tensor> {
  const ort = loadOrt();
  return Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.shape)]));
}

/** `rounds` interleaved rounds of the two sessions (the order alternating), each run about `sampleMs` per round. */
async function timeRounds(a: Session, b: Session, feeds: Record<string, Ort.Tensor>, rounds: number, sampleMs: number): Promise<LrnRound[]> {
  const timed = async (s: Session, times: number): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < times; k++) await s.run(feeds);
    return Number(process.hrtime.bigint() - t0) / 1e9 / times;
  };
  await timed(a, 1); // first runs allocate
  await timed(b, 1);
  const times = Math.max(1, Math.round(sampleMs / 1000 / Math.max(await timed(a, 1), await timed(b, 1))));
  const out: LrnRound[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2) {
      const primitive = await timed(b, times);
      out.push({ op: await timed(a, times), primitive });
    } else {
      const op = await timed(a, times);
      out.push({ op, primitive: await timed(b, times) });
    }
  }
  return out;
}

/**
 * Run both forms of the net on the CPU with the server's session options and compare their outputs on the probe
 * input; with `rounds`, time them: the LRN nodes alone (a model of just them, fed the activations they read in the net,
 * which a probe run of the net with those tensors as outputs gives) and the whole net, interleaved rounds of each.
 */
export async function measureLrnForms(
  source: Uint8Array,
  d: Decomposition,
  feeds: Record<string, NpyArray>,
  o: { threads: number; rounds: number; sampleMs: number; tolerance: number },
): Promise<Measurement> {
  const ort = loadOrt();
  const opts = serverOptions(o.threads);
  const open: Session[] = [];
  const session = async (model: Uint8Array, options = opts) => {
    const s = await ort.InferenceSession.create(model, options);
    open.push(s);
    return s;
  };
  try {
    const t = tensors(feeds);
    const [op, prim] = [await session(source), await session(d.model)];
    const [a, b] = [(await op.run(t)) as Record<string, Ort.Tensor>, (await prim.run(t)) as Record<string, Ort.Tensor>];
    let maxAbsDiff = 0;
    let scale = 1;
    for (const name of op.outputNames) {
      const x = a[name];
      const y = b[name];
      if (x.type !== 'float32') continue;
      const diff = y?.type === 'float32' && y.dims.join() === x.dims.join() ? maxAbs(y.data as Float32Array, x.data as Float32Array) : Infinity;
      maxAbsDiff = Math.max(maxAbsDiff, diff);
      scale = Math.max(scale, absMax(x.data as Float32Array));
    }
    const m: Measurement = {
      runtime: `onnxruntime-node ${ort.env.versions.node}`,
      batch: Object.values(feeds)[0]?.shape[0] ?? 1,
      maxAbsDiff,
      limit: o.tolerance * scale,
    };
    if (o.rounds === 0) return m;

    // the activations the LRN nodes read
    const reads = [...new Set(d.nodes.map((n) => n.input))];
    // unoptimized: it runs once
    const probe = await session(
      withOutputs(
        source,
        reads.filter((r) => !feeds[r]),
      ),
      { ...opts, graphOptimizationLevel: 'disabled' },
    );
    const got = (await probe.run(
      t,
      reads.filter((r) => !feeds[r]),
    )) as Record<string, Ort.Tensor>;
    const act = (name: string): NpyArray => feeds[name] ?? { shape: got[name].dims.map(Number), data: new Float32Array(got[name].data as Float32Array) };
    const inputs = d.nodes.map((n) => act(n.input));
    const alone = lrnOnly(
      d.nodes,
      inputs.map((x) => x.shape),
    );
    const [lop, lprim] = [await session(alone), await session(decomposeLrn(alone).model)];
    const lfeeds = tensors(Object.fromEntries(inputs.map((x, i) => [`x${i}`, x])));
    m.shapes = inputs.map((x) => x.shape);
    m.lrn = await timeRounds(lop, lprim, lfeeds, o.rounds, o.sampleMs);
    m.net = await timeRounds(op, prim, t, o.rounds, o.sampleMs);
    return m;
  } finally {
    for (const s of open) await s.release();
  }
}

/** The measurement's settings: one intra-op thread, the op's own (its kernel is single-threaded), so the primitive form's gain is its least. */
export const LRN_MEASURE = { threads: 1, rounds: 7, sampleMs: 120 };

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/**
 * The LRN form of the onnxruntime artifact. `auto` on the CPU execution provider measures both forms on the bundled
 * ONNX Runtime (the one the modelship server runs) and takes the primitive form when its LRN nodes run faster by
 * LRN_MARGIN: timed alone, their difference stands out of the noise that the rest of the net adds on a shared runner
 * (GoogLeNet's two LRN nodes are a fifth of its time; CaffeNet's, after pooling, a thirtieth), so the choice, and the
 * artifact, do not change from run to run; the whole net's img/s of both forms are measured for the record. On CUDA
 * it keeps the op (cuDNN runs LRN natively). The primitive form is always run against the op first: a difference
 * beyond the parity tolerance keeps the op (auto) or fails (lrn: primitive).
 */
export async function chooseLrnForm(
  source: Uint8Array,
  o: {
    setting: LrnSetting;
    executionProvider: 'cpu' | 'cuda';
    inputs: TensorSig[];
    reference?: string;
    tolerance: number;
    file?: string;
    measure?: typeof LRN_MEASURE;
  },
  log: Logger,
): Promise<LrnChoice> {
  const d = decomposeLrn(source, o.file);
  if (d.nodes.length === 0) return { model: source };
  const nodes = d.nodes.length;
  const op = (reason: string, extra: Partial<LrnRecord> = {}): LrnChoice => {
    log.info(`LRN: the op (${nodes} node${nodes === 1 ? '' : 's'}): ${reason}`);
    return { model: source, record: { setting: o.setting, form: 'op', nodes, reason, ...extra } };
  };
  if (d.kept) {
    if (o.setting === 'primitive') throw new ModelshipError('input', `input "lrn": primitive: ${d.kept}`, { field: 'lrn' });
    return op(d.kept);
  }
  if (o.setting === 'op') return op('as set');
  if (o.setting === 'auto' && o.executionProvider === 'cuda') return op('execution-provider cuda runs the LRN op natively (cuDNN); auto measures for the CPU');

  const measure = o.measure ?? LRN_MEASURE;
  return log.group(
    `LRN: ${o.setting === 'auto' ? 'the op or primitive operators, measured' : 'primitive operators'} (${nodes} node${nodes === 1 ? '' : 's'})`,
    async () => {
      const feeds = probeFeeds(o.inputs, o.reference);
      if (typeof feeds === 'string') {
        if (o.setting === 'primitive') {
          log.warning(`LRN: the primitive form is not run against the op here: ${feeds}; the parity check against the reference is the only check`);
          return { model: d.model, record: { setting: o.setting, form: 'primitive', nodes, reason: 'as set', operators: d.operators } };
        }
        return op(`cannot measure: ${feeds}`);
      }
      const m = await measureLrnForms(source, d, feeds, { ...measure, rounds: o.setting === 'auto' ? measure.rounds : 0, tolerance: o.tolerance });
      log.info(`primitive form vs the op on the probe input: max |Δ| ${m.maxAbsDiff.toExponential(2)} (limit ${m.limit.toExponential(2)})`);
      if (!(m.maxAbsDiff <= m.limit)) {
        const why = `the primitive form differs from the LRN op by max |Δ| ${m.maxAbsDiff} (limit ${m.limit})`;
        if (o.setting === 'primitive') throw new ModelshipError('graph', `input "lrn": primitive: ${why}`, { field: 'lrn' });
        log.warning(`LRN: ${why}; keeping the op`);
        return op(why, { maxAbsDiffVsOp: m.maxAbsDiff });
      }
      if (o.setting === 'primitive' || !m.lrn || !m.net) {
        log.info('LRN: primitive operators (lrn: primitive)');
        return {
          model: d.model,
          record: { setting: o.setting, form: 'primitive', nodes, reason: 'as set', operators: d.operators, maxAbsDiffVsOp: m.maxAbsDiff },
        };
      }
      const { form, speedup } = decideLrnForm(m.lrn);
      const net = decideLrnForm(m.net).speedup;
      const med = (rounds: LrnRound[], f: LrnForm) => median(rounds.map((r) => r[f]));
      const measured: NonNullable<LrnRecord['measured']> = {
        runtime: m.runtime,
        threads: measure.threads,
        batch: m.batch,
        lrn: { shapes: m.shapes ?? [], rounds: m.lrn, opMs: med(m.lrn, 'op') * 1e3, primitiveMs: med(m.lrn, 'primitive') * 1e3, speedup },
        net: { rounds: m.net, opImagesPerSecond: m.batch / med(m.net, 'op'), primitiveImagesPerSecond: m.batch / med(m.net, 'primitive'), speedup: net },
      };
      const reason =
        `measured on ${m.runtime} (cpu, ${measure.threads} intra-op thread${measure.threads === 1 ? '' : 's'}, batch ${m.batch}, ${measure.rounds} interleaved rounds): ` +
        `the LRN nodes ${measured.lrn.opMs.toFixed(2)} ms as the op, ${measured.lrn.primitiveMs.toFixed(2)} ms as primitives, ${speedup.toFixed(2)}× ` +
        `(${form === 'primitive' ? '≥' : 'under'} ${1 + LRN_MARGIN}×${form === 'op' ? ': the op stays' : ''}); ` +
        `the whole net ${fmt(measured.net.opImagesPerSecond)} → ${fmt(measured.net.primitiveImagesPerSecond)} img/s (${net.toFixed(2)}×)`;
      log.info(`LRN: ${form === 'primitive' ? 'primitive operators' : 'the op'}: ${reason}`);
      const record: LrnRecord = {
        setting: o.setting,
        form,
        nodes,
        reason,
        ...(form === 'primitive' ? { operators: d.operators } : {}),
        measured,
        maxAbsDiffVsOp: m.maxAbsDiff,
      };
      return { model: form === 'primitive' ? d.model : source, record };
    },
  );
}

/** The summary's line for the record. */
export function lrnMarkdown(r: LrnRecord): string {
  const what = r.form === 'primitive' ? `**primitive operators** (${(r.operators ?? []).join(', ')})` : '**the LRN op**';
  const diff = r.maxAbsDiffVsOp !== undefined ? `; max |Δ| against the op ${r.maxAbsDiffVsOp.toExponential(1)}` : '';
  return `LRN (${r.nodes} node${r.nodes === 1 ? '' : 's'}, \`lrn: ${r.setting}\`): ${what}: ${r.reason}${diff}.\n`;
}
