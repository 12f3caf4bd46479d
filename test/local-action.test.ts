import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';

// The action through @github/local-action, GitHub's own tool for running an action's TypeScript locally: it stubs
// the @actions/* toolkit and calls the logic entrypoint's run() with INPUT_* from a .env file.
jest.setTimeout(120_000);

const LENET = path.join(FIXTURES, 'lenet');

function localAction(inputs: Record<string, string>) {
  const dir = tmpDir('modelship-local-action-');
  const env = path.join(dir, '.env');
  fs.writeFileSync(env, [...Object.entries(inputs).map(([k, v]) => `INPUT_${k.toUpperCase()}=${v}`), `LOCAL_ACTION_WORKSPACE=${dir}`, ''].join('\n'));
  const r = spawnSync(process.execPath, [path.join(REPO, 'node_modules/@github/local-action/bin/local-action.js'), 'run', '.', 'src/action/main.ts', env], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 110_000,
  });
  return { code: r.status, out: r.stdout + r.stderr, dir };
}

describe('@github/local-action', () => {
  test('runs the convert stage: outputs set, the ONNX and the parity report written', () => {
    const out = path.join(tmpDir('modelship-la-out-'), 'lenet.onnx');
    const r = localAction({
      stage: 'convert',
      prototxt: path.join(LENET, 'deploy.prototxt'),
      caffemodel: path.join(LENET, 'weights.caffemodel'),
      out,
      reference: LENET,
      tolerance: '1e-5',
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('::set-output name=parity::pass');
    expect(r.out).toContain(`::set-output name=onnx-path::${out}`);
    expect(r.out).toMatch(/Action Outputs[\s\S]*'parity'\s*│\s*'pass'/);
    expect(fs.existsSync(out)).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(path.dirname(out), 'parity.json'), 'utf8')).status).toBe('pass');
  });

  test('an unknown stage fails before any work, naming the input', () => {
    const r = localAction({ stage: 'deploy-everything' });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('::error title=modelship: input error::input "stage": unknown stage "deploy-everything"');
    expect(r.out).toContain('No outputs were set!');
  });
});
