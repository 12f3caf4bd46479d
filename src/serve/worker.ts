import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isMainThread, parentPort, workerData, MessagePort } from 'worker_threads';
import type * as Ort from 'onnxruntime-node';
import { loadOrt } from '../util/ort';
import { createSession, ProviderRequest } from './execution-provider';
import { ProtocolError, parseInferRequest } from '../protocol/kserve';
import { imageToTensor, imageToDetectionTensor, Preprocess } from '../protocol/pixels';
import { ModelshipError } from '../util/errors';

/**
 * The server's worker threads. The main thread only speaks HTTP; what takes CPU time runs here, so that health
 * checks and small requests are answered while a batch runs or a 60 MiB JSON body is decoded:
 * - an `infer` thread owns the ONNX Runtime session (onnxruntime-node's `session.run` runs on the calling thread);
 * - a `decode` thread parses large JSON bodies and decodes images.
 * Tensors cross threads as transferred ArrayBuffers (moved, not copied) both ways.
 */

export interface Tensor {
  data: Float32Array;
  shape: number[];
}

export type WorkerRole = 'infer' | 'decode';

/** What a worker is started with (`workerData`). */
export interface WorkerInit {
  modelshipWorker: WorkerRole;
  /** infer: the model (plain ONNX bytes, already decrypted) */
  model?: Uint8Array;
  threads?: number;
  provider?: ProviderRequest;
  outputs?: string[];
}

export type WorkerRequest =
  | { id: number; op: 'run'; feeds: Record<string, Tensor> }
  | { id: number; op: 'json'; body: Uint8Array; headerLength?: number }
  | { id: number; op: 'image'; body: Uint8Array; height: number; width: number; preprocess: Preprocess }
  | { id: number; op: 'detectionImage'; body: Uint8Array; height: number; width: number; preprocess: Preprocess }
  | { id: number; op: 'release' };

/** An error that crossed the thread boundary, rebuilt with its class on the other side. */
export type WireError =
  | { kind: 'protocol'; status: number; message: string }
  | { kind: 'modelship'; code: ModelshipError['code']; message: string; location: ModelshipError['location'] }
  | { kind: 'error'; message: string; stack?: string };

export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError }
  | { id: 0; ready: true; provider?: string; fallbackReason?: string }
  | { id: 0; ready: false; error: WireError };

export function toWire(e: unknown): WireError {
  if (e instanceof ProtocolError) return { kind: 'protocol', status: e.status, message: e.message };
  if (e instanceof ModelshipError) return { kind: 'modelship', code: e.code, message: e.message, location: e.location };
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: 'error', message: err.message, stack: err.stack };
}

export function fromWire(w: WireError): Error {
  if (w.kind === 'protocol') return new ProtocolError(w.status, w.message);
  if (w.kind === 'modelship') {
    // the message already carries the location prefix: rebuild without formatting it twice
    const e = new ModelshipError(w.code, '', w.location);
    e.message = w.message;
    return e;
  }
  const e = new Error(w.message);
  if (w.stack) e.stack = w.stack;
  return e;
}

/**
 * The buffers of `views` that can be moved to another thread: each must be an ArrayBuffer of its own (never a
 * slice of Node's shared Buffer pool, which other Buffers use) and listed once.
 */
export function transferList(views: ArrayBufferView[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const v of views) {
    const b = v.buffer;
    // Buffer.allocUnsafe and friends carve small buffers out of a shared 8 KiB pool: never move one of those
    if (b instanceof ArrayBuffer && b.byteLength > Buffer.poolSize) out.add(b);
  }
  return [...out];
}

/** Post `reply`, moving the buffers it names; a buffer that cannot be moved (external memory) is copied instead. */
function post(port: MessagePort, reply: WorkerReply, views: ArrayBufferView[] = []): void {
  try {
    port.postMessage(reply, transferList(views));
  } catch {
    port.postMessage(reply);
  }
}

/** onnxruntime's threading for a server: `threads` intra-op threads that sleep rather than spin when idle. */
export function ortThreading(threads: number): Pick<Ort.InferenceSession.SessionOptions, 'intraOpNumThreads' | 'extra'> {
  return { intraOpNumThreads: threads, extra: { session: { intra_op: { allow_spinning: '0' } } } };
}

async function inferWorker(port: MessagePort, init: WorkerInit): Promise<void> {
  const ort = loadOrt();
  let session: Ort.InferenceSession;
  try {
    const threads = init.threads ?? 1;
    // no spin-waiting between ops: a spinning pool takes the CPU the server needs to read the next request
    // (measured on GoogLeNet at batch 8 with 2 threads on 2 CPUs: 0.84-0.88x in-process throughput with spinning,
    // 0.90-0.92x without)
    const options = (providers: string[]): Ort.InferenceSession.SessionOptions => ({
      executionProviders: providers,
      graphOptimizationLevel: 'all',
      ...ortThreading(threads),
    });
    const created = await createSession(ort, init.model!, options, init.provider!);
    session = created.session;
    port.postMessage({ id: 0, ready: true, provider: created.provider, fallbackReason: created.fallbackReason } satisfies WorkerReply);
  } catch (e) {
    port.postMessage({ id: 0, ready: false, error: toWire(e) } satisfies WorkerReply);
    return;
  }
  const outputs = init.outputs ?? session.outputNames;
  port.on('message', (m: WorkerRequest) => {
    if (m.op === 'release') {
      void session.release().finally(() => port.postMessage({ id: m.id, ok: true, value: null } satisfies WorkerReply));
      return;
    }
    if (m.op !== 'run') return;
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [k, v] of Object.entries(m.feeds)) feeds[k] = new ort.Tensor('float32', v.data, v.shape);
    session.run(feeds).then(
      (res) => {
        const out: Record<string, Tensor> = {};
        for (const o of outputs) out[o] = { data: res[o].data as Float32Array, shape: res[o].dims.map(Number) };
        post(
          port,
          { id: m.id, ok: true, value: out },
          Object.values(out).map((t) => t.data),
        );
      },
      (e: unknown) => post(port, { id: m.id, ok: false, error: toWire(e) }),
    );
  });
}

function decodeWorker(port: MessagePort): void {
  port.postMessage({ id: 0, ready: true } satisfies WorkerReply);
  port.on('message', (m: WorkerRequest) => {
    try {
      if (m.op === 'json') {
        const body = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength);
        const parsed = parseInferRequest(body, m.headerLength);
        // the tensors are new arrays or views into the body: its buffer goes back with them
        post(port, { id: m.id, ok: true, value: parsed }, [m.body, ...parsed.inputs.map((t) => t.data)]);
      } else if (m.op === 'image') {
        const x = imageToTensor(Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength), m.height, m.width, m.preprocess);
        post(port, { id: m.id, ok: true, value: x }, [x]);
      } else if (m.op === 'detectionImage') {
        const x = imageToDetectionTensor(Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength), m.height, m.width, m.preprocess);
        post(port, { id: m.id, ok: true, value: x }, [x.data]);
      } else if (m.op === 'release') {
        port.postMessage({ id: m.id, ok: true, value: null } satisfies WorkerReply);
      }
    } catch (e) {
      post(port, { id: m.id, ok: false, error: toWire(e) });
    }
  });
}

/** How much lower than the HTTP thread the workers run (nice levels; each level is ~1.25x less CPU when contended). */
export const WORKER_NICENESS = 5;

/**
 * Lower this thread's scheduling priority (Linux: nice is per thread, and the threads it starts — ONNX Runtime's
 * intra-op pool — inherit it). When the CPUs are all busy, the HTTP thread then still gets its turn: health checks
 * and small requests are answered while a batch runs. Returns the thread's nice value, or undefined where it cannot.
 */
export function lowerThreadPriority(by = WORKER_NICENESS): number | undefined {
  try {
    // /proc/thread-self is this thread's task directory, named by its thread id
    const tid = Number(path.basename(fs.readlinkSync('/proc/thread-self')));
    if (!Number.isInteger(tid) || tid <= 0) return undefined;
    os.setPriority(tid, Math.min(19, os.getPriority(tid) + by));
    return os.getPriority(tid);
  } catch {
    return undefined;
  }
}

/** The worker's main: `index.ts` calls it in a bundle; run from source, this file is the worker's script. */
export function workerMain(init: WorkerInit = workerData as WorkerInit): void {
  const port = parentPort!;
  // before the session exists: its thread pool inherits the priority
  lowerThreadPriority();
  if (init.modelshipWorker === 'infer') void inferWorker(port, init);
  else decodeWorker(port);
}

export const isServeWorker = (): boolean => !isMainThread && Boolean((workerData as WorkerInit | undefined)?.modelshipWorker);

// run from source (tests, tsx): the worker's script is this file
if (isServeWorker() && require.main === module) workerMain();
