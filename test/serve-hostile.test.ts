import * as fs from 'fs';
import * as path from 'path';
import * as net from 'net';
import * as os from 'os';
import * as zlib from 'zlib';
import { spawn, ChildProcess } from 'child_process';
import { PassThrough } from 'stream';
import type { IncomingHttpHeaders } from 'http';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer } from '../src/serve/server';
import { serveOptions } from '../src/serve/main';
import { memoryLimit, defaultInflightBytes, parseBytes, ByteBudget, PIECE_BYTES } from '../src/serve/memory';
import { readBody } from '../src/serve/body';
import { Overloaded } from '../src/serve/errors';
import { FailedAuthLimiter } from '../src/serve/auth';
import { encodeInferRequest, HEADER_LENGTH } from '../src/protocol/kserve';
import { FIXTURES, tmpDir } from './helpers/caffe';

// The server under hostile and heavy traffic. Every hostile client is a bounded loop on 127.0.0.1 that stops by
// itself. The memory test runs `modelship serve` in a process of its own (from source, test/helpers/serve-main.ts)
// so that its peak RSS (VmHWM) is its own.

const MiB = 2 ** 20;
let model = '';
const work = tmpDir('modelship-hostile-');

beforeAll(() => {
  const d = path.join(FIXTURES, 'lenet');
  const onnx = convertCaffe({
    prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
    prototxtFile: 'p',
    caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
    caffemodelFile: 'w',
  }).onnx;
  model = path.join(work, 'lenet.onnx');
  fs.writeFileSync(model, onnx);
});

/** A raw connection: write `data`, collect what comes back until the server closes or `ms` pass (then destroy). */
function raw(port: number, data: string | Buffer, ms = 3000): Promise<{ reply: string; closedByServer: boolean; afterMs: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    let mine = false;
    const timer = setTimeout(() => {
      mine = true;
      sock.destroy();
    }, ms);
    sock.on('data', (c) => (got += c.toString('latin1')));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ reply: got, closedByServer: !mine, afterMs: Date.now() - t0 });
    });
    sock.write(data);
  });
}
/**
 * A zip bomb: `inflated` zero bytes, gzip (or zlib, for deflate) compressed about 1000:1 (1 GiB is 1 MiB on the
 * wire), made as a stream so that the test never holds the inflated bytes itself.
 */
const bombs = new Map<string, Promise<Buffer>>();
function bomb(coding: 'gzip' | 'deflate', inflated = 2 ** 30): Promise<Buffer> {
  const key = `${coding} ${inflated}`;
  if (!bombs.has(key)) {
    bombs.set(
      key,
      (async () => {
        const z =
          coding === 'gzip' ? zlib.createGzip({ level: 9, strategy: zlib.constants.Z_RLE }) : zlib.createDeflate({ level: 9, strategy: zlib.constants.Z_RLE });
        const out: Buffer[] = [];
        z.on('data', (c: Buffer) => out.push(c));
        const ended = new Promise((r) => z.on('end', r));
        const zero = Buffer.alloc(MiB);
        for (let n = 0; n < inflated; n += zero.length) if (!z.write(zero)) await new Promise((r) => z.once('drain', r));
        z.end();
        await ended;
        return Buffer.concat(out);
      })(),
    );
  }
  return bombs.get(key)!;
}
const statusOf = (reply: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1]);
const headerOf = (reply: string, name: string) => new RegExp(`^${name}: *(.*?)\\r$`, 'im').exec(reply)?.[1];

describe('limits, read like the CPU quota', () => {
  test('the memory limit from cgroup v2, v1, or the machine; the in-flight default is a quarter of it, never below one body', () => {
    const files = (m: Record<string, string>) => (f: string) => m[f];
    expect(memoryLimit(files({ '/sys/fs/cgroup/memory.max': '1073741824\n' }), 64 * 2 ** 30)).toEqual({ bytes: 2 ** 30, source: 'cgroup v2 memory.max' });
    expect(memoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' }), 8 * 2 ** 30).bytes).toBe(8 * 2 ** 30);
    expect(memoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '536870912' }), 8 * 2 ** 30)).toEqual({
      bytes: 2 ** 29,
      source: 'cgroup v1 memory.limit_in_bytes',
    });
    // cgroup v1's "no limit" is a page-rounded LONG_MAX
    expect(memoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' }), 8 * 2 ** 30).source).toMatch(/no container limit/);
    expect(defaultInflightBytes({ bytes: 2 ** 30, source: '' }, 64 * MiB)).toBe(256 * MiB);
    expect(defaultInflightBytes({ bytes: 128 * MiB, source: '' }, 64 * MiB)).toBe(64 * MiB);
    expect(parseBytes('256Mi')).toBe(256 * MiB);
    expect(parseBytes('1Gi')).toBe(2 ** 30);
    expect(parseBytes('1000')).toBe(1000);
    expect(parseBytes('lots')).toBeUndefined();
    const b = new ByteBudget(100);
    expect([b.take(60), b.take(50), b.take(40)]).toEqual([true, false, true]);
    b.give(60);
    expect(b.inUse).toBe(40);
  });

  test('serve flags: sizes and seconds, a metrics port by default (off turns it off), bad values named', () => {
    const o = serveOptions(
      ['--model', 'm.onnx', '--max-inflight-bytes', '128Mi', '--header-timeout', '5', '--body-timeout', '30', '--auth-failure-limit', '3'],
      {},
      () => undefined,
    );
    expect(o).toMatchObject({ maxInflightBytes: 128 * MiB, headerTimeoutMs: 5000, bodyTimeoutMs: 30_000, authFailureLimit: 3, metricsPort: 8002 });
    expect(serveOptions([], { MODELSHIP_MODEL: 'm', MODELSHIP_METRICS_PORT: 'off' }, () => undefined).metricsPort).toBeUndefined();
    expect(serveOptions([], { MODELSHIP_MODEL: 'm', MODELSHIP_METRICS_PORT: '9102' }, () => undefined).metricsPort).toBe(9102);
    expect(() => serveOptions(['--model', 'm', '--max-inflight-bytes', 'lots'], {}, () => undefined)).toThrow(
      /--max-inflight-bytes \/ MODELSHIP_MAX_INFLIGHT_BYTES must be a size/,
    );
    expect(() => serveOptions(['--model', 'm', '--body-timeout', '0'], {}, () => undefined)).toThrow(/--body-timeout/);
  });

  test('failed API keys per address: refused after the limit until the window ends; addresses are independent', () => {
    let now = 0;
    const l = new FailedAuthLimiter(3, 60_000, 100, () => now);
    for (let i = 0; i < 3; i++) {
      expect(l.blockedFor('a')).toBe(0);
      l.fail('a');
    }
    expect(l.blockedFor('a')).toBe(60);
    expect(l.blockedFor('b')).toBe(0);
    now = 59_500;
    expect(l.blockedFor('a')).toBe(1);
    now = 60_000;
    expect(l.blockedFor('a')).toBe(0);
  });
});

describe('bodies of unknown length within the in-flight bound (readBody, no socket)', () => {
  /** a request as readBody sees it */
  class Upload extends PassThrough {
    complete = false;
    constructor(readonly headers: IncomingHttpHeaders) {
      super();
    }
  }
  /** a budget that records the most it ever held, idle pieces included */
  class WatchedBudget extends ByteBudget {
    peak = 0;
    override take(n: number, forPiece = false): boolean {
      const ok = super.take(n, forPiece);
      // (bytes for a piece: counted once piece() has handed it out, from the idle ones or new)
      if (!forPiece) this.watch();
      return ok;
    }
    override piece(): Buffer {
      const p = super.piece();
      this.watch();
      return p;
    }
    private watch() {
      this.peak = Math.max(this.peak, this.inUse + this.idleBytes);
    }
  }
  const tick = () => new Promise((r) => setImmediate(r));
  /** write `data` in 64 KiB writes until readBody settles or it is all written; then finish it if `finish` */
  async function send(req: Upload, body: Promise<Buffer>, data: Buffer, finish = false): Promise<unknown> {
    let settled: unknown;
    body.then(
      (b) => (settled = b),
      (e: unknown) => (settled = e),
    );
    for (let at = 0; at < data.length && settled === undefined; at += 64 * 1024) {
      req.write(data.subarray(at, at + 64 * 1024));
      await tick();
    }
    if (finish && settled === undefined) {
      req.complete = true;
      req.end();
    }
    return body.catch((e: unknown) => e);
  }

  test('chunked: pieces reserved as they come, 503 (Overloaded) as soon as one does not fit, every byte given back, the pieces kept for the next body', async () => {
    const budget = new WatchedBudget(4 * MiB);
    // another request holds 256 KiB meanwhile
    const held = 256 * 1024;
    const otherReq = new Upload({ 'content-length': String(held) });
    const other = readBody(otherReq, { maxBodyBytes: 16 * MiB, bodyTimeoutMs: 10_000, budget });
    expect(budget.inUse).toBe(held);
    const req = new Upload({});
    const read = readBody(req, { maxBodyBytes: 16 * MiB, bodyTimeoutMs: 10_000, budget });
    const e = await send(req, read.body, Buffer.alloc(8 * MiB, 1));
    expect(e).toBeInstanceOf(Overloaded);
    expect((e as Overloaded).status).toBe(503);
    expect((e as Overloaded).message).toMatch(/bound 4194304\); this request's \d+ more do not fit now/);
    // refused within the bound: its bytes given back at once (and again by release: nothing more), its whole pieces idle
    expect(budget.peak).toBeLessThanOrEqual(4 * MiB);
    expect(budget.inUse).toBe(held);
    expect(budget.idleBytes).toBeGreaterThanOrEqual(PIECE_BYTES);
    read.release();
    expect(budget.inUse).toBe(held);
    // the next body of unknown length takes them again: served whole, and within the bound (its 2 MiB of pieces and
    // their 1.5 MiB copy, with the other's 256 KiB)
    const next = new Upload({});
    const again = readBody(next, { maxBodyBytes: 16 * MiB, bodyTimeoutMs: 10_000, budget });
    const data = Buffer.alloc(1.5 * MiB);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    // (compared as buffers: jest's toEqual walks 1.5 MiB for seconds)
    expect(data.equals((await send(next, again.body, data, true)) as Buffer)).toBe(true);
    expect(budget.peak).toBeLessThanOrEqual(4 * MiB);
    // (the body alone is held once joined)
    expect(budget.inUse).toBe(held + data.length);
    again.release();
    // (the other gives up: its bytes are given back)
    otherReq.destroy();
    await expect(other.body).rejects.toThrow(/closed the connection/);
    // no request holds a byte: the idle pieces are let go of too
    expect([budget.inUse, budget.idleBytes]).toEqual([0, 0]);
  });

  test('chunked: joining the pieces into one buffer is reserved too; a copy that does not fit is 503 at the end, nothing held', async () => {
    const data = Buffer.alloc(2 * MiB, 7);
    // pieces of 2 MiB and their 2 MiB copy do not fit in 3 MiB
    const small = new WatchedBudget(3 * MiB);
    const req = new Upload({});
    const read = readBody(req, { maxBodyBytes: 16 * MiB, bodyTimeoutMs: 10_000, budget: small });
    const e = await send(req, read.body, data, true);
    expect(e).toBeInstanceOf(Overloaded);
    expect((e as Overloaded).message).toMatch(/this request's 2097152 more do not fit now/);
    expect([small.peak <= 3 * MiB, small.inUse, small.idleBytes]).toEqual([true, 0, 0]);
    // in 5 MiB they do: both held for a moment, then the body alone
    const big = new WatchedBudget(5 * MiB);
    const req2 = new Upload({});
    const read2 = readBody(req2, { maxBodyBytes: 16 * MiB, bodyTimeoutMs: 10_000, budget: big });
    expect(data.equals((await send(req2, read2.body, data, true)) as Buffer)).toBe(true);
    expect(big.peak).toBe(4 * MiB);
    expect(big.inUse).toBe(2 * MiB);
    read2.release();
    expect([big.inUse, big.idleBytes]).toEqual([0, 0]);
  });

  test.each([
    ['with a Content-Length', true],
    ['chunked', false],
  ])(
    'compressed (%s): the inflated pieces and the wire bytes queued for zlib are reserved; 503 (Overloaded) once they do not fit, every byte given back',
    async (_, declared) => {
      // 8 MiB of zeros: ~8 KiB on the wire, within max-body-bytes inflated, not within the bound
      const wire = zlib.gzipSync(Buffer.alloc(8 * MiB));
      expect(wire.length).toBeLessThan(64 * 1024);
      const budget = new WatchedBudget(2 * MiB);
      const req = new Upload({ 'content-encoding': 'gzip', ...(declared ? { 'content-length': String(wire.length) } : {}) });
      const read = readBody(req, { maxBodyBytes: 16 * MiB, bodyTimeoutMs: 10_000, budget });
      if (declared) expect(budget.inUse).toBe(wire.length);
      const e = await send(req, read.body, wire, true);
      expect(e).toBeInstanceOf(Overloaded);
      expect((e as Overloaded).status).toBe(503);
      expect(budget.peak).toBeLessThanOrEqual(2 * MiB);
      expect([budget.inUse, budget.idleBytes]).toEqual([0, 0]);
      read.release();
      expect(budget.inUse).toBe(0);
      // the same body within a bound it fits: inflated whole, the inflated body alone held after
      const roomy = new WatchedBudget(24 * MiB);
      const req2 = new Upload({ 'content-encoding': 'gzip', ...(declared ? { 'content-length': String(wire.length) } : {}) });
      const read2 = readBody(req2, { maxBodyBytes: 16 * MiB, bodyTimeoutMs: 10_000, budget: roomy });
      const b = (await send(req2, read2.body, wire, true)) as Buffer;
      expect(b.length).toBe(8 * MiB);
      expect(b.every((x) => x === 0)).toBe(true);
      expect(roomy.inUse).toBe(8 * MiB);
      expect(roomy.peak).toBeLessThanOrEqual(16 * MiB + 2 * PIECE_BYTES);
      read2.release();
      expect(roomy.inUse).toBe(0);
    },
  );
});

describe('a server under hostile clients (in-process)', () => {
  let srv: RunningServer;
  const log: string[] = [];
  beforeAll(async () => {
    srv = await startServer({
      ...DEFAULT_SERVE,
      host: '127.0.0.1',
      port: 0,
      metricsPort: 0,
      modelPath: model,
      modelName: 'lenet',
      apiKey: 'k3y',
      authFailureLimit: 5,
      headerTimeoutMs: 1000,
      bodyTimeoutMs: 1500,
      maxInflightBytes: 4 * MiB,
      maxBodyBytes: 2 * MiB,
      log: (l) => log.push(l),
    });
  });
  afterAll(() => srv.drain());
  const metric = async (line: RegExp) => {
    const r = await raw(srv.metricsPort!, 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    return Number(
      r.reply
        .split('\n')
        .find((l) => line.test(l))
        ?.split(' ')
        .pop() ?? 0,
    );
  };

  test('a client that never finishes its headers is answered 408 and cut at the header timeout', async () => {
    const r = await raw(srv.port, 'POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Le', 6000);
    expect(r.closedByServer).toBe(true);
    expect(statusOf(r.reply)).toBe(408);
    expect(r.afterMs).toBeLessThan(4000);
  });

  test('a client that stalls mid-body is answered 408 at the body timeout and cut; counted as 408, without a stack trace', async () => {
    const before = await metric(/^modelship_requests_total\{route="infer",code="408"\}/);
    const r = await raw(
      srv.port,
      'POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Length: 5000\r\n\r\n{"inputs":',
      8000,
    );
    expect(r.closedByServer).toBe(true);
    expect(statusOf(r.reply)).toBe(408);
    expect(r.reply).toMatch(/did not arrive within 1500 ms/);
    expect(r.afterMs).toBeLessThan(5000);
    expect(await metric(/^modelship_requests_total\{route="infer",code="408"\}/)).toBe(before + 1);
    expect(log.join('\n')).not.toMatch(/\n\s+at /);
  });

  test('bodies beyond the in-flight bound are refused at once with 503 + Retry-After, before they are read; the budget is given back', async () => {
    // three stalled 1.9 MiB uploads: two fit the 4 MiB bound, the third is refused before a byte of its body
    const head = (n: number) => `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Length: ${n}\r\n\r\n`;
    const n = Math.floor(1.9 * MiB);
    const stalled = [raw(srv.port, head(n) + 'x'.repeat(1000), 4000), raw(srv.port, head(n) + 'x'.repeat(1000), 4000)];
    await new Promise((r) => setTimeout(r, 300));
    expect(await metric(/^modelship_inflight_request_bytes /)).toBe(2 * n);
    const refused = await raw(srv.port, head(n), 3000);
    expect(statusOf(refused.reply)).toBe(503);
    expect(headerOf(refused.reply, 'retry-after')).toBe('1');
    expect(headerOf(refused.reply, 'connection')).toBe('close');
    expect(refused.reply).toMatch(/bound 4194304/);
    // the stalled two meet the body timeout; their bytes are given back, and a request fits again
    for (const s of await Promise.all(stalled)) expect(statusOf(s.reply)).toBe(408);
    expect(await metric(/^modelship_inflight_request_bytes /)).toBe(0);
    const x = new Float32Array(784).fill(0.5);
    const req = encodeInferRequest([{ name: 'data', shape: [1, 1, 28, 28], data: x }], { binaryOutputs: true });
    const ok = await raw(
      srv.port,
      Buffer.concat([
        Buffer.from(
          `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nConnection: close\r\n${HEADER_LENGTH}: ${req.headerLength}\r\nContent-Length: ${req.body.length}\r\n\r\n`,
        ),
        req.body,
      ]),
    );
    expect(statusOf(ok.reply)).toBe(200);
  });

  test('a zip bomb (1 MiB on the wire, 1 GiB inflated) is refused 413 as soon as it inflates past max-body-bytes; its bytes are given back; health answers', async () => {
    const before = await metric(/^modelship_requests_total\{route="infer",code="413"\}/);
    for (const coding of ['gzip', 'deflate'] as const) {
      const b = await bomb(coding);
      expect(b.length).toBeLessThan(1.1 * MiB); // under max-body-bytes (2 MiB) on the wire
      // with a Content-Length, and chunked (the wire bytes counted as they come)
      for (const framing of [`Content-Length: ${b.length}\r\n\r\n`, 'Transfer-Encoding: chunked\r\n\r\n']) {
        const body = framing.startsWith('Content-Length') ? b : Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')]);
        const r = await raw(
          srv.port,
          Buffer.concat([
            Buffer.from(
              `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nConnection: close\r\nContent-Encoding: ${coding}\r\n${framing}`,
            ),
            body,
          ]),
          10_000,
        );
        expect({ coding, framing, status: statusOf(r.reply) }).toEqual({ coding, framing, status: 413 });
        expect(r.reply).toMatch(new RegExp(`exceeds the limit of 2097152 bytes once inflated \\(Content-Encoding: ${coding}\\)`));
        // answered and closed by the server within raw()'s 10 s (how soon: bench/serve-hostile.ts)
        expect(r.closedByServer).toBe(true);
        expect(await metric(/^modelship_inflight_request_bytes /)).toBe(0);
      }
    }
    expect(await metric(/^modelship_requests_total\{route="infer",code="413"\}/)).toBe(before + 4);
    expect(statusOf((await raw(srv.port, 'GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).reply)).toBe(200);
    // a compressed body within the limit is served (the bomb's coding works, it is the size that is refused)
    const x = new Float32Array(784).fill(0.5);
    const req = encodeInferRequest([{ name: 'data', shape: [1, 1, 28, 28], data: x }], { binaryOutputs: true });
    const gz = zlib.gzipSync(req.body);
    const ok = await raw(
      srv.port,
      Buffer.concat([
        Buffer.from(
          `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nConnection: close\r\nContent-Encoding: gzip\r\n${HEADER_LENGTH}: ${req.headerLength}\r\nContent-Length: ${gz.length}\r\n\r\n`,
        ),
        gz,
      ]),
    );
    expect(statusOf(ok.reply)).toBe(200);
    // a 501 for an unknown coding is the client's: counted, no stack trace in the log
    const br = await raw(
      srv.port,
      `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nConnection: close\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}`,
    );
    expect(statusOf(br.reply)).toBe(501);
    expect(headerOf(br.reply, 'accept-encoding')).toBe('gzip, deflate');
    expect(log.join('\n')).not.toMatch(/\n\s+at /);
  });

  test('a slow compressed body meets the body timeout (408) like any other, its inflater ended and its bytes given back', async () => {
    const gz = zlib.gzipSync(
      Buffer.from(JSON.stringify({ inputs: [{ name: 'data', shape: [1, 1, 28, 28], datatype: 'FP32', data: new Array(784).fill(0.5) }] })),
    );
    const r = await raw(
      srv.port,
      Buffer.concat([
        Buffer.from(
          `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k3y\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`,
        ),
        gz.subarray(0, gz.length >> 1),
      ]),
      8000,
    );
    expect(statusOf(r.reply)).toBe(408);
    expect(r.closedByServer).toBe(true);
    expect(await metric(/^modelship_inflight_request_bytes /)).toBe(0);
  });

  test('wrong API keys: 401 up to the limit, then 429 with Retry-After for that address; the right key from it is still served', async () => {
    const get = (key: string) => raw(srv.port, `GET /v2/models/lenet HTTP/1.1\r\nHost: x\r\nAuthorization: bearer ${key}\r\nConnection: close\r\n\r\n`);
    expect(statusOf((await get('k3y')).reply)).toBe(200);
    for (let i = 0; i < 5; i++) expect(statusOf((await get(`guess${i}`)).reply)).toBe(401);
    const r = await get('guess5');
    expect(statusOf(r.reply)).toBe(429);
    expect(Number(headerOf(r.reply, 'retry-after'))).toBeGreaterThan(50);
    // (the clients behind one proxy share its address: one of them guessing must not lock the others out)
    expect(statusOf((await get('k3y')).reply)).toBe(200);
    expect(statusOf((await get('guess6')).reply)).toBe(429);
    // health stays open: probes carry no key
    expect(statusOf((await raw(srv.port, 'GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).reply)).toBe(200);
  });

  test('the metrics port serves /metrics without the key and nothing else', async () => {
    const m = await raw(srv.metricsPort!, 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statusOf(m.reply)).toBe(200);
    expect(m.reply).toMatch(/^# TYPE modelship_requests_total counter$/m);
    for (const target of ['POST /v2/models/lenet/infer', 'GET /v2/models/lenet', 'GET /v2/health/ready', 'GET /metrics/../v2']) {
      expect(statusOf((await raw(srv.metricsPort!, `${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)).reply)).toBe(404);
    }
    // the main port keeps /metrics behind the key
    expect(statusOf((await raw(srv.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).reply)).not.toBe(200);
    const text = m.reply.slice(m.reply.indexOf('\r\n\r\n') + 4);
    // (promtool, Prometheus' own linter, reads the same exposition: test/serve-hostile.lab.test.ts)
    expect(text).not.toMatch(/process_process_/);
    expect(text).not.toMatch(/^# TYPE \S+_total gauge$/m);
    expect(text).not.toMatch(/\bNaN\b/i);
  });
});

describe('the event loop stays free', () => {
  test('health answers while a 60 MiB JSON body is decoded and its batch runs (both off the main thread)', async () => {
    // (a batch of ~8,900 items: the max batch size lets it through, as Triton refuses a batch above it)
    const srv = await startServer({
      ...DEFAULT_SERVE,
      maxBatchSize: 10_000,
      host: '127.0.0.1',
      port: 0,
      modelPath: model,
      modelName: 'lenet',
      log: () => undefined,
    });
    try {
      // ~60 MiB of JSON numbers: LeNet items of 784 values, "0.123456," each
      const items = Math.floor((60 * MiB) / (784 * 9));
      // value i is ((i * 7919) % 1000) / 1000 + 0.0001, "0.123456": a period of 1000 values, repeated
      const period = Array.from({ length: 1000 }, (_, i) => (((i * 7919) % 1000) / 1000 + 0.0001).toFixed(6));
      const n = items * 784;
      const data = [...new Array<string>(Math.floor(n / 1000)).fill(period.join(',')), ...(n % 1000 ? [period.slice(0, n % 1000).join(',')] : [])].join(',');
      const body = Buffer.from(`{"inputs":[{"name":"data","shape":[${items},1,28,28],"datatype":"FP32","data":[${data}]}]}`);
      expect(body.length).toBeGreaterThan(55 * MiB);
      const big = raw(
        srv.port,
        Buffer.concat([
          Buffer.from(
            `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`,
          ),
          body,
        ]),
        120_000,
      );
      const t0 = Date.now();
      let done = false;
      void big.then(() => (done = true));
      const lat: number[] = [];
      while (!done) {
        const t = Date.now();
        const r = await raw(srv.port, 'GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        expect(statusOf(r.reply)).toBe(200);
        lat.push(Date.now() - t);
        await new Promise((r2) => setTimeout(r2, 20));
      }
      const answer = await big;
      const took = Date.now() - t0;
      expect(statusOf(answer.reply)).toBe(200);
      // health kept answering all along: with the decoding and the run on the main thread, one health request waited
      // for them (3.6-5.7 s in the issue, most of the big request). How fast it answers: bench/serve-hostile.ts (goal
      // < 750 ms) and bench/serve.ts; a time bound here would measure the machine.
      expect(lat.length).toBeGreaterThan(10);
      expect(Math.max(...lat)).toBeLessThan(took / 2);
    } finally {
      await srv.drain();
    }
  });
});

describe('modelship serve as a process', () => {
  let child: ChildProcess | undefined;
  afterEach(() => child?.kill('SIGKILL'));

  const start = async (args: string[]) => {
    const stderr: string[] = [];
    const c = spawn(
      process.execPath,
      [
        '--require',
        require.resolve('tsx/cjs'),
        path.join(__dirname, 'helpers', 'serve-main.ts'),
        '--model',
        model,
        '--model-name',
        'lenet',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--metrics-port',
        'off',
        '--grpc-port',
        'off',
        ...args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = c;
    c.stderr.on('data', (d) => stderr.push(d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no listening line: ${stderr.join('')}`)), 60_000);
      c.stderr.on('data', () => {
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr.join(''));
        if (m) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
    });
    const exited = new Promise<{ code: number | null; at: number }>((r) => c.on('exit', (code) => r({ code, at: Date.now() })));
    return { c, port, stderr, exited };
  };
  const rss = (pid: number, field: 'VmRSS' | 'VmHWM') =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

  test('16 clients each uploading just under 64 MiB and never finishing: peak RSS stays under the in-flight bound plus the model', async () => {
    const bound = 128 * MiB;
    const { c, port, stderr } = await start(['--max-inflight-bytes', String(bound), '--body-timeout', '4', '--metrics-port', '0']);
    // warm up (the first run allocates the session's arenas), then take the footprint of the loaded model
    const x = new Float32Array(784 * 8).fill(0.5);
    const warm = encodeInferRequest([{ name: 'data', shape: [8, 1, 28, 28], data: x }], { binaryOutputs: true });
    for (let i = 0; i < 3; i++) {
      const r = await raw(
        port,
        Buffer.concat([
          Buffer.from(
            `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${HEADER_LENGTH}: ${warm.headerLength}\r\nContent-Length: ${warm.body.length}\r\n\r\n`,
          ),
          warm.body,
        ]),
      );
      expect(statusOf(r.reply)).toBe(200);
    }
    const base = rss(c.pid!, 'VmHWM');
    // the worker threads (inference with ONNX Runtime's pool, decode) run at a lower priority than the HTTP thread
    const nice = fs
      .readdirSync(`/proc/${c.pid}/task`)
      .map((t) => Number(fs.readFileSync(`/proc/${c.pid}/task/${t}/stat`, 'utf8').split(') ')[1].split(' ')[16]));
    // (the inference thread and ONNX Runtime's pool, which inherits it; decode threads start on first use)
    expect(nice.filter((n) => n === 5).length).toBeGreaterThanOrEqual(Math.min(2, os.availableParallelism()));
    expect(Number(fs.readFileSync(`/proc/${c.pid}/stat`, 'utf8').split(') ')[1].split(' ')[16])).toBe(0);
    const size = 64 * MiB - 1;
    // all but the last MiB, as fast as the server takes it, then a stall (stalledUpload, below: it stops sending once
    // an answer comes; a refused body is no longer read, so a client still writing may be cut before it reads its 503)
    const pieces = new Array<Buffer>(63).fill(Buffer.alloc(MiB, 0x31));
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => stalledUpload(port, `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`, pieces)),
    );
    const peak = rss(c.pid!, 'VmHWM');
    const metricsPort = Number(/metrics on :(\d+)\/metrics/.exec(stderr.join(''))?.[1]);
    const refused = await metricOf(metricsPort, /^modelship_requests_total\{route="infer",code="503"\}/);
    const late = await metricOf(metricsPort, /^modelship_requests_total\{route="infer",code="408"\}/);
    const n = (status?: number) => answers.filter((a) => a.status === status).length;
    // two fit the bound and meet the body timeout (408); the others are refused at once (503, or cut while sending).
    // Usually fourteen: on a loaded machine the server may read a late client's headers only after the first two timed
    // out and freed the bound (CI saw 13), so a few more can be admitted in turn — never more than two at once, which
    // the peak shows
    for (const a of answers) expect(a.status === 503 || a.status === 408 || (a.status === undefined && /^(EPIPE|ECONNRESET)$/.test(a.cut ?? ''))).toBe(true);
    expect([refused, late]).toEqual([n(503) + n(undefined), n(408)]);
    expect(refused).toBeGreaterThanOrEqual(11);
    process.stdout.write(`upload attack: RSS ${(base / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB (bound ${bound / MiB} MiB)\n`);
    // the two admitted bodies are the bound; above it are the socket's read chunks (each copied into its body, or of a
    // refused one the little read before its answer, and collected a little later): measured 27-37 MiB here. Without
    // the bound, 16 bodies took 1 GiB more.
    expect(peak - base).toBeLessThan(bound + 64 * MiB);
    // and it still serves
    const r = await raw(
      port,
      Buffer.concat([
        Buffer.from(
          `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${HEADER_LENGTH}: ${warm.headerLength}\r\nContent-Length: ${warm.body.length}\r\n\r\n`,
        ),
        warm.body,
      ]),
    );
    expect(statusOf(r.reply)).toBe(200);
    expect(stderr.join('')).toMatch(/request bytes in flight bounded at 134217728 \(configured\)/);
  });

  /** a small batch through the model, 200 (the first runs allocate the session's arenas) */
  const infer = async (port: number) => {
    const x = new Float32Array(784 * 8).fill(0.5);
    const req = encodeInferRequest([{ name: 'data', shape: [8, 1, 28, 28], data: x }], { binaryOutputs: true });
    const r = await raw(
      port,
      Buffer.concat([
        Buffer.from(
          `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${HEADER_LENGTH}: ${req.headerLength}\r\nContent-Length: ${req.body.length}\r\n\r\n`,
        ),
        req.body,
      ]),
    );
    return statusOf(r.reply);
  };
  /** a counter or gauge of the server's /metrics (its metrics port) */
  const metricOf = async (metricsPort: number, line: RegExp) => {
    const r = await raw(metricsPort, 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    return Number(
      r.reply
        .split('\n')
        .find((l) => line.test(l))
        ?.split(' ')
        .pop() ?? 0,
    );
  };
  /**
   * A client that sends `head`, then `pieces` as fast as the server takes them, and never finishes: it stops sending
   * once an answer comes, and waits for the server to close the connection (15 s at most). Its status; or none, `cut`
   * by the server while it was still sending (its write failed: Node's client then destroys the socket before reading
   * the answer that had come).
   */
  async function stalledUpload(port: number, head: string, pieces: Buffer[]): Promise<{ status?: number; reply: string; cut?: string }> {
    const sock = net.connect(port, '127.0.0.1');
    let reply = '';
    let cut: string | undefined;
    sock.on('data', (d) => (reply += d.toString('latin1')));
    sock.on('error', (e: NodeJS.ErrnoException) => (cut = e.code ?? e.message));
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.write(head);
    for (const p of pieces) {
      if (reply || sock.destroyed) break;
      if (!sock.write(p))
        await new Promise<void>((r) => {
          const go = () => (sock.off('drain', go), sock.off('close', go), r());
          sock.on('drain', go);
          sock.on('close', go);
        });
    }
    const stop = setTimeout(() => sock.destroy(), 15_000);
    await closed;
    clearTimeout(stop);
    return { status: statusOf(reply) || undefined, reply, cut };
  }
  /**
   * 16 stalled uploads against a 128 MiB bound: each answered 503 (or cut while still sending a refused body) or
   * 408, as the server counted them; peak RSS under the bound plus one body (max-body-bytes, 64 MiB); the budget
   * back to 0, and it still serves. The figures go to stdout.
   */
  async function attack(what: string, upload: (port: number) => Promise<{ status?: number; reply: string; cut?: string }>) {
    const bound = 128 * MiB;
    const { c, port, stderr } = await start(['--max-inflight-bytes', String(bound), '--body-timeout', '4', '--metrics-port', '0']);
    const metricsPort = Number(/metrics on :(\d+)\/metrics/.exec(stderr.join(''))?.[1]);
    for (let i = 0; i < 3; i++) expect(await infer(port)).toBe(200);
    const base = rss(c.pid!, 'VmHWM');
    const answers = await Promise.all(Array.from({ length: 16 }, () => upload(port)));
    const peak = rss(c.pid!, 'VmHWM');
    const refused = await metricOf(metricsPort, /^modelship_requests_total\{route="infer",code="503"\}/);
    const late = await metricOf(metricsPort, /^modelship_requests_total\{route="infer",code="408"\}/);
    const n = (status?: number) => answers.filter((a) => a.status === status).length;
    process.stdout.write(
      `${what}: RSS ${(base / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB (bound ${bound / MiB} MiB, one body 64 MiB); ` +
        `answers ${n(503)} x 503, ${n(408)} x 408, ${n(undefined)} cut while sending (the server counted ${refused} x 503, ${late} x 408)\n`,
    );
    // each is refused (503) as soon as a piece of it does not fit, or fits and meets the body timeout (408). Usually two
    // fit: on a loaded machine a late client may be read only once they have timed out and be admitted too (as above)
    for (const a of answers) expect(a.status === 503 || a.status === 408 || (a.status === undefined && /^(EPIPE|ECONNRESET)$/.test(a.cut ?? ''))).toBe(true);
    expect([refused, late]).toEqual([n(503) + n(undefined), n(408)]);
    expect(refused).toBeGreaterThanOrEqual(11);
    // what is held is the bound (the admitted bodies); above it, the socket's reads and the inflater's output, each
    // copied into a body's pieces and collected a little later
    expect(peak - base).toBeLessThan(bound + 64 * MiB);
    expect(await metricOf(metricsPort, /^modelship_inflight_request_bytes /)).toBe(0);
    expect(await infer(port)).toBe(200);
    return answers;
  }

  test('16 clients each sending a ~60 MiB chunked body and never finishing it: 503 as soon as a piece does not fit, peak RSS under the bound plus one body', async () => {
    const chunk = Buffer.alloc(MiB, 0x31);
    const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    const answers = await attack('chunked upload attack', (port) =>
      stalledUpload(port, 'POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', new Array<Buffer>(59).fill(framed)),
    );
    for (const a of answers.filter((x) => x.status === 503)) expect(a.reply).toMatch(/this request's \d+ more do not fit now/);
  });

  test('16 clients each sending a gzip body that inflates to ~60 MiB and never finishing it: 503 once the inflated pieces do not fit, peak RSS under the bound plus one body', async () => {
    // 60 MiB of zeros, ~60 KiB on the wire: all of them fit the bound as sent (a Content-Length's bytes are reserved
    // before the body is read), not once inflated. Half with a Content-Length, half chunked; the last KiB never sent
    const b = await bomb('gzip', 60 * MiB);
    expect(b.length).toBeLessThan(MiB);
    const slices: Buffer[] = [];
    for (let at = 0; at < b.length - 1024; at += 16 * 1024) slices.push(b.subarray(at, Math.min(at + 16 * 1024, b.length - 1024)));
    const frame = (p: Buffer) => Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]);
    let i = 0;
    const answers = await attack('gzip upload attack', (port) =>
      i++ % 2
        ? stalledUpload(
            port,
            'POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n',
            slices.map(frame),
          )
        : stalledUpload(port, `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: ${b.length}\r\n\r\n`, slices),
    );
    // refused for their inflated bytes: a piece of them (not the Content-Length, which fit)
    const steps = answers.filter((a) => a.status === 503).map((a) => Number(/this request's (\d+) more do not fit now/.exec(a.reply)?.[1]));
    expect(steps.length).toBeGreaterThan(0);
    for (const n of steps) expect(n).toBeLessThanOrEqual(PIECE_BYTES);
  });

  test('16 gzip bombs at once (1 MiB each on the wire, 1 GiB inflated): all 413, peak RSS bounded by max-body-bytes, and it still serves', async () => {
    const { c, port } = await start(['--max-body-bytes', '4Mi', '--max-inflight-bytes', '128Mi']);
    const x = new Float32Array(784 * 8).fill(0.5);
    const warm = encodeInferRequest([{ name: 'data', shape: [8, 1, 28, 28], data: x }], { binaryOutputs: true });
    const gz = zlib.gzipSync(warm.body);
    const infer = () =>
      raw(
        port,
        Buffer.concat([
          Buffer.from(
            `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Encoding: gzip\r\n${HEADER_LENGTH}: ${warm.headerLength}\r\nContent-Length: ${gz.length}\r\n\r\n`,
          ),
          gz,
        ]),
      );
    for (let i = 0; i < 3; i++) expect(statusOf((await infer()).reply)).toBe(200);
    const b = await bomb('gzip');
    const base = rss(c.pid!, 'VmHWM');
    // each answered within raw()'s 20 s, or its status is missing (how soon all 16 are: bench/serve-hostile.ts, goal
    // < 10 s)
    const answers = await Promise.all(
      Array.from({ length: 16 }, () =>
        raw(
          port,
          Buffer.concat([
            Buffer.from(
              `POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Encoding: gzip\r\nContent-Length: ${b.length}\r\n\r\n`,
            ),
            b,
          ]),
          20_000,
        ),
      ),
    );
    const peak = rss(c.pid!, 'VmHWM');
    expect(answers.map((a) => statusOf(a.reply))).toEqual(new Array(16).fill(413));
    process.stdout.write(
      `gzip bombs: 16 x ${(b.length / MiB).toFixed(2)} MiB -> 1 GiB each; RSS ${(base / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB\n`,
    );
    // each holds at most 4 MiB inflated (and its 1 MiB on the wire, read and discarded): inflated whole, they were 16 GiB
    expect(peak - base).toBeLessThan(128 * MiB);
    expect(statusOf((await raw(port, 'GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).reply)).toBe(200);
    expect(statusOf((await infer()).reply)).toBe(200);
  });

  test('SIGTERM with a silent, a header-stalled and a body-stalled client: exit 0 within the drain timeout', async () => {
    const { c, port, exited, stderr } = await start(['--drain-delay', '1', '--drain-timeout', '2']);
    const clients = [
      raw(port, '', 20_000),
      raw(port, 'GET /v2/health/ready HTTP/1.1\r\nHo', 20_000),
      raw(port, 'POST /v2/models/lenet/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"in', 20_000),
    ];
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    c.kill('SIGTERM');
    const { code, at } = await exited;
    expect(code).toBe(0);
    // drain delay 1 s + drain timeout 2 s, and the process' own exit; the stalled clients would hold it 20 s (the bound
    // is wide: it tells the drain timeout from waiting for them, not how fast the machine is)
    expect(at - t0).toBeLessThan(12_000);
    for (const cl of await Promise.all(clients)) expect(cl.closedByServer).toBe(true);
    expect(stderr.join('')).toMatch(/drained; bye/);
  });
});
