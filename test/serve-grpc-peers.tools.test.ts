import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer } from '../src/serve/server';
import { decodeInferResponse, encodeInferRequest, HEADER_LENGTH } from '../src/protocol/kserve';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { request } from './helpers/http';
import { rng } from './helpers/rng';
import { tritonClientPython } from './helpers/triton-lab';

// modelship serve's gRPC door with its field's own client: tritonclient.grpc 2.41.0, Triton's Python client (the
// venv .venv-triton-client, test/requirements-triton-client.txt), against the server started from source on LeNet.
// What the client reads must be what the server's HTTP door answers for the same inputs, bit for bit.

const run = promisify(execFile);
const LENET = path.join(FIXTURES, 'lenet');
const ITEM = 28 * 28;
const BATCHES = [1, 4, 8];

/**
 * A tritonclient.grpc session: every step's result (or exception, with its gRPC status) in a JSON report on stdout.
 * argv: host:port, model, the directory of inputs (b<N>.bin, FP32), a JSON of headers ('' for none).
 */
const GRPC_CLIENT_CHECK = `
import base64, json, sys, traceback
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

url, model, inputs = sys.argv[1], sys.argv[2], sys.argv[3]
headers = json.loads(sys.argv[4]) if sys.argv[4] else None
report = {'steps': {}, 'errors': {}}

def step(name, fn):
    try:
        report['steps'][name] = fn()
    except InferenceServerException as e:
        report['errors'][name] = {'status': e.status(), 'message': e.message()}
    except Exception as e:
        report['errors'][name] = {'status': type(e).__name__, 'message': traceback.format_exc()[-2000:]}

c = grpcclient.InferenceServerClient(url=url)
step('is_server_live', lambda: c.is_server_live(headers=headers))
step('is_server_ready', lambda: c.is_server_ready(headers=headers))
step('is_model_ready', lambda: c.is_model_ready(model, headers=headers))
step('get_server_metadata', lambda: c.get_server_metadata(headers=headers, as_json=True))
step('get_model_metadata', lambda: c.get_model_metadata(model, headers=headers, as_json=True))
step('get_model_config', lambda: c.get_model_config(model, headers=headers, as_json=True))

def infer(b, class_count=0, shape=None):
    x = np.fromfile('%s/b%d.bin' % (inputs, b), dtype=np.float32).reshape(shape or (b, 1, 28, 28))
    i = grpcclient.InferInput('data', list(x.shape), 'FP32')
    i.set_data_from_numpy(x)
    o = grpcclient.InferRequestedOutput('prob', class_count=class_count)
    r = c.infer(model, [i], outputs=[o], request_id='b%d' % b, headers=headers)
    y = r.as_numpy('prob')
    out = r.get_output('prob')
    resp = r.get_response()
    if class_count:
        return {'shape': list(y.shape), 'datatype': out.datatype, 'classes': [[s.decode() for s in row] for row in y]}
    return {'shape': list(y.shape), 'dtype': str(y.dtype), 'datatype': out.datatype, 'id': resp.id,
            'bytes': base64.b64encode(y.astype('<f4').tobytes()).decode()}

for b in ${JSON.stringify(BATCHES)}:
    step('infer_b%d' % b, lambda: infer(b))
step('infer_b1_classification', lambda: infer(1, class_count=3))
step('infer_wrong_shape', lambda: infer(1, shape=(1, 1, 784)))
step('get_inference_statistics', lambda: c.get_inference_statistics(model, headers=headers, as_json=True))
c.close()
print(json.dumps(report))
`;

interface Report {
  steps: Record<string, any>;
  errors: Record<string, { status: string; message: string }>;
}

async function grpcClientCheck(port: number, dir: string, headers?: Record<string, string>): Promise<Report> {
  const r = await run(tritonClientPython(), ['-c', GRPC_CLIENT_CHECK, `127.0.0.1:${port}`, 'lenet', dir, headers ? JSON.stringify(headers) : ''], {
    maxBuffer: 16 * 2 ** 20,
    timeout: 120_000,
  });
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** What HTTP's /infer answers for `x`: FP32 bits (binary output), or classification strings. */
async function viaHttp(srv: RunningServer, x: Float32Array, headers: Record<string, string>, classification?: number): Promise<Buffer | string[]> {
  const enc = encodeInferRequest([{ name: 'data', shape: [x.length / ITEM, 1, 28, 28], data: x }], {
    binaryOutputs: true,
    ...(classification ? { outputs: [{ name: 'prob', classification }] } : {}),
  });
  const r = await request(`${srv.url}/v2/models/lenet/infer`, { body: enc.body, headers: { [HEADER_LENGTH]: enc.headerLength, ...headers } });
  expect(r.status).toBe(200);
  const out = decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH])).outputs[0];
  return out.strings ?? Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength);
}

describe.each([
  ['without an API key', undefined],
  ['with an API key, sent as the authorization header', 'k3y'],
])('tritonclient.grpc 2.41.0 against modelship serve %s', (_name, apiKey) => {
  let srv: RunningServer;
  const dir = tmpDir('modelship-grpc-peers-');
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const x = new Map<number, Float32Array>();
  let report: Report;
  beforeAll(async () => {
    const model = path.join(dir, 'lenet.onnx');
    fs.writeFileSync(
      model,
      convertCaffe({
        prototxt: fs.readFileSync(path.join(LENET, 'deploy.prototxt')),
        prototxtFile: 'p',
        caffemodel: fs.readFileSync(path.join(LENET, 'weights.caffemodel')),
        caffemodelFile: 'w',
      }).onnx,
    );
    const r = rng(41);
    for (const b of BATCHES) {
      x.set(
        b,
        Float32Array.from({ length: b * ITEM }, () => Math.fround(r() * 255)),
      );
      fs.writeFileSync(path.join(dir, `b${b}.bin`), Buffer.from(x.get(b)!.buffer));
    }
    srv = await startServer({ ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, grpcPort: 0, modelPath: model, modelName: 'lenet', apiKey, log: () => undefined });
    report = await grpcClientCheck(srv.grpcPort!, dir, apiKey ? headers : undefined);
  }, 600_000);
  afterAll(() => srv?.drain());

  test('health, readiness and metadata as the client reads them', async () => {
    const { steps, errors } = report;
    for (const s of ['is_server_live', 'is_server_ready', 'is_model_ready']) expect([s, steps[s], errors[s]]).toEqual([s, true, undefined]);
    expect(steps.get_server_metadata).toEqual((await request(`${srv.url}/v2`, { headers })).json());
    // (MessageToJson: int64 dims as strings)
    expect(steps.get_model_metadata).toEqual({
      name: 'lenet',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'data', datatype: 'FP32', shape: ['-1', '1', '28', '28'] }],
      outputs: [{ name: 'prob', datatype: 'FP32', shape: ['-1', '10'] }],
    });
  });

  test.each(BATCHES)('infer at batch %i: the same bits as the HTTP door', async (b) => {
    const got = report.steps[`infer_b${b}`];
    expect([got, report.errors[`infer_b${b}`]]).toEqual([
      expect.objectContaining({ shape: [b, 10], dtype: 'float32', datatype: 'FP32', id: `b${b}` }),
      undefined,
    ]);
    expect(Buffer.from(got.bytes, 'base64').equals((await viaHttp(srv, x.get(b)!, headers)) as Buffer)).toBe(true);
  });

  test("classification (class_count 3): BYTES strings, the same as HTTP's", async () => {
    const got = report.steps.infer_b1_classification;
    expect(got).toMatchObject({ shape: [1, 3], datatype: 'BYTES' });
    expect(got.classes[0]).toEqual(await viaHttp(srv, x.get(1)!, headers, 3));
  });

  test('a wrong shape is InferenceServerException with StatusCode.INVALID_ARGUMENT, saying which input and shape', () => {
    expect(report.steps.infer_wrong_shape).toBeUndefined();
    expect(report.errors.infer_wrong_shape).toEqual({
      status: 'StatusCode.INVALID_ARGUMENT',
      message: expect.stringMatching(/input "data": shape \[1, 1, 784\] does not match the model's \[-1, 1, 28, 28\]/),
    });
  });

  test("Triton's extensions: get_model_config and get_inference_statistics", async () => {
    const http = (await request(`${srv.url}/v2/models/lenet/config`, { headers })).json();
    expect(report.steps.get_model_config.config).toMatchObject({
      name: 'lenet',
      platform: http.platform,
      max_batch_size: http.max_batch_size,
      input: [{ name: 'data', data_type: 'TYPE_FP32', dims: ['1', '28', '28'] }],
      output: [{ name: 'prob', data_type: 'TYPE_FP32', dims: ['10'] }],
    });
    const stats = report.steps.get_inference_statistics.model_stats;
    expect(stats).toHaveLength(1);
    // every inference the client made (batches 1, 4, 8 and the classification's 1), and its refused one as a failure
    expect(stats[0]).toMatchObject({ name: 'lenet', version: '1', inference_count: String(1 + 4 + 8 + 1), inference_stats: { fail: { count: '1' } } });
    expect(Number(stats[0].inference_stats.success.count)).toBe(4);
  });

  if (apiKey)
    test('without the key, the client gets StatusCode.UNAUTHENTICATED; health stays open', async () => {
      const r = await grpcClientCheck(srv.grpcPort!, dir);
      expect(r.steps.is_server_live).toBe(true);
      expect(r.steps.is_server_ready).toBe(true);
      expect(r.errors.is_model_ready).toEqual({ status: 'StatusCode.UNAUTHENTICATED', message: expect.stringMatching(/missing or invalid API key/) });
      expect(r.errors.infer_b1?.status).toBe('StatusCode.UNAUTHENTICATED');
    });
});
