import * as fs from 'fs';
import * as path from 'path';
import * as http from 'http';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, ServeOptions } from '../src/serve/server';
import { serveOptions } from '../src/serve/main';
import { parseProvider, diagnoseCudaFailure } from '../src/serve/execution-provider';
import { FIXTURES, tmpDir } from './helpers/caffe';

// The server's execution provider: strict `cuda` (no CUDA provider, no server: the cause is named), `cuda,cpu`
// (an explicit fallback, stated in the log, the model metadata and a metric label). No GPU here: the in-process
// server runs onnxruntime-node as installed, whose package has no CUDA provider library at all.

function lenetModel(): string {
  const d = path.join(FIXTURES, 'lenet');
  const conv = convertCaffe({
    prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
    prototxtFile: 'p',
    caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
    caffemodelFile: 'w',
  });
  const f = path.join(tmpDir(), 'lenet.onnx');
  fs.writeFileSync(f, conv.onnx);
  return f;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      })
      .on('error', reject);
  });
}

describe('provider choice', () => {
  test('cpu, cuda (strict) and cuda,cpu (fallback allowed); anything else names the flag', () => {
    expect(parseProvider('cpu')).toEqual({ requested: 'cpu', wanted: 'cpu', fallback: false });
    expect(parseProvider('cuda')).toEqual({ requested: 'cuda', wanted: 'cuda', fallback: false });
    expect(parseProvider('CUDA, cpu')).toEqual({ requested: 'cuda,cpu', wanted: 'cuda', fallback: true });
    expect(() => parseProvider('gpu')).toThrow(/--provider \/ MODELSHIP_PROVIDER must be one of cpu, cuda, cuda,cpu .*got "gpu"/);
    expect(serveOptions([], { MODELSHIP_MODEL: 'm.onnx', MODELSHIP_PROVIDER: 'cuda,cpu' }, () => undefined).provider.fallback).toBe(true);
    expect(serveOptions(['--model', 'm.onnx', '--provider', 'cuda'], { MODELSHIP_PROVIDER: 'cuda,cpu' }, () => undefined).provider.fallback).toBe(false);
  });

  // the missing CUDA and driver libraries, named from the real provider libraries: provider.tools.test.ts
  test('the cause is named: no device, old driver, stub driver, missing provider library', () => {
    const ortMsg = (code: number, text: string) =>
      `/onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:154 std::conditional_t<THRW, void, Status> onnxruntime::CudaCall(...) CUDA failure ${code}: ${text} ; GPU=-1 ; hostname=vm ; file=cuda_execution_provider.cc ; line=352 ; expr=cudaSetDevice(info_.device_id); `;
    const none = tmpDir();
    expect(diagnoseCudaFailure(ortMsg(100, 'no CUDA-capable device is detected'), none)).toBe(
      'no CUDA device (CUDA failure 100: no CUDA-capable device is detected): run the container with --gpus or on a node with nvidia.com/gpu',
    );
    expect(diagnoseCudaFailure(ortMsg(35, 'CUDA driver version is insufficient for CUDA runtime version'), none)).toMatch(
      /^the NVIDIA driver is too old for the CUDA runtime \(CUDA failure 35: .*\): CUDA 13 needs driver 580 or newer$/,
    );
    expect(diagnoseCudaFailure(ortMsg(34, 'CUDA driver is a stub library'), none)).toMatch(/stub/);
    const msg = 'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library';
    expect(diagnoseCudaFailure(msg, none)).toBe(
      `libonnxruntime_providers_shared.so is missing from ${none}: the image was built without the CUDA provider (build it with gpu: true)`,
    );
  });
});

describe('the server on a build without the CUDA provider', () => {
  const opts = (model: string, provider: string, log: string[]): ServeOptions => ({
    ...DEFAULT_SERVE,
    host: '127.0.0.1',
    port: 0,
    modelPath: model,
    modelName: 'lenet',
    provider: parseProvider(provider),
    log: (l) => log.push(l),
  });

  test('cuda (strict) refuses to start, naming the cause', async () => {
    const log: string[] = [];
    await expect(startServer(opts(lenetModel(), 'cuda', log))).rejects.toThrow(
      /the CUDA execution provider cannot be created: libonnxruntime_providers_shared\.so is missing from .*: the image was built without the CUDA provider \(build it with gpu: true\) \(MODELSHIP_PROVIDER=cuda allows no fallback/,
    );
  });

  test('cuda,cpu serves on the CPU and says so: log, model metadata, metric label', async () => {
    const log: string[] = [];
    const srv = await startServer(opts(lenetModel(), 'cuda,cpu', log));
    try {
      expect(srv.provider).toBe('cpu');
      expect(log.join('\n')).toMatch(
        /CUDA execution provider unavailable: libonnxruntime_providers_shared\.so is missing .*; serving on the CPU, as cuda,cpu allows/,
      );
      const meta = JSON.parse((await get(`${srv.url}/v2/models/lenet`)).body);
      expect(meta.parameters).toMatchObject({ execution_provider: 'cpu', requested_provider: 'cuda,cpu' });
      expect(meta.parameters.provider_fallback).toMatch(/libonnxruntime_providers_shared\.so is missing/);
      expect((await get(`${srv.url}/metrics`)).body).toMatch(/^modelship_execution_provider\{provider="cpu",requested="cuda,cpu",fallback="true"\} 1$/m);
    } finally {
      await srv.drain();
    }
  });

  test('cpu: no fallback to report', async () => {
    const srv = await startServer(opts(lenetModel(), 'cpu', []));
    try {
      const meta = JSON.parse((await get(`${srv.url}/v2/models/lenet`)).body);
      expect(meta.parameters).toMatchObject({ execution_provider: 'cpu', requested_provider: 'cpu' });
      expect(meta.parameters.provider_fallback).toBeUndefined();
      expect((await get(`${srv.url}/metrics`)).body).toMatch(/^modelship_execution_provider\{provider="cpu",requested="cpu",fallback="false"\} 1$/m);
    } finally {
      await srv.drain();
    }
  });
});
