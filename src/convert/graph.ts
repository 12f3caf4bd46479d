import { onnxSchema, TensorDataType, AttrType } from './schema/onnx';
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
    if (fd.length !== count) throw new Error(`internal: initializer ${name} has ${fd.length} values for dims [${dims}]`);
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
    return this.encodeGraph(meta, this.nodes, this.initializers, this.inputs, [...this.outputs, ...extraOutputs]);
  }

  /**
   * A model of just the nodes of `layers`, fed by `inputs` (values they read from outside) and producing
   * `outputs`: per-layer parity runs each layer on Caffe's own bottoms, so float drift from earlier layers
   * does not count against it.
   */
  encodeLayers(meta: ModelMeta, layers: ReadonlySet<string>, inputs: Value[], outputs: Value[]): Uint8Array {
    const nodes = this.nodes.filter((n) => layers.has(n.layer));
    const used = new Set(nodes.flatMap((n) => n.inputs));
    return this.encodeGraph(meta, nodes, this.initializers.filter((t) => used.has(t.name)), inputs, outputs);
  }

  /** The values the nodes of `layers` read that neither they nor initializers produce. */
  externalInputs(layers: ReadonlySet<string>): string[] {
    const nodes = this.nodes.filter((n) => layers.has(n.layer));
    const produced = new Set(nodes.flatMap((n) => n.outputs));
    const inits = new Set(this.initializers.map((t) => t.name));
    return [...new Set(nodes.flatMap((n) => n.inputs))].filter((i) => i !== '' && !produced.has(i) && !inits.has(i));
  }

  private encodeGraph(meta: ModelMeta, nodes: NodeSpec[], initializers: Initializer[], inputs: Value[], outputs: Value[]): Uint8Array {
    const root = onnxSchema();
    const Model = root.lookupType('onnx.ModelProto');
    const valueInfo = (v: Value) => ({
      name: v.name,
      type: {
        tensor_type: {
          elem_type: TensorDataType.FLOAT,
          shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
        },
      },
    });
    const model = {
      ir_version: IR_VERSION,
      opset_import: [{ domain: '', version: OPSET }],
      producer_name: 'modelship',
      producer_version: meta.producerVersion,
      doc_string: meta.docString ?? '',
      graph: {
        name: meta.graphName,
        node: nodes.map((n) => ({
          name: n.name,
          op_type: n.op,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attrs).map(([k, a]) => encodeAttr(k, a)),
        })),
        initializer: initializers.map((t) => ({ name: t.name, dims: t.dims, data_type: t.dataType, raw_data: t.raw })),
        input: inputs.map(valueInfo),
        output: outputs.map(valueInfo),
      },
      metadata_props: Object.entries(meta.metadata).map(([key, value]) => ({ key, value })),
    };
    return Model.encode(Model.fromObject(model)).finish();
  }
}

export interface ModelMeta {
  producerVersion: string;
  graphName: string;
  docString?: string;
  metadata: Record<string, string>;
}

function encodeAttr(name: string, a: Attr): Record<string, unknown> {
  switch (a.type) {
    case AttrType.FLOAT:
      return { name, type: a.type, f: a.f };
    case AttrType.INT:
      return { name, type: a.type, i: a.i };
    case AttrType.STRING:
      return { name, type: a.type, s: Buffer.from(a.s, 'utf8') };
    case AttrType.FLOATS:
      return { name, type: a.type, floats: a.floats };
    case AttrType.INTS:
      return { name, type: a.type, ints: a.ints };
  }
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
