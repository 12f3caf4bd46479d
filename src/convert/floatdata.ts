const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * float32 values that may live as little-endian bytes inside the caffemodel buffer. Weights flow from the
 * caffemodel into ONNX `raw_data` without a copy; `values` materialises a Float32Array only for the few layers
 * that compute on weights (BatchNorm, transposed InnerProduct).
 */
export class FloatData {
  private arr?: Float32Array;
  private raw?: Uint8Array;

  private constructor(raw?: Uint8Array, arr?: Float32Array) {
    this.raw = raw;
    this.arr = arr;
  }

  /** packed little-endian float32 bytes (length must be a multiple of 4) */
  static fromBytes(raw: Uint8Array): FloatData {
    return new FloatData(raw, undefined);
  }

  static fromArray(arr: Float32Array | number[]): FloatData {
    return new FloatData(undefined, arr instanceof Float32Array ? arr : Float32Array.from(arr));
  }

  get length(): number {
    return this.arr ? this.arr.length : this.raw!.byteLength / 4;
  }

  /** little-endian float32 bytes */
  get bytes(): Uint8Array {
    if (this.raw && littleEndianHost) return this.raw;
    const a = this.values;
    if (littleEndianHost) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const out = new Uint8Array(a.length * 4);
    const dv = new DataView(out.buffer);
    a.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return out;
  }

  get values(): Float32Array {
    if (!this.arr) {
      const raw = this.raw!;
      if (littleEndianHost && raw.byteOffset % 4 === 0) {
        this.arr = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      } else {
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        this.arr = new Float32Array(raw.byteLength / 4);
        for (let i = 0; i < this.arr.length; i++) this.arr[i] = dv.getFloat32(i * 4, true);
      }
    }
    return this.arr;
  }
}
