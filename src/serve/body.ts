import type { IncomingHttpHeaders } from 'http';
import type { Readable } from 'stream';
import * as zlib from 'zlib';
import { HEADER_LENGTH, ProtocolError } from '../protocol/kserve';
import { BodyTimeout, ClientGone, Overloaded, UnsupportedEncoding } from './errors';
import { ByteBudget, PIECE_BYTES } from './memory';

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
 * in the in-flight budget until `release`: the budget counts what is allocated for the body. With a Content-Length
 * the body is reserved before it is read (a request that does not fit is refused 503 before a byte of its body), and
 * read straight into a buffer placed so that the binary tensor data (after the JSON header) starts 4-byte aligned:
 * the FP32 tensor is then a view, not a copy. A body of unknown length (chunked, or sent with Content-Encoding gzip
 * or deflate and inflated as it comes) is copied into pieces, each reserved before it is allocated, and refused 503
 * as soon as one does not fit; when it has all arrived its pieces are joined into such a buffer (the copy reserved
 * too, the pieces then given back). A refused body costs nothing more: its bytes are given back at once, what had
 * arrived is let go of (its pieces kept for the next body), and the rest is not read (the socket stops being read once
 * Node's small read-ahead is full); the answer goes out with Connection: close, and Node closes the connection after
 * it. The body timeout bounds a client that never finishes.
 */
export function readBody(req: BodySource, limits: BodyLimits): BodyRead {
  const { maxBodyBytes, bodyTimeoutMs, budget } = limits;
  let reserved = 0;
  /**
   * the body holds at least `n` bytes reserved (`forPiece`: for a piece it is about to take, ByteBudget.take); false
   * (nothing more reserved) when they do not fit
   */
  const hold = (n: number, forPiece = false): boolean => {
    if (n <= reserved) return true;
    if (!budget.take(n - reserved, forPiece)) return false;
    reserved = n;
    return true;
  };
  /** the body holds at most `n` bytes reserved (the rest is no longer allocated) */
  const holdOnly = (n: number) => {
    if (n >= reserved) return;
    budget.give(reserved - n);
    reserved = n;
  };
  const release = () => holdOnly(0);
  const body = new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    // the compressed body's inflater, when there is one: ended with the request, whichever way it ends
    let inflater: zlib.Unzip | undefined;
    // the bytes read so far, let go of when the body is refused (the request object, and the listeners that hold
    // them, may outlive its answer)
    let drop = () => undefined as void;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      inflater?.destroy();
      return true;
    };
    const finish = (b: Buffer) => settle() && resolve(b);
    const stop = (e: ProtocolError) => {
      if (!settle()) return;
      release();
      drop();
      req.removeAllListeners('data');
      // a body cut short is not read on: Node stops reading the socket once its read-ahead (16 KiB) is full, answers,
      // and closes the connection after the answer (Connection: close), the client's unsent bytes never read. (One
      // that has all arrived is drained: its bytes are already here, and the connection may go on.)
      if (req.complete) req.resume();
      else req.pause();
      reject(e);
    };
    const overloaded = (n: number) =>
      new Overloaded(`the server holds ${budget.inUse} request bytes (bound ${budget.limit}); this request's ${n} more do not fit now`);
    const tooLarge = () => new ProtocolError(413, `request body exceeds the limit of ${maxBodyBytes} bytes`);
    const timer = setTimeout(() => stop(new BodyTimeout(`the request body did not arrive within ${bodyTimeoutMs} ms`)), bodyTimeoutMs);
    const gone = () => stop(new ClientGone());
    req.on('error', gone);
    req.on('close', () => req.complete || gone());
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
    /** the body of unknown length in one buffer, once it has all arrived (its copy reserved, the pieces given back) */
    const complete = (pieces: Pieces) => {
      if (settled) return;
      const b = pieces.join();
      if (!b) return stop(overloaded(pieces.refused));
      holdOnly(b.length);
      budget.keep(pieces.taken());
      finish(b);
    };
    if (coding !== 'identity') {
      // compressed: inflated as the bytes come (on zlib's threads). As Triton (inflateInit2 with 15|32), zlib tells
      // the format from its header: a gzip or a zlib stream, under either name. The limits hold for the inflated
      // bytes as for the wire's: a body that inflates past max-body-bytes (a zip bomb) is refused 413 as soon as it
      // does. The budget holds the declared Content-Length from the start (a body that does not fit is refused before
      // it is read), then at least the inflated pieces and the wire bytes given to zlib and not yet inflated; once
      // whole, the inflated body alone. Corrupt or truncated data is a 400 naming the coding (Triton 2.51 does not
      // look: it serves what inflated)
      const z = (inflater = zlib.createUnzip({ chunkSize: INFLATE_CHUNK }));
      let wire = 0;
      // wire bytes written to zlib and not yet inflated
      let queued = 0;
      const inflated = new Pieces(pad, maxBodyBytes, budget, (capacity, forPiece) => hold(capacity + queued, forPiece));
      drop = () => budget.keep(inflated.taken());
      z.on('error', (e) => stop(new ProtocolError(400, `the request body is not valid ${coding} data (Content-Encoding: ${coding}): ${e.message}`)));
      if (declared !== undefined && !hold(declared)) return stop(overloaded(declared));
      z.on('data', (c: Buffer) => {
        if (settled) return;
        if (inflated.size + c.length > maxBodyBytes)
          return stop(new ProtocolError(413, `request body exceeds the limit of ${maxBodyBytes} bytes once inflated (Content-Encoding: ${coding})`));
        if (!inflated.add(c)) stop(overloaded(inflated.refused));
      });
      z.on('end', () => complete(inflated));
      req.on('data', (c: Buffer) => {
        if (settled) return;
        wire += c.length;
        if (wire > maxBodyBytes) return stop(tooLarge());
        if (!hold(inflated.capacity + queued + c.length)) return stop(overloaded(c.length));
        queued += c.length;
        // zlib is behind: the socket waits for it
        if (!z.write(c, () => (queued -= c.length))) {
          req.pause();
          z.once('drain', () => settled || req.resume());
        }
      });
      req.on('end', () => settled || z.end());
      return;
    }
    if (declared !== undefined && Number.isSafeInteger(declared)) {
      if (!hold(declared)) return stop(overloaded(declared));
      let buffer: Buffer | undefined = Buffer.allocUnsafeSlow(pad + declared).subarray(pad);
      drop = () => (buffer = undefined);
      let size = 0;
      req.on('data', (c: Buffer) => {
        if (!buffer || size + c.length > declared) return; // Node's parser keeps to Content-Length; never write past it
        c.copy(buffer, size);
        size += c.length;
      });
      req.on('end', () => {
        if (buffer && size === declared) finish(buffer);
        else stop(new ProtocolError(400, `the body has ${size} bytes, Content-Length says ${declared}`));
      });
      return;
    }
    // chunked: the budget is taken piece by piece as the bytes come
    const pieces = new Pieces(pad, maxBodyBytes, budget, hold);
    drop = () => budget.keep(pieces.taken());
    req.on('data', (c: Buffer) => {
      if (pieces.size + c.length > maxBodyBytes) return stop(tooLarge());
      if (!pieces.add(c)) stop(overloaded(pieces.refused));
    });
    req.on('end', () => complete(pieces));
  });
  return { body, release };
}

/**
 * A body of unknown length as it comes, copied into pieces (never kept as slices of the socket's reads, which would
 * hold the whole read, framing and all), each reserved (`hold`: the capacity it brings the body to) before it is
 * allocated. The first is the size of the first chunk (starting `pad` bytes into its memory), each next one as large as
 * all before it (a small body holds little, and at most twice its size), up to PIECE_BYTES (then at most a piece more
 * than its size): those the budget keeps and hands out again.
 */
class Pieces {
  private pieces: Buffer[] = [];
  /** bytes stored in the last piece */
  private used = 0;
  /** bytes allocated, all pieces */
  capacity = 0;
  /** bytes stored */
  size = 0;
  /** after `add` or `join` said no: the bytes that did not fit */
  refused = 0;

  constructor(
    private readonly pad: number,
    private readonly max: number,
    private readonly budget: ByteBudget,
    private readonly hold: (capacity: number, forPiece: boolean) => boolean,
  ) {}

  /** store `c` (the caller keeps `size` within `max`); false when a piece it needs does not fit in the budget */
  add(c: Buffer): boolean {
    for (let at = 0; at < c.length;) {
      let last = this.pieces[this.pieces.length - 1];
      if (!last || this.used === last.length) {
        // (all pieces are full: capacity is size, and max - size holds the rest of c)
        const n = Math.min(this.max - this.capacity, Math.max(c.length - at, Math.min(PIECE_BYTES, this.capacity)));
        const whole = n === PIECE_BYTES && this.pieces.length > 0;
        if (!this.hold(this.capacity + n, whole)) {
          this.refused = n;
          return false;
        }
        last = whole ? this.budget.piece() : this.pieces.length ? Buffer.allocUnsafeSlow(n) : Buffer.allocUnsafeSlow(this.pad + n).subarray(this.pad);
        this.pieces.push(last);
        this.capacity += n;
        this.used = 0;
      }
      const k = c.copy(last, this.used, at);
      this.used += k;
      this.size += k;
      at += k;
    }
    return true;
  }

  /**
   * The body in one buffer of its own, starting `pad` bytes into its memory: the one piece as it is, or the pieces
   * copied into one (the copy reserved first, alongside them); undefined when that does not fit.
   */
  join(): Buffer | undefined {
    if (this.pieces.length === 1 && this.used === this.pieces[0].length) return this.pieces.pop();
    if (this.pieces.length > 0 && !this.hold(this.capacity + this.size, false)) {
      this.refused = this.size;
      return undefined;
    }
    const last = this.pieces.length - 1;
    return joined(
      this.pieces.map((p, i) => (i === last ? p.subarray(0, this.used) : p)),
      this.size,
      this.pad,
    );
  }

  /** the pieces, no longer this body's (joined, or refused) */
  taken(): Buffer[] {
    const pieces = this.pieces;
    this.pieces = [];
    this.used = 0;
    return pieces;
  }
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
