import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { FIXTURES, caffeRoot, tmpDir } from './helpers/caffe';

const LENET = path.join(FIXTURES, 'lenet');
const lenetProto = fs.readFileSync(path.join(LENET, 'deploy.prototxt'), 'utf8');
const lenetWeights = path.join(LENET, 'weights.caffemodel');

const run = runCli;

/** Convert with the given files and expect a clean failure: the message, a non-zero exit, no output files. */
async function expectFailure(files: { prototxt: string; caffemodel: string }, message: RegExp, extra: string[] = []) {
  const dir = tmpDir();
  const out = path.join(dir, 'out', 'model.onnx');
  const r = await run(['convert', '--prototxt', files.prototxt, '--caffemodel', files.caffemodel, '--out', out, ...extra]);
  expect(r.stderr).toMatch(message);
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(fs.existsSync(out)).toBe(false);
  expect(fs.existsSync(path.join(dir, 'out', 'parity.json'))).toBe(false);
  return r;
}

function write(name: string, content: string | Uint8Array): string {
  const f = path.join(tmpDir(), name);
  fs.writeFileSync(f, content);
  return f;
}

describe('bad input: clear error, non-zero exit, nothing written', () => {
  test('prototxt syntax error names file, line and column', async () => {
    const broken = lenetProto.replace('num_output: 50', 'num_output 50');
    const f = write('deploy.prototxt', broken);
    const line = broken.split('\n').findIndex((l) => l.includes('num_output 50')) + 1;
    await expectFailure(
      { prototxt: f, caffemodel: lenetWeights },
      new RegExp(`${f.replace(/[.]/g, '\\.')}:${line}:\\d+: expected ':' after field "num_output"`),
    );
  });

  test('unknown layer type names the layer, its type, its line and the supported types', async () => {
    const broken = lenetProto.replace('type: "ReLU"', 'type: "Swish"');
    const f = write('deploy.prototxt', broken);
    const line = broken.split('\n').findIndex((l) => l.includes('"Swish"'));
    // the layer's line is where its `layer {` opens, the line before `type:` here
    const r = await expectFailure({ prototxt: f, caffemodel: lenetWeights }, /unsupported layer type "Swish"/);
    expect(r.stderr).toMatch(/layer "relu1"/);
    expect(r.stderr).toMatch(new RegExp(`:${line - 1}: `));
    expect(r.stderr).toMatch(/Supported types: .*Convolution.*InnerProduct.*Pooling/);
  });

  test('binary garbage given as prototxt', async () => {
    await expectFailure({ prototxt: lenetWeights, caffemodel: lenetWeights }, /binary file, not a text prototxt.*swap --prototxt and --caffemodel/);
  });

  test('empty caffemodel', async () => {
    await expectFailure(
      { prototxt: path.join(LENET, 'deploy.prototxt'), caffemodel: write('empty.caffemodel', '') },
      /empty\.caffemodel: the caffemodel is empty/,
    );
  });

  test('truncated caffemodel', async () => {
    const bytes = fs.readFileSync(lenetWeights);
    const f = write('cut.caffemodel', bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await expectFailure({ prototxt: path.join(LENET, 'deploy.prototxt'), caffemodel: f }, /cut\.caffemodel: not a valid caffemodel.*truncated/);
  });

  test('a prototxt given as caffemodel', async () => {
    await expectFailure(
      { prototxt: path.join(LENET, 'deploy.prototxt'), caffemodel: path.join(LENET, 'deploy.prototxt') },
      /not a valid caffemodel|has no layers/,
    );
  });

  test('weights whose shape does not match the prototxt name the layer and both shapes', async () => {
    const f = write('deploy.prototxt', lenetProto.replace('num_output: 20', 'num_output: 24'));
    await expectFailure(
      { prototxt: f, caffemodel: lenetWeights },
      /layer "conv1": \(Convolution\) weights shape mismatch: the prototxt implies \[24, 1, 5, 5\] but the caffemodel has \[20, 1, 5, 5\]/,
    );
  });

  test('a layer with missing weights', async () => {
    const f = write('deploy.prototxt', lenetProto.replace(/name: "ip2"/, 'name: "ip2_renamed"'));
    await expectFailure(
      { prototxt: f, caffemodel: lenetWeights },
      /layer "ip2_renamed": \(InnerProduct\) has no weights in .*weights\.caffemodel: expected 2 blob\(s\) weights \[10, 500\], bias \[10\]/,
    );
  });

  test('a bottom that no layer produces', async () => {
    const f = write('deploy.prototxt', lenetProto.replace('bottom: "pool2"', 'bottom: "pool_two"'));
    await expectFailure(
      { prototxt: f, caffemodel: lenetWeights },
      /layer "ip1": bottom "pool_two" is not produced by any earlier layer and is not a net input/,
    );
  });

  test('missing files and bad flags are input errors (exit 2)', async () => {
    const r1 = await expectFailure(
      { prototxt: '/nonexistent/deploy.prototxt', caffemodel: lenetWeights },
      /\/nonexistent\/deploy\.prototxt: cannot read prototxt: no such file/,
    );
    expect(r1.code).toBe(2);
    const r2 = await run(['convert', '--prototxt', 'a', '--caffemodel', 'b', '--tolerance', 'tiny']);
    expect(r2.stderr).toMatch(/input "tolerance": expected a non-negative number, got "tiny"/);
    expect(r2.code).toBe(2);
    const r3 = await run(['convert', '--prototxt', 'a']);
    expect(r3.stderr).toMatch(/input "caffemodel": is required for stage convert/);
    const r4 = await run(['deploy']);
    expect(r4.stderr).toMatch(/input "stage": unknown stage "deploy"; expected one of convert/);
    const r5 = await run(['convert', '--protottxt', 'a']);
    expect(r5.stderr).toMatch(/unknown flag --protottxt/);
    const r6 = await run(['convert', '--prototxt', 'a', '--caffemodel', 'b', '--per-layer']);
    expect(r6.stderr).toMatch(/input "per-layer": needs a reference directory/);
  });

  test('a reference directory or a model file that is not there is an input error, not a crash', async () => {
    // (the stages read the reference through this before touching anything: rollout, smoke, compile)
    const { referenceBatches } = await import('../src/shared/reference');
    expect(() => referenceBatches('/nonexistent/ref')).toThrow(/\/nonexistent\/ref: input "reference": cannot read the reference directory: no such directory/);
    expect(() => referenceBatches(lenetWeights)).toThrow(/input "reference": cannot read the reference directory: not a directory/);
    const { readModel } = await import('../src/serve/model');
    expect(() => readModel({ modelPath: '/nonexistent/model.onnx', modelKey: '' } as any)).toThrow(
      /\/nonexistent\/model\.onnx: cannot read the model \(--model, MODELSHIP_MODEL\): no such file/,
    );
  });

  test('a caffemodel layer whose blob data does not fill its declared shape', async () => {
    const T = caffeRoot().lookupType('caffe.NetParameter');
    const net = T.decode(fs.readFileSync(lenetWeights)) as any;
    net.layer.find((l: any) => l.name === 'ip2').blobs[1].data.pop();
    const f = write('short.caffemodel', T.encode(net).finish());
    await expectFailure(
      { prototxt: path.join(LENET, 'deploy.prototxt'), caffemodel: f },
      /layer "ip2": blob 1 declares shape \[10\] \(10 values\) but holds 9 float values/,
    );
  });

  test('Caffe-invalid blob reuse is refused as Caffe refuses it', async () => {
    const twice = lenetProto.replace('top: "pool2"', 'top: "pool1"').replace('bottom: "pool2"', 'bottom: "pool1"');
    const f = write('deploy.prototxt', twice);
    await expectFailure({ prototxt: f, caffemodel: lenetWeights }, /layer "pool2": top "pool1" is already produced by an earlier layer/);
  });
});

describe('the CLI surface', () => {
  test('convert --json prints the outputs as JSON; plain prints name=value', async () => {
    const dir = tmpDir();
    const out = path.join(dir, 'm.onnx');
    const r = await run([
      'convert',
      '--prototxt',
      path.join(LENET, 'deploy.prototxt'),
      '--caffemodel',
      lenetWeights,
      '--out',
      out,
      '--reference',
      LENET,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o).toMatchObject({ 'onnx-path': out, parity: 'pass', 'parity-report': path.join(dir, 'parity.json') });
    expect(o.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Number(o['max-abs-diff'])).toBeLessThan(1e-5);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'parity.json'), 'utf8')).status).toBe('pass');
    expect(fs.readFileSync(path.join(dir, 'parity.md'), 'utf8')).toMatch(/\| 2 \| prob \| \[2, 10\] \|/);
    const plain = await run(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', lenetWeights, `--out=${out}`]);
    expect(plain.stdout).toMatch(/^onnx-path=.*m\.onnx\nsha256=[0-9a-f]{64}\nparity=skipped\nmax-abs-diff=\nparity-report=\n$/);
  });

  test('a reference that does not fit the net is an input error', async () => {
    const dir = tmpDir();
    const r = await run([
      'convert',
      '--prototxt',
      path.join(FIXTURES, 'lenet_v1/deploy.prototxt'),
      '--caffemodel',
      path.join(FIXTURES, 'lenet_v1/weights.caffemodel'),
      '--out',
      path.join(dir, 'm.onnx'),
      '--reference',
      path.join(FIXTURES, 'zoo_legacy'),
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/reference input for "data" has shape \[1,2,9,9\], the net expects \[1,1,28,28\]/);
  });

  test('a parity failure exits 1 saying which check failed and naming the first diverging layer; the report is kept for debugging', async () => {
    const T = caffeRoot().lookupType('caffe.NetParameter');
    const net = T.decode(fs.readFileSync(lenetWeights)) as any;
    net.layer.find((l: any) => l.name === 'ip1').blobs[1].data[3] += 0.5;
    const weights = write('perturbed.caffemodel', T.encode(net).finish());
    const dir = tmpDir();
    const r = await run([
      'convert',
      '--prototxt',
      path.join(LENET, 'deploy.prototxt'),
      '--caffemodel',
      weights,
      '--out',
      path.join(dir, 'm.onnx'),
      '--reference',
      LENET,
      '--per-layer',
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^parity=fail$/m);
    expect(r.stderr).toMatch(
      /parity check failed: both checks failed \(the end-to-end gate and the per-layer check, first diverging layer "ip1"\)\. End-to-end gate: max \|Δ\| [0-9.e-]+ > limit 0\.001 /,
    );
    const report = JSON.parse(fs.readFileSync(path.join(dir, 'parity.json'), 'utf8'));
    expect(report.perLayer.firstDivergence.layer).toBe('ip1');
  });

  test('--help lists every input as a flag', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--prototxt', '--caffemodel', '--out', '--reference', '--per-layer', '--tolerance']) expect(r.stdout).toContain(flag);
  });
});
