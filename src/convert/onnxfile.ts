import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { ModelshipError } from '../util/errors';
import type { EncodedModel } from './graph';

/** Bytes per write: one is in flight on libuv's thread pool while this thread hashes it. */
const CHUNK = 8 << 20;
/** Written bytes that start a flush to disk (fdatasync) while the writing goes on, if none is in flight. */
const FLUSH_AFTER = 16 << 20;

/**
 * Write an encoded ONNX model atomically, as util/fsx's writeFileAtomic does (a temporary file in the same
 * directory, fsync, rename: a reader or a crash never sees half a model), but streamed from its pieces: the
 * weights go from the caffemodel buffer to the file, never through one model-sized buffer. Returns the file's
 * sha256 and size.
 *
 * What a large model costs beyond the bytes themselves overlaps its I/O. The disk takes the data while it is being
 * written (a flush is started every FLUSH_AFTER bytes, the page cache does not hold it all until the end); each
 * chunk is hashed (the file's sha256) while the thread pool writes it, and so is a share of `side` (the
 * caffemodel, whose sha256 the metadata holds); the metadata, the last field, is encoded while the rest is flushed.
 */
export async function writeModelFile(file: string, model: EncodedModel, side?: SideHash): Promise<{ sha256: string; size: number }> {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  let pending: Promise<unknown> | undefined;
  // a flush in flight (it never rejects: its error is kept for the next `flushed`, so none goes unhandled)
  let flushing: Promise<void> | undefined;
  let flushBusy = false;
  let flushError: Error | undefined;
  const flushed = async () => {
    await flushing;
    if (flushError) throw flushError;
  };
  try {
    fs.mkdirSync(dir, { recursive: true });
    fd = fs.openSync(tmp, 'w');
    const out = fd;
    const flush = (sync: typeof fs.fsync) => {
      flushBusy = true;
      flushing = new Promise<void>((resolve) =>
        sync(out, (e) => {
          flushError ??= e ?? undefined;
          flushBusy = false;
          resolve();
        }),
      );
    };
    const hash = crypto.createHash('sha256');
    const sideHash = side && crypto.createHash('sha256');
    let sideDone = 0;
    let pos = 0;
    let unflushed = 0;
    for (const run of chunks(model.body)) {
      const size = run.reduce((n, b) => n + b.length, 0);
      pending = writeAt(out, [...run], pos);
      for (const b of run) hash.update(b);
      if (side && sideHash) {
        const upto = Math.min(side.bytes.length, Math.ceil(((pos + size) / model.bodyLength) * side.bytes.length));
        sideHash.update(side.bytes.subarray(sideDone, upto));
        sideDone = upto;
      }
      await pending;
      pos += size;
      unflushed += size;
      if (unflushed >= FLUSH_AFTER && !flushBusy) {
        await flushed();
        flush(fs.fdatasync);
        unflushed = 0;
      }
    }
    await flushed();
    flush(fs.fsync);
    if (side && sideHash) side.done(sideHash.update(side.bytes.subarray(sideDone)).digest('hex'));
    const tail = model.tail;
    await flushed();
    flushing = undefined;
    pending = undefined;
    hash.update(tail);
    fs.writeSync(out, tail, 0, tail.length, pos);
    fs.fsyncSync(out);
    fs.closeSync(out);
    fd = undefined;
    fs.renameSync(tmp, file);
    return { sha256: hash.digest('hex'), size: pos + tail.length };
  } catch (e) {
    await Promise.allSettled([pending, flushing]); // never close the fd under a write or flush in flight
    try {
      if (fd !== undefined) fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
    } catch {
      // (nothing to clean: the directory itself could not be made or read)
    }
    if (e instanceof ModelshipError) throw e;
    throw new ModelshipError('io', `cannot write ${file}: ${(e as Error).message}`, { file });
  }
}

/** Bytes to hash alongside the model's own (their digest goes into the metadata, see writeModelFile). */
export interface SideHash {
  bytes: Uint8Array;
  /** called with their sha256 (hex) before the metadata is encoded */
  done(sha256: string): void;
}

/** The pieces as runs of views of about CHUNK bytes: large pieces sliced, nothing copied. */
function* chunks(pieces: readonly Uint8Array[]): Generator<Uint8Array[]> {
  let run: Uint8Array[] = [];
  let size = 0;
  for (const p of pieces) {
    for (let off = 0; off < p.length;) {
      const n = Math.min(p.length - off, CHUNK - size);
      run.push(off === 0 && n === p.length ? p : p.subarray(off, off + n));
      size += n;
      off += n;
      if (size === CHUNK) {
        yield run;
        run = [];
        size = 0;
      }
    }
  }
  if (size > 0) yield run;
}

/** writev(2) at a position on the thread pool, looping on short writes */
async function writeAt(fd: number, bufs: Uint8Array[], pos: number): Promise<void> {
  while (bufs.length) {
    const n = await new Promise<number>((resolve, reject) => fs.writev(fd, bufs, pos, (e, written) => (e ? reject(e) : resolve(written))));
    if (n <= 0) throw new Error(`writev wrote ${n} bytes`);
    pos += n;
    let skip = n;
    while (bufs.length && skip >= bufs[0].length) skip -= bufs.shift()!.length;
    if (skip > 0) bufs[0] = bufs[0].subarray(skip);
  }
}
