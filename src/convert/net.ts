import * as protobuf from 'protobufjs';
import { caffeSchema } from '../formats/schema/caffe';
import { parseTextFormat, ParsedMessage, Loc, locOf, fieldLocOf, unknownFieldsOf } from '../formats/textformat';
import { ModelshipError } from '../util/errors';

/** A layer of the deploy net, normalised from either the V2 `layer` or the legacy V1 `layers` form. */
export interface CaffeLayer {
  name: string;
  /** V2 type name (`Convolution`); V1 enum types are mapped (`CONVOLUTION` → `Convolution`) */
  type: string;
  bottoms: string[];
  tops: string[];
  /** the raw layer message: `*_param` fields are read through `paramsOf` */
  msg: ParsedMessage;
  loc: Loc;
  /** unknown layer-level fields (e.g. `permute_param` of a fork); reported if the layer is unsupported */
  unknownFields: string[];
}

export interface CaffeInput {
  name: string;
  /** declared shape; dim 0 (the batch) is made symbolic in the ONNX graph */
  shape: number[];
  loc: Loc;
}

export interface CaffeNet {
  name: string;
  file: string;
  format: 'V1' | 'V2';
  inputs: CaffeInput[];
  layers: CaffeLayer[];
}

/** Legacy V1 enum type → V2 type string (as Caffe's UpgradeV1LayerType does). */
export const V1_TO_V2: Record<string, string> = {
  ABSVAL: 'AbsVal',
  ACCURACY: 'Accuracy',
  ARGMAX: 'ArgMax',
  BNLL: 'BNLL',
  CONCAT: 'Concat',
  CONTRASTIVE_LOSS: 'ContrastiveLoss',
  CONVOLUTION: 'Convolution',
  DATA: 'Data',
  DECONVOLUTION: 'Deconvolution',
  DROPOUT: 'Dropout',
  DUMMY_DATA: 'DummyData',
  EUCLIDEAN_LOSS: 'EuclideanLoss',
  ELTWISE: 'Eltwise',
  EXP: 'Exp',
  FLATTEN: 'Flatten',
  HDF5_DATA: 'HDF5Data',
  HDF5_OUTPUT: 'HDF5Output',
  HINGE_LOSS: 'HingeLoss',
  IM2COL: 'Im2col',
  IMAGE_DATA: 'ImageData',
  INFOGAIN_LOSS: 'InfogainLoss',
  INNER_PRODUCT: 'InnerProduct',
  LRN: 'LRN',
  MEMORY_DATA: 'MemoryData',
  MULTINOMIAL_LOGISTIC_LOSS: 'MultinomialLogisticLoss',
  MVN: 'MVN',
  POOLING: 'Pooling',
  POWER: 'Power',
  RELU: 'ReLU',
  SIGMOID: 'Sigmoid',
  SIGMOID_CROSS_ENTROPY_LOSS: 'SigmoidCrossEntropyLoss',
  SILENCE: 'Silence',
  SOFTMAX: 'Softmax',
  SOFTMAX_LOSS: 'SoftmaxWithLoss',
  SPLIT: 'Split',
  SLICE: 'Slice',
  TANH: 'TanH',
  WINDOW_DATA: 'WindowData',
  THRESHOLD: 'Threshold',
  NONE: 'NONE',
};

/** Reject input that is obviously not a text prototxt before the parser reports a confusing column. */
function checkLooksLikeText(bytes: Uint8Array, file: string): string {
  const n = Math.min(bytes.length, 4096);
  let control = 0;
  for (let i = 0; i < n; i++) {
    const c = bytes[i];
    if (c === 0) {
      throw new ModelshipError(
        'syntax',
        'this is a binary file, not a text prototxt (NUL byte at offset ' + i + '); did you swap --prototxt and --caffemodel?',
        { file },
      );
    }
    if (c < 9 || (c > 13 && c < 32)) control++;
  }
  if (n > 0 && control / n > 0.05) {
    throw new ModelshipError('syntax', 'this is a binary file, not a text prototxt; did you swap --prototxt and --caffemodel?', { file });
  }
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const bad = text.indexOf('\uFFFD');
  if (bad >= 0) {
    const line = text.slice(0, bad).split('\n').length;
    throw new ModelshipError('syntax', 'invalid UTF-8 in prototxt', { file, line });
  }
  return text;
}

/** Parse a deploy.prototxt (text) into a normalised net. */
export function parsePrototxt(bytes: Uint8Array, file: string): CaffeNet {
  const text = checkLooksLikeText(bytes, file);
  const root = caffeSchema();
  const NetParameter = root.lookupType('caffe.NetParameter');
  const msg = parseTextFormat(text, NetParameter, { file, tolerateUnknownIn: ['LayerParameter', 'V1LayerParameter'] });
  return normalizeNet(msg, file);
}

function isIncludedInTest(layer: ParsedMessage): boolean {
  // Caffe's StateMeetsRule for the deploy state: phase TEST, level 0, no stages.
  const meets = (rule: ParsedMessage): boolean => {
    if (rule.phase !== undefined && rule.phase !== 'TEST') return false;
    if (rule.min_level !== undefined && 0 < (rule.min_level as number)) return false;
    if (rule.max_level !== undefined && 0 > (rule.max_level as number)) return false;
    if (((rule.stage as string[] | undefined) ?? []).length > 0) return false;
    return true;
  };
  const include = (layer.include as ParsedMessage[] | undefined) ?? [];
  const exclude = (layer.exclude as ParsedMessage[] | undefined) ?? [];
  if (include.length > 0) return include.some(meets);
  return !exclude.some(meets);
}

function normalizeNet(msg: ParsedMessage, file: string): CaffeNet {
  const v2 = (msg.layer as ParsedMessage[] | undefined) ?? [];
  const v1 = (msg.layers as ParsedMessage[] | undefined) ?? [];
  if (v2.length > 0 && v1.length > 0) {
    throw new ModelshipError('schema', 'the net mixes V2 "layer" and legacy V1 "layers" fields; use one', { file, line: fieldLocOf(msg, 'layers')?.line });
  }
  const format: 'V1' | 'V2' = v1.length > 0 ? 'V1' : 'V2';
  const inputs: CaffeInput[] = [];

  // Legacy input declarations: input + input_dim (4 per input) or input + input_shape.
  const inputNames = (msg.input as string[] | undefined) ?? [];
  if (inputNames.length > 0) {
    const inputDim = (msg.input_dim as number[] | undefined) ?? [];
    const inputShape = (msg.input_shape as ParsedMessage[] | undefined) ?? [];
    const loc = fieldLocOf(msg, 'input')!;
    if (inputShape.length > 0 && inputDim.length > 0) {
      throw new ModelshipError('schema', 'both input_dim and input_shape are given; use one', { file, line: loc.line });
    }
    if (inputShape.length > 0) {
      if (inputShape.length !== inputNames.length) {
        throw new ModelshipError('schema', `${inputNames.length} input(s) but ${inputShape.length} input_shape(s)`, {
          file,
          line: loc.line,
          field: 'input_shape',
        });
      }
      inputNames.forEach((name, i) => inputs.push({ name, shape: (inputShape[i].dim as number[] | undefined) ?? [], loc }));
    } else if (inputDim.length > 0) {
      if (inputDim.length !== 4 * inputNames.length) {
        throw new ModelshipError('schema', `${inputNames.length} input(s) need ${4 * inputNames.length} input_dim values, found ${inputDim.length}`, {
          file,
          line: loc.line,
          field: 'input_dim',
        });
      }
      inputNames.forEach((name, i) => inputs.push({ name, shape: inputDim.slice(4 * i, 4 * i + 4), loc }));
    } else {
      throw new ModelshipError('schema', `input "${inputNames[0]}" has no shape: add input_shape { dim: ... } or four input_dim values`, {
        file,
        line: loc.line,
        field: 'input',
      });
    }
  }

  const layers: CaffeLayer[] = [];
  const source = format === 'V2' ? v2 : v1;
  source.forEach((l, i) => {
    if (!isIncludedInTest(l)) return;
    const loc = locOf(l)!;
    const rawType = l.type as string | undefined;
    if (rawType === undefined || rawType === '') {
      const name = l.name as string | undefined;
      throw new ModelshipError('schema', `layer #${i + 1}${name ? ` "${name}"` : ''} has no type`, { file, line: loc.line, layer: name });
    }
    const type = format === 'V1' ? (V1_TO_V2[rawType] ?? rawType) : rawType;
    const name = (l.name as string | undefined) ?? `${type.toLowerCase()}_${i}`;
    layers.push({
      name,
      type,
      bottoms: ((l.bottom as string[] | undefined) ?? []).slice(),
      tops: ((l.top as string[] | undefined) ?? []).slice(),
      msg: l,
      loc,
      unknownFields: unknownFieldsOf(l),
    });
  });

  // Input layers become net inputs.
  for (const l of layers) {
    if (l.type !== 'Input') continue;
    const shapes = ((paramsOf(l, 'input_param').shape as ParsedMessage[] | undefined) ?? []).map((s) => (s.dim as number[] | undefined) ?? []);
    if (shapes.length === 0) {
      throw new ModelshipError('schema', 'Input layer has no input_param { shape { dim: ... } }', { file, line: l.loc.line, layer: l.name });
    }
    if (shapes.length !== 1 && shapes.length !== l.tops.length) {
      throw new ModelshipError('schema', `Input layer has ${l.tops.length} tops but ${shapes.length} shapes`, { file, line: l.loc.line, layer: l.name });
    }
    l.tops.forEach((top, i) => inputs.push({ name: top, shape: shapes[shapes.length === 1 ? 0 : i], loc: l.loc }));
  }
  for (const inp of inputs) {
    if (inp.shape.length === 0 || inp.shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new ModelshipError('schema', `input "${inp.name}" has an invalid shape [${inp.shape.join(', ')}]: every dimension must be a positive integer`, {
        file,
        line: inp.loc.line,
      });
    }
  }
  if (inputs.length === 0) {
    throw new ModelshipError('schema', 'the net declares no input: add an Input layer or input/input_shape fields', { file, line: 1 });
  }
  return { name: (msg.name as string | undefined) ?? 'net', file, format, inputs, layers: layers.filter((l) => l.type !== 'Input') };
}

const paramTypeCache = new Map<string, protobuf.Type>();

/**
 * A layer's `*_param` message with Caffe's defaults filled in for absent scalar fields. V1 and V2 share the
 * param message types, so handlers read `paramsOf(layer, 'convolution_param').kernel_size` either way.
 */
export function paramsOf(layer: CaffeLayer, field: string): ParsedMessage {
  const root = caffeSchema();
  const msgType = root.lookupType('caffe.LayerParameter');
  const f = msgType.fields[field];
  if (!f) throw new Error(`internal: no LayerParameter field ${field}`);
  let type = paramTypeCache.get(field);
  if (!type) {
    type = f.resolvedType as protobuf.Type;
    paramTypeCache.set(field, type);
  }
  return withDefaults((layer.msg[field] as ParsedMessage | undefined) ?? {}, type);
}

export function withDefaults(msg: ParsedMessage, type: protobuf.Type): ParsedMessage {
  const out: ParsedMessage = {};
  for (const f of type.fieldsArray) {
    if (Object.prototype.hasOwnProperty.call(msg, f.name)) out[f.name] = msg[f.name];
    else if (f.repeated) out[f.name] = [];
    else if (f.resolvedType instanceof protobuf.Type) out[f.name] = undefined;
    else if (f.resolvedType instanceof protobuf.Enum) {
      const d = f.options?.default as string | undefined;
      out[f.name] = d ?? Object.keys(f.resolvedType.values)[0];
    } else out[f.name] = f.options?.default ?? (f.type === 'bool' ? false : f.type === 'string' ? '' : 0);
  }
  for (const k of ['$loc', '$fieldLocs']) {
    Object.defineProperty(out, k, { value: (msg as Record<string, unknown>)[k], enumerable: false });
  }
  return out;
}

/** Does the layer set this `*_param` explicitly? */
export function hasParam(layer: CaffeLayer, field: string, sub?: string): boolean {
  const p = layer.msg[field] as ParsedMessage | undefined;
  if (!p) return false;
  return sub === undefined ? true : Object.prototype.hasOwnProperty.call(p, sub);
}
