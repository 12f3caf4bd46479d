import { diagnoseCudaFailure } from '../src/serve/execution-provider';
import { providerLibs } from './helpers/gpu';
import { labDescribe } from './helpers/needs';

// The server's diagnosis of a CUDA failure (test/provider.test.ts) from the real provider libraries of the bundled
// ONNX Runtime version, read out of PyPI's onnxruntime-gpu wheel (.whl/, scripts/test.sh downloads it).
labDescribe(['gpu-wheels'])('provider choice: the cause named from the real provider libraries', () => {
  test('missing CUDA libraries, and a missing driver library, named with who needs them', () => {
    const msg = 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library';
    // the real provider libraries' NEEDED entries, resolved by a loader that knows only glibc and (maybe) libcuda
    const dir = providerLibs().dir;
    const glibc = new Set(['libdl.so.2', 'librt.so.1', 'libpthread.so.0', 'libstdc++.so.6', 'libm.so.6', 'libgcc_s.so.1', 'libc.so.6', 'ld-linux-x86-64.so.2']);
    expect(diagnoseCudaFailure(msg, dir, (l) => glibc.has(l))).toBe(
      'missing libraries libcublasLt.so.13 (needed by libonnxruntime_providers_cuda.so), libcublas.so.13 (needed by libonnxruntime_providers_cuda.so), libcurand.so.10 (needed by libonnxruntime_providers_cuda.so), libcudart.so.13 (needed by libonnxruntime_providers_cuda.so): the base image lacks the CUDA 13 / cuDNN 9 runtime',
    );
    expect(diagnoseCudaFailure(msg, dir, (l) => l !== 'libcuda.so.1')).toBe(
      'missing driver library libcuda.so.1 (needed by libonnxruntime_providers_cuda.so): no NVIDIA driver is mounted (run with --gpus / the NVIDIA container toolkit)',
    );
  });
});
