import * as grpc from '@grpc/grpc-js';
import { inferenceService } from '../../protocol/grpc';
import { parseInferRequest, ProtocolError } from '../../protocol/kserve';
import { KeyGuard } from '../auth';
import { DynamicBatcher } from '../batcher';
import { modelMetadata, OFFLOAD_JSON_BYTES, serverMetadata } from '../endpoints';
import { errorAnswer, Overloaded } from '../errors';
import { runInference } from '../inference';
import { Lifecycle } from '../lifecycle';
import { forwardingHeaders, peerAddress } from '../client-address';
import { ByteBudget } from '../memory';
import { ServerMetrics } from '../metrics';
import { notServed, ServedModel } from '../model';
import { modelConfig, repositoryIndex } from '../model-config';
import type { ServeOptions } from '../options';
import { inferResponse, ModelInferRequest, ModelInferResponse, requestBody } from './convert';
import { httpStatusOf } from './status';

/**
 * The KServe v2 protocol's gRPC form (inference.GRPCInferenceService, Triton's port 8001): the server's second front
 * door, beside HTTP's, onto the same model, batcher and inference thread (runInference), API key and failed-key
 * limiter, in-flight byte budget, metrics and life (readiness, drain). Each call is checked as its HTTP counterpart
 * is, and a failure is answered from the same error table (errors.ts), its status the gRPC code of the HTTP one.
 */

/** What the gRPC door answers from: the HTTP door's own parts. */
export interface GrpcContext {
  model: ServedModel;
  batcher: DynamicBatcher;
  lifecycle: Lifecycle;
  metrics: ServerMetrics;
  /** request bytes held at once, shared with HTTP's bodies */
  budget: ByteBudget;
  /** the API key and the failed attempts per client address, shared with HTTP */
  keys: KeyGuard;
  opts: Pick<ServeOptions, 'labels' | 'maxBodyBytes' | 'maxQueueDelayMs' | 'log'>;
}

/** One RPC: its label in the metrics, what is checked before it answers, and its answer. */
interface Rpc {
  route: string;
  /** answered without the API key: the orchestrator's probes carry none */
  open?: boolean;
  /** refused (UNAVAILABLE) once the server is closing: new inference (what is in flight still finishes) */
  refusedWhileClosing?: boolean;
  /** its request message's bytes are held in the in-flight budget while it is answered */
  holdsBytes?: boolean;
  handle: (request: never) => unknown;
}

/** A request message protobufjs could not decode: the client's fault, answered INVALID_ARGUMENT (grpc-js would say INTERNAL). */
class Malformed {
  constructor(readonly reason: string) {}
}

/**
 * Each decoded request message's size (after decompression), for the in-flight budget. It is taken once the message
 * is whole: grpc-js reads a message (within max_receive_message_length) before any handler of ours sees it, where
 * HTTP's body reader takes its bytes before reading them.
 */
const wireBytes = new WeakMap<object, number>();

/**
 * The service's definition with each request decoder wrapped: a message that does not decode becomes Malformed
 * (answered by the handler, so that it is counted and named), and a decoded one's size is remembered.
 */
function serviceDefinition(): grpc.ServiceDefinition {
  const { definition } = inferenceService();
  return Object.fromEntries(
    Object.entries(definition).map(([name, m]) => [
      name,
      {
        ...m,
        requestDeserialize: (bytes: Buffer): unknown => {
          try {
            const msg = m.requestDeserialize(bytes) as object;
            wireBytes.set(msg, bytes.length);
            return msg;
          } catch (e) {
            return new Malformed(`${name}Request does not decode: ${(e as Error).message}`);
          }
        },
      },
    ]),
  );
}

/** The gRPC door: a grpc-js server with the service's handlers, not yet listening. */
export class GrpcDoor {
  readonly server: grpc.Server;

  constructor(private readonly ctx: GrpcContext) {
    // a message larger than the body limit is refused by grpc-js itself (RESOURCE_EXHAUSTED) before it is decoded
    this.server = new grpc.Server({ 'grpc.max_receive_message_length': ctx.opts.maxBodyBytes });
    const rpcs = this.rpcs();
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const [name, rpc] of Object.entries(rpcs)) handlers[name] = this.unary(rpc);
    handlers.ModelStreamInfer = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      const end = ctx.metrics.begin();
      call.emit('error', {
        code: grpc.status.UNIMPLEMENTED,
        details: 'ModelStreamInfer is not supported by this server: send each request with ModelInfer (concurrent calls are batched together)',
      });
      ctx.metrics.answered('stream_infer', httpStatusOf(grpc.status.UNIMPLEMENTED), 'grpc');
      end('stream_infer', 'grpc');
    };
    this.server.addService(serviceDefinition(), handlers);
  }

  /** Listen on `host`:`port` (0: any free port); the port listened on. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) =>
      this.server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (e, bound) =>
        e ? reject(e) : resolve(bound),
      ),
    );
  }

  /** The unary RPCs by their names in the service. */
  private rpcs(): Record<string, Rpc> {
    const { model, lifecycle } = this.ctx;
    // What the server does not do is UNIMPLEMENTED, gRPC's status for "not implemented or not supported/enabled in
    // this service", saying what to do instead. (Triton answers its disabled trace, logging and model control with
    // UNAVAILABLE, which also tells clients with a retry policy to try again: that never helps here.)
    const unsupported = (route: string, what: string): Rpc => ({
      route,
      handle: () => {
        throw new ProtocolError(501, what);
      },
    });
    const sharedMemory = unsupported(
      'shared_memory',
      'shared memory is not supported by this server: send tensors in the request (raw_input_contents), as over the network',
    );
    const modelControl = unsupported(
      'repository',
      `explicit model load / unload is not supported: this server serves one model, "${model.name}", loaded at start`,
    );
    return {
      ServerLive: { route: 'health', open: true, handle: () => ({ live: !lifecycle.broken }) },
      ServerReady: { route: 'health', open: true, handle: () => ({ ready: lifecycle.ready }) },
      ModelReady: {
        route: 'ready',
        handle: (r: { name?: string; version?: string }) => (this.servedModel(r.name, r.version), { ready: lifecycle.ready }),
      },
      ServerMetadata: { route: 'metadata', handle: () => serverMetadata() },
      ModelMetadata: { route: 'metadata', handle: (r: { name?: string; version?: string }) => (this.servedModel(r.name, r.version), modelMetadata(model)) },
      ModelInfer: { route: 'infer', refusedWhileClosing: true, holdsBytes: true, handle: (r: ModelInferRequest) => this.infer(r) },
      // Triton's model-configuration and statistics extensions, the same objects as HTTP's (model_config.proto's names)
      ModelConfig: {
        route: 'config',
        handle: (r: { name?: string; version?: string }) => {
          this.servedModel(r.name, r.version);
          return { config: modelConfig(model, this.ctx.opts) };
        },
      },
      ModelStatistics: {
        route: 'stats',
        handle: (r: { name?: string; version?: string }) => {
          // (no name: every model's, as GET /v2/models/stats)
          if (r.name) this.servedModel(r.name, r.version);
          return { model_stats: [model.statistics.json()] };
        },
      },
      // the index alone (models are not loaded or unloaded through the API): the one model, READY, or UNAVAILABLE with
      // the reason once its inference thread has died (then none, when only ready ones are asked for), as HTTP's
      RepositoryIndex: {
        route: 'repository',
        handle: (r: { ready?: boolean }) => ({ models: repositoryIndex(model, lifecycle.broken, r.ready === true) }),
      },
      RepositoryModelLoad: modelControl,
      RepositoryModelUnload: modelControl,
      SystemSharedMemoryStatus: sharedMemory,
      SystemSharedMemoryRegister: sharedMemory,
      SystemSharedMemoryUnregister: sharedMemory,
      CudaSharedMemoryStatus: sharedMemory,
      CudaSharedMemoryRegister: sharedMemory,
      CudaSharedMemoryUnregister: sharedMemory,
      TraceSetting: unsupported('trace', 'trace settings are not supported by this server (its metrics are on /metrics)'),
      LogSettings: unsupported('logging', 'log settings are not supported by this server (it logs to stderr; see `modelship serve --help`)'),
    };
  }

  /** The served model, when `name` and `version` (empty: any) name it; else NOT_FOUND (HTTP's 404, in its words). */
  private servedModel(name: string | undefined, version: string | undefined): void {
    const { model } = this.ctx;
    if (name !== model.name || (version && version !== model.version)) throw new ProtocolError(404, notServed(model, name ?? '', version));
  }

  private async infer(msg: ModelInferRequest): Promise<ModelInferResponse> {
    const { model, batcher, opts } = this.ctx;
    this.servedModel(msg.model_name, msg.model_version);
    const { body, headerLength } = requestBody(msg);
    // a large JSON part (typed contents) is decoded on a decode thread, as HTTP's
    const jsonBytes = headerLength ?? body.length;
    const parsed = jsonBytes > OFFLOAD_JSON_BYTES ? await model.decoders.json(body, headerLength) : parseInferRequest(body, headerLength);
    const results = await runInference(model, batcher, parsed);
    return inferResponse(model, msg.id, parsed.outputs, results, opts.labels);
  }

  /**
   * A grpc-js handler for `rpc`: the call counted in flight and in the metrics, its API key checked (failures count
   * against the peer's address with HTTP's), refused while closing when it is new inference, its message's bytes held
   * in the budget, and answered with its result or its error's status. A call the client cancels, or whose deadline
   * passes (grpc-js answers DEADLINE_EXCEEDED itself), is no longer waited for: its bytes are given back and nothing
   * is answered into it; what it queued still runs.
   */
  private unary(rpc: Rpc): grpc.handleUnaryCall<unknown, unknown> {
    const { lifecycle, metrics, budget, opts } = this.ctx;
    return (call, callback) => {
      lifecycle.begin();
      const end = metrics.begin();
      let route = rpc.route;
      let held = 0;
      let over = false;
      const finish = (code: grpc.status) => {
        if (over) return false;
        over = true;
        budget.give(held);
        metrics.answered(route, httpStatusOf(code), 'grpc');
        end(route, 'grpc');
        return true;
      };
      call.once('cancelled', () => {
        const deadline = call.getDeadline();
        finish(deadline !== Infinity && Number(deadline) <= Date.now() ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED);
      });
      const answer = (): unknown => {
        // (cancelled before it began: nothing to take or run)
        if (over) return undefined;
        const request = call.request;
        const refused = rpc.open ? undefined : this.refusal(call, rpc.route);
        if (refused) {
          // (counted as HTTP counts a refused key)
          route = 'auth';
          throw refused;
        }
        if (request instanceof Malformed) throw new ProtocolError(400, request.reason);
        if (rpc.refusedWhileClosing && lifecycle.closing) throw new ProtocolError(503, 'the server is shutting down');
        if (rpc.holdsBytes) {
          const n = wireBytes.get(request as object) ?? 0;
          if (!budget.take(n))
            throw new Overloaded(`the server holds ${budget.inUse} request bytes (bound ${budget.limit}); this request's ${n} more do not fit now`);
          held = n;
        }
        return rpc.handle(request as never);
      };
      Promise.resolve()
        .then(answer)
        .then(
          (response) => {
            if (!call.cancelled && finish(grpc.status.OK)) callback(null, response);
          },
          (e: unknown) => {
            const a = errorAnswer(e);
            if (a.logStack) opts.log(`error: ${(e as Error).stack ?? String(e)}`);
            if (!call.cancelled && finish(a.grpcCode)) callback({ code: a.grpcCode, details: a.message });
          },
        )
        .finally(() => lifecycle.end());
    };
  }

  /**
   * The call's API key checked as HTTP's Authorization header is: undefined when it may pass, else the refusal, 401
   * (UNAUTHENTICATED) or, for a missing or wrong key from a client past its failure limit, 429. That one is
   * RESOURCE_EXHAUSTED, as gRPC's status guide has it for "a per-user quota" (google.rpc.Code maps HTTP's 429 to it
   * too), not UNAVAILABLE: that says the service is down and that the call may be retried at once, which clients with
   * a retry policy then do. The client is the peer's address, or behind a trusted proxy the one its metadata
   * `x-forwarded-for` / `forwarded` names, as over HTTP.
   */
  private refusal(call: grpc.ServerUnaryCall<unknown, unknown>, route: string): ProtocolError | undefined {
    const header = call.metadata.get('authorization')[0];
    const forwarding = forwardingHeaders((name) => call.metadata.get(name));
    const refusal = this.ctx.keys.check(typeof header === 'string' ? header : undefined, peerAddress(call.getPeer()), forwarding, {
      protocol: 'grpc',
      route,
    });
    if (refusal?.status === 429)
      return new ProtocolError(
        429,
        `too many failed API-key attempts from ${refusal.client.address}; without the right key, try again in ${refusal.retryAfterS} s`,
      );
    if (refusal) return new ProtocolError(401, 'missing or invalid API key: send the metadata "authorization: Bearer <key>"');
    return undefined;
  }
}
