import { TensorDataType, AttrType } from '../formats/schema/onnx';
import { FloatData } from './floatdata';

/** A dimension: a number, or a symbolic name (the batch dimension is `N`). */
export type Dim = number | string;
export type Shape = Dim[];

export const BATCH: Dim = 'N';

/** An ONNX value in the graph being built, with its inferred shape (float32 unless stated). */
export interface Value {
  name: string;
  shape: Shape;
}

export type Attr =
  | { type: typeof AttrType.FLOAT; f: number }
  | { type: typeof AttrType.INT; i: number }
  | { type: typeof AttrType.STRING; s: string }
  | { type: typeof AttrType.FLOATS; floats: number[] }
  | { type: typeof AttrType.INTS; ints: number[] };

export const attr = {
  f: (f: number): Attr => ({ type: AttrType.FLOAT, f }),
  i: (i: number): Attr => ({ type: AttrType.INT, i }),
  s: (s: string): Attr => ({ type: AttrType.STRING, s }),
  floats: (floats: number[]): Attr => ({ type: AttrType.FLOATS, floats }),
  ints: (ints: number[]): Attr => ({ type: AttrType.INTS, ints }),
};

interface NodeSpec {
  op: string;
  name: string;
  /** the Caffe layer this node was emitted for */
  layer: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  raw: Uint8Array;
}

export const OPSET = 13;
export const IR_VERSION = 7;

/** Builds an ONNX graph: unique names, nodes in topological order, initializers as little-endian raw_data. */
export class GraphBuilder {
  private readonly names = new Set<string>();
  readonly nodes: NodeSpec[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  /** nodes emitted from now on belong to this Caffe layer (for per-layer subgraphs) */
  currentLayer = '';

  /** Reserve `base` if free, else `base_1`, `base_2`, ... */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  isTaken(name: string): boolean {
    return this.names.has(name);
  }

  reserve(name: string): void {
    this.names.add(name);
  }

  addInput(name: string, shape: Shape): Value {
    this.names.add(name);
    const v = { name, shape };
    this.inputs.push(v);
    return v;
  }

  addOutput(v: Value): void {
    this.outputs.push(v);
  }

  /** A float32 initializer, stored as raw little-endian bytes (weights from the caffemodel are not copied). */
  floatInit(base: string, dims: number[], data: FloatData | Float32Array | number[]): string {
    const name = this.unique(base);
    const fd = data instanceof FloatData ? data : FloatData.fromArray(data);
    const count = dims.reduce((a, d) => a * d, 1);
    if (fd.length !== count) throw new Error(`internal: initializer ${name} has ${fd.length} values for dims [${dims.join(',')}]`);
    this.initializers.push({ name, dims, dataType: TensorDataType.FLOAT, raw: fd.bytes });
    return name;
  }

  /** An int64 initializer (shapes, axes, split sizes). */
  int64Init(base: string, values: number[]): string {
    const name = this.unique(base);
    const arr = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [values.length], dataType: TensorDataType.INT64, raw: toLE(new Uint8Array(arr.buffer), 8) });
    return name;
  }

  node(op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}, name?: string): void {
    this.nodes.push({ op, name: name ?? outputs[0], layer: this.currentLayer, inputs, outputs, attrs });
  }

  /** Serialise as an ONNX ModelProto. `extraOutputs` adds graph outputs (used by per-layer parity). */
  encode(meta: ModelMeta, extraOutputs: Value[] = []): Uint8Array {
    return this.model(meta, extraOutputs).toBytes();
  }

  /**
   * The ONNX ModelProto as pieces in file order, the initializers' raw data not copied (see EncodedModel): what
   * `encode` returns, for writing a large model to a file without holding it in memory twice.
   */
  model(meta: ModelMeta, extraOutputs: Value[] = []): EncodedModel {
    return encodeModel(meta, this.nodes, this.initializers, this.inputs, [...this.outputs, ...extraOutputs]);
  }

  /**
   * A model of just the nodes of `layers`, fed by `inputs` (values they read from outside) and producing
   * `outputs`: per-layer parity runs each layer on Caffe's own bottoms, so float drift from earlier layers
   * does not count against it.
   */
  encodeLayers(meta: ModelMeta, layers: ReadonlySet<string>, inputs: Value[], outputs: Value[]): Uint8Array {
    const nodes = this.nodes.filter((n) => layers.has(n.layer));
    const used = new Set(nodes.flatMap((n) => n.inputs));
    return encodeModel(
      meta,
      nodes,
      this.initializers.filter((t) => used.has(t.name)),
      inputs,
      outputs,
    ).toBytes();
  }

  /** The values the nodes of `layers` read that neither they nor initializers produce. */
  externalInputs(layers: ReadonlySet<string>): string[] {
    const nodes = this.nodes.filter((n) => layers.has(n.layer));
    const produced = new Set(nodes.flatMap((n) => n.outputs));
    const inits = new Set(this.initializers.map((t) => t.name));
    return [...new Set(nodes.flatMap((n) => n.inputs))].filter((i) => i !== '' && !produced.has(i) && !inits.has(i));
  }
}

export interface ModelMeta {
  producerVersion: string;
  graphName: string;
  docString?: string;
  /** metadata_props: read only when encoded, the last field (see EncodedModel.tail) */
  metadata: Record<string, string>;
}

/**
 * An encoded ONNX ModelProto as a list of byte pieces in file order: the small fields' bytes, and each
 * initializer's raw_data as the very bytes it was given (for weights: a view of the caffemodel buffer), so a
 * 550 MB model is never copied into one buffer unless `toBytes` asks for it.
 */
export class EncodedModel {
  private tailBytes?: Uint8Array;

  constructor(
    /** every field before metadata_props (14): ir_version … graph (7), opset_import (8) */
    readonly body: readonly Uint8Array[],
    readonly bodyLength: number,
    private readonly encodeTail: () => Uint8Array,
  ) {}

  /** metadata_props, encoded on first use: the metadata may hold digests worth computing only when written */
  get tail(): Uint8Array {
    return (this.tailBytes ??= this.encodeTail());
  }

  get length(): number {
    return this.bodyLength + this.tail.length;
  }

  /** the whole model in one buffer */
  toBytes(): Uint8Array {
    return Buffer.concat([...this.body, this.tail], this.length);
  }
}

/**
 * Protobuf wire format for the part of onnx.proto modelship writes (schema/onnx.ts), by hand: no schema to parse
 * and no codecs to generate at start-up. Fields go out in field-number order, as protobufjs writes them, with the
 * same presence rules (a set field is written even when empty; an empty repeated field is not; repeated scalars of
 * this proto2 schema unpacked), so the bytes are those protobufjs gives for the same model (test/onnx-write.test.ts).
 */
class Pb {
  private buf = Buffer.allocUnsafe(128);
  len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** an unsigned varint (lengths, field keys, non-negative integers up to 2^53) */
  uvarint(n: number): this {
    this.room(10);
    while (n > 0x7f) {
      this.buf[this.len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.len++] = n;
    return this;
  }

  /**
   * int64 / int32 / enum, as protobufjs writes a number (through Long): a fraction truncated, NaN as 0, out of
   * range saturated to int64's; a negative value is its 64-bit two's complement, ten bytes
   */
  int(n: number): this {
    if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) return this.uvarint(Math.trunc(n));
    let v = Number.isNaN(n) ? 0n : n + 1 >= 2 ** 63 ? 2n ** 63n - 1n : n <= -(2 ** 63) ? -(2n ** 63n) : BigInt(Math.trunc(n));
    v = BigInt.asUintN(64, v);
    this.room(10);
    while (v > 0x7fn) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
    return this;
  }

  key(field: number, wire: number): this {
    return this.uvarint(field * 8 + wire);
  }

  intField(field: number, n: number): this {
    return this.key(field, 0).int(n);
  }

  floatField(field: number, f: number): this {
    this.key(field, 5).room(4);
    this.buf.writeFloatLE(f, this.len);
    this.len += 4;
    return this;
  }

  bytesField(field: number, b: Uint8Array): this {
    this.key(field, 2).uvarint(b.length).room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  stringField(field: number, s: string): this {
    return this.bytesField(field, Buffer.from(s, 'utf8'));
  }

  messageField(field: number, m: Pb): this {
    return this.bytesField(field, m.bytes());
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

function encodeAttr(name: string, a: Attr): Pb {
  // AttributeProto: name (1), f (2) | i (3) | s (4) | floats (7) | ints (8), type (20)
  const m = new Pb().stringField(1, name);
  switch (a.type) {
    case AttrType.FLOAT:
      m.floatField(2, a.f);
      break;
    case AttrType.INT:
      m.intField(3, a.i);
      break;
    case AttrType.STRING:
      m.stringField(4, a.s);
      break;
    case AttrType.FLOATS:
      for (const f of a.floats) m.floatField(7, f);
      break;
    case AttrType.INTS:
      for (const i of a.ints) m.intField(8, i);
      break;
  }
  return m.intField(20, a.type);
}

function encodeNode(n: NodeSpec): Pb {
  // NodeProto: input (1), output (2), name (3), op_type (4), attribute (5)
  const m = new Pb();
  for (const i of n.inputs) m.stringField(1, i);
  for (const o of n.outputs) m.stringField(2, o);
  m.stringField(3, n.name).stringField(4, n.op);
  for (const [k, a] of Object.entries(n.attrs)) m.messageField(5, encodeAttr(k, a));
  return m;
}

function encodeValueInfo(v: Value): Pb {
  // ValueInfoProto: name (1), type (2) { tensor_type (1) { elem_type (1), shape (2) { dim (1) { dim_value (1) | dim_param (2) } } } }
  const shape = new Pb();
  for (const d of v.shape) shape.messageField(1, typeof d === 'number' ? new Pb().intField(1, d) : new Pb().stringField(2, d));
  const tensor = new Pb().intField(1, TensorDataType.FLOAT).messageField(2, shape);
  return new Pb().stringField(1, v.name).messageField(2, new Pb().messageField(1, tensor));
}

function encodeModel(meta: ModelMeta, nodes: NodeSpec[], initializers: Initializer[], inputs: Value[], outputs: Value[]): EncodedModel {
  // GraphProto: node (1), name (2) | initializer (5)… | input (11), output (12)
  const pieces: Uint8Array[] = [];
  let graphLength = 0;
  const add = (b: Uint8Array) => {
    pieces.push(b);
    graphLength += b.length;
  };
  const head = new Pb();
  for (const n of nodes) head.messageField(1, encodeNode(n));
  add(head.stringField(2, meta.graphName).bytes());
  for (const t of initializers) {
    // TensorProto: dims (1), data_type (2), name (8), raw_data (9): its framing here, the data itself a piece of its own
    const tensor = new Pb();
    for (const d of t.dims) tensor.intField(1, d);
    tensor.intField(2, t.dataType).stringField(8, t.name).key(9, 2).uvarint(t.raw.length);
    add(
      new Pb()
        .key(5, 2)
        .uvarint(tensor.len + t.raw.length)
        .bytes(),
    );
    add(tensor.bytes());
    if (t.raw.length) add(t.raw);
  }
  const io = new Pb();
  for (const v of inputs) io.messageField(11, encodeValueInfo(v));
  for (const v of outputs) io.messageField(12, encodeValueInfo(v));
  add(io.bytes());

  // ModelProto: ir_version (1), producer_name (2), producer_version (3), doc_string (6), graph (7) | opset_import (8) | metadata_props (14)
  const model = new Pb()
    .intField(1, IR_VERSION)
    .stringField(2, 'modelship')
    .stringField(3, meta.producerVersion)
    .stringField(6, meta.docString ?? '');
  model.key(7, 2).uvarint(graphLength);
  const opset = new Pb().messageField(8, new Pb().stringField(1, '').intField(2, OPSET)).bytes();
  const body = [model.bytes(), ...pieces, opset];
  const tail = () => {
    const m = new Pb();
    for (const [key, value] of Object.entries(meta.metadata)) m.messageField(14, new Pb().stringField(1, key).stringField(2, value));
    return m.bytes();
  };
  return new EncodedModel(body, model.len + graphLength + opset.length, tail);
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function toLE(bytes: Uint8Array, width: number): Uint8Array {
  if (littleEndianHost) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  return out;
}

export function count(shape: number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}
