import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';
import { runCli } from './helpers/cli';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { LAB, docker, requireLab } from './helpers/lab';
import { checkPlanForImage, imageTensorRTVersion, localImageEnv, registryImageEnv } from '../src/shared/tensorrt';
import { fetchImageConfig, registryBase, removeTags } from '../src/shared/registry';
import { ModelshipError } from '../src/util/errors';
import { labDescribe } from './helpers/needs';

// The TensorRT path (test/tensorrt.test.ts: planning and input checks) against real images in the lab's Docker
// engine and registry.

/** Remove a test image's tag (registry/repository:tag) from the lab registry, nothing else. */
const untag = (ref: string) => removeTags(ref.slice(0, ref.lastIndexOf(':')), [ref.slice(ref.lastIndexOf(':') + 1)]);

/** Lab images declaring their TensorRT in the image config, as NVIDIA's do (see src/shared/tensorrt.ts). */
labDescribe(['docker', 'registry'])("the serving image's TensorRT, read from real images (lab Docker engine and registry)", () => {
  const id = `${process.pid}-${Date.now() % 100000}`;
  const repo = (name: string) => `${LAB.registry}/modelship-test/trt-${name}-${id}`;
  // registry-only refs (their local copy is removed), local-only refs (never pushed), and pushed digests
  const images = {
    triton105: { ref: `${repo('triton')}:24.10`, env: ['TRT_VERSION=10.5.0.18', 'TRITON_SERVER_VERSION=2.51.0', 'NVIDIA_TRITON_SERVER_VERSION=24.10'] },
    triton103: { ref: `${repo('triton')}:24.08`, env: ['TRT_VERSION=10.3.0.26', 'TRITON_SERVER_VERSION=2.49.0', 'NVIDIA_TRITON_SERVER_VERSION=24.08'] },
    tensorrt105: { ref: `${repo('tensorrt')}:24.10`, env: ['TRT_VERSION=10.5.0.18', 'TENSORRT_VERSION=10.5.0.18', 'NVIDIA_TENSORRT_VERSION=24.10'] },
    tensorrt103: { ref: `${repo('tensorrt')}:24.08`, env: ['TRT_VERSION=10.3.0.26', 'TENSORRT_VERSION=10.3.0.26', 'NVIDIA_TENSORRT_VERSION=24.08'] },
    none: { ref: `${repo('none')}:1`, env: ['NVIDIA_TRITON_SERVER_VERSION=24.10', 'NVIDIA_TENSORRT_VERSION=24.10'] },
  };
  const local = (k: keyof typeof images) => `modelship-test-local/trt-${k}-${id}:1`;
  const digests: Record<string, string> = {};
  let ctx: string;

  beforeAll(() => {
    requireLab();
    ctx = tmpDir();
    for (const [k, img] of Object.entries(images) as [keyof typeof images, { ref: string; env: string[] }][]) {
      const dir = path.join(ctx, k);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${LAB.busybox}\n${img.env.map((e) => `ENV ${e}`).join('\n')}\nLABEL dev.modelship.test=${k}\n`);
      docker(['build', '-q', '-t', img.ref, '-t', local(k), dir]);
      const out = docker(['push', img.ref]);
      digests[k] = /digest: (sha256:[0-9a-f]{64})/.exec(out)![1];
      docker(['image', 'rm', img.ref]); // the local-only tag keeps the image; the registry ref is now registry-only
    }
  }, 240_000);

  afterAll(async () => {
    for (const [k, img] of Object.entries(images) as [keyof typeof images, { ref: string }][]) {
      try {
        docker(['image', 'rm', '-f', local(k), img.ref]);
      } catch {
        /* already gone */
      }
      await untag(img.ref).catch(() => undefined);
    }
  });

  test('from the local engine (docker image inspect): TRT_VERSION, or none', async () => {
    expect(await localImageEnv(local('triton105'))).toEqual(expect.arrayContaining(['TRT_VERSION=10.5.0.18', 'NVIDIA_TRITON_SERVER_VERSION=24.10']));
    expect(await imageTensorRTVersion(local('triton105'))).toBe('10.5.0.18');
    expect(await imageTensorRTVersion(local('tensorrt103'))).toBe('10.3.0.26');
    expect(await imageTensorRTVersion(local('none'))).toBeUndefined();
  });

  test('from the registry API (image config blob via the manifest), with no local copy', async () => {
    expect(await localImageEnv(images.triton105.ref)).toBeUndefined();
    expect(await registryImageEnv(images.triton105.ref)).toEqual(expect.arrayContaining(['TRT_VERSION=10.5.0.18']));
    expect(await imageTensorRTVersion(images.triton105.ref)).toBe('10.5.0.18');
    expect(await imageTensorRTVersion(images.triton103.ref)).toBe('10.3.0.26');
    expect(await imageTensorRTVersion(images.none.ref)).toBeUndefined();
    // by digest, as the image stage pins triton-image
    const pinned = `${repo('triton')}@${digests.triton103}`;
    expect(await localImageEnv(pinned)).toBeUndefined();
    expect(await imageTensorRTVersion(pinned)).toBe('10.3.0.26');
    await expect(imageTensorRTVersion(`${repo('absent')}:1`)).rejects.toThrow(
      new RegExp(
        `cannot read the image config of ${repo('absent')}:1: the local Docker engine does not have it, and the registry API failed: registry answered 404`,
      ),
    );
  });

  test('a multi-platform index (as nvcr.io serves): the manifest for this platform', async () => {
    const r = registryBase(images.triton105.ref);
    const manifest = await new Promise<{ size: number; type: string }>((resolve, reject) => {
      http
        .get(`${r.base}/manifests/${digests.triton105}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ size: Buffer.concat(chunks).length, type: String(res.headers['content-type']) }));
        })
        .on('error', reject);
    });
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: manifest.type, digest: digests.triton105, size: manifest.size, platform: { os: 'linux', architecture: 'amd64' } }],
    });
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        `${r.base}/manifests/multi`,
        { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`PUT index: HTTP ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(index);
    });
    const multi = `${repo('triton')}:multi`;
    try {
      expect((await fetchImageConfig(multi, undefined, { os: 'linux', architecture: 'amd64' })).config?.Env).toEqual(
        expect.arrayContaining(['TRT_VERSION=10.5.0.18']),
      );
      await expect(fetchImageConfig(multi, undefined, { os: 'linux', architecture: 'arm64' })).rejects.toThrow(
        /has no image for linux\/arm64 \(it has linux\/amd64\)/,
      );
    } finally {
      await untag(multi).catch(() => undefined);
    }
  });

  test('a registry that wants a Bearer token (nvcr.io, ghcr.io): the token from its realm; the blob from a CDN without it', async () => {
    const seen: { tokenAuth?: string; cdnAuth?: string } = {};
    const forward = (target: string, req: http.IncomingMessage, res: http.ServerResponse) => {
      http
        .get(`http://${LAB.registry}${target}`, { headers: { accept: String(req.headers.accept ?? '*/*') } }, (up) => {
          res.writeHead(up.statusCode ?? 502, { 'content-type': String(up.headers['content-type'] ?? 'application/octet-stream') });
          up.pipe(res);
        })
        .on('error', () => res.writeHead(502).end());
    };
    const cdn = http.createServer((req, res) => {
      seen.cdnAuth = req.headers.authorization;
      forward(req.url!, req, res);
    });
    const reg = http.createServer((req, res) => {
      const self = `http://127.0.0.1:${(reg.address() as AddressInfo).port}`;
      if (req.url!.startsWith('/token')) {
        seen.tokenAuth = req.headers.authorization;
        const ok = req.headers.authorization === `Basic ${Buffer.from('robot:s3cret').toString('base64')}`;
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? JSON.stringify({ token: 'T0K' }) : '{}');
        return;
      }
      if (req.headers.authorization !== 'Bearer T0K') {
        res
          .writeHead(401, { 'www-authenticate': `Bearer realm="${self}/token",service="lab",scope="repository:modelship-test/trt-triton-${id}:pull"` })
          .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
      if (req.url!.includes('/blobs/')) {
        res.writeHead(307, { location: `http://127.0.0.1:${(cdn.address() as AddressInfo).port}${req.url}` }).end();
        return;
      }
      forward(req.url!, req, res);
    });
    await Promise.all([reg, cdn].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
    try {
      const ref = `127.0.0.1:${(reg.address() as AddressInfo).port}/modelship-test/trt-triton-${id}:24.10`;
      expect(await imageTensorRTVersion(ref, process.env, { username: 'robot', password: 's3cret' })).toBe('10.5.0.18');
      expect(seen.tokenAuth).toBe(`Basic ${Buffer.from('robot:s3cret').toString('base64')}`);
      expect(seen.cdnAuth).toBeUndefined();
      await expect(imageTensorRTVersion(ref, process.env, { username: 'robot', password: 'wrong' })).rejects.toThrow(
        /token service answered 401 .*scope repository:modelship-test\/trt-triton-/,
      );
    } finally {
      reg.close();
      cdn.close();
    }
  });

  test('checkPlanForImage: match passes; another TensorRT is refused naming both versions and images; none declared is refused', async () => {
    const plan = {
      format: 'tensorrt',
      tensorrt: {
        tensorrtVersion: '10.5.0',
        imageTensorRTVersion: '10.5.0.18',
        computeCapability: '9.0',
        gpu: 'NVIDIA H200',
        tensorrtImage: `${repo('tensorrt')}@${digests.tensorrt105}`,
        tritonImage: images.triton105.ref,
        profile: { min: 1, opt: 8, max: 32 },
      },
    };
    // the image stage's call, once per image: from the registry, and from the local engine
    for (const ref of [images.triton105.ref, local('triton105')]) {
      expect(checkPlanForImage(plan, ref, await imageTensorRTVersion(ref)).profile?.max).toBe(32);
    }
    expect(() => checkPlanForImage(plan.tensorrt, images.triton105.ref, '10.5.0.18')).not.toThrow();
    const v103 = await imageTensorRTVersion(images.triton103.ref);
    const mismatch = () => checkPlanForImage(plan, images.triton103.ref, v103);
    expect(mismatch).toThrow(ModelshipError);
    expect(mismatch).toThrow(
      /refusing the TensorRT plan: TensorRT 10\.5\.0 in 127\.0\.0\.1:5000\/modelship-test\/trt-tensorrt-[0-9-]+@sha256:[0-9a-f]{64} built it, but the serving image 127\.0\.0\.1:5000\/modelship-test\/trt-triton-[0-9-]+:24\.08 has TensorRT 10\.3\.0\.26/,
    );
    expect(mismatch).toThrow(new RegExp(`serve with the Triton image it was built for \\(${images.triton105.ref.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
    const missing = async () => checkPlanForImage(plan, images.none.ref, await imageTensorRTVersion(images.none.ref));
    await expect(missing()).rejects.toThrow(
      /the serving image 127\.0\.0\.1:5000\/modelship-test\/trt-none-[0-9-]+:1 declares no TensorRT version \(looked for TRT_VERSION, TENSORRT_VERSION, NVIDIA_TENSORRT_VERSION in its config's environment\)/,
    );
    expect(() => checkPlanForImage({ format: 'tensorrt' }, images.triton105.ref, '10.5.0.18')).toThrow(/records no TensorRT version/);
  });

  describe('the compile stage, for real up to its GPU query', () => {
    let model: string;
    beforeAll(async () => {
      const dir = tmpDir();
      model = path.join(dir, 'lenet.onnx');
      const d = path.join(FIXTURES, 'lenet');
      const r = await runCli(['convert', '--prototxt', path.join(d, 'deploy.prototxt'), '--caffemodel', path.join(d, 'weights.caffemodel'), '--out', model]);
      expect(r.code).toBe(0);
    });
    const compile = (...args: string[]) => runCli(['compile', '--model', model, '--target', 'tensorrt', ...args]);

    test('int8 without a calibration cache, or with a missing one: refused before docker runs', async () => {
      const r1 = await compile('--int8', '--tensorrt-image', images.tensorrt105.ref);
      expect(r1.code).toBe(2); // a bad input
      expect(r1.stderr).toMatch(/input "calibration-cache": is required with int8: true/);
      expect(r1.stderr).not.toMatch(/docker pull/);
      const absent = path.join(path.dirname(model), 'no-such.cache');
      const r2 = await compile('--int8', '--calibration-cache', absent, '--tensorrt-image', images.tensorrt105.ref);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toContain(`input "calibration-cache": cannot read ${absent}: no such file`);
      expect(r2.stderr).not.toMatch(/docker pull/);
    });

    test('a tensorrt-image that cannot be resolved, or has no registry digest, is refused before the GPU query', async () => {
      const r1 = await compile('--tensorrt-image', `${repo('absent')}:1`, '--triton-image', images.triton105.ref);
      expect(r1.code).toBe(2);
      expect(r1.stderr).toMatch(new RegExp(`input "tensorrt-image": cannot resolve ${repo('absent')}:1: docker pull failed`));
      expect(r1.stderr).not.toMatch(/GPU query/);
      const r2 = await compile('--tensorrt-image', local('tensorrt105'), '--triton-image', images.triton105.ref);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toMatch(/has no registry digest to pin it by \(RepoDigests: none\)/);
      expect(r2.stderr).not.toMatch(/GPU query/);
    });

    test('a TensorRT image of another TensorRT than the Triton image is refused before the GPU query, naming both', async () => {
      const r = await compile('--tensorrt-image', images.tensorrt103.ref, '--triton-image', images.triton105.ref);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `input "tensorrt-image": ${images.tensorrt103.ref} has TensorRT 10.3.0.26, but the Triton image the plan is for, ${images.triton105.ref}, has TensorRT 10.5.0.18`,
      );
      expect(r.stderr).not.toMatch(/GPU query/);
    });

    test('matching images: pulled, pinned by digest, the cache copied next to the model, then the GPU query (no GPU here)', async () => {
      const cache = path.join(tmpDir(), 'lenet-int8.cache');
      fs.writeFileSync(cache, 'TRT-100500-EntropyCalibration2\ndata: 3c010a14\n');
      const r = await compile(
        '--int8',
        '--calibration-cache',
        cache,
        '--batch-sizes',
        '1,4,16',
        '--tensorrt-image',
        images.tensorrt105.ref,
        '--triton-image',
        images.triton105.ref,
      );
      expect(r.code).toBe(1); // an io error: the GPU query
      expect(r.stderr).toContain(`docker pull ${images.tensorrt105.ref}`);
      expect(r.stderr).toContain(`${images.tensorrt105.ref} → ${repo('tensorrt')}@${digests.tensorrt105} (TensorRT 10.5.0.18)`);
      // what needs a GPU starts here, in the image pinned by digest
      expect(r.stderr).toContain(
        `the GPU query in ${repo('tensorrt')}@${digests.tensorrt105} failed (target tensorrt needs a GPU runner with the NVIDIA container toolkit)`,
      );
      expect(fs.readFileSync(path.join(path.dirname(model), 'lenet-int8.cache'), 'utf8')).toBe(fs.readFileSync(cache, 'utf8'));
      expect(fs.existsSync(path.join(path.dirname(model), 'lenet.plan.json'))).toBe(false);
    });
  });
});
