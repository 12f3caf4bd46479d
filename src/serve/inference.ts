import { InferRequest, ProtocolError } from '../protocol/kserve';
import { DynamicBatcher } from './batcher';
import { ServedModel } from './model';
import { Instant, now } from './statistics';

/** A model's outputs by name, each with its shape. */
export type InferResults = Record<string, { data: Float32Array; shape: number[] }>;

/**
 * An inference request checked against the model and run, whichever front door it came by (HTTP's /infer, gRPC's
 * ModelInfer): its inputs must be the model's, by name and shape, its batch (first dim) within the model's
 * max_batch_size, its requested outputs among the model's; a model with one input runs through the dynamic batcher,
 * one with several runs as it is. The model's outputs, in its own order. A request the model cannot take is a
 * ProtocolError (400) naming the input or output. Each request is counted in the model's statistics, a success
 * with its queue and compute times (by the batcher, which knows them), or a failure.
 */
export async function runInference(model: ServedModel, batcher: DynamicBatcher, parsed: InferRequest): Promise<InferResults> {
  const began = now();
  try {
    checkRequest(model, parsed);
  } catch (e) {
    model.statistics.failed(began);
    throw e;
  }
  const { sig } = model;
  const outNames = sig.outputs.map((o) => o.name);
  let results: InferResults;
  if (sig.inputs.length === 1) {
    const t = parsed.inputs[0];
    // (the batcher counts the request: it alone knows its wait and its batch's run)
    const out = await batcher.submit(t.data, t.shape[0], began);
    results = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data, shape: v.shape ?? [t.shape[0], ...v.itemShape] }]));
  } else {
    results = await runAlone(model, parsed, began);
  }
  // the model's order (the requested outputs are picked from these by the encoder)
  return Object.fromEntries(outNames.map((n) => [n, results[n]]));
}

/** A request of a model with several inputs, run as it is (no batcher): one execution, counted as one. */
async function runAlone(model: ServedModel, parsed: InferRequest, began: Instant): Promise<InferResults> {
  const start = now();
  const feeds = Object.fromEntries(parsed.inputs.map((t) => [t.name, { data: t.data, shape: t.shape }]));
  const inputDone = now();
  try {
    const results = await model.engine.run(feeds);
    const inferDone = now();
    // (its batch: the first input's first dim; a model without batching runs one inference per request, as Triton counts it)
    const items = model.maxBatchSize > 0 ? parsed.inputs[0].shape[0] : 1;
    model.statistics.executed(items, [{ began, queued: start }], { start, inputDone, inferDone, end: now() });
    return results;
  } catch (e) {
    model.statistics.failed(began);
    throw e;
  }
}

/** The checks of a request against the model; a ProtocolError (400) naming what does not fit. */
function checkRequest(model: ServedModel, parsed: InferRequest): void {
  const { sig, name, maxBatchSize } = model;
  const known = new Map(sig.inputs.map((i) => [i.name, i]));
  for (const t of parsed.inputs) {
    const info = known.get(t.name);
    if (!info) throw new ProtocolError(400, `unknown input "${t.name}"; the model's inputs are ${[...known.keys()].join(', ')}`);
    // (Triton's words, and then which input and which setting)
    if (maxBatchSize > 0 && t.shape.length > 0 && t.shape[0] > maxBatchSize)
      throw new ProtocolError(
        400,
        `inference request batch-size must be <= ${maxBatchSize} for '${name}': input "${t.name}" has shape [${t.shape.join(', ')}], a batch of ${t.shape[0]} (the model's max_batch_size is the server's --max-batch-size)`,
      );
    const want = info.shape;
    const ok = t.shape.length === want.length && t.shape.every((d, i) => typeof want[i] !== 'number' || want[i] === d) && t.shape[0] > 0;
    if (!ok)
      throw new ProtocolError(
        400,
        `input "${t.name}": shape [${t.shape.join(', ')}] does not match the model's [${want.map((d) => (typeof d === 'number' ? d : -1)).join(', ')}]`,
      );
  }
  for (const i of sig.inputs) if (!parsed.inputs.find((t) => t.name === i.name)) throw new ProtocolError(400, `missing input "${i.name}"`);
  const outNames = sig.outputs.map((o) => o.name);
  for (const o of parsed.outputs)
    if (!outNames.includes(o.name)) throw new ProtocolError(400, `unknown output "${o.name}"; the model's outputs are ${outNames.join(', ')}`);
  for (const o of parsed.outputs) {
    if (o.classification !== undefined && model.detectionOutputs.includes(o.name))
      throw new ProtocolError(
        400,
        `output "${o.name}" is a detection table (rows image_id, label, score, xmin, ymin, xmax, ymax), not class scores: "classification" does not apply (POST an image to /v2/models/${name}/detect for detections in pixels)`,
      );
  }
}
