import { InferRequest, ProtocolError } from '../protocol/kserve';
import { DynamicBatcher } from './batcher';
import { ServedModel } from './model';

/** A model's outputs by name, each with its shape. */
export type InferResults = Record<string, { data: Float32Array; shape: number[] }>;

/**
 * An inference request checked against the model and run, whichever front door it came by (HTTP's /infer, gRPC's
 * ModelInfer): its inputs must be the model's, by name and shape, its requested outputs among the model's; a model
 * with one input runs through the dynamic batcher, one with several runs as it is. The model's outputs, in its own
 * order. A request the model cannot take is a ProtocolError (400) naming the input or output.
 */
export async function runInference(model: ServedModel, batcher: DynamicBatcher, parsed: InferRequest): Promise<InferResults> {
  const { sig, name } = model;
  const known = new Map(sig.inputs.map((i) => [i.name, i]));
  for (const t of parsed.inputs) {
    const info = known.get(t.name);
    if (!info) throw new ProtocolError(400, `unknown input "${t.name}"; the model's inputs are ${[...known.keys()].join(', ')}`);
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
  let results: InferResults;
  if (sig.inputs.length === 1) {
    const t = parsed.inputs[0];
    const out = await batcher.submit(t.data, t.shape[0]);
    results = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data, shape: v.shape ?? [t.shape[0], ...v.itemShape] }]));
  } else {
    results = await model.engine.run(Object.fromEntries(parsed.inputs.map((t) => [t.name, { data: t.data, shape: t.shape }])));
  }
  // the model's order (the requested outputs are picked from these by the encoder)
  return Object.fromEntries(outNames.map((n) => [n, results[n]]));
}
