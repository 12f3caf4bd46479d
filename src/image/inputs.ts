import * as path from 'path';
import type { Preprocess } from '../protocol/preprocess';
import { fail, InputSpec, OutputSpec, Reader } from '../inputs';
import type { SharedConfig } from '../shared/inputs';
import type { Runtime } from '../protocol/runtime';
import { SERVE_SETTINGS } from '../protocol/serve-settings';
import { DEFAULT_GPU_BASE_IMAGE } from './basecheck';
import { DEFAULT_NODE_VERSION } from './node';
import type { SigningConfig } from '../shared/attest';

/**
 * The image stage's own inputs and outputs (image, model, model-name, gpu, runtime, registry login, and the supply
 * chain's ml-bom-file, provenance-file, sign, signing-key, transparency-log, cosign-*, outputs image and signed, which
 * the sign stage reads and sets too, are shared).
 */
export const IMAGE_INPUTS: InputSpec[] = [
  {
    name: 'base-image',
    description: 'image (modelship): the serving base image (pinned by digest; glibc-based). Runtime triton builds FROM triton-image instead.',
    default: DEFAULT_GPU_BASE_IMAGE,
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'max-queue-delay-us',
    description: "image (triton): dynamic batching's max_queue_delay_microseconds in the generated config.pbtxt.",
    default: '1000',
    kind: 'number',
    stages: ['image'],
  },
  {
    name: 'push',
    description: 'image: push to the registry (false: load into the local engine only).',
    default: 'true',
    kind: 'boolean',
    stages: ['image'],
  },
  {
    name: 'cache',
    description:
      "image: build cache: auto (gha on GitHub with a container driver, registry <image>:buildcache elsewhere, inline on the docker driver), gha, registry or off. A pull request's build (tagged pr-<N>) writes <image>:buildcache-pr-<N> instead and reads both, so a preview never moves the deploy's cache; the cleanup stage removes it with pr-<N>.",
    default: 'auto',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'encrypt-model',
    description: `image: store the model AES-256-GCM encrypted in the image; the server decrypts it in memory with ${SERVE_SETTINGS.modelKey.env} at run time.`,
    default: 'false',
    kind: 'boolean',
    stages: ['image'],
  },
  {
    name: 'parity',
    description: "image: the convert stage's parity result, recorded as the image label dev.modelship.parity.",
    default: 'unknown',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'revision',
    description: "image: the source commit (default: the event's commit, else git rev-parse HEAD); gives the sha-<7> tag and the revision label.",
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'ref',
    description:
      'image: the git ref (refs/heads/..., refs/tags/v1.2.3, refs/pull/N/merge) for the branch, semver or pr-N tags (default: GITHUB_REF, else the checked-out branch).',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'source',
    description: "image: the source repository URL for the org.opencontainers.image.source label (default: the workflow's repository).",
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'compose-file',
    description: 'image: where to write the docker-compose.yml that serves the image by digest.',
    default: 'docker-compose.yml',
    kind: 'path',
    stages: ['image'],
  },
  {
    name: 'node-binary',
    description:
      'image: a Node.js binary to put in the image instead of the official release (glibc linux-x64; a LICENSE file beside its bin/ directory is shipped too). Empty: the official Node.js node-version, downloaded and checked against its SHASUMS256.txt.',
    default: '',
    kind: 'path',
    stages: ['image'],
  },
  {
    name: 'node-version',
    description:
      "image: the official Node.js release put in the image (linux-x64), downloaded from node-mirror into the tool cache and checked against the release's SHASUMS256.txt; its LICENSE is shipped in the image.",
    default: DEFAULT_NODE_VERSION,
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'node-mirror',
    description:
      'image: where Node.js releases are downloaded from (the layout of nodejs.org/dist: v<version>/SHASUMS256.txt and node-v<version>-linux-x64.tar.gz).',
    default: 'https://nodejs.org/dist',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'provider-package',
    description:
      'image (gpu): a mirror URL or a local path of the Microsoft.ML.OnnxRuntime.Gpu.Linux .nupkg (of the bundled ONNX Runtime version) that carries the CUDA provider libraries, for air-gapped runners; needs provider-package-sha256. Empty: from nuget-source, verified against the SHA-512 NuGet publishes.',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'provider-package-sha256',
    description: 'image (gpu): the sha256 (hex) that the provider-package must have.',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'nuget-source',
    description: 'image (gpu): the NuGet v3 service index that the CUDA provider package and its published hash come from.',
    default: 'https://api.nuget.org/v3/index.json',
    kind: 'string',
    stages: ['image'],
  },
];

export const IMAGE_OUTPUTS: OutputSpec[] = [
  { name: 'digest', description: 'image: the image manifest digest.', stages: ['image'] },
  { name: 'tags', description: 'image: the pushed tags, one per line.', stages: ['image'] },
  {
    name: 'metadata',
    description: 'image: JSON: digest, tags, labels, layer digests, compressed size, cache reuse, build time, buildx metadata.',
    stages: ['image'],
  },
  { name: 'compose-file', description: 'image: path of the generated docker-compose.yml.', stages: ['image'] },
  { name: 'ml-bom', description: "image: path of the image's ML-BOM (CycloneDX 1.6 JSON; input ml-bom-file).", stages: ['image'] },
  {
    name: 'provenance',
    description: "image: path of the image's provenance (in-toto statement, SLSA provenance v1; input provenance-file).",
    stages: ['image'],
  },
];

export interface ImageConfig {
  image: string;
  runtime: Runtime;
  /** the Triton server image to build FROM (runtime triton) */
  tritonImage: string;
  /** max-queue-delay-us: dynamic batching's max_queue_delay_microseconds (runtime triton) */
  maxQueueDelayUs: number;
  /** the max of batch-sizes: max_batch_size of an ONNX model served by Triton */
  maxBatchSize: number;
  model: string;
  modelName: string;
  baseImage: string;
  push: boolean;
  gpu: boolean;
  cache: 'auto' | 'gha' | 'registry' | 'off';
  registryUsername: string;
  registryPassword: string;
  encryptModel: boolean;
  modelKey: string;
  apiKeyRequired: boolean;
  parity: string;
  revision: string;
  ref: string;
  source: string;
  defaultBranch?: string;
  composeFile: string;
  nodeBinary: string;
  nodeVersion: string;
  nodeMirror: string;
  providerPackage: string;
  providerPackageSha256: string;
  nugetSource: string;
  /** input `preprocess`: written into a modelship image as MODELSHIP_PREPROCESS */
  preprocess?: Preprocess;
  /** triton-release: recorded in the ML-BOM (runtime triton) */
  tritonRelease: string;
  mlBomFile: string;
  provenanceFile: string;
  signing: SigningConfig;
}

export function readImageConfig(r: Reader, s: SharedConfig): ImageConfig {
  const c: ImageConfig = {
    preprocess: s.preprocess,
    image: s.image,
    runtime: s.runtime,
    tritonImage: s.tritonImage,
    maxQueueDelayUs: r.num('max-queue-delay-us'),
    maxBatchSize: s.batchSizes[2],
    model: s.model,
    modelName: s.modelName,
    baseImage: r.raw('base-image'),
    push: r.bool('push'),
    gpu: s.gpu,
    cache: r.oneOf('cache', ['auto', 'gha', 'registry', 'off'] as const),
    registryUsername: s.registryUsername,
    registryPassword: s.registryPassword,
    encryptModel: r.bool('encrypt-model'),
    modelKey: s.modelKey,
    apiKeyRequired: s.apiKey !== '',
    parity: r.raw('parity'),
    revision: r.raw('revision'),
    ref: r.raw('ref'),
    source: r.raw('source'),
    composeFile: r.raw('compose-file'),
    nodeBinary: r.raw('node-binary'),
    nodeVersion: r.raw('node-version'),
    nodeMirror: r.raw('node-mirror'),
    providerPackage: r.raw('provider-package'),
    providerPackageSha256: r.raw('provider-package-sha256').toLowerCase(),
    nugetSource: r.raw('nuget-source'),
    tritonRelease: s.tritonRelease,
    mlBomFile: r.raw('ml-bom-file') || path.join(path.dirname(r.raw('compose-file')), 'ml-bom.cdx.json'),
    provenanceFile: r.raw('provenance-file') || path.join(path.dirname(r.raw('compose-file')), 'provenance.intoto.json'),
    signing: s.signing,
  };
  if (c.signing.sign !== 'off' && !c.push) fail('sign', 'a signature is stored in the registry beside the image: it needs push true');
  for (const [input, file] of [
    ['ml-bom-file', c.mlBomFile],
    ['provenance-file', c.provenanceFile],
  ] as const)
    if (path.resolve(file) === path.resolve(c.composeFile)) fail(input, `is the compose-file's path (${file}): give each its own file`);
  if (!/^\d+\.\d+\.\d+$/.test(c.nodeVersion)) fail('node-version', `expected a Node.js release version x.y.z, got "${c.nodeVersion}"`);
  if (c.providerPackageSha256 && !/^[0-9a-f]{64}$/.test(c.providerPackageSha256))
    fail('provider-package-sha256', `expected 64 hex digits, got "${r.raw('provider-package-sha256')}"`);
  if (c.providerPackage && !c.providerPackageSha256)
    fail('provider-package-sha256', 'is required with provider-package: the sha256 that the package must have');
  return c;
}
