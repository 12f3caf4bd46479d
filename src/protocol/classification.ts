/**
 * Triton's classification extension, the pure part: the top-N classes of one batch item and their strings.
 *
 * Read from Triton's source (triton-inference-server/server src/classification.cc, AddClassResults, and the
 * HTTP frontend's response writer in src/http_server.cc):
 * - the classes are the elements of one batch item ordered by value, highest first (`std::sort` with
 *   `probs[i1] > probs[i2]`);
 * - each becomes the string `std::to_string(value) + ":" + std::to_string(index)`, plus `":" + label` when the model
 *   has a label for that index. `std::to_string(float)` is C's `%f`: six decimals, so 0.75 is "0.750000" and 3.3f is
 *   "3.300000" (the protocol document's examples, "3.3:1", show the idea, not what the server writes).
 *
 * Where Triton's text leaves a choice: `std::sort` is not stable and with NaN its comparison is not an ordering, so
 * Triton's order of ties and NaNs is unspecified. Here ties go lowest index first and NaNs go after every number.
 */

/** C's `printf("%f", v)` (glibc: the exact binary value rounded half to even to six decimals; "nan", "-nan", "inf"). */
export function formatCFloat(v: number, nanSignBit = false): string {
  if (v !== v) return nanSignBit ? '-nan' : 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  const neg = v < 0 || Object.is(v, -0);
  // |v| = mantissa * 2^exponent, exactly
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, Math.abs(v));
  const hi = dv.getUint32(0);
  const biased = hi >>> 20;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(dv.getUint32(4));
  let exponent = -1074;
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  // micro-units: |v| * 10^6, rounded half to even
  const scaled = mantissa * 1_000_000n;
  let units: bigint;
  if (exponent >= 0) {
    units = scaled << BigInt(exponent);
  } else {
    const shift = BigInt(-exponent);
    units = scaled >> shift;
    const rest = scaled - (units << shift);
    const half = 1n << (shift - 1n);
    if (rest > half || (rest === half && (units & 1n) === 1n)) units += 1n;
  }
  const digits = units.toString().padStart(7, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -6)}.${digits.slice(-6)}`;
}

/** `a` ranks before `b` (indices into `d`): higher value first, NaN last, ties by lower index. */
function before(d: Float32Array, a: number, b: number): boolean {
  const x = d[a];
  const y = d[b];
  if (x !== x) return y !== y && a < b;
  if (y !== y) return true;
  return x > y || (x === y && a < b);
}

/**
 * The indices (relative to `start`) of the `k` highest of `d[start .. start + count)`, highest first.
 * Small `k` keeps a sorted list of the best so far (one pass); a large one sorts every index.
 */
export function topClasses(d: Float32Array, start: number, count: number, k: number): number[] {
  if (k <= 0 || count <= 0) return [];
  if (k > 64) {
    const idx = Array.from({ length: count }, (_, i) => start + i);
    idx.sort((a, b) => (before(d, a, b) ? -1 : before(d, b, a) ? 1 : 0));
    return idx.slice(0, k).map((i) => i - start);
  }
  const top: number[] = [];
  for (let i = start; i < start + count; i++) {
    if (top.length === k && !before(d, i, top[k - 1])) continue;
    let j = top.length < k ? top.length : k - 1;
    while (j > 0 && before(d, i, top[j - 1])) {
      top[j] = top[j - 1];
      j--;
    }
    top[j] = i;
  }
  return top.map((i) => i - start);
}

/**
 * Triton's classification strings for each of `items` batch items of `d` (each `count` classes): per item the top `k`
 * as "<value>:<index>" or "<value>:<index>:<label>", in one flat row-major list ([items, k]).
 */
export function classificationStrings(d: Float32Array, items: number, count: number, k: number, labels?: readonly string[]): string[] {
  // the raw bits, for the sign of a NaN (C prints "-nan" for one with the sign bit set, as x86's default NaN has)
  const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
  const out: string[] = [];
  for (let b = 0; b < items; b++) {
    const start = b * count;
    for (const i of topClasses(d, start, count, k)) {
      const v = d[start + i];
      const label = labels?.[i];
      out.push(`${formatCFloat(v, v !== v && bits[start + i] >>> 31 === 1)}:${i}${label === undefined ? '' : `:${label}`}`);
    }
  }
  return out;
}
