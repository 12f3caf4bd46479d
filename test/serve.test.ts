import { DynamicBatcher } from '../src/serve/batcher';
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer, ServeOptions } from '../src/serve/server';
import { serveOptions } from '../src/serve/main';
import { cpuBudget } from '../src/serve/cpus';
import { encodeInferRequest, decodeInferResponse, parseInferRequest, HEADER_LENGTH } from '../src/protocol/kserve';
import { encryptModel } from '../src/protocol/model-crypto';
import { imageToTensor } from '../src/protocol/pixels';
import { readNpy } from '../src/util/npy';
import { ModelshipError } from '../src/util/errors';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { request } from './helpers/http';

const LENET = path.join(FIXTURES, 'lenet');

function convertTo(dir: string, net: string): string {
  const d = path.join(FIXTURES, net);
  const conv = convertCaffe({
    prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
    prototxtFile: 'p',
    caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
    caffemodelFile: 'w',
  });
  const f = path.join(dir, `${net}.onnx`);
  fs.writeFileSync(f, conv.onnx);
  return f;
}

const log: string[] = [];
function options(model: string, extra: Partial<ServeOptions> = {}): ServeOptions {
  return { ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, modelPath: model, modelName: 'lenet', log: (l) => log.push(l), ...extra };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('serving runtime: KServe v2 over HTTP', () => {
  const dir = tmpDir('modelship-serve-');
  const model = convertTo(dir, 'lenet');
  const in1 = readNpy(path.join(LENET, 'input_b1.npy'));
  const in2 = readNpy(path.join(LENET, 'input_b2.npy'));
  const out1 = readNpy(path.join(LENET, 'output_b1__prob.npy'));
  const out2 = readNpy(path.join(LENET, 'output_b2__prob.npy'));
  let srv: RunningServer;
  beforeAll(async () => {
    // idleFlush off: LeNet runs in well under a millisecond, so with it on every request would find the server idle
    srv = await startServer(options(model, { maxBatchSize: 8, maxQueueDelayMs: 20, idleFlush: false }));
  });
  afterAll(async () => srv.drain());

  test('health, server and model metadata (execution provider stated)', async () => {
    expect((await request(`${srv.url}/v2/health/live`)).json()).toEqual({ live: true });
    expect((await request(`${srv.url}/v2/health/ready`)).status).toBe(200);
    expect((await request(`${srv.url}/v2/models/lenet/ready`)).json()).toEqual({ name: 'lenet', ready: true });
    const meta = (await request(`${srv.url}/v2/models/lenet`)).json();
    expect(meta).toMatchObject({
      name: 'lenet',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'data', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
      outputs: [{ name: 'prob', shape: [-1, 10] }],
    });
    expect(meta.parameters.execution_provider).toBe('cpu');
    // onnxruntime's threads are sized to what this process may use, and stated
    expect(meta.parameters.intra_op_threads).toBe(cpuBudget().cpus);
    expect(log.join('\n')).toMatch(/on cpu with \d+ intra-op threads? \(/);
    expect((await request(`${srv.url}/v2`)).json().extensions).toContain('binary_tensor_data');
  });

  test("JSON tensors: the reference input reproduces Caffe's output", async () => {
    const body = JSON.stringify({ id: 'r1', inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(in1.data) }] });
    const r = await request(`${srv.url}/v2/models/lenet/infer`, { body, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    const j = r.json();
    expect(j).toMatchObject({ model_name: 'lenet', model_version: '1', id: 'r1', outputs: [{ name: 'prob', datatype: 'FP32', shape: [1, 10] }] });
    expect(maxDiff(Float32Array.from(j.outputs[0].data), out1.data)).toBeLessThanOrEqual(1e-5);
  });

  test('binary tensor data extension in and out, batch 2', async () => {
    const req = encodeInferRequest([{ name: 'data', shape: in2.shape, data: in2.data }], { binaryOutputs: true });
    const r = await request(`${srv.url}/v2/models/lenet/versions/1/infer`, {
      body: req.body,
      headers: { [HEADER_LENGTH]: req.headerLength, 'content-type': 'application/octet-stream' },
    });
    expect(r.status).toBe(200);
    const hl = Number(r.headers[HEADER_LENGTH]);
    expect(hl).toBeGreaterThan(0);
    const dec = decodeInferResponse(r.body, hl);
    expect(dec.outputs[0].shape).toEqual([2, 10]);
    expect(maxDiff(dec.outputs[0].data, out2.data)).toBeLessThanOrEqual(1e-5);
  });

  test('dynamic batching: 16 concurrent requests run as a few batches, each gets its own result', async () => {
    const before = { ...srv.batcher.stats };
    const items = [0, 1];
    const reqs = Array.from({ length: 16 }, (_, i) => {
      const item = items[i % 2];
      const data = in2.data.slice(item * 784, (item + 1) * 784);
      const enc = encodeInferRequest([{ name: 'data', shape: [1, 1, 28, 28], data }], { binaryOutputs: true });
      return request(`${srv.url}/v2/models/lenet/infer`, { body: enc.body, headers: { [HEADER_LENGTH]: enc.headerLength } }).then((r) => ({ item, r }));
    });
    const done = await Promise.all(reqs);
    for (const { item, r } of done) {
      expect(r.status).toBe(200);
      const got = decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH])).outputs[0].data;
      expect(maxDiff(got, out2.data.slice(item * 10, item * 10 + 10))).toBeLessThanOrEqual(1e-5);
    }
    const batches = srv.batcher.stats.batches - before.batches;
    expect(srv.batcher.stats.items - before.items).toBe(16);
    expect(batches).toBeLessThanOrEqual(8);
    const metrics = (await request(`${srv.url}/metrics`)).body.toString();
    expect(metrics).toMatch(/modelship_requests_total\{route="infer",code="200"\} \d+/);
    expect(metrics).toMatch(/modelship_batch_size_count \d+/);
    expect(metrics).toMatch(/modelship_request_duration_seconds_bucket/);
  });

  test('bad requests get 4xx with a clear message and the server keeps serving', async () => {
    const post = (body: string | Buffer, headers: Record<string, string | number> = {}) => request(`${srv.url}/v2/models/lenet/infer`, { body, headers });
    const cases: [ReturnType<typeof request>, number, RegExp][] = [
      [post('{"inputs": [ {'), 400, /malformed JSON/],
      [
        post(JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 27], datatype: 'FP32', data: new Array(756).fill(0) }] })),
        400,
        /shape \[1, 1, 28, 27\] does not match the model's \[-1, 1, 28, 28\]/,
      ],
      [post(JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'BYTES', data: ['a'] }] })), 400, /datatype BYTES is not supported/],
      [post(JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1, 2] }] })), 400, /needs 784 values, "data" has 2/],
      [post(JSON.stringify({ inputs: [{ name: 'image', shape: [1], datatype: 'FP32', data: [1] }] })), 400, /unknown input "image"/],
      [post(Buffer.alloc(10), { [HEADER_LENGTH]: 99 }), 400, /does not fit/],
      [request(`${srv.url}/v2/models/resnet/infer`, { body: '{}' }), 404, /model "resnet" is not served here/],
      [request(`${srv.url}/v2/models/lenet/infer`), 405, /needs POST/],
      [
        request(`${srv.url}/v2/models/lenet/classify`, { body: Buffer.from('not an image at all') }),
        400,
        /image classification needs a model with one \[N, 3, H, W\] input/,
      ],
    ];
    for (const [p, status, msg] of cases) {
      const r = await p;
      expect({ status: r.status, error: r.json().error }).toEqual({ status, error: expect.stringMatching(msg) });
    }
    const big = await startServer(options(model, { maxBodyBytes: 1000 }));
    try {
      // chunked (no content-length) and declared
      const r = await request(`${big.url}/v2/models/lenet/infer`, { body: Buffer.alloc(5000) });
      expect(r.status).toBe(413);
      expect(r.json().error).toMatch(/exceeds the limit of 1000/);
      const r2 = await request(`${big.url}/v2/models/lenet/infer`, { body: Buffer.alloc(5000), headers: { 'content-length': 5000 } });
      expect(r2.status).toBe(413);
    } finally {
      await big.drain();
    }
    // still serving
    const ok = await request(`${srv.url}/v2/models/lenet/infer`, {
      body: JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(in1.data) }] }),
    });
    expect(ok.status).toBe(200);
    const metrics = (await request(`${srv.url}/metrics`)).body.toString();
    expect(metrics).toMatch(/modelship_request_errors_total\{route="infer",code="400"\} [1-9]/);
  });
});

describe('serving runtime: auth, encryption, images, shutdown', () => {
  const dir = tmpDir('modelship-serve2-');
  const model = convertTo(dir, 'lenet');

  test('with an API key every route but health needs the bearer token', async () => {
    const srv = await startServer(options(model, { apiKey: 's3cret-key' }));
    expect((await request(`${srv.url}/v2/health/ready`)).status).toBe(200);
    const no = await request(`${srv.url}/v2/models/lenet`);
    expect(no.status).toBe(401);
    expect(no.json().error).toMatch(/Authorization: Bearer/);
    expect((await request(`${srv.url}/v2/models/lenet`, { headers: { authorization: 'Bearer wrong-key!' } })).status).toBe(401);
    expect((await request(`${srv.url}/metrics`)).status).toBe(401);
    expect((await request(`${srv.url}/v2/models/lenet`, { headers: { authorization: 'Bearer s3cret-key' } })).status).toBe(200);
    await srv.drain();
  });

  test('an encrypted model serves with the right key and refuses to start with a wrong or missing one', async () => {
    const key = Buffer.alloc(32, 7);
    const enc = path.join(dir, 'lenet.onnx.enc');
    fs.writeFileSync(enc, encryptModel(fs.readFileSync(model), key));
    const srv = await startServer(options(enc, { modelKey: key }));
    expect((await request(`${srv.url}/v2/models/lenet`)).status).toBe(200);
    await srv.drain();
    await expect(startServer(options(enc, { modelKey: Buffer.alloc(32, 8) }))).rejects.toThrow(/cannot decrypt the model: wrong key/);
    await expect(startServer(options(enc))).rejects.toThrow(ModelshipError);
    await expect(startServer(options(enc))).rejects.toThrow(/encrypted but no key was given/);
  });

  test('image classification: a PNG gives top-k labels, the same as infer on the preprocessed tensor', async () => {
    const zoo = convertTo(dir, 'zoo_conv');
    const labels = Array.from({ length: 10 }, (_, i) => `class-${i}`);
    const srv = await startServer(options(zoo, { modelName: 'zoo', labels, topK: 3 }));
    const png = new PNG({ width: 20, height: 16 });
    for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 37) % 256;
    const bytes = PNG.sync.write(png);
    const r = await request(`${srv.url}/v2/models/zoo/classify`, { body: bytes, headers: { 'content-type': 'image/png' } });
    expect(r.status).toBe(200);
    const preds = r.json().predictions;
    expect(preds).toHaveLength(3);
    const x = imageToTensor(bytes, 13, 11, DEFAULT_SERVE.preprocess);
    const inf = await request(`${srv.url}/v2/models/zoo/infer`, {
      body: JSON.stringify({ inputs: [{ name: 'data', shape: [1, 3, 13, 11], datatype: 'FP32', data: Array.from(x) }] }),
    });
    const probs: number[] = inf.json().outputs[0].data;
    const top = probs
      .map((p, i) => [p, i])
      .sort((a, b) => b[0] - a[0])
      .slice(0, 3)
      .map(([, i]) => i);
    expect(preds.map((p: { index: number }) => p.index)).toEqual(top);
    expect(preds[0].label).toBe(`class-${top[0]}`);
    const bad = await request(`${srv.url}/v2/models/zoo/classify`, { body: Buffer.from('not an image at all') });
    expect({ status: bad.status, error: bad.json().error }).toEqual({ status: 415, error: expect.stringMatching(/not a JPEG or PNG/) });
    const cut = await request(`${srv.url}/v2/models/zoo/classify`, { body: bytes.subarray(0, 40) });
    expect({ status: cut.status, error: cut.json().error }).toEqual({ status: 400, error: expect.stringMatching(/cannot decode the PNG image/) });
    expect((await request(`${srv.url}/v2/health/live`)).status).toBe(200);
    await srv.drain();
  });

  test('SIGTERM semantics: drain finishes the in-flight request, readiness goes false, then the port closes', async () => {
    // idleFlush off: the request waits the 300 ms queue delay, so it is in flight when the drain starts
    const srv = await startServer(options(model, { maxQueueDelayMs: 300, maxBatchSize: 8, idleFlush: false }));
    const in1 = readNpy(path.join(LENET, 'input_b1.npy'));
    const pending = request(`${srv.url}/v2/models/lenet/infer`, {
      body: JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from(in1.data) }] }),
    });
    await new Promise((r) => setTimeout(r, 50)); // the request is queued in the batcher
    const drained = srv.drain();
    const r = await pending;
    expect(r.status).toBe(200);
    await drained;
    await expect(request(`${srv.url}/v2/health/live`)).rejects.toThrow(/ECONNREFUSED/);
    expect(log.join('\n')).toMatch(/draining: readiness is false/);
  });
});

describe('the dynamic batcher', () => {
  const runner = (log: number[]) => async (input: Float32Array, items: number) => {
    log.push(items);
    await new Promise((r) => setTimeout(r, 50)); // a model that takes 50 ms a batch
    return { y: { data: input.map((v) => v * 2), itemShape: [1] } };
  };
  test('an idle server runs a lone request at once; requests arriving during a run form the next batch', async () => {
    const sizes: number[] = [];
    // a queue delay far above the run's 50 ms: the bound below tells "at once" from "after the delay" on any machine
    const b = new DynamicBatcher(runner(sizes), 8, 5000, undefined, true);
    const t0 = Date.now();
    const first = b.submit(new Float32Array([1]), 1);
    await new Promise((r) => setTimeout(r, 5)); // the lone request has started
    const rest = Array.from({ length: 8 }, (_, i) => b.submit(new Float32Array([i + 2]), 1));
    expect((await first).y.data[0]).toBe(2);
    expect(Date.now() - t0).toBeLessThan(2500); // not the 5000 ms queue delay
    const outs = await Promise.all(rest);
    expect(outs.map((o) => o.y.data[0])).toEqual([4, 6, 8, 10, 12, 14, 16, 18]);
    expect(sizes).toEqual([1, 8]);
  });
  test('with idleFlush off a lone request waits the queue delay for company', async () => {
    const sizes: number[] = [];
    const b = new DynamicBatcher(runner(sizes), 8, 100, undefined, false);
    const outs = await Promise.all([b.submit(new Float32Array([1]), 1), new Promise((r) => setTimeout(r, 20)).then(() => b.submit(new Float32Array([2]), 1))]);
    expect(outs.map((o) => o.y.data[0])).toEqual([2, 4]);
    expect(sizes).toEqual([2]);
  });
});

describe('serve configuration', () => {
  const files = (m: Record<string, string>) => (f: string) => m[f];
  test('CPU budget: the cgroup quota (v2 cpu.max, v1 CFS quota) caps the affinity mask, rounded down, at least 1', () => {
    // the files as the kernel writes them
    expect(cpuBudget(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }), 16)).toEqual({ cpus: 16, source: '16 CPUs available' });
    expect(cpuBudget(files({ '/sys/fs/cgroup/cpu.max': '250000 100000\n' }), 16)).toEqual({ cpus: 2, source: 'cgroup v2 cpu.max: 2.5 CPU' });
    expect(cpuBudget(files({ '/sys/fs/cgroup/cpu.max': '40000 100000\n' }), 16).cpus).toBe(1); // a 400m pod
    expect(cpuBudget(files({ '/sys/fs/cgroup/cpu.max': '800000 100000\n' }), 4).cpus).toBe(4); // quota above the mask
    expect(cpuBudget(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }), 8).cpus).toBe(8);
    expect(
      cpuBudget(files({ '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '300000\n', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n' }), 8),
    ).toEqual({ cpus: 3, source: 'cgroup v1 cpu.cfs_quota_us: 3 CPU' });
    expect(cpuBudget(files({}), 0).cpus).toBe(1);
  });

  test('serve flags and environment: --idle-flush and --intra-op-threads are accepted, bad values named', () => {
    const o = serveOptions(['--model', 'm.onnx', '--idle-flush', 'false', '--intra-op-threads', '3'], {}, () => undefined);
    expect(o).toMatchObject({ modelPath: 'm.onnx', idleFlush: false, intraOpThreads: 3 });
    expect(serveOptions([], { MODELSHIP_MODEL: 'm.onnx', MODELSHIP_INTRA_OP_THREADS: '1', MODELSHIP_IDLE_FLUSH: 'on' }, () => undefined)).toMatchObject({
      intraOpThreads: 1,
      idleFlush: true,
    });
    expect(serveOptions(['--model', 'm.onnx'], {}, () => undefined)).toMatchObject({ intraOpThreads: 0, idleFlush: true });
    expect(() => serveOptions(['--model', 'm.onnx', '--idle-flush', 'maybe'], {}, () => undefined)).toThrow(
      /--idle-flush \/ MODELSHIP_IDLE_FLUSH must be true or false, got "maybe"/,
    );
    expect(() => serveOptions(['--model', 'm.onnx', '--intra-op-threads', '-2'], {}, () => undefined)).toThrow(/--intra-op-threads .* integer ≥ 0/);
    expect(() => serveOptions(['--model', 'm.onnx', '--threads', '2'], {}, () => undefined)).toThrow(/unknown serve flag --threads/);
  });

  test('binary FP32 data is used in place when 4-byte aligned (as the server reads bodies), copied when not', () => {
    const x = Float32Array.from([1.5, -2, 3.25, 1e-7, 42, 0]);
    const req = encodeInferRequest([{ name: 'data', shape: [1, 6], data: x }]);
    for (const pad of [0, 1, 2, 3]) {
      // place the body so that the binary part starts at offset pad + headerLength in its ArrayBuffer
      const body = Buffer.alloc(pad + req.body.length);
      req.body.copy(body, pad);
      const view = body.subarray(pad);
      const parsed = parseInferRequest(view, req.headerLength);
      expect(Array.from(parsed.inputs[0].data)).toEqual(Array.from(x));
      const aligned = (view.byteOffset + req.headerLength) % 4 === 0;
      expect(parsed.inputs[0].data.buffer === body.buffer).toBe(aligned);
    }
  });

  test('an explicit thread count is used and stated', async () => {
    const dir = tmpDir('modelship-serve-threads-');
    const lines: string[] = [];
    const srv = await startServer({ ...options(convertTo(dir, 'lenet'), { intraOpThreads: 1 }), log: (l) => lines.push(l) });
    try {
      expect((await request(`${srv.url}/v2/models/lenet`)).json().parameters.intra_op_threads).toBe(1);
      expect(lines.join('\n')).toContain('with 1 intra-op thread (configured)');
    } finally {
      await srv.drain();
    }
  });
});
