import { runAction } from './helpers/runner';
import { LAB, docker } from './helpers/lab';
import { labDescribe } from './helpers/needs';

// The bundled action's post step (test/action.test.ts) against the lab's Docker engine.
labDescribe(['docker'])("the bundled action's post step", () => {
  test('the post step removes the smoke containers this job left, and only those', () => {
    const env = { GITHUB_RUN_ID: `${process.pid}`, GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'smoke' };
    const mine = `modelship-left-${process.pid}`;
    const other = `modelship-other-${process.pid}`;
    docker([
      'run',
      '-d',
      '--name',
      mine,
      '--label',
      'dev.modelship.smoke=true',
      '--label',
      `dev.modelship.owner=${process.pid}-1-smoke`,
      LAB.busybox,
      'sleep',
      '300',
    ]);
    docker(['run', '-d', '--name', other, '--label', 'dev.modelship.smoke=true', '--label', 'dev.modelship.owner=someone-else', LAB.busybox, 'sleep', '300']);
    try {
      const r = runAction({}, { env: { ...env, STATE_isPost: 'true' } });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`removed smoke container ${mine} left by this job`);
      const left = docker(['ps', '-a', '--filter', 'label=dev.modelship.smoke=true', '--format', '{{.Names}}']).split('\n');
      expect(left).not.toContain(mine);
      expect(left).toContain(other);
    } finally {
      docker(['rm', '-f', mine, other]);
    }
  });
});
