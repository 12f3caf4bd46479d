import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { REPO, tmpDir } from './helpers/caffe';

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort();
}

type Stats = { chunks: { modules?: StatsModule[] }[] };
type StatsModule = { identifier: string; modules?: StatsModule[] };

/**
 * `npm run build` (package.json's "build", so the two cannot drift apart), run one command at a time with dist/
 * replaced by `out` and its ncc stats file by `statsFile`. Returns the stats as ncc wrote them: post-build reads them
 * for dist/licenses.txt and then removes them.
 */
function build(out: string, statsFile: string): Stats {
  const script: string = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts.build;
  const steps = script.split('&&').map((c) => c.trim().split(/\s+/));
  const ncc = steps.find((c) => c[0] === 'ncc');
  const statsArg = ncc?.[ncc.indexOf('--stats-out') + 1];
  if (!ncc || !ncc.includes('--stats-out') || !statsArg) throw new Error(`package.json "build" runs no \`ncc build … --stats-out FILE\`: ${script}`);
  const sub = (a: string): string =>
    a === 'dist'
      ? out
      : a.startsWith('dist/')
        ? path.join(out, a.slice(5))
        : a === statsArg
          ? statsFile
          : a === path.dirname(statsArg)
            ? path.dirname(statsFile)
            : a;
  let stats: Stats | undefined;
  for (const [cmd, ...args] of steps.map((c) => c.map(sub))) {
    if (cmd === 'rm' && args[0] === '-rf') for (const p of args.slice(1)) fs.rmSync(path.resolve(REPO, p), { recursive: true, force: true });
    else if (cmd === 'mkdir' && args[0] === '-p') for (const p of args.slice(1)) fs.mkdirSync(path.resolve(REPO, p), { recursive: true });
    else if (cmd === 'ncc') {
      execFileSync(process.execPath, [path.join(REPO, 'node_modules/@vercel/ncc/dist/ncc/cli.js'), ...args], { cwd: REPO, stdio: 'pipe' });
      stats = JSON.parse(fs.readFileSync(statsFile, 'utf8'));
    } else if (cmd === 'node') execFileSync(process.execPath, args, { cwd: REPO, stdio: 'pipe' });
    else throw new Error(`package.json "build": this test does not know how to run \`${cmd}\`; teach build() in test/dist.tools.test.ts`);
  }
  if (fs.existsSync(statsFile)) throw new Error('post-build left the ncc stats file behind');
  return stats!;
}

/** The package directory (the last node_modules/<name> or node_modules/@scope/<name>) of a file, or null. */
function packageDir(file: string): string | null {
  const parts = file.split(/[\\/]/);
  for (let i = parts.length - 2; i >= 0; i--) {
    if (parts[i] !== 'node_modules' || parts[i + 1].startsWith('.')) continue;
    const n = parts[i + 1].startsWith('@') ? 2 : 1;
    if (i + n < parts.length) return parts.slice(0, i + 1 + n).join('/');
  }
  return null;
}

function nameAtVersion(dir: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  return `${pkg.name}@${pkg.version}`;
}

/**
 * name@version of every package with code in the bundle, worked out here and not by scripts/licenses.mjs: the files
 * named by the modules of every output chunk (and the modules concatenated into them), plus the package the native
 * binaries under bin/ are byte-for-byte copies from.
 */
function bundledPackages(stats: Stats, out: string): string[] {
  const dirs = new Set<string>();
  const visit = (m: StatsModule): void => {
    // identifier: [type|]loader!…!loader!/abs/file[?query][|hash]; externals and webpack's runtime name no file
    const file = m.identifier
      .split('!')
      .pop()!
      .split('|')
      .find((p) => path.isAbsolute(p))
      ?.replace(/\?.*$/, '');
    const dir = file && packageDir(file);
    if (dir) dirs.add(dir);
    m.modules?.forEach(visit);
  };
  for (const c of stats.chunks) c.modules?.forEach(visit);
  const ort = path.join(REPO, 'node_modules/onnxruntime-node');
  // @grpc/grpc-js reads its own .proto files at run time (channelz, ORCA load reports): ncc copies its proto/ folder
  // as assets, at dist/proto/ and again at the top for the paths it resolves from there
  const grpcJs = path.join(REPO, 'node_modules/@grpc/grpc-js');
  for (const f of filesUnder(out)) {
    if (/^[^/]+\.js$/.test(f) || f === 'licenses.txt') continue;
    const grpcAsset = path.join(grpcJs, 'proto', f.replace(/^proto\//, ''));
    if (/^(proto|xds|protoc-gen-validate)\//.test(f) && fs.existsSync(grpcAsset)) {
      expect({ f, same: Buffer.compare(fs.readFileSync(path.join(out, f)), fs.readFileSync(grpcAsset)) }).toEqual({ f, same: 0 });
      dirs.add(grpcJs);
      continue;
    }
    if (!f.startsWith('bin/')) throw new Error(`dist/${f}: which package is this from? (teach bundledPackages in test/dist.tools.test.ts)`);
    expect(Buffer.compare(fs.readFileSync(path.join(out, f)), fs.readFileSync(path.join(ort, f)))).toBe(0);
    dirs.add(ort);
  }
  return [...new Set([...dirs].map(nameAtVersion))].sort();
}

/** name@version of each section of a licenses.txt, in file order; each section must hold some license text */
function listedPackages(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split(`\n${'='.repeat(80)}\n`)
    .map((section) => {
      const [head, ...text] = section.trim().split('\n');
      const m = /^(.+)@([^@\s]+) \(([^()]+|\(.+\))\)$/.exec(head);
      if (!m) throw new Error(`${file}: section heading ${JSON.stringify(head)} is not "name@version (LICENSE)"`);
      expect({ head, text: text.join('\n').trim().length > 0 }).toEqual({ head, text: true });
      return `${m[1]}@${m[2]}`;
    });
}

// The committed bundle rebuilt (`npm run build`, ~30 s: the second tier); that it runs without node_modules:
// test/dist.test.ts.
describe('dist/ is the committed bundle', () => {
  describe('rebuilt from src/', () => {
    let out = '';
    let bundled: string[] = [];
    beforeAll(() => {
      out = tmpDir('modelship-dist-');
      const stats = build(out, path.join(tmpDir('modelship-ncc-stats-'), 'ncc-stats.json'));
      bundled = bundledPackages(stats, out);
    }, 300_000);

    test('dist/ is what `npm run build` makes from src/ (fails when stale)', () => {
      expect(filesUnder(path.join(REPO, 'dist'))).toEqual(filesUnder(out));
      for (const f of filesUnder(out)) {
        const same = Buffer.compare(fs.readFileSync(path.join(out, f)), fs.readFileSync(path.join(REPO, 'dist', f))) === 0;
        if (!same) throw new Error(`dist/${f} is stale: run \`npm run build\` and commit dist/`);
      }
    });

    test('licenses.txt lists every package in the bundle, and nothing else', () => {
      for (const known of [
        'protobufjs',
        'js-yaml',
        'prom-client',
        'pngjs',
        'jpeg-js',
        'onnxruntime-node',
        'onnxruntime-common',
        '@actions/core',
        '@kubernetes/client-node',
      ]) {
        expect(bundled).toContain(nameAtVersion(path.join(REPO, 'node_modules', known)));
      }
      for (const file of [path.join(out, 'licenses.txt'), path.join(REPO, 'dist/licenses.txt')]) {
        const listed = listedPackages(file);
        expect({ file, missing: bundled.filter((p) => !listed.includes(p)), extra: listed.filter((p) => !bundled.includes(p)) }).toEqual({
          file,
          missing: [],
          extra: [],
        });
        expect(listed.length).toBe(bundled.length); // each once
        const names = listed.map((p) => p.slice(0, p.lastIndexOf('@')));
        expect(names).toEqual([...names].sort()); // sorted by name
      }
    });
  });
});
