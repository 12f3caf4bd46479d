import { onnxSchema } from './schema/onnx';
import { ModelshipError } from '../util/errors';

export interface TensorSig {
  name: string;
  /** dims; symbolic ones as their name */
  shape: (number | string)[];
  /** element type: ONNX TensorProto.DataType number (1 FLOAT, 7 INT64, 10 FLOAT16, ...); absent when the model does not say */
  elemType?: number;
}

export interface OnnxInfo {
  inputs: TensorSig[];
  outputs: TensorSig[];
  opset: number;
  metadata: Record<string, string>;
}

type Dim = { dim_value?: number; dim_param?: string };
type VI = { name: string; type?: { tensor_type?: { elem_type?: number; shape?: { dim?: Dim[] } } } };

/** Inputs (initializers excluded), outputs, opset and metadata of an ONNX model. */
export function onnxInfo(model: Uint8Array, file = 'model.onnx'): OnnxInfo {
  const Model = onnxSchema().lookupType('onnx.ModelProto');
  let m: {
    graph?: { input?: VI[]; output?: VI[]; initializer?: { name: string }[] };
    opset_import?: { domain?: string; version?: number }[];
    metadata_props?: { key: string; value: string }[];
  };
  try {
    m = Model.toObject(Model.decode(model), { longs: Number, bytes: String });
  } catch (e) {
    throw new ModelshipError('binary', `not an ONNX model: ${(e as Error).message}`, { file });
  }
  if (!m.graph) throw new ModelshipError('binary', 'not an ONNX model (no graph)', { file });
  const inits = new Set((m.graph.initializer ?? []).map((i) => i.name));
  const sig = (v: VI): TensorSig => {
    const s: TensorSig = {
      name: v.name,
      shape: (v.type?.tensor_type?.shape?.dim ?? []).map((d) => (d.dim_value !== undefined ? d.dim_value : (d.dim_param ?? '?'))),
    };
    const elem = v.type?.tensor_type?.elem_type;
    if (elem !== undefined) s.elemType = elem;
    return s;
  };
  return {
    inputs: (m.graph.input ?? []).filter((i) => !inits.has(i.name)).map(sig),
    outputs: (m.graph.output ?? []).map(sig),
    opset: (m.opset_import ?? []).find((o) => !o.domain)?.version ?? 0,
    metadata: Object.fromEntries((m.metadata_props ?? []).map((p) => [p.key, p.value])),
  };
}
