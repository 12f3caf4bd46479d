import * as fs from 'fs';
import * as path from 'path';
import * as net from 'net';
import * as http from 'http';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer } from '../src/serve/server';
import { serveOptions } from '../src/serve/main';
import { runCli } from './helpers/cli';
import { FIXTURES, tmpDir } from './helpers/caffe';

// Clients' faults are the clients': malformed request targets and bodies cut short answer 4xx (or nothing, for a
// client that is gone) and are counted as 4xx, never as the server's 5xx, which the canary's error-rate gate reads.
// The clients are raw sockets on 127.0.0.1 (what a browser or curl would not send).

let srv: RunningServer;
let model = '';
const log: string[] = [];

beforeAll(async () => {
  const d = path.join(FIXTURES, 'lenet');
  const onnx = convertCaffe({
    prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
    prototxtFile: 'p',
    caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
    caffemodelFile: 'w',
  }).onnx;
  model = path.join(tmpDir(), 'lenet.onnx');
  fs.writeFileSync(model, onnx);
  srv = await startServer({ ...DEFAULT_SERVE, host: '127.0.0.1', port: 0, modelPath: model, modelName: 'lenet', apiKey: 'k3y', log: (l) => log.push(l) });
});
afterAll(() => srv.drain());

/** Send raw bytes on a fresh connection; resolve with what came back when the server closes or `ms` pass. */
function raw(data: string | Buffer, opts: { endAfterWrite?: boolean; destroyAfterMs?: number; ms?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    let got = '';
    const done = () => resolve(got);
    sock.on('data', (c) => (got += c.toString()));
    sock.on('close', done);
    sock.on('error', done);
    sock.write(data);
    if (opts.destroyAfterMs !== undefined) setTimeout(() => sock.destroy(), opts.destroyAfterMs);
    setTimeout(() => sock.destroy(), opts.ms ?? 2000).unref();
  });
}

const status = (reply: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1]);
const metrics = async () => (await raw('GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nConnection: close\r\n\r\n')).toString();

describe('malformed request targets are 400, not 500', () => {
  test.each([
    ['a lone percent sign', '/v2/models/%/ready'],
    ['a bad escape', '/v2/models/%zz'],
    ['a bad escape in infer', '/v2/models/%E0%A4%A/infer'],
  ])('%s', async (_n, target) => {
    const r = await raw(`GET ${target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nConnection: close\r\n\r\n`);
    expect(status(r)).toBe(400);
    expect(r).toMatch(/malformed percent-encoding/);
  });

  test('`GET //` is an ordinary unknown route (404), behind the API key like every other', async () => {
    expect(status(await raw('GET // HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toBe(401);
    expect(status(await raw('GET // HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nConnection: close\r\n\r\n'))).toBe(404);
  });

  test('an absolute-form or asterisk target is 400', async () => {
    expect(status(await raw('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).toBe(400);
  });
});

describe('a client that goes away mid-body is its own fault', () => {
  test('counted as 499 on its route, no 5xx, no stack trace in the log', async () => {
    const before = log.length;
    const body = Buffer.alloc(4096, 1);
    // promises 1 MiB, sends 4 KiB, then disconnects
    await raw(
      Buffer.concat([Buffer.from(`POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Length: 1048576\r\n\r\n`), body]),
      { destroyAfterMs: 200, ms: 1000 },
    );
    // and one without a Content-Length (chunked), cut short too
    await raw(`POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n${'a'.repeat(100)}`, {
      destroyAfterMs: 200,
      ms: 1000,
    });
    await new Promise((r) => setTimeout(r, 300));
    const m = await metrics();
    expect(m).toMatch(/^modelship_requests_total\{route="infer",code="499"\} 2$/m);
    expect(m).not.toMatch(/code="5\d\d"/);
    expect(log.slice(before).join('\n')).not.toMatch(/error:|at .*\.js/);
  });

  test('infer on a model not served here is counted on route infer (404)', async () => {
    const r = await raw('POST /v2/models/other/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    expect(status(r)).toBe(404);
    expect(await metrics()).toMatch(/^modelship_requests_total\{route="infer",code="404"\} 1$/m);
  });
});

describe('the protocol as written', () => {
  const infer = (body: object): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const data = Buffer.from(JSON.stringify(body));
      const req = http.request(
        `${srv.url}/v2/models/lenet/infer`,
        { method: 'POST', headers: { authorization: 'Bearer k3y', 'content-type': 'application/json', 'content-length': data.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  const input = { name: 'data', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array.from({ length: 784 }, (_, i) => (i % 7) / 7) };

  test('a per-output binary_data: false overrides binary_data_output: true (and true overrides false)', async () => {
    const json = await infer({ inputs: [input], parameters: { binary_data_output: true }, outputs: [{ name: 'prob', parameters: { binary_data: false } }] });
    expect(json.status).toBe(200);
    expect(json.headers['inference-header-content-length']).toBeUndefined();
    expect(JSON.parse(json.body.toString()).outputs[0].data).toHaveLength(10);
    const bin = await infer({ inputs: [input], parameters: { binary_data_output: false }, outputs: [{ name: 'prob', parameters: { binary_data: true } }] });
    const hl = Number(bin.headers['inference-header-content-length']);
    expect(JSON.parse(bin.body.subarray(0, hl).toString()).outputs[0].parameters.binary_data_size).toBe(40);
    // absent, the request's setting holds
    const all = await infer({ inputs: [input], parameters: { binary_data_output: true }, outputs: [{ name: 'prob' }] });
    expect(all.headers['inference-header-content-length']).toBeDefined();
  });

  test('process metrics carry one prefix (modelship_process_…, not modelship_process_process_…)', async () => {
    const m = await metrics();
    expect(m).toMatch(/^modelship_process_cpu_seconds_total /m);
    expect(m).not.toMatch(/process_process_/);
  });
});

describe('SIGTERM with stalled clients', () => {
  test('readiness goes false, requests are still served through the drain delay (Connection: close), stalled connections are cut at the drain timeout', async () => {
    const lines: string[] = [];
    const s = await startServer({
      ...DEFAULT_SERVE,
      host: '127.0.0.1',
      port: 0,
      modelPath: model,
      modelName: 'lenet',
      drainDelayMs: 600,
      drainTimeoutMs: 800,
      log: (l) => lines.push(l),
    });
    const send = (data: string) => {
      const sock = net.connect(s.port, '127.0.0.1');
      let got = '';
      const closed = new Promise<string>((resolve) => sock.on('close', () => resolve(got)));
      sock.on('data', (c) => (got += c.toString()));
      sock.on('error', () => undefined);
      sock.write(data);
      return closed;
    };
    // one client never finishes its headers, one never finishes its body
    const headerStall = send('GET /v2/models/lenet HTTP/1.1\r\nHost: x\r\n');
    const bodyStall = send('POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"inputs"');
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const drained = s.drain();
    // within the delay: not ready, but still answering, each answer closing its connection
    const ready = await send('GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(status(ready)).toBe(503);
    const meta = await send('GET /v2/models/lenet HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(status(meta)).toBe(200);
    expect(meta).toMatch(/^connection: close\r$/im);
    await drained;
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(600 + 800 - 50);
    // the stalled clients never finish: any bound tells the drain timeout from waiting for them; this one is wide
    expect(took).toBeLessThan(600 + 800 + 8000);
    await Promise.all([headerStall, bodyStall]); // both cut
    expect(lines.join('\n')).toMatch(/drain timeout: cutting 1 unfinished request and any stalled connection/);
  });
});

describe('small things', () => {
  test('the bearer scheme is case-insensitive', async () => {
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      expect(status(await raw(`GET /v2/models/lenet HTTP/1.1\r\nHost: x\r\nAuthorization: ${scheme} k3y\r\nConnection: close\r\n\r\n`))).toBe(200);
    }
    expect(status(await raw('GET /v2/models/lenet HTTP/1.1\r\nHost: x\r\nAuthorization: Basic k3y\r\nConnection: close\r\n\r\n'))).toBe(401);
  });

  test("serve --help prints the flags and exits 0; --model-name is the action input's name (--name still works)", async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--model-name \(alias --name\)/);
    expect(serveOptions(['--model', 'm.onnx', '--model-name', 'googlenet'], {}, () => undefined).modelName).toBe('googlenet');
    expect(serveOptions(['--model', 'm.onnx', '--name', 'lenet'], {}, () => undefined).modelName).toBe('lenet');
  });
});
