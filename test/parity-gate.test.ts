import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { caffeRoot, ORACLE, tmpDir } from './helpers/caffe';
import { MUTANTS, writeMutant } from './helpers/parity-mutants';
import { compareOutput, DEFAULT_TOLERANCE } from '../src/shared/compare';
import { readNpy } from '../src/util/npy';

// The default gate (README "The parity gate"): loose enough for the float32 drift of every correct net measured,
// tight enough that real mistakes fail it loudly; the per-layer check stays the precise instrument, and the report
// says which of the two failed.

const LENET = path.join(ORACLE, 'models/lenet');

async function convert(prototxt: string, caffemodel: string, reference: string, perLayer = true) {
  const dir = tmpDir('parity-gate-');
  const r = await runCli([
    'convert',
    '--prototxt',
    prototxt,
    '--caffemodel',
    caffemodel,
    '--out',
    path.join(dir, 'm.onnx'),
    '--reference',
    reference,
    ...(perLayer ? ['--per-layer'] : []),
  ]);
  const jsonPath = path.join(dir, 'parity.json');
  // the stage ran to its end (outputs printed, the report written): a verdict of the gate, not a crash
  const report = fs.existsSync(jsonPath) ? JSON.parse(fs.readFileSync(jsonPath, 'utf8')) : undefined;
  const md = fs.existsSync(path.join(dir, 'parity.md')) ? fs.readFileSync(path.join(dir, 'parity.md'), 'utf8') : '';
  return { ...r, report, md };
}

test('the default tolerance is the measured one, the same for every stage that judges outputs', () => {
  expect(DEFAULT_TOLERANCE).toEqual({ maxAbsDiff: 1e-3, topK: 5, layerRelative: 1e-4 });
  const action = fs.readFileSync(path.join(__dirname, '../action.yml'), 'utf8');
  expect(action).toMatch(/ {2}tolerance:\n {4}description: "[^"\n]*(\\"[^"\n]*)*"\n {4}required: false\n {4}default: "1e-3"/);
});

describe('a correct net passes, and the report says both checks passed', () => {
  test('LeNet from the oracle: exit 0, verdict "both pass" in parity.json and parity.md', async () => {
    const r = await convert(path.join(LENET, 'deploy.prototxt'), path.join(LENET, 'weights.caffemodel'), LENET);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^parity=pass$/m);
    expect(r.report.verdict).toEqual({
      endToEnd: 'pass',
      perLayer: 'pass',
      failed: 'none',
      summary: 'both checks pass (the end-to-end gate and the per-layer check)',
    });
    expect(r.md).toContain('**Verdict:** both checks pass (the end-to-end gate and the per-layer check).');
    expect(r.md).toContain('End-to-end gate (max \\|Δ\\| ≤ 0.001 · max(1, max \\|reference\\|), same top-5 up to near-ties): **pass**');
    expect(r.md).toMatch(/Per-layer: \d+ layer outputs compared .*: \*\*pass\*\*\./);
  });
});

describe('real mistakes fail the default end-to-end gate loudly (and the per-layer check names the layer)', () => {
  test.each(MUTANTS.map((m) => [m.id, m] as const))('%s', async (_id, m) => {
    const files = writeMutant(m);
    const r = await convert(files.prototxt, files.caffemodel, m.reference);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^parity=fail$/m);
    expect(r.report).toBeDefined();
    expect(r.report.tolerance).toEqual(DEFAULT_TOLERANCE);
    // the end-to-end gate fails on its own, by a wide margin: at least 10× its limit on some output
    expect(r.report.verdict).toMatchObject({ endToEnd: 'fail', perLayer: 'fail', failed: 'both' });
    const worst = Math.max(...r.report.outputs.map((c: { maxAbsDiff: number | string; limit: number }) => Number(c.maxAbsDiff) / c.limit));
    expect(worst).toBeGreaterThan(10);
    // and the per-layer check blames the layer with the mistake, run on Caffe's own bottoms
    expect(r.report.perLayer.firstDivergence.layer).toBe(m.layer);
    expect(r.stderr).toContain(`parity check failed: both checks failed (the end-to-end gate and the per-layer check, first diverging layer "${m.layer}").`);
  });

  test('the wording of a mistake caught by both, in the CLI failure message, parity.json and parity.md', async () => {
    const m = MUTANTS.find((x) => x.id === 'ip-transposed')!;
    const files = writeMutant(m);
    const r = await convert(files.prototxt, files.caffemodel, m.reference);
    expect(r.stderr).toMatch(
      /parity check failed: both checks failed \(the end-to-end gate and the per-layer check, first diverging layer "ip1"\)\. End-to-end gate: max \|Δ\| [0-9.e-]+ > limit 0\.001 \(tolerance 0\.001 · max\(1, max \|reference\|\)\) on "prob" at batch \d, top-5 differs; per-layer check: layer "ip1" \(InnerProduct\), max \|Δ\| [0-9.e-]+ > limit [0-9.e-]+; see .*parity\.json/,
    );
    expect(r.report.verdict).toEqual({
      endToEnd: 'fail',
      perLayer: 'fail',
      failed: 'both',
      summary: 'both checks failed (the end-to-end gate and the per-layer check, first diverging layer "ip1")',
    });
    expect(r.md).toContain('**Verdict:** both checks failed (the end-to-end gate and the per-layer check, first diverging layer "ip1").');
    expect(r.md).toContain('same top-5 up to near-ties): **fail**');
    expect(r.md).toMatch(/Per-layer: .*: \*\*fail\*\*\.\nFirst divergence: layer `ip1`/);
  });

  test('without --per-layer the end-to-end gate alone fails it, and says the per-layer check did not run', async () => {
    const m = MUTANTS.find((x) => x.id === 'ip-transposed')!;
    const files = writeMutant(m);
    const r = await convert(files.prototxt, files.caffemodel, m.reference, false);
    expect(r.code).toBe(1);
    expect(r.report.verdict).toMatchObject({ endToEnd: 'fail', perLayer: 'not run', failed: 'end-to-end' });
    expect(r.stderr).toMatch(
      /parity check failed: the end-to-end gate failed \(per-layer check not run\)\. End-to-end gate: max \|Δ\| [0-9.e-]+ > limit 0\.001/,
    );
  });
});

describe('the per-layer check is the precise instrument', () => {
  test('one LeNet weight off by 0.01 stays within the end-to-end gate; the per-layer check names conv2, and the report says which failed', async () => {
    const T = caffeRoot().lookupType('caffe.NetParameter');
    const net = T.decode(fs.readFileSync(path.join(LENET, 'weights.caffemodel'))) as any;
    net.layer.find((l: any) => l.name === 'conv2').blobs[0].data[7] += 0.01;
    const weights = path.join(tmpDir(), 'weights.caffemodel');
    fs.writeFileSync(weights, T.encode(net).finish());
    const r = await convert(path.join(LENET, 'deploy.prototxt'), weights, LENET);
    expect(r.code).toBe(1);
    expect(r.report.verdict).toEqual({
      endToEnd: 'pass',
      perLayer: 'fail',
      failed: 'per-layer',
      summary: 'the per-layer check failed (first diverging layer "conv2"); the end-to-end gate passes',
    });
    expect(r.report.maxAbsDiff).toBeGreaterThan(1e-5); // the old default would have caught it end to end; 1e-3 does not
    expect(r.stderr).toMatch(
      /parity check failed: the per-layer check failed \(first diverging layer "conv2"\); the end-to-end gate passes\. End-to-end gate: max \|Δ\| [0-9.e-]+ ≤ limit 0\.001 .*; per-layer check: layer "conv2" \(Convolution\)/,
    );
  });
});

describe('top-k: near-ties in the reference may swap, real reorderings may not', () => {
  const ref = { shape: [1, 6], data: new Float32Array([0.5, 0.2, 0.1, 0.1004, 0.05, 0.0496]) };
  test('a swap of two classes whose reference scores are within the limit is a tie', () => {
    const got = { shape: [1, 6], data: new Float32Array([0.5, 0.2, 0.1003, 0.1002, 0.0498, 0.0497]) };
    const c = compareOutput('prob', 1, got, ref, DEFAULT_TOLERANCE);
    expect(c.topK[0].onnx).not.toEqual(c.topK[0].reference);
    expect(c).toMatchObject({ topKMatch: true, pass: true });
  });
  test('a swap between classes further apart than the limit fails, even within max |Δ|', () => {
    const got = { shape: [1, 6], data: new Float32Array([0.34, 0.36, 0.1, 0.1004, 0.05, 0.0496]) };
    const c = compareOutput('prob', 1, got, ref, { ...DEFAULT_TOLERANCE, maxAbsDiff: 0.2 });
    expect(c.maxAbsDiff).toBeLessThanOrEqual(c.limit);
    expect(c).toMatchObject({ topKMatch: false, pass: false });
  });
  test('the oracle references agree with themselves', () => {
    const y = readNpy(path.join(LENET, 'output_b2__prob.npy'));
    expect(compareOutput('prob', 2, y, y, DEFAULT_TOLERANCE).pass).toBe(true);
  });
});
