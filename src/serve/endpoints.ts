import type * as http from 'http';
import { ProtocolError, parseInferRequest, encodeInferResponse, responseTensors, HEADER_LENGTH } from '../protocol/kserve';
import { topClasses } from '../protocol/classification';
import { imageToTensor, imageToDetectionTensor } from '../protocol/pixels';
import { DETECTION_OUTPUTS_KEY, imageDetections } from '../protocol/detections';
import { DynamicBatcher } from './batcher';
import { BodyLimits, readBody } from './body';
import { Lifecycle } from './lifecycle';
import { ServerMetrics } from './metrics';
import { ServedModel } from './model';
import type { ServeOptions } from './options';
import { VERSION } from '../version';
import { runInference } from './inference';
import { modelConfig, repositoryIndex } from './model-config';

/** JSON parts larger than this are decoded on a decode thread (smaller ones take well under a millisecond) */
export const OFFLOAD_JSON_BYTES = 64 * 1024;

/** GET /v2 and gRPC's ServerMetadata: the server, and the protocol extensions it serves. */
export function serverMetadata(): { name: string; version: string; extensions: string[] } {
  return { name: 'modelship', version: VERSION, extensions: ['binary_tensor_data', 'classification', 'detection', 'model_configuration', 'statistics'] };
}

/**
 * The model's metadata as both doors answer it (GET /v2/models/{m}, gRPC's ModelMetadata): its name, version,
 * platform and tensors, a symbolic dim as -1. HTTP's answer adds `parameters`, which ModelMetadataResponse has no
 * field for.
 */
export function modelMetadata(model: Pick<ServedModel, 'name' | 'version' | 'sig'>) {
  const dims = (shape: (number | string)[]) => shape.map((d) => (typeof d === 'number' ? d : -1));
  return {
    name: model.name,
    versions: [model.version],
    platform: 'onnxruntime_onnx',
    inputs: model.sig.inputs.map((i) => ({ name: i.name, datatype: 'FP32', shape: dims(i.shape) })),
    outputs: model.sig.outputs.map((o) => ({ name: o.name, datatype: 'FP32', shape: dims(o.shape) })),
  };
}

/** A request to an endpoint: what it asks, where to answer, its URL. */
export interface Call {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
}

/** What the endpoints answer from: the model, its batcher, the server's life and metrics, the options they read. */
export interface EndpointContext {
  model: ServedModel;
  batcher: DynamicBatcher;
  lifecycle: Lifecycle;
  metrics: ServerMetrics;
  bodyLimits: BodyLimits;
  opts: Pick<ServeOptions, 'labels' | 'preprocess' | 'topK' | 'detectionThreshold' | 'provider' | 'maxBatchSize' | 'maxQueueDelayMs'>;
}

/**
 * The server's endpoints, each answering one call and returning its status: health, metadata, metrics, the model's
 * inference (KServe v2 /infer, and the classification and detection extensions /classify and /detect), and Triton's
 * extensions that its tools ask for (the model's configuration, its statistics, the repository index).
 * Which URL reaches which is the route table's (routes.ts).
 */
export class Endpoints {
  private readonly send: Lifecycle['send'];

  constructor(private readonly ctx: EndpointContext) {
    this.send = ctx.lifecycle.send.bind(ctx.lifecycle);
  }

  live({ res }: Call): number {
    const { broken } = this.ctx.lifecycle;
    return broken ? (this.send(res, 503, { live: false, error: broken }), 503) : (this.send(res, 200, { live: true }), 200);
  }

  ready({ res }: Call): number {
    return this.ctx.lifecycle.ready ? (this.send(res, 200, { ready: true }), 200) : (this.send(res, 503, { ready: false, error: 'draining' }), 503);
  }

  modelReady({ res }: Call): number {
    const { name } = this.ctx.model;
    return this.ctx.lifecycle.ready ? (this.send(res, 200, { name, ready: true }), 200) : (this.send(res, 503, { name, ready: false }), 503);
  }

  async metrics({ res }: Call): Promise<number> {
    const { contentType, text } = await this.ctx.metrics.exposition();
    res.writeHead(200, { 'content-type': contentType, 'content-length': text.length });
    res.end(text);
    return 200;
  }

  serverMetadata({ res }: Call): number {
    this.send(res, 200, serverMetadata());
    return 200;
  }

  /** Triton's model-configuration extension: the configuration Triton would report for the model (model-config.ts). */
  modelConfig({ res }: Call): number {
    this.send(res, 200, modelConfig(this.ctx.model, this.ctx.opts));
    return 200;
  }

  /** Triton's statistics extension, for the model (GET /v2/models/{m}[/versions/{v}]/stats) or all models (one). */
  modelStatistics({ res }: Call): number {
    this.send(res, 200, { model_stats: [this.ctx.model.statistics.json()] });
    return 200;
  }

  /**
   * The repository index (Triton's model-repository extension, its index alone: models are not loaded or unloaded
   * through the API, so the extension is not listed in GET /v2). The body may ask `{"ready": true}` for the ready
   * models only.
   */
  async repositoryIndex({ req, res }: Call): Promise<number> {
    const body = await this.body(req, res);
    let asked: unknown = {};
    try {
      if (body.length) asked = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new ProtocolError(400, `malformed JSON in the repository index request: ${(e as Error).message}`);
    }
    if (typeof asked !== 'object' || asked === null || Array.isArray(asked))
      throw new ProtocolError(400, 'the repository index request must be a JSON object, such as {"ready": true}');
    const { ready } = asked as { ready?: unknown };
    if (ready !== undefined && typeof ready !== 'boolean') throw new ProtocolError(400, `"ready" must be true or false, got ${JSON.stringify(ready)}`);
    this.send(res, 200, repositoryIndex(this.ctx.model, this.ctx.lifecycle.broken, ready === true));
    return 200;
  }

  modelMetadata({ res }: Call): number {
    const { model, opts } = this.ctx;
    const { provider, fallbackReason } = model.engine;
    this.send(res, 200, {
      ...modelMetadata(model),
      parameters: {
        execution_provider: provider,
        requested_provider: opts.provider.requested,
        ...(fallbackReason ? { provider_fallback: fallbackReason } : {}),
        intra_op_threads: model.threads,
        max_batch_size: opts.maxBatchSize,
        max_queue_delay_ms: opts.maxQueueDelayMs,
        ...(model.detectionOutputs.length ? { detection_outputs: model.detectionOutputs.join(',') } : {}),
        preprocess: JSON.stringify(opts.preprocess),
        server: `modelship ${VERSION}`,
      },
    });
    return 200;
  }

  async infer({ req, res }: Call): Promise<number> {
    const { model, batcher } = this.ctx;
    const { name, version } = model;
    const body = await this.body(req, res);
    const hl = req.headers[HEADER_LENGTH];
    const headerLength = hl === undefined ? undefined : Number(hl);
    // a large JSON part is decoded on a decode thread (60 MiB of JSON takes seconds to parse)
    const jsonBytes = headerLength ?? body.length;
    const parsed =
      jsonBytes > OFFLOAD_JSON_BYTES && Number.isSafeInteger(jsonBytes) ? await model.decoders.json(body, headerLength) : parseInferRequest(body, headerLength);
    const ordered = await runInference(model, batcher, parsed);
    const enc = encodeInferResponse(name, version, parsed.id, responseTensors(ordered, parsed.outputs, parsed.binaryOutputs, this.ctx.opts.labels));
    this.send(res, 200, enc.body, enc.headerLength !== undefined ? { [HEADER_LENGTH]: enc.headerLength } : {});
    return 200;
  }

  async classify({ req, res, url }: Call): Promise<number> {
    const { model, batcher, opts } = this.ctx;
    const { name, version, sig, detectionOutputs } = model;
    if (detectionOutputs.length)
      throw new ProtocolError(
        400,
        `model "${name}" is a detection model (output ${detectionOutputs.join(', ')}: a table of detections, not class scores): POST the image to /v2/models/${name}/detect`,
      );
    const body = await this.body(req, res);
    const [H, W] = this.imageInput('image classification');
    const k = Math.max(1, Math.min(1000, Number(url.searchParams.get('top_k') ?? opts.topK) || opts.topK));
    // decoding and resizing an image takes tens of milliseconds: on a decode thread
    const x = body.length > OFFLOAD_JSON_BYTES / 16 ? await model.decoders.image(body, H, W, opts.preprocess) : imageToTensor(body, H, W, opts.preprocess);
    const out = await batcher.submit(x, 1);
    const first = out[sig.outputs[0].name].data;
    const idx = topClasses(first, 0, first.length, Math.min(k, first.length));
    this.send(res, 200, {
      model_name: name,
      model_version: version,
      predictions: idx.map((i) => ({ index: i, label: opts.labels?.[i] ?? String(i), score: first[i] })),
    });
    return 200;
  }

  async detect({ req, res, url }: Call): Promise<number> {
    const { model, batcher, opts } = this.ctx;
    const { name, version, detectionOutputs } = model;
    if (!detectionOutputs.length)
      throw new ProtocolError(
        400,
        `model "${name}" is not a detection model (no output is a detection table; its ONNX metadata has no ${DETECTION_OUTPUTS_KEY}): POST the image to /v2/models/${name}/classify`,
      );
    const t = url.searchParams.get('threshold');
    const threshold = t === null ? opts.detectionThreshold : Number(t);
    if (t !== null && (t.trim() === '' || !(threshold >= 0 && threshold <= 1)))
      throw new ProtocolError(400, `threshold must be a number from 0 to 1 (a detection's score), got "${t.slice(0, 40)}"`);
    const body = await this.body(req, res);
    const [H, W] = this.imageInput('object detection');
    // the whole image resized to the input (SSD's transform): decoded on a decode thread when it is large
    const img =
      body.length > OFFLOAD_JSON_BYTES / 16
        ? await model.decoders.detectionImage(body, H, W, opts.preprocess)
        : imageToDetectionTensor(body, H, W, opts.preprocess);
    const out = await batcher.submit(img.data, 1);
    const table = out[detectionOutputs[0]].data;
    const detections = imageDetections(table, { threshold, width: img.width, height: img.height, labels: opts.labels });
    this.send(res, 200, { model_name: name, model_version: version, width: img.width, height: img.height, threshold, detections });
    return 200;
  }

  /** The request's body; its bytes are held in the in-flight budget until the answer has been sent. */
  private body(req: http.IncomingMessage, res: http.ServerResponse): Promise<Buffer> {
    const read = readBody(req, this.ctx.bodyLimits);
    res.once('close', read.release);
    return read.body;
  }

  /** The image input's height and width, or a 400 saying what `what` needs. */
  private imageInput(what: string): [number, number] {
    const { sig } = this.ctx.model;
    const [, , H, W] = sig.inputs[0].shape;
    if (sig.inputs.length !== 1 || sig.inputs[0].shape.length !== 4 || sig.inputs[0].shape[1] !== 3 || typeof H !== 'number' || typeof W !== 'number') {
      throw new ProtocolError(400, `${what} needs a model with one [N, 3, H, W] input`);
    }
    return [H, W];
  }
}
