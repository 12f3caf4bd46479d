import { GraphBuilder, Shape, Value } from '../graph';
import { CaffeLayer, paramsOf } from '../net';
import { WeightBlob } from '../caffemodel';
import { FloatData } from '../floatdata';
import { ParsedMessage } from '../../formats/textformat';
import { ModelshipError, ErrorCode } from '../../util/errors';

/** What a layer handler gets: the layer, its resolved bottoms, its weights and the graph to emit into. */
export class LayerContext {
  /** set once the handler asked for its weights; a layer that takes none but has some in the caffemodel is an error */
  consumedWeights = false;
  /** what the handler accepted but wants said (e.g. a fork field that only matters in training); become warnings */
  readonly notes: string[] = [];

  constructor(
    readonly g: GraphBuilder,
    readonly layer: CaffeLayer,
    readonly file: string,
    readonly weightsFile: string,
    readonly inputs: Value[],
    private readonly blobs: WeightBlob[] | undefined,
    private readonly topNames: string[],
  ) {}

  /** The ONNX name the handler must give top `i` (decided by the converter: SSA names for in-place layers). */
  out(i = 0): string {
    return this.topNames[i];
  }

  get x(): Value {
    return this.inputs[0];
  }

  /** A fresh internal tensor name scoped by the layer name. */
  tmp(suffix: string): string {
    return this.g.unique(`${this.layer.name}/${suffix}`);
  }

  /** Say something about this layer in the conversion's warnings (its name and line are added). */
  note(message: string): void {
    this.notes.push(message);
  }

  params(field: string): ParsedMessage {
    return paramsOf(this.layer, field);
  }

  fail(message: string, code: ErrorCode = 'graph'): never {
    throw new ModelshipError(code, `(${this.layer.type}) ${message}`, { file: this.file, line: this.layer.loc.line, layer: this.layer.name });
  }

  unsupported(message: string): never {
    return this.fail(message, 'unsupported');
  }

  /** Require exactly `n` bottoms (or a range) and `m` tops. */
  arity(bottoms: number | [number, number], tops: number | [number, number] = 1): void {
    const check = (have: number, want: number | [number, number], what: string) => {
      const [lo, hi] = typeof want === 'number' ? [want, want] : want;
      if (have < lo || have > hi) {
        const w = lo === hi ? `${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} to ${hi}`;
        this.fail(`expects ${w} ${what}${lo === 1 && hi === 1 ? '' : 's'}, found ${have}`);
      }
    };
    check(this.layer.bottoms.length, bottoms, 'bottom');
    check(this.layer.tops.length, tops, 'top');
  }

  /** A dimension that must be static (known at conversion time). */
  staticDim(shape: Shape, axis: number, what = 'this layer'): number {
    const d = shape[axis];
    if (typeof d !== 'number') this.unsupported(`${what} needs a static size for axis ${axis} of [${shape.join(', ')}]; it is the dynamic batch`);
    return d;
  }

  staticShape(shape: Shape, what = 'this layer'): number[] {
    return shape.map((_, i) => this.staticDim(shape, i, what));
  }

  /** Caffe's CanonicalAxisIndex: negative axes count from the end. */
  axis(a: number, rank: number, field = 'axis'): number {
    if (a < -rank || a >= rank) this.fail(`${field} ${a} is out of range for a ${rank}-D input`);
    return a < 0 ? a + rank : a;
  }

  /**
   * The layer's learned blobs from the caffemodel, checked against the shapes the prototxt implies
   * (Caffe's Blob::ShapeEquals, which also accepts legacy 4-D num/channels/height/width).
   */
  weights(expected: { name: string; shape: number[] }[]): FloatData[] {
    this.consumedWeights = true;
    const blobs = this.blobs;
    if (blobs === undefined || (blobs.length === 0 && expected.length > 0)) {
      throw new ModelshipError(
        'weights',
        `(${this.layer.type}) has no weights in ${this.weightsFile}: expected ${expected.length} blob(s) ${expected.map((e) => `${e.name} [${e.shape.join(', ')}]`).join(', ')}`,
        { file: this.file, line: this.layer.loc.line, layer: this.layer.name },
      );
    }
    if (blobs.length !== expected.length) {
      throw new ModelshipError(
        'weights',
        `(${this.layer.type}) the caffemodel has ${blobs.length} blob(s) but the prototxt implies ${expected.length} (${expected.map((e) => e.name).join(', ')})`,
        { file: this.file, line: this.layer.loc.line, layer: this.layer.name },
      );
    }
    return expected.map((e, i) => {
      const b = blobs[i];
      if (!shapeEquals(b, e.shape)) {
        throw new ModelshipError(
          'weights',
          `(${this.layer.type}) ${e.name} shape mismatch: the prototxt implies [${e.shape.join(', ')}] but the caffemodel has [${b.shape.join(', ')}]${b.legacy ? ' (legacy num/channels/height/width)' : ''}`,
          { file: this.file, line: this.layer.loc.line, layer: this.layer.name },
        );
      }
      return b.data;
    });
  }

  /** Number of learned blobs present for this layer in the caffemodel (undefined if the layer is absent). */
  get blobCount(): number | undefined {
    return this.blobs?.length;
  }
}

function shapeEquals(b: WeightBlob, expected: number[]): boolean {
  if (!b.legacy) return b.shape.length === expected.length && b.shape.every((d, i) => d === expected[i]);
  if (expected.length > 4) return false;
  const padded = [...Array<number>(4 - expected.length).fill(1), ...expected];
  return padded.every((d, i) => d === b.shape[i]);
}

export interface LayerHandler {
  /** Caffe type names (V2 strings) this handler converts */
  types: string[];
  /** Emit ONNX nodes producing `ctx.out(i)` for each top and return the top shapes. */
  convert(ctx: LayerContext): Shape[];
}
