import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { attr, BATCH } from './graph';
import { caffeSchema } from '../formats/schema/caffe';
import { LayerHandler } from './layers/types';
import { REGISTRY } from './layers';
import { ModelshipError } from '../util/errors';

/**
 * Your own layers (input `layers`): a CommonJS module of layer handlers written against the same API as
 * src/convert/layers/*, optionally with the protobuf messages of their parameters. The module exports a function
 * that receives the helpers the built-in handlers use, and returns:
 *
 *   module.exports = ({ attr, BATCH }) => ({
 *     proto: 'message UpsampleParameter { optional uint32 scale = 1 [default = 2]; }',   // or <module>.proto beside it
 *     params: { upsample_param: 'UpsampleParameter' },                                    // new LayerParameter fields
 *     handlers: [{ types: ['Upsample'], convert(ctx) { ...; return [shape]; } }],
 *   });
 *
 * The messages join Caffe's schema (package caffe, proto2), so the prototxt's `upsample_param { ... }` is parsed,
 * typed and located like any other, and `ctx.params('upsample_param')` reads it with its defaults.
 */
export interface LayerPlugin {
  file: string;
  handlers: ReadonlyMap<string, LayerHandler>;
}

/** the helpers a plugin receives (what the built-in handlers import from ./graph) */
export const PLUGIN_API = { attr, BATCH };

/** LayerParameter field numbers for plugin params: far above Caffe's own and the forks' */
const FIRST_PLUGIN_FIELD = 100_000;

export function loadLayerPlugin(file: string): LayerPlugin {
  const abs = path.resolve(file);
  const bad = (why: string): never => {
    throw new ModelshipError('input', `input "layers": ${why}`, { file, field: 'layers' });
  };
  if (!fs.existsSync(abs)) bad('the module does not exist');
  let mod: unknown;
  try {
    // the user's module, loaded by Node itself (the bundle's own require would look inside the bundle)
    mod = (eval('require') as NodeRequire)(abs);
  } catch (e) {
    bad(`the module failed to load: ${(e as Error).message.split('\n')[0]}`);
  }
  const m = (mod as { default?: unknown }).default ?? mod;
  const def = (typeof m === 'function' ? (m as (api: typeof PLUGIN_API) => unknown)(PLUGIN_API) : m) as {
    proto?: unknown;
    params?: unknown;
    handlers?: unknown;
  };
  if (!def || !Array.isArray(def.handlers) || def.handlers.length === 0)
    bad('the module must export { handlers: [{ types: [...], convert(ctx) }] } (or a function returning it)');
  const handlers = new Map<string, LayerHandler>();
  (def.handlers as LayerHandler[]).forEach((h, i) => {
    if (!h || !Array.isArray(h.types) || h.types.length === 0 || typeof h.convert !== 'function')
      bad(`handler #${i + 1} needs types (Caffe type names) and convert(ctx)`);
    for (const t of h.types) {
      if (typeof t !== 'string' || t === '') bad(`handler #${i + 1} has a type that is not a name`);
      if (REGISTRY.has(t)) bad(`type "${t}" is converted by modelship itself; a plugin adds types, it does not replace them`);
      if (handlers.has(t)) bad(`type "${t}" is handled twice`);
      handlers.set(t, h);
    }
  });
  const protoFile = abs.replace(/\.[cm]?js$/, '') + '.proto';
  const proto = typeof def.proto === 'string' ? def.proto : fs.existsSync(protoFile) ? fs.readFileSync(protoFile, 'utf8') : '';
  const params = (def.params ?? {}) as Record<string, unknown>;
  if (proto || Object.keys(params).length) extendCaffeSchema(proto, params, file);
  return { file, handlers };
}

/** Add the plugin's messages to Caffe's schema, and its `*_param` fields to LayerParameter (V2 and V1). */
function extendCaffeSchema(proto: string, params: Record<string, unknown>, file: string): void {
  const root = caffeSchema();
  const bad = (why: string): never => {
    throw new ModelshipError('input', `input "layers": ${why}`, { file, field: 'layers' });
  };
  if (proto.trim()) {
    const body = proto.replace(/^\s*syntax\s*=\s*"proto2"\s*;/m, '').replace(/^\s*package\s+caffe\s*;/m, '');
    try {
      protobuf.parse(`syntax = "proto2"; package caffe;\n${body}`, root, { keepCase: true });
    } catch (e) {
      // the same messages loaded again (a second conversion in one process) are the same schema
      if (!/duplicate name/.test((e as Error).message)) bad(`its proto does not parse: ${(e as Error).message}`);
    }
  }
  for (const type of ['caffe.LayerParameter', 'caffe.V1LayerParameter']) {
    const msg = root.lookupType(type);
    for (const [field, typeName] of Object.entries(params)) {
      if (!/^[a-z][a-z0-9_]*_param$/.test(field)) bad(`params: "${field}" is not a layer parameter field name (<name>_param)`);
      if (typeof typeName !== 'string') bad(`params: "${field}" must name its message type`);
      const existing = msg.fields[field];
      if (existing) {
        if (existing.type.replace(/^\.?caffe\./, '') !== typeName) bad(`params: "${field}" is already a field of ${type} (of type ${existing.type})`);
        continue;
      }
      // numbered after every field the message has: unique, and far above Caffe's and the forks'
      const f = new protobuf.Field(field, FIRST_PLUGIN_FIELD + Object.keys(msg.fields).length, typeName as string);
      msg.add(f);
      try {
        // (a root that was resolved once does not resolve fields added later by itself)
        f.resolve();
      } catch (e) {
        msg.remove(f);
        bad(`params: "${field}" names a message the proto does not define (${(e as Error).message})`);
      }
    }
  }
}
