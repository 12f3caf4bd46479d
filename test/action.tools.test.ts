import * as path from 'path';
import { execFileSync } from 'child_process';
import { runAction, NODE24 } from './helpers/runner';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { labDescribe } from './helpers/needs';

// The bundled action (test/action.test.ts) on Node 24 from .tools/ (scripts/test.sh installs it).
const LENET = path.join(FIXTURES, 'lenet');

labDescribe(['node24'])('the bundled action under the runner contract, on Node 24', () => {
  test('the same bundle runs on Node 24, the runtime action.yml declares', () => {
    expect(execFileSync(NODE24, ['--version'], { encoding: 'utf8' })).toMatch(/^v24\./);
    const work = tmpDir();
    const r = runAction(
      { stage: 'convert', prototxt: path.join(LENET, 'deploy.prototxt'), caffemodel: path.join(LENET, 'weights.caffemodel'), reference: LENET },
      { cwd: work, node: NODE24 },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.outputs.parity).toBe('pass');
  });
});
