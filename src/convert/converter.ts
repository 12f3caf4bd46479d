import { GraphBuilder, Shape, Value, BATCH } from './graph';
import { CaffeNet, parsePrototxt } from './net';
import { CaffeModelWeights, decodeCaffeModel } from './caffemodel';
import { LayerContext } from './layers/types';
import { REGISTRY, SKIPPED_TYPES, supportedTypes } from './layers';
import { DETECTION_OUTPUTS_KEY } from '../protocol/detections';
import { ModelshipError } from '../util/errors';
import { sha256 } from '../util/fsx';
import type { LayerPlugin } from './plugins';
import { VERSION } from '../version';
import { writeModelFile } from './onnxfile';

/** One version of a Caffe blob in the ONNX graph (in-place layers make several versions of one blob). */
export interface BlobVersion {
  blob: string;
  onnx: string;
  shape: Shape;
  /** the layer that produced this version */
  layer: string;
  layerType: string;
  /** true for the blob's last version: the value Caffe keeps in net.blobs after a forward */
  final: boolean;
}

export interface ConversionResult {
  /** the ONNX model (joined into one buffer on first use: writeOnnx does without) */
  onnx: Uint8Array;
  /** write the ONNX model to a file atomically, the weights streamed from the caffemodel buffer; its sha256 and size */
  writeOnnx(file: string): Promise<{ sha256: string; size: number }>;
  net: CaffeNet;
  weightsFormat: 'V1' | 'V2';
  inputs: Value[];
  outputs: Value[];
  /** every layer output in execution order, for per-layer parity */
  versions: BlobVersion[];
  /** re-encode with every layer output as a graph output */
  encodeWithAllOutputs(): Uint8Array;
  /** a model of only these layers' nodes (see GraphBuilder.encodeLayers) */
  encodeLayers(layers: ReadonlySet<string>, inputs: Value[], outputs: Value[]): Uint8Array;
  /** ONNX names the nodes of these layers read from outside them */
  externalInputs(layers: ReadonlySet<string>): string[];
  metadata: Record<string, string>;
  warnings: string[];
  nodeCount: number;
}

export interface ConvertInput {
  prototxt: Uint8Array;
  prototxtFile: string;
  caffemodel: Uint8Array;
  caffemodelFile: string;
  /** the blobs to make the ONNX outputs (intermediate ones included); empty: Caffe's rule (blobs nobody consumes) */
  outputs?: string[];
  /** your own layers (input `layers`), loaded before the prototxt is parsed: their params are in the schema */
  plugin?: LayerPlugin;
}

/** Convert a Caffe deploy net + weights to ONNX (opset 13, dynamic batch). Pure: bytes in, bytes out. */
export function convertCaffe(input: ConvertInput): ConversionResult {
  const net = parsePrototxt(input.prototxt, input.prototxtFile);
  // every layer the converter cannot take, all at once, before the weights are read (a user fixes them together)
  checkLayerTypes(net, input.plugin);
  const weights = decodeCaffeModel(input.caffemodel, input.caffemodelFile);
  return buildGraph(net, weights, input);
}

/** Every layer of an unsupported type, each with its name, type and line, in one error. */
export function checkLayerTypes(net: CaffeNet, plugin?: LayerPlugin): void {
  const bad = net.layers.filter((l) => !REGISTRY.has(l.type) && !SKIPPED_TYPES.has(l.type) && !plugin?.handlers.has(l.type));
  if (bad.length === 0) return;
  const describe = (l: CaffeNet['layers'][number]) =>
    `"${l.name}" (type "${l.type}", line ${l.loc.line}${l.unknownFields.length ? `; it also uses fields modelship does not know: ${l.unknownFields.join(', ')}` : ''})`;
  const types = [...new Set(bad.map((l) => l.type))];
  const head =
    bad.length === 1 ? `unsupported layer type "${bad[0].type}"` : `${bad.length} layers of unsupported types (${types.map((t) => `"${t}"`).join(', ')})`;
  throw new ModelshipError(
    'unsupported',
    `${head}: ${bad.map(describe).join('; ')}. Supported types: ${[...supportedTypes(), ...(plugin ? [...plugin.handlers.keys()].map((t) => `${t} (${plugin.file})`) : [])].join(', ')}. Your own layers: input "layers"`,
    { file: net.file, line: bad[0].loc.line, layer: bad[0].name },
  );
}

function buildGraph(net: CaffeNet, weights: CaffeModelWeights, input: ConvertInput): ConversionResult {
  const file = net.file;
  const g = new GraphBuilder();
  const warnings: string[] = [];

  checkCaffeBlobRules(net);

  // Blob versions: the last writer of each blob gets the plain name; earlier versions get `blob__layer`.
  const inputNames = new Set(net.inputs.map((i) => i.name));
  const lastWriter = new Map<string, number>();
  net.layers.forEach((l, i) => l.tops.forEach((t) => lastWriter.set(t, i)));
  for (const inp of net.inputs) g.addInput(inp.name, [BATCH, ...inp.shape.slice(1)]);
  for (const [blob] of lastWriter) if (!inputNames.has(blob)) g.reserve(blob);

  const current = new Map<string, Value>(g.inputs.map((v) => [v.name, v]));
  const versions: BlobVersion[] = [];
  const layerNames = new Set<string>();
  let available = new Set<string>(net.inputs.map((i) => i.name));
  const silenced: { blob: string; layer: CaffeNet['layers'][number] }[] = [];

  net.layers.forEach((layer, index) => {
    if (layerNames.has(layer.name)) {
      throw new ModelshipError('graph', `duplicate layer name "${layer.name}"`, { file, line: layer.loc.line, layer: layer.name });
    }
    layerNames.add(layer.name);
    if (SKIPPED_TYPES.has(layer.type)) {
      // Silence consumes its bottoms (Caffe: they are no net outputs); remembered in case nothing else is left
      layer.bottoms.forEach((b) => {
        if (available.delete(b)) silenced.push({ blob: b, layer });
      });
      return;
    }
    const inputs = layer.bottoms.map((b) => {
      const v = current.get(b);
      if (!v) {
        throw new ModelshipError('graph', `bottom "${b}" is not produced by any earlier layer and is not a net input`, {
          file,
          line: layer.loc.line,
          layer: layer.name,
        });
      }
      return v;
    });
    const topNames = layer.tops.map((t) => {
      if (lastWriter.get(t) === index && !inputNames.has(t)) return t;
      return g.unique(`${t}__${layer.name}`);
    });
    const wl = weights.layers.get(layer.name);
    const ctx = new LayerContext(g, layer, file, input.caffemodelFile, inputs, wl?.blobs, topNames);
    const handler = REGISTRY.get(layer.type) ?? input.plugin!.handlers.get(layer.type)!;
    g.currentLayer = layer.name;
    const shapes = handler.convert(ctx);
    for (const n of ctx.notes) warnings.push(`${file}:${layer.loc.line}: layer "${layer.name}": ${n}`);
    if (shapes.length !== layer.tops.length)
      throw new Error(`internal: handler for ${layer.type} returned ${shapes.length} shapes for ${layer.tops.length} tops`);
    if (wl && wl.blobs.length > 0 && !ctx.consumedWeights) {
      throw new ModelshipError('weights', `(${layer.type}) the caffemodel has ${wl.blobs.length} blob(s) for this layer, which takes none`, {
        file,
        line: layer.loc.line,
        layer: layer.name,
      });
    }
    layer.bottoms.forEach((b) => available.delete(b));
    layer.tops.forEach((t, i) => {
      const v = { name: topNames[i], shape: shapes[i] };
      current.set(t, v);
      available.add(t);
      versions.push({ blob: t, onnx: v.name, shape: v.shape, layer: layer.name, layerType: layer.type, final: v.name === t });
    });
  });

  // Net outputs: the blobs asked for; else the blobs produced and never consumed afterwards (Caffe's available-blobs
  // rule); else, for a net that ends in Silence (colorization), the blobs only Silence read.
  available = new Set([...available].filter((b) => !inputNames.has(b)));
  let outputs: Value[];
  if (input.outputs?.length) {
    outputs = [...new Set(input.outputs)].map((b) => {
      const v = current.get(b);
      if (!v || inputNames.has(b)) {
        const blobs = [...new Set(versions.map((x) => x.blob))];
        throw new ModelshipError(
          'input',
          `input "outputs": no layer produces a blob "${b}"${inputNames.has(b) ? ' (it is a net input)' : ''}; the net's blobs: ${blobs.slice(0, 40).join(', ')}${blobs.length > 40 ? ', ...' : ''}`,
          { file, field: 'outputs' },
        );
      }
      return v;
    });
  } else {
    outputs = [...available].map((b) => current.get(b)!);
    if (outputs.length === 0) {
      const quiet = silenced.filter((x) => !inputNames.has(x.blob) && current.has(x.blob));
      if (quiet.length) {
        outputs = [...new Map(quiet.map((x) => [x.blob, current.get(x.blob)!])).values()];
        warnings.push(
          `every blob is consumed; the outputs are what only Silence reads: ${quiet.map((x) => `"${x.blob}" (layer "${x.layer.name}", line ${x.layer.loc.line})`).join(', ')} (choose others with input "outputs")`,
        );
      } else {
        const last = net.layers[net.layers.length - 1];
        throw new ModelshipError(
          'graph',
          `the net has no outputs: every blob is consumed by a later layer${last ? `, the last layer "${last.name}" (${last.type}) included` : ''}; name the blobs to output with input "outputs"`,
          { file, line: last?.loc.line, layer: last?.name },
        );
      }
    }
  }
  outputs.forEach((o) => g.addOutput(o));

  const unused = [...weights.layers.entries()].filter(([n, l]) => l.blobs.length > 0 && !layerNames.has(n)).map(([n]) => n);
  if (unused.length)
    warnings.push(
      `the caffemodel has weights for ${unused.length} layer(s) not in the prototxt (ignored, as Caffe does): ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', ...' : ''}`,
    );

  let caffemodelSha256: string | undefined;
  const metadata: Record<string, string> = {
    'modelship.converter_version': VERSION,
    'modelship.prototxt_sha256': sha256(input.prototxt),
    // read when the model is written: writeOnnx hashes the caffemodel as it writes (onnxfile.ts)
    get 'modelship.caffemodel_sha256'() {
      return (caffemodelSha256 ??= sha256(input.caffemodel));
    },
    'modelship.source_format': `caffe-${net.format}`,
    'modelship.net_name': net.name,
    'modelship.inputs': JSON.stringify(net.inputs.map((i) => ({ name: i.name, shape: i.shape }))),
  };
  // outputs made by DetectionOutput: [1, 1, D, 7] rows, compared and served as detections, not as tensors
  const detectionOutputs = outputs.filter((o) => versions.some((v) => v.onnx === o.name && v.layerType === 'DetectionOutput'));
  if (detectionOutputs.length) metadata[DETECTION_OUTPUTS_KEY] = detectionOutputs.map((o) => o.name).join(',');
  const meta = { producerVersion: VERSION, graphName: net.name, docString: `Converted from Caffe by modelship ${VERSION}`, metadata };
  // encoded now (a graph protobuf cannot take fails here), joined into one buffer only if `onnx` is read
  const model = g.model(meta);
  let onnx: Uint8Array | undefined;
  return {
    get onnx() {
      return (onnx ??= model.toBytes());
    },
    writeOnnx: (file) => writeModelFile(file, model, { bytes: input.caffemodel, done: (h) => (caffemodelSha256 ??= h) }),
    net,
    weightsFormat: weights.format,
    inputs: g.inputs,
    outputs,
    versions,
    encodeWithAllOutputs: () => {
      const outNames = new Set(outputs.map((o) => o.name));
      return g.encode(
        meta,
        versions.filter((v) => !outNames.has(v.onnx)).map((v) => ({ name: v.onnx, shape: v.shape })),
      );
    },
    encodeLayers: (layers, ins, outs) => g.encodeLayers(meta, layers, ins, outs),
    externalInputs: (layers) => g.externalInputs(layers),
    metadata,
    warnings,
    nodeCount: g.nodes.length,
  };
}

/**
 * Caffe's own rules for blob names (Net::AppendTop and InsertSplits), so a net Caffe refuses is refused here:
 * a top may reuse an existing blob name only in place (top i == bottom i), and a blob version read by several
 * layers cannot also be modified in place by one of them (Caffe renames that bottom to a split and then reports
 * "produced by multiple sources").
 */
function checkCaffeBlobRules(net: CaffeNet): void {
  const file = net.file;
  const existing = new Set(net.inputs.map((i) => i.name));
  const version = new Map<string, number>();
  const consumers = new Map<string, { layer: CaffeNet['layers'][number]; inPlace: boolean }[]>();
  const key = (b: string) => `${b}\0${version.get(b) ?? 0}`;
  for (const layer of net.layers) {
    layer.bottoms.forEach((b, i) => {
      const k = key(b);
      const list = consumers.get(k) ?? [];
      list.push({ layer, inPlace: layer.tops[i] === b });
      consumers.set(k, list);
    });
    layer.tops.forEach((t, i) => {
      if (existing.has(t) && layer.bottoms[i] !== t) {
        throw new ModelshipError(
          'graph',
          `top "${t}" is already produced by an earlier layer; only an in-place layer (top ${i} == bottom ${i}) may reuse a blob name (Caffe: "produced by multiple sources")`,
          { file, line: layer.loc.line, layer: layer.name },
        );
      }
      existing.add(t);
      version.set(t, (version.get(t) ?? 0) + 1);
    });
  }
  for (const [k, list] of consumers) {
    const inPlace = list.find((c) => c.inPlace);
    if (list.length > 1 && inPlace) {
      const blob = k.split('\0')[0];
      const others = list.filter((c) => c !== inPlace).map((c) => `"${c.layer.name}"`);
      throw new ModelshipError(
        'graph',
        `works in place on blob "${blob}", which ${others.join(', ')} also read${others.length === 1 ? 's' : ''}; Caffe rejects this (the split it inserts makes the top "produced by multiple sources") — give the in-place layer its own top`,
        { file, line: inPlace.layer.loc.line, layer: inPlace.layer.name },
      );
    }
  }
}
