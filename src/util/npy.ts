import { ModelshipError } from './errors';
import { readFileChecked } from './fsx';

/** A float32 array read from a NumPy .npy file (C order). */
export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/**
 * Read a .npy file (format 1.0–3.0). Accepts little-endian float32 and float64 (converted to float32),
 * C order only — the formats Caffe's Python tooling writes.
 */
export function readNpy(file: string): NpyArray {
  return parseNpy(readFileChecked(file, '.npy file'), file);
}

export function parseNpy(buf: Uint8Array, file: string): NpyArray {
  const fail = (why: string): never => {
    throw new ModelshipError('binary', `not a readable .npy file: ${why}`, { file });
  };
  if (buf.length < 10 || buf[0] !== 0x93 || String.fromCharCode(...buf.subarray(1, 6)) !== 'NUMPY') fail('bad magic');
  const major = buf[6];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) fail('truncated header');
    headerLen = dv.getUint32(8, true);
    offset = 12;
  } else {
    return fail(`unsupported version ${major}`);
  }
  if (offset + headerLen > buf.length) fail('truncated header');
  const header = Buffer.from(buf.buffer, buf.byteOffset + offset, headerLen).toString('latin1');
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) return fail('malformed header');
  if (fortran === 'True') fail('Fortran order is not supported');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`bad shape (${shapeText})`);
  const count = shape.reduce((a, d) => a * d, 1);
  const start = offset + headerLen;
  const body = buf.subarray(start);
  let data: Float32Array;
  if (descr === '<f4' || descr === '|f4') {
    if (body.length < count * 4) fail('truncated data');
    data = new Float32Array(count);
    new Uint8Array(data.buffer).set(body.subarray(0, count * 4));
  } else if (descr === '<f8') {
    if (body.length < count * 8) fail('truncated data');
    data = new Float32Array(count);
    const bdv = new DataView(body.buffer, body.byteOffset, count * 8);
    for (let i = 0; i < count; i++) data[i] = bdv.getFloat64(i * 8, true);
  } else {
    return fail(`dtype ${descr} is not supported (expected <f4 or <f8)`);
  }
  return { shape, data };
}

/** Write a float32 array as .npy (version 1.0). */
export function encodeNpy(shape: number[], data: Float32Array): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY', 'latin1'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
