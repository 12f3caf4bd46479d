import * as fs from 'fs';
import * as path from 'path';
import { convertCaffe } from '../src/convert/converter';
import { GraphBuilder } from '../src/convert/graph';
import { onnxInfo } from '../src/formats/onnxinfo';
import { planTritonModel } from '../src/image/triton';
import { parseTritonConfig } from '../src/image/triton-config';
import { inferenceService } from '../src/protocol/grpc';
import { repositoryIndex } from '../src/serve/model-config';
import { startServer, DEFAULT_SERVE, RunningServer, ServeOptions } from '../src/serve/server';
import { runOnnx } from '../src/util/ort';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { tinySsd } from './helpers/ssd';
import { request } from './helpers/http';

// Triton's model-configuration and statistics extensions, the repository index and the max_batch_size refusal, on
// modelship's server started from source: the configuration is the one the image stage writes into config.pbtxt for
// the same model, the statistics count what the server did. Triton's own client against these, beside the real
// Triton: test/triton-lab.lab.test.ts.

const dir = tmpDir('modelship-serve-triton-');

function caffeOnnx(prototxt: Buffer, caffemodel: Uint8Array): Buffer {
  return Buffer.from(convertCaffe({ prototxt, prototxtFile: 'deploy.prototxt', caffemodel, caffemodelFile: 'w.caffemodel' }).onnx);
}

const lenetDir = path.join(FIXTURES, 'lenet');
const lenetOnnx = caffeOnnx(fs.readFileSync(path.join(lenetDir, 'deploy.prototxt')), fs.readFileSync(path.join(lenetDir, 'weights.caffemodel')));
const lenetPath = path.join(dir, 'lenet.onnx');
fs.writeFileSync(lenetPath, lenetOnnx);
const lenetSig = onnxInfo(lenetOnnx);

const serve = (extra: Partial<ServeOptions> = {}): Promise<RunningServer> =>
  startServer({ ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, modelPath: lenetPath, modelName: 'lenet', log: () => undefined, ...extra });

/** `n` LeNet items, each a different pattern. */
const items = (n: number): number[] => Array.from({ length: n * 784 }, (_, i) => Math.sin(i * 0.37 + Math.floor(i / 784)) * 100);

const infer = (url: string, shape: number[], extra: Record<string, unknown> = {}) =>
  request(`${url}/v2/models/lenet/infer`, {
    body: JSON.stringify({ inputs: [{ name: 'data', datatype: 'FP32', shape, data: items(shape.reduce((a, b) => a * b) / 784) }], ...extra }),
  });

const get = async (url: string) => {
  const r = await request(url);
  return { status: r.status, body: r.json() };
};

type Duration = { count: number; ns: number };
interface Stats {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<string, Duration>;
  batch_stats: { batch_size: number; compute_input: Duration; compute_infer: Duration; compute_output: Duration }[];
}
const stats = async (url: string, model = 'lenet'): Promise<Stats> => {
  const r = await get(`${url}/v2/models/${model}/stats`);
  expect(r.status).toBe(200);
  expect(r.body.model_stats).toHaveLength(1);
  return r.body.model_stats[0];
};

/** The request's parts add up to no more than its whole, request by request, so also in sum. */
function expectConsistent(s: Stats): void {
  const d = s.inference_stats;
  const parts = d.queue.ns + d.compute_input.ns + d.compute_infer.ns + d.compute_output.ns;
  expect(d.success.ns).toBeGreaterThanOrEqual(parts);
  for (const k of ['queue', 'compute_input', 'compute_infer', 'compute_output']) expect(d[k].count).toBe(d.success.count);
  // every request's compute parts are its batch's: the per-batch sums, each weighted by the requests in that batch
  expect(s.batch_stats.reduce((a, b) => a + b.compute_infer.count, 0)).toBe(s.execution_count);
  expect(s.batch_stats.reduce((a, b) => a + b.batch_size * b.compute_infer.count, 0)).toBe(s.inference_count);
}

describe("GET /v2/models/{m}/config: the configuration Triton reports, the image stage's config.pbtxt for the same model", () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await serve({ maxBatchSize: 8, maxQueueDelayMs: 2 });
  });
  afterAll(() => srv.drain());

  test('GET /v2 lists the extensions as Triton names them', async () => {
    expect((await get(`${srv.url}/v2`)).body.extensions).toEqual(expect.arrayContaining(['binary_tensor_data', 'model_configuration', 'statistics']));
  });

  test("its fields are the model's signature, without the batch dim, and the server's batching settings", async () => {
    const { status, body } = await get(`${srv.url}/v2/models/lenet/config`);
    expect(status).toBe(200);
    const dims = (shape: (number | string)[]) => shape.slice(1).map((d) => (typeof d === 'number' ? d : -1));
    expect(body).toMatchObject({
      name: 'lenet',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 8,
      input: lenetSig.inputs.map((t) => ({ name: t.name, data_type: 'TYPE_FP32', dims: dims(t.shape), format: 'FORMAT_NONE' })),
      output: lenetSig.outputs.map((t) => ({ name: t.name, data_type: 'TYPE_FP32', dims: dims(t.shape) })),
      // what Triton fills in: its preferred batch the max, the group's name <model>_<index>, the latest version
      dynamic_batching: { max_queue_delay_microseconds: 2000, preferred_batch_size: [8] },
      instance_group: [{ name: 'lenet_0', kind: 'KIND_CPU', count: 1, gpus: [] }],
      version_policy: { latest: { num_versions: 1 } },
      default_model_filename: 'model.onnx',
    });
    expect(body.input[0].dims).toEqual([1, 28, 28]);
  });

  test("it is what the image stage writes into config.pbtxt for the same model (the triton runtime's)", async () => {
    const m = await planTritonModel({
      model: lenetPath,
      bytes: lenetOnnx,
      modelName: 'lenet',
      gpu: false,
      maxQueueDelayUs: 2000,
      maxBatch: 8,
      servingImage: 'triton',
      servingRef: 'triton@sha256:x',
      env: {},
    });
    const written = parseTritonConfig(m.config, 'lenet/config.pbtxt');
    const served = (await get(`${srv.url}/v2/models/lenet/config`)).body;
    const substance = (c: any) => ({
      name: c.name,
      platform: c.platform,
      max_batch_size: c.max_batch_size,
      input: c.input.map((t: any) => ({ name: t.name, data_type: t.data_type, dims: t.dims })),
      output: c.output.map((t: any) => ({ name: t.name, data_type: t.data_type, dims: t.dims })),
      max_queue_delay_microseconds: c.dynamic_batching?.max_queue_delay_microseconds,
      instance_group: c.instance_group.map((g: any) => ({ kind: g.kind, count: g.count })),
    });
    expect(substance(served)).toEqual(substance(written));
    expect(served.max_batch_size).toBe(m.maxBatchSize);
  });

  test('version routes; another version or model is 404; only GET', async () => {
    const plain = (await get(`${srv.url}/v2/models/lenet/config`)).body;
    expect(await get(`${srv.url}/v2/models/lenet/versions/1/config`)).toEqual({ status: 200, body: plain });
    expect(await get(`${srv.url}/v2/models/lenet/versions/2/config`)).toEqual({
      status: 404,
      body: { error: 'model "lenet" version 2 is not served here (serving "lenet" version 1)' },
    });
    expect((await get(`${srv.url}/v2/models/resnet/config`)).status).toBe(404);
    const post = await request(`${srv.url}/v2/models/lenet/config`, { method: 'POST', body: '{}' });
    expect([post.status, post.headers.allow]).toEqual([405, 'GET']);
  });

  test('the same object is the gRPC ModelConfig answer: it encodes as model_config.proto (proto-loader) and reads back the same', async () => {
    const served = (await get(`${srv.url}/v2/models/lenet/config`)).body;
    const rpc = inferenceService().definition.ModelConfig;
    const back = rpc.responseDeserialize(rpc.responseSerialize({ config: served })) as { config: any };
    // (proto3 leaves out defaults: false, 0, '' and empty lists do not travel; oneofs are named)
    expect(back.config).toMatchObject({
      name: 'lenet',
      platform: 'onnxruntime_onnx',
      backend: 'onnxruntime',
      max_batch_size: 8,
      input: [{ name: 'data', data_type: 'TYPE_FP32', dims: [1, 28, 28] }],
      output: [{ name: 'prob', data_type: 'TYPE_FP32', dims: [10] }],
      dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: 2000 },
      instance_group: [{ name: 'lenet_0', kind: 'KIND_CPU', count: 1 }],
      version_policy: { latest: { num_versions: 1 } },
      optimization: { input_pinned_memory: { enable: true }, output_pinned_memory: { enable: true } },
    });
  });

  test('the metrics count the new routes under their names', async () => {
    await get(`${srv.url}/v2/models/lenet/config`);
    await get(`${srv.url}/v2/models/lenet/stats`);
    await request(`${srv.url}/v2/repository/index`, { method: 'POST', body: '' });
    const text = (await request(`${srv.url}/metrics`)).body.toString();
    for (const route of ['config', 'stats', 'repository'])
      expect(text).toMatch(new RegExp(`^modelship_requests_total\\{route="${route}",code="200"\\} [1-9]`, 'm'));
  });
});

describe('GET /v2/models/{m}/stats: what the server did, counted as Triton counts it', () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await serve({ maxBatchSize: 8, maxQueueDelayMs: 2 });
  });
  afterAll(() => srv.drain());

  test('before any request: zeros, in the form Triton answers', async () => {
    const r = await get(`${srv.url}/v2/models/lenet/stats`);
    const zero = { count: 0, ns: 0 };
    expect(r.body).toEqual({
      model_stats: [
        {
          name: 'lenet',
          version: '1',
          last_inference: 0,
          inference_count: 0,
          execution_count: 0,
          inference_stats: {
            success: zero,
            fail: zero,
            queue: zero,
            compute_input: zero,
            compute_infer: zero,
            compute_output: zero,
            cache_hit: zero,
            cache_miss: zero,
          },
          batch_stats: [],
          memory_usage: [],
        },
      ],
    });
  });

  test('requests of batch 1, 4 and 8, one at a time: three executions of 13 items, a batch_stats entry per size', async () => {
    const before = Date.now();
    for (const b of [1, 4, 8]) {
      const r = await infer(srv.url, [b, 1, 28, 28]);
      expect(r.status).toBe(200);
      expect(r.json().outputs[0].shape).toEqual([b, 10]);
    }
    const s = await stats(srv.url);
    expect(s.last_inference).toBeGreaterThanOrEqual(before);
    expect(s.last_inference).toBeLessThanOrEqual(Date.now());
    expect([s.inference_count, s.execution_count]).toEqual([13, 3]);
    expect(s.batch_stats.map((b) => [b.batch_size, b.compute_input.count, b.compute_infer.count, b.compute_output.count])).toEqual([
      [1, 1, 1, 1],
      [4, 1, 1, 1],
      [8, 1, 1, 1],
    ]);
    const d = s.inference_stats;
    expect(d.success.count).toBe(3);
    expect(d.fail).toEqual({ count: 0, ns: 0 });
    for (const k of ['success', 'queue', 'compute_input', 'compute_infer', 'compute_output']) expect(d[k].ns).toBeGreaterThan(0);
    for (const b of s.batch_stats) for (const k of ['compute_input', 'compute_infer', 'compute_output'] as const) expect(b[k].ns).toBeGreaterThan(0);
    // one request per batch: the requests' compute parts are exactly the batches'
    for (const k of ['compute_input', 'compute_infer', 'compute_output'] as const) expect(d[k].ns).toBe(s.batch_stats.reduce((a, b) => a + b[k].ns, 0));
    expect(d.cache_hit).toEqual({ count: 0, ns: 0 });
    expectConsistent(s);
  });

  test('failed requests count as fail, nothing else: a wrong shape, a batch over max_batch_size, an unknown output', async () => {
    const s0 = await stats(srv.url);
    const shape = await infer(srv.url, [1, 1, 28, 29]);
    expect(shape.status).toBe(400);
    expect(shape.json().error).toMatch(/input "data": shape \[1, 1, 28, 29\] does not match the model's \[-1, 1, 28, 28\]/);
    const big = await infer(srv.url, [9, 1, 28, 28]);
    expect(big.status).toBe(400);
    // Triton's words (test/triton-lab.lab.test.ts), then the input and the setting
    expect(big.json().error).toMatch(/^inference request batch-size must be <= 8 for 'lenet': input "data" has shape \[9, 1, 28, 28\].*--max-batch-size/);
    const out = await infer(srv.url, [1, 1, 28, 28], { outputs: [{ name: 'nope' }] });
    expect(out.status).toBe(400);
    const s1 = await stats(srv.url);
    expect(s1.inference_stats.fail.count).toBe(s0.inference_stats.fail.count + 3);
    expect(s1.inference_stats.fail.ns).toBeGreaterThan(s0.inference_stats.fail.ns);
    expect({ ...s1, inference_stats: { ...s1.inference_stats, fail: null } }).toEqual({ ...s0, inference_stats: { ...s0.inference_stats, fail: null } });
  });

  test('/v2/models/stats (all models: the one) and the version route answer the same; another version or model is 404', async () => {
    const one = await get(`${srv.url}/v2/models/lenet/stats`);
    expect(await get(`${srv.url}/v2/models/stats`)).toEqual(one);
    expect(await get(`${srv.url}/v2/models/lenet/versions/1/stats`)).toEqual(one);
    expect((await get(`${srv.url}/v2/models/lenet/versions/2/stats`)).status).toBe(404);
    expect((await get(`${srv.url}/v2/models/resnet/stats`)).status).toBe(404);
    expect((await request(`${srv.url}/v2/models/stats`, { method: 'POST', body: '{}' })).status).toBe(405);
  });

  test('the same object is the gRPC ModelStatistics answer (proto-loader encodes it as grpc_service.proto)', async () => {
    const answer = (await get(`${srv.url}/v2/models/stats`)).body;
    const rpc = inferenceService().definition.ModelStatistics;
    const back = rpc.responseDeserialize(rpc.responseSerialize(answer)) as { model_stats: Stats[] };
    const s = answer.model_stats[0] as Stats;
    expect(back.model_stats[0]).toMatchObject({
      name: 'lenet',
      version: '1',
      last_inference: s.last_inference,
      inference_count: s.inference_count,
      execution_count: s.execution_count,
      inference_stats: { success: s.inference_stats.success, fail: s.inference_stats.fail, compute_infer: s.inference_stats.compute_infer },
      batch_stats: s.batch_stats,
    });
  });

  test('POST /v2/repository/index: the model, READY, as Triton lists it; GET is 405; a bad body is 400 naming the field', async () => {
    const index = [{ name: 'lenet', version: '1', state: 'READY' }];
    for (const body of ['', '{}', '{"ready": true}', '{"ready": false}']) {
      const r = await request(`${srv.url}/v2/repository/index`, { method: 'POST', body });
      expect([r.status, r.json()]).toEqual([200, index]);
    }
    expect((await request(`${srv.url}/v2/repository/index`)).status).toBe(405);
    const bad = await request(`${srv.url}/v2/repository/index`, { method: 'POST', body: '{"ready": "yes"}' });
    expect([bad.status, bad.json().error]).toEqual([400, '"ready" must be true or false, got "yes"']);
    expect((await request(`${srv.url}/v2/repository/index`, { method: 'POST', body: '[' })).status).toBe(400);
    // once the inference thread has died (the lifecycle's `broken`): UNAVAILABLE with the reason, as Triton lists a model it cannot serve
    const dead = 'the inference thread exited (code 1)';
    expect(repositoryIndex({ name: 'lenet', version: '1' }, dead)).toEqual([{ name: 'lenet', version: '1', state: 'UNAVAILABLE', reason: dead }]);
    expect(repositoryIndex({ name: 'lenet', version: '1' }, dead, true)).toEqual([]);
  });
});

describe('concurrent requests batched together: each counts the batch it ran in, as Triton counts it', () => {
  let srv: RunningServer;
  beforeAll(async () => {
    // no idle flush and a long delay: the requests wait for each other until the batch is full
    srv = await serve({ maxBatchSize: 8, maxQueueDelayMs: 2000, idleFlush: false });
  });
  afterAll(() => srv.drain());

  test('four requests of 2: one execution of 8; each request is counted with its own queue wait and the whole batch compute', async () => {
    const replies = await Promise.all([0, 1, 2, 3].map(() => infer(srv.url, [2, 1, 28, 28])));
    for (const r of replies) expect([r.status, r.json().outputs[0].shape]).toEqual([200, [2, 10]]);
    const s = await stats(srv.url);
    expect([s.inference_count, s.execution_count, s.inference_stats.success.count]).toEqual([8, 1, 4]);
    expect(s.batch_stats).toHaveLength(1);
    const [b] = s.batch_stats;
    expect(b.batch_size).toBe(8);
    for (const k of ['compute_input', 'compute_infer', 'compute_output'] as const) {
      expect(b[k].count).toBe(1);
      expect(s.inference_stats[k]).toEqual({ count: 4, ns: 4 * b[k].ns });
    }
    // the first request waited for the other three; they all waited
    expect(s.inference_stats.queue.ns).toBeGreaterThan(0);
    expectConsistent(s);
  });
});

describe("max_batch_size: the server's --max-batch-size, refused above it as Triton refuses it; 0 for a model that does not batch", () => {
  test('--max-batch-size 4: the configuration says 4, a batch of 4 runs, a batch of 5 is a 400', async () => {
    const srv = await serve({ maxBatchSize: 4 });
    try {
      expect((await get(`${srv.url}/v2/models/lenet/config`)).body).toMatchObject({ max_batch_size: 4, dynamic_batching: { preferred_batch_size: [4] } });
      const x = items(4);
      const r = await request(`${srv.url}/v2/models/lenet/infer`, {
        body: JSON.stringify({ inputs: [{ name: 'data', datatype: 'FP32', shape: [4, 1, 28, 28], data: x }] }),
      });
      expect(r.status).toBe(200);
      // the batch's answers are the model's (ONNX Runtime alone)
      const ref = (await runOnnx(lenetOnnx, { data: { data: Float32Array.from(x), shape: [4, 1, 28, 28] } }, ['prob'], 'all')).outputs.prob;
      const got: number[] = r.json().outputs[0].data;
      expect(Math.max(...got.map((v, i) => Math.abs(v - ref.data[i])))).toBeLessThanOrEqual(1e-6);
      const five = await infer(srv.url, [5, 1, 28, 28]);
      expect([five.status, five.json().error]).toEqual([400, expect.stringMatching(/^inference request batch-size must be <= 4 for 'lenet'/)]);
    } finally {
      await srv.drain();
    }
  });

  test('a detection model (SSD): max_batch_size 0 and full dims, as the image stage writes it; a batch over --max-batch-size runs', async () => {
    const net = tinySsd({ confidence: 0.6 });
    const onnx = caffeOnnx(Buffer.from(net.prototxt), net.caffemodel);
    const model = path.join(dir, 'ssd.onnx');
    fs.writeFileSync(model, onnx);
    const srv = await startServer({ ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, modelPath: model, modelName: 'ssd', maxBatchSize: 2, log: () => undefined });
    try {
      const served = (await get(`${srv.url}/v2/models/ssd/config`)).body;
      const m = await planTritonModel({
        model,
        bytes: onnx,
        modelName: 'ssd',
        gpu: false,
        maxQueueDelayUs: 2000,
        maxBatch: 2,
        servingImage: 'triton',
        servingRef: 'triton@sha256:x',
        env: {},
      });
      const written = parseTritonConfig(m.config, 'ssd/config.pbtxt') as any;
      expect(served).toMatchObject({
        max_batch_size: 0,
        input: [{ name: 'data', dims: [-1, 3, 32, 32] }],
        output: [{ name: 'detection_out', dims: [1, 1, -1, 7] }],
      });
      expect(served.max_batch_size).toBe(written.max_batch_size);
      expect(served.input.map((t: any) => t.dims)).toEqual(written.input.map((t: any) => t.dims));
      expect(served.output.map((t: any) => t.dims)).toEqual(written.output.map((t: any) => t.dims));
      expect('dynamic_batching' in served).toBe(false);
      expect('dynamic_batching' in written).toBe(false);
      const x = Array.from({ length: 3 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.1) * 60);
      const r = await request(`${srv.url}/v2/models/ssd/infer`, {
        body: JSON.stringify({ inputs: [{ name: 'data', datatype: 'FP32', shape: [3, 3, 32, 32], data: x }] }),
      });
      expect(r.status).toBe(200);
      const s = await stats(srv.url, 'ssd');
      expect([s.inference_count, s.execution_count, s.inference_stats.success.count]).toEqual([3, 1, 1]);
    } finally {
      await srv.drain();
    }
  });

  test('a model of two inputs (run without the batcher): counted as one execution of its batch, refused over max_batch_size', async () => {
    const g = new GraphBuilder();
    g.addInput('a', ['N', 3]);
    g.addInput('b', ['N', 3]);
    g.node('Add', ['a', 'b'], ['sum']);
    g.addOutput({ name: 'sum', shape: ['N', 3] });
    const model = path.join(dir, 'add.onnx');
    fs.writeFileSync(model, g.encode({ producerVersion: '0', graphName: 'add', metadata: {} }));
    const srv = await startServer({ ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, modelPath: model, modelName: 'add', maxBatchSize: 2, log: () => undefined });
    const add = (n: number) =>
      request(`${srv.url}/v2/models/add/infer`, {
        body: JSON.stringify({
          inputs: [
            { name: 'a', datatype: 'FP32', shape: [n, 3], data: Array.from({ length: 3 * n }, (_, i) => i) },
            { name: 'b', datatype: 'FP32', shape: [n, 3], data: Array.from({ length: 3 * n }, (_, i) => 10 * i) },
          ],
        }),
      });
    try {
      expect((await get(`${srv.url}/v2/models/add/config`)).body).toMatchObject({
        max_batch_size: 2,
        input: [
          { name: 'a', dims: [3] },
          { name: 'b', dims: [3] },
        ],
      });
      const r = await add(2);
      expect(r.status).toBe(200);
      expect(r.json().outputs[0].data).toEqual([0, 11, 22, 33, 44, 55]);
      const three = await add(3);
      expect([three.status, three.json().error]).toEqual([400, expect.stringMatching(/^inference request batch-size must be <= 2 for 'add': input "a"/)]);
      const s = await stats(srv.url, 'add');
      expect([s.inference_count, s.execution_count, s.inference_stats.success.count, s.inference_stats.fail.count]).toEqual([2, 1, 1, 1]);
      expect(s.batch_stats.map((b) => b.batch_size)).toEqual([2]);
      expectConsistent(s);
    } finally {
      await srv.drain();
    }
  });
});
