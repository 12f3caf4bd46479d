import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';

// dist/ as committed; that it is what `npm run build` makes from src/, and its licenses.txt: test/dist.tools.test.ts.
describe('dist/ is the committed bundle', () => {
  test('`node dist/index.js` runs with no node_modules anywhere above it', () => {
    const root = tmpDir('modelship-bare-');
    fs.cpSync(path.join(REPO, 'dist'), path.join(root, 'dist'), { recursive: true });
    let p = root;
    while (p !== path.dirname(p)) {
      expect(fs.existsSync(path.join(p, 'node_modules'))).toBe(false);
      p = path.dirname(p);
    }
    const lenet = path.join(FIXTURES, 'lenet');
    const r = spawnSync(
      process.execPath,
      [
        'dist/index.js',
        'convert',
        '--prototxt',
        path.join(lenet, 'deploy.prototxt'),
        '--caffemodel',
        path.join(lenet, 'weights.caffemodel'),
        '--out',
        'm.onnx',
        '--reference',
        lenet,
        '--json',
      ],
      { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
    );
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).parity).toBe('pass');
    // the chunks loaded on use (the Kubernetes client) are there too: reading the kubeconfig is the first thing
    // the rollout does after loading them, so a missing chunk would be an internal error (70), not this input error
    const k = spawnSync(
      process.execPath,
      ['dist/index.js', 'rollout', '--image', `r/m@sha256:${'a'.repeat(64)}`, '--kubeconfig', path.join(root, 'missing.kubeconfig')],
      { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
    );
    expect(k.stderr).toMatch(/input "kubeconfig": cannot read .*missing\.kubeconfig: ENOENT/);
    expect(k.status).toBe(2);
  });
});
