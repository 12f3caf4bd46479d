import * as path from 'path';
import { Worker } from 'worker_threads';
import { WorkerInit, WorkerReply, WorkerRequest, Tensor, fromWire, transferList } from './worker';
import type { InferRequest } from '../protocol/kserve';
import type { Preprocess } from '../protocol/pixels';
import type { ProviderRequest } from './execution-provider';

type Op = WorkerRequest extends infer R ? (R extends { op: infer O } ? O : never) : never;
type Payload<O extends Op> = Omit<Extract<WorkerRequest, { op: O }>, 'id' | 'op'>;

/**
 * Where a worker thread starts. In the bundle (dist/index.js, also in the image) it is the bundle itself, whose
 * entry hands a worker to `workerMain`; run from source (tests, tsx) it is worker.ts, through tsx's require hook.
 */
function workerScript(): { file: string; execArgv: string[] } {
  if (__filename.endsWith('.ts')) {
    // (through eval: the bundler must not follow a dev dependency it never needs)
    const req = eval('require') as NodeRequire;
    return { file: path.join(__dirname, 'worker.ts'), execArgv: ['--require', req.resolve('tsx/cjs')] };
  }
  return { file: __filename, execArgv: [] };
}

/** One worker thread and its requests in flight: `call` sends one and resolves with the worker's answer. */
export class WorkerThread {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;
  readonly worker: Worker;
  /** resolves when the worker is ready (infer: its session created), with what it reports */
  readonly ready: Promise<{ provider?: string; fallbackReason?: string }>;

  constructor(init: WorkerInit, transfer: ArrayBuffer[] = [], onCrash: (e: Error) => void = () => undefined) {
    const { file, execArgv } = workerScript();
    this.worker = new Worker(file, { workerData: init, transferList: transfer, execArgv });
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (m: WorkerReply) => {
        if (m.id === 0 && 'ready' in m) return m.ready ? resolve({ provider: m.provider, fallbackReason: m.fallbackReason }) : reject(fromWire(m.error));
        if (!('ok' in m)) return;
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else p.reject(fromWire(m.error));
      });
      const fail = (e: Error) => {
        this.dead ??= e;
        reject(e);
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
        onCrash(e);
      };
      this.worker.on('error', (e) => fail(new Error(`the ${init.modelshipWorker} worker thread failed: ${e.message}`)));
      this.worker.on('exit', (code) => fail(new Error(`the ${init.modelshipWorker} worker thread exited (${code})`)));
    });
    // (a failed start is reported through `ready`; keep Node from calling it unhandled before anyone awaits it)
    this.ready.catch(() => undefined);
  }

  /** Send `op` with its payload; the listed views' buffers are moved to the worker (the caller must not use them). */
  call<T>(op: Op, payload: Record<string, unknown>, views: ArrayBufferView[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, op, ...payload }, transferList(views));
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** false once the thread has failed or exited */
  get alive(): boolean {
    return !this.dead;
  }

  async stop(): Promise<void> {
    this.dead ??= new Error('the worker thread was stopped');
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/** The thread that owns the ONNX Runtime session. */
export class InferenceThread {
  private constructor(
    private readonly thread: WorkerThread,
    readonly provider: string,
    readonly fallbackReason: string | undefined,
  ) {}

  /** Create the session in a new thread; `model` is moved there. Rejects as session creation would (provider errors). */
  static async start(model: Uint8Array, threads: number, provider: ProviderRequest, outputs: string[], onCrash?: (e: Error) => void): Promise<InferenceThread> {
    const t = new WorkerThread({ modelshipWorker: 'infer', model, threads, provider, outputs }, transferList([model]), onCrash);
    try {
      const r = await t.ready;
      return new InferenceThread(t, r.provider ?? 'cpu', r.fallbackReason);
    } catch (e) {
      await t.stop();
      throw e;
    }
  }

  /** Run the model; the feeds' buffers are moved to the session's thread, the outputs' come back the same way. */
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return this.thread.call(
      'run',
      { feeds } satisfies Payload<'run'>,
      Object.values(feeds).map((t) => t.data),
    );
  }

  async release(): Promise<void> {
    await this.thread.call('release', {});
    await this.thread.stop();
  }
}

/**
 * Threads that decode what is too big to decode between requests: large JSON bodies and images. Started on first
 * use: a server that only ever sees binary tensors never pays for them (each thread loads the bundle; at a pod's
 * 50m CPU that is seconds of start-up).
 */
export class DecodeThreads {
  private threads: WorkerThread[] | undefined;

  constructor(private readonly count: number) {}

  /** the least busy thread */
  private pick(): WorkerThread {
    // (a thread that failed — out of memory on a hostile body, say — is replaced, not reused)
    this.threads = Array.from({ length: Math.max(1, this.count) }, (_, i) =>
      this.threads?.[i]?.alive ? this.threads[i] : new WorkerThread({ modelshipWorker: 'decode' }),
    );
    return this.threads.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
  }

  /** parseInferRequest in a worker; `body`'s buffer is moved there (and comes back holding the tensors). */
  async json(body: Buffer, headerLength: number | undefined): Promise<InferRequest> {
    const t = this.pick();
    await t.ready;
    return t.call('json', { body, headerLength } satisfies Payload<'json'>, [body]);
  }

  async image(body: Buffer, height: number, width: number, preprocess: Preprocess): Promise<Float32Array> {
    const t = this.pick();
    await t.ready;
    return t.call('image', { body, height, width, preprocess } satisfies Payload<'image'>, [body]);
  }

  /** imageToDetectionTensor in a worker (the whole image resized to the input; its original size comes back) */
  async detectionImage(body: Buffer, height: number, width: number, preprocess: Preprocess): Promise<{ data: Float32Array; width: number; height: number }> {
    const t = this.pick();
    await t.ready;
    return t.call('detectionImage', { body, height, width, preprocess } satisfies Payload<'detectionImage'>, [body]);
  }

  /** started threads */
  get started(): number {
    return this.threads?.length ?? 0;
  }

  async stop(): Promise<void> {
    await Promise.all((this.threads ?? []).map((t) => t.stop()));
  }
}
