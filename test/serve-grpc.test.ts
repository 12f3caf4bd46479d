import * as fs from 'fs';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer, ServeOptions } from '../src/serve/server';
import { serveMain, serveOptions } from '../src/serve/main';
import { GRPC_LOADER_OPTIONS, inferenceService } from '../src/protocol/grpc';
import serviceJson from '../src/protocol/grpc-service.json';
import { decodeInferResponse, encodeInferRequest, HEADER_LENGTH } from '../src/protocol/kserve';
import { readNpy } from '../src/util/npy';
import { ModelshipError } from '../src/util/errors';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { request } from './helpers/http';
import { rng } from './helpers/rng';

// `modelship serve`'s second front door: KServe v2 over gRPC (inference.GRPCInferenceService, as Triton serves it on
// 8001), started from source on LeNet and called with grpc-js through the protocol's own service definition
// (src/protocol/grpc.ts). Its answers are compared with the HTTP door's for the same input, bit for bit.

const LENET = path.join(FIXTURES, 'lenet');
const ITEM = 28 * 28;

let model = '';
beforeAll(() => {
  const conv = convertCaffe({
    prototxt: fs.readFileSync(path.join(LENET, 'deploy.prototxt')),
    prototxtFile: 'p',
    caffemodel: fs.readFileSync(path.join(LENET, 'weights.caffemodel')),
    caffemodelFile: 'w',
  });
  model = path.join(tmpDir('modelship-grpc-'), 'lenet.onnx');
  fs.writeFileSync(model, conv.onnx);
});

function options(extra: Partial<ServeOptions> = {}, log: string[] = []): ServeOptions {
  return { ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, grpcPort: 0, modelPath: model, modelName: 'lenet', log: (l) => log.push(l), ...extra };
}

interface CallOptions {
  key?: string;
  /** ms from now */
  deadlineMs?: number;
}

type GrpcError = grpc.ServiceError;

/** The service's client constructor, loaded with defaults: true. */
function withDefaults(): grpc.ServiceClientConstructor {
  const json = serviceJson as Parameters<typeof protoLoader.fromJSON>[0];
  const pkg = grpc.loadPackageDefinition(protoLoader.fromJSON(json, { ...GRPC_LOADER_OPTIONS, defaults: true }));
  return (pkg.inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
}

/**
 * A grpc-js client of the service: `call(method, request)` resolves with the response or rejects with the ServiceError.
 * `defaults`: responses with every field, absent ones at their defaults (the proto's zero values are not sent), for
 * comparing a message with its JSON counterpart field by field.
 */
function client(port: number, { defaults = false } = {}) {
  const Client = defaults ? withDefaults() : inferenceService().Client;
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const start = (method: string, req: object, o: CallOptions, cb: (e: GrpcError | null, r: any) => void): grpc.ClientUnaryCall => {
    const md = new grpc.Metadata();
    if (o.key !== undefined) md.set('authorization', `Bearer ${o.key}`);
    const fn = (c as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>)[method].bind(c);
    return fn(req, md, o.deadlineMs !== undefined ? { deadline: Date.now() + o.deadlineMs } : {}, cb);
  };
  return {
    close: () => c.close(),
    start,
    call: (method: string, req: object = {}, o: CallOptions = {}): Promise<any> =>
      new Promise((resolve, reject) => start(method, req, o, (e, r) => (e ? reject(e) : resolve(r)))),
  };
}

/** `p` fails with gRPC status `code` and details matching `details`. */
async function expectStatus(p: Promise<unknown>, code: grpc.status, details: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: GrpcError) => err,
  );
  expect(e && { code: grpc.status[e.code], details: e.details }).toEqual({ code: grpc.status[code], details: expect.stringMatching(details) });
}

/** `n` LeNet inputs (seeded), one [n, 1, 28, 28] tensor. */
function inputs(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * ITEM }, () => Math.fround(r() * 255 - 64));
}

/** Wait for `cond` (checked every 10 ms), at most `ms`. */
async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !(await cond()); await new Promise((r) => setTimeout(r, 10)))
    if (Date.now() > end) throw new Error(`not ${what} after ${ms} ms`);
}

const raw = (x: Float32Array | Uint8Array | Int32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

/** A ModelInferRequest for `x` ([n, 1, 28, 28]) as raw_input_contents. */
function rawRequest(x: Float32Array, extra: object = {}): object {
  return {
    model_name: 'lenet',
    inputs: [{ name: 'data', datatype: 'FP32', shape: [x.length / ITEM, 1, 28, 28] }],
    raw_input_contents: [raw(x)],
    ...extra,
  };
}

/** HTTP /infer's answer for `x`: binary output, so its bits are the server's own. */
async function httpInfer(srv: RunningServer, x: Float32Array, headers: Record<string, string> = {}): Promise<Buffer> {
  const enc = encodeInferRequest([{ name: 'data', shape: [x.length / ITEM, 1, 28, 28], data: x }], { binaryOutputs: true });
  const r = await request(`${srv.url}/v2/models/lenet/infer`, { body: enc.body, headers: { [HEADER_LENGTH]: enc.headerLength, ...headers } });
  expect(r.status).toBe(200);
  const out = decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH])).outputs[0];
  return raw(out.data);
}

const metricsText = async (srv: RunningServer, headers: Record<string, string> = {}) => (await request(`${srv.url}/metrics`, { headers })).body.toString();
/** a sample's value in the exposition text (0 when absent) */
const sample = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"|()[\]]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);

describe('KServe v2 over gRPC: every RPC', () => {
  let srv: RunningServer;
  let c: ReturnType<typeof client>;
  const log: string[] = [];
  beforeAll(async () => {
    srv = await startServer(options({}, log));
    c = client(srv.grpcPort!);
  });
  afterAll(async () => {
    c.close();
    await srv.drain();
  });

  test('the gRPC port is in the "listening on" line, beside HTTP', () => {
    expect(srv.grpcPort).toBeGreaterThan(0);
    expect(log.join('\n')).toMatch(new RegExp(`listening on http://127\\.0\\.0\\.1:${srv.port} .*; gRPC on :${srv.grpcPort}`));
  });

  test('health, readiness, metadata: what HTTP says', async () => {
    expect(await c.call('ServerLive')).toEqual({ live: true });
    expect(await c.call('ServerReady')).toEqual({ ready: true });
    expect(await c.call('ModelReady', { name: 'lenet' })).toEqual({ ready: true });
    expect(await c.call('ModelReady', { name: 'lenet', version: '1' })).toEqual({ ready: true });
    expect(await c.call('ServerMetadata')).toEqual((await request(`${srv.url}/v2`)).json());
    const http = (await request(`${srv.url}/v2/models/lenet`)).json();
    expect(http.inputs).toEqual([{ name: 'data', datatype: 'FP32', shape: [-1, 1, 28, 28] }]);
    // (ModelMetadataResponse has no parameters)
    expect(await c.call('ModelMetadata', { name: 'lenet', version: '1' })).toEqual({
      name: http.name,
      versions: http.versions,
      platform: http.platform,
      inputs: http.inputs,
      outputs: http.outputs,
    });
    expect(await c.call('RepositoryIndex', {})).toEqual({ models: [{ name: 'lenet', version: '1', state: 'READY' }] });
    expect(await c.call('RepositoryIndex', { ready: true })).toEqual({ models: [{ name: 'lenet', version: '1', state: 'READY' }] });
  });

  test("Triton's extensions: ModelConfig and ModelStatistics, every field HTTP's /config and /stats have", async () => {
    const full = client(srv.grpcPort!, { defaults: true });
    try {
      const config = (await full.call('ModelConfig', { name: 'lenet' })).config;
      const http = (await request(`${srv.url}/v2/models/lenet/config`)).json();
      expect(http).toMatchObject({ name: 'lenet', max_batch_size: 8, input: [{ name: 'data', data_type: 'TYPE_FP32', dims: [1, 28, 28] }] });
      expect(config).toMatchObject(http);
      await expectStatus(c.call('ModelConfig', { name: 'resnet' }), grpc.status.NOT_FOUND, /model "resnet" is not served here/);
      // gRPC's inferences are counted where HTTP's are (runInference): 4 items, one success more
      const before = (await full.call('ModelStatistics', { name: 'lenet', version: '1' })).model_stats[0];
      await c.call('ModelInfer', rawRequest(inputs(4, 11)));
      const after = (await full.call('ModelStatistics', { name: 'lenet' })).model_stats[0];
      expect(after.inference_count - before.inference_count).toBe(4);
      expect(after.inference_stats.success.count - before.inference_stats.success.count).toBe(1);
      const stats = (await full.call('ModelStatistics', {})).model_stats;
      expect(stats).toMatchObject((await request(`${srv.url}/v2/models/stats`)).json().model_stats);
      expect(stats[0]).toMatchObject({ name: 'lenet', version: '1', inference_count: after.inference_count });
    } finally {
      full.close();
    }
  });

  test('an unknown model or version is NOT_FOUND, in the words HTTP uses', async () => {
    await expectStatus(c.call('ModelMetadata', { name: 'resnet' }), grpc.status.NOT_FOUND, /^model "resnet" is not served here \(serving "lenet" version 1\)$/);
    await expectStatus(c.call('ModelReady', { name: 'lenet', version: '2' }), grpc.status.NOT_FOUND, /model "lenet" version 2 is not served here/);
    await expectStatus(c.call('ModelInfer', { ...rawRequest(inputs(1, 1)), model_name: 'resnet' }), grpc.status.NOT_FOUND, /model "resnet" is not served/);
    const http = await request(`${srv.url}/v2/models/resnet`);
    expect(http.json().error).toBe('model "resnet" is not served here (serving "lenet" version 1)');
  });

  test.each([1, 4, 8])('ModelInfer at batch %i, raw and typed contents: the same bits as HTTP /infer', async (n) => {
    const x = inputs(n, n);
    const viaHttp = await httpInfer(srv, x);
    const r = await c.call('ModelInfer', rawRequest(x, { id: `b${n}` }));
    expect(r).toMatchObject({ model_name: 'lenet', model_version: '1', id: `b${n}`, outputs: [{ name: 'prob', datatype: 'FP32', shape: [n, 10] }] });
    expect(r.raw_output_contents).toHaveLength(1);
    expect(r.raw_output_contents[0].equals(viaHttp)).toBe(true);
    const typed = await c.call('ModelInfer', {
      model_name: 'lenet',
      inputs: [{ name: 'data', datatype: 'FP32', shape: [n, 1, 28, 28], contents: { fp32_contents: Array.from(x) } }],
    });
    expect(typed.raw_output_contents[0].equals(viaHttp)).toBe(true);
    // (and they are LeNet's softmax: n rows of 10 that sum to 1)
    const p = new Float32Array(new Uint8Array(viaHttp).buffer);
    for (let i = 0; i < n; i++) expect(p.subarray(i * 10, i * 10 + 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });

  test("Caffe's reference output from the reference input", async () => {
    const x = readNpy(path.join(LENET, 'input_b2.npy'));
    const y = readNpy(path.join(LENET, 'output_b2__prob.npy'));
    const r = await c.call('ModelInfer', rawRequest(x.data));
    const got = new Float32Array(new Uint8Array(r.raw_output_contents[0]).buffer);
    expect(Math.max(...got.map((v, i) => Math.abs(v - y.data[i])))).toBeLessThanOrEqual(1e-5);
  });

  test('other datatypes convert to FP32 as over HTTP: typed int, uint, FP64 and BOOL contents and raw UINT8 bytes', async () => {
    const ints = Int32Array.from({ length: ITEM }, (_, i) => (i * 37) % 256);
    const asFp32 = await httpInfer(srv, Float32Array.from(ints));
    const req = (datatype: string, contents: object | undefined, rawBytes?: Buffer) => ({
      model_name: 'lenet',
      inputs: [{ name: 'data', datatype, shape: [1, 1, 28, 28], ...(contents ? { contents } : {}) }],
      ...(rawBytes ? { raw_input_contents: [rawBytes] } : {}),
    });
    const same = async (r: Promise<any>) => expect((await r).raw_output_contents[0].equals(asFp32)).toBe(true);
    await same(c.call('ModelInfer', req('INT32', { int_contents: Array.from(ints) })));
    await same(c.call('ModelInfer', req('INT64', { int64_contents: Array.from(ints) })));
    await same(c.call('ModelInfer', req('UINT8', { uint_contents: Array.from(ints) })));
    await same(c.call('ModelInfer', req('FP64', { fp64_contents: Array.from(ints) })));
    await same(c.call('ModelInfer', req('UINT8', undefined, Buffer.from(Uint8Array.from(ints)))));
    await same(c.call('ModelInfer', req('INT32', undefined, raw(ints))));
    const bools = Array.from({ length: ITEM }, (_, i) => i % 3 === 0);
    const asOnes = await httpInfer(
      srv,
      Float32Array.from(bools, (b) => (b ? 1 : 0)),
    );
    expect((await c.call('ModelInfer', req('BOOL', { bool_contents: bools }))).raw_output_contents[0].equals(asOnes)).toBe(true);
    // what FP32 cannot hold exactly, or the datatype cannot hold at all, is refused naming the element
    const lossy = Array.from(ints);
    lossy[5] = 16777217;
    await expectStatus(
      c.call('ModelInfer', req('INT32', { int_contents: lossy })),
      grpc.status.INVALID_ARGUMENT,
      /^input "data": INT32 element 5 \(16777217\) is not exactly representable in FP32/,
    );
    const big = Array.from(ints);
    big[7] = 300;
    await expectStatus(
      c.call('ModelInfer', req('UINT8', { uint_contents: big })),
      grpc.status.INVALID_ARGUMENT,
      /UINT8 element 7 \(300\) is out of the UINT8 range/,
    );
    await expectStatus(c.call('ModelInfer', req('FP16', undefined, Buffer.alloc(2 * ITEM))), grpc.status.INVALID_ARGUMENT, /datatype FP16 is not supported/);
    await expectStatus(
      c.call('ModelInfer', req('BYTES', { bytes_contents: [Buffer.from('a')] })),
      grpc.status.INVALID_ARGUMENT,
      /input "data": datatype BYTES is not supported \(the model takes FP32/,
    );
  });

  test('requested outputs: classification comes back as BYTES (Triton\'s "<score>:<index>"), raw', async () => {
    const x = inputs(2, 7);
    const r = await c.call('ModelInfer', rawRequest(x, { outputs: [{ name: 'prob', parameters: { classification: { int64_param: 3 } } }] }));
    expect(r.outputs).toEqual([{ name: 'prob', datatype: 'BYTES', shape: [2, 3] }]);
    // the BYTES tensor's raw form: each element a 4-byte little-endian length, then its bytes
    const b: Buffer = r.raw_output_contents[0];
    const strings: string[] = [];
    for (let at = 0; at < b.length; at += 4 + b.readUInt32LE(at)) strings.push(b.toString('utf8', at + 4, at + 4 + b.readUInt32LE(at)));
    const enc = encodeInferRequest([{ name: 'data', shape: [2, 1, 28, 28], data: x }], { outputs: [{ name: 'prob', classification: 3 }] });
    const http = await request(`${srv.url}/v2/models/lenet/infer`, { body: enc.body, headers: { [HEADER_LENGTH]: enc.headerLength } });
    expect(strings).toEqual(http.json().outputs[0].data);
    expect(strings[0]).toMatch(/^\d\.\d+:\d$/);
    await expectStatus(
      c.call('ModelInfer', rawRequest(x, { outputs: [{ name: 'prob', parameters: { classification: { int64_param: 11 } } }] })),
      grpc.status.INVALID_ARGUMENT,
      /output "prob": classification 11 is out of range: it must be 1 to 10/,
    );
  });

  test("a client's faults are INVALID_ARGUMENT naming the field, never INTERNAL; the server keeps serving", async () => {
    const x = inputs(1, 3);
    const cases: [object, RegExp][] = [
      [
        rawRequest(inputs(1, 3).subarray(0, 27 * 28), { inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 1, 28, 27] }] }),
        /input "data": shape \[1, 1, 28, 27\] does not match the model's \[-1, 1, 28, 28\]/,
      ],
      [rawRequest(x, { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 1, 28, 28] }] }), /unknown input "image"; the model's inputs are data/],
      [rawRequest(x, { outputs: [{ name: 'logits' }] }), /unknown output "logits"; the model's outputs are prob/],
      [rawRequest(x, { raw_input_contents: [raw(x), raw(x)] }), /raw_input_contents has 2 entries for 1 inputs/],
      [rawRequest(x, { raw_input_contents: [raw(x).subarray(4)] }), /input "data": binary data has 3132 bytes, shape and FP32 need 3136/],
      [
        { model_name: 'lenet', inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 1, 28, 28], contents: { fp32_contents: [1, 2] } }] },
        /input "data": shape \[1, 1, 28, 28\] needs 784 values, contents.fp32_contents has 2/,
      ],
      [
        { model_name: 'lenet', inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 1, 28, 28], contents: { int_contents: [1] } }] },
        /input "data": FP32 values go in contents.fp32_contents, not int_contents/,
      ],
      [
        { model_name: 'lenet', inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 1, 28, 28] }] },
        /input "data" has no contents.fp32_contents and the request has no raw_input_contents/,
      ],
      [{ model_name: 'lenet', inputs: [{ name: 'data', shape: [1, 1, 28, 28] }], raw_input_contents: [raw(x)] }, /input "data": "datatype" is required/],
      [{ model_name: 'lenet' }, /needs at least one input/],
    ];
    for (const [req, details] of cases) await expectStatus(c.call('ModelInfer', req), grpc.status.INVALID_ARGUMENT, details);
    // bytes that are no ModelInferRequest at all: grpc-js would answer INTERNAL; the server says what it is
    const bare = new grpc.Client(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
    const garbage = await new Promise<GrpcError>((resolve) =>
      bare.makeUnaryRequest(
        '/inference.GRPCInferenceService/ModelInfer',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0xff, 0xff, 0xff]),
        (e) => resolve(e!),
      ),
    );
    bare.close();
    expect({ code: grpc.status[garbage.code], details: garbage.details }).toEqual({
      code: 'INVALID_ARGUMENT',
      details: expect.stringMatching(/^ModelInferRequest does not decode: /),
    });
    expect(log.join('\n')).not.toMatch(/^error:/m);
    expect((await c.call('ModelInfer', rawRequest(x))).outputs[0].shape).toEqual([1, 10]);
  });

  test("what the server does not do is UNIMPLEMENTED, saying so (not grpc-js's bare 'not implemented')", async () => {
    for (const m of ['SystemSharedMemoryRegister', 'CudaSharedMemoryStatus'])
      await expectStatus(
        c.call(m, {}),
        grpc.status.UNIMPLEMENTED,
        /shared memory is not supported by this server: send tensors in the request \(raw_input_contents\)/,
      );
    await expectStatus(
      c.call('RepositoryModelLoad', { model_name: 'x' }),
      grpc.status.UNIMPLEMENTED,
      /explicit model load \/ unload is not supported: this server serves one model, "lenet"/,
    );
    await expectStatus(c.call('TraceSetting', {}), grpc.status.UNIMPLEMENTED, /trace settings are not supported/);
    await expectStatus(c.call('LogSettings', {}), grpc.status.UNIMPLEMENTED, /log settings are not supported/);
    const { Client } = inferenceService();
    const s = new Client(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
    const stream = (s as unknown as { ModelStreamInfer: () => grpc.ClientDuplexStream<object, object> }).ModelStreamInfer();
    const e = await new Promise<GrpcError>((resolve) => {
      stream.on('error', resolve);
      stream.on('data', () => undefined);
      stream.write({ model_name: 'lenet' });
    });
    s.close();
    expect(sample(await metricsText(srv), 'modelship_requests_total{route="stream_infer",code="501",protocol="grpc"}')).toBe(1);
    expect({ code: grpc.status[e.code], details: e.details }).toEqual({
      code: 'UNIMPLEMENTED',
      details: expect.stringMatching(/ModelStreamInfer is not supported by this server: send each request with ModelInfer/),
    });
    // none of these is a fault of the server's: no stack trace
    expect(log.join('\n')).not.toMatch(/^error:/m);
  });

  test("only the server's own faults are INTERNAL, their stack traces logged, as HTTP's 500s", async () => {
    // a batch that fails to run, as a dead inference thread's would (the batcher's runner, replaced for one call)
    const batcher = srv.batcher as unknown as { run: unknown };
    const runner = batcher.run;
    batcher.run = () => Promise.reject(new Error('the infer worker thread exited (134)'));
    try {
      await expectStatus(c.call('ModelInfer', rawRequest(inputs(1, 5))), grpc.status.INTERNAL, /^internal error: the infer worker thread exited \(134\)$/);
    } finally {
      batcher.run = runner;
    }
    expect(log.join('\n')).toMatch(/^error: Error: the infer worker thread exited \(134\)\n\s+at /m);
    log.length = 0;
    expect((await c.call('ModelInfer', rawRequest(inputs(1, 5)))).outputs[0].shape).toEqual([1, 10]);
  });

  test('gRPC calls are counted on the HTTP routes\' series, protocol="grpc", code the HTTP equivalent of their status', async () => {
    const before = await metricsText(srv);
    await c.call('ModelInfer', rawRequest(inputs(1, 9)));
    await expectStatus(
      c.call('ModelInfer', rawRequest(inputs(1, 9), { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1, 28, 28] }] })),
      grpc.status.INVALID_ARGUMENT,
      /unknown input/,
    );
    await expectStatus(c.call('ModelMetadata', { name: 'nope' }), grpc.status.NOT_FOUND, /not served/);
    await c.call('ServerLive');
    await c.call('ModelReady', { name: 'lenet' });
    await httpInfer(srv, inputs(1, 9));
    const after = await metricsText(srv);
    const delta = (series: string) => sample(after, series) - sample(before, series);
    expect(delta('modelship_requests_total{route="infer",code="200",protocol="grpc"}')).toBe(1);
    expect(delta('modelship_requests_total{route="infer",code="400",protocol="grpc"}')).toBe(1);
    expect(delta('modelship_request_errors_total{route="infer",code="400",protocol="grpc"}')).toBe(1);
    expect(delta('modelship_requests_total{route="metadata",code="404",protocol="grpc"}')).toBe(1);
    expect(delta('modelship_requests_total{route="health",code="200",protocol="grpc"}')).toBe(1);
    expect(delta('modelship_requests_total{route="ready",code="200",protocol="grpc"}')).toBe(1);
    expect(delta('modelship_request_duration_seconds_count{route="infer",protocol="grpc"}')).toBe(2);
    // HTTP's series are as they were: no protocol label
    expect(delta('modelship_requests_total{route="infer",code="200"}')).toBe(1);
  });
});

describe('gRPC and HTTP share the batcher, the byte budget, the deadline and the drain', () => {
  let srv: RunningServer;
  let c: ReturnType<typeof client>;
  const log: string[] = [];
  beforeAll(async () => {
    // idleFlush off and a long queue delay: requests wait a second for company, so concurrent ones batch together and
    // a short deadline passes while one waits; the body limit fits one LeNet item (3136 bytes) but not two, the
    // in-flight bound two items but not three
    srv = await startServer(options({ maxBatchSize: 8, maxQueueDelayMs: 1000, idleFlush: false, maxBodyBytes: 5000, maxInflightBytes: 8000 }, log));
    c = client(srv.grpcPort!);
    // (connected before the tests time anything)
    await c.call('ServerLive');
  });
  afterAll(async () => {
    c.close();
    await srv.drain();
  });

  test('an HTTP and a gRPC request in the same queue delay run as one batch, each getting its own item', async () => {
    const before = { ...srv.batcher.stats };
    const x = readNpy(path.join(LENET, 'input_b2.npy')).data;
    const y = readNpy(path.join(LENET, 'output_b2__prob.npy')).data;
    const [viaGrpc, viaHttp] = await Promise.all([c.call('ModelInfer', rawRequest(x.slice(0, ITEM))), httpInfer(srv, x.slice(ITEM))]);
    expect(srv.batcher.stats.batches - before.batches).toBe(1);
    expect(srv.batcher.stats.items - before.items).toBe(2);
    const f = (b: Buffer) => new Float32Array(new Uint8Array(b).buffer);
    const diff = (a: Float32Array, ref: Float32Array) => Math.max(...a.map((v, i) => Math.abs(v - ref[i])));
    expect(diff(f(viaGrpc.raw_output_contents[0]), y.subarray(0, 10))).toBeLessThanOrEqual(1e-5);
    expect(diff(f(viaHttp), y.subarray(10))).toBeLessThanOrEqual(1e-5);
  });

  test('a message over the body limit is RESOURCE_EXHAUSTED from grpc-js; a third item over the in-flight bound too, from the budget', async () => {
    await expectStatus(c.call('ModelInfer', rawRequest(inputs(2, 1))), grpc.status.RESOURCE_EXHAUSTED, /^Received message larger than max \(\d+ vs 5000\)$/);
    const three = [1, 2, 3].map((i) =>
      c.call('ModelInfer', rawRequest(inputs(1, i))).then(
        () => 'ok',
        (e: GrpcError) => `${grpc.status[e.code]}: ${e.details}`,
      ),
    );
    const got = await Promise.all(three);
    expect(got.filter((g) => g === 'ok')).toHaveLength(2);
    expect(got.find((g) => g !== 'ok')).toMatch(
      /^RESOURCE_EXHAUSTED: the server holds \d+ request bytes \(bound 8000\); this request's \d+ more do not fit now$/,
    );
    const m = await metricsText(srv);
    expect(sample(m, 'modelship_requests_total{route="infer",code="429",protocol="grpc"}')).toBe(1);
    expect(sample(m, 'modelship_inflight_request_bytes')).toBe(0);
  });

  test("the client's deadline: DEADLINE_EXCEEDED while the request waits in the queue, counted 504; a cancelled call gives its bytes back at once", async () => {
    const before = await metricsText(srv);
    await expectStatus(c.call('ModelInfer', rawRequest(inputs(1, 4)), { deadlineMs: 100 }), grpc.status.DEADLINE_EXCEEDED, /Deadline exceeded/);
    const call = c.start('ModelInfer', rawRequest(inputs(1, 5)), {}, () => undefined);
    const held = async () => sample(await metricsText(srv), 'modelship_inflight_request_bytes');
    await until(async () => (await held()) > 3136, 'holding its bytes');
    call.cancel();
    await until(async () => (await held()) === 0, 'given back');
    // (its item is still queued: the batch runs a second after it came)
    expect(srv.batcher.busy).toBe(true);
    const mid = await metricsText(srv);
    expect(
      sample(mid, 'modelship_requests_total{route="infer",code="499",protocol="grpc"}') -
        sample(before, 'modelship_requests_total{route="infer",code="499",protocol="grpc"}'),
    ).toBe(1);
    expect(
      sample(mid, 'modelship_requests_total{route="infer",code="504",protocol="grpc"}') -
        sample(before, 'modelship_requests_total{route="infer",code="504",protocol="grpc"}'),
    ).toBe(1);
    // and the server goes on
    expect((await c.call('ModelInfer', rawRequest(inputs(1, 6)))).outputs[0].shape).toEqual([1, 10]);
  });
});

describe('the API key over gRPC', () => {
  let srv: RunningServer;
  let c: ReturnType<typeof client>;
  beforeAll(async () => {
    srv = await startServer(options({ apiKey: 'k3y', authFailureLimit: 4 }));
    c = client(srv.grpcPort!);
  });
  afterAll(async () => {
    c.close();
    await srv.drain();
  });

  test('health RPCs are open; every other needs "authorization: Bearer <key>"', async () => {
    expect(await c.call('ServerLive')).toEqual({ live: true });
    expect(await c.call('ServerReady')).toEqual({ ready: true });
    expect((await c.call('ModelMetadata', { name: 'lenet' }, { key: 'k3y' })).name).toBe('lenet');
    const x = inputs(1, 2);
    expect(
      (await c.call('ModelInfer', rawRequest(x), { key: 'k3y' })).raw_output_contents[0].equals(await httpInfer(srv, x, { authorization: 'Bearer k3y' })),
    ).toBe(true);
    await expectStatus(
      c.call('ModelMetadata', { name: 'lenet' }),
      grpc.status.UNAUTHENTICATED,
      /missing or invalid API key: send the metadata "authorization: Bearer <key>"/,
    );
    await expectStatus(c.call('ModelInfer', rawRequest(x), { key: 'wrong' }), grpc.status.UNAUTHENTICATED, /missing or invalid API key/);
    // (nothing about what is served without it, not even which models are not)
    await expectStatus(c.call('ModelReady', { name: 'resnet' }), grpc.status.UNAUTHENTICATED, /API key/);
    const m = await metricsText(srv, { authorization: 'Bearer k3y' });
    expect(sample(m, 'modelship_requests_total{route="auth",code="401",protocol="grpc"}')).toBe(3);
  });

  test('failed keys count per address across both doors; past the limit both refuse a wrong or missing key (RESOURCE_EXHAUSTED, 429), never the right one', async () => {
    // three failures so far over gRPC; the fourth over HTTP reaches the limit of 4
    expect((await request(`${srv.url}/v2/models/lenet`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    await expectStatus(
      c.call('ModelMetadata', { name: 'lenet' }, { key: 'nope' }),
      grpc.status.RESOURCE_EXHAUSTED,
      /^too many failed API-key attempts from 127\.0\.0\.1; without the right key, try again in \d+ s$/,
    );
    expect((await request(`${srv.url}/v2/models/lenet`)).status).toBe(429);
    // the right key is served on both doors, whatever its address's count
    expect((await c.call('ModelMetadata', { name: 'lenet' }, { key: 'k3y' })).name).toBe('lenet');
    expect((await request(`${srv.url}/v2/models/lenet`, { headers: { authorization: 'Bearer k3y' } })).status).toBe(200);
    // health stays open to the orchestrator's probes
    expect(await c.call('ServerReady')).toEqual({ ready: true });
  });
});

describe('draining over gRPC', () => {
  test('readiness false on both doors through the drain delay, the call in flight answered, new inference UNAVAILABLE, then the port closed', async () => {
    const log: string[] = [];
    const srv = await startServer(options({ drainDelayMs: 1000, drainTimeoutMs: 5000, maxQueueDelayMs: 2000, idleFlush: false }, log));
    const c = client(srv.grpcPort!);
    try {
      const x = inputs(1, 8);
      // queued for 2 s: in flight through the drain delay and into the close
      const inflight = c.call('ModelInfer', rawRequest(x));
      await until(() => srv.batcher.busy, 'queued');
      const drained = srv.drain();
      expect(await c.call('ServerReady')).toEqual({ ready: false });
      expect(await c.call('ModelReady', { name: 'lenet' })).toEqual({ ready: false });
      expect((await request(`${srv.url}/v2/health/ready`)).status).toBe(503);
      expect(await c.call('ServerLive')).toEqual({ live: true });
      await until(() => log.some((l) => l.startsWith('closing:')), 'closing');
      // closing: the call in flight is still to be answered; a new one is refused
      await expectStatus(c.call('ModelInfer', rawRequest(x)), grpc.status.UNAVAILABLE, /./);
      const answered = await inflight;
      expect(answered.outputs[0].shape).toEqual([1, 10]);
      await drained;
      expect(log.join('\n')).toMatch(/closing: no new connections; finishing 1 in-flight request/);
      const after = client(srv.grpcPort!);
      await expectStatus(after.call('ServerLive', {}, { deadlineMs: 2000 }), grpc.status.UNAVAILABLE, /./);
      after.close();
    } finally {
      c.close();
    }
  });

  test('a call that never ends is cut at the drain timeout', async () => {
    const log: string[] = [];
    // a queue delay past the drain timeout: the call is still waiting when the timeout comes
    const srv = await startServer(options({ drainDelayMs: 0, drainTimeoutMs: 400, maxQueueDelayMs: 1500, idleFlush: false }, log));
    const c = client(srv.grpcPort!);
    const inflight = c.call('ModelInfer', rawRequest(inputs(1, 1))).then(
      () => 'answered',
      (e: GrpcError) => grpc.status[e.code],
    );
    await until(() => srv.batcher.busy, 'queued');
    const t0 = Date.now();
    await srv.drain();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await inflight).toMatch(/^(CANCELLED|UNAVAILABLE)$/);
    expect(log.join('\n')).toMatch(/drain timeout: cutting 1 unfinished request/);
    c.close();
    // (its item, left in the queue, fails against the stopped thread when the queue delay ends)
    await until(() => !srv.batcher.busy, 'done with the queue');
  });
});

describe('starting the gRPC door', () => {
  test('a port that cannot be bound is an io error naming grpc-port', async () => {
    const taken = await startServer(options());
    // (grpc-js says so on stderr too)
    const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const e = await startServer(options({ grpcPort: taken.grpcPort })).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(ModelshipError);
      expect(e).toMatchObject({ code: 'io', location: { field: 'grpc-port' } });
      expect((e as Error).message).toMatch(new RegExp(`cannot listen for gRPC on 127\\.0\\.0\\.1:${taken.grpcPort}`));
    } finally {
      stderr.mockRestore();
      await taken.drain();
    }
  });

  test('without grpcPort (DEFAULT_SERVE) there is no gRPC listener; `modelship serve` opens one on 8001 unless --grpc-port off', async () => {
    const srv = await startServer({ ...options(), grpcPort: undefined });
    expect(srv.grpcPort).toBeUndefined();
    await srv.drain();
    expect(DEFAULT_SERVE.grpcPort).toBeUndefined();
    expect(serveOptions(['--model', 'm.onnx'], {}, () => undefined).grpcPort).toBe(8001);
    expect(serveOptions(['--model', 'm.onnx', '--grpc-port', 'off'], {}, () => undefined).grpcPort).toBeUndefined();
    expect(serveOptions(['--model', 'm.onnx'], { MODELSHIP_GRPC_PORT: '9001' }, () => undefined).grpcPort).toBe(9001);
    const out: string[] = [];
    await serveMain(['--help'], { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream);
    expect(out.join('')).toMatch(/--grpc-port \/ MODELSHIP_GRPC_PORT \(default 8001\)\n\s+KServe v2 over gRPC/);
  });
});
