import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as http from 'http';
import * as crypto from 'crypto';
import { AddressInfo } from 'net';
import { spawnSync } from 'child_process';
import { runCli } from './helpers/cli';
import { fetchManifest } from '../src/shared/registry';
import { sha256 } from '../src/util/fsx';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { LAB, requireLab, docker } from './helpers/lab';
import { makeNupkg, providerLibs, GPU_CACHE } from './helpers/gpu';
import { releaseMirror } from './helpers/node-release';
import { resolveNodeRuntime, DEFAULT_NODE_VERSION } from '../src/image/node';
import { cudaStubBaseImage, libcudaStub, LIBCUDA_MOUNT } from './helpers/cuda-stubs';
import { labDescribe } from './helpers/needs';

// gpu: true on the real engine, buildx and registry, without a GPU. What stands in, and why:
// - the .nupkg: NuGet cannot be reached from here, so the package is Microsoft.ML.OnnxRuntime.Gpu.Linux's layout
//   filled with the REAL provider libraries of the same ONNX Runtime version from PyPI's onnxruntime-gpu wheel
//   (test/helpers/gpu.ts), served by a local HTTP server as a mirror (provider-package + provider-package-sha256);
// - the base image: nvidia/cuda cannot be pulled here; cudaStubBaseImage() has the REAL libcudart.so.13 and gcc-built
//   stubs with the real sonames/symbols for cuBLAS/cuRAND (test/helpers/cuda-stubs.ts);
// - the driver: the NVIDIA container toolkit would mount the host's libcuda.so.1; the tests mount a stub of it that
//   reports a CUDA 13 driver with no device, so the real cudart answers "no CUDA-capable device is detected".
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'gpu-wheels', 'node24']);

const work = tmpDir('modelship-gpu-');
const repo = `${LAB.registry}/modelship-test/gpu-lenet-${process.pid}`;
const toolCache = path.join(work, 'tool-cache');
let base = '';
let mirror = '';
let nupkgSha = '';
let requests = 0;
let server: http.Server;
let image = '';

/** The converted model of a fixture net (made in beforeAll). */
const convert = (net: string): string => path.join(work, net, 'model.onnx');

beforeAll(async () => {
  requireLab();
  // a tool cache of this file's own (the provider downloads are counted), with the pinned Node.js release in it
  process.env.RUNNER_TOOL_CACHE = toolCache;
  process.env.RUNNER_TEMP = path.join(work, 'runner-temp');
  fs.mkdirSync(process.env.RUNNER_TEMP, { recursive: true });
  const nodeDist = await releaseMirror(DEFAULT_NODE_VERSION);
  await resolveNodeRuntime({ nodeBinary: '', nodeVersion: DEFAULT_NODE_VERSION, nodeMirror: nodeDist.url }, { info: () => undefined }).finally(() =>
    nodeDist.close(),
  );
  const pkg = path.join(GPU_CACHE, 'Microsoft.ML.OnnxRuntime.Gpu.Linux.1.30.0.nupkg');
  if (!fs.existsSync(pkg)) makeNupkg(pkg, '1.30.0');
  nupkgSha = sha256(fs.readFileSync(pkg));
  server = http.createServer((req, res) => {
    requests++;
    if (req.url === '/mirror/onnxruntime-gpu-linux.1.30.0.nupkg') {
      res.writeHead(200, { 'content-length': fs.statSync(pkg).size });
      fs.createReadStream(pkg).pipe(res);
    } else {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mirror/onnxruntime-gpu-linux.1.30.0.nupkg`;
  base = cudaStubBaseImage();
  for (const net of ['lenet', 'lenet_v1']) {
    const d = path.join(FIXTURES, net);
    const files = fs.readdirSync(d);
    const proto = files.find((f) => f.endsWith('.prototxt'))!;
    const weights = files.find((f) => f.endsWith('.caffemodel'))!;
    const r = await runCli(['convert', '--prototxt', path.join(d, proto), '--caffemodel', path.join(d, weights), '--out', convert(net)]);
    expect(r.code).toBe(0);
  }
});

afterAll(async () => {
  if (server) await new Promise((r) => server.close(r));
});

const imageArgs = (model: string, extra: string[]) => [
  'image',
  '--image',
  repo,
  '--model',
  model,
  '--model-name',
  'lenet',
  '--gpu',
  '--revision',
  crypto.randomBytes(20).toString('hex'),
  '--ref',
  'refs/heads/main',
  '--compose-file',
  path.join(work, 'compose.yml'),
  '--provider-package',
  mirror,
  '--provider-package-sha256',
  nupkgSha,
  '--json',
  ...extra,
];

async function tagsOf(r: string): Promise<number> {
  const [host, ...rest] = r.split('/');
  return new Promise((resolve, reject) =>
    http.get(`http://${host}/v2/${rest.join('/')}/tags/list`, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject),
  );
}

describeLab('gpu: true — the CUDA provider in the image', () => {
  test('a base image that cannot load the providers is refused before the build, naming the libraries and the image', async () => {
    const before = requests;
    const r = await runCli(imageArgs(convert('lenet'), ['--base-image', LAB.baseImage]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        `base image "${LAB.baseImage}" cannot load libonnxruntime_providers_cuda\\.so: libcublasLt\\.so\\.13, libcublas\\.so\\.13, libcurand\\.so\\.10, libcudart\\.so\\.13`,
      ),
    );
    expect(r.stderr).not.toMatch(/docker buildx build/);
    expect(await tagsOf(repo)).toBe(404); // nothing was pushed
    // the package itself was fine: downloaded once, verified, and kept in the tool cache
    expect(requests - before).toBe(1);
    expect(fs.readdirSync(path.join(toolCache, 'onnxruntime-gpu-linux', '1.30.0', 'x64'))).toEqual(
      expect.arrayContaining(['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']),
    );
  });

  test('a provider package with the wrong sha256 is refused before the build, naming the URL', async () => {
    const args = imageArgs(convert('lenet'), ['--base-image', base]);
    args[args.indexOf('--provider-package-sha256') + 1] = 'f'.repeat(64);
    const r = await runCli(args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(mirror);
    expect(r.stderr).toMatch(/sha256/);
    expect(r.stderr).not.toMatch(/docker buildx build/);
    expect(await tagsOf(repo)).toBe(404);
    // the cached, verified package is not what that sha256 names: fetched again, refused, and the cache left as it was
    const provenance = JSON.parse(fs.readFileSync(path.join(toolCache, 'onnxruntime-gpu-linux', '1.30.0', 'x64', 'modelship-provenance.json'), 'utf8'));
    expect(provenance.sha256).toBe(nupkgSha);
  });

  test('a base that resolves them builds; the providers sit beside libonnxruntime.so.1; a second build downloads nothing; a model-only change pushes one layer', async () => {
    const before = requests;
    const r = await runCli(imageArgs(convert('lenet'), ['--base-image', base]));
    expect(r.stderr).not.toMatch(/error:/);
    expect(r.code).toBe(0);
    expect(requests - before).toBe(0); // from the tool cache
    image = r.json().image;
    const meta = JSON.parse(r.json().metadata);
    expect(meta.labels['dev.modelship.onnxruntime.provider']).toBe('cuda');
    expect(meta.labels['dev.modelship.onnxruntime.provider-package']).toBe(`Microsoft.ML.OnnxRuntime.Gpu.Linux 1.30.0 sha256:${nupkgSha}`);
    // in the build context, and in the pushed image beside libonnxruntime.so.1, byte for byte the package's libraries
    const ctx = path.join(os.tmpdir(), 'modelship-build', sha256(repo).slice(0, 16), 'providers');
    expect(fs.readdirSync(ctx).sort()).toEqual(['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so']);
    const listing = docker([
      'run',
      '--rm',
      '--entrypoint',
      'sha256sum',
      image,
      '/opt/modelship/dist/bin/napi-v6/linux/x64/libonnxruntime.so.1',
      '/opt/modelship/dist/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so',
      '/opt/modelship/dist/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so',
    ]);
    expect(listing).toContain(
      `${sha256(fs.readFileSync(providerLibs().shared))}  /opt/modelship/dist/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so`,
    );
    expect(listing).toContain(`${sha256(fs.readFileSync(providerLibs().cuda))}  /opt/modelship/dist/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so`);
    expect(JSON.parse(docker(['image', 'inspect', image]))[0].Config.Env).toContain('MODELSHIP_PROVIDER=cuda');
    // the official Node.js release (from the tool cache) with its LICENSE
    expect(docker(['run', '--rm', '--entrypoint', '/opt/modelship/node/bin/node', image, '--version']).trim()).toBe(`v${DEFAULT_NODE_VERSION}`);
    expect(docker(['run', '--rm', '--entrypoint', 'head', image, '-c', '200', '/opt/modelship/node/LICENSE'])).toMatch(/Node\.js is licensed/);
    expect(meta.labels['dev.modelship.node.version']).toBe(DEFAULT_NODE_VERSION);

    // the same providers, another model: no download, and only the model layer is new
    const again = await runCli(imageArgs(convert('lenet_v1'), ['--base-image', base]));
    expect(again.code).toBe(0);
    expect(requests - before).toBe(0);
    const [a, b] = [await fetchManifest(image), await fetchManifest(again.json().image)];
    expect(b.layers.length).toBe(a.layers.length);
    expect(b.layers.slice(0, -1).map((l) => l.digest)).toEqual(a.layers.slice(0, -1).map((l) => l.digest));
    expect(b.layers[b.layers.length - 1].digest).not.toBe(a.layers[a.layers.length - 1].digest);
  });

  test('strict CUDA: the container exits non-zero naming the cause; cuda,cpu serves on the CPU and says so', async () => {
    expect(image).not.toBe('');
    const run = (name: string, args: string[]) => {
      docker(['rm', '-f', name]);
      docker(['run', '-d', '--name', name, '-p', '127.0.0.1::8000', ...args, image]);
    };
    const waitExit = async (name: string): Promise<number> => {
      for (let i = 0; i < 240; i++) {
        const st = JSON.parse(docker(['inspect', name]))[0].State;
        if (!st.Running) return st.ExitCode as number;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`${name} did not exit`);
    };
    const logsOf = (name: string) => {
      const r = spawnSync('docker', ['logs', name], { encoding: 'utf8' });
      return `${r.stdout}${r.stderr}`;
    };
    const names = [`gpu-nodriver-${process.pid}`, `gpu-nodevice-${process.pid}`, `gpu-fallback-${process.pid}`];
    try {
      // no driver mounted (docker run without the NVIDIA runtime)
      run(names[0], []);
      expect(await waitExit(names[0])).not.toBe(0);
      expect(logsOf(names[0])).toMatch(
        /the CUDA execution provider cannot be created: missing driver library libcuda\.so\.1 \(needed by libonnxruntime_providers_cuda\.so\): no NVIDIA driver is mounted/,
      );
      // a driver, no device: the real cudart's own words
      run(names[1], ['-v', `${libcudaStub()}:${LIBCUDA_MOUNT}:ro`]);
      expect(await waitExit(names[1])).not.toBe(0);
      expect(logsOf(names[1])).toMatch(
        /the CUDA execution provider cannot be created: no CUDA device \(CUDA failure 100: no CUDA-capable device is detected\)/,
      );
      // the fallback, asked for explicitly
      run(names[2], ['-v', `${libcudaStub()}:${LIBCUDA_MOUNT}:ro`, '-e', 'MODELSHIP_PROVIDER=cuda,cpu']);
      const port = docker(['port', names[2], '8000/tcp']).trim().split('\n')[0].split(':').pop();
      let meta: any;
      for (let i = 0; i < 120 && !meta; i++) {
        meta = await new Promise((resolve) =>
          http
            .get(`http://127.0.0.1:${port}/v2/models/lenet`, (res) => {
              let b = '';
              res.on('data', (c) => (b += c));
              res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(b) : undefined));
            })
            .on('error', () => resolve(undefined)),
        );
        if (!meta) await new Promise((r) => setTimeout(r, 250));
      }
      expect(meta.parameters).toMatchObject({ execution_provider: 'cpu', requested_provider: 'cuda,cpu' });
      expect(meta.parameters.provider_fallback).toMatch(/CUDA failure 100: no CUDA-capable device is detected/);
      expect(logsOf(names[2])).toMatch(/CUDA execution provider unavailable: no CUDA device .*; serving on the CPU, as cuda,cpu allows/);
    } finally {
      for (const n of names) docker(['rm', '-f', n]);
    }
  });
});
