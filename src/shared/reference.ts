import * as fs from 'fs';
import * as path from 'path';
import { ModelshipError } from '../util/errors';

/**
 * The reference directory: what real Caffe computed, read by every stage that checks outputs (convert and compile
 * parity, smoke and rollout golden requests). `input_b<N>.npy` (or `input_b<N>__<input>.npy` for several inputs),
 * `output_b<N>__<blob>.npy`, and for per-layer checks `blobs_b1/`.
 */

/** A blob or tensor name as it appears in a file name ('/' is not allowed there). */
export const blobFileName = (blob: string): string => blob.replace(/\//g, '_');
const sanitize = blobFileName;

/** The reference batches available in `dir` (input_b<N>.npy or input_b<N>__<name>.npy). */
export function referenceBatches(dir: string): number[] {
  const found = new Set<number>();
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such directory' : err.code === 'ENOTDIR' ? 'not a directory' : err.message;
    throw new ModelshipError('input', `input "reference": cannot read the reference directory: ${why}`, { file: dir, field: 'reference' });
  }
  for (const f of names) {
    const m = /^input_b(\d+)(?:__.+)?\.npy$/.exec(f);
    if (m) found.add(Number(m[1]));
  }
  return [...found].sort((a, b) => a - b);
}

export function inputFile(dir: string, batch: number, name: string, single: boolean): string {
  const named = path.join(dir, `input_b${batch}__${sanitize(name)}.npy`);
  if (fs.existsSync(named)) return named;
  const plain = path.join(dir, `input_b${batch}.npy`);
  if (single && fs.existsSync(plain)) return plain;
  throw new ModelshipError(
    'input',
    `reference input for "${name}" at batch ${batch} not found (expected ${path.basename(named)}${single ? ` or ${path.basename(plain)}` : ''})`,
    { file: dir },
  );
}

/** Caffe's output `name` at `batch`: output_b<N>__<name>.npy in `dir`. */
export function outputFile(dir: string, batch: number, name: string): string {
  return path.join(dir, `output_b${batch}__${sanitize(name)}.npy`);
}
