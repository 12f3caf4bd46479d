import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { REPO } from './helpers/caffe';
import { planSmoke, sampleDetections } from '../src/smoke';
import { SmokeConfig } from '../src/smoke/inputs';
import { parseExpectedDetections } from '../src/protocol/detections';

// smoke of a detection model (SSD): the sample image's detections in its own pixels against expected-detections.
// The worked example through image and smoke on the lab: test/smoke-detection.lab.test.ts.

const EXAMPLE = path.join(REPO, 'examples/face-detector');
const SAMPLE = path.join(EXAMPLE, 'sample.png');
const EXPECTED = fs.readFileSync(path.join(EXAMPLE, 'expected-detections.json'), 'utf8');
const DIGEST = `127.0.0.1:5000/x@sha256:${'a'.repeat(64)}`;

describe('smoke inputs for detection models', () => {
  const smoke = (...args: string[]) => runCli(['smoke', '--image', DIGEST, '--model-name', 'face', ...args]);
  test('expected-detections, detection-threshold and preprocess are checked before anything runs, naming the input', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['--sample-image', SAMPLE, '--expected-detections', '[{"label": 1}]'],
        /input "expected-detections": entry 0: "box" must be four numbers \[xmin, ymin, xmax, ymax\] in pixels, got undefined/,
      ],
      [['--sample-image', SAMPLE, '--expected-detections', '{"label": 1, "box": [1, 2, 3, 4]}'], /input "expected-detections": expected a JSON list/],
      [['--sample-image', SAMPLE, '--expected-detections', '[{"label": 1, "box": [1, 2, 3, 4]'], /input "expected-detections": not JSON/],
      [['--expected-detections', EXPECTED], /input "expected-detections": the detections are those of the sample image: give sample-image too/],
      [
        ['--sample-image', SAMPLE, '--expected-detections', EXPECTED, '--expected-top1', '3'],
        /input "expected-detections": give expected-top1 \(a classifier\) or expected-detections \(a detection model\), not both/,
      ],
      [
        ['--sample-image', SAMPLE, '--expected-detections', EXPECTED, '--detection-threshold', '1.5'],
        /input "detection-threshold": expected a score from 0 to 1, got "1.5"/,
      ],
      [['--sample-image', SAMPLE, '--detection-threshold', 'high'], /input "detection-threshold": expected a non-negative number, got "high"/],
      [['--sample-image', SAMPLE, '--preprocess', '{"mean": [104, 177]}'], /input "preprocess": "mean" must be three numbers/],
      [['--sample-image', SAMPLE, '--preprocess', 'mean=104,177,123'], /input "preprocess": not JSON/],
    ];
    for (const [args, msg] of cases) {
      const r = await smoke(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(msg);
    }
  });

  test('a modelship container is run with the preprocessing (its /detect preprocesses); a Triton one is not', () => {
    const base: SmokeConfig = {
      image: DIGEST,
      runtime: 'modelship',
      protocol: 'http',
      modelName: 'face',
      tolerance: 1e-5,
      gpu: false,
      apiKey: '',
      modelKey: '',
      sampleImage: SAMPLE,
      expectedTop1: '',
      requests: 0,
      concurrency: 1,
      readyTimeoutS: 5,
      registryUsername: '',
      registryPassword: '',
    };
    const pre = { resize: 256, channelOrder: 'BGR' as const, mean: [104, 177, 123], scale: 1 };
    expect(planSmoke({ ...base, preprocess: pre }, 'n', 'o').run).toContain(`MODELSHIP_PREPROCESS=${JSON.stringify(pre)}`);
    expect(planSmoke(base, 'n', 'o').run.join(' ')).not.toContain('MODELSHIP_PREPROCESS');
    expect(planSmoke({ ...base, runtime: 'triton', preprocess: pre }, 'n', 'o').run.join(' ')).not.toContain('MODELSHIP_PREPROCESS');
  });

  test('the summary and the failure: each expected detection with its match and IoU, what is missing or extra', () => {
    const expected = parseExpectedDetections(EXPECTED);
    const found = expected.map((e, i) => ({ label: e.label, score: 0.9 - i * 0.1, box: e.box.map((v) => v + 1) as [number, number, number, number] }));
    const ok = sampleDetections('sample.png', expected, 0.5, { status: 200, route: '/detect', detections: found, width: 480, height: 360 }, 'face');
    expect(ok.failure).toBeUndefined();
    expect(ok.summary).toContain('`sample.png` (480×360) through /detect, score ≥ 0.5: 3 detections, expected 3: pass');
    expect(ok.summary).toMatch(/\| label 1 \[59, 280\.5, 124\.4, 317\] \| label 1 \[60, 281\.5, 125\.4, 318\] score 0\.900 \| 0\.9\d\d \| pass \|/);
    // one moved away, one of another label, one extra
    const bad = [
      { ...found[0], box: [300, 10, 360, 50] as [number, number, number, number] },
      { ...found[1], label: 2 },
      found[2],
      { label: 1, score: 0.55, box: [0, 0, 20, 20] as [number, number, number, number] },
    ];
    const b = sampleDetections('sample.png', expected, 0.5, { status: 200, route: '/infer', detections: bad, width: 480, height: 360 }, 'face');
    expect(b.failure).toMatch(/^the sample image gave 4 detections \(score ≥ 0\.5\), expected 3: /);
    expect(b.failure).toContain('expected label 1 [59, 280.5, 124.4, 317] has no match (same label, IoU ≥ 0.5)');
    expect(b.failure).toMatch(
      /expected label 1 \[199\.8, 139\.2, 262\.6, 170\.3\] has no match \(same label, IoU ≥ 0\.5\); nearest found: label 2 \[200\.8, 140\.2, 263\.6, 171\.3\] score 0\.800, IoU 0\.9\d\d/,
    );
    expect(b.failure).toContain('found label 1 [300, 10, 360, 50] score 0.900 was not expected');
    expect(b.failure).toContain('found label 1 [0, 0, 20, 20] score 0.550 was not expected');
    expect(b.summary).toContain('| — | label 1 [0, 0, 20, 20] score 0.550 | | **fail** |');
    // the server's error, and a model without a detection output
    expect(sampleDetections('s.png', expected, 0.5, { status: 400, route: '/detect', detections: [], error: '{"error":"x"}' }, 'face').failure).toBe(
      'the sample image through /detect failed (HTTP 400): {"error":"x"}',
    );
    expect(sampleDetections('s.png', expected, 0.5, undefined, 'lenet').failure).toMatch(
      /expected-detections is given, but model "lenet" has no detection output/,
    );
    // a detection model without expectations: listed, not checked
    expect(sampleDetections('s.png', undefined, 0.5, { status: 200, route: '/detect', detections: found }, 'face')).toEqual({
      summary: expect.stringContaining('3 detections (none expected: not checked)'),
    });
  });
});
