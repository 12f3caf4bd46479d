import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { status } from '@grpc/grpc-js';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer } from '../src/serve/server';
import { KServeGrpcClient, KServeGrpcError } from '../src/protocol/kserve-grpc-client';
import { grpcTarget } from '../src/protocol/runtime';
import { goldenRequest, goldenRequests, httpTransport, measureLatency, sendGolden } from '../src/shared/golden';
import { readNpy } from '../src/util/npy';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { closedPort } from './helpers/http';

// The KServe v2 gRPC client smoke and the rollout's golden requests use (src/protocol/kserve-grpc-client.ts), against
// `modelship serve` started from source on LeNet with its gRPC listener: the server's and the model's metadata, the
// golden requests against LeNet's Caffe reference, the same outputs as over HTTP, and its errors named by whose they
// are — the server's status, or no answer at all (nothing listening, a peer that never answers before the deadline).

const LENET = path.join(FIXTURES, 'lenet');
const KEY = 'grpc-client-k3y';

let srv: RunningServer;
let keyed: RunningServer;
let client: KServeGrpcClient;

beforeAll(async () => {
  const conv = convertCaffe({
    prototxt: fs.readFileSync(path.join(LENET, 'deploy.prototxt')),
    prototxtFile: 'p',
    caffemodel: fs.readFileSync(path.join(LENET, 'weights.caffemodel')),
    caffemodelFile: 'w',
  });
  const model = path.join(tmpDir('modelship-grpc-client-'), 'lenet.onnx');
  fs.writeFileSync(model, conv.onnx);
  const base = {
    ...DEFAULT_SERVE,
    host: '127.0.0.1',
    port: 0,
    grpcPort: 0,
    metricsPort: undefined,
    modelPath: model,
    modelName: 'lenet',
    log: () => undefined,
  };
  srv = await startServer(base);
  keyed = await startServer({ ...base, apiKey: KEY });
  client = new KServeGrpcClient(`127.0.0.1:${srv.grpcPort}`);
}, 60_000);

afterAll(async () => {
  client?.close();
  await srv?.drain();
  await keyed?.drain();
});

test('ready, which server, the model: what ServerReady, ServerMetadata and ModelMetadata say', async () => {
  expect(await client.ready()).toBe(true);
  const server = await client.server();
  expect(server).toMatchObject({ runtime: 'modelship', name: 'modelship' });
  expect(server.version).not.toBe('');
  expect(await client.modelMetadata('lenet')).toEqual({
    inputs: [{ name: 'data', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
    outputs: [{ name: 'prob', datatype: 'FP32', shape: [-1, 10] }],
  });
});

test("golden requests over gRPC reproduce LeNet's Caffe reference, with the very outputs HTTP gives", async () => {
  const g = await goldenRequests(client, { reference: LENET, modelName: 'lenet', inputName: 'data', singleInput: true, tolerance: 1e-5 });
  expect(g.failures).toEqual([]);
  expect(g.compared).toBeGreaterThan(0);
  expect(g.batch1?.input.shape).toEqual([1, 1, 28, 28]);
  const x = readNpy(path.join(LENET, 'input_b2.npy'));
  const req = goldenRequest({ name: 'data', shape: x.shape, data: x.data });
  const overGrpc = await sendGolden(client, 'lenet', req);
  const overHttp = await sendGolden(httpTransport(srv.url), 'lenet', req);
  if (overGrpc.failure !== undefined || overHttp.failure !== undefined) throw new Error(`${overGrpc.failure} ${overHttp.failure}`);
  expect(overGrpc.outputs).toHaveLength(1);
  expect(overGrpc.outputs[0]).toMatchObject({ name: 'prob', shape: [2, 10], datatype: 'FP32' });
  expect(Buffer.from(overGrpc.outputs[0].data.buffer, overGrpc.outputs[0].data.byteOffset, 40 * 2)).toEqual(
    Buffer.from(overHttp.outputs[0].data.buffer, overHttp.outputs[0].data.byteOffset, 40 * 2),
  );
  // the latency measurement over one channel, several calls at once
  const m = await measureLatency(client, 'lenet', g.batch1!, 20, 4);
  expect({ errors: m.errors, n: m.sorted.length }).toEqual({ errors: 0, n: 20 });
});

test("the server's refusals are named as its gRPC status and details", async () => {
  const unknown = await client.modelMetadata('nope').catch((e: unknown) => e);
  expect(unknown).toBeInstanceOf(KServeGrpcError);
  expect(unknown).toMatchObject({ source: 'server', code: status.NOT_FOUND });
  expect((unknown as Error).message).toMatch(new RegExp(`^ModelMetadata to 127\\.0\\.0\\.1:${srv.grpcPort} answered gRPC status NOT_FOUND \\(5\\): .*nope`));
  // a golden request the model cannot take (an input it does not have: a single-input reference is read as
  // input_b<N>.npy whatever the name): the reason reaches the golden failure as the server gave it
  const g = await goldenRequests(client, { reference: LENET, modelName: 'lenet', inputName: 'wrong', singleInput: true, tolerance: 1e-5 });
  expect(g.failures[0]).toMatch(/^golden request at batch 1 over gRPC: ModelInfer to 127\.0\.0\.1:\d+ answered gRPC status INVALID_ARGUMENT \(3\): .*wrong/);
});

test('an API key travels as authorization metadata: refused without it (UNAUTHENTICATED), served with it', async () => {
  const without = new KServeGrpcClient(`127.0.0.1:${keyed.grpcPort}`);
  const withKey = new KServeGrpcClient(`grpc://127.0.0.1:${keyed.grpcPort}`, { headers: { authorization: `Bearer ${KEY}` } });
  try {
    const e = await without.modelMetadata('lenet').catch((x: unknown) => x);
    expect(e).toMatchObject({ source: 'server', code: status.UNAUTHENTICATED });
    expect((await withKey.modelMetadata('lenet')).inputs[0].name).toBe('data');
    // per call too, as golden requests pass their headers
    expect((await without.modelMetadata('lenet', { headers: { authorization: `Bearer ${KEY}` } })).outputs[0].name).toBe('prob');
  } finally {
    without.close();
    withKey.close();
  }
});

test('no answer: nothing listening is the network; a peer that never answers is the deadline', async () => {
  const refused = new KServeGrpcClient(`127.0.0.1:${await closedPort()}`);
  // a TCP listener that takes the connection and never speaks HTTP/2
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const hung = new KServeGrpcClient(`127.0.0.1:${(silent.address() as net.AddressInfo).port}`);
  try {
    expect(await refused.ready(1000)).toBe(false);
    const e = await refused.server({ timeoutMs: 2000 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ source: 'network', code: status.UNAVAILABLE });
    expect((e as Error).message).toMatch(/^ServerMetadata to 127\.0\.0\.1:\d+: no answer \(gRPC UNAVAILABLE \(14\): /);
    const t0 = Date.now();
    const d = await hung.modelMetadata('lenet', { timeoutMs: 500 }).catch((x: unknown) => x);
    expect(d).toMatchObject({ source: 'deadline', code: status.DEADLINE_EXCEEDED });
    expect((d as Error).message).toMatch(/: no answer within 500 ms \(gRPC DEADLINE_EXCEEDED \(4\)\)$/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await hung.ready(300)).toBe(false);
  } finally {
    refused.close();
    hung.close();
    for (const s of sockets) s.destroy();
    silent.close();
  }
});

test('gRPC targets: grpc:// (plaintext), grpcs:// (TLS) or host:port; anything else is not one', () => {
  expect(grpcTarget('grpc://canary.example:8001')).toEqual({ target: 'canary.example:8001', tls: false });
  expect(grpcTarget('grpcs://canary.example:443/')).toEqual({ target: 'canary.example:443', tls: true });
  expect(grpcTarget('10.0.0.7:8001')).toEqual({ target: '10.0.0.7:8001', tls: false });
  expect(grpcTarget('grpc://[::1]:8001')).toEqual({ target: '[::1]:8001', tls: false });
  for (const bad of ['http://canary:8000', 'grpc://canary', 'grpc://canary:0', 'grpc://canary:8001/v2', 'canary']) expect(grpcTarget(bad)).toBeUndefined();
});
