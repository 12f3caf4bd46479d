import type { IncomingHttpHeaders } from 'http';
import type { Readable } from 'stream';
import * as zlib from 'zlib';
import { HEADER_LENGTH, ProtocolError } from '../protocol/kserve';
import { BodyTimeout, ClientGone, Overloaded, UnsupportedEncoding } from './errors';
import { ByteBudget } from './memory';

/** The content codings a request body may come in (Triton's: gzip, deflate and identity). */
export type BodyCoding = 'identity' | 'gzip' | 'deflate';

/**
 * A request's Content-Encoding, as Triton reads it (src/http_server.cc, GetRequestCompressionType): absent, empty or
 * `identity` is the body as sent; `gzip` and `deflate` are inflated; anything else (a list of codings too) is refused
 * with 501 naming it, and Accept-Encoding (Triton: TRITONSERVER_ERROR_UNSUPPORTED, which it answers 501). Triton
 * compares the names exactly; here they are case-insensitive (RFC 9110 8.4.1) and `x-gzip` is gzip (8.4.1.3).
 */
export function bodyCoding(header: string | undefined): BodyCoding {
  const c = (header ?? '').trim().toLowerCase();
  if (c === '' || c === 'identity') return 'identity';
  if (c === 'gzip' || c === 'x-gzip') return 'gzip';
  if (c === 'deflate') return 'deflate';
  throw new UnsupportedEncoding(`Content-Encoding "${(header ?? '').trim().slice(0, 100)}" is not supported: send the body as is, or in gzip or deflate`);
}

/** zlib's output chunks while a compressed body is inflated (Node's default is 16 KiB) */
const INFLATE_CHUNK = 64 * 1024;

/**
 * Where a body comes from: a request (http.IncomingMessage), or any readable stream with headers that says when it
 * has all of its bytes (`complete`: the tests read bodies without a socket).
 */
export type BodySource = Readable & { readonly headers: IncomingHttpHeaders; readonly complete: boolean };

export interface BodyLimits {
  /** one body's bytes at most, on the wire and inflated (else 413) */
  maxBodyBytes: number;
  /** the whole body must arrive within this (else 408) */
  bodyTimeoutMs: number;
  /** request bytes held at once, shared by all requests: a body that does not fit is refused 503 */
  budget: ByteBudget;
}

export interface BodyRead {
  /** the body, or the ProtocolError that refuses it */
  body: Promise<Buffer>;
  /** give the body's bytes back to the budget: when its answer has been sent */
  release: () => void;
}

/**
 * Read a request body into one buffer of its own (so that it can be moved to a worker thread), its bytes reserved
 * in the in-flight budget until `release`: a request that does not fit is refused before its body is read. With a
 * Content-Length it is read straight into a buffer placed so that the binary tensor data (after the JSON header)
 * starts 4-byte aligned: the FP32 tensor is then a view, not a copy. A body sent with Content-Encoding gzip or
 * deflate is inflated as it comes, into such a buffer too. A refused body is discarded as it goes on arriving
 * (destroying the socket would lose the answer); the body timeout bounds a client that never finishes.
 */
export function readBody(req: BodySource, limits: BodyLimits): BodyRead {
  const { maxBodyBytes, bodyTimeoutMs, budget } = limits;
  let reserved = 0;
  const release = () => {
    budget.give(reserved);
    reserved = 0;
  };
  const body = new Promise<Buffer>((resolve, reject) => {
    // the compressed body's inflater, when there is one: ended with the request, whichever way it ends
    let inflater: zlib.Unzip | undefined;
    const stop = (e: ProtocolError) => {
      clearTimeout(timer);
      inflater?.destroy();
      // answer and discard the rest of the body; the connection closes after the answer
      req.removeAllListeners('data');
      req.resume();
      reject(e);
    };
    const overloaded = (n: number) =>
      new Overloaded(`the server holds ${budget.inUse} request bytes (bound ${budget.limit}); this request's ${n} more do not fit now`);
    const tooLarge = () => new ProtocolError(413, `request body exceeds the limit of ${maxBodyBytes} bytes`);
    const timer = setTimeout(() => {
      inflater?.destroy();
      reject(new BodyTimeout(`the request body did not arrive within ${bodyTimeoutMs} ms`));
      req.removeAllListeners('data');
    }, bodyTimeoutMs);
    const done = () => clearTimeout(timer);
    const gone = () => (done(), reject(new ClientGone()));
    let coding: BodyCoding;
    try {
      coding = bodyCoding(req.headers['content-encoding']);
    } catch (e) {
      return stop(e as ProtocolError);
    }
    const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
    if ((declared ?? 0) > maxBodyBytes) return stop(tooLarge());
    const headerLength = Number(req.headers[HEADER_LENGTH] ?? 0);
    const pad = Number.isSafeInteger(headerLength) && headerLength > 0 ? (4 - (headerLength % 4)) % 4 : 0;
    if (coding !== 'identity') {
      // compressed: inflated as the bytes come (on zlib's threads). As Triton (inflateInit2 with 15|32), zlib tells
      // the format from its header: a gzip or a zlib stream, under either name. The limits hold for the inflated
      // bytes as for the wire's: a body that inflates past max-body-bytes (a zip bomb) is refused 413 as soon as it
      // does, and the budget holds the larger of the wire bytes (declared, or seen so far) and the inflated ones.
      // Corrupt or truncated data is a 400 naming the coding (Triton 2.51 does not look: it serves what inflated)
      const z = (inflater = zlib.createUnzip({ chunkSize: INFLATE_CHUNK }));
      const grow = (n: number): boolean => {
        if (n <= reserved) return true;
        if (!budget.take(n - reserved)) return false;
        reserved = n;
        return true;
      };
      const chunks: Buffer[] = [];
      let wire = 0;
      let size = 0;
      let over = false;
      const fail = (e: ProtocolError) => {
        if (over) return;
        over = true;
        chunks.length = 0;
        stop(e);
      };
      z.on('error', (e) => fail(new ProtocolError(400, `the request body is not valid ${coding} data (Content-Encoding: ${coding}): ${e.message}`)));
      if (declared !== undefined && !grow(declared)) return fail(overloaded(declared));
      z.on('data', (c: Buffer) => {
        if (over) return;
        size += c.length;
        if (size > maxBodyBytes)
          return fail(new ProtocolError(413, `request body exceeds the limit of ${maxBodyBytes} bytes once inflated (Content-Encoding: ${coding})`));
        if (!grow(size)) return fail(overloaded(size - reserved));
        chunks.push(c);
      });
      z.on('end', () => {
        if (over) return;
        over = true;
        done();
        resolve(joined(chunks, size, pad));
        chunks.length = 0;
      });
      req.on('data', (c: Buffer) => {
        if (over || z.destroyed) return;
        wire += c.length;
        if (wire > maxBodyBytes) return fail(tooLarge());
        if (!grow(wire)) return fail(overloaded(wire - reserved));
        // zlib is behind: the socket waits for it
        if (!z.write(c)) {
          req.pause();
          z.once('drain', () => over || req.resume());
        }
      });
      req.on('end', () => over || z.destroyed || z.end());
      const inflaterGone = () => {
        if (over) return;
        over = true;
        z.destroy();
        gone();
      };
      req.on('error', inflaterGone);
      req.on('close', () => req.complete || inflaterGone());
      return;
    }
    if (declared !== undefined && Number.isSafeInteger(declared)) {
      if (!budget.take(declared)) return stop(overloaded(declared));
      reserved = declared;
      const buffer = Buffer.allocUnsafeSlow(pad + declared).subarray(pad);
      let size = 0;
      req.on('data', (c: Buffer) => {
        if (size + c.length > declared) return; // Node's parser keeps to Content-Length; never write past it
        c.copy(buffer, size);
        size += c.length;
      });
      req.on('end', () => {
        done();
        if (size === declared) resolve(buffer);
        else reject(new ProtocolError(400, `the body has ${size} bytes, Content-Length says ${declared}`));
      });
      req.on('error', gone);
      req.on('close', () => req.complete || gone());
      return;
    }
    // chunked: the budget is taken as the bytes come
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBodyBytes) return stop(tooLarge());
      if (!budget.take(c.length)) return stop(overloaded(c.length));
      reserved += c.length;
      chunks.push(c);
    });
    req.on('end', () => {
      done();
      resolve(joined(chunks, size, 0));
    });
    req.on('error', gone);
    req.on('close', () => req.complete || gone());
  });
  return { body, release };
}

/**
 * `chunks` in one buffer of its own (never a slice of Node's shared pool: it may be moved to a worker thread),
 * starting `pad` bytes into its memory (so that binary tensor data after the JSON header is 4-byte aligned).
 */
function joined(chunks: Buffer[], size: number, pad: number): Buffer {
  const body = Buffer.allocUnsafeSlow(pad + size).subarray(pad);
  let offset = 0;
  for (const c of chunks) offset += c.copy(body, offset);
  return body;
}
