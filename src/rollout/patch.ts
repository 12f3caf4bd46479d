import * as fs from 'fs';
import * as yaml from 'js-yaml';
import { ModelshipError } from '../util/errors';
import type { K8sObject } from './manifests';

/**
 * User overlays on the generated objects, kustomize-style (`patchesStrategicMerge`): maps merge key by key,
 * `null` deletes a key, lists of named things merge by their Kubernetes merge key (containers and env by name,
 * volumeMounts by mountPath, container ports by containerPort, ...), `$patch: delete` removes a list item and
 * `$patch: replace` replaces a map; every other list is replaced whole. This is the subset of strategic merge
 * patch that pod templates need, without a Go runtime.
 */
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const MERGE_KEYS: Record<string, string[]> = {
  containers: ['name'],
  initContainers: ['name'],
  ephemeralContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  volumeDevices: ['devicePath'],
  imagePullSecrets: ['name'],
  ports: ['containerPort', 'port'],
  hostAliases: ['ip'],
};

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function mergeKeyOf(field: string, items: Json[]): string | undefined {
  const keys = MERGE_KEYS[field];
  if (!keys || !items.every(isObj)) return undefined;
  return keys.find((k) => items.every((i) => i[k] !== undefined));
}

export function strategicMerge(base: Json | undefined, patch: Json, field = ''): Json {
  if (isObj(patch)) {
    if (patch.$patch === 'replace') {
      const { $patch: _, ...rest } = patch;
      return rest;
    }
    const out: Obj = isObj(base) ? { ...base } : {};
    for (const [k, v] of Object.entries(patch)) {
      if (k === '$patch') continue;
      if (v === null) delete out[k];
      else out[k] = strategicMerge(out[k], v, k);
    }
    return out;
  }
  if (Array.isArray(patch) && Array.isArray(base)) {
    const key = mergeKeyOf(field, [...base, ...patch.filter((p) => !(isObj(p) && p.$patch === 'delete' && Object.keys(p).length === 1))]);
    if (!key) return patch;
    const out = [...base];
    for (const p of patch as Obj[]) {
      const i = out.findIndex((b) => (b as Obj)[key] === p[key]);
      if (p.$patch === 'delete') {
        if (i >= 0) out.splice(i, 1);
      } else if (i >= 0) out[i] = strategicMerge(out[i], p, '');
      else out.push(strategicMerge(undefined, p, ''));
    }
    return out;
  }
  return patch;
}

export interface PatchDoc {
  kind: string;
  name?: string;
  body: Obj;
  source: string;
}

/** Read a multi-document YAML patch file; each document names the kind it patches (and optionally the name). */
export function readPatches(file: string): PatchDoc[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ModelshipError('input', `input "patch": cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      field: 'patch',
      file,
    });
  }
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text);
  } catch (e) {
    const m = (e as yaml.YAMLException).mark;
    throw new ModelshipError('input', `input "patch": ${file} is not YAML: ${(e as yaml.YAMLException).reason}`, {
      field: 'patch',
      file,
      line: m ? m.line + 1 : undefined,
      column: m ? m.column + 1 : undefined,
    });
  }
  return docs
    .filter((d) => d !== null && d !== undefined)
    .map((d, i) => {
      if (!isObj(d) || typeof d.kind !== 'string')
        throw new ModelshipError('input', `input "patch": document ${i + 1} of ${file} needs a "kind" (Deployment or Service)`, { field: 'patch', file });
      const name = isObj(d.metadata) && typeof d.metadata.name === 'string' ? d.metadata.name : undefined;
      const { apiVersion: _a, kind: _k, ...body } = d;
      if (isObj(body.metadata)) {
        const { name: _n, namespace: _ns, ...meta } = body.metadata;
        body.metadata = meta;
      }
      return { kind: d.kind, name, body, source: `${file} (document ${i + 1})` };
    });
}

/**
 * Apply the patches to one generated object. A patch for `<app>` also applies to `<app>-canary`: the canary is
 * the release under test, so it must carry the same overlay the stable will get on promotion. Selectors and the
 * labels modelship routes by are kept.
 */
export function applyPatches(obj: K8sObject, patches: PatchDoc[], app: string): K8sObject {
  let out = obj;
  for (const p of patches) {
    if (p.kind !== obj.kind) continue;
    if (p.name && p.name !== obj.metadata.name && `${p.name}-canary` !== obj.metadata.name) continue;
    if (p.name && p.name !== app && p.name !== obj.metadata.name) continue;
    out = strategicMerge(out as unknown as Json, p.body) as unknown as K8sObject;
  }
  // what modelship routes and selects by is not the overlay's to change
  const spec = (obj as { spec?: Obj }).spec;
  const outSpec = (out as { spec?: Obj }).spec;
  if (spec && outSpec) {
    outSpec.selector = spec.selector;
    if (
      isObj(spec.template) &&
      isObj(outSpec.template) &&
      isObj(spec.template.metadata) &&
      isObj(outSpec.template.metadata) &&
      isObj(spec.template.metadata.labels)
    ) {
      outSpec.template.metadata.labels = {
        ...(isObj(outSpec.template.metadata.labels) ? outSpec.template.metadata.labels : {}),
        ...spec.template.metadata.labels,
      };
    }
  }
  // nor the image: the release under test is the digest modelship built and verified
  type Pod = { template?: { spec?: { containers?: { name: string; image?: string }[] } } };
  const image = (spec as Pod | undefined)?.template?.spec?.containers?.find((c) => c.name === 'model-server')?.image;
  const server = (outSpec as Pod | undefined)?.template?.spec?.containers?.find((c) => c.name === 'model-server');
  if (image && server) server.image = image;
  out.metadata = {
    ...out.metadata,
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    labels: { ...(out.metadata.labels ?? {}), ...(obj.metadata.labels ?? {}) },
  };
  return out;
}

/** The manifest input: the user's own Deployment/Service documents, laid over the generated ones like patches. */
export function readManifest(file: string): PatchDoc[] {
  const docs = readPatches(file).map((d) => ({ ...d, source: `manifest ${d.source}` }));
  for (const d of docs) {
    // a single container under another name is the model server: keep one container, not two
    const containers = ((d.body.spec as { template?: { spec?: { containers?: { name?: string }[] } } } | undefined)?.template?.spec?.containers ?? []) as {
      name?: string;
    }[];
    if (d.kind === 'Deployment' && containers.length === 1) containers[0].name = 'model-server';
  }
  return docs;
}
