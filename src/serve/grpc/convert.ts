import { encodeBytesTensor, jsonNumberArray, ProtocolError, RequestedOutput, responseTensors, ResponseTensor } from '../../protocol/kserve';
import { InferResults } from '../inference';

/**
 * gRPC's inference messages and the server's own: a ModelInferRequest into the InferRequest that HTTP's /infer parses
 * (through the same parser, so that every datatype is taken or refused by the same rules and in the same words), and
 * the model's results into a ModelInferResponse. Messages are proto-loader's plain objects (src/protocol/grpc.ts):
 * the proto's field names, int64s as numbers, bytes as Buffers, absent fields left out.
 */

/** An InferParameter: one of its oneof's fields, `parameter_choice` naming which. */
export interface InferParameter {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  uint64_param?: number;
  parameter_choice?: string;
}

/** A proto `map<string, InferParameter>`, as proto-loader reads a map field: an object by key. */
export type ParameterMap = Record<string, InferParameter>;

export interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: number[];
  uint_contents?: number[];
  uint64_contents?: number[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

export interface ModelInferRequest {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: ParameterMap;
  inputs?: { name?: string; datatype?: string; shape?: number[]; parameters?: ParameterMap; contents?: InferTensorContents }[];
  outputs?: { name?: string; parameters?: ParameterMap }[];
  raw_input_contents?: Buffer[];
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: { name: string; datatype: string; shape: number[] }[];
  raw_output_contents: Buffer[];
}

/** A parameter map's values by key. */
export function parameterValues(p: ParameterMap | undefined): Map<string, InferParameter> {
  return new Map(Object.entries(p ?? {}));
}

/** An InferParameter's value, whichever of the oneof's fields holds it. */
function parameterValue(p: InferParameter): unknown {
  return p.parameter_choice
    ? p[p.parameter_choice as keyof InferParameter]
    : (p.bool_param ?? p.int64_param ?? p.string_param ?? p.double_param ?? p.uint64_param);
}

/**
 * Where a datatype's typed values go in InferTensorContents (the proto's comments say which). FP16 and BF16 have no
 * field, and BYTES (bytes_contents) is no datatype of an FP32 model: the parser refuses those by name.
 */
const CONTENTS_FIELD = new Map<string, keyof InferTensorContents>([
  ['BOOL', 'bool_contents'],
  ['INT8', 'int_contents'],
  ['INT16', 'int_contents'],
  ['INT32', 'int_contents'],
  ['INT64', 'int64_contents'],
  ['UINT8', 'uint_contents'],
  ['UINT16', 'uint_contents'],
  ['UINT32', 'uint_contents'],
  ['UINT64', 'uint64_contents'],
  ['FP32', 'fp32_contents'],
  ['FP64', 'fp64_contents'],
]);

/**
 * A ModelInferRequest as the request body HTTP's /infer would have had: `raw_input_contents` (each input's
 * little-endian bytes, in order, as Triton sends them) are the binary tensor data extension's bytes behind a JSON
 * part naming their sizes; typed `contents` are the JSON part's "data". parseInferRequest (or, for a large JSON
 * part, a decode thread) then reads it, checking datatypes and converting to FP32 exactly as for HTTP.
 * Triton's rules for the message itself, checked here: raw contents are one per input or none, and an input's typed
 * values are in its datatype's field.
 */
export function requestBody(msg: ModelInferRequest): { body: Buffer; headerLength?: number } {
  const inputs = msg.inputs ?? [];
  const raw = msg.raw_input_contents ?? [];
  if (inputs.length === 0) throw new ProtocolError(400, 'the request needs at least one input (ModelInferRequest.inputs is empty)');
  const outputs = (msg.outputs ?? []).map((o) => {
    const c = parameterValues(o.parameters).get('classification');
    // (a binary_data parameter means nothing over gRPC, where every output is raw bytes)
    return { name: o.name ?? '', ...(c !== undefined ? { parameters: { classification: parameterValue(c) } } : {}) };
  });
  // (as the parser names an input)
  const input = (i: number) => (inputs[i].name ? `input "${inputs[i].name}"` : `inputs[${i}]`);
  if (raw.length > 0) {
    if (raw.length !== inputs.length)
      throw new ProtocolError(400, `raw_input_contents has ${raw.length} entries for ${inputs.length} inputs: it takes one per input, in order, or none`);
    const withContents = inputs.findIndex((t) => t.contents !== undefined);
    if (withContents >= 0)
      throw new ProtocolError(400, `${input(withContents)}: contents and raw_input_contents are both given (the request's inputs take one or the other)`);
    const json = Buffer.from(
      JSON.stringify({
        inputs: inputs.map((t, i) => ({ name: t.name, shape: t.shape ?? [], datatype: t.datatype, parameters: { binary_data_size: raw[i].length } })),
        outputs,
      }),
    );
    // padded with spaces (JSON whitespace) to a multiple of 4 bytes, so that the FP32 data after it is aligned and
    // read in place (Buffer.concat's buffer starts 8-byte aligned)
    const pad = Buffer.alloc((4 - (json.length % 4)) % 4, ' ');
    return { body: Buffer.concat([json, pad, ...raw]), headerLength: json.length + pad.length };
  }
  const parts = inputs.map((t, i) => {
    const datatype = t.datatype ?? '';
    const field = CONTENTS_FIELD.get(datatype);
    const given = Object.entries(t.contents ?? {})
      .filter(([, v]) => Array.isArray(v) && v.length > 0)
      .map(([k]) => k);
    if (given.length === 0 && field) throw new ProtocolError(400, `${input(i)} has no contents.${field} and the request has no raw_input_contents`);
    if (field && given.some((k) => k !== field))
      throw new ProtocolError(400, `${input(i)}: ${datatype} values go in contents.${field}, not ${given.filter((k) => k !== field).join(', ')}`);
    const values = (field && t.contents?.[field]) || [];
    const shape = t.shape ?? [];
    const count = shape.reduce((a, d) => a * d, 1);
    if (field && values.length !== count)
      throw new ProtocolError(400, `${input(i)}: shape [${shape.join(', ')}] needs ${count} values, contents.${field} has ${values.length}`);
    // (numbers as Triton writes JSON, NaN and infinities as tokens the parser reads back)
    const data = field === 'bool_contents' ? JSON.stringify(values) : jsonNumberArray(values as number[]);
    return `${JSON.stringify({ name: t.name, shape, datatype: t.datatype }).slice(0, -1)},"data":${data}}`;
  });
  return { body: Buffer.from(`{"inputs":[${parts.join(',')}],"outputs":${JSON.stringify(outputs)}}`) };
}

/** The raw bytes of a response tensor, as Triton sends them: FP32 little-endian; BYTES each a 4-byte length, then its bytes. */
function rawContents(t: ResponseTensor): Buffer {
  return t.datatype === 'BYTES' ? encodeBytesTensor(t.data) : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * The model's results as a ModelInferResponse: the requested outputs (all, in the model's order, when none are
 * named), each as raw bytes (Triton's gRPC answers so, whatever the request's binary_data), a classification output
 * as its BYTES tensor (responseTensors, the same as HTTP's).
 */
export function inferResponse(
  model: { name: string; version: string },
  id: string | undefined,
  requested: RequestedOutput[],
  results: InferResults,
  labels?: readonly string[],
): ModelInferResponse {
  const tensors = responseTensors(results, requested, true, labels);
  return {
    model_name: model.name,
    model_version: model.version,
    ...(id ? { id } : {}),
    outputs: tensors.map((t) => ({ name: t.name, datatype: t.datatype ?? 'FP32', shape: t.shape })),
    raw_output_contents: tensors.map(rawContents),
  };
}
