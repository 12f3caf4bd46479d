import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { REPO, tmpDir } from './helpers/caffe';

/**
 * The CLI as users install it without a clone: `npm install -g <release tarball>` (the `npm pack` of the version) or
 * `npm install -g github:org/modelship#v1` (npm packs the git checkout the same way, by package.json `files`). The
 * tarball holds the committed bundle and nothing of the repository's tests or local caches, installs into an empty
 * prefix, and its `modelship` bin runs.
 */

const npm = (args: string[], cwd: string) =>
  spawnSync('npm', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_update_notifier: 'false' },
    maxBuffer: 64 << 20,
  });

const tmp = tmpDir('modelship-pack-');
let tgz = '';
let files: string[] = [];
let packedSize = 0;

beforeAll(() => {
  const r = npm(['pack', '--json', '--pack-destination', tmp], REPO);
  if (r.status !== 0) throw new Error(`npm pack failed: ${r.stderr}`);
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { filename: string; size: number; files: { path: string }[] }[];
  tgz = path.join(tmp, info.filename);
  files = info.files.map((f) => f.path);
  packedSize = info.size;
}, 120000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('npm pack', () => {
  test('the tarball is the bundle: dist/ as committed, package.json, README; no tests, sources or caches', () => {
    expect(fs.existsSync(tgz)).toBe(true);
    const tracked = spawnSync('git', ['ls-files', 'dist'], { cwd: REPO, encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
    expect(tracked.length).toBeGreaterThan(0);
    for (const f of tracked) expect([f, files.includes(f)]).toEqual([f, true]);
    expect(files).toContain('package.json');
    expect(files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md'].includes(f) && !/^LICEN[CS]E/i.test(f))).toEqual([]);
    expect(files.filter((f) => /^(test|src|lab|bench|\.whl|\.tmp|\.tools|node_modules)\//.test(f))).toEqual([]);
    // the bundle with its ONNX Runtime binding (~20 MB compressed); far from the repository's test data and caches
    expect(packedSize).toBeLessThan(40 << 20);
  });

  test('it installs into an empty prefix and `modelship --help` runs', () => {
    const prefix = path.join(tmp, 'install');
    fs.mkdirSync(prefix);
    const base = ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--no-save'];
    // from the npm cache alone when it holds every dependency; else from the registry (runtime dependencies only)
    let r = npm([...base, '--offline', tgz], tmp);
    if (r.status !== 0) r = npm([...base, '--prefer-offline', '--omit=dev', tgz], tmp);
    expect([r.status, r.stderr.split('\n').filter((l) => /ERR/.test(l))]).toEqual([0, []]);
    const bin = path.join(prefix, 'node_modules/.bin/modelship');
    expect(fs.existsSync(bin)).toBe(true);
    const help = spawnSync(bin, ['--help'], { encoding: 'utf8' });
    expect([help.status, help.stderr]).toEqual([0, expect.any(String)]);
    expect(help.stdout).toMatch(/^usage: modelship <stage>/m);
    expect(help.stdout).toContain('convert');
  }, 300000);
});
