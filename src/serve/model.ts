import { DynamicBatcher, BatchOutput } from './batcher';
import { decryptModel, isEncrypted } from '../protocol/model-crypto';
import { DETECTION_OUTPUTS_KEY, detectionOutputNames } from '../protocol/detections';
import { OnnxInfo, onnxInfo } from '../formats/onnxinfo';
import { cpuBudget } from './cpus';
import { InferenceThread, DecodeThreads } from './threads';
import { ModelshipError } from '../util/errors';
import { readFileChecked } from '../util/fsx';
import { SERVE_SETTINGS } from '../protocol/serve-settings';
import type { ServeOptions } from './options';
import { InferenceStatistics } from './statistics';
import { servedMaxBatchSize } from './model-config';

/** The model a server serves: its signature, the thread its session runs on, the threads that decode for it. */
export interface ServedModel {
  name: string;
  version: string;
  sig: OnnxInfo;
  engine: InferenceThread;
  decoders: DecodeThreads;
  /** onnxruntime's intra-op threads */
  threads: number;
  /** outputs that are detection tables (SSD's DetectionOutput), split per request by image_id */
  detectionOutputs: string[];
  /**
   * the max_batch_size of its configuration (GET .../config): a request whose batch is larger is refused, as Triton
   * refuses it; 0: any batch (a detection model, or one without a batch dimension)
   */
  maxBatchSize: number;
  /** what it has done (GET .../stats, gRPC ModelStatistics), counted where requests run (inference.ts, batcher.ts) */
  statistics: InferenceStatistics;
}

/** Why a request for model `wanted` (version `version`, when it names one) is 404 here: what is served instead. */
export function notServed(served: Pick<ServedModel, 'name' | 'version'>, wanted: string, version?: string): string {
  return `model "${wanted}"${version ? ` version ${version}` : ''} is not served here (serving "${served.name}" version ${served.version})`;
}

/** The model file, decrypted when it is encrypted, and what it declares. */
export function readModel(opts: Pick<ServeOptions, 'modelPath' | 'modelKey'>): { bytes: Uint8Array; sig: OnnxInfo } {
  let bytes: Uint8Array = readFileChecked(opts.modelPath, `the model (--${SERVE_SETTINGS.model.flag}, ${SERVE_SETTINGS.model.env})`);
  if (isEncrypted(bytes)) bytes = decryptModel(bytes, opts.modelKey, opts.modelPath);
  const sig = onnxInfo(bytes, opts.modelPath);
  if (sig.inputs.length === 0) throw new ModelshipError('input', 'the model has no inputs', { file: opts.modelPath });
  return { bytes, sig };
}

/** Start the model's session on an inference thread (`bytes` are moved there); `onCrash` hears of its death. */
export async function startModel(bytes: Uint8Array, sig: OnnxInfo, opts: ServeOptions, onCrash: (e: Error) => void): Promise<ServedModel> {
  // onnxruntime's own default sizes its pool from the host, not from the container's quota (on a 2-vCPU VM it
  // ran GoogLeNet at 1.6x the latency of an explicit 2), so the thread count is always set
  const budget = cpuBudget();
  const threads = opts.intraOpThreads > 0 ? opts.intraOpThreads : budget.cpus;
  // the session lives on its own thread: onnxruntime-node's session.run blocks the thread that calls it
  const engine = await InferenceThread.start(
    bytes,
    threads,
    opts.provider,
    sig.outputs.map((o) => o.name),
    onCrash,
  );
  const decoders = new DecodeThreads(opts.decodeThreads);
  const { provider, fallbackReason } = engine;
  if (fallbackReason) opts.log(`CUDA execution provider unavailable: ${fallbackReason}; serving on the CPU, as ${opts.provider.requested} allows`);
  opts.log(
    `model ${opts.modelName} v${opts.modelVersion} loaded from ${opts.modelPath} on ${provider} with ${threads} intra-op thread${threads === 1 ? '' : 's'} (${opts.intraOpThreads > 0 ? 'configured' : budget.source}) on an inference thread; inputs ${sig.inputs.map((i) => `${i.name}[${i.shape.join(',')}]`).join(' ')}`,
  );
  // detection tables (SSD's DetectionOutput) are one table for the whole batch, not batch-first: split by image_id
  const detectionOutputs = detectionOutputNames(
    sig.metadata,
    sig.outputs.map((o) => o.name),
  );
  return {
    name: opts.modelName,
    version: opts.modelVersion,
    sig,
    engine,
    decoders,
    threads,
    detectionOutputs,
    maxBatchSize: servedMaxBatchSize(sig, detectionOutputs, opts.maxBatchSize),
    statistics: new InferenceStatistics(opts.modelName, opts.modelVersion),
  };
}

/** Dynamic batching of the model's first input: concurrent requests run as one batch, split back per request. */
export function modelBatcher(
  model: ServedModel,
  opts: Pick<ServeOptions, 'maxBatchSize' | 'maxQueueDelayMs' | 'idleFlush'>,
  onBatch: (items: number) => void,
): DynamicBatcher {
  const input0 = model.sig.inputs[0];
  const itemShape = input0.shape.slice(1).map((d) => (typeof d === 'number' ? d : NaN));
  const isDetection = new Set(model.detectionOutputs);
  return new DynamicBatcher(
    async (input, items): Promise<BatchOutput> => {
      const res = await model.engine.run({ [input0.name]: { data: input, shape: [items, ...itemShape] } });
      const out: BatchOutput = {};
      for (const [k, v] of Object.entries(res)) {
        if (isDetection.has(k)) {
          out[k] = { data: v.data, itemShape: v.shape.slice(1), detections: true };
          continue;
        }
        // an output that is not batch-first cannot be split by item: refuse rather than hand out wrong slices
        if (v.shape[0] !== items)
          throw new Error(
            `output "${k}" has shape [${v.shape.join(', ')}] for a batch of ${items}: its first dimension is not the batch, so the server cannot split it per request (a detection table must be listed in the model's ${DETECTION_OUTPUTS_KEY} metadata)`,
          );
        out[k] = { data: v.data, itemShape: v.shape.slice(1) };
      }
      return out;
    },
    opts.maxBatchSize,
    opts.maxQueueDelayMs,
    onBatch,
    opts.idleFlush,
    model.statistics,
  );
}
