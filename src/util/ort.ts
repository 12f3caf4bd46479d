import * as fs from 'fs';
import * as path from 'path';
import type * as OrtModule from 'onnxruntime-node';
import { NpyArray } from './npy';
import { ModelshipError } from './errors';

/** onnxruntime is loaded on first use: converting without a parity check never maps its 45 MB library. */
let ortModule: typeof OrtModule | undefined;
export function loadOrt(): typeof OrtModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, synchronously: the native library maps only when needed
  ortModule ??= require('onnxruntime-node') as typeof OrtModule;
  return ortModule;
}

/**
 * The directory of libonnxruntime.so.1, where ONNX Runtime also looks for its provider libraries: dist/bin/… in the
 * bundle (and the image), onnxruntime-node's own bin/… when run from source.
 */
export function ortLibDir(): string {
  const sub = ['bin', 'napi-v6', process.platform, process.arch];
  // (joined at run time: a literal path next to __dirname would make ncc copy the directory into the bundle)
  const candidates = [path.join(__dirname, ...sub), path.join(path.dirname(path.dirname(__dirname)), 'node_modules', 'onnxruntime-node', ...sub)];
  return candidates.find((d) => fs.existsSync(path.join(d, 'libonnxruntime.so.1'))) ?? candidates[0];
}

export interface OrtRun {
  outputs: Record<string, NpyArray>;
  runtime: string;
}

/**
 * Run an ONNX model (bytes) once on the CPU execution provider. `optimization` 'disabled' runs the graph as
 * written (what the converter emitted, no fusions); 'all' is what a deployment would run.
 */
export async function runOnnx(
  model: Uint8Array,
  feeds: Record<string, NpyArray>,
  outputNames: string[],
  optimization: 'disabled' | 'basic' | 'extended' | 'all' = 'disabled',
): Promise<OrtRun> {
  const ort = loadOrt();
  let session: OrtModule.InferenceSession;
  try {
    session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], graphOptimizationLevel: optimization });
  } catch (e) {
    throw new ModelshipError('graph', `onnxruntime rejected the converted model: ${(e as Error).message}`);
  }
  try {
    const inputs: Record<string, OrtModule.Tensor> = {};
    for (const [name, arr] of Object.entries(feeds)) inputs[name] = new ort.Tensor('float32', arr.data, arr.shape);
    const res = await session.run(inputs, outputNames);
    const outputs: Record<string, NpyArray> = {};
    for (const name of outputNames) {
      const t = res[name];
      // copy out of onnxruntime's buffers: they may belong to the session's allocator, which release() frees
      outputs[name] = { shape: t.dims.map(Number), data: new Float32Array(t.data as Float32Array) };
    }
    return { outputs, runtime: `onnxruntime-node ${ort.env.versions.node} (cpu, graph optimization ${optimization})` };
  } catch (e) {
    throw new ModelshipError('graph', `onnxruntime failed to run the converted model: ${(e as Error).message}`);
  } finally {
    await session.release();
  }
}
