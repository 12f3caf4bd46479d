/**
 * The KServe v2 inference protocol (also Triton's): JSON tensors, the binary tensor data extension and the
 * classification extension. Pure functions from request bytes to typed tensors and back, so the server and the
 * smoke/canary clients share one implementation.
 *
 * NaN and infinities in JSON: JSON has no token for them. Triton's HTTP frontend writes them as the bare tokens `NaN`,
 * `Infinity` and `-Infinity` (rapidjson's Writer with kWriteNanAndInfFlag, in triton-inference-server/common
 * include/triton/common/triton_json.h) and parses bodies with kParseNanAndInfFlag, which reads `NaN`, `Inf` and
 * `Infinity`, each optionally after a `-`. We do the same: responses carry those three tokens (not JSON.stringify's
 * `null`, which loses the value), and request bodies (and, client side, responses) may carry any token rapidjson
 * reads, outside strings. Python's json module reads and writes these same three tokens; strict JSON parsers
 * (JSON.parse, Go's encoding/json, jq) reject them, so a client that needs strict JSON asks for binary outputs.
 */

import { classificationStrings } from './classification';

export class ProtocolError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The protocol's tensor datatypes. */
export type Datatype = 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'FP16' | 'BF16' | 'FP32' | 'FP64' | 'BYTES';

export interface RequestTensor {
  name: string;
  shape: number[];
  /** the datatype the request declared; `data` is always its lossless FP32 conversion */
  datatype: string;
  data: Float32Array;
}

export interface RequestedOutput {
  name: string;
  /** `parameters.binary_data`: overrides the request's binary_data_output either way; absent, that holds */
  binary?: boolean;
  /** `parameters.classification`: return the top N classes of each batch item instead of the tensor */
  classification?: number;
}

export interface InferRequest {
  id?: string;
  inputs: RequestTensor[];
  /** requested outputs; empty = all */
  outputs: RequestedOutput[];
  /** `parameters.binary_data_output`: every output as binary */
  binaryOutputs: boolean;
}

/** A response tensor: the model's FP32 output, or (classification) BYTES strings. */
export type ResponseTensor = { name: string; shape: number[]; binary: boolean } & (
  { datatype?: 'FP32'; data: Float32Array } | { datatype: 'BYTES'; data: string[] }
);

/** A tensor decoded by the client side: numeric outputs as FP32 in `data`; BYTES outputs in `strings` (`data` empty). */
export interface DecodedTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: Float32Array;
  strings?: string[];
}

/** Header that tells how much of the body is the JSON part (the rest is binary tensor data). */
export const HEADER_LENGTH = 'inference-header-content-length';

// (Maps, not object literals: a client's datatype "constructor" must not find Object.prototype's)
const BYTES_PER = new Map<string, number>(
  Object.entries({ BOOL: 1, UINT8: 1, UINT16: 2, UINT32: 4, UINT64: 8, INT8: 1, INT16: 2, INT32: 4, INT64: 8, FP32: 4, FP64: 8 }),
);
/** protocol datatypes the model's FP32 input cannot take (FP16/BF16 would convert, but are not accepted: say so) */
const REFUSED = new Set(['FP16', 'BF16', 'BYTES']);
/** integer datatypes: their range, and how an error message writes it */
const INT_RANGE = new Map<string, [number, number, string]>([
  ['UINT8', [0, 255, '[0, 255]']],
  ['UINT16', [0, 65535, '[0, 65535]']],
  ['UINT32', [0, 4294967295, '[0, 4294967295]']],
  ['UINT64', [0, 2 ** 64 - 1, '[0, 2^64-1]']],
  ['INT8', [-128, 127, '[-128, 127]']],
  ['INT16', [-32768, 32767, '[-32768, 32767]']],
  ['INT32', [-2147483648, 2147483647, '[-2147483648, 2147483647]']],
  ['INT64', [-(2 ** 63), 2 ** 63 - 1, '[-2^63, 2^63-1]']],
]);
/** JSON nesting limit for "data" (Triton's HTTP_MAX_JSON_NESTING_DEPTH) */
const MAX_DEPTH = 100;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------------------------
// JSON with NaN and infinities

/** What a NaN token becomes on its way through JSON.parse (then replaced by NaN); a string no client sends by chance. */
const NAN_SENTINEL = '\u0000modelship:NaN';
const NAN_LITERAL = JSON.stringify(NAN_SENTINEL);
/**
 * A string literal (kept as it is), or a NaN/infinity token outside strings as rapidjson reads them. A token just
 * before a colon would be an object key: left alone, so that JSON.parse refuses it.
 */
const SPECIAL = /"[^"\\]*(?:\\[\s\S][^"\\]*)*"|-?(?:NaN|Infinity|Inf)(?!\s*:)/g;

/**
 * JSON.parse, also reading `NaN`, `Inf`, `Infinity` (each optionally after `-`) outside strings, as rapidjson does
 * with kParseNanAndInfFlag. Infinities are rewritten to 1e999 (which JSON.parse reads as Infinity); NaN to a sentinel
 * string, replaced by NaN after parsing. A body without "NaN" or "Inf" anywhere (the common case) is JSON.parse alone.
 *
 * Cost, measured on a 65 MiB request of 3.3 M FP32 numbers, half of them negative (Node 20, 2 shared vCPUs, medians
 * and minima of 7-11 interleaved runs): JSON.parse 1.0-1.5 s; parseJson without tokens the same (two indexOf scans);
 * with NaN and Infinity tokens 1.1-1.33x JSON.parse (the regex rewrite 0.26-0.37 s, the NaN walk 0.05-0.07 s). A
 * 50 MB string literal goes through the rewrite in 0.2 s (its pattern loops without backtracking per character).
 */
export function parseJson(text: string): unknown {
  if (text.indexOf('NaN') === -1 && text.indexOf('Inf') === -1) return JSON.parse(text);
  let nans = 0;
  let clash = false;
  const rewritten = text.replace(SPECIAL, (m) => {
    if (m.charCodeAt(0) === 34) {
      // only a string with an escape can spell the sentinel (U+0000 must be escaped)
      if (m.length < 80 && m.indexOf('\\') !== -1) {
        try {
          clash ||= JSON.parse(m) === NAN_SENTINEL;
        } catch {
          // malformed: JSON.parse below says so
        }
      }
      return m;
    }
    if (m.endsWith('NaN')) {
      nans++;
      return NAN_LITERAL;
    }
    return m.charCodeAt(0) === 45 ? '-1e999' : '1e999';
  });
  const value = JSON.parse(rewritten) as unknown;
  if (nans === 0) return value;
  if (clash) throw new SyntaxError(`a string equal to ${NAN_LITERAL} cannot be told from a NaN token`);
  return reviveNaN(value);
}

/** Replace the NaN sentinel by NaN everywhere in a parsed value (iteratively: nesting depth is the client's). */
function reviveNaN(root: unknown): unknown {
  if (root === NAN_SENTINEL) return NaN;
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (x === NAN_SENTINEL) v[i] = NaN;
        else if (typeof x === 'object' && x !== null) stack.push(x);
      }
    } else if (typeof v === 'object' && v !== null) {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        const x = o[k];
        if (x === NAN_SENTINEL) o[k] = NaN;
        else if (typeof x === 'object' && x !== null) stack.push(x);
      }
    }
  }
  return root;
}

/** One number as Triton writes it: NaN, Infinity, -Infinity as bare tokens, negative zero as -0.0 (rapidjson's). */
function jsonNumber(v: number): string {
  if (v !== v) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v === 0 && 1 / v < 0) return '-0.0';
  return String(v);
}

/**
 * A JSON array of numbers, with NaN and infinities as Triton writes them (see the top of this file). Finite values
 * are JavaScript's shortest round-trip form, the same value as rapidjson's (it writes e.g. `1.0` and `1e21` where we
 * write `1` and `1e+21`). Arrays of finite numbers (the usual case) go through JSON.stringify.
 */
export function jsonNumberArray(a: ArrayLike<number>): string {
  let plain = true;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (v - v !== 0 || (v === 0 && 1 / v < 0)) {
      plain = false;
      break;
    }
  }
  if (plain) return JSON.stringify(Array.from(a));
  const parts = new Array<string>(a.length);
  for (let i = 0; i < a.length; i++) parts[i] = jsonNumber(a[i]);
  return `[${parts.join(',')}]`;
}

// ---------------------------------------------------------------------------------------------------------------
// Datatypes: any numeric input converts to the model's FP32 where that loses nothing.
//
// The served models take FP32. FP32 is taken as is (JSON numbers round to the nearest FP32, as Triton's
// `float = double` does). FP64, INT8/16/32/64, UINT8/16/32/64 and BOOL convert only when every element is valid for
// its declared datatype and exactly an FP32 value; otherwise 400 naming the input, the datatype and the first offending
// element (flat row-major index, value). The protocol lets a server coerce or refuse (required_api.md, "Tensor Data");
// we refuse rather than round. In JSON: integer types take JSON numbers with an integer value within the type's range
// (`2.0` passes: JSON.parse cannot tell it from `2`, where Triton's rapidjson would refuse it); INT64/UINT64 beyond
// ±2^53 are refused because the parser has already rounded them (send those as binary data, checked exactly). BOOL
// takes true/false only, not 0/1: Triton reads it with AsBool (JSON booleans) and the protocol's gRPC form is
// bool_contents; in binary data a BOOL is one byte, 0 or 1 (the binary extension), any other byte is a 400.
// FP16, BF16 and BYTES are refused (400 naming the input).

function checkDatatype(datatype: string, name: string): void {
  if (REFUSED.has(datatype))
    throw new ProtocolError(
      400,
      `input "${name}": datatype ${datatype} is not supported (the model takes FP32; send FP32, or FP64, INT8-64, UINT8-64 or BOOL values that FP32 holds exactly)`,
    );
  if (!BYTES_PER.has(datatype)) throw new ProtocolError(400, `input "${name}": datatype ${datatype} is not supported (not a KServe v2 datatype)`);
}

function shown(v: unknown): string {
  if (typeof v === 'number') return jsonNumber(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function badElement(name: string, datatype: string, index: number, value: unknown, why: string): ProtocolError {
  return new ProtocolError(400, `input "${name}": ${datatype} element ${index} (${shown(value)}) ${why}`);
}

const NOT_EXACT = "is not exactly representable in FP32, the model's datatype";

/**
 * Binary tensor data as FP32. `strict` (the server): every element must be valid for its datatype and exactly
 * representable in FP32, else 400 naming the first that is not. Not strict (the client reading a response): converted
 * as it comes. FP32, little-endian, 4-byte aligned: a view of the bytes, no copy.
 */
function binaryToFloat32(datatype: string, bytes: Uint8Array, count: number, name: string, strict = true): Float32Array {
  checkDatatype(datatype, name);
  const need = count * BYTES_PER.get(datatype)!;
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
  const exact = (i: number, v: number) => {
    out[i] = v;
    if (strict && out[i] !== v && v === v) throw badElement(name, datatype, i, v, NOT_EXACT);
  };
  switch (datatype) {
    case 'FP32':
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
      break;
    case 'FP64':
      for (let i = 0; i < count; i++) exact(i, dv.getFloat64(i * 8, true));
      break;
    case 'BOOL':
      for (let i = 0; i < count; i++) {
        const b = dv.getUint8(i);
        if (strict && b > 1) throw badElement(name, datatype, i, b, 'is not 0 or 1 (a BOOL element is one byte, 0 for false, 1 for true)');
        out[i] = b === 0 ? 0 : 1;
      }
      break;
    case 'UINT8':
      for (let i = 0; i < count; i++) out[i] = dv.getUint8(i);
      break;
    case 'INT8':
      for (let i = 0; i < count; i++) out[i] = dv.getInt8(i);
      break;
    case 'UINT16':
      for (let i = 0; i < count; i++) out[i] = dv.getUint16(i * 2, true);
      break;
    case 'INT16':
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case 'UINT32':
      for (let i = 0; i < count; i++) exact(i, dv.getUint32(i * 4, true));
      break;
    case 'INT32':
      for (let i = 0; i < count; i++) exact(i, dv.getInt32(i * 4, true));
      break;
    default: {
      // INT64, UINT64, checked exactly. Within ±2^53 the two 32-bit halves make an exact Number (10x faster than a
      // BigInt per element: 4 M elements in 40 ms, not 450); beyond it, read as BigInt, since a Number has rounded
      const signed = datatype === 'INT64';
      for (let i = 0; i < count; i++) {
        const hi = signed ? dv.getInt32(i * 8 + 4, true) : dv.getUint32(i * 8 + 4, true);
        if (hi >= -0x200000 && hi < 0x200000) {
          exact(i, hi * 4294967296 + dv.getUint32(i * 8, true));
          continue;
        }
        const b = signed ? dv.getBigInt64(i * 8, true) : dv.getBigUint64(i * 8, true);
        out[i] = Number(b);
        // (out[i] is an integer-valued float, so BigInt() takes it)
        if (strict && BigInt(out[i]) !== b) throw badElement(name, datatype, i, b, NOT_EXACT);
      }
    }
  }
  return out;
}

/** JSON tensor elements (already flattened) as FP32, by the same rules as binary data, for JSON's values. */
function jsonToFloat32(datatype: string, leaves: unknown[], name: string): Float32Array {
  const n = leaves.length;
  const out = new Float32Array(n);
  if (datatype === 'FP32' || datatype === 'FP64') {
    const fp64 = datatype === 'FP64';
    for (let i = 0; i < n; i++) {
      const v = leaves[i];
      if (typeof v !== 'number') throw badElement(name, datatype, i, v, 'is not a number');
      out[i] = v;
      if (fp64 && out[i] !== v && v === v) throw badElement(name, datatype, i, v, NOT_EXACT);
    }
    return out;
  }
  if (datatype === 'BOOL') {
    for (let i = 0; i < n; i++) {
      const v = leaves[i];
      if (v !== true && v !== false) throw badElement(name, datatype, i, v, 'is not true or false (BOOL data in JSON is true/false, as in Triton)');
      out[i] = v ? 1 : 0;
    }
    return out;
  }
  const [lo, hi, range] = INT_RANGE.get(datatype)!;
  const wide = datatype === 'INT64' || datatype === 'UINT64';
  for (let i = 0; i < n; i++) {
    const v = leaves[i];
    if (typeof v !== 'number') throw badElement(name, datatype, i, v, 'is not a number');
    if (!Number.isInteger(v)) throw badElement(name, datatype, i, v, 'is not an integer');
    if (v < lo || v > hi) throw badElement(name, datatype, i, v, `is out of the ${datatype} range ${range}`);
    // past 2^53 the JSON parser has already rounded the number: whether the client's integer was exact is unknowable
    if (wide && !Number.isSafeInteger(v))
      throw badElement(name, datatype, i, v, 'is beyond ±2^53, where a JSON number cannot be checked exactly; send it as binary data');
    out[i] = v;
    if (out[i] !== v) throw badElement(name, datatype, i, v, NOT_EXACT);
  }
  return out;
}

function flatten(data: unknown, into: unknown[], name: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new ProtocolError(400, `input "${name}": "data" nests deeper than ${MAX_DEPTH} levels`);
  const a = data as unknown[];
  for (let i = 0; i < a.length; i++) {
    const d = a[i];
    if (Array.isArray(d)) flatten(d, into, name, depth + 1);
    else into.push(d);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

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
    req = parseJson(jsonPart.toString('utf8')) as Record<string, unknown>;
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
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0))
      throw new ProtocolError(400, `input "${name}": "shape" must be an array of non-negative integers`);
    const datatype = typeof t.datatype === 'string' ? t.datatype : '';
    if (!datatype) throw new ProtocolError(400, `input "${name}": "datatype" is required`);
    checkDatatype(datatype, name);
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    const params = (t.parameters ?? {}) as Record<string, unknown>;
    if (params.binary_data_size !== undefined) {
      const size = Number(params.binary_data_size);
      if (!Number.isInteger(size) || size < 0 || offset + size > binary.length) {
        throw new ProtocolError(400, `input "${name}": binary_data_size ${shown(params.binary_data_size)} exceeds the binary part of the body`);
      }
      const data = binaryToFloat32(datatype, binary.subarray(offset, offset + size), count, name);
      offset += size;
      return { name, shape: shape as number[], datatype, data };
    }
    if (t.data === undefined) throw new ProtocolError(400, `input "${name}" has neither "data" nor parameters.binary_data_size`);
    const leaves: unknown[] = [];
    if (Array.isArray(t.data)) flatten(t.data, leaves, name, 1);
    else leaves.push(t.data);
    if (leaves.length !== count)
      throw new ProtocolError(400, `input "${name}": shape [${(shape as number[]).join(', ')}] needs ${count} values, "data" has ${leaves.length}`);
    return { name, shape: shape as number[], datatype, data: jsonToFloat32(datatype, leaves, name) };
  });
  if (offset !== binary.length) throw new ProtocolError(400, `${binary.length - offset} bytes of binary data are not claimed by any input`);
  const reqParams = (req.parameters ?? {}) as Record<string, unknown>;
  const outputs = Array.isArray(req.outputs)
    ? (req.outputs as Record<string, unknown>[]).map((o) => {
        const name = typeof o?.name === 'string' ? o.name : '';
        const params = (o?.parameters ?? {}) as Record<string, unknown>;
        // a per-output binary_data, true or false, overrides binary_data_output; absent, the request's setting holds
        const b = params.binary_data;
        const out: RequestedOutput = { name, binary: b === undefined ? undefined : Boolean(b) };
        const c = params.classification;
        if (c !== undefined) {
          if (typeof c !== 'number' || !Number.isInteger(c) || c < 1) {
            throw new ProtocolError(400, `output "${name}": "classification" must be a positive integer (how many classes to return), got ${shown(c)}`);
          }
          out.classification = c;
        }
        return out;
      })
    : [];
  return { id: typeof req.id === 'string' ? req.id : undefined, inputs, outputs, binaryOutputs: Boolean(reqParams.binary_data_output) };
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

/**
 * The tensors to answer with: the requested outputs (all, in `results`' order, when none are named), each binary or
 * JSON (its `binary_data`, else `binaryDefault`), and each with `classification: N` replaced by Triton's
 * classification tensor: BYTES, shape [batch, N] (the first dimension is the batch; `batched: false`: [N] over the
 * whole tensor), per item the top N as "<value>:<index>" or "<value>:<index>:<label>" (see classification.ts).
 * N must be at most the class count (the elements of one batch item), else 400 naming the output; Triton clamps N
 * to the class count instead, and takes 0 as no classification (parseInferRequest refuses 0 with 400).
 */
export function responseTensors(
  results: Record<string, { data: Float32Array; shape: number[] }>,
  requested: RequestedOutput[],
  binaryDefault: boolean,
  labels?: readonly string[],
  opts: { batched?: boolean } = {},
): ResponseTensor[] {
  const wanted: RequestedOutput[] = requested.length ? requested : Object.keys(results).map((name) => ({ name }));
  return wanted.map((o): ResponseTensor => {
    const r = Object.prototype.hasOwnProperty.call(results, o.name) ? results[o.name] : undefined;
    if (!r) throw new ProtocolError(400, `unknown output "${o.name}"; the model's outputs are ${Object.keys(results).join(', ')}`);
    const binary = o.binary ?? binaryDefault;
    if (o.classification === undefined) return { name: o.name, shape: r.shape, data: r.data, binary };
    const batched = (opts.batched ?? true) && r.shape.length > 0;
    const items = batched ? r.shape[0] : 1;
    const classes = (batched ? r.shape.slice(1) : r.shape).reduce((a, d) => a * d, 1);
    const k = o.classification;
    if (!Number.isInteger(k) || k < 1 || k > classes) {
      throw new ProtocolError(400, `output "${o.name}": classification ${k} is out of range: it must be 1 to ${classes}, the output's class count`);
    }
    return { name: o.name, datatype: 'BYTES', shape: batched ? [items, k] : [k], data: classificationStrings(r.data, items, classes, k, labels), binary };
  });
}

/** BYTES binary form (the binary extension's, and gRPC's raw contents): per element a 4-byte little-endian length, then its (UTF-8) bytes. */
export function encodeBytesTensor(strings: string[]): Buffer {
  const parts = strings.map((s) => Buffer.from(s, 'utf8'));
  const out = Buffer.allocUnsafe(parts.reduce((a, p) => a + 4 + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.length, at);
    p.copy(out, at + 4);
    at += 4 + p.length;
  }
  return out;
}

function decodeBytesTensor(bytes: Uint8Array, count: number, name: string): string[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  let at = 0;
  while (at < b.length) {
    if (at + 4 > b.length) throw new ProtocolError(400, `output "${name}": BYTES data ends inside an element's length`);
    const len = b.readUInt32LE(at);
    if (at + 4 + len > b.length) throw new ProtocolError(400, `output "${name}": a BYTES element of ${len} bytes runs past the tensor's data`);
    out.push(b.toString('utf8', at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (out.length !== count) throw new ProtocolError(400, `output "${name}": BYTES data holds ${out.length} elements, the shape says ${count}`);
  return out;
}

/** Encode an infer response: JSON, or JSON header + binary tensors (returns the header length to send). */
export function encodeInferResponse(
  model: string,
  version: string,
  id: string | undefined,
  outputs: ResponseTensor[],
): { body: Buffer; headerLength?: number } {
  const binaries: Buffer[] = [];
  const parts = outputs.map((o) => {
    const head = { name: o.name, datatype: o.datatype === 'BYTES' ? 'BYTES' : 'FP32', shape: o.shape };
    if (o.binary) {
      const b = o.datatype === 'BYTES' ? encodeBytesTensor(o.data) : Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength);
      binaries.push(b);
      return JSON.stringify({ ...head, parameters: { binary_data_size: b.length } });
    }
    const data = o.datatype === 'BYTES' ? JSON.stringify(o.data) : jsonNumberArray(o.data);
    return `${JSON.stringify(head).slice(0, -1)},"data":${data}}`;
  });
  const top = JSON.stringify({ model_name: model, model_version: version, ...(id !== undefined ? { id } : {}) });
  const head = Buffer.from(`${top.slice(0, -1)},"outputs":[${parts.join(',')}]}`, 'utf8');
  if (binaries.length === 0) return { body: head };
  return { body: Buffer.concat([head, ...binaries]), headerLength: head.length };
}

/** Client side: build a binary-extension request for FP32 inputs (used by smoke tests and canary checks). */
export function encodeInferRequest(
  inputs: { name: string; shape: number[]; data: Float32Array }[],
  opts: { binaryOutputs?: boolean; id?: string; outputs?: RequestedOutput[] } = {},
): { body: Buffer; headerLength: number } {
  const json = {
    ...(opts.id ? { id: opts.id } : {}),
    inputs: inputs.map((t) => ({ name: t.name, shape: t.shape, datatype: 'FP32', parameters: { binary_data_size: t.data.byteLength } })),
    ...(opts.outputs
      ? {
          outputs: opts.outputs.map((o) => {
            const parameters = {
              ...(o.binary !== undefined ? { binary_data: o.binary } : {}),
              ...(o.classification !== undefined ? { classification: o.classification } : {}),
            };
            return { name: o.name, ...(Object.keys(parameters).length ? { parameters } : {}) };
          }),
        }
      : {}),
    ...(opts.binaryOutputs ? { parameters: { binary_data_output: true } } : {}),
  };
  const head = Buffer.from(JSON.stringify(json), 'utf8');
  return { body: Buffer.concat([head, ...inputs.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]), headerLength: head.length };
}

/**
 * Client side: decode a response (JSON or binary extension). Numeric outputs come back as FP32 in `data` (converted
 * as they come, not checked); BYTES outputs (classification) as strings in `strings`, with `data` empty.
 */
export function decodeInferResponse(body: Buffer, headerLength: number | undefined): { outputs: DecodedTensor[] } {
  const head = headerLength === undefined ? body : body.subarray(0, headerLength);
  const json = parseJson(head.toString('utf8')) as {
    outputs: { name: string; shape: number[]; datatype: string; data?: unknown[]; parameters?: { binary_data_size?: number } }[];
  };
  let offset = headerLength ?? body.length;
  return {
    outputs: json.outputs.map((o): DecodedTensor => {
      const count = o.shape.reduce((a, d) => a * d, 1);
      const base = { name: o.name, shape: o.shape, datatype: o.datatype };
      if (o.parameters?.binary_data_size !== undefined) {
        const size = o.parameters.binary_data_size;
        const bytes = body.subarray(offset, offset + size);
        offset += size;
        if (o.datatype === 'BYTES') return { ...base, data: new Float32Array(0), strings: decodeBytesTensor(bytes, count, o.name) };
        return { ...base, data: binaryToFloat32(o.datatype, bytes, count, o.name, false) };
      }
      const leaves: unknown[] = [];
      flatten(o.data ?? [], leaves, o.name, 1);
      if (o.datatype === 'BYTES') return { ...base, data: new Float32Array(0), strings: leaves.map(String) };
      return { ...base, data: Float32Array.from(leaves as number[]) };
    }),
  };
}
