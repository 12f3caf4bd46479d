import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { REPO, tmpDir } from './helpers/caffe';
import { LAB, requireLab, docker } from './helpers/lab';
import { ssdPython, ssdReference } from './helpers/ssd';
import { buildTritonLabImage } from './helpers/triton-lab';
import { labDescribe } from './helpers/needs';

// smoke of a detection model (test/smoke-detection.test.ts: its inputs and its report), the worked example (OpenCV's
// face detector, seeded weights, the detections OpenCV finds in examples/face-detector/sample.png) through image and
// smoke on the lab, both runtimes. The SSD reference and OpenCV come from a venv (.venv-opencv/, made from PyPI).
jest.setTimeout(600_000);

const FACE = path.join(REPO, 'test/fixtures/ssd/res10_300x300');
const EXAMPLE = path.join(REPO, 'examples/face-detector');
const SAMPLE = path.join(EXAMPLE, 'sample.png');
const EXPECTED = fs.readFileSync(path.join(EXAMPLE, 'expected-detections.json'), 'utf8');
const PREPROCESS = '{"mean": [104, 177, 123]}';

/**
 * The worked example on the lab: the face detector converted with its OpenCV reference, compiled, built into an image
 * of `runtime`, and smoke-tested with the sample image and OpenCV's detections in it.
 */
labDescribe(['docker', 'registry', 'node24'])('the face detector worked example on the lab: image → smoke (golden requests, sample image detections)', () => {
  const work = tmpDir('modelship-smoke-det-');
  /** the reference: the fixture's OpenCV outputs and its inputs */
  let REF = '';
  let artifact = '';
  beforeAll(async () => {
    requireLab();
    // the seeded weights and the reference inputs are made from the fixture's recipe (not committed: 10 MB, 3 MB)
    const ref = ssdReference('res10_300x300');
    REF = ref.dir;
    const weights = ref.weights;
    const py = ssdPython();
    // the example's expectations are OpenCV's on these weights: made again here, they must be what is committed
    const again = path.join(work, 'example');
    fs.mkdirSync(again);
    fs.copyFileSync(SAMPLE, path.join(again, 'sample.png'));
    execFileSync(py, [path.join(EXAMPLE, 'make-example.py'), path.join(FACE, 'deploy.prototxt'), weights, again], { stdio: 'pipe' });
    expect(fs.readFileSync(path.join(again, 'expected-detections.json'), 'utf8')).toBe(EXPECTED);
    const onnx = path.join(work, 'face.onnx');
    const c = await runCli(['convert', '--prototxt', path.join(FACE, 'deploy.prototxt'), '--caffemodel', weights, '--out', onnx, '--reference', REF]);
    expect(c.stderr).not.toMatch(/error:/);
    expect(c.code).toBe(0);
    artifact = path.join(work, 'face.ort.onnx');
    const o = await runCli(['compile', '--model', onnx, '--artifact', artifact, '--reference', REF]);
    expect(o.code).toBe(0);
  });

  // the modelship image carries the face detector's preprocessing (image input `preprocess` → MODELSHIP_PREPROCESS):
  // smoke is not told it; Triton does not preprocess, so smoke does, with the same input
  const smokeArgs = (image: string, runtime: string, expected: string) => [
    'smoke',
    '--image',
    image,
    '--runtime',
    runtime,
    '--model-name',
    'face',
    '--reference',
    REF,
    '--sample-image',
    SAMPLE,
    '--expected-detections',
    expected,
    ...(runtime === 'triton' ? ['--preprocess', PREPROCESS] : []),
    '--requests',
    '10',
    '--concurrency',
    '2',
    '--ready-timeout',
    '180',
    '--json',
  ];

  for (const runtime of ['modelship', 'triton'] as const) {
    test(`runtime ${runtime}: the expected detections pass; moved ones fail, naming them; the container is removed`, async () => {
      const repo = `${LAB.registry}/modelship-test/face-${runtime}-${process.pid}`;
      const extra =
        runtime === 'triton'
          ? ['--runtime', 'triton', '--triton-image', await buildTritonLabImage(), '--batch-sizes', '1,4,8']
          : ['--base-image', LAB.baseImage];
      const r = await runCli([
        'image',
        '--image',
        repo,
        '--model',
        artifact,
        '--model-name',
        'face',
        '--revision',
        'f'.repeat(40),
        '--parity',
        'pass',
        '--compose-file',
        path.join(work, `${runtime}.yml`),
        '--preprocess',
        PREPROCESS,
        ...extra,
        '--json',
      ]);
      expect(r.stderr).not.toMatch(/error:/);
      expect(r.code).toBe(0);
      const image = r.json().image as string;
      if (runtime === 'triton') expect(r.stderr).toMatch(/max_batch_size 0/);

      const s = await runCli(smokeArgs(image, runtime, EXPECTED));
      expect(s.stderr).not.toMatch(/error:/);
      expect(s.code).toBe(0);
      expect(s.json().smoke).toBe('pass');
      // modelship answers /detect itself; Triton gets the tensor on /infer and smoke reads the table
      expect(s.stderr).toContain(`sample image: 3 detections with score ≥ 0.5 through ${runtime === 'modelship' ? '/detect' : '/infer'}, expected 3: pass`);

      // the same image, an expectation with one box moved by 40 px and one label changed
      const wrong = JSON.parse(EXPECTED) as { label: number; box: number[] }[];
      wrong[0].box = wrong[0].box.map((v, i) => (i % 2 === 0 ? v + 40 : v));
      wrong[1].label = 2;
      const f = await runCli(smokeArgs(image, runtime, JSON.stringify(wrong)).filter((a) => a !== '--json'));
      expect(f.code).toBe(1);
      expect(f.stdout).toMatch(/^smoke=fail$/m);
      expect(f.stderr).toMatch(
        new RegExp(`the sample image gave 3 detections \\(score ≥ 0\\.5\\), expected 3: expected label 1 \\[99, 280\\.5, 164\\.4, 317\\] has no match`),
      );
      expect(f.stderr).toMatch(
        /expected label 2 \[199\.8, 139\.2, 262\.6, 170\.3\] has no match \(same label, IoU ≥ 0\.5\); nearest found: label 1 \[199\.8, 139\.2, 262\.6, 170\.3\]/,
      );
      expect(f.stderr).toContain('container log (last lines)');
      expect(docker(['ps', '-a', '--filter', 'label=dev.modelship.smoke=true', '--filter', `ancestor=${image}`, '--format', '{{.Names}}']).trim()).toBe('');
    });
  }
});
