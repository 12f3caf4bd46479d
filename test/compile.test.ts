import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { onnxSchema } from '../src/formats/schema/onnx';
import { planTensorRT, parseTensorRTVersion, parseNvidiaSmi } from '../src/compile/tensorrt';
import { checkPlanCompatibility } from '../src/shared/tensorrt';
import { parseBatches } from '../src/shared/inputs';
import { readNpy, encodeNpy } from '../src/util/npy';
import { toHalf } from '../src/compile/fp16';
import { FIXTURES, tmpDir } from './helpers/caffe';

const run = runCli;

function ops(file: string): string[] {
  const M = onnxSchema().lookupType('onnx.ModelProto');
  const m = M.toObject(M.decode(fs.readFileSync(file))) as { graph: { node: { op_type: string }[] } };
  return m.graph.node.map((n) => n.op_type);
}

async function convert(net: string, dir: string): Promise<string> {
  const d = path.join(FIXTURES, net);
  const out = path.join(dir, `${net}.onnx`);
  const r = await run(['convert', '--prototxt', path.join(d, 'deploy.prototxt'), '--caffemodel', path.join(d, 'weights.caffemodel'), '--out', out]);
  expect(r.code).toBe(0);
  return out;
}

describe('compile: onnxruntime target', () => {
  test('writes an ORT-optimized ONNX (BatchNorm folded), its metadata, and re-checks parity', async () => {
    const dir = tmpDir();
    const model = await convert('zoo_conv', dir);
    expect(ops(model)).toContain('BatchNormalization');
    const r = await run(['compile', '--model', model, '--reference', path.join(FIXTURES, 'zoo_conv'), '--json']);
    expect(r.stderr).toMatch(/Optimize with ONNX Runtime \(extended, for the cpu execution provider\)/);
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout);
    expect(o).toMatchObject({
      'artifact-path': path.join(dir, 'zoo_conv.ort.onnx'),
      'artifact-metadata': path.join(dir, 'zoo_conv.ort.onnx.json'),
      'compile-parity': 'pass',
    });
    expect(ops(o['artifact-path'])).not.toContain('BatchNormalization');
    const meta = JSON.parse(fs.readFileSync(o['artifact-metadata'], 'utf8'));
    expect(meta).toMatchObject({
      format: 'onnxruntime',
      sha256: o['artifact-sha256'],
      onnxruntime: { executionProvider: 'cpu', graphOptimizationLevel: 'extended' },
      parity: { status: 'pass' },
    });
    expect(meta.onnxruntime.version).toMatch(/^\d+\.\d+/);
    expect(meta.inputs).toEqual([{ name: 'data', shape: ['N', 3, 13, 11], elemType: 1 }]);
  });

  test('cuda: provider-independent optimizations only, recorded', async () => {
    const dir = tmpDir();
    const model = await convert('lenet', dir);
    const r = await run(['compile', '--model', model, '--execution-provider', 'cuda', '--artifact', path.join(dir, 'gpu.onnx'), '--json']);
    expect(r.code).toBe(0);
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'gpu.onnx.json'), 'utf8'));
    expect(meta.onnxruntime).toMatchObject({ executionProvider: 'cuda', graphOptimizationLevel: 'basic' });
    expect(JSON.parse(r.stdout)['compile-parity']).toBe('skipped');
  });

  test('fp16 for the CUDA EP: float16 weights, float32 inputs and outputs, parity within the float16 tolerance', async () => {
    const dir = tmpDir();
    const model = await convert('lenet', dir);
    const r = await run([
      'compile',
      '--model',
      model,
      '--execution-provider',
      'cuda',
      '--fp16',
      '--artifact',
      path.join(dir, 'half.onnx'),
      '--reference',
      path.join(FIXTURES, 'lenet'),
      '--json',
    ]);
    expect(r.stderr).toMatch(/Parity of the optimized model \(tolerance 0\.002\)/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)['compile-parity']).toBe('pass');
    const M = onnxSchema().lookupType('onnx.ModelProto');
    const m = M.toObject(M.decode(fs.readFileSync(path.join(dir, 'half.onnx'))), { longs: Number }) as any;
    expect(new Set(m.graph.initializer.filter((t: any) => t.data_type === 1 || t.data_type === 10).map((t: any) => t.data_type))).toEqual(new Set([10]));
    expect(m.graph.input.map((i: any) => i.type.tensor_type.elem_type)).toEqual([1]);
    expect(m.graph.node[0]).toMatchObject({ op_type: 'Cast', input: ['data'] });
    expect(m.graph.node[m.graph.node.length - 1]).toMatchObject({ op_type: 'Cast', output: ['prob'] });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'half.onnx.json'), 'utf8')).onnxruntime.precision).toBe('float16');
    expect(fs.statSync(path.join(dir, 'half.onnx')).size).toBeLessThan(fs.statSync(model).size * 0.55);
  });

  test('float16 rounding: nearest even, saturating at 65504, subnormals', () => {
    expect([1, -2, 0.1, 65504, 1e9, -1e9, 6e-8, 0].map(toHalf).map((h) => h.toString(16))).toEqual(['3c00', 'c000', '2e66', '7bff', '7bff', 'fbff', '1', '0']);
  });

  test('the gate fails when the optimized model no longer matches the reference', async () => {
    const dir = tmpDir();
    const model = await convert('lenet', dir);
    const ref = path.join(dir, 'ref');
    fs.cpSync(path.join(FIXTURES, 'lenet'), ref, { recursive: true });
    const y = readNpy(path.join(ref, 'output_b1__prob.npy'));
    y.data[3] += 1e-2; // ten times the default tolerance
    fs.writeFileSync(path.join(ref, 'output_b1__prob.npy'), encodeNpy(y.shape, y.data));
    const r = await run(['compile', '--model', model, '--reference', ref]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^compile-parity=fail$/m);
    expect(r.stderr).toMatch(/the optimized model fails the parity check/);
  });

  test('bad input is refused before any work', async () => {
    const dir = tmpDir();
    const model = await convert('lenet', dir);
    expect((await run(['compile', '--model', model, '--target', 'tflite'])).stderr).toMatch(
      /input "target": expected one of onnxruntime, tensorrt, got "tflite"/,
    );
    expect((await run(['compile', '--model', model, '--int8'])).stderr).toMatch(/input "int8": is only for target tensorrt/);
    expect((await run(['compile', '--model', model, '--fp16'])).stderr).toMatch(
      /input "fp16": float16 artifacts are for GPU execution providers; set execution-provider to cuda/,
    );
    expect((await run(['compile', '--model', model, '--batch-sizes', '8,4,32'])).stderr).toMatch(/input "batch-sizes": expected min,opt,max/);
    const notOnnx = path.join(dir, 'x.onnx');
    fs.writeFileSync(notOnnx, 'hello');
    const r = await run(['compile', '--model', notOnnx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/x\.onnx: not an ONNX model/);
    expect(fs.existsSync(path.join(dir, 'x.ort.onnx'))).toBe(false);
  });
});

describe('compile: tensorrt target (runs on GPU runners; the plan and the checks are tested here, the rest in tensorrt.test.ts)', () => {
  const inputs = [{ name: 'data', shape: ['N', 3, 224, 224] as (number | string)[] }];
  const pinned = `nvcr.io/nvidia/tensorrt@sha256:${'a'.repeat(64)}`;

  test('trtexec runs in the pinned TensorRT image with the dynamic batch profile', () => {
    const p = planTensorRT(inputs, 'model.onnx', 'model.plan', '/ws/build', {
      image: pinned,
      batches: [1, 8, 32],
      fp16: true,
      int8: false,
      workspaceMiB: 2048,
      timingCache: 'trt-timing.cache',
    });
    expect(p.dockerArgs).toEqual([
      'run',
      '--rm',
      '--gpus',
      'all',
      '-v',
      '/ws/build:/work',
      '-w',
      '/work',
      pinned,
      'trtexec',
      '--onnx=/work/model.onnx',
      '--saveEngine=/work/model.plan',
      '--minShapes=data:1x3x224x224',
      '--optShapes=data:8x3x224x224',
      '--maxShapes=data:32x3x224x224',
      '--timingCacheFile=/work/trt-timing.cache',
      '--memPoolSize=workspace:2048M',
      '--fp16',
    ]);
    expect(p.gpuQueryArgs).toEqual([
      'run',
      '--rm',
      '--gpus',
      'all',
      '--entrypoint',
      'nvidia-smi',
      pinned,
      '--query-gpu=compute_cap,name,driver_version',
      '--format=csv,noheader',
    ]);
    expect(() =>
      planTensorRT([{ name: 'x', shape: ['N', 3, 'H', 'W'] }], 'm.onnx', 'm.plan', '/w', {
        image: pinned,
        batches: [1, 1, 1],
        fp16: false,
        int8: false,
        workspaceMiB: 1,
        timingCache: 't',
      }),
    ).toThrow(/dynamic dimensions other than the batch/);
    expect(() =>
      planTensorRT(inputs, 'm.onnx', 'm.plan', '/w', {
        image: 'nvcr.io/nvidia/tensorrt:24.10-py3',
        batches: [1, 1, 1],
        fp16: false,
        int8: false,
        workspaceMiB: 1,
        timingCache: 't',
      }),
    ).toThrow(/pinned by digest/);
  });

  test('versions and GPU are read from trtexec and nvidia-smi output', () => {
    expect(parseTensorRTVersion('[11/25/2026-10:00:00] [I] TensorRT version: 10.3.0\n[I] Loading ...')).toBe('10.3.0');
    expect(parseTensorRTVersion('&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --onnx=m.onnx')).toBe('10.3.0');
    expect(() => parseTensorRTVersion('nothing here')).toThrow(/TensorRT version/);
    expect(parseNvidiaSmi('9.0, NVIDIA H100 80GB HBM3, 550.54.15\n')).toEqual({ computeCapability: '9.0', name: 'NVIDIA H100 80GB HBM3', driver: '550.54.15' });
    // an image entrypoint's banner before the CSV line is skipped
    expect(parseNvidiaSmi('\n== NVIDIA TensorRT ==\nNVIDIA Release 24.10 (build 1)\n9.0, NVIDIA H200, 570.86.15\n').name).toBe('NVIDIA H200');
    expect(() => parseNvidiaSmi('NVIDIA-SMI has failed')).toThrow(/unexpected nvidia-smi output/);
    expect(parseBatches('1, 4,16')).toEqual([1, 4, 16]);
  });

  test('a plan is refused on a mismatched TensorRT or GPU, naming both sides', () => {
    const plan = { tensorrtVersion: '10.3.0', computeCapability: '9.0', gpu: 'NVIDIA H100', tensorrtImage: pinned };
    expect(() => checkPlanCompatibility(plan, { tensorrtVersion: '10.3.0', computeCapability: '9.0' })).not.toThrow();
    expect(() => checkPlanCompatibility(plan, { tensorrtVersion: '10.3.0.26', computeCapability: '9.0' })).not.toThrow();
    expect(() => checkPlanCompatibility(plan, { tensorrtVersion: '10.5.0', computeCapability: '9.0', image: 'serving:2' })).toThrow(
      /TensorRT 10\.3\.0 built the plan, the serving image has TensorRT 10\.5\.0.*Rebuild it with stage compile.*for serving:2/,
    );
    expect(() => checkPlanCompatibility(plan, { tensorrtVersion: '10.3.1', computeCapability: '9.0' })).toThrow(
      /TensorRT 10\.3\.0 built the plan, the serving image has TensorRT 10\.3\.1/,
    );
    expect(() => checkPlanCompatibility(plan, { tensorrtVersion: '10.3.0', computeCapability: '8.6' })).toThrow(
      /compute capability 9\.0 \(NVIDIA H100\), the target GPU is 8\.6/,
    );
  });
});
