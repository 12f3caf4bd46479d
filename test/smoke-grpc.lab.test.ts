import * as path from 'path';
import { runCli } from './helpers/cli';
import { tmpDir } from './helpers/caffe';
import { LAB, docker, requireLab } from './helpers/lab';
import { LENET, lenetImage } from './helpers/lenet-image';
import { labDescribe } from './helpers/needs';
import { buildTritonLabImage } from './helpers/triton-lab';

// smoke with protocol grpc on the lab's engine (LeNet): the container's gRPC port (8001) published beside HTTP's,
// ServerReady, the server's and the model's metadata, the golden requests against LeNet's Caffe reference and the
// latency all over KServe v2 gRPC — against modelship's image (its server's gRPC listener) and against an image of
// runtime triton built FROM the lab's real Triton 2.51.0, which speaks it on 8001 too. A wrong model fails over gRPC
// as it does over HTTP, and an API key travels as gRPC metadata.
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'node24']);

const smoke = (image: string, extra: string[]) =>
  runCli(['smoke', '--image', image, '--model-name', 'lenet', '--reference', LENET, '--protocol', 'grpc', '--ready-timeout', '120', ...extra]);

const leftovers = () =>
  docker(['ps', '-a', '--filter', 'label=dev.modelship.smoke=true', '--filter', `label=dev.modelship.owner=pid-${process.pid}`, '-q']).trim();

describeLab('smoke over gRPC', () => {
  beforeAll(() => requireLab());

  test('runtime modelship: golden requests and latency over gRPC pass; a wrong model fails with the diff', async () => {
    const ok = await smoke(await lenetImage('a'), ['--requests', '20', '--concurrency', '2', '--json']);
    if (ok.code !== 0) throw new Error(ok.stderr.slice(-3000));
    const o = ok.json();
    expect(o.smoke).toBe('pass');
    expect(Number(o['latency-p50-ms'])).toBeGreaterThan(0);
    expect(ok.stderr).toMatch(/KServe v2 over gRPC on 127\.0\.0\.1:\d+/);
    expect(ok.stderr).toMatch(/the server is modelship /);
    const bad = await smoke(await lenetImage('wrong'), ['--requests', '0']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/output "prob" at batch 1 differs from the reference: max \|Δ\|/);
    expect(leftovers()).toBe('');
  });

  test('runtime modelship behind an API key: the key travels as gRPC metadata', async () => {
    const r = await smoke(await lenetImage('a'), ['--api-key', 'grpc-smoke-k3y', '--requests', '5']);
    if (r.code !== 0) throw new Error(r.stderr.slice(-3000));
    expect(r.stdout).toMatch(/^smoke=pass$/m);
  });

  test('runtime triton: golden requests and latency over Triton 2.51.0 gRPC pass', async () => {
    const work = tmpDir('modelship-smoke-grpc-');
    const onnx = path.join(work, 'lenet.onnx');
    const c = await runCli([
      'convert',
      '--prototxt',
      path.join(LENET, 'deploy.prototxt'),
      '--caffemodel',
      path.join(LENET, 'weights.caffemodel'),
      '--out',
      onnx,
    ]);
    if (c.code !== 0) throw new Error(c.stderr.slice(-3000));
    const img = await runCli([
      'image',
      '--image',
      `${LAB.registry}/modelship-test/lenet-grpc-triton-${process.pid}`,
      '--model',
      onnx,
      '--model-name',
      'lenet',
      '--runtime',
      'triton',
      '--triton-image',
      await buildTritonLabImage(),
      '--revision',
      'e'.repeat(40),
      '--compose-file',
      path.join(work, 'compose.yml'),
      '--json',
    ]);
    if (img.code !== 0) throw new Error(img.stderr.slice(-3000));
    const ok = await smoke(img.json().image, ['--runtime', 'triton', '--requests', '10', '--concurrency', '2', '--json']);
    if (ok.code !== 0) throw new Error(ok.stderr.slice(-3000));
    expect(ok.json().smoke).toBe('pass');
    expect(ok.stderr).toMatch(/the server is triton 2\.51\.0/);
    expect(ok.stderr).toMatch(/KServe v2 over gRPC on 127\.0\.0\.1:\d+/);
    expect(leftovers()).toBe('');
  });
});
