import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as yaml from 'js-yaml';
import { REPO, tmpDir } from './helpers/caffe';

/**
 * One version end to end (issue 11, part 3). The reusable workflows run the action as `org/modelship@<ref>`; a
 * release rewrites every such internal reference to the release's tag (scripts/release-refs.mjs, run by
 * .github/workflows/release.yml), so a caller who pins `deploy.yml@v1.2.3` runs the action at v1.2.3. The script
 * runs here on copies of the committed files; what counts as an internal reference is derived independently below
 * (a looser scan than the script's), so a reference the script misses shows up.
 */

const SCRIPT = path.join(REPO, 'scripts/release-refs.mjs');
const WORKFLOWS = '.github/workflows';
const SHA = '0123456789abcdef0123456789abcdef01234567';

const run = (args: string[]) => spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });
const ymls = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();

/** Any `org/modelship…@ref` in a text, comments included (case-insensitive, as GitHub's owner/repo). */
const LOOSE = /org\/modelship([^\s@'"`]*)@([^\s'"`,}\]#]+)/gi;
const internalTextRefs = (text: string) =>
  text.split('\n').flatMap((l, i) => [...l.matchAll(LOOSE)].map((m) => ({ line: i + 1, target: `org/modelship${m[1]}`, ref: m[2] })));
const withRefs = (v: unknown, ref: string): unknown => {
  if (typeof v === 'string') return v.replace(LOOSE, (_m, p: string) => `org/modelship${p}@${ref}`);
  if (Array.isArray(v)) return v.map((x) => withRefs(x, ref));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [withRefs(k, ref), withRefs(x, ref)]));
  return v;
};

interface Doc {
  jobs?: Record<string, { uses?: string; steps?: { uses?: string }[] }>;
  runs?: { steps?: { uses?: string }[] };
}
/** Every `uses:` GitHub reads in a workflow (a job's reusable-workflow call, a step's action). */
function usesValues(doc: Doc): string[] {
  const out: string[] = [];
  for (const job of Object.values(doc?.jobs ?? {})) {
    if (typeof job?.uses === 'string') out.push(job.uses);
    for (const s of job?.steps ?? []) if (typeof s?.uses === 'string') out.push(s.uses);
  }
  for (const s of doc?.runs?.steps ?? []) if (typeof s?.uses === 'string') out.push(s.uses);
  return out;
}
const isInternal = (uses: string) => /^org\/modelship(\/|@)/i.test(uses);
const refOf = (uses: string) => uses.slice(uses.lastIndexOf('@') + 1);

/** A repository-shaped copy: .github/workflows/, action.yml, and (to see they stay as they are) workflows/ and README.md. */
function copyRepo(): string {
  const root = tmpDir('modelship-release-');
  fs.mkdirSync(path.join(root, WORKFLOWS), { recursive: true });
  for (const f of ymls(path.join(REPO, WORKFLOWS))) fs.copyFileSync(path.join(REPO, WORKFLOWS, f), path.join(root, WORKFLOWS, f));
  fs.mkdirSync(path.join(root, 'workflows'));
  for (const f of ymls(path.join(REPO, 'workflows'))) fs.copyFileSync(path.join(REPO, 'workflows', f), path.join(root, 'workflows', f));
  for (const f of ['action.yml', 'README.md']) fs.copyFileSync(path.join(REPO, f), path.join(root, f));
  return root;
}
/** Every file of a directory tree, relative path → content. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out[r] = fs.readFileSync(path.join(root, r), 'utf8');
    }
  };
  walk('');
  return out;
}

const committed = ymls(path.join(REPO, WORKFLOWS)).map((f) => `${WORKFLOWS}/${f}`);
const read = (root: string, rel: string) => fs.readFileSync(path.join(root, rel), 'utf8');

describe('scripts/release-refs.mjs rewrites every internal reference to the release ref', () => {
  test.each([
    ['a tag', 'v1.2.3'],
    ['a commit SHA', SHA],
  ])('%s: every org/modelship reference at @ref, nothing else changed', (_what, ref) => {
    const root = copyRepo();
    const before = snapshot(root);
    const r = run([ref, '--root', root]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const after = snapshot(root);

    // only the files of .github/workflows/ that name modelship changed; templates, README and action.yml did not
    const changed = Object.keys(before)
      .filter((f) => before[f] !== after[f])
      .sort();
    expect(changed).toEqual(committed.filter((f) => internalTextRefs(before[f]).length > 0));
    expect(changed).toEqual(expect.arrayContaining([`${WORKFLOWS}/convert.yml`, `${WORKFLOWS}/deploy.yml`, `${WORKFLOWS}/pr-preview.yml`]));
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());

    let internalUses = 0;
    for (const f of committed) {
      // every reference (steps' uses:, and the usage comments) at @ref, as many as before, on the same lines
      const was = internalTextRefs(before[f]);
      const now = internalTextRefs(after[f]);
      expect(now.map((x) => [f, x.line, x.target, x.ref])).toEqual(was.map((x) => [f, x.line, x.target, ref]));
      // byte for byte the same apart from the refs: comments, quoting, indentation
      expect(after[f]).toBe(before[f].replace(LOOSE, (_m, p: string) => `org/modelship${p}@${ref}`));
      // and as YAML: it parses, and loads to the same document with the refs normalized
      const docBefore = yaml.load(before[f]) as Doc;
      const docAfter = yaml.load(after[f]) as Doc;
      expect(docAfter).toEqual(withRefs(docBefore, ref));
      // the uses: GitHub reads: modelship's at @ref; third-party actions (actions/checkout@v4 …) untouched
      const usesBefore = usesValues(docBefore);
      const usesAfter = usesValues(docAfter);
      expect(usesAfter.filter(isInternal).map(refOf)).toEqual(usesBefore.filter(isInternal).map(() => ref));
      expect(usesAfter.filter((u) => !isInternal(u))).toEqual(usesBefore.filter((u) => !isInternal(u)));
      internalUses += usesAfter.filter(isInternal).length;
    }
    // the reusable workflows' steps: deploy 6, pr-preview 7 (each with its sign job), convert 1
    expect(internalUses).toBe(14);
    expect(usesValues(yaml.load(after[`${WORKFLOWS}/deploy.yml`]) as Doc)).toEqual(
      expect.arrayContaining(['actions/checkout@v4', 'docker/setup-buildx-action@v3', `org/modelship@${ref}`]),
    );

    // --check agrees; a second run changes nothing
    const check = run([ref, '--check', '--root', root]);
    expect([check.status, check.stderr]).toEqual([0, '']);
    expect(run([ref, '--root', root]).status).toBe(0);
    expect(snapshot(root)).toEqual(after);
  });

  test('--check fails on the unrewritten copy, naming each reference by file:line', () => {
    const root = copyRepo();
    const before = snapshot(root);
    const r = run(['v1.2.3', '--check', '--root', root]);
    expect(r.status).toBe(1);
    const expected = committed.flatMap((f) => internalTextRefs(before[f]).map((x) => `${f}:${x.line}`));
    expect(expected.length).toBeGreaterThanOrEqual(15);
    const named = r.stderr
      .split('\n')
      .map((l) => /^\s+(\S+:\d+):/.exec(l)?.[1])
      .filter(Boolean);
    expect(named).toEqual(expected);
    expect(r.stderr).toMatch(/\.github\/workflows\/deploy\.yml:\d+: org\/modelship@v1, expected @v1\.2\.3/);
    // --check wrote nothing
    expect(snapshot(root)).toEqual(before);
    // and one reference left behind after a rewrite is found too
    expect(run(['v1.2.3', '--root', root]).status).toBe(0);
    const f = path.join(root, WORKFLOWS, 'deploy.yml');
    const lines = fs.readFileSync(f, 'utf8').split('\n');
    const i = lines.findIndex((l) => /^\s+uses: org\/modelship@v1\.2\.3$/.test(l));
    lines[i] = lines[i].replace('@v1.2.3', '@v1');
    fs.writeFileSync(f, lines.join('\n'));
    const one = run(['v1.2.3', '--check', '--root', root]);
    expect(one.status).toBe(1);
    expect(
      one.stderr
        .split('\n')
        .filter((l) => /^\s+\S+:\d+:/.test(l))
        .map((l) => l.trim()),
    ).toEqual([`${WORKFLOWS}/deploy.yml:${i + 1}: org/modelship@v1, expected @v1.2.3`]);
  });

  test.each([
    ['empty', ''],
    ['a space inside', 'v1 .2.3'],
    ['a trailing space', 'v1.2.3 '],
    ['a newline', 'v1.2.3\nx'],
    ['the full ref', 'refs/tags/v1.2.3'],
    ['an option-like name', '-v1'],
    ['..', 'v1..2'],
    ['a trailing dot', 'v1.'],
    ['@', 'v1@x'],
    ['a quote', "v1'"],
    ['an expression', '${{ github.ref }}'],
  ])('a bad ref is refused (%s), nothing written', (_what, ref) => {
    const root = copyRepo();
    const before = snapshot(root);
    for (const args of [
      [ref, '--root', root],
      [ref, '--check', '--root', root],
    ]) {
      const r = run(args);
      expect([JSON.stringify(ref), r.status]).toEqual([JSON.stringify(ref), 2]);
      expect(r.stderr).toMatch(/usage: node scripts\/release-refs\.mjs <ref>/);
    }
    expect(snapshot(root)).toEqual(before);
  });

  test('a missing ref, two refs or an unknown option is refused', () => {
    const root = copyRepo();
    expect(run(['--root', root]).status).toBe(2);
    expect(run(['v1.2.3', 'v1.2.4', '--root', root]).status).toBe(2);
    expect(run(['v1.2.3', '--force', '--root', root]).status).toBe(2);
    expect(run(['v1.2.3', '--root', path.join(root, 'nothing-here')]).status).toBe(2);
  });

  test("the shapes a reference takes: only this repository's, in any form YAML allows on a line", () => {
    const root = tmpDir('modelship-release-');
    fs.mkdirSync(path.join(root, WORKFLOWS), { recursive: true });
    const wf = [
      '# usage: uses: org/modelship/.github/workflows/x.yml@v1   # a comment mention',
      'on: workflow_call',
      'jobs:',
      '  nested:',
      "    uses: 'org/modelship/.github/workflows/other.yml@v1'   # a reusable workflow of this repository",
      '  a:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - uses: actions/checkout@v4',
      '      - uses: "org/modelship@v1"  # quoted',
      '      - uses: ORG/ModelShip@main',
      '      - uses: org/modelship/sub/action@0123456789abcdef0123456789abcdef01234567',
      '      - {uses: org/modelship@v1, with: {stage: convert}}',
      '      - uses: myorg/modelship@v1',
      '      - uses: org/modelship-extra@v1',
      '      - uses: someone/org/modelship@v1',
      '      - run: echo "see https://github.com/org/modelship@v1"',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(root, WORKFLOWS, 'x.yml'), wf);
    expect(run(['v2.0.0', '--root', root]).status).toBe(0);
    const out = fs.readFileSync(path.join(root, WORKFLOWS, 'x.yml'), 'utf8').split('\n');
    expect(out).toEqual([
      '# usage: uses: org/modelship/.github/workflows/x.yml@v2.0.0   # a comment mention',
      'on: workflow_call',
      'jobs:',
      '  nested:',
      "    uses: 'org/modelship/.github/workflows/other.yml@v2.0.0'   # a reusable workflow of this repository",
      '  a:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - uses: actions/checkout@v4',
      '      - uses: "org/modelship@v2.0.0"  # quoted',
      '      - uses: ORG/ModelShip@v2.0.0',
      '      - uses: org/modelship/sub/action@v2.0.0',
      '      - {uses: org/modelship@v2.0.0, with: {stage: convert}}',
      '      - uses: myorg/modelship@v1',
      '      - uses: org/modelship-extra@v1',
      '      - uses: someone/org/modelship@v1',
      '      - run: echo "see https://github.com/org/modelship@v1"',
      '',
    ]);
    expect(run(['v2.0.0', '--check', '--root', root]).status).toBe(0);
  });

  test('a reference the line rewrite cannot see (an escaped scalar) stops the rewrite, and --check names it', () => {
    const root = tmpDir('modelship-release-');
    fs.mkdirSync(path.join(root, WORKFLOWS), { recursive: true });
    const wf = 'on: workflow_call\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: org/modelship@v1\n      - uses: "org\\/modelship@v1"\n';
    expect((yaml.load(wf) as Doc).jobs!.a.steps![1].uses).toBe('org/modelship@v1');
    fs.writeFileSync(path.join(root, WORKFLOWS, 'x.yml'), wf);
    const r = run(['v1.2.3', '--root', root]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/nothing written/);
    expect(r.stderr).toMatch(/jobs\.a\.steps\[1\]\.uses: org\/modelship@v1 is not at @v1\.2\.3/);
    expect(fs.readFileSync(path.join(root, WORKFLOWS, 'x.yml'), 'utf8')).toBe(wf);
    const check = run(['v1.2.3', '--check', '--root', root]);
    expect(check.status).toBe(1);
    expect(check.stderr).toMatch(/x\.yml:6: org\/modelship@v1, expected @v1\.2\.3/);
    expect(check.stderr).toMatch(/x\.yml: jobs\.a\.steps\[1\]\.uses: org\/modelship@v1, expected @v1\.2\.3/);
  });

  test('a file that does not parse is not written', () => {
    const root = tmpDir('modelship-release-');
    fs.mkdirSync(path.join(root, WORKFLOWS), { recursive: true });
    const wf = 'jobs:\n  a:\n    steps:\n      - uses: org/modelship@v1\n    - broken: [\n';
    fs.writeFileSync(path.join(root, WORKFLOWS, 'x.yml'), wf);
    const r = run(['v1.2.3', '--root', root]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/x\.yml: does not parse as YAML/);
    expect(fs.readFileSync(path.join(root, WORKFLOWS, 'x.yml'), 'utf8')).toBe(wf);
  });
});

describe('the committed workflows: one thing for the release to rewrite', () => {
  test('every internal reference in .github/workflows/ (uses: and comments) is at one and the same ref', () => {
    const refs = new Map<string, string[]>();
    const add = (ref: string, where: string) => refs.set(ref, [...(refs.get(ref) ?? []), where]);
    for (const f of committed) {
      const text = read(REPO, f);
      for (const u of usesValues(yaml.load(text) as Doc).filter(isInternal)) add(refOf(u), `${f} uses: ${u}`);
      for (const x of internalTextRefs(text)) add(x.ref, `${f}:${x.line}`);
    }
    // (on main @v1; on a release commit, the release's tag, as ci.yml tests tags too)
    expect([...refs.keys()]).toHaveLength(1);
    const [ref] = [...refs.keys()];
    expect(refs.get(ref)!.length).toBeGreaterThanOrEqual(15);
    // and the script sees the same: --check with that ref passes on the repository itself
    const r = run([ref, '--check']);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(run([ref === 'v1' ? 'v2' : 'v1', '--check']).status).toBe(1);
    // action.yml runs dist/ (a node action): no internal reference to pin there
    expect(internalTextRefs(read(REPO, 'action.yml'))).toEqual([]);
  });

  test('release.yml: on a version tag, rewrites with the script, commits, moves the tag and the major tag', () => {
    const text = read(REPO, `${WORKFLOWS}/release.yml`);
    const wf = yaml.load(text) as {
      on: { push: { tags: string[] } };
      permissions: unknown;
      jobs: Record<string, { permissions: unknown; steps: { uses?: string; run?: string; with?: Record<string, unknown> }[] }>;
    };
    expect(wf.on).toEqual({ push: { tags: ['v*.*.*'] } });
    expect(wf.permissions).toEqual({ contents: 'write' });
    const [job] = Object.values(wf.jobs);
    expect(job.permissions).toEqual({ contents: 'write' });
    const runs = job.steps.map((s) => s.run ?? '').join('\n');
    expect(runs).toContain('node scripts/release-refs.mjs "$GITHUB_REF_NAME"\n');
    expect(runs).toContain('node scripts/release-refs.mjs "$GITHUB_REF_NAME" --check');
    expect(runs).toMatch(/git commit /);
    expect(runs).toMatch(/git tag -f -a "\$tag"/);
    expect(runs).toMatch(/major="\$\{tag%%\.\*\}"/);
    expect(runs).toMatch(/git push --atomic --force origin "\$\{refs\[@\]\}"/);
    // the push carries workflow files: a token that may (GITHUB_TOKEN may not), on the checkout that pushes
    const checkout = job.steps.find((s) => s.uses?.startsWith('actions/checkout@'));
    expect(checkout?.with).toMatchObject({ 'fetch-depth': 0, token: '${{ secrets.RELEASE_TOKEN }}' });
    // the release workflow has no internal reference of its own to keep in step
    expect(usesValues(wf as unknown as Doc).filter(isInternal)).toEqual([]);
  });

  test("release.yml's own steps, run against a local origin: tag and major tag moved to a rewritten child commit", () => {
    // the two `run:` steps of release.yml that touch the repository, as GitHub runs them (bash -eo pipefail), in a
    // clone of a bare "origin" that holds main and the pushed tag; node_modules (js-yaml) linked in, as npm ci would
    const text = read(REPO, `${WORKFLOWS}/release.yml`);
    const steps = Object.values((yaml.load(text) as { jobs: Record<string, { steps: { name?: string; run?: string }[] }> }).jobs)[0].steps;
    const rewriteStep = steps.find((s) => s.run?.includes('release-refs.mjs'))!.run!;
    const pushStep = steps.find((s) => s.run?.includes('git push'))!.run!;
    const base = tmpDir('modelship-release-git-');
    const gitconfig = path.join(base, 'gitconfig');
    fs.writeFileSync(gitconfig, '[user]\n\tname = t\n\temail = t@example.com\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n');
    const env = { ...process.env, GIT_CONFIG_GLOBAL: gitconfig, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
    const sh = (cwd: string, script: string, extra: Record<string, string> = {}) => {
      const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], { cwd, env: { ...env, ...extra }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${script}\n→ ${r.status}\n${r.stdout}\n${r.stderr}`);
      return r.stdout.trim();
    };
    const origin = path.join(base, 'origin.git');
    const dev = path.join(base, 'dev');
    sh(base, `git init -q --bare ${origin} && git init -q ${dev}`);
    fs.mkdirSync(path.join(dev, WORKFLOWS), { recursive: true });
    fs.mkdirSync(path.join(dev, 'scripts'));
    for (const f of committed) fs.copyFileSync(path.join(REPO, f), path.join(dev, f));
    fs.copyFileSync(SCRIPT, path.join(dev, 'scripts/release-refs.mjs'));
    fs.copyFileSync(path.join(REPO, 'action.yml'), path.join(dev, 'action.yml'));
    fs.writeFileSync(path.join(dev, '.gitignore'), 'node_modules\n');
    sh(dev, `git add -A && git commit -q -m main && git remote add origin ${origin} && git push -q origin main`);
    const main = sh(dev, 'git rev-parse HEAD');

    /** Tag `tag` on main's head as a maintainer would, then run the release as GitHub would on that push. */
    const release = (tag: string) => {
      sh(dev, `git tag -a ${tag} -m "modelship ${tag}" ${main} && git push -q origin refs/tags/${tag}`);
      return rerun(tag);
    };
    /** The workflow run for a push of `tag`: a fresh checkout of the tag (detached), every tag fetched. */
    const rerun = (tag: string) => {
      const work = tmpDir('modelship-release-run-');
      sh(work, `git clone -q ${origin} . && git checkout -q refs/tags/${tag} && ln -s ${path.join(REPO, 'node_modules')} node_modules`);
      const out = [rewriteStep, pushStep].map((s) => sh(work, s, { GITHUB_REF_NAME: tag })).join('\n');
      return out;
    };
    const at = (ref: string) => sh(dev, `git fetch -q -f origin '+refs/tags/*:refs/tags/*' && git rev-parse ${ref}^{commit}`);
    const refsIn = (commit: string, file: string) => internalTextRefs(sh(dev, `git show ${commit}:${file}`)).map((x) => x.ref);

    release('v1.2.3');
    const v123 = at('v1.2.3');
    expect(v123).not.toBe(main);
    // a child of the tagged commit, not on main; main unchanged at origin
    expect(sh(dev, `git rev-parse ${v123}^`)).toBe(main);
    expect(sh(dev, 'git ls-remote origin refs/heads/main').split(/\s/)[0]).toBe(main);
    // on it every internal reference is @v1.2.3; only the workflows that name modelship changed
    for (const f of [`${WORKFLOWS}/deploy.yml`, `${WORKFLOWS}/pr-preview.yml`, `${WORKFLOWS}/convert.yml`])
      expect([f, [...new Set(refsIn(v123, f))]]).toEqual([f, ['v1.2.3']]);
    expect(sh(dev, `git diff --name-only ${main} ${v123}`).split('\n').sort()).toEqual(
      committed.filter((f) => internalTextRefs(read(REPO, f)).length > 0).sort(),
    );
    // the tag is still annotated, with its message; the major tag points at the same commit
    expect(sh(dev, 'git cat-file -t refs/tags/v1.2.3')).toBe('tag');
    expect(sh(dev, "git tag --list --format='%(contents:subject)' v1.2.3")).toBe('modelship v1.2.3');
    expect(at('v1')).toBe(v123);

    // the push of the moved tag starts the workflow again: nothing changes
    expect(rerun('v1.2.3')).toMatch(/already reference @v1\.2\.3/);
    expect([at('v1.2.3'), at('v1')]).toEqual([v123, v123]);

    // an older patch released later, and a prerelease, leave v1 where it is
    expect(release('v1.1.9')).toMatch(/v1\.2\.3 is a later v1 release than v1\.1\.9/);
    expect(refsIn(at('v1.1.9'), `${WORKFLOWS}/deploy.yml`)).toEqual(refsIn(v123, `${WORKFLOWS}/deploy.yml`).map(() => 'v1.1.9'));
    expect(release('v1.3.0-rc.1')).toMatch(/prerelease/);
    expect(at('v1')).toBe(v123);
    // the next release moves v1; a new major creates its own
    release('v1.3.0');
    expect(at('v1')).toBe(at('v1.3.0'));
    release('v2.0.0');
    expect(at('v2')).toBe(at('v2.0.0'));
    expect(at('v1')).toBe(at('v1.3.0'));
    expect([...new Set(refsIn(at('v2'), `${WORKFLOWS}/deploy.yml`))]).toEqual(['v2.0.0']);
  });
});
