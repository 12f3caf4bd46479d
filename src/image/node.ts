import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { ModelshipError } from '../util/errors';
import { libcOf, readElfFile } from '../util/elf';
import { cacheDir, download, downloadVerified, ensureToolCacheEnv, findCached, hashFile, loadToolCache } from '../util/toolcache';

/**
 * The Node.js that runs the server inside the image. By default an official release, pinned by version, downloaded
 * from nodejs.org/dist (or a mirror) with @actions/tool-cache and checked against the release's SHASUMS256.txt; its
 * LICENSE goes into the image beside it. `node-binary` overrides it with a binary of the user's choosing. Either
 * way the binary must be what the serving base images can run: ELF x86-64, linked against glibc.
 */

/** The Node.js release put in images (linux-x64, glibc). */
export const DEFAULT_NODE_VERSION = '24.22.3';
export const DEFAULT_NODE_MIRROR = 'https://nodejs.org/dist';

export interface NodeSource {
  /** a node binary to ship instead of a download; '' = download `nodeVersion` */
  nodeBinary: string;
  /** x.y.z of an official release (a leading v is accepted) */
  nodeVersion: string;
  /** where releases live: `${nodeMirror}/v${version}/SHASUMS256.txt`; default https://nodejs.org/dist */
  nodeMirror: string;
}

export interface NodeRuntime {
  /** the node executable to copy into the image */
  binary: string;
  /** Node.js's LICENSE file to ship beside it; undefined when none was found (a node-binary without one) */
  license?: string;
  /** x.y.z; '' when unknown (a node-binary that cannot be run here) */
  version: string;
  /** 'node-binary', or the URL of the release tarball it came from */
  source: string;
}

export interface NodeLog {
  info(l: string): void;
  warn?(l: string): void;
}

type Field = 'node-binary' | 'node-version';

/** Written into the release's directory before tc.cacheDir: a tool-cache entry without it was not made (and verified) by us. */
const MARKER = '.modelship-verified.json';
/** The tool-cache name: its own, so the runner's setup-node entries (`node/<version>`) are neither used nor replaced. */
export const NODE_TOOL = 'modelship-node';
interface Marker {
  version: string;
  /** the tarball it was extracted from */
  url: string;
  /** the tarball's sha256, as SHASUMS256.txt gives it */
  sha256: string;
  /** bin/node's sha256 and size (the size is re-checked on every cache hit) */
  nodeSha256: string;
  nodeSize: number;
}

const ET_EXEC = 2;
const EM_X86_64 = 62;

/**
 * Refuse a file the serving image cannot run as its node: not ELF, not x86-64, a musl build, or one whose program
 * interpreter is not where a glibc base image has it. `what` names the file in messages (e.g. `node-binary
 * /opt/node/bin/node`); `field` is the input to blame.
 */
export function checkNodeBinary(file: string, what: string, field: Field = 'node-binary'): void {
  const refuse = (m: string): never => {
    throw new ModelshipError('input', `${what}: ${m}`, { field });
  };
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return refuse(err.code === 'ENOENT' ? 'no such file' : `cannot read it: ${err.message}`);
  }
  if (!st.isFile()) refuse('not a regular file');
  let info;
  try {
    info = readElfFile(file);
  } catch (e) {
    const msg = (e as Error).message;
    const why = msg.includes('not a usable ELF file: ') ? msg.slice(msg.lastIndexOf('not a usable ELF file: ') + 23) : msg;
    return refuse(`not a Linux executable (${why}): give a linux-x64 node binary`);
  }
  if (info.machine !== EM_X86_64)
    refuse(`is ${/^[aeiou]/i.test(info.machineName) ? 'an' : 'a'} ${info.machineName} binary; the serving image is linux/amd64: give an x64 build`);
  const libc = libcOf(info);
  if (libc === 'musl') {
    refuse('is a musl build (Alpine); the serving base images are glibc-based: use an official linux-x64 Node.js release (node-binary empty) or a glibc build');
  }
  if (libc === 'glibc') {
    // the loader path is baked into the binary: a Nix store or custom-prefix path does not exist in the image
    if (!/^\/(usr\/)?lib(64|32|x32)?\/([^/]+\/)?ld-linux[^/]*$/.test(info.interpreter)) {
      refuse(
        `its program interpreter ${info.interpreter} will not exist in the serving image (a Nix or custom-prefix build?): use an official linux-x64 Node.js release (node-binary empty)`,
      );
    }
  } else if (info.interpreter) {
    refuse(`its program interpreter ${info.interpreter} is neither glibc's nor musl's: use an official linux-x64 Node.js release (node-binary empty)`);
  } else if (info.type !== ET_EXEC) {
    // no interpreter: a static executable runs anywhere, but an ET_DYN without one is a shared library
    refuse('is a shared library, not an executable: give the node executable');
  }
  if ((st.mode & 0o111) === 0) refuse('is not executable (chmod +x it)');
}

/** Where the image's Node.js comes from: `node-binary` if given, else the pinned official release (downloaded once, then from the tool cache). */
export async function resolveNodeRuntime(src: NodeSource, log: NodeLog): Promise<NodeRuntime> {
  if (src.nodeBinary) return fromBinary(src.nodeBinary, log);
  return fromRelease(parseVersion(src.nodeVersion), parseMirror(src.nodeMirror), log);
}

function fromBinary(file: string, log: NodeLog): NodeRuntime {
  checkNodeBinary(file, `node-binary ${file}`, 'node-binary');
  // the official tarball's layout: bin/node and LICENSE side by side; follow symlinks (/usr/local/bin/node → …/bin/node)
  let real = file;
  try {
    real = fs.realpathSync(file);
  } catch {
    /* checked above; keep the given path */
  }
  const candidate = path.join(path.dirname(real), '..', 'LICENSE');
  const license = isFile(candidate) ? path.resolve(candidate) : undefined;
  if (!license)
    warn(
      log,
      `node-binary ${file}: no LICENSE in ${path.resolve(path.dirname(real), '..')} (the official tarball has one beside bin/): the image will carry no Node.js license file`,
    );
  const version = versionOf(file);
  if (version && !atLeast(version, [20, 19, 0])) warn(log, `node-binary ${file} is Node.js ${version}; the server needs 20.19 or later`);
  log.info(`Node.js for the image: node-binary ${file}${version ? ` (v${version})` : ''}`);
  return { binary: file, license, version, source: 'node-binary' };
}

async function fromRelease(version: string, mirror: string, log: NodeLog): Promise<NodeRuntime> {
  const { temp } = ensureToolCacheEnv();
  const name = `node-v${version}-linux-x64`;
  const shasumsUrl = `${mirror}/v${version}/SHASUMS256.txt`;
  const tarballUrl = `${mirror}/v${version}/${name}.tar.gz`;

  const cached = await findCached(NODE_TOOL, version, 'x64');
  if (cached) {
    const hit = verifiedEntry(cached, version);
    if (hit) {
      log.info(`Node.js for the image: v${version} from the tool cache (${cached}), verified from ${hit.url}`);
      return runtimeIn(cached, version, hit.url, log);
    }
    log.info(`Node.js v${version} in the tool cache (${cached}) was not put there by modelship (or has changed): downloading it again`);
  }

  const work = fs.mkdtempSync(path.join(temp, 'modelship-node-'));
  const downloads: string[] = [];
  try {
    log.info(`Node.js for the image: downloading v${version} from ${mirror}`);
    const shasumsFile = await notFoundIsInput(download(shasumsUrl, `the SHASUMS256.txt of Node.js v${version}`), version);
    downloads.push(shasumsFile);
    const expected = checksumFor(fs.readFileSync(shasumsFile, 'utf8'), `${name}.tar.gz`);
    if (!expected)
      throw new ModelshipError('input', `${shasumsUrl} has no checksum for ${name}.tar.gz: is ${version} a Node.js release with a linux-x64 build?`, {
        field: 'node-version',
      });

    // a mismatch deletes the download and names the URL with both digests
    const { file: tarball } = await notFoundIsInput(downloadVerified(tarballUrl, { sha256: expected }, `Node.js v${version}`), version);
    downloads.push(tarball);

    const tc = await loadToolCache();
    const extracted = await quietly(log, () => tc.extractTar(tarball, path.join(work, 'x'), 'xz'));
    fs.rmSync(tarball, { force: true });
    const dir = path.join(extracted, name);
    const node = path.join(dir, 'bin', 'node');
    checkNodeBinary(node, `Node.js ${version} from ${tarballUrl} (bin/node)`, 'node-version');
    const marker: Marker = { version, url: tarballUrl, sha256: expected, nodeSha256: (await hashFile(node)).sha256, nodeSize: fs.statSync(node).size };
    fs.writeFileSync(path.join(dir, MARKER), JSON.stringify(marker, null, 2) + '\n');
    const cachedDir = await cacheDir(dir, NODE_TOOL, version, 'x64');
    log.info(`Node.js v${version}: sha256 ${expected} matches SHASUMS256.txt; cached in ${cachedDir}`);
    return runtimeIn(cachedDir, version, tarballUrl, log);
  } finally {
    for (const f of downloads) fs.rmSync(f, { force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A release that is not on the mirror is a wrong node-version (or node-mirror), not a network failure. */
async function notFoundIsInput<T>(p: Promise<T>, version: string): Promise<T> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof ModelshipError && /\bHTTP 404\b/.test(e.message)) {
      throw new ModelshipError('input', `${e.message}: no Node.js ${version} there (check node-version and node-mirror)`, { field: 'node-version' });
    }
    throw e;
  }
}

function runtimeIn(dir: string, version: string, url: string, log: NodeLog): NodeRuntime {
  const license = path.join(dir, 'LICENSE');
  if (!isFile(license)) {
    warn(log, `Node.js v${version} (${dir}) has no LICENSE file: the image will carry no Node.js license file`);
    return { binary: path.join(dir, 'bin', 'node'), version, source: url };
  }
  return { binary: path.join(dir, 'bin', 'node'), license, version, source: url };
}

/**
 * The marker of a tool-cache entry we made, if it is there, is for this version, and bin/node still has the size it
 * had when verified (a cheap guard against a truncated or replaced copy; the full hash is in the marker for the record).
 */
function verifiedEntry(dir: string, version: string): Marker | undefined {
  let m: Marker;
  try {
    m = JSON.parse(fs.readFileSync(path.join(dir, MARKER), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
  if (m.version !== version || typeof m.url !== 'string' || typeof m.nodeSize !== 'number') return undefined;
  try {
    const st = fs.statSync(path.join(dir, 'bin', 'node'));
    return st.isFile() && st.size === m.nodeSize ? m : undefined;
  } catch {
    return undefined;
  }
}

/** The hash SHASUMS256.txt gives for `file` (`<sha256>  <name>` lines; a `*` before the name marks binary mode). */
function checksumFor(shasums: string, file: string): string | undefined {
  for (const line of shasums.split(/\r?\n/)) {
    const m = /^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$/.exec(line.trim());
    if (m && m[2] === file) return m[1].toLowerCase();
  }
  return undefined;
}

function parseVersion(v: string): string {
  const m = /^v?(\d+\.\d+\.\d+)$/.exec(v.trim());
  if (!m)
    throw new ModelshipError('input', `input "node-version": expected a Node.js release version like ${DEFAULT_NODE_VERSION}, got "${v}"`, {
      field: 'node-version',
    });
  return m[1];
}

function parseMirror(m: string): string {
  const mirror = (m.trim() || DEFAULT_NODE_MIRROR).replace(/\/+$/, '');
  let u: URL;
  try {
    u = new URL(mirror);
  } catch {
    throw new ModelshipError('input', `input "node-mirror": not a URL: "${m}"`, { field: 'node-mirror' });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new ModelshipError('input', `input "node-mirror": expected an http(s) URL, got "${m}"`, { field: 'node-mirror' });
  return mirror;
}

/** `node --version` of a binary, if it runs here (it may not: an x64 binary on an arm64 runner). */
function versionOf(file: string): string {
  if (path.resolve(file) === process.execPath) return process.version.slice(1);
  if (process.platform !== 'linux' || process.arch !== 'x64') return '';
  const r = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 15000, env: {} });
  return /^v(\d+\.\d+\.\d+)\s*$/.exec(r.stdout ?? '')?.[1] ?? '';
}

function atLeast(v: string, min: [number, number, number]): boolean {
  const p = v.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (p[i] !== min[i]) return p[i] > min[i];
  return true;
}

function warn(log: NodeLog, l: string): void {
  if (log.warn) log.warn(l);
  else log.info(l);
}

function isFile(f: string): boolean {
  try {
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
}

/**
 * tc.extractTar reports through @actions/core and @actions/exec, which write `::debug::…` workflow commands and a
 * `[command]/usr/bin/tar …` echo to stdout. On a runner that is the log; the CLI's stdout carries its outputs
 * (`key=value` or --json), so there they go to the log instead (debug commands dropped) while it runs. (util/toolcache
 * quiets the debug lines of the calls it wraps; it has no extract wrapper.)
 */
async function quietly<T>(log: NodeLog, fn: () => Promise<T>): Promise<T> {
  if (process.env.GITHUB_ACTIONS === 'true') return fn();
  const out = process.stdout;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- kept only to be put back on process.stdout below, never called detached
  const write = out.write;
  out.write = function (chunk: unknown, enc?: unknown, cb?: unknown): boolean {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    for (const line of text.split(/\r?\n/)) if (line.trim() && !line.startsWith('::')) log.info(line);
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') process.nextTick(done);
    return true;
  };
  try {
    return await fn();
  } finally {
    out.write = write;
  }
}
