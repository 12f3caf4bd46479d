import * as crypto from 'crypto';
import * as fs from 'fs';
import { PackageURL } from 'packageurl-js';
import { Contrib, Enums, Models, Serialize, Spec } from '@cyclonedx/cyclonedx-library';
import cdxPackage from '@cyclonedx/cyclonedx-library/package.json';
import { onnxInfo, TensorSig } from '../formats/onnxinfo';
import { DETECTION_OUTPUTS_KEY } from '../protocol/detections';
import type { Runtime } from '../protocol/runtime';
import { parseImageRef } from '../shared/registry';
import { isTensorRTPlan, PlanMetadata } from '../shared/tensorrt';
import { ModelshipError } from '../util/errors';
import { sha256 } from '../util/fsx';
import { VERSION } from '../version';

/**
 * The image's ML-BOM: a CycloneDX 1.6 document of what is in a serving image — the model (with its lineage back to
 * the Caffe files and every step that made it), the base image by digest, and for runtime modelship the Node.js
 * release, every npm package bundled into the server, ONNX Runtime's native libraries and the CUDA provider; for
 * runtime triton the Triton image and the generated config.pbtxt. Built by `buildMlBom` from a typed ImageFacts (pure:
 * equal facts give the same bytes), with the CycloneDX library's models and serializer.
 *
 * The library (10.x) has no models for two 1.6 fields an ML-BOM is about: a component's `modelCard` and `pedigree`.
 * They are added, for the model component only, by a subclass of the library's JSON normalizer (MlNormalizerFactory),
 * in the schema's own shape, so the document stays the library's output and a schema validator checks them too.
 * What the schema has no place for is a property in the `modelship:` namespace (PROPERTY).
 */

/** The modelship repository: the BOM's tool, the provenance's build type and CLI builder (provenance.ts). */
export const MODELSHIP_REPOSITORY_URL = 'https://github.com/org/modelship';

/** The names of modelship's CycloneDX properties; the attestation policy reads some of them (src/shared/verify-image.ts). */
export const PROPERTY = {
  runtime: 'modelship:runtime',
  /** the parity verdict the image stage was given (input `parity`; also the image label dev.modelship.parity) */
  parity: 'modelship:parity:status',
  gpu: 'modelship:gpu',
  imageTag: 'modelship:image:tag',
  modelFile: 'modelship:model:file',
  modelFormat: 'modelship:model:format',
  modelEncrypted: 'modelship:model:encrypted',
  modelEncryptedSha256: 'modelship:model:encrypted-sha256',
  converterVersion: 'modelship:lineage:converter-version',
  sourceFormat: 'modelship:lineage:source-format',
  netName: 'modelship:lineage:net-name',
  lineageRole: 'modelship:lineage:role',
  compile: 'modelship:compile:', // + format, onnxruntime-version, execution-provider, ..., parity:status, parity:max-abs-diff
  nodeSource: 'modelship:node:source',
  providerSource: 'modelship:provider:source',
  tritonRelease: 'modelship:triton:release',
  tritonPlatform: 'modelship:triton:platform',
} as const;

// ---------------------------------------------------------------------------------------------------------------
// the facts

/** A file in the image and its SHA-256 (hex). */
export interface FileDigest {
  /** its path in the image (or its name) */
  file: string;
  sha256: string;
}

/** A bundled npm package, as dist/licenses.txt lists it (bundledPackages). */
export interface BundledPackage {
  name: string;
  version: string;
  /** the license its package.json declares: an SPDX id or expression, 'UNKNOWN', or whatever it says */
  license: string;
}

/** The compile stage's record of an artifact (`<artifact>.json`, src/compile/index.ts runCompile), as read back. */
export interface CompileRecord {
  format: string;
  /** the modelship version that compiled it */
  modelship?: string;
  /** the ONNX model it was compiled from */
  source?: { path?: string; sha256?: string; opset?: number };
  inputs?: TensorSig[];
  outputs?: TensorSig[];
  created?: string;
  /** the artifact's own sha256 */
  sha256?: string;
  onnxruntime?: { version?: string; executionProvider?: string; graphOptimizationLevel?: string; precision?: string };
  lrn?: { form?: string; reason?: string };
  parity?: { status: string; maxAbsDiff?: number; batches?: number[] };
  tensorrt?: Partial<PlanMetadata>;
}

/** What the model file says of where it came from (modelLineage). */
export interface ModelLineage {
  /** an ONNX model, or a TensorRT plan (which carries no ONNX metadata) */
  format: 'onnx' | 'tensorrt';
  /** the ONNX model's metadata_props: the converter writes modelship.caffemodel_sha256, modelship.prototxt_sha256, ... */
  onnxMetadata?: Record<string, string>;
  inputs?: TensorSig[];
  outputs?: TensorSig[];
  opset?: number;
  /** `<model>.json` beside the model, when it is the record of this very file */
  compile?: CompileRecord;
  /** what was found but not used (a record of another artifact), for the stage's log */
  warnings: string[];
}

/** Everything the ML-BOM states about one image; gathered by the image stage, nothing here is looked up. */
export interface ImageFacts {
  /** the image built: its repository (registry/name, no tag), manifest digest (sha256:...) and tags (full references) */
  image: { repository: string; digest?: string; tags: string[] };
  runtime: Runtime;
  gpu?: boolean;
  /** when the image was made (ISO 8601; its org.opencontainers.image.created label) */
  created: string;
  model: {
    /** input model-name */
    name: string;
    /** its path in the image */
    file: string;
    /** sha256 of the model (the plaintext, also when stored encrypted) */
    sha256: string;
    /** input encrypt-model: the file stored in the image and its sha256 */
    encrypted?: FileDigest;
    lineage?: ModelLineage;
    /** the parity verdict the stage was given (input parity: pass, fail, skipped, unknown) */
    parity?: string;
    /** what the model does, when known (e.g. 'image classification'); a net with DetectionOutput is 'object detection' */
    task?: string;
  };
  /** the image built FROM: modelship's base-image, or the Triton image; pinned by digest where known */
  base: { name: string; digest?: string };
  /** runtime modelship: the Node.js in the image; source is the release tarball's URL or 'node-binary' */
  node?: { version: string; sha256?: string; source: string };
  /** runtime modelship: the server bundle's npm packages (dist/licenses.txt) */
  npmPackages?: BundledPackage[];
  /** runtime modelship: sha256 of the server bundle's dist/index.js */
  bundleSha256?: string;
  /** runtime modelship: ONNX Runtime (onnxruntime-node's version) and its native libraries in the image */
  onnxruntime?: { version: string; libraries: FileDigest[] };
  /** gpu: the CUDA provider libraries and the NuGet package they were taken from */
  providers?: { package: string; version: string; sha256?: string; sha512?: string; source?: string; files: FileDigest[] };
  /** runtime triton: the release (yy.mm) and the generated config.pbtxt */
  triton?: { release?: string; config?: FileDigest; platform?: string };
  /** the BOM's serial number (urn:uuid:...); default: derived from the image (repository and digest) */
  serialNumber?: string;
}

// ---------------------------------------------------------------------------------------------------------------
// gathering facts from files

/** A line between two packages of dist/licenses.txt (scripts/licenses.mjs SEPARATOR: it is in no license text). */
const LICENSES_SEPARATOR = /^={80}$/m;
/** A section's first line: `name@version (license)`; a scoped name starts with @ */
const LICENSES_HEADER = /^((?:@[^@\s/]+\/)?[^@\s/]+)@(\S+) \((.*)\)$/;

/**
 * The packages of a licenses.txt as scripts/licenses.mjs writes it (dist/licenses.txt: the packages ncc bundled):
 * sections separated by a line of 80 '=', each opening with `name@version (license)`. A section that does not open so
 * means the file is not such a list: a ModelshipError, not a silently shorter BOM.
 */
export function bundledPackages(text: string): BundledPackage[] {
  const out: BundledPackage[] = [];
  const sections = text.replace(/\r\n?/g, '\n').split(LICENSES_SEPARATOR);
  for (const [i, section] of sections.entries()) {
    const first = section.trim().split('\n', 1)[0];
    if (first === '' && sections.length === 1) return [];
    const m = LICENSES_HEADER.exec(first);
    if (!m)
      throw new ModelshipError('input', `licenses list, section ${i + 1}: expected "name@version (license)", got "${first.slice(0, 120)}"`, {
        file: 'licenses.txt',
      });
    out.push({ name: m[1], version: m[2], license: m[3].trim() });
  }
  return out;
}

/**
 * What the model file says of its lineage: for an ONNX model its metadata_props (the converter's modelship.* keys:
 * the caffemodel's and prototxt's sha256, converter version, source format, net name) and its inputs and outputs;
 * and `<model>.json`, the compile stage's record, when it is there and records this very file (its sha256).
 */
export function modelLineage(modelPath: string, bytes: Uint8Array): ModelLineage {
  const warnings: string[] = [];
  let compile = readCompileRecord(`${modelPath}.json`);
  if (compile?.sha256 !== undefined && compile.sha256 !== sha256(bytes)) {
    warnings.push(
      `${modelPath}.json is the compile record of another artifact (sha256 ${compile.sha256}, the model's is ${sha256(bytes)}): the ML-BOM leaves it out`,
    );
    compile = undefined;
  }
  if (compile?.format === 'tensorrt' || isTensorRTPlan(modelPath)) return { format: 'tensorrt', compile, warnings };
  const info = onnxInfo(bytes, modelPath);
  return { format: 'onnx', onnxMetadata: info.metadata, inputs: info.inputs, outputs: info.outputs, opset: info.opset, compile, warnings };
}

/** `<artifact>.json` parsed, the fields the BOM uses checked for their type (others are ignored); undefined when absent. */
function readCompileRecord(file: string): CompileRecord | undefined {
  if (!fs.existsSync(file)) return undefined;
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelshipError('input', `not JSON: ${(e as Error).message}`, { file });
  }
  const o = (x: unknown): Record<string, unknown> | undefined => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined);
  const s = (x: unknown) => (typeof x === 'string' ? x : undefined);
  const r = o(j);
  if (!r || typeof r.format !== 'string') throw new ModelshipError('input', 'not a compile record (no "format")', { file });
  const src = o(r.source);
  const ort = o(r.onnxruntime);
  const par = o(r.parity);
  const lrn = o(r.lrn);
  const sigs = (x: unknown) => (Array.isArray(x) ? (x as TensorSig[]).filter((t) => typeof t?.name === 'string' && Array.isArray(t.shape)) : undefined);
  return {
    format: r.format,
    modelship: s(r.modelship),
    source: src && { path: s(src.path), sha256: s(src.sha256), opset: typeof src.opset === 'number' ? src.opset : undefined },
    inputs: sigs(r.inputs),
    outputs: sigs(r.outputs),
    created: s(r.created),
    sha256: s(r.sha256),
    onnxruntime: ort && {
      version: s(ort.version),
      executionProvider: s(ort.executionProvider),
      graphOptimizationLevel: s(ort.graphOptimizationLevel),
      precision: s(ort.precision),
    },
    lrn: lrn && { form: s(lrn.form), reason: s(lrn.reason) },
    parity:
      par && typeof par.status === 'string'
        ? {
            status: par.status,
            maxAbsDiff: typeof par.maxAbsDiff === 'number' ? par.maxAbsDiff : undefined,
            batches: Array.isArray(par.batches) ? par.batches.filter((b): b is number => typeof b === 'number') : undefined,
          }
        : undefined,
    tensorrt: o(r.tensorrt) as Partial<PlanMetadata> | undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// CycloneDX 1.6 fields the library does not model, in the schema's shape

/** modelCard (CycloneDX 1.6), the parts modelship fills */
export interface ModelCard {
  modelParameters?: {
    approach?: { type: 'supervised' | 'unsupervised' | 'reinforcement-learning' | 'semi-supervised' | 'self-supervised' };
    task?: string;
    architectureFamily?: string;
    modelArchitecture?: string;
    inputs?: { format: string }[];
    outputs?: { format: string }[];
  };
  quantitativeAnalysis?: { performanceMetrics: { type: string; value: string; slice?: string }[] };
  considerations?: { technicalLimitations?: string[]; performanceTradeoffs?: string[]; useCases?: string[] };
}

/** pedigree (CycloneDX 1.6): the components this one was made from, and how */
interface Pedigree {
  ancestors: Models.Component[];
  notes?: string;
}

interface Extras {
  pedigree?: Pedigree;
  modelCard?: ModelCard;
}

/** The library's component normalizer, plus `pedigree` and `modelCard` for the components that have them. */
class MlComponentNormalizer extends Serialize.JSON.Normalize.ComponentNormalizer {
  constructor(
    factory: MlNormalizerFactory,
    private readonly extras: WeakMap<Models.Component, Extras>,
  ) {
    super(factory);
  }

  override normalize(data: Models.Component, options: Serialize.Types.NormalizerOptions): Serialize.JSON.Types.Normalized.Component | undefined {
    const c = super.normalize(data, options);
    const x = this.extras.get(data);
    if (!c || !x) return c;
    const pedigree = x.pedigree && {
      ancestors: this.normalizeIterable(new Models.ComponentRepository(x.pedigree.ancestors), options),
      notes: x.pedigree.notes,
    };
    return { ...c, ...(pedigree ? { pedigree } : {}), ...(x.modelCard ? { modelCard: x.modelCard } : {}) };
  }
}

class MlNormalizerFactory extends Serialize.JSON.Normalize.Factory {
  constructor(private readonly extras: WeakMap<Models.Component, Extras>) {
    super(Spec.Spec1dot6);
  }

  override makeForComponent(): Serialize.JSON.Normalize.ComponentNormalizer {
    return new MlComponentNormalizer(this, this.extras);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the BOM

/** The ML-BOM: its JSON text (what is attested and written) and the same document parsed. */
export interface MlBom {
  json: string;
  document: Record<string, unknown>;
}

const HEX64 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** A sha256 the facts give, checked: a malformed one would make an invalid BOM, so it is the caller's bad input. */
function hex64(value: string, what: string): string {
  const v = value.toLowerCase();
  if (!HEX64.test(v)) throw new ModelshipError('input', `ML-BOM: ${what} is not a sha256 (64 hex digits): "${value}"`);
  return v;
}

function digestHex(value: string, what: string): string {
  if (!DIGEST.test(value)) throw new ModelshipError('input', `ML-BOM: ${what} is not a digest sha256:<64 hex>: "${value}"`);
  return value.slice('sha256:'.length);
}

const hashes = (entries: [Enums.HashAlgorithm, string][]) => new Models.HashDictionary(entries);
const props = (entries: [string, string | undefined][]) =>
  new Models.PropertyRepository(entries.filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '').map(([k, v]) => new Models.Property(k, v)));

/** UUID v5 (RFC 9562) of `name` in modelship's namespace: the same image always gets the same serial number. */
const UUID_NAMESPACE = Buffer.from('5c1a3e0e6a6f4f0e9d2b0f8e7d3c2b1a', 'hex');
export function uuidV5(name: string): string {
  const h = crypto.createHash('sha1').update(UUID_NAMESPACE).update(name).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/**
 * An OCI image's package URL, pkg:oci/<name>@<digest>?repository_url=<registry/repository>[&tag=<tag>]; `digest`
 * overrides one in `ref`. Also its repository URL and digest, for the callers that state them apart.
 */
export function ociPurl(ref: string, digest?: string): { purl: string; repositoryUrl: string; digest?: string; tag?: string } {
  const r = parseImageRef(ref);
  const pinned = digest ?? r.digest;
  // Docker Hub's official images live under library/ (docker.io/debian is docker.io/library/debian)
  const repository = r.registry === 'docker.io' && !r.repository.includes('/') ? `library/${r.repository}` : r.repository;
  const repositoryUrl = `${r.registry}/${repository}`;
  const name = repository.split('/').pop()!;
  const purl = new PackageURL('oci', undefined, name, pinned, { repository_url: repositoryUrl, ...(r.tag ? { tag: r.tag } : {}) }).toString();
  return { purl, repositoryUrl, digest: pinned, tag: r.tag };
}

/** An OCI image as a container component: name = registry/repository, version = digest, purl pkg:oci by digest. */
function imageComponent(ref: string, digest: string | undefined, bomRef: string, op: Partial<Models.OptionalComponentProperties> = {}): Models.Component {
  const { purl, repositoryUrl, digest: pinned, tag } = ociPurl(ref, digest);
  return new Models.Component(Enums.ComponentType.Container, repositoryUrl, {
    bomRef,
    version: pinned ?? tag,
    purl,
    hashes: pinned ? hashes([[Enums.HashAlgorithm['SHA-256'], digestHex(pinned, `the digest of ${ref}`)]]) : undefined,
    ...op,
  });
}

/** A file of the image as a component (type file) with its SHA-256. */
function fileComponent(f: FileDigest, bomRef: string, what: string, op: Partial<Models.OptionalComponentProperties> = {}): Models.Component {
  return new Models.Component(Enums.ComponentType.File, f.file, { bomRef, hashes: hashes([[Enums.HashAlgorithm['SHA-256'], hex64(f.sha256, what)]]), ...op });
}

const ELEM_TYPES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64' };
/** `data: float32 [N, 1, 28, 28]`: a tensor's format for the model card */
const tensorFormat = (t: TensorSig) =>
  `${t.name}: ${t.elemType !== undefined ? `${ELEM_TYPES[t.elemType] ?? `type ${t.elemType}`} ` : ''}[${t.shape.join(', ')}]`;

/** The model card: what the model does (when known), its architecture and tensors, and the parity measured at compile. */
function modelCard(m: ImageFacts['model']): ModelCard | undefined {
  const l = m.lineage;
  const meta = l?.onnxMetadata ?? {};
  const c = l?.compile;
  const task = m.task ?? (meta[DETECTION_OUTPUTS_KEY] ? 'object detection' : undefined);
  const inputs = l?.inputs ?? c?.inputs;
  const outputs = l?.outputs ?? c?.outputs;
  const card: ModelCard = {};
  const params: NonNullable<ModelCard['modelParameters']> = {
    ...(task ? { task } : {}),
    ...(meta['modelship.net_name'] ? { modelArchitecture: meta['modelship.net_name'] } : {}),
    ...(inputs?.length ? { inputs: inputs.map((t) => ({ format: tensorFormat(t) })) } : {}),
    ...(outputs?.length ? { outputs: outputs.map((t) => ({ format: tensorFormat(t) })) } : {}),
  };
  if (Object.keys(params).length) card.modelParameters = params;
  const p = c?.parity;
  if (p) {
    const slice = p.batches?.length ? `the reference batches of ${p.batches.join(', ')}` : undefined;
    card.quantitativeAnalysis = {
      performanceMetrics: [
        { type: 'parity against Caffe', value: p.status, ...(slice ? { slice } : {}) },
        ...(p.maxAbsDiff !== undefined ? [{ type: 'max |Δ| against Caffe', value: String(p.maxAbsDiff), ...(slice ? { slice } : {}) }] : []),
      ],
    };
  }
  const limits: string[] = [];
  const tradeoffs: string[] = [];
  if (p) limits.push(`parity with Caffe is measured on the reference batches only${p.batches?.length ? ` (${p.batches.join(', ')})` : ''}`);
  if (c?.onnxruntime?.precision === 'float16') tradeoffs.push('float16 weights and activations: about 3 significant digits, for GPU execution providers');
  const trt = c?.tensorrt;
  if (trt?.tensorrtVersion)
    limits.push(
      `a TensorRT ${trt.tensorrtVersion} plan: runs only with that TensorRT${trt.computeCapability ? `, on GPUs of compute capability ${trt.computeCapability}` : ''}`,
    );
  if (trt?.precision?.int8) tradeoffs.push('int8 precision (calibrated)');
  else if (trt?.precision?.fp16) tradeoffs.push('float16 precision');
  if (limits.length || tradeoffs.length)
    card.considerations = { ...(limits.length ? { technicalLimitations: limits } : {}), ...(tradeoffs.length ? { performanceTradeoffs: tradeoffs } : {}) };
  return Object.keys(card).length ? card : undefined;
}

/** The Caffe files the converter read (their sha256 from the ONNX metadata), as ancestors. */
function caffeAncestors(meta: Record<string, string>): Models.Component[] {
  const out: Models.Component[] = [];
  const files: [string, string, string][] = [
    ['prototxt', 'modelship.prototxt_sha256', 'the Caffe net definition (prototxt) converted'],
    ['caffemodel', 'modelship.caffemodel_sha256', 'the Caffe weights (caffemodel) converted'],
  ];
  for (const [role, key, description] of files) {
    const v = meta[key];
    if (v === undefined) continue;
    out.push(
      new Models.Component(Enums.ComponentType.File, role, {
        bomRef: `model:source:${role}`,
        description,
        hashes: hashes([[Enums.HashAlgorithm['SHA-256'], hex64(v, `the model's ${key}`)]]),
        properties: props([[PROPERTY.lineageRole, role]]),
      }),
    );
  }
  return out;
}

/** Converted from Caffe by modelship <v> (caffe-V2, net LeNet) */
function conversionNote(meta: Record<string, string>): string | undefined {
  if (!meta['modelship.converter_version'] && !meta['modelship.caffemodel_sha256']) return undefined;
  const what = [meta['modelship.source_format'], meta['modelship.net_name'] && `net "${meta['modelship.net_name']}"`].filter(Boolean).join(', ');
  return `converted from Caffe${what ? ` (${what})` : ''} to ONNX by modelship ${meta['modelship.converter_version'] ?? '(unknown version)'}`;
}

/** compiled: ONNX Runtime 1.30.0 graph optimization (extended, for cpu, float32), parity pass (max |Δ| 4.47e-7) */
function compileNote(c: CompileRecord): string {
  const o = c.onnxruntime;
  const t = c.tensorrt;
  const how =
    c.format === 'tensorrt'
      ? `built into a TensorRT${t?.tensorrtVersion ? ` ${t.tensorrtVersion}` : ''} plan${t?.gpu ? ` on ${t.gpu}` : ''}${t?.tensorrtImage ? ` in ${t.tensorrtImage}` : ''}`
      : `optimized by ONNX Runtime${o?.version ? ` ${o.version}` : ''} (${[o?.graphOptimizationLevel, o?.executionProvider && `for the ${o.executionProvider} execution provider`, o?.precision].filter(Boolean).join(', ')})`;
  const parity = c.parity ? `; parity against Caffe ${c.parity.status}${c.parity.maxAbsDiff !== undefined ? ` (max |Δ| ${c.parity.maxAbsDiff})` : ''}` : '';
  return `${how} by modelship ${c.modelship ?? '(unknown version)'}${parity}`;
}

/**
 * The model: its hash, the parity verdict, how it was made (properties), its model card and its pedigree: the ONNX
 * model it was compiled from (when compiled), and before it the Caffe prototxt and caffemodel it was converted from.
 */
function modelComponent(f: ImageFacts, extras: WeakMap<Models.Component, Extras>): Models.Component {
  const m = f.model;
  const l = m.lineage;
  const meta = l?.onnxMetadata ?? {};
  const c = l?.compile;
  const cp = (k: string, v: string | number | undefined): [string, string | undefined] => [`${PROPERTY.compile}${k}`, v === undefined ? undefined : String(v)];
  const trt = c?.tensorrt;
  const model = new Models.Component(Enums.ComponentType.MachineLearningModel, m.name, {
    bomRef: 'model',
    description: [conversionNote(meta), c && compileNote(c)].filter(Boolean).join('; then ') || undefined,
    hashes: hashes([[Enums.HashAlgorithm['SHA-256'], hex64(m.sha256, 'the model sha256')]]),
    properties: props([
      [PROPERTY.parity, m.parity || 'unknown'],
      [PROPERTY.modelFile, m.encrypted?.file ?? m.file],
      [PROPERTY.modelFormat, l?.format],
      [PROPERTY.modelEncrypted, String(!!m.encrypted)],
      [PROPERTY.modelEncryptedSha256, m.encrypted && hex64(m.encrypted.sha256, 'the encrypted model sha256')],
      [PROPERTY.converterVersion, meta['modelship.converter_version']],
      [PROPERTY.sourceFormat, meta['modelship.source_format']],
      [PROPERTY.netName, meta['modelship.net_name']],
      cp('format', c?.format),
      cp('modelship-version', c?.modelship),
      cp('onnxruntime-version', c?.onnxruntime?.version),
      cp('execution-provider', c?.onnxruntime?.executionProvider),
      cp('graph-optimization-level', c?.onnxruntime?.graphOptimizationLevel),
      cp('precision', c?.onnxruntime?.precision ?? (trt?.precision ? (trt.precision.int8 ? 'int8' : trt.precision.fp16 ? 'float16' : 'float32') : undefined)),
      cp('lrn', c?.lrn?.form),
      cp('parity:status', c?.parity?.status),
      cp('parity:max-abs-diff', c?.parity?.maxAbsDiff),
      cp('parity:batches', c?.parity?.batches?.join(',')),
      cp('tensorrt-version', trt?.tensorrtVersion),
      cp('tensorrt-image', trt?.tensorrtImage),
      cp('compute-capability', trt?.computeCapability),
      cp('gpu', trt?.gpu),
      cp('batch-profile', trt?.profile && `${trt.profile.min}/${trt.profile.opt}/${trt.profile.max}`),
    ]),
  });
  // pedigree: compiled from an ONNX model (which was converted from the Caffe files), or converted from them itself
  const caffe = caffeAncestors(meta);
  let ancestors = caffe;
  let notes = conversionNote(meta);
  if (c?.source?.sha256) {
    const onnx = new Models.Component(Enums.ComponentType.MachineLearningModel, m.name, {
      bomRef: 'model:source:onnx',
      description: 'the ONNX model compiled',
      hashes: hashes([[Enums.HashAlgorithm['SHA-256'], hex64(c.source.sha256, 'the compile record source.sha256')]]),
      properties: props([
        [PROPERTY.lineageRole, 'onnx'],
        ['modelship:onnx:opset', c.source.opset === undefined ? undefined : String(c.source.opset)],
      ]),
    });
    // the metadata the artifact carries is its source's (ONNX Runtime keeps metadata_props; a plan has none)
    if (caffe.length) extras.set(onnx, { pedigree: { ancestors: caffe, notes: conversionNote(meta) } });
    ancestors = [onnx];
    notes = compileNote(c);
  }
  const card = modelCard(m);
  if (ancestors.length || card) extras.set(model, { ...(ancestors.length ? { pedigree: { ancestors, notes } } : {}), ...(card ? { modelCard: card } : {}) });
  return model;
}

/** A license as the library models it: an SPDX id, an SPDX expression, or a named one; none for UNKNOWN or ''. */
function licenses(factory: Contrib.License.Factories.LicenseFactory, license: string): Models.LicenseRepository {
  const l = license.trim();
  if (l === '' || /^UNKNOWN$/i.test(l)) return new Models.LicenseRepository();
  return new Models.LicenseRepository([factory.makeFromString(l)]);
}

const isDownload = (source: string) => /^https?:\/\//.test(source);

/** Node.js's package URL: pkg:generic/node@<version>, with the release tarball it came from as download_url */
export function nodePurl(n: NonNullable<ImageFacts['node']>): string {
  return new PackageURL('generic', undefined, 'node', n.version || undefined, isDownload(n.source) ? { download_url: n.source } : undefined).toString();
}

/** spdx-expression-parse (no type declarations): throws on what is not an SPDX expression */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- an untyped CommonJS function; this is its one use
const spdxParse = require('spdx-expression-parse') as (expression: string) => unknown;

/** The modelship runtime's parts: Node.js, the server bundle and its npm packages, ONNX Runtime, the CUDA provider. */
function modelshipParts(f: ImageFacts, image: Models.Component): Models.Component[] {
  const out: Models.Component[] = [];
  const licenseFactory = new Contrib.License.Factories.LicenseFactory((e: string) => void spdxParse(e));
  if (f.node) {
    const n = f.node;
    const official = isDownload(n.source);
    const node = new Models.Component(Enums.ComponentType.Platform, 'node', {
      bomRef: 'node',
      version: n.version || undefined,
      description: official ? 'Node.js, the official release' : 'Node.js, the binary given as input node-binary',
      purl: nodePurl(n),
      hashes: n.sha256 ? hashes([[Enums.HashAlgorithm['SHA-256'], hex64(n.sha256, 'the node binary sha256')]]) : undefined,
      // an official release's license; a binary of one's own may be another build
      licenses: official ? licenses(licenseFactory, 'MIT') : undefined,
      externalReferences: official
        ? new Models.ExternalReferenceRepository([new Models.ExternalReference(n.source, Enums.ExternalReferenceType.Distribution)])
        : undefined,
      properties: props([[PROPERTY.nodeSource, n.source]]),
    });
    out.push(node);
    image.dependencies.add(node.bomRef);
  }
  const server = new Models.Component(Enums.ComponentType.Application, 'modelship', {
    bomRef: 'modelship-server',
    version: VERSION,
    description: 'the modelship model server: its bundle (dist/), with the npm packages bundled into it',
    hashes: f.bundleSha256 ? hashes([[Enums.HashAlgorithm['SHA-256'], hex64(f.bundleSha256, 'the bundle sha256')]]) : undefined,
    licenses: licenses(licenseFactory, 'MIT'),
    externalReferences: new Models.ExternalReferenceRepository([new Models.ExternalReference(MODELSHIP_REPOSITORY_URL, Enums.ExternalReferenceType.VCS)]),
  });
  out.push(server);
  image.dependencies.add(server.bomRef);
  // the npm packages: the library's builder (name → group/name, the license) and a pkg:npm purl
  const builder = new Contrib.FromNodePackageJson.Builders.ComponentBuilder(
    new Contrib.FromNodePackageJson.Factories.ExternalReferenceFactory(),
    licenseFactory,
  );
  const npm = new Map<string, Models.Component>();
  for (const p of f.npmPackages ?? []) {
    const c = builder.makeComponent({ name: p.name, version: p.version });
    if (!c) throw new ModelshipError('input', `ML-BOM: "${p.name}@${p.version}" is not an npm package name`);
    const purl = new PackageURL('npm', c.group, c.name, p.version).toString();
    if (npm.has(purl)) continue;
    const component = new Models.Component(Enums.ComponentType.Library, c.name, {
      bomRef: purl,
      group: c.group,
      version: p.version,
      purl,
      licenses: licenses(licenseFactory, p.license),
    });
    npm.set(purl, component);
    out.push(component);
    server.dependencies.add(component.bomRef);
  }
  if (f.onnxruntime) {
    const o = f.onnxruntime;
    const ort = new Models.Component(Enums.ComponentType.Library, 'onnxruntime', {
      bomRef: 'onnxruntime',
      group: 'microsoft',
      version: o.version,
      description: "ONNX Runtime's native libraries, as onnxruntime-node ships them",
      purl: new PackageURL('github', 'microsoft', 'onnxruntime', `v${o.version}`).toString(),
      licenses: licenses(licenseFactory, 'MIT'),
      components: new Models.ComponentRepository(
        o.libraries.map((l) => fileComponent(l, `onnxruntime:${l.file}`, `the sha256 of ${l.file}`, { version: o.version })),
      ),
    });
    out.push(ort);
    // onnxruntime-node (the binding) loads them; without it listed, the server does
    const binding = [...npm.values()].find((c) => c.name === 'onnxruntime-node' && !c.group);
    (binding ?? server).dependencies.add(ort.bomRef);
  }
  if (f.providers) {
    const p = f.providers;
    const provider = new Models.Component(Enums.ComponentType.Library, p.package, {
      bomRef: 'onnxruntime-cuda-provider',
      version: p.version,
      description: "ONNX Runtime's CUDA execution provider libraries, from the NuGet package",
      purl: new PackageURL('nuget', undefined, p.package, p.version).toString(),
      hashes: hashes([
        ...(p.sha256 ? [[Enums.HashAlgorithm['SHA-256'], hex64(p.sha256, 'the provider package sha256')] as [Enums.HashAlgorithm, string]] : []),
        ...(p.sha512 && /^[0-9a-f]{128}$/i.test(p.sha512) ? [[Enums.HashAlgorithm['SHA-512'], p.sha512.toLowerCase()] as [Enums.HashAlgorithm, string]] : []),
      ]),
      licenses: licenses(licenseFactory, 'MIT'),
      components: new Models.ComponentRepository(
        p.files.map((l) => fileComponent(l, `onnxruntime-cuda-provider:${l.file}`, `the sha256 of ${l.file}`, { version: p.version })),
      ),
      properties: props([[PROPERTY.providerSource, p.source]]),
    });
    out.push(provider);
    image.dependencies.add(provider.bomRef);
    if (f.onnxruntime) out.find((c) => c.bomRef.value === 'onnxruntime')!.dependencies.add(provider.bomRef);
  }
  return out;
}

/** The Triton runtime's parts: the generated config.pbtxt (the Triton image is the base). */
function tritonParts(f: ImageFacts, image: Models.Component): Models.Component[] {
  const t = f.triton;
  if (!t?.config) return [];
  const config = fileComponent(t.config, 'triton-config', 'the config.pbtxt sha256', {
    description: "the model's Triton configuration, generated by modelship",
    properties: props([[PROPERTY.tritonPlatform, t.platform]]),
  });
  image.dependencies.add(config.bomRef);
  return [config];
}

/** The facts checked where a mistake would make an invalid or misleading BOM. */
function checkFacts(f: ImageFacts): void {
  if (!f.model.name) throw new ModelshipError('input', 'ML-BOM: the model has no name (input model-name)', { field: 'model-name' });
  if (f.image.digest !== undefined) digestHex(f.image.digest, 'the image digest');
  if (f.base.digest !== undefined) digestHex(f.base.digest, 'the base image digest');
  if (Number.isNaN(Date.parse(f.created))) throw new ModelshipError('input', `ML-BOM: "created" is not a date: "${f.created}"`);
  if (f.serialNumber !== undefined && !/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(f.serialNumber))
    throw new ModelshipError('input', `ML-BOM: the serial number must be urn:uuid:<lower-case uuid>, got "${f.serialNumber}"`);
}

/**
 * The image's ML-BOM (CycloneDX 1.6 JSON): metadata (timestamp, the tools, the image itself as the component, the
 * runtime), the model, the base image and the runtime's parts, and the dependency graph image → its parts. Pure:
 * lists are sorted and the serial number derives from the image, so equal facts give equal bytes.
 */
export function buildMlBom(f: ImageFacts): MlBom {
  checkFacts(f);
  const extras = new WeakMap<Models.Component, Extras>();
  const image = imageComponent(f.image.digest ? `${f.image.repository}@${f.image.digest}` : f.image.repository, undefined, 'image', {
    description: `the serving image of ${f.model.name} (${f.runtime === 'triton' ? 'Triton Inference Server' : 'modelship'})`,
    properties: props([
      [PROPERTY.runtime, f.runtime],
      [PROPERTY.gpu, f.gpu === undefined ? undefined : String(f.gpu)],
      ...f.image.tags.map((t): [string, string] => [PROPERTY.imageTag, t]),
    ]),
  });
  // the image's name is the repository as given (the action's input), not Docker Hub's canonical form
  image.name = f.image.repository;
  const model = modelComponent(f, extras);
  const base = imageComponent(f.base.name, f.base.digest, 'base-image', {
    description: f.runtime === 'triton' ? 'Triton Inference Server, the image built FROM' : 'the serving base image, the image built FROM',
    properties: props([[PROPERTY.tritonRelease, f.runtime === 'triton' ? f.triton?.release : undefined]]),
  });
  image.dependencies.add(model.bomRef);
  image.dependencies.add(base.bomRef);
  const parts = f.runtime === 'triton' ? tritonParts(f, image) : modelshipParts(f, image);

  const tools = new Models.Tools({
    components: new Models.ComponentRepository([
      new Models.Component(Enums.ComponentType.Application, 'modelship', {
        version: VERSION,
        externalReferences: new Models.ExternalReferenceRepository([new Models.ExternalReference(MODELSHIP_REPOSITORY_URL, Enums.ExternalReferenceType.VCS)]),
      }),
      new Models.Component(Enums.ComponentType.Library, 'cyclonedx-library', {
        group: '@cyclonedx',
        version: (cdxPackage as { version: string }).version,
        purl: new PackageURL('npm', '@cyclonedx', 'cyclonedx-library', (cdxPackage as { version: string }).version).toString(),
      }),
    ]),
  });
  const bom = new Models.Bom({
    serialNumber: f.serialNumber ?? `urn:uuid:${uuidV5(`${f.image.repository}@${f.image.digest ?? `model:${f.model.sha256}:${f.created}`}`)}`,
    metadata: new Models.Metadata({
      timestamp: new Date(f.created),
      lifecycles: new Models.LifecycleRepository([Enums.LifecyclePhase.Build]),
      tools,
      component: image,
      properties: props([[PROPERTY.runtime, f.runtime]]),
    }),
    components: new Models.ComponentRepository([model, base, ...parts]),
  });
  const json = new Serialize.JsonSerializer(new MlNormalizerFactory(extras)).serialize(bom, { sortLists: true, space: 2 }) + '\n';
  return { json, document: JSON.parse(json) as Record<string, unknown> };
}
