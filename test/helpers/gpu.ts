import * as fs from 'fs';
import * as path from 'path';
import AdmZip from 'adm-zip';
import { REPO } from './caffe';

/**
 * Real GPU runtime files without a GPU: the wheels of test/requirements-gpu.txt (scripts/test.sh downloads them
 * into .whl/ from PyPI). PyPI's onnxruntime-gpu of the bundled onnxruntime-node's version carries the same
 * libonnxruntime_providers_{cuda,shared}.so as the NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux, which this
 * machine cannot reach; nvidia-cuda-runtime carries the real libcudart.so.13.
 */
export const WHEELS = path.join(REPO, '.whl');
export const GPU_CACHE = path.join(REPO, '.tmp', 'gpu');

function wheel(prefix: string): string {
  const w = fs.existsSync(WHEELS) ? fs.readdirSync(WHEELS).find((f) => f.startsWith(prefix) && f.endsWith('.whl')) : undefined;
  if (!w) throw new Error(`no ${prefix}*.whl in ${WHEELS}: scripts/test.sh downloads test/requirements-gpu.txt there`);
  return path.join(WHEELS, w);
}

/** Extract `entry` of a wheel (once) into .tmp/gpu/<subdir>/ and return its path. */
function fromWheel(prefix: string, entry: string, subdir: string): string {
  const out = path.join(GPU_CACHE, subdir, path.basename(entry));
  if (!fs.existsSync(out)) {
    const data = new AdmZip(wheel(prefix)).readFile(entry);
    if (!data) throw new Error(`${entry} is not in ${wheel(prefix)}`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(`${out}.tmp`, data, { mode: 0o755 });
    fs.renameSync(`${out}.tmp`, out);
  }
  return out;
}

/** The real ONNX Runtime CUDA provider libraries (onnxruntime-gpu wheel of the bundled version). */
export function providerLibs(): { dir: string; cuda: string; shared: string } {
  const cuda = fromWheel('onnxruntime_gpu-', 'onnxruntime/capi/libonnxruntime_providers_cuda.so', 'providers');
  const shared = fromWheel('onnxruntime_gpu-', 'onnxruntime/capi/libonnxruntime_providers_shared.so', 'providers');
  return { dir: path.dirname(cuda), cuda, shared };
}

/** The real CUDA 13 runtime library (nvidia-cuda-runtime wheel). */
export function cudart(): string {
  return fromWheel('nvidia_cuda_runtime-', 'nvidia/cu13/lib/libcudart.so.13', 'cudart');
}

/**
 * A .nupkg in the layout of Microsoft.ML.OnnxRuntime.Gpu.Linux (a zip: the .nuspec at the root, native libraries
 * under runtimes/linux-x64/native/), holding the real provider libraries. `truncate` cuts the archive short.
 */
export function makeNupkg(out: string, version: string, opts: { truncate?: boolean } = {}): Buffer {
  const libs = providerLibs();
  const zip = new AdmZip();
  zip.addFile(
    'Microsoft.ML.OnnxRuntime.Gpu.Linux.nuspec',
    Buffer.from(
      `<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata><id>Microsoft.ML.OnnxRuntime.Gpu.Linux</id><version>${version}</version><authors>test</authors><description>test repackaging of the onnxruntime-gpu wheel's providers</description></metadata></package>\n`,
    ),
  );
  zip.addFile('runtimes/linux-x64/native/libonnxruntime_providers_cuda.so', fs.readFileSync(libs.cuda));
  zip.addFile('runtimes/linux-x64/native/libonnxruntime_providers_shared.so', fs.readFileSync(libs.shared));
  let bytes = zip.toBuffer();
  if (opts.truncate) bytes = bytes.subarray(0, Math.floor(bytes.length * 0.6));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, bytes);
  return bytes;
}
