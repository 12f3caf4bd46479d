import * as grpc from '@grpc/grpc-js';
import { inferenceService } from './grpc';
import { decodeInferResponse, DecodedTensor } from './kserve';
import type { ModelMeta, ServerInfo } from './kserve-client';
import { grpcTarget, type Runtime } from './runtime';

/**
 * The KServe v2 client over gRPC (`inference.GRPCInferenceService`, src/protocol/grpc.ts): what smoke and the
 * rollout's golden requests ask a server when they speak gRPC, the same questions kserve-client.ts asks over HTTP —
 * is it ready, which runtime is it (ServerMetadata), the model's metadata, an inference — with the same answers
 * (ServerInfo, ModelMeta, decoded FP32 tensors). Tensors travel as raw bytes (raw_input_contents,
 * raw_output_contents: little-endian, as KServe v2 defines them), as Triton's own client sends them.
 *
 * What the gRPC protocol has no field for is not asked here: the model metadata carries no `parameters` (modelship's
 * execution provider and detection outputs are in its HTTP metadata only), and modelship's /classify and /detect are
 * HTTP routes.
 */

/**
 * A gRPC call that failed, and whose failure it is. `server`: the server answered with this status (its code and
 * details, as it sent them: a model it does not have, an input it refuses, a missing API key). `network`: no answer
 * (nothing listens there, the connection dropped, it does not speak gRPC); `deadline`: no answer in time.
 */
export class KServeGrpcError extends Error {
  constructor(
    readonly rpc: string,
    readonly target: string,
    readonly code: grpc.status,
    readonly details: string,
    readonly source: 'server' | 'network' | 'deadline',
    timeoutMs: number,
  ) {
    const status = `${grpc.status[code] ?? 'UNKNOWN'} (${code})`;
    super(
      source === 'server'
        ? `${rpc} to ${target} answered gRPC status ${status}: ${details}`
        : source === 'deadline'
          ? `${rpc} to ${target}: no answer within ${timeoutMs} ms (gRPC ${status})`
          : `${rpc} to ${target}: no answer (gRPC ${status}: ${details})`,
    );
    this.name = 'KServeGrpcError';
  }
}

/**
 * What grpc-js reports of its own, not from a server's status: the connection (refused, dropped, never made, a peer
 * that does not speak HTTP/2) and a stream the peer reset. A server's UNAVAILABLE or INTERNAL carries its own details.
 */
const NETWORK_DETAILS =
  /No connection established|Connection dropped|failed to connect|Name resolution failed|ECONNREFUSED|ECONNRESET|Received RST_STREAM|Protocol error|Call cancelled/i;

function whose(e: grpc.ServiceError): 'server' | 'network' | 'deadline' {
  if (e.code === grpc.status.DEADLINE_EXCEEDED) return 'deadline';
  if (e.code === grpc.status.CANCELLED) return 'network';
  if ((e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.INTERNAL || e.code === grpc.status.UNKNOWN) && NETWORK_DETAILS.test(e.details ?? ''))
    return 'network';
  return 'server';
}

/** A tensor to send: FP32, row-major (what golden requests and sample images are). */
export interface InputTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

type Message = Record<string, unknown>;
type Unary = (
  request: Message,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (e: grpc.ServiceError | null, r?: Message) => void,
) => grpc.ClientUnaryCall;

/** the gRPC form of HTTP headers: lower-case metadata keys (an API key travels as `authorization: Bearer ...`) */
function metadataOf(headers: Record<string, string> = {}): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k.toLowerCase(), v);
  return md;
}

const shapeOf = (s: unknown): number[] => (Array.isArray(s) ? s.map(Number) : []);

/** One connection (a channel) to a KServe v2 gRPC server; calls share it. `close()` when done. */
export class KServeGrpcClient {
  readonly target: string;
  private readonly client: grpc.Client;
  private readonly headers: Record<string, string>;

  /** `target`: host:port, or a URL grpcTarget reads; `headers` go with every call (its API key). */
  constructor(target: string, o: { tls?: boolean; headers?: Record<string, string> } = {}) {
    const t = grpcTarget(target);
    this.target = t?.target ?? target;
    const { Client } = inferenceService();
    this.client = new Client(this.target, (o.tls ?? t?.tls) ? grpc.credentials.createSsl() : grpc.credentials.createInsecure(), {
      // golden batches and model outputs can be larger than gRPC's default 4 MiB limit on a received message
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
    this.headers = o.headers ?? {};
  }

  private call(rpc: string, request: Message, timeoutMs: number, headers?: Record<string, string>): Promise<Message> {
    const method = (this.client as unknown as Record<string, Unary>)[rpc].bind(this.client);
    return new Promise((resolve, reject) => {
      method(request, metadataOf({ ...this.headers, ...headers }), { deadline: Date.now() + timeoutMs }, (e, r) => {
        if (e) reject(new KServeGrpcError(rpc, this.target, e.code, e.details ?? e.message, whose(e), timeoutMs));
        else resolve(r ?? {});
      });
    });
  }

  /** ServerReady: false while the server says it is not, or does not answer yet (starting) */
  async ready(timeoutMs = 2000): Promise<boolean> {
    try {
      return (await this.call('ServerReady', {}, timeoutMs)).ready === true;
    } catch (e) {
      if (e instanceof KServeGrpcError && e.source !== 'server') return false;
      throw e;
    }
  }

  /** ServerMetadata: which runtime answers, as detectServer says over HTTP; a server that is neither is named */
  async server(o: { timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<ServerInfo> {
    const m = (await this.call('ServerMetadata', {}, o.timeoutMs ?? 10_000, o.headers)) as { name?: string; version?: string; extensions?: string[] };
    const name = String(m.name ?? '');
    const runtime: Runtime | undefined = name === 'triton' ? 'triton' : name === 'modelship' ? 'modelship' : undefined;
    if (!runtime) throw new Error(`ServerMetadata of ${this.target} names the server "${name}": neither modelship nor triton`);
    return { runtime, name, version: String(m.version ?? ''), extensions: m.extensions ?? [] };
  }

  /** ModelMetadata: the model's inputs and outputs (no `parameters`: the gRPC message has no such field) */
  async modelMetadata(modelName: string, o: { timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<ModelMeta> {
    const m = await this.call('ModelMetadata', { name: modelName }, o.timeoutMs ?? 10_000, o.headers);
    const tensors = (l: unknown) =>
      ((l as Message[] | undefined) ?? []).map((x) => ({ name: String(x.name), datatype: String(x.datatype), shape: shapeOf(x.shape) }));
    return { inputs: tensors(m.inputs), outputs: tensors(m.outputs) };
  }

  /**
   * ModelInfer with the inputs as raw bytes; every output (or those named) comes back decoded to FP32 by the HTTP
   * client's decoder, whether the server sent raw_output_contents or typed contents. Throws KServeGrpcError.
   */
  async infer(
    modelName: string,
    inputs: InputTensor[],
    o: { outputs?: string[]; timeoutMs?: number; headers?: Record<string, string>; id?: string } = {},
  ): Promise<{ outputs: DecodedTensor[] }> {
    const request: Message = {
      model_name: modelName,
      ...(o.id ? { id: o.id } : {}),
      inputs: inputs.map((x) => ({ name: x.name, datatype: 'FP32', shape: x.shape })),
      raw_input_contents: inputs.map((x) => Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength)),
      ...(o.outputs ? { outputs: o.outputs.map((name) => ({ name })) } : {}),
    };
    const r = await this.call('ModelInfer', request, o.timeoutMs ?? 30_000, o.headers);
    return decodeOutputs(r);
  }

  close(): void {
    this.client.close();
  }
}

/** InferTensorContents' typed fields, by datatype */
const CONTENTS: Record<string, string> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

/**
 * A ModelInferResponse as the binary-extension reply the HTTP decoder reads (a JSON header, then each raw output's
 * bytes), so both protocols decode, convert and check outputs with the same code.
 */
function decodeOutputs(r: Message): { outputs: DecodedTensor[] } {
  const outputs = (r.outputs as Message[] | undefined) ?? [];
  const raw = (r.raw_output_contents as Buffer[] | undefined) ?? [];
  const bodies: Buffer[] = [];
  const header = outputs.map((o, i) => {
    const base = { name: String(o.name), datatype: String(o.datatype), shape: shapeOf(o.shape) };
    if (raw.length) {
      const bytes = raw[i] ?? Buffer.alloc(0);
      bodies.push(bytes);
      return { ...base, parameters: { binary_data_size: bytes.length } };
    }
    const contents = (o.contents as Message | undefined) ?? {};
    const values = (contents[CONTENTS[base.datatype] ?? 'fp32_contents'] as unknown[] | undefined) ?? [];
    return { ...base, data: base.datatype === 'BYTES' ? values.map((v) => Buffer.from(v as Uint8Array).toString('utf8')) : values };
  });
  const head = Buffer.from(JSON.stringify({ outputs: header }));
  return decodeInferResponse(Buffer.concat([head, ...bodies]), head.length);
}
