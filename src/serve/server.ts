import * as http from 'http';
import * as fs from 'fs';
import * as zlib from 'zlib';
import { AddressInfo } from 'net';
import type * as Ort from 'onnxruntime-node';
import * as prom from 'prom-client';
import { DynamicBatcher, BatchOutput } from './batcher';
import { ProtocolError, parseInferRequest, encodeInferResponse, responseTensors, HEADER_LENGTH } from '../protocol/kserve';
import { topClasses } from '../protocol/classification';
import { decryptModel, isEncrypted } from '../protocol/model-crypto';
import { imageToTensor, imageToDetectionTensor, Preprocess, GOOGLENET_PREPROCESS } from '../protocol/pixels';
import { DETECTION_OUTPUTS_KEY, detectionOutputNames, imageDetections } from '../protocol/detections';
import { onnxInfo } from '../formats/onnxinfo';
import { cpuBudget } from './cpus';
import { parseProvider, ProviderRequest } from './execution-provider';
import { InferenceThread, DecodeThreads } from './threads';
import { ByteBudget, defaultInflightBytes, memoryLimit } from './memory';
import { bearerMatches, FailedAuthLimiter } from './auth';
import { ModelshipError } from '../util/errors';
import { VERSION } from '../version';

export interface ServeOptions {
  modelPath: string;
  modelName: string;
  modelVersion: string;
  host: string;
  port: number;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  /** run a request that finds the server idle at once (true), or always wait the queue delay for company (false) */
  idleFlush: boolean;
  /** cpu, cuda (strict: no CUDA provider, no server) or cuda,cpu (fall back to the CPU, and say so) */
  provider: ProviderRequest;
  /** onnxruntime intra-op threads; 0 = the CPUs this container may use (affinity and cgroup CPU quota) */
  intraOpThreads: number;
  apiKey?: string;
  modelKey?: Buffer;
  maxBodyBytes: number;
  /** request bytes held at once (bodies being read or waiting for their answer); 0 = a quarter of the memory limit */
  maxInflightBytes: number;
  /** a request's headers must arrive within this; its body within bodyTimeoutMs after them (else 408) */
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  /** failed API-key attempts per client address per minute before it gets 429s */
  authFailureLimit: number;
  /** a second listener that serves only GET /metrics, without the API key (for the scrape configuration); undefined = none */
  metricsPort?: number;
  /** threads that decode large JSON bodies and images (the main thread only speaks HTTP) */
  decodeThreads: number;
  preprocess: Preprocess;
  labels?: string[];
  topK: number;
  /** /detect: the score a detection needs when the request gives no `?threshold=` */
  detectionThreshold: number;
  /** after SIGTERM: keep serving this long with readiness false (load balancers stop sending), then close */
  drainDelayMs: number;
  /** then wait at most this long for in-flight requests; connections still open after it (stalled clients) are cut */
  drainTimeoutMs: number;
  log: (line: string) => void;
}

export const DEFAULT_SERVE: Omit<ServeOptions, 'modelPath' | 'log'> = {
  modelName: 'model',
  modelVersion: '1',
  host: '0.0.0.0',
  port: 8000,
  maxBatchSize: 8,
  maxQueueDelayMs: 2,
  idleFlush: true,
  provider: parseProvider('cpu'),
  intraOpThreads: 0,
  maxBodyBytes: 64 * 2 ** 20,
  maxInflightBytes: 0,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 60_000,
  authFailureLimit: 10,
  decodeThreads: 1,
  preprocess: GOOGLENET_PREPROCESS,
  topK: 5,
  detectionThreshold: 0.5,
  drainDelayMs: 0,
  drainTimeoutMs: 20_000,
};

export interface RunningServer {
  url: string;
  port: number;
  /** stop taking work: readiness false, finish in-flight requests, close */
  drain(): Promise<void>;
  provider: string;
  metrics: prom.Registry;
  batcher: DynamicBatcher;
  /** the metrics-only listener's port, when there is one */
  metricsPort?: number;
  /** the bound on request bytes held at once */
  maxInflightBytes: number;
}

/** how long a client that is still sending a refused body may go on (its bytes discarded) before it is cut */
const LINGER_MS = 2000;

/** JSON parts larger than this are decoded on a decode thread (smaller ones take well under a millisecond) */
export const OFFLOAD_JSON_BYTES = 64 * 1024;

/** The server cannot take this request now (too many bytes in flight): 503 with Retry-After, before its body is read. */
class Overloaded extends ProtocolError {
  constructor(message: string) {
    super(503, message);
  }
}

/** A request body in a Content-Encoding the server does not read: 501 with Accept-Encoding, as Triton answers it. */
class UnsupportedEncoding extends ProtocolError {
  constructor(message: string) {
    super(501, message);
  }
}

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

/** onnxruntime's threading for a server (the session lives on its inference thread, worker.ts) */
export { ortThreading } from './worker';

/** The request target as a URL; a target that is not an origin-form path is the client's fault (400). */
export function requestUrl(target: string | undefined): URL {
  const t = target ?? '/';
  if (!t.startsWith('/')) throw new ProtocolError(400, `malformed request target "${t.slice(0, 100)}"`);
  try {
    // (a base and a path joined as text: `//x` would otherwise be read as a host)
    return new URL(`http://localhost${t}`);
  } catch {
    throw new ProtocolError(400, `malformed request target "${t.slice(0, 100)}"`);
  }
}

/** A percent-encoded path segment, decoded; a malformed escape (`%`, `%zz`) is the client's fault (400). */
export function decodePath(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ProtocolError(400, `malformed percent-encoding in "${segment.slice(0, 100)}"`);
  }
}

/** Load the model and serve it over the KServe v2 protocol. */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  let bytes: Uint8Array = fs.readFileSync(opts.modelPath);
  if (isEncrypted(bytes)) bytes = decryptModel(bytes, opts.modelKey, opts.modelPath);
  const sig = onnxInfo(bytes, opts.modelPath);
  if (sig.inputs.length === 0) throw new ModelshipError('input', 'the model has no inputs', { file: opts.modelPath });

  // onnxruntime's own default sizes its pool from the host, not from the container's quota (on a 2-vCPU VM it
  // ran GoogLeNet at 1.6x the latency of an explicit 2), so the thread count is always set
  const budget = cpuBudget();
  const threads = opts.intraOpThreads > 0 ? opts.intraOpThreads : budget.cpus;
  const mem = memoryLimit();
  const inflightLimit = opts.maxInflightBytes > 0 ? opts.maxInflightBytes : defaultInflightBytes(mem, opts.maxBodyBytes);
  if (inflightLimit < opts.maxBodyBytes) throw new ModelshipError('input', `the in-flight bound (${inflightLimit} bytes) is below the body limit (${opts.maxBodyBytes}): the largest request could never be taken`, { field: 'max-inflight-bytes' });

  // the session lives on its own thread: onnxruntime-node's session.run blocks the thread that calls it
  let crashed: ((e: Error) => void) | undefined;
  const engine = await InferenceThread.start(bytes, threads, opts.provider, sig.outputs.map((o) => o.name), (e) => crashed?.(e));
  const decoders = new DecodeThreads(opts.decodeThreads);
  const { provider, fallbackReason } = engine;
  if (fallbackReason) opts.log(`CUDA execution provider unavailable: ${fallbackReason}; serving on the CPU, as ${opts.provider.requested} allows`);
  opts.log(`model ${opts.modelName} v${opts.modelVersion} loaded from ${opts.modelPath} on ${provider} with ${threads} intra-op thread${threads === 1 ? '' : 's'} (${opts.intraOpThreads > 0 ? 'configured' : budget.source}) on an inference thread; inputs ${sig.inputs.map((i) => `${i.name}[${i.shape}]`).join(' ')}`);
  opts.log(`request bytes in flight bounded at ${inflightLimit} (${opts.maxInflightBytes > 0 ? 'configured' : `a quarter of ${mem.source}: ${mem.bytes}`}); headers within ${opts.headerTimeoutMs} ms, bodies within ${opts.bodyTimeoutMs} ms`);

  const registry = new prom.Registry();
  // prom-client's own names already start with process_ / nodejs_: the prefix is modelship_ alone
  prom.collectDefaultMetrics({ register: registry, prefix: 'modelship_' });
  // three of prom-client's gauges end in _total, which names counters (promtool warns); each is the sum over the
  // `type` label of its namesake without the suffix, which stays
  for (const what of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`modelship_nodejs_active_${what}_total`);
  const requests = new prom.Counter({ name: 'modelship_requests_total', help: 'HTTP requests', labelNames: ['route', 'code'], registers: [registry] });
  const errors = new prom.Counter({ name: 'modelship_request_errors_total', help: 'Requests answered with 4xx/5xx', labelNames: ['route', 'code'], registers: [registry] });
  const latency = new prom.Histogram({ name: 'modelship_request_duration_seconds', help: 'Request latency', labelNames: ['route'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] });
  const batchSizes = new prom.Histogram({ name: 'modelship_batch_size', help: 'Items per executed batch', buckets: [1, 2, 4, 8, 16, 32, 64], registers: [registry] });
  const inflightGauge = new prom.Gauge({ name: 'modelship_inflight_requests', help: 'Requests being handled', registers: [registry] });
  new prom.Gauge({
    name: 'modelship_inflight_request_bytes',
    help: 'Request bytes held (bodies being read or waiting for their answer)',
    registers: [registry],
    collect() {
      this.set(bodies.inUse);
    },
  });
  new prom.Gauge({ name: 'modelship_inflight_request_bytes_limit', help: 'The bound on request bytes held at once', registers: [registry] }).set(inflightLimit);
  new prom.Gauge({ name: 'modelship_execution_provider', help: 'The execution provider the model runs on (1), what was requested, and whether that is a fallback', labelNames: ['provider', 'requested', 'fallback'], registers: [registry] })
    .set({ provider, requested: opts.provider.requested, fallback: String(Boolean(fallbackReason)) }, 1);

  const bodies = new ByteBudget(inflightLimit);
  const authFailures = new FailedAuthLimiter(opts.authFailureLimit);
  const input0 = sig.inputs[0];
  const itemShape = input0.shape.slice(1).map((d) => (typeof d === 'number' ? d : NaN));
  // detection tables (SSD's DetectionOutput) are one table for the whole batch, not batch-first: split by image_id
  const detectionOutputs = detectionOutputNames(sig.metadata, sig.outputs.map((o) => o.name));
  const isDetection = new Set(detectionOutputs);
  if (detectionOutputs.length) opts.log(`detection output${detectionOutputs.length > 1 ? 's' : ''} ${detectionOutputs.join(', ')}: [1, 1, D, 7] tables, split per request by image_id; POST /v2/models/${opts.modelName}/detect takes an image`);
  const batcher = new DynamicBatcher(
    async (input, items): Promise<BatchOutput> => {
      const res = await engine.run({ [input0.name]: { data: input, shape: [items, ...itemShape] } });
      const out: BatchOutput = {};
      for (const [k, v] of Object.entries(res)) {
        if (isDetection.has(k)) {
          out[k] = { data: v.data, itemShape: v.shape.slice(1), detections: true };
          continue;
        }
        // an output that is not batch-first cannot be split by item: refuse rather than hand out wrong slices
        if (v.shape[0] !== items) throw new Error(`output "${k}" has shape [${v.shape.join(', ')}] for a batch of ${items}: its first dimension is not the batch, so the server cannot split it per request (a detection table must be listed in the model's ${DETECTION_OUTPUTS_KEY} metadata)`);
        out[k] = { data: v.data, itemShape: v.shape.slice(1) };
      }
      return out;
    },
    opts.maxBatchSize,
    opts.maxQueueDelayMs,
    (n) => batchSizes.observe(n),
    opts.idleFlush,
  );

  let ready = true;
  // set when the drain delay is over: from then on new inference is refused (in-flight requests still finish)
  let closing = false;
  let inflight = 0;
  let idle: (() => void) | undefined;
  const name = opts.modelName;
  const version = opts.modelVersion;
  let broken: string | undefined;
  crashed = (e) => {
    // no session, no server: liveness fails, so that the orchestrator restarts the container
    opts.log(`fatal: ${e.message}`);
    broken = e.message;
    ready = false;
  };

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}) => {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    // while draining, every answer ends its connection: keep-alive clients reconnect to another replica
    if (!ready) headers = { ...headers, connection: 'close' };
    res.writeHead(status, { 'content-type': Buffer.isBuffer(body) && headers[HEADER_LENGTH] !== undefined ? 'application/octet-stream' : 'application/json', 'content-length': buf.length, ...headers });
    res.end(buf);
  };

  /** The client went away before its body was read: its fault, counted as 499 (nginx's "client closed request"). */
  const clientGone = () => new ProtocolError(499, 'the client closed the connection before sending the whole body');

  /**
   * The request body in one buffer of its own (so that it can be moved to a worker thread), its bytes reserved in
   * the in-flight budget until the answer is sent: a request that does not fit is refused before its body is read.
   * With a Content-Length it is read straight into a buffer placed so that the binary tensor data (after the JSON
   * header) starts 4-byte aligned: the FP32 tensor is then a view, not a copy. A body sent with Content-Encoding gzip
   * or deflate is inflated as it comes, into such a buffer too.
   */
  const readBody = (req: http.IncomingMessage, res: http.ServerResponse): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      let reserved = 0;
      res.once('close', () => bodies.give(reserved));
      // the compressed body's inflater, when there is one: ended with the request, whichever way it ends
      let inflater: zlib.Unzip | undefined;
      const stop = (e: ProtocolError) => {
        clearTimeout(timer);
        inflater?.destroy();
        // answer and discard the rest of the body (destroying the socket would lose the answer); the connection
        // closes after the answer, and the body timeout bounds a client that never finishes
        req.removeAllListeners('data');
        req.resume();
        reject(e);
      };
      const overloaded = (n: number) =>
        new Overloaded(`the server holds ${bodies.inUse} request bytes (bound ${bodies.limit}); this request's ${n} more do not fit now`);
      const tooLarge = () => new ProtocolError(413, `request body exceeds the limit of ${opts.maxBodyBytes} bytes`);
      const timer = setTimeout(() => {
        inflater?.destroy();
        reject(new ProtocolError(408, `the request body did not arrive within ${opts.bodyTimeoutMs} ms`));
        req.removeAllListeners('data');
      }, opts.bodyTimeoutMs);
      const done = () => clearTimeout(timer);
      let coding: BodyCoding;
      try {
        coding = bodyCoding(req.headers['content-encoding']);
      } catch (e) {
        return stop(e as ProtocolError);
      }
      const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
      if ((declared ?? 0) > opts.maxBodyBytes) return stop(tooLarge());
      const hl = Number(req.headers[HEADER_LENGTH] ?? 0);
      const pad = Number.isSafeInteger(hl) && hl > 0 ? (4 - (hl % 4)) % 4 : 0;
      if (coding !== 'identity') {
        // compressed: inflated as the bytes come (on zlib's threads). As Triton (inflateInit2 with 15|32), zlib tells
        // the format from its header: a gzip or a zlib stream, under either name. The limits hold for the inflated
        // bytes as for the wire's: a body that inflates past max-body-bytes (a zip bomb) is refused 413 as soon as it
        // does, and the budget holds the larger of the wire bytes (declared, or seen so far) and the inflated ones.
        // Corrupt or truncated data is a 400 naming the coding (Triton 2.51 does not look: it serves what inflated)
        const z = (inflater = zlib.createUnzip({ chunkSize: INFLATE_CHUNK }));
        const grow = (n: number): boolean => {
          if (n <= reserved) return true;
          if (!bodies.take(n - reserved)) return false;
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
          if (size > opts.maxBodyBytes) return fail(new ProtocolError(413, `request body exceeds the limit of ${opts.maxBodyBytes} bytes once inflated (Content-Encoding: ${coding})`));
          if (!grow(size)) return fail(overloaded(size - reserved));
          chunks.push(c);
        });
        z.on('end', () => {
          if (over) return;
          over = true;
          done();
          // (a buffer of its own, placed as above)
          const body = Buffer.allocUnsafeSlow(pad + size).subarray(pad);
          let o = 0;
          for (const c of chunks) o += c.copy(body, o);
          chunks.length = 0;
          resolve(body);
        });
        req.on('data', (c: Buffer) => {
          if (over || z.destroyed) return;
          wire += c.length;
          if (wire > opts.maxBodyBytes) return fail(tooLarge());
          if (!grow(wire)) return fail(overloaded(wire - reserved));
          // zlib is behind: the socket waits for it
          if (!z.write(c)) {
            req.pause();
            z.once('drain', () => over || req.resume());
          }
        });
        req.on('end', () => over || z.destroyed || z.end());
        const gone = () => {
          if (over) return;
          over = true;
          done();
          z.destroy();
          reject(clientGone());
        };
        req.on('error', gone);
        req.on('close', () => req.complete || gone());
        return;
      }
      if (declared !== undefined && Number.isSafeInteger(declared)) {
        if (!bodies.take(declared)) return stop(overloaded(declared));
        reserved = declared;
        const body = Buffer.allocUnsafeSlow(pad + declared).subarray(pad);
        let size = 0;
        req.on('data', (c: Buffer) => {
          if (size + c.length > declared) return; // Node's parser keeps to Content-Length; never write past it
          c.copy(body, size);
          size += c.length;
        });
        req.on('end', () => {
          done();
          if (size === declared) resolve(body);
          else reject(new ProtocolError(400, `the body has ${size} bytes, Content-Length says ${declared}`));
        });
        req.on('error', () => (done(), reject(clientGone())));
        req.on('close', () => req.complete || (done(), reject(clientGone())));
        return;
      }
      // chunked: the budget is taken as the bytes come
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > opts.maxBodyBytes) return stop(tooLarge());
        if (!bodies.take(c.length)) return stop(overloaded(c.length));
        reserved += c.length;
        chunks.push(c);
      });
      req.on('end', () => {
        done();
        // (a buffer of its own, never a slice of Node's shared pool: it may be moved to a worker thread)
        const body = Buffer.allocUnsafeSlow(size);
        let o = 0;
        for (const c of chunks) o += c.copy(body, o);
        resolve(body);
      });
      req.on('error', () => (done(), reject(clientGone())));
      req.on('close', () => req.complete || (done(), reject(clientGone())));
    });

  const clientAddress = (req: http.IncomingMessage): string => req.socket.remoteAddress ?? 'unknown';

  const modelMetadata = () => ({
    name,
    versions: [version],
    platform: 'onnxruntime_onnx',
    inputs: sig.inputs.map((i) => ({ name: i.name, datatype: 'FP32', shape: i.shape.map((d) => (typeof d === 'number' ? d : -1)) })),
    outputs: sig.outputs.map((o) => ({ name: o.name, datatype: 'FP32', shape: o.shape.map((d) => (typeof d === 'number' ? d : -1)) })),
    parameters: { execution_provider: provider, requested_provider: opts.provider.requested, ...(fallbackReason ? { provider_fallback: fallbackReason } : {}), intra_op_threads: threads, max_batch_size: opts.maxBatchSize, max_queue_delay_ms: opts.maxQueueDelayMs, ...(detectionOutputs.length ? { detection_outputs: detectionOutputs.join(',') } : {}), preprocess: JSON.stringify(opts.preprocess), server: `modelship ${VERSION}` },
  });

  async function infer(req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
    const body = await readBody(req, res);
    const hl = req.headers[HEADER_LENGTH];
    const headerLength = hl === undefined ? undefined : Number(hl);
    // a large JSON part is decoded on a decode thread (60 MiB of JSON takes seconds to parse)
    const jsonBytes = headerLength ?? body.length;
    const parsed = jsonBytes > OFFLOAD_JSON_BYTES && Number.isSafeInteger(jsonBytes) ? await decoders.json(body, headerLength) : parseInferRequest(body, headerLength);
    const known = new Map(sig.inputs.map((i) => [i.name, i]));
    for (const t of parsed.inputs) {
      const info = known.get(t.name);
      if (!info) throw new ProtocolError(400, `unknown input "${t.name}"; the model's inputs are ${[...known.keys()].join(', ')}`);
      const want = info.shape;
      const ok = t.shape.length === want.length && t.shape.every((d, i) => typeof want[i] !== 'number' || want[i] === d) && t.shape[0] > 0;
      if (!ok) throw new ProtocolError(400, `input "${t.name}": shape [${t.shape.join(', ')}] does not match the model's [${want.map((d) => (typeof d === 'number' ? d : -1)).join(', ')}]`);
    }
    for (const i of sig.inputs) if (!parsed.inputs.find((t) => t.name === i.name)) throw new ProtocolError(400, `missing input "${i.name}"`);
    const outNames = sig.outputs.map((o) => o.name);
    for (const o of parsed.outputs) if (!outNames.includes(o.name)) throw new ProtocolError(400, `unknown output "${o.name}"; the model's outputs are ${outNames.join(', ')}`);
    for (const o of parsed.outputs) {
      if (o.classification !== undefined && isDetection.has(o.name)) throw new ProtocolError(400, `output "${o.name}" is a detection table (rows image_id, label, score, xmin, ymin, xmax, ymax), not class scores: "classification" does not apply (POST an image to /v2/models/${name}/detect for detections in pixels)`);
    }
    let results: Record<string, { data: Float32Array; shape: number[] }>;
    if (sig.inputs.length === 1) {
      const t = parsed.inputs[0];
      const out = await batcher.submit(t.data, t.shape[0]);
      results = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data, shape: v.shape ?? [t.shape[0], ...v.itemShape] }]));
    } else {
      results = await engine.run(Object.fromEntries(parsed.inputs.map((t) => [t.name, { data: t.data, shape: t.shape }])));
    }
    // the requested outputs in the model's order when none are named; `classification: N` as Triton answers it
    const ordered = Object.fromEntries(outNames.map((n) => [n, results[n]]));
    const enc = encodeInferResponse(name, version, parsed.id, responseTensors(ordered, parsed.outputs, parsed.binaryOutputs, opts.labels));
    send(res, 200, enc.body, enc.headerLength !== undefined ? { [HEADER_LENGTH]: enc.headerLength } : {});
    return 200;
  }

  /** The image input's height and width, or a 400 saying what `what` needs. */
  const imageInput = (what: string): [number, number] => {
    const [, , H, W] = input0.shape;
    if (sig.inputs.length !== 1 || input0.shape.length !== 4 || input0.shape[1] !== 3 || typeof H !== 'number' || typeof W !== 'number') {
      throw new ProtocolError(400, `${what} needs a model with one [N, 3, H, W] input`);
    }
    return [H, W];
  };

  async function classify(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<number> {
    if (detectionOutputs.length) throw new ProtocolError(400, `model "${name}" is a detection model (output ${detectionOutputs.join(', ')}: a table of detections, not class scores): POST the image to /v2/models/${name}/detect`);
    const body = await readBody(req, res);
    const [H, W] = imageInput('image classification');
    const k = Math.max(1, Math.min(1000, Number(url.searchParams.get('top_k') ?? opts.topK) || opts.topK));
    // decoding and resizing an image takes tens of milliseconds: on a decode thread
    const x = body.length > OFFLOAD_JSON_BYTES / 16 ? await decoders.image(body, H, W, opts.preprocess) : imageToTensor(body, H, W, opts.preprocess);
    const out = await batcher.submit(x, 1);
    const first = out[sig.outputs[0].name].data;
    const idx = topClasses(first, 0, first.length, Math.min(k, first.length));
    send(res, 200, { model_name: name, model_version: version, predictions: idx.map((i) => ({ index: i, label: opts.labels?.[i] ?? String(i), score: first[i] })) });
    return 200;
  }

  async function detect(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<number> {
    if (!detectionOutputs.length) throw new ProtocolError(400, `model "${name}" is not a detection model (no output is a detection table; its ONNX metadata has no ${DETECTION_OUTPUTS_KEY}): POST the image to /v2/models/${name}/classify`);
    const t = url.searchParams.get('threshold');
    const threshold = t === null ? opts.detectionThreshold : Number(t);
    if (t !== null && (t.trim() === '' || !(threshold >= 0 && threshold <= 1))) throw new ProtocolError(400, `threshold must be a number from 0 to 1 (a detection's score), got "${t.slice(0, 40)}"`);
    const body = await readBody(req, res);
    const [H, W] = imageInput('object detection');
    // the whole image resized to the input (SSD's transform): decoded on a decode thread when it is large
    const img = body.length > OFFLOAD_JSON_BYTES / 16 ? await decoders.detectionImage(body, H, W, opts.preprocess) : imageToDetectionTensor(body, H, W, opts.preprocess);
    const out = await batcher.submit(img.data, 1);
    const table = out[detectionOutputs[0]].data;
    const detections = imageDetections(table, { threshold, width: img.width, height: img.height, labels: opts.labels });
    send(res, 200, { model_name: name, model_version: version, width: img.width, height: img.height, threshold, detections });
    return 200;
  }

  const metricsText = async (res: http.ServerResponse): Promise<number> => {
    // prom-client writes a statistic of no samples yet (the event-loop lag's mean at start) as "Nan", which is not
    // the exposition format's NaN; a mean of nothing is no sample at all
    const text = Buffer.from((await registry.metrics()).replace(/^[^#\n][^\n]* NaN$\n?/gim, ''));
    res.writeHead(200, { 'content-type': registry.contentType, 'content-length': text.length });
    res.end(text);
    return 200;
  };

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<[string, number]> {
    const url = requestUrl(req.url);
    const p = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    if (p === '/v2/health/live') return ['health', broken ? (send(res, 503, { live: false, error: broken }), 503) : (send(res, 200, { live: true }), 200)];
    if (p === '/v2/health/ready') return ['health', ready ? (send(res, 200, { ready: true }), 200) : (send(res, 503, { ready: false, error: 'draining' }), 503)];
    if (opts.apiKey) {
      const addr = clientAddress(req);
      const wait = authFailures.blockedFor(addr);
      if (wait > 0) return ['auth', (send(res, 429, { error: `too many failed API-key attempts from ${addr}; try again in ${wait} s` }, { 'retry-after': wait }), 429)];
      if (!bearerMatches(req.headers.authorization, opts.apiKey)) {
        authFailures.fail(addr);
        send(res, 401, { error: 'missing or invalid API key: send "Authorization: Bearer <key>"' }, { 'www-authenticate': 'Bearer' });
        return ['auth', 401];
      }
    }
    if (p === '/metrics') return ['metrics', await metricsText(res)];
    if (p === '/v2') return ['metadata', (send(res, 200, { name: 'modelship', version: VERSION, extensions: ['binary_tensor_data', 'classification', 'detection'] }), 200)];
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer|\/classify|\/detect)?$/.exec(p);
    if (!m) return ['unknown', (send(res, 404, { error: `no route ${method} ${p}` }), 404)];
    const [, model, ver, action] = m;
    const wanted = decodePath(model);
    if (wanted !== name || (ver !== undefined && ver !== version)) {
      // counted on the route asked for (an infer on another model is an infer answered 404)
      return [action ? action.slice(1) : 'metadata', (send(res, 404, { error: `model "${wanted}"${ver ? ` version ${ver}` : ''} is not served here (serving "${name}" version ${version})` }), 404)];
    }
    if (!action) return ['metadata', (send(res, 200, modelMetadata()), 200)];
    if (action === '/ready') return ['ready', ready ? (send(res, 200, { name, ready: true }), 200) : (send(res, 503, { name, ready: false }), 503)];
    if (method !== 'POST') return [action.slice(1), (send(res, 405, { error: `${action.slice(1)} needs POST` }, { allow: 'POST' }), 405)];
    if (closing) return [action.slice(1), (send(res, 503, { error: 'the server is shutting down' }), 503)];
    return [action.slice(1), action === '/infer' ? await infer(req, res) : action === '/detect' ? await detect(req, res, url) : await classify(req, res, url)];
  }

  // Node's own clocks bound a client that never finishes its headers (it answers 408 itself) and, as a backstop
  // to readBody's timer, the whole request; checked every second rather than every 30 s
  const serverOptions: http.ServerOptions = { headersTimeout: opts.headerTimeoutMs, requestTimeout: opts.headerTimeoutMs + opts.bodyTimeoutMs + 1000, connectionsCheckingInterval: Math.min(1000, opts.headerTimeoutMs) };
  const server = http.createServer(serverOptions, (req, res) => {
    inflight++;
    inflightGauge.inc();
    const end = latency.startTimer();
    // the metrics label, known before the handler runs (so failures are counted on their route)
    const m = /\/(infer|classify|detect|ready)\/?$/.exec(req.url?.split('?')[0] ?? '');
    let routeName = m ? m[1] : /health/.test(req.url ?? '') ? 'health' : 'other';
    route(req, res)
      .then(([r, code]) => {
        routeName = r;
        requests.inc({ route: r, code: String(code) });
        if (code >= 400) errors.inc({ route: r, code: String(code) });
      })
      .catch((e: unknown) => {
        const status = e instanceof ProtocolError ? e.status : 500;
        const message = e instanceof ProtocolError ? e.message : `internal error: ${(e as Error).message}`;
        // (a 501 for a Content-Encoding the server does not read is the client's to fix: no stack trace)
        if (status >= 500 && !(e instanceof Overloaded) && !(e instanceof UnsupportedEncoding) && status !== 503) opts.log(`error: ${(e as Error).stack ?? e}`);
        // (a client that went away gets no answer: there is no one to read it)
        if (!res.headersSent && status !== 499 && !res.destroyed) {
          // a body left unread (refused, too big, too slow) ends the connection after the answer
          const headers: Record<string, string | number> = req.complete ? {} : { connection: 'close' };
          if (e instanceof Overloaded) headers['retry-after'] = 1;
          // the codings that are read (RFC 9110 12.5.3; Triton sends the same)
          if (e instanceof UnsupportedEncoding) headers['accept-encoding'] = 'gzip, deflate';
          send(res, status, { error: message }, headers);
          // a client too slow to send its body within the timeout is not waited for any longer; one still sending a
          // refused body gets a moment to read the answer (its bytes are discarded meanwhile), then is cut
          if (status === 408) res.once('finish', () => req.socket.destroy());
          else if (!req.complete) res.once('finish', () => setTimeout(() => req.socket.destroy(), LINGER_MS).unref());
        }
        requests.inc({ route: routeName, code: String(status) });
        errors.inc({ route: routeName, code: String(status) });
      })
      .finally(() => {
        end({ route: routeName });
        inflight--;
        inflightGauge.dec();
        if (inflight === 0 && idle) idle();
      });
  });
  server.keepAliveTimeout = 5000;
  const listen = (srv: http.Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, opts.host, () => resolve((srv.address() as AddressInfo).port));
    });

  // the scrape port: /metrics and nothing else, without the API key (what Prometheus' pod annotations point to)
  let metricsServer: http.Server | undefined;
  let metricsPort: number | undefined;
  try {
    if (opts.metricsPort !== undefined) {
      metricsServer = http.createServer(serverOptions, (req, res) => {
        let p = '';
        try {
          p = requestUrl(req.url).pathname;
        } catch {
          /* not a path: 404 below */
        }
        if (p === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) void metricsText(res);
        else send(res, 404, { error: 'this port serves GET /metrics only' });
      });
      metricsPort = await listen(metricsServer, opts.metricsPort);
    }
  } catch (e) {
    await Promise.all([engine.release(), decoders.stop()]);
    throw new ModelshipError('io', `cannot listen for metrics on ${opts.host}:${opts.metricsPort}: ${(e as Error).message}`, { field: 'metrics-port' });
  }
  let port: number;
  try {
    port = await listen(server, opts.port);
  } catch (e) {
    metricsServer?.close();
    await Promise.all([engine.release(), decoders.stop()]);
    throw new ModelshipError('io', `cannot listen on ${opts.host}:${opts.port}: ${(e as Error).message}`, { field: 'port' });
  }
  opts.log(`listening on http://${opts.host}:${port} (KServe v2; max batch ${opts.maxBatchSize}, max queue delay ${opts.maxQueueDelayMs} ms${opts.apiKey ? ', API key required' : ''})${metricsPort !== undefined ? `; metrics on :${metricsPort}/metrics` : ''}`);

  return {
    url: `http://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${port}`,
    port,
    provider,
    metrics: registry,
    batcher,
    metricsPort,
    maxInflightBytes: inflightLimit,
    async drain() {
      ready = false;
      opts.log(`draining: readiness is false${opts.drainDelayMs ? `; serving ${opts.drainDelayMs} ms more while load balancers take this replica out` : ''}`);
      if (opts.drainDelayMs > 0) await new Promise((r) => setTimeout(r, opts.drainDelayMs));
      closing = true;
      opts.log(`closing: no new connections; finishing ${inflight} in-flight request${inflight === 1 ? '' : 's'} (at most ${opts.drainTimeoutMs} ms)`);
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        idle = () => server.closeIdleConnections();
        // a client that stalls (headers or body never finished) must not hold the process past the bound
        timer = setTimeout(() => {
          opts.log(`drain timeout: cutting ${inflight} unfinished request${inflight === 1 ? '' : 's'} and any stalled connection`);
          server.closeAllConnections();
        }, opts.drainTimeoutMs);
      });
      clearTimeout(timer);
      if (metricsServer) {
        metricsServer.closeAllConnections();
        await new Promise<void>((r) => metricsServer!.close(() => r()));
      }
      crashed = undefined;
      await Promise.all([engine.release(), decoders.stop()]);
      opts.log('drained; bye');
    },
  };
}
