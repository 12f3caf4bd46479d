// The server's body reader (src/serve/body.ts) without a socket: a stream with headers stands for the request.
import { PassThrough } from 'stream';
import * as zlib from 'zlib';
import type { IncomingHttpHeaders } from 'http';
import { readBody, bodyCoding, BodyRead } from '../src/serve/body';
import { BodyTimeout, ClientGone, Overloaded, UnsupportedEncoding } from '../src/serve/errors';
import { ByteBudget } from '../src/serve/memory';
import { ProtocolError, HEADER_LENGTH } from '../src/protocol/kserve';

/** A request as readBody sees it: a readable stream, its headers, and whether all of it has arrived. */
class FakeRequest extends PassThrough {
  complete = false;
  constructor(readonly headers: IncomingHttpHeaders) {
    super();
  }

  /** the whole body has arrived: `complete` first, as Node's parser sets it before 'end' */
  finish(last?: Buffer): void {
    this.complete = true;
    this.end(last);
  }
}

const MiB = 2 ** 20;

function read(
  headers: IncomingHttpHeaders,
  opts: { maxBodyBytes?: number; bodyTimeoutMs?: number; budget?: ByteBudget } = {},
): { req: FakeRequest; read: BodyRead; budget: ByteBudget } {
  const req = new FakeRequest(headers);
  const budget = opts.budget ?? new ByteBudget(16 * MiB);
  return { req, budget, read: readBody(req, { maxBodyBytes: opts.maxBodyBytes ?? MiB, bodyTimeoutMs: opts.bodyTimeoutMs ?? 10_000, budget }) };
}

/** The ProtocolError `p` rejects with. */
async function refusal(p: Promise<unknown>): Promise<ProtocolError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ProtocolError);
  return e as ProtocolError;
}

describe('Content-Encoding, as Triton reads it', () => {
  test.each([
    [undefined, 'identity'],
    ['', 'identity'],
    ['identity', 'identity'],
    [' GZIP ', 'gzip'],
    ['x-gzip', 'gzip'],
    ['deflate', 'deflate'],
  ])('%p is %p', (header, coding) => {
    expect(bodyCoding(header)).toBe(coding);
  });

  test.each(['br', 'gzip, deflate', 'compress'])('%p is refused 501 (UnsupportedEncoding)', (header) => {
    expect(() => bodyCoding(header)).toThrow(UnsupportedEncoding);
    expect(() => bodyCoding(header)).toThrow(/is not supported: send the body as is, or in gzip or deflate/);
  });
});

describe('readBody: limits, Content-Length, chunked, compressed', () => {
  test('with a Content-Length: read into one buffer, its bytes held in the budget until released', async () => {
    const data = Buffer.from('0123456789');
    const { req, read: r, budget } = read({ 'content-length': String(data.length) });
    expect(budget.inUse).toBe(data.length); // reserved before any byte arrives
    req.write(data.subarray(0, 4));
    req.finish(data.subarray(4));
    expect(await r.body).toEqual(data);
    expect(budget.inUse).toBe(data.length);
    r.release();
    expect(budget.inUse).toBe(0);
    r.release(); // (once only)
    expect(budget.inUse).toBe(0);
  });

  test('the binary tensor data after the JSON header starts 4-byte aligned', async () => {
    for (const headerLength of [1, 2, 3, 4, 5]) {
      const data = Buffer.alloc(headerLength + 8, 7);
      const { req, read: r } = read({ 'content-length': String(data.length), [HEADER_LENGTH]: String(headerLength) });
      req.finish(data);
      const body = await r.body;
      expect(body).toEqual(data);
      expect((body.byteOffset + headerLength) % 4).toBe(0);
    }
  });

  test('fewer bytes than Content-Length says: 400', async () => {
    const { req, read: r } = read({ 'content-length': '10' });
    req.finish(Buffer.from('12345'));
    expect((await refusal(r.body)).message).toMatch(/the body has 5 bytes, Content-Length says 10/);
  });

  test('a Content-Length over the limit: 413 before any byte is read, nothing held', async () => {
    const { read: r, budget } = read({ 'content-length': String(2 * MiB) }, { maxBodyBytes: MiB });
    const e = await refusal(r.body);
    expect(e.status).toBe(413);
    expect(e.message).toMatch(/request body exceeds the limit of 1048576 bytes/);
    expect(budget.inUse).toBe(0);
  });

  test('a Content-Length that does not fit the budget now: 503 Overloaded, nothing held', async () => {
    const budget = new ByteBudget(MiB);
    expect(budget.take(MiB - 100)).toBe(true);
    const { read: r } = read({ 'content-length': '1000' }, { budget });
    const e = await refusal(r.body);
    expect(e).toBeInstanceOf(Overloaded);
    expect(e.status).toBe(503);
    expect(e.message).toMatch(/this request's 1000 more do not fit now/);
    expect(budget.inUse).toBe(MiB - 100);
  });

  test('chunked: the chunks joined, the budget taken as they come', async () => {
    const { req, read: r, budget } = read({});
    req.write(Buffer.from('abc'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(budget.inUse).toBe(3);
    req.finish(Buffer.from('def'));
    expect((await r.body).toString()).toBe('abcdef');
    r.release();
    expect(budget.inUse).toBe(0);
  });

  test('chunked past the limit: 413 as soon as it is', async () => {
    const { req, read: r } = read({}, { maxBodyBytes: 10 });
    req.write(Buffer.alloc(6));
    req.write(Buffer.alloc(6));
    expect((await refusal(r.body)).status).toBe(413);
  });

  test('chunked past the budget: 503 Overloaded', async () => {
    const { req, read: r } = read({}, { budget: new ByteBudget(8) });
    req.write(Buffer.alloc(6));
    req.write(Buffer.alloc(6));
    expect(await refusal(r.body)).toBeInstanceOf(Overloaded);
  });

  test.each([
    ['gzip', zlib.gzipSync],
    ['x-gzip', zlib.gzipSync],
    ['deflate', zlib.deflateSync],
    // zlib tells the format from its header, whichever name it came under (as Triton)
    ['deflate', zlib.gzipSync],
  ] as const)('Content-Encoding %s: inflated', async (coding, compress) => {
    const plain = Buffer.from('{"inputs": []}'.repeat(1000));
    const wire = compress(plain);
    const { req, read: r, budget } = read({ 'content-encoding': coding, 'content-length': String(wire.length) });
    req.finish(wire);
    expect(await r.body).toEqual(plain);
    // the budget holds the larger of the wire bytes and the inflated ones
    expect(budget.inUse).toBe(plain.length);
    r.release();
    expect(budget.inUse).toBe(0);
  });

  test('corrupt compressed data: 400 naming the coding', async () => {
    const { req, read: r } = read({ 'content-encoding': 'gzip' });
    req.finish(Buffer.from('not gzip at all'));
    const e = await refusal(r.body);
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/the request body is not valid gzip data \(Content-Encoding: gzip\)/);
  });

  test('a body that inflates past the limit (a zip bomb): 413 once inflated', async () => {
    const wire = zlib.gzipSync(Buffer.alloc(8 * MiB));
    expect(wire.length).toBeLessThan(MiB);
    const { req, read: r } = read({ 'content-encoding': 'gzip', 'content-length': String(wire.length) }, { maxBodyBytes: MiB });
    req.finish(wire);
    const e = await refusal(r.body);
    expect(e.status).toBe(413);
    expect(e.message).toMatch(/once inflated \(Content-Encoding: gzip\)/);
  });

  test('a Content-Encoding it does not read: 501 (UnsupportedEncoding), before the body', async () => {
    const { read: r } = read({ 'content-encoding': 'br', 'content-length': '10' });
    const e = await refusal(r.body);
    expect(e).toBeInstanceOf(UnsupportedEncoding);
    expect(e.status).toBe(501);
  });

  test.each([
    ['with a Content-Length', { 'content-length': '100' }],
    ['chunked', {}],
    ['compressed', { 'content-encoding': 'gzip' }],
  ])('%s: a body that does not arrive within the timeout is 408 (BodyTimeout)', async (_, headers) => {
    const { req, read: r } = read(headers, { bodyTimeoutMs: 50 });
    // (the start of a gzip stream: valid as far as it goes)
    req.write(zlib.gzipSync(Buffer.alloc(1000)).subarray(0, 10));
    const e = await refusal(r.body);
    expect(e).toBeInstanceOf(BodyTimeout);
    expect(e.status).toBe(408);
    expect(e.message).toMatch(/the request body did not arrive within 50 ms/);
    req.destroy();
  });

  test.each([
    ['with a Content-Length', { 'content-length': '100' }],
    ['chunked', {}],
    ['compressed', { 'content-encoding': 'gzip' }],
  ])('%s: a client that goes away before the end is 499 (ClientGone)', async (_, headers) => {
    const { req, read: r } = read(headers);
    req.write(Buffer.alloc(10));
    req.destroy();
    const e = await refusal(r.body);
    expect(e).toBeInstanceOf(ClientGone);
    expect(e.status).toBe(499);
  });
});
