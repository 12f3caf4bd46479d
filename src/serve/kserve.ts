/**
 * The KServe v2 inference protocol (also Triton's): JSON tensors and the binary tensor data extension.
 * Pure functions from request bytes to typed tensors and back, so the server and the smoke/canary clients
 * share one implementation.
 */

export class ProtocolError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Datatype = 'FP32' | 'FP64' | 'INT64' | 'INT32' | 'UINT8' | 'BOOL' | 'BYTES';

export interface RequestTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: Float32Array;
}

export interface InferRequest {
  id?: string;
  inputs: RequestTensor[];
  /** requested outputs; empty = all */
  outputs: { name: string; binary?: boolean }[];
  /** `parameters.binary_data_output`: every output as binary */
  binaryOutputs: boolean;
}

export interface ResponseTensor {
  name: string;
  shape: number[];
  data: Float32Array;
  binary: boolean;
}

const BYTES_PER: Record<string, number> = { FP32: 4, FP64: 8, INT64: 8, INT32: 4, UINT8: 1 };

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Header that tells how much of the body is the JSON part (the rest is binary tensor data). */
export const HEADER_LENGTH = 'inference-header-content-length';

function toFloat32(datatype: string, bytes: Uint8Array, count: number, name: string): Float32Array {
  const need = count * (BYTES_PER[datatype] ?? 0);
  if (!BYTES_PER[datatype]) throw new ProtocolError(400, `input "${name}": datatype ${datatype} is not supported (FP32, FP64, INT64, INT32, UINT8)`);
  if (bytes.byteLength !== need) throw new ProtocolError(400, `input "${name}": binary data has ${bytes.byteLength} bytes, shape and ${datatype} need ${need}`);
  if (datatype === 'FP32' && LITTLE_ENDIAN) {
    // the common case: a view when the bytes are 4-byte aligned (the server reads bodies so that they are),
    // else one memcpy into an aligned array instead of a DataView read per value
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
    const copy = new Float32Array(count);
    new Uint8Array(copy.buffer).set(bytes);
    return copy;
  }
  const out = new Float32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) {
    switch (datatype) {
      case 'FP32':
        out[i] = dv.getFloat32(i * 4, true);
        break;
      case 'FP64':
        out[i] = dv.getFloat64(i * 8, true);
        break;
      case 'INT64':
        out[i] = Number(dv.getBigInt64(i * 8, true));
        break;
      case 'INT32':
        out[i] = dv.getInt32(i * 4, true);
        break;
      default:
        out[i] = dv.getUint8(i);
    }
  }
  return out;
}

function flatten(data: unknown, into: number[], name: string): void {
  if (Array.isArray(data)) {
    for (const d of data) flatten(d, into, name);
  } else if (typeof data === 'number') {
    into.push(data);
  } else if (typeof data === 'boolean') {
    into.push(data ? 1 : 0);
  } else {
    throw new ProtocolError(400, `input "${name}": data must be numbers (nested arrays allowed), found ${data === null ? 'null' : typeof data}`);
  }
}

/** Parse an infer request body (JSON, or JSON header + binary tensors when `headerLength` is given). */
export function parseInferRequest(body: Buffer, headerLength: number | undefined): InferRequest {
  let jsonPart: Buffer = body;
  let binary: Buffer = Buffer.alloc(0);
  if (headerLength !== undefined) {
    if (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length) {
      throw new ProtocolError(400, `Inference-Header-Content-Length ${headerLength} does not fit the ${body.length}-byte body`);
    }
    jsonPart = body.subarray(0, headerLength);
    binary = body.subarray(headerLength);
  }
  let req: Record<string, unknown>;
  try {
    req = JSON.parse(jsonPart.toString('utf8'));
  } catch (e) {
    throw new ProtocolError(400, `malformed JSON in the request: ${(e as Error).message}`);
  }
  if (typeof req !== 'object' || req === null || !Array.isArray(req.inputs) || req.inputs.length === 0) {
    throw new ProtocolError(400, 'the request needs a non-empty "inputs" array');
  }
  let offset = 0;
  const inputs: RequestTensor[] = (req.inputs as Record<string, unknown>[]).map((t, i) => {
    const name = typeof t?.name === 'string' ? t.name : '';
    if (!name) throw new ProtocolError(400, `inputs[${i}] has no "name"`);
    const shape = t.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) throw new ProtocolError(400, `input "${name}": "shape" must be an array of non-negative integers`);
    const datatype = typeof t.datatype === 'string' ? t.datatype : '';
    if (!datatype) throw new ProtocolError(400, `input "${name}": "datatype" is required`);
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    const params = (t.parameters ?? {}) as Record<string, unknown>;
    if (params.binary_data_size !== undefined) {
      const size = Number(params.binary_data_size);
      if (!Number.isInteger(size) || size < 0 || offset + size > binary.length) {
        throw new ProtocolError(400, `input "${name}": binary_data_size ${params.binary_data_size} exceeds the binary part of the body`);
      }
      const data = toFloat32(datatype, binary.subarray(offset, offset + size), count, name);
      offset += size;
      return { name, shape: shape as number[], datatype, data };
    }
    if (!['FP32', 'FP64', 'INT64', 'INT32', 'UINT8', 'BOOL'].includes(datatype)) throw new ProtocolError(400, `input "${name}": datatype ${datatype} is not supported`);
    const flat: number[] = [];
    flatten(t.data, flat, name);
    if (flat.length !== count) throw new ProtocolError(400, `input "${name}": shape [${(shape as number[]).join(', ')}] needs ${count} values, "data" has ${flat.length}`);
    return { name, shape: shape as number[], datatype, data: Float32Array.from(flat) };
  });
  if (offset !== binary.length) throw new ProtocolError(400, `${binary.length - offset} bytes of binary data are not claimed by any input`);
  const reqParams = (req.parameters ?? {}) as Record<string, unknown>;
  const outputs = Array.isArray(req.outputs)
    ? (req.outputs as Record<string, unknown>[]).map((o) => {
        // a per-output binary_data, true or false, overrides binary_data_output; absent, the request's setting holds
        const b = (o?.parameters as Record<string, unknown> | undefined)?.binary_data;
        return { name: String(o?.name ?? ''), binary: b === undefined ? undefined : Boolean(b) };
      })
    : [];
  return { id: typeof req.id === 'string' ? req.id : undefined, inputs, outputs, binaryOutputs: Boolean(reqParams.binary_data_output) };
}

/** Encode an infer response: JSON, or JSON header + binary tensors (returns the header length to send). */
export function encodeInferResponse(model: string, version: string, id: string | undefined, outputs: ResponseTensor[]): { body: Buffer; headerLength?: number } {
  const binaries: Buffer[] = [];
  const json = {
    model_name: model,
    model_version: version,
    ...(id !== undefined ? { id } : {}),
    outputs: outputs.map((o) => {
      if (o.binary) {
        const b = Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength);
        binaries.push(b);
        return { name: o.name, datatype: 'FP32', shape: o.shape, parameters: { binary_data_size: b.length } };
      }
      return { name: o.name, datatype: 'FP32', shape: o.shape, data: Array.from(o.data) };
    }),
  };
  const head = Buffer.from(JSON.stringify(json), 'utf8');
  if (binaries.length === 0) return { body: head };
  return { body: Buffer.concat([head, ...binaries]), headerLength: head.length };
}

/** Client side: build a binary-extension request for FP32 inputs (used by smoke tests and canary checks). */
export function encodeInferRequest(inputs: { name: string; shape: number[]; data: Float32Array }[], opts: { binaryOutputs?: boolean; id?: string } = {}): { body: Buffer; headerLength: number } {
  const json = {
    ...(opts.id ? { id: opts.id } : {}),
    inputs: inputs.map((t) => ({ name: t.name, shape: t.shape, datatype: 'FP32', parameters: { binary_data_size: t.data.byteLength } })),
    ...(opts.binaryOutputs ? { parameters: { binary_data_output: true } } : {}),
  };
  const head = Buffer.from(JSON.stringify(json), 'utf8');
  return { body: Buffer.concat([head, ...inputs.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]), headerLength: head.length };
}

/** Client side: decode a response (JSON or binary extension) into FP32 tensors. */
export function decodeInferResponse(body: Buffer, headerLength: number | undefined): { outputs: { name: string; shape: number[]; data: Float32Array }[] } {
  const head = headerLength === undefined ? body : body.subarray(0, headerLength);
  const json = JSON.parse(head.toString('utf8')) as { outputs: { name: string; shape: number[]; datatype: string; data?: number[]; parameters?: { binary_data_size?: number } }[] };
  let offset = headerLength ?? body.length;
  return {
    outputs: json.outputs.map((o) => {
      const count = o.shape.reduce((a, d) => a * d, 1);
      if (o.parameters?.binary_data_size !== undefined) {
        const size = o.parameters.binary_data_size;
        const data = toFloat32(o.datatype, body.subarray(offset, offset + size), count, o.name);
        offset += size;
        return { name: o.name, shape: o.shape, data };
      }
      return { name: o.name, shape: o.shape, data: Float32Array.from(o.data ?? []) };
    }),
  };
}
