import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { REPO } from './helpers/caffe';

/**
 * The GitHub entry points as GitHub resolves them. A caller writes `uses: org/modelship/.github/workflows/X@ref`:
 * GitHub runs reusable workflows only from `.github/workflows/` (no subdirectories) and only when their `on:` has
 * `workflow_call`; and it grants each called job at most the permissions of the calling job, so a caller must grant
 * at least every permission the called jobs declare. Both are checked over what users copy: the README's yaml
 * snippets and the caller templates of workflows/ (plus the usage comments at the top of the reusable workflows).
 */

const REUSABLE_DIR = '.github/workflows';
const TEMPLATE_DIR = 'workflows';
const yamlFiles = (dir: string) =>
  fs.existsSync(path.join(REPO, dir))
    ? fs
        .readdirSync(path.join(REPO, dir))
        .filter((f) => /\.ya?ml$/.test(f))
        .map((f) => `${dir}/${f}`)
    : [];
const read = (rel: string) => fs.readFileSync(path.join(REPO, rel), 'utf8');
const README = read('README.md');

type Level = 'none' | 'read' | 'write';
const RANK: Record<Level, number> = { none: 0, read: 1, write: 2 };
type Permissions = Record<string, Level>;
// the scopes `read-all` / `write-all` stand for (GitHub's GITHUB_TOKEN permissions)
const SCOPES = [
  'actions',
  'attestations',
  'checks',
  'contents',
  'deployments',
  'discussions',
  'id-token',
  'issues',
  'models',
  'packages',
  'pages',
  'pull-requests',
  'repository-projects',
  'security-events',
  'statuses',
];

interface Workflow {
  on?: unknown;
  permissions?: unknown;
  jobs?: Record<string, { uses?: string; permissions?: unknown; steps?: unknown[]; with?: Record<string, unknown> }>;
}

/** A `permissions:` value as scope → level; undefined when absent. */
function permissionsOf(p: unknown, where: string): Permissions | undefined {
  if (p === undefined || p === null) return undefined;
  if (p === 'read-all' || p === 'write-all') return Object.fromEntries(SCOPES.map((s) => [s, p === 'read-all' ? 'read' : 'write']));
  if (typeof p !== 'object' || Array.isArray(p)) throw new Error(`${where}: permissions must be a map, read-all or write-all, not ${JSON.stringify(p)}`);
  const out: Permissions = {};
  for (const [scope, level] of Object.entries(p as Record<string, unknown>)) {
    if (level !== 'none' && level !== 'read' && level !== 'write')
      throw new Error(`${where}: permissions.${scope}: ${JSON.stringify(level)} is not none, read or write`);
    out[scope] = level;
  }
  return out;
}

/** What GitHub would refuse: each scope the called jobs need above what the caller grants. */
function missingGrants(needed: Permissions, granted: Permissions | undefined): string[] {
  return Object.entries(needed)
    .filter(([scope, level]) => RANK[level] > RANK[granted?.[scope] ?? 'none'])
    .map(([scope, level]) => `${scope}: needs ${level}, granted ${granted?.[scope] ?? 'none'}`);
}

function triggers(on: unknown): string[] {
  if (typeof on === 'string') return [on];
  if (Array.isArray(on)) return on.map(String);
  if (on && typeof on === 'object') return Object.keys(on);
  return [];
}

/**
 * Why `<path>` (as in `uses: owner/repo/<path>@ref`) is not a reusable workflow of this repository, or undefined
 * when it is one.
 */
function notReusable(workflowPath: string): string | undefined {
  const m = /^\.github\/workflows\/([^/]+\.ya?ml)$/.exec(workflowPath);
  if (!m) return `${workflowPath}: GitHub runs reusable workflows only from .github/workflows/ (no subdirectories)`;
  const file = path.join(REPO, workflowPath);
  if (!fs.existsSync(file)) return `${workflowPath}: no such file in this repository`;
  const wf = yaml.load(fs.readFileSync(file, 'utf8')) as Workflow;
  if (!triggers(wf?.on).includes('workflow_call')) return `${workflowPath}: its on: has no workflow_call, so it cannot be called`;
  return undefined;
}

interface Ref {
  owner: string;
  repo: string;
  workflow: string;
  ref: string;
  line: number;
}

/** Every `uses: <owner>/<repo>/<path>.yml@<ref>` (a reusable-workflow call) and `uses: ./<path>.yml` in a text. */
function workflowRefs(text: string): Ref[] {
  const refs: Ref[] = [];
  text.split('\n').forEach((l, i) => {
    const m = /uses:\s*['"]?([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)\/([^@\s'"]+\.ya?ml)@([^\s'"#]+)/.exec(l);
    if (m) refs.push({ owner: m[1], repo: m[2], workflow: m[3], ref: m[4], line: i + 1 });
    const local = /uses:\s*['"]?\.\/([^@\s'"]+\.ya?ml)['"]?\s*(#.*)?$/.exec(l);
    if (local) refs.push({ owner: '.', repo: '.', workflow: local[1], ref: '', line: i + 1 });
  });
  return refs;
}

/**
 * Jobs of the reusable workflows that declare no `permissions:`, and so take what the calling job grants (GitHub's
 * rule for a called job without its own permissions when its workflow has none), with what they use of that grant,
 * given the caller's `with:`. The sign job is one so that only callers that sign keyless grant `id-token: write`: a
 * job asking for it would make GitHub refuse every caller that does not grant it, even when its `if:` skips the job.
 */
type With = Record<string, unknown> | undefined;
const signUses = (w: With): Permissions => {
  const mode = typeof w?.sign === 'string' ? w.sign : 'off';
  if (mode === 'off') return {}; // skipped
  // an expression may come to keyless
  return { packages: 'write', ...(mode === 'keyless' || mode.includes('${{') ? { 'id-token': 'write' as const } : {}) };
};
const INHERITING: Record<string, (w: With) => Permissions> = {
  '.github/workflows/deploy.yml#sign': signUses,
  '.github/workflows/pr-preview.yml#sign': signUses,
};

/**
 * The union (highest level per scope) of the permissions every job of a reusable workflow declares, and of what
 * its inheriting jobs use for this caller's `with:`.
 */
function neededBy(workflowPath: string, withValues?: With): Permissions {
  const wf = yaml.load(read(workflowPath)) as Workflow;
  const needed: Permissions = {};
  for (const [name, job] of Object.entries(wf.jobs ?? {})) {
    // a job without its own permissions gets the workflow's, else everything the caller has: declare them per job
    // (but the inheriting jobs above, whose use is known)
    const inherits = INHERITING[`${workflowPath}#${name}`];
    const p =
      permissionsOf(job.permissions, `${workflowPath} jobs.${name}`) ??
      permissionsOf(wf.permissions, `${workflowPath}`) ??
      (job.permissions === undefined && inherits ? inherits(withValues) : undefined);
    if (!p) throw new Error(`${workflowPath}: job ${name} declares no permissions`);
    for (const [scope, level] of Object.entries(p)) if (RANK[level] > RANK[needed[scope] ?? 'none']) needed[scope] = level;
  }
  return needed;
}

interface Problem {
  where: string;
  problem: string;
}

/**
 * Every job of a caller (a workflow document) that calls a reusable workflow of this repository: the path must
 * resolve, and the job (else the workflow) must grant at least what the called jobs declare.
 */
function checkCaller(doc: Workflow, where: string): Problem[] {
  const problems: Problem[] = [];
  for (const [name, job] of Object.entries(doc.jobs ?? {})) {
    if (typeof job?.uses !== 'string') continue;
    const [ref] = workflowRefs(`uses: ${job.uses}`);
    if (!ref) continue; // an action or another kind of uses
    const bad = notReusable(ref.workflow);
    if (bad) {
      problems.push({ where: `${where} jobs.${name}`, problem: bad });
      continue;
    }
    const granted = permissionsOf(job.permissions, `${where} jobs.${name}`) ?? permissionsOf(doc.permissions, where);
    const missing = missingGrants(neededBy(ref.workflow, job.with), granted);
    if (!granted) missing.unshift('grants no permissions: the called jobs get the repository default (read-only in many repositories)');
    // an OIDC token only where a job signs keyless: the inheriting jobs would hold it otherwise
    const grant = job.permissions ?? doc.permissions;
    const explicit = typeof grant === 'object' && grant !== null && (grant as Record<string, unknown>)['id-token'] === 'write'; // not write-all
    if (explicit && neededBy(ref.workflow, job.with)['id-token'] !== 'write') missing.push('id-token: granted write, which only sign: keyless uses');
    for (const m of missing) problems.push({ where: `${where} jobs.${name} (${ref.workflow})`, problem: m });
  }
  return problems;
}

/** The README's ```yaml blocks. */
const readmeYamlBlocks = (): string[] => [...README.matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m) => m[1]);

/** Workflow documents that call a workflow: the README's snippets and the caller templates (and examples/). */
function callers(): { where: string; doc: Workflow }[] {
  const fromReadme = readmeYamlBlocks()
    .map((block, i) => ({ where: `README.md yaml block ${i + 1}`, doc: yaml.load(block) as Workflow }))
    .filter(({ doc }) => doc && typeof doc === 'object' && !Array.isArray(doc) && doc.jobs);
  const files = [...yamlFiles(TEMPLATE_DIR), ...yamlFiles('examples')]
    .map((f) => ({ where: f, doc: yaml.load(read(f)) as Workflow }))
    .filter(({ doc }) => doc && typeof doc === 'object' && !Array.isArray(doc) && doc.jobs);
  return [...fromReadme, ...files];
}

const REUSABLE = yamlFiles(REUSABLE_DIR).filter((f) => notReusable(f) === undefined);
// where users read `uses: …/.github/workflows/X@…`: the README, the templates, examples/ and the usage comments
const SOURCES = ['README.md', ...yamlFiles(TEMPLATE_DIR), ...yamlFiles('examples'), ...yamlFiles(REUSABLE_DIR)];

describe('reusable workflows where GitHub looks', () => {
  test('the reusable workflows are in .github/workflows/, and nothing workflow-shaped is left where GitHub does not look', () => {
    expect(REUSABLE.map((f) => path.basename(f)).sort()).toEqual(['convert.yml', 'deploy.yml', 'pr-preview.yml']);
    // the templates call workflows; none of them is itself a reusable workflow GitHub would never run from there
    for (const f of [...yamlFiles(TEMPLATE_DIR), ...yamlFiles('examples')]) {
      const doc = yaml.load(read(f)) as Workflow;
      expect([f, triggers(doc?.on).includes('workflow_call')]).toEqual([f, false]);
    }
  });

  test('every uses: …/.github/workflows/X@… in the README, the templates and the usage comments is a reusable workflow here', () => {
    const found: string[] = [];
    const problems: string[] = [];
    for (const src of SOURCES) {
      for (const ref of workflowRefs(read(src))) {
        found.push(`${src}:${ref.line}`);
        if (ref.owner !== '.' && `${ref.owner}/${ref.repo}` !== 'org/modelship')
          problems.push(`${src}:${ref.line}: ${ref.owner}/${ref.repo} is not this repository`);
        const bad = notReusable(ref.workflow);
        if (bad) problems.push(`${src}:${ref.line}: ${bad}`);
      }
    }
    expect(problems).toEqual([]);
    // the README's quick start and each template call one
    expect(found.filter((w) => w.startsWith('README.md:')).length).toBeGreaterThan(0);
    for (const f of yamlFiles(TEMPLATE_DIR)) expect([f, found.some((w) => w.startsWith(`${f}:`))]).toEqual([f, true]);
  });

  test('each reusable workflow has a caller template in workflows/', () => {
    const called = new Set(yamlFiles(TEMPLATE_DIR).flatMap((f) => workflowRefs(read(f)).map((r) => r.workflow)));
    expect(REUSABLE.filter((f) => !called.has(f))).toEqual([]);
  });

  test('paths the README and the workflows name exist', () => {
    const missing: string[] = [];
    for (const src of SOURCES) {
      // `.github/workflows/x.yml`, `workflows/x.yml`, `examples/x.yml`, not part of a longer path (org/modelship/…)
      for (const m of read(src).matchAll(/(?<![\w./-])((?:\.github\/workflows|workflows|examples)\/[\w.-]+\.ya?ml)/g)) {
        if (!fs.existsSync(path.join(REPO, m[1]))) missing.push(`${src}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test('the check fails on paths GitHub would not run', () => {
    const check = (text: string) => workflowRefs(text).map((r) => notReusable(r.workflow));
    expect(check('    uses: org/modelship/.github/workflows/deploy.yml@v1')).toEqual([undefined]);
    expect(check("    uses: 'org/modelship/.github/workflows/pr-preview.yml@0123456789abcdef0123456789abcdef01234567'  # pinned")).toEqual([undefined]);
    expect(check('    uses: org/modelship/.github/workflows/deploy-everything.yml@v1')).toEqual([
      '.github/workflows/deploy-everything.yml: no such file in this repository',
    ]);
    // where the repository kept them before: GitHub does not look there
    expect(check('    uses: org/modelship/workflows/deploy.yml@v1')[0]).toMatch(/only from \.github\/workflows\//);
    expect(check('    uses: org/modelship/.github/workflows/sub/deploy.yml@v1')[0]).toMatch(/no subdirectories/);
    // a workflow of this repository that is not callable (modelship's own CI)
    expect(check('    uses: org/modelship/.github/workflows/ci.yml@v1')).toEqual([
      '.github/workflows/ci.yml: its on: has no workflow_call, so it cannot be called',
    ]);
    expect(check('    uses: ./.github/workflows/nope.yml')).toEqual(['.github/workflows/nope.yml: no such file in this repository']);
    // an action reference is not a workflow call
    expect(workflowRefs('      - uses: org/modelship@v1\n      - uses: actions/checkout@v4')).toEqual([]);
  });
});

describe('permissions: the callers grant what the called jobs declare', () => {
  test('each job of the reusable workflows declares its permissions, least: the expected sets', () => {
    for (const f of REUSABLE) {
      const wf = yaml.load(read(f)) as Workflow;
      for (const [name, job] of Object.entries(wf.jobs ?? {}))
        expect([f, name, job.permissions !== undefined]).toEqual([f, name, INHERITING[`${f}#${name}`] === undefined]);
      // no workflow-wide grant that every job would inherit
      expect([f, wf.permissions]).toEqual([f, undefined]);
    }
    const perJob = (f: string) => Object.fromEntries(Object.entries((yaml.load(read(f)) as Workflow).jobs ?? {}).map(([n, j]) => [n, j.permissions]));
    expect(perJob('.github/workflows/deploy.yml')).toEqual({
      build: { contents: 'read', packages: 'write' },
      sign: undefined,
      smoke: { contents: 'read', packages: 'read' },
      rollout: { contents: 'read' },
    });
    expect(perJob('.github/workflows/pr-preview.yml')).toEqual({
      build: { contents: 'read', packages: 'write' },
      sign: undefined,
      smoke: { contents: 'read', packages: 'read' },
      preview: { contents: 'read', 'pull-requests': 'write' },
      cleanup: { packages: 'write', 'pull-requests': 'write' },
    });
    expect(perJob('.github/workflows/convert.yml')).toEqual({ convert: { contents: 'read' } });
    expect(neededBy('.github/workflows/pr-preview.yml')).toEqual({ contents: 'read', packages: 'write', 'pull-requests': 'write' });
    expect(neededBy('.github/workflows/deploy.yml', { sign: 'key' })).toEqual({ contents: 'read', packages: 'write' });
    expect(neededBy('.github/workflows/deploy.yml', { sign: 'keyless' })).toEqual({ contents: 'read', packages: 'write', 'id-token': 'write' });
  });

  test('only the sign job signs, and it runs no build: the signing key and the OIDC token reach no other job', () => {
    for (const f of ['.github/workflows/deploy.yml', '.github/workflows/pr-preview.yml']) {
      type Step = { uses?: string; with?: Record<string, string> };
      const wf = yaml.load(read(f)) as { jobs: Record<string, { if?: string; needs?: string | string[]; steps?: Step[] }> };
      const stages = (job: string) => (wf.jobs[job].steps ?? []).filter((st) => /modelship@/.test(st.uses ?? '')).map((st) => st.with?.stage);
      expect([f, stages('sign')]).toEqual([f, ['sign']]);
      expect([f, wf.jobs.sign.if]).toEqual([f, "inputs.sign != 'off'"]);
      for (const [name, job] of Object.entries(wf.jobs)) {
        const text = JSON.stringify(job.steps ?? []);
        expect([f, name, /secrets\.signing-key/.test(text)]).toEqual([f, name, name === 'sign']);
        // the image stage is told where to write the documents the sign job takes, and never signs itself
        for (const st of job.steps ?? [])
          if (st.with?.stage === 'image')
            expect([f, name, st.with.sign, st.with['ml-bom-file']]).toEqual([f, name, undefined, 'build/supply-chain/ml-bom.cdx.json']);
      }
      // smoke waits for the signature (or its absence), so it can verify it
      expect([f, wf.jobs.smoke.needs]).toEqual([f, ['build', 'sign']]);
      // every job after sign says when it runs: under the implied success() a skipped sign (sign off) would skip
      // them all, however their own needs ended (GitHub and act alike)
      const needsOf = (j: string): string[] => [wf.jobs[j].needs ?? []].flat();
      const after = (j: string): boolean => needsOf(j).some((n) => n === 'sign' || after(n));
      for (const name of Object.keys(wf.jobs).filter(after)) expect([f, name, /!cancelled\(\)/.test(wf.jobs[name].if ?? '')]).toEqual([f, name, true]);
    }
  });

  test('a job that writes with GITHUB_TOKEN is granted the write it uses (steps against permissions)', () => {
    // the image stage pushes (and cleanup deletes) with github.token: packages write; the preview stage comments
    // with the github-token input (default github.token): pull-requests write; nothing uses OIDC
    for (const f of REUSABLE) {
      const wf = yaml.load(read(f)) as Workflow;
      for (const [name, job] of Object.entries(wf.jobs ?? {})) {
        const steps = JSON.stringify(job.steps ?? []);
        const p = permissionsOf(job.permissions, name) ?? {};
        if (/"stage":"(image|cleanup)"/.test(steps) && /github\.token/.test(steps)) expect([f, name, p.packages]).toEqual([f, name, 'write']);
        if (/"stage":"(preview|cleanup)"/.test(steps)) expect([f, name, p['pull-requests']]).toEqual([f, name, 'write']);
        if (/actions\/checkout@/.test(steps)) expect([f, name, p.contents]).toEqual([f, name, 'read']);
        expect([f, name, p['id-token']]).toEqual([f, name, undefined]);
      }
    }
  });

  test('every caller (README snippets, templates) grants at least what its called jobs need', () => {
    const all = callers();
    // the README's quick start and the three templates
    expect(all.map((c) => c.where).filter((w) => w.startsWith('README.md')).length).toBeGreaterThan(0);
    expect(all.filter((c) => c.where.startsWith(`${TEMPLATE_DIR}/`)).length).toBe(yamlFiles(TEMPLATE_DIR).length);
    expect(all.flatMap((c) => checkCaller(c.doc, c.where))).toEqual([]);
  });

  test('the README permissions table says what the workflows declare', () => {
    for (const f of REUSABLE) {
      const row = README.split('\n').find((l) => l.startsWith(`| \`${path.basename(f)}\` |`));
      expect([f, row !== undefined]).toEqual([f, true]);
      const cells = row!.split('|').map((c) => c.trim());
      const grants = Object.fromEntries([...cells[3].matchAll(/`([\w-]+): (none|read|write)`/g)].map((m) => [m[1], m[2]]));
      expect([f, grants]).toEqual([f, neededBy(f)]);
    }
  });

  test('the check fails on a caller that grants too little', () => {
    const caller = (permissions: string) =>
      yaml.load(
        `on: push\njobs:\n  deploy:\n    uses: org/modelship/.github/workflows/deploy.yml@v1\n${permissions}    with: {prototxt: a, caffemodel: b, image: c}\n    secrets:\n      kubeconfig: x\n`,
      ) as Workflow;
    const problems = (permissions: string) => checkCaller(caller(permissions), 'synthetic').map((p) => p.problem);
    expect(problems('    permissions:\n      contents: read\n      packages: write\n')).toEqual([]);
    expect(problems('    permissions: write-all\n')).toEqual([]);
    // packages read is not enough to push
    expect(problems('    permissions:\n      contents: read\n      packages: read\n')).toEqual(['packages: needs write, granted read']);
    expect(problems('    permissions:\n      contents: read\n')).toEqual(['packages: needs write, granted none']);
    expect(problems('    permissions: read-all\n')).toEqual(['packages: needs write, granted read']);
    expect(problems('    permissions: {}\n')).toEqual(['contents: needs read, granted none', 'packages: needs write, granted none']);
    // nothing granted at all: the repository default decides, so the caller must say it
    expect(problems('')[0]).toMatch(/grants no permissions/);
    // keyless signing: the sign job takes the caller's grant, so id-token: write comes from the caller, and only then
    const signing = (sign: string, permissions: string) =>
      checkCaller(
        yaml.load(
          `on: push\njobs:\n  deploy:\n    uses: org/modelship/.github/workflows/deploy.yml@v1\n${permissions}    with: {prototxt: a, caffemodel: b, image: c, sign: ${sign}}\n`,
        ) as Workflow,
        'synthetic',
      ).map((p) => p.problem);
    const base = '    permissions:\n      contents: read\n      packages: write\n';
    expect(signing('keyless', base + '      id-token: write\n')).toEqual([]);
    expect(signing('keyless', base)).toEqual(['id-token: needs write, granted none']);
    expect(signing('key', base)).toEqual([]);
    expect(signing('key', base + '      id-token: write\n')).toEqual(['id-token: granted write, which only sign: keyless uses']);
    expect(signing('off', base + '      id-token: write\n')).toEqual(['id-token: granted write, which only sign: keyless uses']);
    // the workflow-level grant counts when the job has none (GitHub's rule)
    const wfLevel = yaml.load(
      'on: push\npermissions:\n  contents: read\n  packages: write\n  pull-requests: write\njobs:\n  p:\n    uses: org/modelship/.github/workflows/pr-preview.yml@v1\n',
    ) as Workflow;
    expect(checkCaller(wfLevel, 'synthetic')).toEqual([]);
    const prTooLittle = yaml.load(
      'on: pull_request\njobs:\n  p:\n    uses: org/modelship/.github/workflows/pr-preview.yml@v1\n    permissions:\n      contents: read\n      packages: write\n',
    ) as Workflow;
    expect(checkCaller(prTooLittle, 'synthetic').map((p) => p.problem)).toEqual(['pull-requests: needs write, granted none']);
    // and a caller of a path that does not exist is reported, not skipped
    const wrongPath = yaml.load('on: push\njobs:\n  d:\n    uses: org/modelship/workflows/deploy.yml@v1\n    permissions: write-all\n') as Workflow;
    expect(checkCaller(wrongPath, 'synthetic').map((p) => p.problem)).toEqual([
      'workflows/deploy.yml: GitHub runs reusable workflows only from .github/workflows/ (no subdirectories)',
    ]);
  });
});

describe('callers pass what the reusable workflows take', () => {
  type Called = { with?: Record<string, unknown>; secrets?: Record<string, unknown> | string };
  type Declared = { workflow_call: { inputs?: Record<string, { required?: boolean }>; secrets?: Record<string, { required?: boolean }> } };

  test('every with: key is an input of the called workflow, every required input and secret is given', () => {
    const problems: string[] = [];
    let calls = 0;
    for (const { where, doc } of callers()) {
      for (const [name, job] of Object.entries(doc.jobs ?? {})) {
        const [ref] = typeof job?.uses === 'string' ? workflowRefs(`uses: ${job.uses}`) : [];
        if (!ref || notReusable(ref.workflow)) continue;
        calls++;
        const at = `${where} jobs.${name}`;
        const { workflow_call: wf } = (yaml.load(read(ref.workflow)) as { on: Declared }).on;
        const given = (job as Called).with ?? {};
        for (const k of Object.keys(given)) if (!wf.inputs?.[k]) problems.push(`${at}: with.${k} is not an input of ${ref.workflow}`);
        for (const [k, i] of Object.entries(wf.inputs ?? {}))
          if (i.required && given[k] === undefined) problems.push(`${at}: ${ref.workflow} requires input ${k}`);
        const secrets = (job as Called).secrets;
        if (secrets === 'inherit') continue;
        for (const k of Object.keys(secrets ?? {})) if (!wf.secrets?.[k]) problems.push(`${at}: secrets.${k} is not a secret of ${ref.workflow}`);
        for (const [k, v] of Object.entries(wf.secrets ?? {}))
          if (v.required && !(secrets as Record<string, unknown> | undefined)?.[k]) problems.push(`${at}: ${ref.workflow} requires secret ${k}`);
      }
    }
    expect(calls).toBeGreaterThanOrEqual(4);
    expect(problems).toEqual([]);
  });
});
