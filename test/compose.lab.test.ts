import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { runCli } from './helpers/cli';
import { tmpDir } from './helpers/caffe';
import { composeServe } from './helpers/compose';
import { LAB, requireLab } from './helpers/lab';
import { LENET, lenetImage } from './helpers/lenet-image';
import { labDescribe } from './helpers/needs';
import { sharedDir } from './helpers/shared';
import { buildTritonLabImage } from './helpers/triton-lab';

// The docker-compose.yml the image stage writes, served by Debian's docker-compose 1.29 (lab/up.sh docker installs
// it) on the lab's engine, for both runtimes (LeNet): it must come up healthy by its own healthcheck (modelship's
// image has only its Node.js; Triton's has python3) and answer on the three ports it publishes — KServe v2 over HTTP
// (8000) and over gRPC (8001, ServerReady through the project's gRPC client), and the metrics (8002).
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'compose', 'node24']);

const work = tmpDir('modelship-compose-');

describeLab('the compose file serves the image, healthy, on its three ports', () => {
  beforeAll(() => requireLab());

  test('runtime modelship: healthy by its Node.js healthcheck; HTTP ready, gRPC ready, metrics', async () => {
    const image = await lenetImage('a');
    const file = path.join(sharedDir(), 'lenet-a.yml');
    const svc = (yaml.load(fs.readFileSync(file, 'utf8')) as any).services.lenet;
    expect(svc.image).toBe(image);
    expect(svc.healthcheck.test.slice(0, 2)).toEqual(['CMD', '/opt/modelship/node/bin/node']);
    const r = await composeServe(file, `mscompose${process.pid}m`);
    expect(r.ps).toMatch(/Up \(healthy\)/);
    expect(r.ready).toBe(200);
    expect(r.grpcReady).toBe(true);
    expect(r.grpcServer).toMatch(/^modelship \S+$/);
    expect(r.metrics.status).toBe(200);
    expect(r.metrics.text).toMatch(/^# HELP /m);
  });

  test('runtime triton: healthy by its python3 healthcheck; HTTP ready, gRPC ready (Triton 2.51.0), metrics', async () => {
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
    const file = path.join(work, 'triton-compose.yml');
    const r = await runCli([
      'image',
      '--image',
      `${LAB.registry}/modelship-test/lenet-compose-triton-${process.pid}`,
      '--model',
      onnx,
      '--model-name',
      'lenet',
      '--runtime',
      'triton',
      '--triton-image',
      await buildTritonLabImage(),
      '--revision',
      'd'.repeat(40),
      '--compose-file',
      file,
      '--json',
    ]);
    if (r.code !== 0) throw new Error(r.stderr.slice(-3000));
    const svc = (yaml.load(fs.readFileSync(file, 'utf8')) as any).services.lenet;
    expect(svc.image).toBe(r.json().image);
    expect(svc.healthcheck.test.slice(0, 2)).toEqual(['CMD', 'python3']);
    const s = await composeServe(file, `mscompose${process.pid}t`);
    expect(s.ps).toMatch(/Up \(healthy\)/);
    expect(s.ready).toBe(200);
    expect(s.grpcReady).toBe(true);
    expect(s.grpcServer).toBe('triton 2.51.0');
    expect(s.metrics.status).toBe(200);
    expect(s.metrics.text).toMatch(/^nv_inference_count/m);
  });
});
