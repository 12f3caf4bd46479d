import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * What the files of one jest run share across its workers (the lab tier runs several files at once, each in a worker
 * process of its own): a directory under the run's temporary directory (MODELSHIP_TEST_TMP, made by the global setup
 * before the workers start, removed by the global teardown), cross-process locks in it, and values built once per run
 * under such a lock (`once`).
 */
export function sharedDir(): string {
  const root = process.env.MODELSHIP_TEST_TMP || path.join(os.tmpdir(), `modelship-shared-${process.ppid}`);
  const dir = path.join(root, 'shared');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** The run's id: the name of its temporary directory (unique per run; the same in every worker). */
export function runId(): string {
  return path
    .basename(path.dirname(sharedDir()))
    .replace(/^modelship-run-/, '')
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase();
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Run `fn` holding the lock `name` (a directory made atomically; another worker waits for it, polling): run-wide, or
 * machine-wide for what every jest run on the machine shares (the lab cluster's nodes). A lock whose holder process has
 * died is taken over; after `timeoutMs` of waiting, an error names the holder.
 */
export async function withLock<T>(name: string, fn: () => Promise<T>, o: { machine?: boolean; timeoutMs?: number } = {}): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 600_000;
  const dir = o.machine ? path.join(os.tmpdir(), 'modelship-test-locks') : sharedDir();
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, `${name}.lock`);
  const t0 = Date.now();
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = NaN;
      try {
        holder = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        /* being made or removed right now */
      }
      if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
        fs.rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`waited ${Math.round(timeoutMs / 1000)} s for the lock ${name} (held by pid ${holder})`);
      await pause(250);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * A JSON value made once per run, whichever worker asks first: `make` runs under the lock `key`; the others wait and
 * read what it wrote. A failed `make` writes nothing (the next caller tries again).
 */
export async function once<T>(key: string, make: () => Promise<T>): Promise<T> {
  const file = path.join(sharedDir(), `${key}.json`);
  const read = (): T | undefined => (fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as T) : undefined);
  const have = read();
  if (have !== undefined) return have;
  return withLock(key, async () => {
    const made = read();
    if (made !== undefined) return made;
    const v = await make();
    fs.writeFileSync(`${file}.${process.pid}`, JSON.stringify(v));
    fs.renameSync(`${file}.${process.pid}`, file);
    return v;
  });
}
