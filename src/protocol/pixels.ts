import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { ProtocolError } from './kserve';

/**
 * Pixels into an input tensor: a JPEG or PNG decoded, resized (and cropped, for classification) and preprocessed
 * (channel order, mean, scale). The one implementation of the modelship server's /classify and /detect routes and of
 * the clients that feed a sample image to a server's /infer (smoke, rollout).
 */

export { GOOGLENET_PREPROCESS, parsePreprocess } from './preprocess';
export type { Preprocess } from './preprocess';
import { Preprocess } from './preprocess';

interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

export function decodeImage(bytes: Buffer): Rgba {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    try {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 });
      return { width: img.width, height: img.height, data: img.data };
    } catch (e) {
      throw new ProtocolError(400, `cannot decode the JPEG image: ${(e as Error).message}`);
    }
  }
  if (bytes.length >= 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    try {
      const img = PNG.sync.read(bytes);
      return { width: img.width, height: img.height, data: img.data };
    } catch (e) {
      throw new ProtocolError(400, `cannot decode the PNG image: ${(e as Error).message}`);
    }
  }
  throw new ProtocolError(415, 'the body is not a JPEG or PNG image');
}

/** Bilinear sample of channel c at (x, y) in source pixel coordinates. */
function sample(img: Rgba, x: number, y: number, c: number): number {
  const x0 = Math.max(0, Math.min(img.width - 1, Math.floor(x)));
  const y0 = Math.max(0, Math.min(img.height - 1, Math.floor(y)));
  const x1 = Math.min(img.width - 1, x0 + 1);
  const y1 = Math.min(img.height - 1, y0 + 1);
  const fx = Math.max(0, Math.min(1, x - x0));
  const fy = Math.max(0, Math.min(1, y - y0));
  const at = (xx: number, yy: number) => img.data[(yy * img.width + xx) * 4 + c];
  return (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
}

/** Decode and preprocess an image into a [1, 3, H, W] float tensor (classification: resize, center crop). */
export function imageToTensor(bytes: Buffer, height: number, width: number, p: Preprocess): Float32Array {
  const img = decodeImage(bytes);
  // resize so the short side is `resize` (or straight to the crop), then take the center crop
  const s = p.resize > 0 ? p.resize / Math.min(img.width, img.height) : Math.max(width / img.width, height / img.height);
  const rw = img.width * s;
  const rh = img.height * s;
  const ox = (rw - width) / 2;
  const oy = (rh - height) / 2;
  const out = new Float32Array(3 * height * width);
  const order = p.channelOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v = sample(img, (x + ox + 0.5) / s - 0.5, (y + oy + 0.5) / s - 0.5, order[c]);
        out[(c * height + y) * width + x] = (v - (p.mean[c] ?? 0)) * p.scale;
      }
    }
  }
  return out;
}

/**
 * Decode and preprocess an image for a detection model (SSD): the whole image resized to H x W (the aspect ratio is
 * not kept and nothing is cropped, as SSD's test-time transform and OpenCV's `blobFromImage(img, scale, (W, H), mean,
 * crop=False)` do), then channel order, mean and scale as `p` says (`p.resize` does not apply). A detection's
 * normalized box times the original `width` and `height` is then the box in the original image's pixels.
 */
export function imageToDetectionTensor(bytes: Buffer, height: number, width: number, p: Preprocess): { data: Float32Array; width: number; height: number } {
  const img = decodeImage(bytes);
  const sx = width / img.width;
  const sy = height / img.height;
  const out = new Float32Array(3 * height * width);
  const order = p.channelOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v = sample(img, (x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5, order[c]);
        out[(c * height + y) * width + x] = (v - (p.mean[c] ?? 0)) * p.scale;
      }
    }
  }
  return { data: out, width: img.width, height: img.height };
}
