import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelshipError } from './errors';

/**
 * Downloads that land in @actions/tool-cache's cache: the runner's tool cache on GitHub (kept between steps, and on
 * self-hosted runners between jobs), `~/.cache/modelship/` elsewhere, so a second run downloads nothing.
 *
 * @actions/tool-cache is ESM-only and is loaded on use (like @actions/github), into its own chunk of dist/.
 */
export type ToolCache = typeof import('@actions/tool-cache');

/** @actions/tool-cache itself, loaded on first use (for what the wrappers below do not cover, e.g. extractTar). */
export async function loadToolCache(): Promise<ToolCache> {
  try {
    return await import('@actions/tool-cache');
  } catch (e) {
    // Compiled to CommonJS (ts-jest, ts-node), import() becomes require(), which cannot load a package whose
    // "exports" has only an "import" condition: there Node's own import() is reached through Function. (The bundle
    // never gets here: ncc resolves the import() above. Inside Jest's sandbox a test maps the module instead.)
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED' && code !== 'ERR_REQUIRE_ESM') throw e;
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- Node's own import(), out of reach of the CommonJS compile (above)
    const nativeImport = new Function('id', 'return import(id)') as (id: string) => Promise<ToolCache>;
    return nativeImport('@actions/tool-cache');
  }
}

/** The directories tool-cache uses: RUNNER_TOOL_CACHE and RUNNER_TEMP. */
export interface ToolCacheDirs {
  toolCache: string;
  temp: string;
}

/**
 * tool-cache needs RUNNER_TOOL_CACHE (the cache) and RUNNER_TEMP (downloads in flight), which only GitHub's runner
 * sets. Outside GitHub each one that is unset becomes a directory under `$XDG_CACHE_HOME/modelship/` (default
 * `~/.cache/modelship/`): `tool-cache/` and `tmp/`, created here. Variables already set are left as they are.
 * tool-cache reads `process.env`, so pass another `env` only to compute the directories.
 */
export function ensureToolCacheEnv(env: NodeJS.ProcessEnv = process.env): ToolCacheDirs {
  const home = env.HOME || os.homedir();
  // the XDG spec says to ignore a relative XDG_CACHE_HOME
  const cacheHome = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(home, '.cache');
  const defaults: [keyof ToolCacheDirs, string, string][] = [
    ['toolCache', 'RUNNER_TOOL_CACHE', path.join(cacheHome, 'modelship', 'tool-cache')],
    ['temp', 'RUNNER_TEMP', path.join(cacheHome, 'modelship', 'tmp')],
  ];
  const dirs = {} as ToolCacheDirs;
  for (const [key, name, dflt] of defaults) {
    if (!env[name]) {
      try {
        fs.mkdirSync(dflt, { recursive: true });
      } catch (e) {
        throw new ModelshipError('io', `cannot create the download cache ${dflt} (set ${name} to a writable directory): ${(e as Error).message}`, {
          file: dflt,
        });
      }
      env[name] = dflt;
    }
    dirs[key] = env[name];
  }
  return dirs;
}

/** A URL as messages and logs show it: without the user and password a mirror's URL may carry. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}

/** The digests of a file, in the forms checksums are published in: sha256 as hex, sha512 as base64 (NuGet). */
export interface FileDigests {
  sha256: string;
  sha512: string;
}

/** Hash a file as a stream (downloads can be hundreds of MB), both digests in one pass. */
export async function hashFile(file: string): Promise<FileDigests> {
  const h256 = crypto.createHash('sha256');
  const h512 = crypto.createHash('sha512');
  for await (const chunk of fs.createReadStream(file)) {
    h256.update(chunk as Buffer);
    h512.update(chunk as Buffer);
  }
  return { sha256: h256.digest('hex'), sha512: h512.digest('base64') };
}

/** What a download must hash to: hex sha256 and/or base64 sha512; at least one. */
export interface Expected {
  sha256?: string;
  sha512Base64?: string;
}

/**
 * Compare digests with what they must be; a mismatch throws naming `where` (a URL or a file), with expected and
 * actual digests. Hex compares case-insensitively, base64 by the bytes it encodes.
 */
export function checkDigests(actual: FileDigests, expected: Expected, where: string, what: string): void {
  if (expected.sha256 && expected.sha256.toLowerCase() !== actual.sha256) {
    throw new ModelshipError('io', `checksum mismatch for ${what} ${where}: expected sha256 ${expected.sha256.toLowerCase()}, got ${actual.sha256}`);
  }
  if (expected.sha512Base64 && !Buffer.from(expected.sha512Base64, 'base64').equals(Buffer.from(actual.sha512, 'base64'))) {
    throw new ModelshipError('io', `checksum mismatch for ${what} ${where}: expected sha512 ${expected.sha512Base64}, got ${actual.sha512}`);
  }
}

/**
 * Run a tool-cache call without its `::debug::` lines on stdout outside GitHub: @actions/core writes them to
 * process.stdout, where the CLI prints its outputs. On a runner they stay (the runner shows them with step debug).
 */
let quieted = 0;
let realWrite: typeof process.stdout.write | undefined;
async function quietDebug<T>(fn: () => Promise<T>): Promise<T> {
  if (process.env.GITHUB_ACTIONS === 'true') return fn();
  if (quieted++ === 0) {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call(this) below and put back on process.stdout after
    const write = (realWrite = process.stdout.write);
    process.stdout.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      if (typeof chunk === 'string' && chunk.startsWith('::debug::')) {
        const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        if (cb) process.nextTick(cb);
        return true;
      }
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    };
  }
  try {
    return await fn();
  } finally {
    if (--quieted === 0 && realWrite) process.stdout.write = realWrite;
  }
}

/**
 * Download `url` into RUNNER_TEMP with tool-cache (redirects, proxies and retries of 5xx are its own); returns the
 * file. An HTTP error or an unreachable host throws a ModelshipError naming the URL. `what` names the download in
 * messages ("the ONNX Runtime GPU package"); a user and password in the URL are left out of them.
 */
export async function download(url: string, what: string): Promise<string> {
  ensureToolCacheEnv();
  const tc = await loadToolCache();
  try {
    return await quietDebug(() => tc.downloadTool(url));
  } catch (e) {
    const status = (e as { httpStatusCode?: number }).httpStatusCode;
    const why = status ? `HTTP ${status}` : (e as Error).message;
    throw new ModelshipError('io', `cannot download ${what} from ${shownUrl(url)}: ${why}`);
  }
}

/**
 * Download `url` and check it against `expected` before anyone uses it: on a mismatch the file is deleted and the
 * error names the URL with expected and actual digests. Returns the file (in RUNNER_TEMP; the caller removes it)
 * and its digests.
 */
export async function downloadVerified(url: string, expected: Expected, what: string): Promise<{ file: string } & FileDigests> {
  if (!expected.sha256 && !expected.sha512Base64) throw new Error(`downloadVerified(${shownUrl(url)}): no checksum to verify against`);
  const file = await download(url, what);
  try {
    const digests = await hashFile(file);
    checkDigests(digests, expected, shownUrl(url), what);
    return { file, ...digests };
  } catch (e) {
    fs.rmSync(file, { force: true });
    throw e;
  }
}

/** tool-cache's `find` for an exact version: the cached directory, or '' when it is not (completely) there. */
export async function findCached(tool: string, version: string, arch: string): Promise<string> {
  ensureToolCacheEnv();
  const tc = await loadToolCache();
  return quietDebug(() => Promise.resolve(tc.find(tool, version, arch)));
}

/**
 * Copy the contents of `dir` into the tool cache as `tool` `version` `arch` (replacing what was there) and mark it
 * complete; returns the cached directory. The marker is written last, so an interrupted copy is never found.
 */
export async function cacheDir(dir: string, tool: string, version: string, arch: string): Promise<string> {
  ensureToolCacheEnv();
  const tc = await loadToolCache();
  try {
    return await quietDebug(() => tc.cacheDir(dir, tool, version, arch));
  } catch (e) {
    throw new ModelshipError('io', `cannot store ${tool} ${version} in the tool cache ${process.env.RUNNER_TOOL_CACHE}: ${(e as Error).message}`);
  }
}
