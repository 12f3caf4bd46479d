import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { runAction } from './helpers/runner';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';
import { OUTPUTS } from '../src/config';

const LENET = path.join(FIXTURES, 'lenet');
const declaredOutputs = Object.keys((yaml.load(fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8')) as { outputs: object }).outputs);
/** the outputs action.yml declares for a stage (their descriptions start with the stage names) */
const outputsOf = (stage: string) => declaredOutputs.filter((o) => OUTPUTS.find((x) => x.name === o)!.stages.includes(stage as never));

// The bundle on this Node; on Node 24 (the runtime action.yml declares): action.tools.test.ts; the post step's cleanup
// of smoke containers in the lab's Docker engine: action.lab.test.ts.
describe('the bundled action under the runner contract (INPUT_*, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY)', () => {
  test('stage convert with a reference: every declared output is set, the summary has the parity table', () => {
    const work = tmpDir();
    const r = runAction(
      {
        stage: 'convert',
        prototxt: path.join(LENET, 'deploy.prototxt'),
        caffemodel: path.join(LENET, 'weights.caffemodel'),
        out: 'build/lenet.onnx',
        reference: LENET,
        'per-layer': 'true',
      },
      { cwd: work },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Object.keys(r.outputs).sort()).toEqual(outputsOf('convert').sort());
    expect(r.outputs).toMatchObject({ 'onnx-path': 'build/lenet.onnx', parity: 'pass', 'parity-report': 'build/parity.json' });
    expect(fs.statSync(path.join(work, 'build/lenet.onnx')).size).toBeGreaterThan(1_000_000);
    expect(Number(r.outputs['max-abs-diff'])).toBeLessThanOrEqual(1e-5);
    expect(r.summary).toMatch(/## modelship convert/);
    expect(r.summary).toMatch(/### Parity against Caffe: ✅ pass/);
    expect(r.summary).toMatch(/\| 1 \| prob \| \[1, 10\] \|/);
    expect(r.summary).toMatch(/Per-layer: \d+ layer outputs compared/);
    expect(r.stdout).toMatch(/::group::Convert Caffe → ONNX/);
  });

  test("stage compile: every compile output is set and the summary shows the optimized model's parity", () => {
    const work = tmpDir();
    const conv = runAction(
      { stage: 'convert', prototxt: path.join(LENET, 'deploy.prototxt'), caffemodel: path.join(LENET, 'weights.caffemodel'), out: 'm.onnx' },
      { cwd: work },
    );
    expect(conv.code).toBe(0);
    const r = runAction({ stage: 'compile', model: 'm.onnx', reference: LENET }, { cwd: work });
    expect(r.code).toBe(0);
    expect(Object.keys(r.outputs).sort()).toEqual(outputsOf('compile').sort());
    expect(r.outputs).toMatchObject({ 'artifact-path': 'm.ort.onnx', 'compile-parity': 'pass' });
    expect(r.summary).toMatch(/### Parity of the optimized model against Caffe: ✅ pass/);
  });

  test('a prototxt error becomes one annotation on the file and line, and the step fails', () => {
    const work = tmpDir();
    const proto = fs.readFileSync(path.join(LENET, 'deploy.prototxt'), 'utf8').replace('kernel_size: 2', 'kernel_size = 2');
    fs.writeFileSync(path.join(work, 'deploy.prototxt'), proto);
    const r = runAction({ stage: 'convert', prototxt: 'deploy.prototxt', caffemodel: path.join(LENET, 'weights.caffemodel') }, { cwd: work });
    expect(r.code).toBe(1);
    const line = proto.split('\n').findIndex((l) => l.includes('kernel_size = 2')) + 1;
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      new RegExp(`^::error title=modelship%3A syntax error,file=deploy.prototxt,line=${line},col=\\d+::deploy.prototxt:${line}:\\d+: `),
    );
    expect(fs.existsSync(path.join(work, 'model.onnx'))).toBe(false);
    expect(r.outputs).toEqual({});
  });

  test('inputs are validated before any work: unknown stage, missing input, malformed value', () => {
    const a = runAction({ stage: 'deploy' });
    expect(a.code).toBe(1);
    expect(a.stdout).toMatch(/::error title=modelship%3A input error::input "stage": unknown stage "deploy"/);
    const b = runAction({ stage: 'convert', prototxt: 'x.prototxt' });
    expect(b.stdout).toMatch(/input "caffemodel": is required for stage convert/);
    const c = runAction({ stage: 'convert', prototxt: 'a', caffemodel: 'b', 'per-layer': 'sometimes' });
    expect(c.stdout).toMatch(/input "per-layer": expected true or false, got "sometimes"/);
  });

  test('the main step saves the state that marks its post step', () => {
    const r = runAction({ stage: 'deploy' });
    const state = fs.readFileSync(r.stateFile, 'utf8');
    expect(state).toMatch(/^isPost<<ghadelimiter_[0-9a-f-]+\ntrue\n/);
  });
});
