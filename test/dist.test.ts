import * as fs from 'fs';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { REPO, FIXTURES, tmpDir } from './helpers/caffe';

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort();
}

describe('dist/ is the committed bundle', () => {
  test('dist/ is what `npm run build` makes from src/ (fails when stale)', () => {
    const out = tmpDir('modelship-dist-');
    execFileSync(process.execPath, [path.join(REPO, 'node_modules/@vercel/ncc/dist/ncc/cli.js'), 'build', 'src/index.ts', '-o', out, '--license', 'licenses.txt', '--target', 'es2022', '-q'], { cwd: REPO, stdio: 'pipe' });
    execFileSync(process.execPath, ['scripts/post-build.mjs', out], { cwd: REPO, stdio: 'pipe' });
    expect(filesUnder(path.join(REPO, 'dist'))).toEqual(filesUnder(out));
    for (const f of filesUnder(out)) {
      const same = Buffer.compare(fs.readFileSync(path.join(out, f)), fs.readFileSync(path.join(REPO, 'dist', f))) === 0;
      if (!same) throw new Error(`dist/${f} is stale: run \`npm run build\` and commit dist/`);
    }
  }, 180_000);

  test('`node dist/index.js` runs with no node_modules anywhere above it', () => {
    const root = tmpDir('modelship-bare-');
    fs.cpSync(path.join(REPO, 'dist'), path.join(root, 'dist'), { recursive: true });
    let p = root;
    while (p !== path.dirname(p)) {
      expect(fs.existsSync(path.join(p, 'node_modules'))).toBe(false);
      p = path.dirname(p);
    }
    const lenet = path.join(FIXTURES, 'lenet');
    const r = spawnSync(process.execPath, ['dist/index.js', 'convert', '--prototxt', path.join(lenet, 'deploy.prototxt'), '--caffemodel', path.join(lenet, 'weights.caffemodel'), '--out', 'm.onnx', '--reference', lenet, '--json'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).parity).toBe('pass');
    // the chunks loaded on use (the Kubernetes client) are there too: reading the kubeconfig is the first thing
    // the rollout does after loading them, so a missing chunk would be an internal error (70), not this input error
    const k = spawnSync(process.execPath, ['dist/index.js', 'rollout', '--image', `r/m@sha256:${'a'.repeat(64)}`, '--kubeconfig', path.join(root, 'missing.kubeconfig')], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(k.stderr).toMatch(/input "kubeconfig": cannot read .*missing\.kubeconfig: ENOENT/);
    expect(k.status).toBe(2);
  });
});
