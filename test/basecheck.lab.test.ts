import * as fs from 'fs';
import * as path from 'path';
import { execFileSync, spawnSync } from 'child_process';
import { DEFAULT_GPU_BASE_IMAGE, checkBaseImageLoads } from '../src/image/basecheck';
import { ModelshipError } from '../src/util/errors';
import { tmpDir } from './helpers/caffe';
import { CUDA_LIB_DIR, LIBCUDA_MOUNT, cudaStubBaseImage, libcudaStub } from './helpers/cuda-stubs';
import { providerLibs } from './helpers/gpu';
import { LAB, docker, requireLab } from './helpers/lab';
import { labDescribe } from './helpers/needs';

// The base-image check (test/basecheck.test.ts: its pure part) against real images.
// The real engine (lab/up.sh docker) and the real provider libraries of ONNX Runtime 1.30.0.
labDescribe(['docker', 'registry', 'gpu-wheels'])('against real base images', () => {
  jest.setTimeout(180_000);
  let stubBase: string;
  let libs: { dir: string; cuda: string; shared: string };
  const lines: string[] = [];
  const log = { info: (l: string) => lines.push(l) };

  beforeAll(() => {
    requireLab();
    libs = providerLibs();
    stubBase = cudaStubBaseImage();
  });

  test('the lab base image (plain Debian) is refused, naming each missing library, the provider and the image', async () => {
    const err = await checkBaseImageLoads(LAB.baseImage, [libs.cuda, libs.shared], log).then(
      () => undefined,
      (e) => e,
    );
    expect(err).toBeInstanceOf(ModelshipError);
    expect((err as ModelshipError).code).toBe('input');
    const msg = (err as Error).message;
    expect(msg).toContain(`base image "${LAB.baseImage}" cannot load libonnxruntime_providers_cuda.so:`);
    for (const name of ['libcudart.so.13', 'libcublas.so.13', 'libcublasLt.so.13', 'libcurand.so.10', 'libcudnn.so.9']) expect(msg).toContain(name); // cuDNN: loaded at run time
    expect(msg).toContain('(needed by libonnxruntime_providers_cuda.so)');
    expect(msg).toContain(DEFAULT_GPU_BASE_IMAGE);
    expect(msg).not.toContain('libcuda.so.1');
    expect(msg).not.toContain('libonnxruntime_providers_shared.so');
  });

  test('the CUDA 13 stand-in base image passes; libcuda.so.1 is left to the container toolkit', async () => {
    lines.length = 0;
    const r = await checkBaseImageLoads(stubBase, [libs.cuda, libs.shared], log);
    for (const name of ['libcudart.so.13', 'libcublas.so.13', 'libcublasLt.so.13', 'libcurand.so.10']) expect(r.resolved[name]).toBe(`${CUDA_LIB_DIR}/${name}`);
    expect(r.resolved['libstdc++.so.6']).toMatch(/x86_64-linux-gnu\/libstdc\+\+\.so\.6$/);
    expect(r.resolved['libcuda.so.1']).toBeUndefined();
    expect(r.exempt).toEqual(['libcuda.so.1']);
    expect(lines.join('\n')).toContain(`base image "${stubBase}" provides libcublasLt.so.13 (${CUDA_LIB_DIR}/libcublasLt.so.13)`);
  });

  test('a base image that does not exist fails naming it and what docker said', async () => {
    const missing = `${LAB.registry}/modelship-test/no-such-base:missing`;
    await expect(checkBaseImageLoads(missing, [libs.shared], log)).rejects.toThrow(
      new RegExp(`^cannot run ldconfig -p in base image "${missing.replace(/[.]/g, '\\.')}" .*\\(exit 125\\): .*(manifest unknown|not found)`),
    );
  });

  test('ldconfig is found in /sbin when not on PATH; an image without one fails naming it', async () => {
    const noPath = `${LAB.registry}/modelship-test/no-path:${stubBase.split(':').pop()}`;
    execFileSync('docker', ['build', '-q', '-t', noPath, '-'], { input: `FROM ${stubBase}\nENV PATH=/nonexistent\n`, stdio: ['pipe', 'pipe', 'pipe'] });
    const r = await checkBaseImageLoads(noPath, [libs.shared], log);
    expect(r.resolved['libc.so.6']).toMatch(/x86_64-linux-gnu\/libc\.so\.6$/);
    await expect(checkBaseImageLoads(LAB.busybox, [libs.shared], log)).rejects.toThrow(
      new RegExp(`^cannot run ldconfig -p in base image "${LAB.busybox}" .*\\(no ldconfig on its PATH nor in /sbin: .*/sbin/ldconfig.*no such file`),
    );
  });

  test('the stand-ins are faithful: the real CUDA provider loads with every symbol bound, real cudart sees no device', () => {
    // a dlopen of the provider itself cannot be tested without ONNX Runtime: its initialisers call Provider_GetHost(),
    // which ORT sets up. So: the loader's own trace with BIND_NOW + LD_WARN (every symbol of every library looked up,
    // versions included), and a host-built probe that makes the real cudart talk to the driver stand-in.
    const dir = tmpDir('modelship-basecheck-');
    try {
      fs.writeFileSync(
        path.join(dir, 'probe.c'),
        `#include <dlfcn.h>
#include <stdio.h>
int main(void) {
  void *rt = dlopen("libcudart.so.13", RTLD_NOW);
  if (!rt) { printf("dlopen failed: %s\\n", dlerror()); return 1; }
  int (*driver)(int *) = (int (*)(int *))dlsym(rt, "cudaDriverGetVersion");
  int (*count)(int *) = (int (*)(int *))dlsym(rt, "cudaGetDeviceCount");
  const char *(*str)(int) = (const char *(*)(int))dlsym(rt, "cudaGetErrorString");
  if (!driver || !count || !str) { printf("cudart symbols missing\\n"); return 2; }
  int v = 0, n = -1, e = driver(&v);
  printf("cudaDriverGetVersion: %d (error %d)\\n", v, e);
  e = count(&n);
  printf("cudaGetDeviceCount: CUDA failure %d: %s\\n", e, str(e));
  return 0;
}
`,
      );
      execFileSync('gcc', ['-O', '-o', path.join(dir, 'probe'), path.join(dir, 'probe.c')]);
      const ldso = '/lib64/ld-linux-x86-64.so.2';
      const trace = 'LD_TRACE_LOADED_OBJECTS=1 LD_WARN=yes LD_BIND_NOW=yes';
      const script = [
        `echo '== list'; ${ldso} --list /opt/ort/libonnxruntime_providers_cuda.so 2>&1; echo "rc=$?"`,
        `echo '== bind'; ${trace} ${ldso} --preload /opt/ort/libonnxruntime_providers_shared.so /opt/ort/libonnxruntime_providers_cuda.so 2>&1`,
        // the control: without the shared provider ORT loads first, Provider_GetHost is unbound (so the trace checks)
        `echo '== control'; ${trace} ${ldso} /opt/ort/libonnxruntime_providers_cuda.so 2>&1`,
        `echo '== cudart'; /probe 2>&1; echo "rc=$?"`,
      ].join('\n');
      const r = spawnSync(
        'docker',
        [
          'run',
          '--rm',
          '--network',
          'none',
          '-v',
          `${libcudaStub()}:${LIBCUDA_MOUNT}:ro`,
          '-v',
          `${libs.cuda}:/opt/ort/libonnxruntime_providers_cuda.so:ro`,
          '-v',
          `${libs.shared}:/opt/ort/libonnxruntime_providers_shared.so:ro`,
          '-v',
          `${path.join(dir, 'probe')}:/probe:ro`,
          '--entrypoint',
          'sh',
          stubBase,
          '-c',
          script,
        ],
        { encoding: 'utf8' },
      );
      expect(r.stderr).toBe('');
      const part = (name: string) => r.stdout.split(`== ${name}\n`)[1].split('\n== ')[0];
      const list = part('list');
      expect(list).not.toMatch(/not found/);
      expect(list).toContain('rc=0');
      for (const name of ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13'])
        expect(list).toContain(`${name} => ${CUDA_LIB_DIR}/${name}`);
      expect(list).toMatch(/libcuda\.so\.1 => \S*\/x86_64-linux-gnu\/libcuda\.so\.1/);
      const bind = part('bind');
      expect(bind).toContain('/opt/ort/libonnxruntime_providers_shared.so');
      expect(bind).not.toMatch(/undefined symbol|symbol lookup error|not found|version .* not/);
      expect(part('control')).toContain('undefined symbol: Provider_GetHost');
      const probe = part('cudart');
      expect(probe).toContain('cudaDriverGetVersion: 13000 (error 0)');
      expect(probe).toContain('cudaGetDeviceCount: CUDA failure 100: no CUDA-capable device is detected');
      expect(probe).toContain('rc=0');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the stand-in image carries no libcuda.so.1 of its own and is in the lab registry', () => {
    expect(docker(['run', '--rm', '--network', 'none', '--entrypoint', 'ldconfig', stubBase, '-p'])).not.toContain('libcuda.so.1');
    const [repo, tag] = stubBase.slice(LAB.registry.length + 1).split(':');
    expect(execFileSync('curl', ['-sf', `http://${LAB.registry}/v2/${repo}/tags/list`], { encoding: 'utf8' })).toContain(tag);
  });
});
