import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { REPO } from './helpers/caffe';
import { INPUTS, InputSpec, Stage, inputUsedBy, readConfig } from '../src/config';
import { INPUTS_MAP, withInputsMap } from '../src/inputs';
import { parseReport } from '../src/preview/inputs';

/**
 * The reusable workflows against the action they run, derived from action.yml so the two cannot drift: every input
 * a stage reads is reachable from the workflow's caller for each job that runs that stage: named as the action's
 * (a workflow input passed under the same name), through the job's `<stage>-inputs` pass-through (the action's
 * `inputs` map), or, for secrets, from a workflow secret of the same name. A workflow input named as an action input
 * reaches every job whose stage reads it, with a compatible type.
 */

interface WorkflowInput {
  type: string;
  default?: unknown;
  description?: string;
}
interface Step {
  uses?: string;
  id?: string;
  with?: Record<string, unknown>;
}
interface Job {
  'runs-on'?: string;
  steps?: Step[];
}
interface Reusable {
  on: { workflow_call: { inputs?: Record<string, WorkflowInput>; secrets?: Record<string, { required?: boolean }> } };
  jobs: Record<string, Job>;
}

const ACTION = yaml.load(fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8')) as { inputs: Record<string, { description: string; default?: string }> };
const SPECS = new Map(INPUTS.map((i) => [i.name, i]));
const WORKFLOWS = ['deploy.yml', 'pr-preview.yml', 'convert.yml'];
const load = (f: string) => yaml.load(fs.readFileSync(path.join(REPO, '.github/workflows', f), 'utf8')) as Reusable;

/** Every step that runs the action, with its stage. */
function actionSteps(wf: Reusable): { job: string; step: Step; stage: Stage }[] {
  return Object.entries(wf.jobs).flatMap(([job, j]) =>
    (j.steps ?? []).filter((s) => s.uses === 'org/modelship@v1').map((step) => ({ job, step, stage: String(step.with?.stage) as Stage })),
  );
}

/** The names `${{ inputs.X }}` / `${{ secrets.X }}` in an expression. */
/** A YAML value's text: a string's, else none (an expression is a string). */
const text = (v: unknown) => (typeof v === 'string' ? v : '');
const refs = (v: unknown, ctx: 'inputs' | 'secrets') => [...text(v).matchAll(new RegExp(`\\b${ctx}\\.([A-Za-z0-9_-]+)`, 'g'))].map((m) => m[1]);

const KIND_TYPES: Record<InputSpec['kind'], string[]> = { string: ['string'], path: ['string'], boolean: ['boolean', 'string'], number: ['number', 'string'] };

/**
 * Inputs a stage reads that a workflow deliberately keeps from one of its jobs, and why: the image stage can sign,
 * but in the reusable workflows the sign job does (the build job holds neither the signing key nor an OIDC token;
 * workflows.test.ts checks that only the sign job names the key).
 */
const WITHHELD: Record<string, { stage: Stage; inputs: string[]; why: string }> = {
  build: { stage: 'image', inputs: ['sign', 'signing-key', 'signing-key-password'], why: 'the sign job signs' },
};

/** What is wrong with a workflow against the action (empty when nothing). */
function problems(file: string, wf: Reusable): string[] {
  const out: string[] = [];
  const wfInputs = wf.on.workflow_call.inputs ?? {};
  const wfSecrets = wf.on.workflow_call.secrets ?? {};
  const steps = actionSteps(wf);
  for (const { job, step, stage } of steps) {
    const where = `${file} jobs.${job} (stage ${stage})`;
    const w = step.with ?? {};
    // every key is an input of the stage
    for (const k of Object.keys(w)) {
      const spec = SPECS.get(k);
      if (!spec) out.push(`${where}: with.${k} is not an input of action.yml`);
      else if (!inputUsedBy(spec, stage)) out.push(`${where}: with.${k} is not read by stage ${stage}`);
    }
    // the pass-through: with.inputs from the workflow's <stage>-inputs
    const through = `${stage}-inputs`;
    if (!wfInputs[through]) out.push(`${where}: the workflow has no input ${through} (the pass-through of the stage's other inputs)`);
    else if (!refs(w[INPUTS_MAP], 'inputs').includes(through)) out.push(`${where}: with.${INPUTS_MAP} is not \${{ inputs.${through} }}`);
    const withheld = WITHHELD[job]?.stage === stage ? WITHHELD[job].inputs : [];
    for (const name of withheld) if (w[name] !== undefined) out.push(`${where}: with.${name} is given, but ${WITHHELD[job].why}`);
    for (const spec of INPUTS.filter((i) => i.name !== 'stage' && i.name !== INPUTS_MAP && inputUsedBy(i, stage) && !withheld.includes(i.name))) {
      if (spec.secret) {
        // a secret is reachable from a workflow secret of its name, or has a default the runner provides (github-token)
        const from = refs(w[spec.name], 'secrets');
        if (!from.includes(spec.name) && !(spec.default.startsWith('${{') && w[spec.name] === undefined))
          out.push(`${where}: secret input ${spec.name} is not passed from secrets.${spec.name}`);
        for (const s of from) if (!wfSecrets[s]) out.push(`${where}: secrets.${s} is not a secret of the workflow`);
      } else if (wfInputs[spec.name] && !refs(w[spec.name], 'inputs').includes(spec.name) && !/\b(needs|steps)\./.test(text(w[spec.name]))) {
        // a workflow input named as the action's reaches every job whose stage reads it, under the same name (unless
        // the step takes that input from an earlier job or step: the image by digest the build pushed)
        out.push(`${where}: the workflow's input ${spec.name} is not passed to this step as with.${spec.name}`);
      }
    }
  }
  // workflow inputs named as the action's: a type the action's parser reads, and used by some step
  for (const [name, wi] of Object.entries(wfInputs)) {
    const spec = SPECS.get(name);
    if (!spec) continue;
    if (!KIND_TYPES[spec.kind].includes(wi.type)) out.push(`${file} inputs.${name}: type ${wi.type}, but the action's ${name} is a ${spec.kind}`);
    if (!steps.some(({ stage }) => inputUsedBy(spec, stage))) out.push(`${file} inputs.${name}: no step of this workflow runs a stage that reads it`);
  }
  for (const name of Object.keys(wfSecrets)) {
    const spec = SPECS.get(name);
    if (spec && !spec.secret) out.push(`${file} secrets.${name}: the action's ${name} is not a secret input`);
  }
  return out;
}

describe('reusable workflows reach every input of the stages they run (derived from action.yml)', () => {
  test('action.yml is what the tests derive from: the inputs map is there', () => {
    expect(Object.keys(ACTION.inputs)).toEqual(INPUTS.map((i) => i.name));
    expect(ACTION.inputs[INPUTS_MAP].default).toBe('');
  });

  test.each(WORKFLOWS)("%s: every input of each job's stage is reachable, names and types as the action's", (file) => {
    expect(problems(file, load(file))).toEqual([]);
  });

  test('the inputs the first run through an Actions engine missed are named inputs (issue 20)', () => {
    const inputs = (f: string) => Object.keys(load(f).on.workflow_call.inputs ?? {});
    expect(inputs('deploy.yml')).toEqual(
      expect.arrayContaining(['node-selector', 'tolerations', 'cpu', 'memory', 'patch', 'rollout-timeout', 'node-binary', 'node-mirror']),
    );
    expect(inputs('pr-preview.yml')).toEqual(expect.arrayContaining(['base-image', 'bake-time', 'node-binary', 'node-mirror', 'node-selector', 'tolerations']));
  });

  test('gpu: false runs smoke on the build runner in both workflows', () => {
    for (const f of ['deploy.yml', 'pr-preview.yml']) {
      expect([f, load(f).jobs.smoke['runs-on']]).toEqual([f, '${{ inputs.gpu && fromJSON(inputs.gpu-runs-on) || fromJSON(inputs.build-runs-on) }}']);
    }
  });

  test('the check finds drift: a step missing a named input, a foreign key, a missing pass-through, a secret as an input', () => {
    const wf = load('deploy.yml');
    const rollout = wf.jobs.rollout.steps!.find((s) => s.id === 'rollout')!;
    delete rollout.with!['node-selector'];
    rollout.with!['sample-image'] = 'x.png';
    const image = wf.jobs.build.steps!.find((s) => s.id === 'image')!;
    delete image.with![INPUTS_MAP];
    delete image.with!['api-key'];
    wf.on.workflow_call.inputs!.memory.type = 'boolean';
    expect(problems('deploy.yml', wf)).toEqual([
      'deploy.yml jobs.build (stage image): with.inputs is not ${{ inputs.image-inputs }}',
      'deploy.yml jobs.build (stage image): secret input api-key is not passed from secrets.api-key',
      'deploy.yml jobs.rollout (stage rollout): with.sample-image is not read by stage rollout',
      "deploy.yml jobs.rollout (stage rollout): the workflow's input node-selector is not passed to this step as with.node-selector",
      "deploy.yml inputs.memory: type boolean, but the action's memory is a string",
    ]);
  });
});

describe('the inputs map (action input "inputs")', () => {
  const src = (m: Record<string, string>) => (name: string) => m[name];
  const read = (m: Record<string, string>) =>
    readConfig(src({ stage: 'rollout', image: '127.0.0.1:5000/x/y@sha256:' + 'a'.repeat(64), kubeconfig: '/k', ...m }));

  test('its values stand where the input is not given or is its default', () => {
    const c = read({
      'bake-time': '60',
      [INPUTS_MAP]: 'bake-time: 10\nnode-selector: realnode=true\ncpu: 500m\ntolerations: [{key: realnode, operator: Exists, effect: NoSchedule}]\n',
    });
    expect(c.rollout.bakeTimeS).toBe(10);
    expect(c.rollout.cpu).toBe('500m');
    expect(c.rollout.nodeSelector).toEqual({ realnode: 'true' });
    // a structured value arrives as JSON, which the YAML-valued inputs read
    expect(c.rollout.tolerations).toEqual([{ key: 'realnode', operator: 'Exists', effect: 'NoSchedule' }]);
    // JSON is YAML too; nothing given, nothing changes
    expect(read({ [INPUTS_MAP]: '{"replicas": 3}' }).rollout.replicas).toBe(3);
    expect(read({ [INPUTS_MAP]: '' }).rollout.bakeTimeS).toBe(60);
    // the same value both ways is fine
    expect(read({ 'bake-time': '10', [INPUTS_MAP]: 'bake-time: 10' }).rollout.bakeTimeS).toBe(10);
  });

  test.each([
    ['bake-time: [', /input "inputs": is not YAML \(line 2, column 1\): unexpected end of the stream/],
    ['- a\n- b', /input "inputs": expected a map of input names to values/],
    ['no-such-input: 1', /input "inputs": "no-such-input" is not an input of modelship/],
    ['stage: convert', /"stage" is not an input of modelship that can be given here/],
    ['sample-image: a.png', /input "inputs": "sample-image" is not read by stage rollout \(it is an input of smoke\)/],
    ['registry-password: hunter2', /"registry-password" is a secret: pass it in with: from a secret/],
  ])('%j is refused, naming the input', (map, message) => {
    expect(() => read({ [INPUTS_MAP]: map })).toThrow(message);
  });

  test('an input given both ways with different values fails naming it', () => {
    expect(() => read({ 'bake-time': '30', [INPUTS_MAP]: 'bake-time: 10' })).toThrow(
      /input "bake-time": given as "30" and in inputs.bake-time as "10": give it once/,
    );
  });

  test('without the map the source is the same', () => {
    const s = src({ a: 'b' });
    expect(withInputsMap(s, INPUTS, 'convert')).toBe(s);
  });
});

describe('the PR comment figures (smoke-report)', () => {
  test("toJSON(needs): the jobs' outputs merged, so the build job's parity arrives", () => {
    const needs = {
      build: { result: 'success', outputs: { image: 'r/x@sha256:1', parity: 'pass', 'max-abs-diff': '4.4e-7' } },
      smoke: { result: 'success', outputs: { 'latency-p50-ms': '3.1', 'latency-p95-ms': '4.0', 'latency-p99-ms': '' } },
    };
    expect(parseReport(JSON.stringify(needs))).toEqual({
      image: 'r/x@sha256:1',
      parity: 'pass',
      'max-abs-diff': '4.4e-7',
      'latency-p50-ms': '3.1',
      'latency-p95-ms': '4.0',
    });
  });
  test("one job's outputs as before", () => {
    expect(parseReport('{"latency-p95-ms":"4.0","parity":"pass"}')).toEqual({ 'latency-p95-ms': '4.0', parity: 'pass' });
  });
  test('not JSON, or not an object, names the input', () => {
    expect(() => parseReport('{')).toThrow(/input "smoke-report": is not JSON/);
    expect(() => parseReport('[1]')).toThrow(/input "smoke-report": expected a JSON object/);
  });
});
