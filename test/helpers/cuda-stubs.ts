import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { REPO } from './caffe';
import { GPU_CACHE, cudart, providerLibs } from './gpu';
import { LAB, docker } from './lab';

/**
 * STAND-INS for a CUDA 13 base image and the NVIDIA driver library, for tests on machines without a GPU and without
 * Docker Hub (nvidia/cuda cannot be pulled here). What is real and what is not:
 *
 * - REAL: libcudart.so.13 (the nvidia-cuda-runtime wheel, see gpu.ts) and, mounted by the tests rather than copied
 *   into images (272 MB), ONNX Runtime's libonnxruntime_providers_{cuda,shared}.so (the onnxruntime-gpu wheel).
 * - STUBS, built here with the host's gcc:
 *   - libcublas.so.13 and libcublasLt.so.13: the real ones are ~500 MB. Generated from the symbols the real CUDA
 *     provider imports from them (`nm -D --undefined-only`, the ones versioned @libcublas.so.13 /
 *     @libcublasLt.so.13). The provider is linked with BIND_NOW, so every one of them must exist, with the same
 *     symbol version (a version script `libcublas.so.13 { global: *; };`). Each returns 1
 *     (CUBLAS_STATUS_NOT_INITIALIZED): no test gets as far as calling one, since there is no device.
 *     Both NEED the real libcudart.so.13 and libcublas NEEDs libcublasLt, so resolving them goes more than one
 *     level deep (the NEEDED lists of NVIDIA's own builds may differ).
 *   - libcurand.so.10: empty, with its soname: the provider NEEDs it but imports no symbol from it.
 *   - libcuda.so.1 (test/fixtures/gpu/libcuda-nodevice.c): a driver reporting CUDA 13.0 with no device. It is NOT
 *     in the base image: on a real node the NVIDIA container toolkit mounts the host's libcuda.so.1 at run time, so
 *     tests bind-mount this one (`-v <libcudaStub()>:/usr/lib/x86_64-linux-gnu/libcuda.so.1:ro`).
 *   - libcudnn.so.9: empty, with its soname: the provider loads cuDNN with dlopen (not through NEEDED), and the
 *     stage checks that the base image has it (src/image/basecheck.ts, LOADED_AT_RUN_TIME).
 * - ABSENT: nvrtc and the rest of the CUDA toolkit.
 *
 * The base image is FROM the lab's base image (LAB.baseImage), tagged with a content hash of all its inputs,
 * built once per machine (skipped when `docker image inspect` finds the tag) and pushed to the lab registry so that
 * buildx (docker or docker-container driver) can use it either way. Stubs are cached in .tmp/gpu/stubs/<hash>/.
 */

/** Bump when the generated stubs or the Dockerfile change shape (it is part of every hash). */
const GENERATOR = 'modelship cuda13 stubs v2';
const STUBS_CACHE = path.join(GPU_CACHE, 'stubs');
export const LIBCUDA_SOURCE = path.join(REPO, 'test/fixtures/gpu/libcuda-nodevice.c');
/** Where the stubs and the real cudart live in the stand-in base image (registered with ldconfig there). */
export const CUDA_LIB_DIR = '/usr/local/cuda/lib64';
/** Where the NVIDIA container toolkit mounts libcuda.so.1 in a Debian/Ubuntu image, and where tests mount the stub. */
export const LIBCUDA_MOUNT = '/usr/lib/x86_64-linux-gnu/libcuda.so.1';
/** The stubbed libraries whose symbols are generated from the provider's imports. */
const SYMBOL_STUBS = ['libcublasLt.so.13', 'libcublas.so.13'];

const sha256 = (...parts: (string | Buffer)[]): string => {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
};

/** The symbols the real CUDA provider imports from each stubbed library, sorted: `{ 'libcublas.so.13': [...] }`. */
export function providerImports(): Record<string, string[]> {
  const out = execFileSync('nm', ['-D', '--undefined-only', providerLibs().cuda], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const imports: Record<string, string[]> = Object.fromEntries(SYMBOL_STUBS.map((l) => [l, []]));
  for (const line of out.split('\n')) {
    const m = /^\s*U\s+([A-Za-z_][A-Za-z0-9_]*)@(\S+)$/.exec(line);
    if (m && imports[m[2]]) imports[m[2]].push(m[1]);
  }
  for (const [lib, syms] of Object.entries(imports)) {
    if (!syms.length)
      throw new Error(`the CUDA provider imports no symbol versioned @${lib}: has its build changed? (nm -D --undefined-only ${providerLibs().cuda})`);
    syms.sort();
  }
  return imports;
}

function gcc(args: string[], cwd: string): void {
  try {
    execFileSync('gcc', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`gcc ${args.join(' ')} failed: ${err.stderr?.toString() || err.message}`);
  }
}

/** Fill `dir` once: build into a temporary sibling, then rename (concurrent jest workers may race; both are equal). */
function once(dir: string, build: (tmp: string) => void): string {
  if (fs.existsSync(dir)) return dir;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  const tmp = fs.mkdtempSync(`${dir}.tmp-`);
  try {
    build(tmp);
    fs.chmodSync(tmp, 0o755); // mkdtemp makes it 0700
    try {
      fs.renameSync(tmp, dir);
    } catch (e) {
      if (!fs.existsSync(dir)) throw e; // another worker won the race
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/**
 * The stand-in CUDA libraries in one directory (also the Docker build context of the base image): the real
 * libcudart.so.13, the gcc-built stubs, their C sources and version scripts, cuda.conf and the Dockerfile.
 */
export function cudaStubLibDir(): string {
  const imports = providerImports();
  const realCudart = cudart();
  const key = sha256(GENERATOR, JSON.stringify(imports), fs.readFileSync(realCudart)).slice(0, 16);
  return once(path.join(STUBS_CACHE, `cuda13-${key}`), (tmp) => {
    fs.copyFileSync(realCudart, path.join(tmp, 'libcudart.so.13'));
    for (const lib of SYMBOL_STUBS) {
      const base = lib.replace(/\.so\.\d+$/, '');
      const c = [
        `/* STAND-IN for ${lib}, generated by test/helpers/cuda-stubs.ts: not NVIDIA's library. One function per symbol`,
        ` * the real ONNX Runtime CUDA provider imports from it; each returns CUBLAS_STATUS_NOT_INITIALIZED (1). */`,
        ...imports[lib].map((s) => `int ${s}(void) { return 1; }`),
        '',
      ].join('\n');
      fs.writeFileSync(path.join(tmp, `${base}.c`), c);
      // the version node named like the library gives every symbol the version the provider asks for (sym@lib)
      fs.writeFileSync(path.join(tmp, `${base}.map`), `${lib} { global: *; };\n`);
      const deps = lib === 'libcublas.so.13' ? ['-l:libcublasLt.so.13'] : [];
      gcc(
        [
          '-shared',
          '-fPIC',
          '-o',
          lib,
          `${base}.c`,
          `-Wl,-soname,${lib}`,
          `-Wl,--version-script=${base}.map`,
          '-Wl,--no-as-needed',
          '-L.',
          ...deps,
          '-l:libcudart.so.13',
        ],
        tmp,
      );
    }
    fs.writeFileSync(
      path.join(tmp, 'libcurand.c'),
      '/* STAND-IN for libcurand.so.10: empty; the CUDA provider NEEDs it but imports no symbol from it. */\nint modelship_curand_stub;\n',
    );
    gcc(['-shared', '-fPIC', '-o', 'libcurand.so.10', 'libcurand.c', '-Wl,-soname,libcurand.so.10'], tmp);
    fs.writeFileSync(
      path.join(tmp, 'libcudnn.c'),
      '/* STAND-IN for libcudnn.so.9: empty; the CUDA provider loads cuDNN with dlopen, and no test runs a convolution on a GPU. */\nint modelship_cudnn_stub;\n',
    );
    gcc(['-shared', '-fPIC', '-o', 'libcudnn.so.9', 'libcudnn.c', '-Wl,-soname,libcudnn.so.9'], tmp);
    fs.writeFileSync(path.join(tmp, 'cuda.conf'), `${CUDA_LIB_DIR}\n`);
    // no `# syntax=` line, no heredocs: the lab's engine (20.10) must build it with any builder
    fs.writeFileSync(
      path.join(tmp, 'Dockerfile'),
      [
        `# STAND-IN for a CUDA 13 runtime base image (nvidia/cuda cannot be pulled here): the real libcudart.so.13,`,
        `# stub cuBLAS/cuBLASLt/cuRAND/cuDNN (test/helpers/cuda-stubs.ts). No libcuda.so.1: mounted at run time, as the`,
        `# NVIDIA container toolkit does.`,
        `FROM ${LAB.baseImage}`,
        `COPY libcudart.so.13 libcublasLt.so.13 libcublas.so.13 libcurand.so.10 libcudnn.so.9 ${CUDA_LIB_DIR}/`,
        `COPY cuda.conf /etc/ld.so.conf.d/000-cuda.conf`,
        `RUN ldconfig`,
        `LABEL dev.modelship.test.stand-in="cuda13 stubs: real libcudart.so.13, stub libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9"`,
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(tmp, '.dockerignore'), '*.c\n*.map\n');
  });
}

/** The driver stand-in libcuda.so.1 built from test/fixtures/gpu/libcuda-nodevice.c; its host path, to bind-mount. */
export function libcudaStub(): string {
  const src = fs.readFileSync(LIBCUDA_SOURCE);
  const dir = once(path.join(STUBS_CACHE, `libcuda-${sha256(GENERATOR, src).slice(0, 16)}`), (tmp) => {
    fs.copyFileSync(LIBCUDA_SOURCE, path.join(tmp, 'libcuda-nodevice.c'));
    gcc(['-shared', '-fPIC', '-o', 'libcuda.so.1', 'libcuda-nodevice.c', '-Wl,-soname,libcuda.so.1'], tmp);
  });
  return path.join(dir, 'libcuda.so.1');
}

function inRegistry(ref: string): boolean {
  const m = /^([^/]+)\/(.+):([^:/]+)$/.exec(ref)!;
  try {
    execFileSync(
      'curl',
      ['-sf', '-o', '/dev/null', '-I', '-H', 'Accept: application/vnd.docker.distribution.manifest.v2+json', `http://${m[1]}/v2/${m[2]}/manifests/${m[3]}`],
      { stdio: 'pipe' },
    );
    return true;
  } catch {
    return false;
  }
}

let built: string | undefined;

/**
 * The stand-in CUDA 13 base image, `<lab registry>/modelship-test/cuda13-stub-base:<hash>`: in the engine's image
 * store and in the lab registry. Its hash covers the stubs, the real cudart, the Dockerfile and the lab base image's
 * ID, so a change to any of them builds a new one; otherwise this costs a `docker image inspect` and a registry HEAD.
 */
export function cudaStubBaseImage(): string {
  if (built) return built;
  const ctx = cudaStubLibDir();
  const baseId = docker(['image', 'inspect', '--format', '{{.Id}}', LAB.baseImage]).trim();
  const files = fs.readdirSync(ctx).sort();
  const hash = sha256(GENERATOR, baseId, ...files.flatMap((f) => [f, fs.readFileSync(path.join(ctx, f))])).slice(0, 16);
  const ref = `${LAB.registry}/modelship-test/cuda13-stub-base:${hash}`;
  let present = true;
  try {
    docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
  } catch {
    present = false;
  }
  if (!present) {
    try {
      docker(['build', '-q', '--network', 'none', '-t', ref, ctx]);
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`building the stand-in CUDA base image ${ref} from ${ctx} failed: ${err.stderr || err.message}`);
    }
  }
  if (!present || !inRegistry(ref)) docker(['push', ref]);
  built = ref;
  return ref;
}
