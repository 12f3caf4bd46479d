// The preprocessing as data, apart from image decoding (src/protocol/pixels.ts): inputs read it without loading decoders.

/** Caffe-style preprocessing, GoogLeNet's defaults: resize to 256 on the short side, center crop, BGR, mean. */
export interface Preprocess {
  /** short side after resize (0 = resize straight to the crop) */
  resize: number;
  channelOrder: 'BGR' | 'RGB';
  /** per-channel mean in channelOrder, subtracted before scaling */
  mean: number[];
  scale: number;
}

export const GOOGLENET_PREPROCESS: Preprocess = { resize: 256, channelOrder: 'BGR', mean: [104, 117, 123], scale: 1 };

/**
 * A preprocessing as JSON (`MODELSHIP_PREPROCESS`, smoke's `preprocess`): any of resize, channelOrder, mean, scale,
 * over `base`. Throws an Error saying what is wrong (the caller names where it came from).
 */
export function parsePreprocess(text: string, base: Preprocess = GOOGLENET_PREPROCESS): Preprocess {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('expected a JSON object with any of resize, channelOrder, mean, scale');
  const fields = v as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !['resize', 'channelOrder', 'mean', 'scale'].includes(k));
  if (unknown.length)
    throw new Error(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (known: resize, channelOrder, mean, scale)`);
  const p = { ...base };
  if (fields.resize !== undefined) {
    if (typeof fields.resize !== 'number' || !Number.isInteger(fields.resize) || fields.resize < 0)
      throw new Error(
        `"resize" must be a whole number ≥ 0 (the short side before the center crop; 0: straight to the crop), got ${JSON.stringify(fields.resize)}`,
      );
    p.resize = fields.resize;
  }
  if (fields.channelOrder !== undefined) {
    if (fields.channelOrder !== 'BGR' && fields.channelOrder !== 'RGB')
      throw new Error(`"channelOrder" must be "BGR" or "RGB", got ${JSON.stringify(fields.channelOrder)}`);
    p.channelOrder = fields.channelOrder;
  }
  if (fields.mean !== undefined) {
    if (!Array.isArray(fields.mean) || fields.mean.length !== 3 || fields.mean.some((x) => typeof x !== 'number' || !Number.isFinite(x)))
      throw new Error(`"mean" must be three numbers, per channel in channelOrder, got ${JSON.stringify(fields.mean)}`);
    p.mean = fields.mean as number[];
  }
  if (fields.scale !== undefined) {
    if (typeof fields.scale !== 'number' || !Number.isFinite(fields.scale)) throw new Error(`"scale" must be a number, got ${JSON.stringify(fields.scale)}`);
    p.scale = fields.scale;
  }
  return p;
}
