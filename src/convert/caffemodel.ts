import * as protobuf from 'protobufjs';
import { ModelshipError } from '../util/errors';
import { FloatData } from './floatdata';

/** One learned parameter blob of a layer, as stored in the caffemodel. */
export interface WeightBlob {
  /** the blob's shape: `shape.dim` when present, else the legacy (num, channels, height, width) */
  shape: number[];
  /** true when the shape came from the legacy 4-D fields */
  legacy: boolean;
  /** exactly `count(shape)` float32 values (a view of the caffemodel bytes when stored as packed floats) */
  data: FloatData;
}

export interface CaffeModelWeights {
  name?: string;
  format: 'V1' | 'V2';
  /** layer name → blobs, in the order the file lists them */
  layers: Map<string, { type: string; blobs: WeightBlob[] }>;
}

/**
 * The caffemodel is scanned by hand with protobufjs's Reader (its error messages included), for the fields of
 * Caffe's wire format that carry weights (numbers as in schema/caffe.ts): NetParameter { name = 1; LayerParameter layer = 100; V1LayerParameter
 * layers = 2 }, LayerParameter { name = 1; type = 2; BlobProto blobs = 7 }, V1LayerParameter { name = 4; int32
 * type = 5; blobs = 6 }; every other field is skipped unread. No schema is parsed and no codec generated, and packed
 * float data stays as bytes: a 553 MB VGG16 is scanned without a copy, a 28 MB GoogLeNet without materialising
 * 7 M JS numbers.
 */
interface RawLayer {
  name?: string;
  /** V2: the type name; V1: the LayerType enum */
  type?: string | number;
  blobs: RawBlob[];
}

interface RawNet {
  name?: string;
  layer: RawLayer[];
  layers: RawLayer[];
}

/** Run `body` with the reader bounded to the next `length` bytes (a nested message), as protobufjs's decoders do. */
function nested<T>(r: protobuf.Reader, length: number, what: string, body: (end: number) => T): T {
  const end = r.pos + length;
  if (end > r.len) throw new RangeError(`index out of range: ${r.pos} + ${length} > ${r.len}`);
  const outer = r.len;
  r.len = end;
  const v = body(end);
  if (r.pos !== end) throw new RangeError(`${what} overruns its length`);
  r.len = outer;
  return v;
}

function scanNet(bytes: Uint8Array): RawNet {
  const r = protobuf.Reader.create(bytes);
  const net: RawNet = { layer: [], layers: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 2 && field === 1) net.name = r.string();
    else if (wire === 2 && field === 100) net.layer.push(scanLayer(r, false));
    else if (wire === 2 && field === 2) net.layers.push(scanLayer(r, true));
    else r.skipType(wire);
  }
  return net;
}

function scanLayer(r: protobuf.Reader, v1: boolean): RawLayer {
  const [nameField, typeField, blobsField] = v1 ? [4, 5, 6] : [1, 2, 7];
  return nested(r, r.uint32(), 'layer', (end) => {
    const l: RawLayer = { blobs: [] };
    while (r.pos < end) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      if (field === nameField && wire === 2) l.name = r.string();
      else if (field === typeField && wire === (v1 ? 0 : 2)) l.type = v1 ? r.int32() : r.string();
      else if (field === blobsField && wire === 2) l.blobs.push(nested(r, r.uint32(), 'blob', (e) => decodeBlob(r, e)));
      else r.skipType(wire);
    }
    return l;
  });
}

interface RawBlob {
  dims?: number[];
  /** any of num/channels/height/width present (Caffe then ignores `shape`) */
  hasLegacy: boolean;
  num: number;
  channels: number;
  height: number;
  width: number;
  floatChunks: Uint8Array[];
  floatValues: number[];
  doubleChunks: Uint8Array[];
  doubleValues: number[];
}

function decodeBlob(r: protobuf.Reader, end: number): RawBlob {
  const b: RawBlob = { hasLegacy: false, num: 0, channels: 0, height: 0, width: 0, floatChunks: [], floatValues: [], doubleChunks: [], doubleValues: [] };
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    switch (field) {
      case 5: // repeated float data (packed or not)
        if (wire === 2) b.floatChunks.push(r.bytes());
        else if (wire === 5) b.floatValues.push(r.float());
        else r.skipType(wire);
        break;
      case 8: // repeated double double_data
        if (wire === 2) b.doubleChunks.push(r.bytes());
        else if (wire === 1) b.doubleValues.push(r.double());
        else r.skipType(wire);
        break;
      case 7: {
        // BlobShape { repeated int64 dim = 1 [packed] }
        if (wire !== 2) {
          r.skipType(wire);
          break;
        }
        const len = r.uint32();
        const shapeEnd = r.pos + len;
        const dims: number[] = b.dims ?? [];
        while (r.pos < shapeEnd) {
          const t2 = r.uint32();
          if (t2 >>> 3 === 1 && (t2 & 7) === 2) {
            const l2 = r.uint32();
            const e2 = r.pos + l2;
            while (r.pos < e2) dims.push(int64(r));
          } else if (t2 >>> 3 === 1 && (t2 & 7) === 0) {
            dims.push(int64(r));
          } else {
            r.skipType(t2 & 7);
          }
        }
        if (r.pos !== shapeEnd) throw new RangeError('blob shape overruns its length');
        b.dims = dims;
        break;
      }
      case 1:
      case 2:
      case 3:
      case 4: {
        if (wire !== 0) {
          r.skipType(wire);
          break;
        }
        const v = r.int32();
        b.hasLegacy = true;
        if (field === 1) b.num = v;
        else if (field === 2) b.channels = v;
        else if (field === 3) b.height = v;
        else b.width = v;
        break;
      }
      default:
        r.skipType(wire); // diff, double_diff and anything newer
    }
  }
  return b;
}

function int64(r: protobuf.Reader): number {
  const v = r.int64() as unknown as number | { toNumber(): number };
  return typeof v === 'number' ? v : v.toNumber();
}

function concatBytes(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function toWeightBlob(raw: RawBlob, where: { file: string; layer: string; index: number }): WeightBlob {
  // Caffe's Blob::FromProto: legacy 4-D fields win when present; otherwise `shape` (absent shape = 0-D blob)
  const legacy = raw.hasLegacy;
  const shape = legacy ? [raw.num, raw.channels, raw.height, raw.width] : (raw.dims ?? []);
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ModelshipError('binary', `blob ${where.index} has an invalid dimension ${d}`, { file: where.file, layer: where.layer });
    }
  }
  const count = shape.reduce((a, d) => a * d, 1);
  let data: FloatData;
  const floatBytes = raw.floatChunks.reduce((n, c) => n + c.length, 0);
  const nFloat = floatBytes / 4 + raw.floatValues.length;
  const doubleBytes = raw.doubleChunks.reduce((n, c) => n + c.length, 0);
  const nDouble = doubleBytes / 8 + raw.doubleValues.length;
  if (floatBytes % 4 !== 0 || doubleBytes % 8 !== 0) {
    throw new ModelshipError('binary', `blob ${where.index} has a truncated data array`, { file: where.file, layer: where.layer });
  }
  if (nFloat > 0 || nDouble === 0) {
    if (nFloat !== count) {
      throw new ModelshipError('binary', `blob ${where.index} declares shape [${shape.join(', ')}] (${count} values) but holds ${nFloat} float values`, {
        file: where.file,
        layer: where.layer,
      });
    }
    if (raw.floatValues.length === 0) {
      data = FloatData.fromBytes(concatBytes(raw.floatChunks));
    } else {
      data = FloatData.fromArray([...floatsOf(raw.floatChunks), ...raw.floatValues]);
    }
  } else {
    if (nDouble !== count) {
      throw new ModelshipError('binary', `blob ${where.index} declares shape [${shape.join(', ')}] (${count} values) but holds ${nDouble} double values`, {
        file: where.file,
        layer: where.layer,
      });
    }
    const values = new Float32Array(count);
    let i = 0;
    for (const c of raw.doubleChunks) {
      const dv = new DataView(c.buffer, c.byteOffset, c.byteLength);
      for (let o = 0; o < c.byteLength; o += 8) values[i++] = dv.getFloat64(o, true);
    }
    for (const v of raw.doubleValues) values[i++] = v;
    data = FloatData.fromArray(values);
  }
  return { shape, legacy, data };
}

function floatsOf(chunks: Uint8Array[]): number[] {
  const out: number[] = [];
  for (const c of chunks) {
    const dv = new DataView(c.buffer, c.byteOffset, c.byteLength);
    for (let o = 0; o < c.byteLength; o += 4) out.push(dv.getFloat32(o, true));
  }
  return out;
}

const V1_TYPE_NAMES: Record<number, string> = {
  35: 'ABSVAL',
  1: 'ACCURACY',
  30: 'ARGMAX',
  2: 'BNLL',
  3: 'CONCAT',
  37: 'CONTRASTIVE_LOSS',
  4: 'CONVOLUTION',
  5: 'DATA',
  39: 'DECONVOLUTION',
  6: 'DROPOUT',
  32: 'DUMMY_DATA',
  7: 'EUCLIDEAN_LOSS',
  25: 'ELTWISE',
  38: 'EXP',
  8: 'FLATTEN',
  9: 'HDF5_DATA',
  10: 'HDF5_OUTPUT',
  28: 'HINGE_LOSS',
  11: 'IM2COL',
  12: 'IMAGE_DATA',
  13: 'INFOGAIN_LOSS',
  14: 'INNER_PRODUCT',
  15: 'LRN',
  29: 'MEMORY_DATA',
  16: 'MULTINOMIAL_LOGISTIC_LOSS',
  34: 'MVN',
  17: 'POOLING',
  26: 'POWER',
  18: 'RELU',
  19: 'SIGMOID',
  27: 'SIGMOID_CROSS_ENTROPY_LOSS',
  36: 'SILENCE',
  20: 'SOFTMAX',
  21: 'SOFTMAX_LOSS',
  22: 'SPLIT',
  33: 'SLICE',
  23: 'TANH',
  24: 'WINDOW_DATA',
  31: 'THRESHOLD',
};

/**
 * Decode a binary .caffemodel (NetParameter). Both the V2 `layer` field (100) and the legacy V1 `layers`
 * field (2) are read; blobs may use `shape` or the legacy num/channels/height/width, float `data` or `double_data`.
 */
export function decodeCaffeModel(bytes: Uint8Array, file: string): CaffeModelWeights {
  if (bytes.length === 0) throw new ModelshipError('binary', 'the caffemodel is empty', { file });
  let msg: RawNet;
  try {
    msg = scanNet(bytes);
  } catch (e) {
    const why = (e as Error).message;
    throw new ModelshipError('binary', `not a valid caffemodel (protobuf NetParameter): ${why}; the file may be truncated or not a caffemodel`, { file });
  }
  const layers = new Map<string, { type: string; blobs: WeightBlob[] }>();
  const v2 = msg.layer;
  const v1 = msg.layers;
  if (v2.length === 0 && v1.length === 0) {
    throw new ModelshipError('binary', 'the caffemodel has no layers (is it a caffemodel? a prototxt?)', { file });
  }
  const add = (name: string | undefined, type: string, blobs: RawBlob[] | undefined): void => {
    if (!name) return;
    if (!blobs || blobs.length === 0) {
      if (!layers.has(name)) layers.set(name, { type, blobs: [] });
      return;
    }
    layers.set(name, { type, blobs: blobs.map((b, index) => toWeightBlob(b, { file, layer: name, index })) });
  };
  for (const l of v1) add(l.name, V1_TYPE_NAMES[(l.type as number | undefined) ?? 0] ?? String(l.type), l.blobs);
  for (const l of v2) add(l.name, (l.type as string | undefined) ?? '', l.blobs);
  return { name: msg.name, format: v2.length > 0 ? 'V2' : 'V1', layers };
}
