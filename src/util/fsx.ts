import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import { ModelshipError } from './errors';

/**
 * Write a file atomically: a temporary file in the same directory, fsync, then rename.
 * A reader (or a crash) never sees a half-written output.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing was created (the directory is not one): the write's own error says why
    }
    throw new ModelshipError('io', `cannot write ${file}: ${(e as Error).message}`, { file });
  }
}

/** Read a whole file, turning ENOENT and friends into a ModelshipError naming the input. */
export function readFileChecked(file: string, what: string): Buffer {
  try {
    const st = fs.statSync(file);
    if (st.isDirectory()) throw new ModelshipError('input', `${what} is a directory, expected a file`, { file });
    return fs.readFileSync(file);
  } catch (e) {
    if (e instanceof ModelshipError) throw e;
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.message;
    throw new ModelshipError('input', `cannot read ${what}: ${why}`, { file });
  }
}

export function sha256(data: Uint8Array | string): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}
