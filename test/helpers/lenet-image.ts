import * as path from 'path';
import { runCli } from './cli';
import { FIXTURES, wrongLenetCaffemodel } from './caffe';
import { LAB } from './lab';
import { once, sharedDir, runId, withLock } from './shared';

/**
 * The LeNet serving images the rollout tests deploy, built once per jest run by whichever file asks first (the
 * others, in other workers, wait for it and get the same digest): convert, then the image stage, pushed to the lab
 * registry under a repository of the run's own. The tests deploy them by digest and change no tag, so sharing them
 * leaves each test as isolated as its own namespace.
 * - a, b: the same model (converted with the parity check against LeNet's Caffe outputs), two revisions: two
 *   digests, for a rollout from one to the other;
 * - wrong: LeNet's weights with one ip2 bias moved (wrongLenetCaffemodel): its golden outputs differ.
 * The variants share one repository, hence the image stage's build context (a directory per repository under
 * $TMPDIR/modelship-build): one build at a time, under a lock of its own.
 */
export type LenetVariant = 'a' | 'b' | 'wrong';

export const LENET = path.join(FIXTURES, 'lenet');
export const LENET_SHARED_REPO = () => `${LAB.registry}/modelship-test/lenet-shared-${runId()}`;

const REVISION: Record<LenetVariant, string> = { a: 'a', b: 'b', wrong: 'c' };

function fail(what: string, r: { code: number; stderr: string }): never {
  throw new Error(`${what}: exit ${r.code}\n${r.stderr.slice(-3000)}`);
}

/** The ONNX model of a variant (converted once per run). */
const model = (good: boolean) =>
  once(`lenet-onnx-${good ? 'good' : 'wrong'}`, async () => {
    const dir = sharedDir();
    const out = path.join(dir, good ? 'lenet.onnx' : 'wrong/lenet.onnx');
    const caffemodel = good ? path.join(LENET, 'weights.caffemodel') : wrongLenetCaffemodel(LENET, path.join(dir, 'wrong.caffemodel'));
    const r = await runCli([
      'convert',
      '--prototxt',
      path.join(LENET, 'deploy.prototxt'),
      '--caffemodel',
      caffemodel,
      '--out',
      out,
      ...(good ? ['--reference', LENET] : []),
    ]);
    if (r.code !== 0) fail(`convert (${good ? 'LeNet' : 'wrong LeNet'})`, r);
    return out;
  });

/** The image of a variant: its digest reference (`<repo>@sha256:...`). */
export function lenetImage(variant: LenetVariant): Promise<string> {
  return once(`lenet-image-${variant}`, async () => {
    const onnx = await model(variant !== 'wrong');
    const r = await withLock('lenet-shared-build', () =>
      runCli([
        'image',
        '--image',
        LENET_SHARED_REPO(),
        '--model',
        onnx,
        '--model-name',
        'lenet',
        '--base-image',
        LAB.baseImage,
        '--revision',
        REVISION[variant].repeat(40),
        '--ref',
        `refs/heads/${variant}`,
        '--compose-file',
        path.join(sharedDir(), `lenet-${variant}.yml`),
        '--json',
      ]),
    );
    if (r.code !== 0) fail(`image stage (LeNet ${variant})`, r);
    return r.json().image as string;
  });
}
