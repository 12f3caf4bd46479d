import type * as http from 'http';
import { exchange, Reply } from '../util/http';
import { Runtime } from './runtime';
import { encodeInferRequest, decodeInferResponse, HEADER_LENGTH, DecodedTensor } from './kserve';
import { KServeGrpcClient } from './kserve-grpc-client';
import { imageToTensor, imageToDetectionTensor, Preprocess, GOOGLENET_PREPROCESS } from './pixels';
import { topClasses } from './classification';
import { imageDetections, ImageDetection, isDetectionShape } from './detections';

/**
 * How requests travel to a server: a plain HTTP base URL (httpTransport), or the Kubernetes API server's pod and
 * service proxy (the rollout's). What is asked is the same.
 */
export type Transport = (
  path: string,
  opts?: { method?: string; body?: Buffer; headers?: Record<string, string | number>; timeoutMs?: number },
) => Promise<Reply>;

/** A transport to a plain HTTP base URL (a published container port, a port-forward, a verify-url). */
export function httpTransport(base: string, agent?: http.Agent): Transport {
  return (p, opts = {}) =>
    exchange(
      base.replace(/\/$/, '') + p,
      { method: opts.method ?? (opts.body ? 'POST' : 'GET'), headers: opts.headers, agent, timeout: opts.timeoutMs ?? 30_000 },
      opts.body,
    );
}

/**
 * The KServe v2 client: what smoke and rollout ask a serving runtime, using only what that server defines. Both
 * runtimes speak KServe v2 (`GET /v2`, `/v2/models/{name}`, `/infer`); beyond it modelship reports its execution
 * provider in the model metadata's `parameters`, and Triton has the model configuration extension
 * (`/v2/models/{name}/config`).
 */
export interface ServerInfo {
  runtime: Runtime;
  /** the server's own name and version (GET /v2) */
  name: string;
  version: string;
  extensions: string[];
}

export interface ModelMeta {
  inputs: { name: string; datatype?: string; shape: number[] }[];
  outputs: { name: string; datatype?: string; shape: number[] }[];
  parameters?: { execution_provider?: string; provider_fallback?: string; detection_outputs?: string; preprocess?: string };
}

type Headers = Record<string, string>;

const json = <T>(body: Buffer): T => JSON.parse(body.toString() || '{}') as T;

/** GET /v2: which runtime answers. A server that is neither modelship nor Triton is named in the error. */
export async function detectServer(t: Transport, headers: Headers = {}): Promise<ServerInfo> {
  const r = await t('/v2', { headers, timeoutMs: 10_000 });
  if (r.status !== 200) throw new Error(`GET /v2 (server metadata) answered HTTP ${r.status}: ${r.body.toString().slice(0, 200)}`);
  const m = json<{ name?: string; version?: string; extensions?: string[] }>(r.body);
  const name = String(m.name ?? '');
  const runtime: Runtime | undefined = name === 'triton' ? 'triton' : name === 'modelship' ? 'modelship' : undefined;
  if (!runtime) throw new Error(`GET /v2 names the server "${name}": neither modelship nor triton`);
  return { runtime, name, version: String(m.version ?? ''), extensions: m.extensions ?? [] };
}

/**
 * Where the model computes. modelship: the execution provider in its model metadata (`cuda`, `cpu`). Triton: its
 * model configuration's instance groups — every group KIND_GPU is the GPU, any KIND_CPU group the CPU (Triton has no
 * provider field; KIND_AUTO resolves to one of the two in the config Triton reports).
 */
export async function modelPlacement(
  t: Transport,
  server: ServerInfo,
  modelName: string,
  headers: Headers = {},
): Promise<{ device: 'cuda' | 'cpu' | 'unknown'; detail: string }> {
  if (server.runtime === 'modelship') {
    const r = await t(`/v2/models/${modelName}`, { headers, timeoutMs: 10_000 });
    if (r.status !== 200) return { device: 'unknown', detail: `model metadata answered HTTP ${r.status}` };
    const p = json<ModelMeta>(r.body).parameters ?? {};
    const provider = p.execution_provider ?? 'unknown';
    return {
      device: provider === 'cuda' ? 'cuda' : provider === 'cpu' ? 'cpu' : 'unknown',
      detail: `execution provider ${provider}${p.provider_fallback ? ` (${p.provider_fallback})` : ''}`,
    };
  }
  const r = await t(`/v2/models/${modelName}/config`, { headers, timeoutMs: 10_000 });
  if (r.status !== 200) return { device: 'unknown', detail: `model configuration answered HTTP ${r.status}` };
  const groups = json<{ instance_group?: { kind?: string; count?: number; gpus?: number[] }[] }>(r.body).instance_group ?? [];
  const kinds = groups.map((g) => g.kind ?? 'KIND_AUTO');
  const detail = `instance_group ${groups.map((g) => `${g.kind ?? 'KIND_AUTO'}×${g.count ?? 1}${g.gpus?.length ? ` on GPU ${g.gpus.join(',')}` : ''}`).join(', ') || 'none'}`;
  const device = kinds.length && kinds.every((k) => k === 'KIND_GPU') ? 'cuda' : kinds.some((k) => k === 'KIND_CPU') ? 'cpu' : 'unknown';
  return { device, detail };
}

/**
 * One FP32 tensor through plain inference: `/infer` with binary outputs over HTTP (a Transport), ModelInfer over gRPC
 * (a KServeGrpcClient). `status` is the HTTP status (200 over gRPC when it answered); a failed gRPC call has status 0
 * and its error names the gRPC status or says there was no answer.
 */
async function inferTensor(
  t: Transport | KServeGrpcClient,
  modelName: string,
  input: { name: string; shape: number[]; data: Float32Array },
  o: { outputs?: string[]; headers?: Headers; errorChars: number },
): Promise<{ status: number; outputs: DecodedTensor[]; error?: string }> {
  if (t instanceof KServeGrpcClient) {
    try {
      return { status: 200, ...(await t.infer(modelName, [input], { outputs: o.outputs, headers: o.headers })) };
    } catch (e) {
      return { status: 0, outputs: [], error: (e as Error).message };
    }
  }
  const req = encodeInferRequest([input], { binaryOutputs: true, ...(o.outputs ? { outputs: o.outputs.map((name) => ({ name, binary: true })) } : {}) });
  const r = await t(`/v2/models/${modelName}/infer`, {
    body: req.body,
    headers: { ...(o.headers ?? {}), [HEADER_LENGTH]: req.headerLength, 'content-type': 'application/octet-stream' },
  });
  if (r.status !== 200) return { status: r.status, outputs: [], error: r.body.toString().slice(0, o.errorChars) };
  return { status: 200, outputs: decodeInferResponse(r.body, r.headers[HEADER_LENGTH] === undefined ? undefined : Number(r.headers[HEADER_LENGTH])).outputs };
}

/**
 * A sample image through plain inference (`/infer` over HTTP, ModelInfer over gRPC), on either runtime: decoded and
 * preprocessed here, by the same Caffe preprocessing code the modelship server runs (resize, center crop, BGR, mean),
 * and sent as a [1, 3, H, W] FP32 tensor; the top-k of the first output. (modelship's own /classify route is not a
 * Triton route.)
 */
export async function classifyImage(
  t: Transport | KServeGrpcClient,
  request: { modelName: string; meta: ModelMeta; image: Buffer; k: number; headers?: Headers; preprocess?: Preprocess },
): Promise<{ status: number; top: { index: number; score: number }[]; error?: string }> {
  const input = request.meta.inputs[0];
  const [, c, h, w] = input.shape;
  if (input.shape.length !== 4 || c !== 3 || !(h > 0) || !(w > 0))
    return { status: 0, top: [], error: `input "${input.name}" has shape [${input.shape.join(', ')}], not [N, 3, H, W]: a sample image cannot be fed to it` };
  const x = imageToTensor(request.image, h, w, request.preprocess ?? GOOGLENET_PREPROCESS);
  const r = await inferTensor(t, request.modelName, { name: input.name, shape: [1, 3, h, w], data: x }, { headers: request.headers, errorChars: 200 });
  if (r.status !== 200) return { status: r.status, top: [], error: r.error };
  const out = r.outputs[0];
  const count = out.data.length / (out.shape[0] || 1);
  return { status: 200, top: topClasses(out.data, 0, count, request.k).map((i) => ({ index: i, score: out.data[i] })) };
}

/**
 * The detection output of a model, from its metadata: modelship names it (`parameters.detection_outputs`); Triton
 * does not pass the ONNX metadata on, so there it is the output shaped [1, 1, -1, 7] (SSD's DetectionOutput table).
 */
export function detectionOutput(meta: ModelMeta): string | undefined {
  const named = meta.parameters?.detection_outputs?.split(',')[0]?.trim();
  if (named) return named;
  return meta.outputs.find((o) => isDetectionShape(o.shape))?.name;
}

/**
 * A sample image's detections in its own pixels, on either runtime, with only what that server defines. modelship
 * over HTTP: its `/detect` route (the server's own preprocessing). Triton, or gRPC (which has no /detect): decoded
 * and preprocessed here as the modelship server does for /detect (the whole image resized to the input, channel
 * order, mean, scale), a [1, 3, H, W] tensor to `/infer` (ModelInfer over gRPC), and the detection table read here:
 * rows of image 0 with score ≥ `threshold`, corners times the image's width and height, highest score first.
 */
export async function detectImage(
  t: Transport | KServeGrpcClient,
  request: { runtime: Runtime; modelName: string; meta: ModelMeta; image: Buffer; threshold: number; headers?: Headers; preprocess?: Preprocess },
): Promise<{ status: number; route: '/detect' | '/infer' | 'ModelInfer'; detections: ImageDetection[]; width?: number; height?: number; error?: string }> {
  const route = t instanceof KServeGrpcClient ? ('ModelInfer' as const) : ('/infer' as const);
  if (request.runtime === 'modelship' && !(t instanceof KServeGrpcClient)) {
    const r = await t(`/v2/models/${request.modelName}/detect?threshold=${request.threshold}`, {
      body: request.image,
      headers: { ...(request.headers ?? {}), 'content-type': 'application/octet-stream' },
    });
    if (r.status !== 200) return { status: r.status, route: '/detect', detections: [], error: r.body.toString().slice(0, 300) };
    const j = json<{ detections?: ImageDetection[]; width?: number; height?: number }>(r.body);
    return { status: 200, route: '/detect', detections: j.detections ?? [], width: j.width, height: j.height };
  }
  const fail = (error: string) => ({ status: 0, route, detections: [], error });
  const input = request.meta.inputs[0];
  const [, c, h, w] = input.shape;
  if (request.meta.inputs.length !== 1 || input.shape.length !== 4 || c !== 3 || !(h > 0) || !(w > 0))
    return fail(`input "${input.name}" has shape [${input.shape.join(', ')}], not [N, 3, H, W]: a sample image cannot be fed to it`);
  const name = detectionOutput(request.meta);
  if (!name)
    return fail(
      `no output of model "${request.modelName}" is a detection table [1, 1, -1, 7] (outputs ${request.meta.outputs.map((x) => `${x.name} [${x.shape.join(', ')}]`).join(', ')})`,
    );
  let x: { data: Float32Array; width: number; height: number };
  try {
    x = imageToDetectionTensor(request.image, h, w, request.preprocess ?? GOOGLENET_PREPROCESS);
  } catch (e) {
    return fail(`the sample image: ${(e as Error).message}`);
  }
  const r = await inferTensor(
    t,
    request.modelName,
    { name: input.name, shape: [1, 3, h, w], data: x.data },
    {
      outputs: [name],
      headers: request.headers,
      errorChars: 300,
    },
  );
  if (r.status !== 200) return { status: r.status, route, detections: [], error: r.error };
  const out = r.outputs.find((o) => o.name === name);
  if (!out || out.shape.length !== 4 || out.shape[3] !== 7)
    return {
      status: 200,
      route,
      detections: [],
      error: `output "${name}" came back ${out ? `with shape [${out.shape.join(', ')}], not a detection table [1, 1, D, 7]` : 'missing from the answer'}`,
    };
  return {
    status: 200,
    route,
    detections: imageDetections(out.data, { threshold: request.threshold, width: x.width, height: x.height }),
    width: x.width,
    height: x.height,
  };
}
