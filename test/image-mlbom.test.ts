import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';
import { buildMlBom, bundledPackages, ImageFacts, modelLineage, PROPERTY } from '../src/image/mlbom';
import { BUILD_TYPE, CLI_BUILDER, ImageParameters, provenanceStatement, redactUrl } from '../src/image/provenance';
import { evaluatePolicy, parsePolicy } from '../src/shared/verify-image';
import type { InTotoStatement } from '../src/shared/cosign';
import { sha256 } from '../src/util/fsx';
import { ModelshipError } from '../src/util/errors';
import { VERSION } from '../src/version';

// The image stage's ML-BOM (CycloneDX 1.6) and SLSA provenance, from facts gathered the way the stage gathers them: a
// LeNet converted and compiled by the real stages, the real dist/licenses.txt. The BOMs are checked against the
// CycloneDX schema by CycloneDX's own validator in test/mlbom-validate.tools.test.ts.

const LENET = path.join(FIXTURES, 'lenet');
const DIST_LICENSES = path.join(REPO, 'dist/licenses.txt');
const h = (s: string) => sha256(s);
const IMAGE_DIGEST = `sha256:${h('image')}`;
const BASE = 'nvcr.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04';
const BASE_DIGEST = `sha256:${h('base')}`;
const NODE_URL = 'https://nodejs.org/dist/v24.22.3/node-v24.22.3-linux-x64.tar.gz';
const CREATED = '2026-01-02T03:04:05.000Z';

type Json = Record<string, any>;
const components = (bom: Json): Json[] => bom.components as Json[];
const byRef = (bom: Json, ref: string): Json => components(bom).find((c) => c['bom-ref'] === ref)!;
const prop = (c: Json, name: string): string[] => ((c.properties ?? []) as Json[]).filter((p) => p.name === name).map((p) => p.value as string);
const sha256Of = (c: Json): string | undefined => ((c.hashes ?? []) as Json[]).find((x) => x.alg === 'SHA-256')?.content;

/** LeNet, converted (convert stage) and compiled with a parity check (compile stage), in a directory of its own */
let converted: string;
let artifact: string;
beforeAll(async () => {
  const dir = tmpDir();
  converted = path.join(dir, 'lenet.onnx');
  const c = await runCli([
    'convert',
    '--prototxt',
    path.join(LENET, 'deploy.prototxt'),
    '--caffemodel',
    path.join(LENET, 'weights.caffemodel'),
    '--out',
    converted,
  ]);
  expect(c.code).toBe(0);
  const r = await runCli(['compile', '--model', converted, '--reference', LENET, '--json']);
  expect(r.code).toBe(0);
  artifact = r.json()['artifact-path'];
}, 120_000);

/** The facts of a modelship-runtime GPU image of the compiled LeNet, as the image stage gathers them. */
function modelshipFacts(): ImageFacts {
  const bytes = fs.readFileSync(artifact);
  const ortDir = path.join(REPO, 'dist/bin/napi-v6/linux/x64');
  return {
    image: { repository: 'ghcr.io/acme/lenet', digest: IMAGE_DIGEST, tags: ['ghcr.io/acme/lenet:sha-1234567', 'ghcr.io/acme/lenet:main'] },
    runtime: 'modelship',
    gpu: true,
    created: CREATED,
    model: { name: 'lenet', file: `/models/${path.basename(artifact)}`, sha256: sha256(bytes), lineage: modelLineage(artifact, bytes), parity: 'pass' },
    base: { name: BASE, digest: BASE_DIGEST },
    node: { version: '24.22.3', sha256: h('node'), source: NODE_URL },
    npmPackages: bundledPackages(fs.readFileSync(DIST_LICENSES, 'utf8')),
    onnxruntime: {
      version: '1.30.0',
      libraries: fs
        .readdirSync(ortDir)
        .map((f) => ({ file: `/opt/modelship/dist/bin/napi-v6/linux/x64/${f}`, sha256: sha256(fs.readFileSync(path.join(ortDir, f))) })),
    },
    providers: {
      package: 'Microsoft.ML.OnnxRuntime.Gpu.Linux',
      version: '1.30.0',
      sha256: h('nupkg'),
      source: 'https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.gpu.linux/1.30.0/microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg',
      files: [
        { file: 'libonnxruntime_providers_cuda.so', sha256: h('cuda') },
        { file: 'libonnxruntime_providers_shared.so', sha256: h('shared') },
      ],
    },
  };
}

/** A TensorRT plan with the compile stage's record beside it (the plan itself is opaque bytes here). */
function fakePlan(dir: string): { file: string; bytes: Buffer } {
  const file = path.join(dir, 'lenet.plan');
  const bytes = Buffer.from('not really a TensorRT engine');
  fs.writeFileSync(file, bytes);
  const record = {
    format: 'tensorrt',
    modelship: VERSION,
    source: { path: converted, sha256: sha256(fs.readFileSync(converted)), opset: 13 },
    inputs: [{ name: 'data', shape: ['N', 1, 28, 28], elemType: 1 }],
    outputs: [{ name: 'prob', shape: ['N', 10], elemType: 1 }],
    sha256: sha256(bytes),
    tensorrt: {
      tensorrtVersion: '10.5.0',
      computeCapability: '8.9',
      gpu: 'NVIDIA L4',
      tensorrtImage: `nvcr.io/nvidia/tensorrt@sha256:${h('trt')}`,
      profile: { min: 1, opt: 4, max: 8 },
      precision: { fp16: true, int8: false },
    },
  };
  fs.writeFileSync(`${file}.json`, JSON.stringify(record));
  return { file, bytes };
}

/** A Triton image serving the TensorRT plan. */
function tritonFacts(): ImageFacts {
  const { file, bytes } = fakePlan(tmpDir());
  return {
    image: { repository: '127.0.0.1:5000/lenet-triton', digest: `sha256:${h('triton image')}`, tags: ['127.0.0.1:5000/lenet-triton:sha-1234567'] },
    runtime: 'triton',
    gpu: true,
    created: CREATED,
    model: { name: 'lenet', file: '/models/lenet/1/model.plan', sha256: sha256(bytes), lineage: modelLineage(file, bytes), parity: 'pass' },
    base: { name: 'nvcr.io/nvidia/tritonserver:24.10-py3', digest: `sha256:${h('tritonserver')}` },
    triton: { release: '24.10', platform: 'tensorrt_plan', config: { file: '/models/lenet/config.pbtxt', sha256: h('config') } },
  };
}

describe('bundledPackages: the npm packages of dist/licenses.txt', () => {
  const SEP = '='.repeat(80);
  const list = (...sections: string[]) => sections.map((s) => `${s}\n\nlicense text\n`).join(`\n${SEP}\n\n`);
  test.each([
    ['one package', list('adm-zip@0.6.1 (MIT)'), [{ name: 'adm-zip', version: '0.6.1', license: 'MIT' }]],
    [
      'scoped names and two versions of one package',
      list('@actions/http-client@3.0.2 (MIT)', '@actions/http-client@4.0.1 (MIT)'),
      [
        { name: '@actions/http-client', version: '3.0.2', license: 'MIT' },
        { name: '@actions/http-client', version: '4.0.1', license: 'MIT' },
      ],
    ],
    ['an SPDX expression', list('x@1.0.0 ((MIT OR Apache-2.0))'), [{ name: 'x', version: '1.0.0', license: '(MIT OR Apache-2.0)' }]],
    ['a license the package does not name', list('y@2.0.0-rc.1 (UNKNOWN)'), [{ name: 'y', version: '2.0.0-rc.1', license: 'UNKNOWN' }]],
    ['"SEE LICENSE IN"', list('z@1.0.0 (SEE LICENSE IN LICENSE.md)'), [{ name: 'z', version: '1.0.0', license: 'SEE LICENSE IN LICENSE.md' }]],
    [
      'CRLF line ends',
      list('a@1.0.0 (ISC)', 'b@2.0.0 (BlueOak-1.0.0)').replace(/\n/g, '\r\n'),
      [
        { name: 'a', version: '1.0.0', license: 'ISC' },
        { name: 'b', version: '2.0.0', license: 'BlueOak-1.0.0' },
      ],
    ],
    [
      'a shorter line of = inside a license text is not a separator',
      `a@1.0.0 (MIT)\n\n${'='.repeat(40)}\ntext\n`,
      [{ name: 'a', version: '1.0.0', license: 'MIT' }],
    ],
    ['nothing', '', []],
  ])('%s', (_name, text, want) => {
    expect(bundledPackages(text)).toEqual(want);
  });

  test('a section that does not open with name@version (license) is an error, not a shorter list', () => {
    expect(() => bundledPackages(list('adm-zip@0.6.1 (MIT)', 'just some text'))).toThrow(ModelshipError);
    expect(() => bundledPackages(list('adm-zip@0.6.1 (MIT)', 'just some text'))).toThrow(
      /section 2: expected "name@version \(license\)", got "just some text"/,
    );
  });

  test('the real dist/licenses.txt: one package per section, each name@version once', () => {
    const text = fs.readFileSync(DIST_LICENSES, 'utf8');
    const pkgs = bundledPackages(text);
    const sections = text.split('\n').filter((l) => l === '='.repeat(80)).length + 1;
    expect(pkgs).toHaveLength(sections);
    expect(new Set(pkgs.map((p) => `${p.name}@${p.version}`)).size).toBe(pkgs.length);
    expect(pkgs).toContainEqual({ name: 'onnxruntime-node', version: '1.30.0', license: 'MIT' });
    expect(pkgs).toContainEqual({ name: '@actions/core', version: expect.any(String), license: 'MIT' });
  });
});

describe('modelLineage: what the model file and its compile record say', () => {
  test('a converted and compiled ONNX model: the Caffe files by sha256, the compile record of this very file', () => {
    const l = modelLineage(artifact, fs.readFileSync(artifact));
    expect(l.format).toBe('onnx');
    expect(l.onnxMetadata).toMatchObject({
      'modelship.caffemodel_sha256': sha256(fs.readFileSync(path.join(LENET, 'weights.caffemodel'))),
      'modelship.prototxt_sha256': sha256(fs.readFileSync(path.join(LENET, 'deploy.prototxt'))),
      'modelship.converter_version': VERSION,
      'modelship.net_name': 'LeNet',
    });
    expect(l.compile).toMatchObject({
      format: 'onnxruntime',
      sha256: sha256(fs.readFileSync(artifact)),
      source: { sha256: sha256(fs.readFileSync(converted)) },
      onnxruntime: { executionProvider: 'cpu', graphOptimizationLevel: 'extended', precision: 'float32' },
      parity: { status: 'pass', batches: [1, 2] },
    });
    expect(l.inputs).toEqual([{ name: 'data', shape: ['N', 1, 28, 28], elemType: 1 }]);
    expect(l.warnings).toEqual([]);
  });

  test('the converted model alone: its metadata, no compile record', () => {
    const l = modelLineage(converted, fs.readFileSync(converted));
    expect(l.onnxMetadata?.['modelship.caffemodel_sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(l.compile).toBeUndefined();
  });

  test("another artifact's record beside the model is left out, with a warning", () => {
    const dir = tmpDir();
    const copy = path.join(dir, 'model.onnx');
    fs.copyFileSync(converted, copy);
    fs.copyFileSync(`${artifact}.json`, `${copy}.json`);
    const l = modelLineage(copy, fs.readFileSync(copy));
    expect(l.compile).toBeUndefined();
    expect(l.warnings.join('\n')).toMatch(/compile record of another artifact/);
  });

  test('a TensorRT plan: no ONNX metadata, its record', () => {
    const { file, bytes } = fakePlan(tmpDir());
    const l = modelLineage(file, bytes);
    expect(l).toMatchObject({ format: 'tensorrt', compile: { format: 'tensorrt', tensorrt: { tensorrtVersion: '10.5.0' } } });
    expect(l.onnxMetadata).toBeUndefined();
  });

  test('a record that is not JSON, or a model that is neither ONNX nor a plan, is bad input', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'm.onnx');
    fs.copyFileSync(converted, f);
    fs.writeFileSync(`${f}.json`, '{ not json');
    expect(() => modelLineage(f, fs.readFileSync(f))).toThrow(ModelshipError);
    const g = path.join(dir, 'junk.onnx');
    fs.writeFileSync(g, 'junk');
    expect(() => modelLineage(g, fs.readFileSync(g))).toThrow(/not an ONNX model/);
  });
});

describe('buildMlBom: the CycloneDX 1.6 ML-BOM of an image', () => {
  test('a modelship-runtime GPU image: the image, the model and its lineage, the base, Node.js, every bundled package, ORT and the CUDA provider', () => {
    const facts = modelshipFacts();
    const bom = buildMlBom(facts).document as Json;
    expect(bom).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1 });
    expect(bom.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // metadata: when, by what, about which image
    expect(bom.metadata.timestamp).toBe(CREATED);
    expect(bom.metadata.tools.components).toContainEqual(expect.objectContaining({ name: 'modelship', version: VERSION }));
    expect(bom.metadata.component).toMatchObject({
      type: 'container',
      'bom-ref': 'image',
      name: 'ghcr.io/acme/lenet',
      version: IMAGE_DIGEST,
      purl: `pkg:oci/lenet@${IMAGE_DIGEST}?repository_url=ghcr.io%2Facme%2Flenet`,
    });
    expect(sha256Of(bom.metadata.component)).toBe(IMAGE_DIGEST.slice(7));
    expect(prop(bom.metadata.component, PROPERTY.imageTag).sort()).toEqual(facts.image.tags.slice().sort());
    expect(prop(bom.metadata, PROPERTY.runtime)).toEqual(['modelship']);

    // the model: its hash, parity, how it was made, its card, its pedigree back to the Caffe files
    const model = byRef(bom, 'model');
    expect(model).toMatchObject({ type: 'machine-learning-model', name: 'lenet' });
    expect(sha256Of(model)).toBe(sha256(fs.readFileSync(artifact)));
    expect(prop(model, PROPERTY.parity)).toEqual(['pass']);
    expect(prop(model, 'modelship:compile:parity:status')).toEqual(['pass']);
    expect(Number(prop(model, 'modelship:compile:parity:max-abs-diff')[0])).toBeLessThan(1e-5);
    expect(prop(model, 'modelship:compile:onnxruntime-version')).toEqual(['1.30.0']);
    expect(prop(model, PROPERTY.converterVersion)).toEqual([VERSION]);
    expect(model.modelCard.modelParameters).toEqual({
      modelArchitecture: 'LeNet',
      inputs: [{ format: 'data: float32 [N, 1, 28, 28]' }],
      outputs: [{ format: 'prob: float32 [N, 10]' }],
    });
    expect(model.modelCard.quantitativeAnalysis.performanceMetrics).toContainEqual(
      expect.objectContaining({ type: 'max |Δ| against Caffe', value: expect.stringMatching(/^\d/), slice: 'the reference batches of 1, 2' }),
    );
    const [onnx] = model.pedigree.ancestors as Json[];
    expect(onnx).toMatchObject({ type: 'machine-learning-model', 'bom-ref': 'model:source:onnx' });
    expect(sha256Of(onnx)).toBe(sha256(fs.readFileSync(converted)));
    expect(model.pedigree.notes).toMatch(/^optimized by ONNX Runtime 1\.30\.0 \(extended, for the cpu execution provider, float32\)/);
    const caffe = Object.fromEntries((onnx.pedigree.ancestors as Json[]).map((a) => [a.name, sha256Of(a)]));
    expect(caffe).toEqual({
      caffemodel: sha256(fs.readFileSync(path.join(LENET, 'weights.caffemodel'))),
      prototxt: sha256(fs.readFileSync(path.join(LENET, 'deploy.prototxt'))),
    });
    expect(onnx.pedigree.notes).toBe(`converted from Caffe (caffe-V2, net "LeNet") to ONNX by modelship ${VERSION}`);

    // the base image by digest
    expect(byRef(bom, 'base-image')).toMatchObject({
      type: 'container',
      name: 'nvcr.io/nvidia/cuda',
      version: BASE_DIGEST,
      purl: `pkg:oci/cuda@${BASE_DIGEST}?repository_url=nvcr.io%2Fnvidia%2Fcuda&tag=12.6.3-cudnn-runtime-ubuntu24.04`,
    });
    // Node.js: the release, its binary's hash, where it came from
    const node = byRef(bom, 'node');
    expect(node).toMatchObject({
      type: 'platform',
      name: 'node',
      version: '24.22.3',
      purl: expect.stringMatching(/^pkg:generic\/node@24\.22\.3\?download_url=https%3A/),
    });
    expect(sha256Of(node)).toBe(h('node'));
    // every bundled npm package, with its purl and license
    const npm = components(bom).filter((c) => c.purl?.startsWith('pkg:npm/'));
    expect(npm).toHaveLength(facts.npmPackages!.length);
    expect(npm.find((c) => c.name === 'core' && c.group === '@actions')).toMatchObject({
      type: 'library',
      purl: expect.stringMatching(/^pkg:npm\/%40actions\/core@/),
      licenses: [{ license: { id: 'MIT' } }],
    });
    expect(npm.every((c) => c.version && c['bom-ref'] === c.purl)).toBe(true);
    // ONNX Runtime's native libraries and the CUDA provider's, each file by its hash
    const ort = byRef(bom, 'onnxruntime');
    expect(ort).toMatchObject({ version: '1.30.0', purl: 'pkg:github/microsoft/onnxruntime@v1.30.0' });
    expect((ort.components as Json[]).map((c) => c.name).sort()).toEqual(facts.onnxruntime!.libraries.map((l) => l.file).sort());
    const provider = byRef(bom, 'onnxruntime-cuda-provider');
    expect(provider).toMatchObject({ name: 'Microsoft.ML.OnnxRuntime.Gpu.Linux', purl: 'pkg:nuget/Microsoft.ML.OnnxRuntime.Gpu.Linux@1.30.0' });
    expect(sha256Of(provider)).toBe(h('nupkg'));
    expect(Object.fromEntries((provider.components as Json[]).map((c) => [c.name, sha256Of(c)]))).toEqual({
      'libonnxruntime_providers_cuda.so': h('cuda'),
      'libonnxruntime_providers_shared.so': h('shared'),
    });
    // the graph: image → its parts; the server → its packages; the binding → ORT → the provider
    const deps = Object.fromEntries((bom.dependencies as Json[]).map((d) => [d.ref, d.dependsOn ?? []]));
    expect(deps.image).toEqual(['base-image', 'model', 'modelship-server', 'node', 'onnxruntime-cuda-provider']);
    expect(deps['modelship-server']).toHaveLength(npm.length);
    expect(deps['pkg:npm/onnxruntime-node@1.30.0']).toEqual(['onnxruntime']);
    expect(deps.onnxruntime).toEqual(['onnxruntime-cuda-provider']);
    // every hash anywhere (nested files, pedigree included) is a lower-case SHA-256 or SHA-512 of its length
    const all = [...JSON.stringify(bom).matchAll(/\{"alg":"([^"]+)","content":"([^"]+)"\}/g)].map(([, alg, content]) => `${alg} ${content.length}`);
    expect(all.length).toBeGreaterThan(10);
    expect(new Set(all)).toEqual(new Set(['SHA-256 64']));
  });

  test('a Triton image: the Triton base by digest and release, the plan and its lineage, config.pbtxt; no npm packages', () => {
    const facts = tritonFacts();
    const bom = buildMlBom(facts).document as Json;
    expect(bom.metadata.component).toMatchObject({ name: '127.0.0.1:5000/lenet-triton', purl: expect.stringMatching(/^pkg:oci\/lenet-triton@sha256:/) });
    expect(prop(bom.metadata, PROPERTY.runtime)).toEqual(['triton']);
    const base = byRef(bom, 'base-image');
    expect(base).toMatchObject({ name: 'nvcr.io/nvidia/tritonserver', version: facts.base.digest, purl: expect.stringContaining('&tag=24.10-py3') });
    expect(prop(base, PROPERTY.tritonRelease)).toEqual(['24.10']);
    const config = byRef(bom, 'triton-config');
    expect(config).toMatchObject({ type: 'file', name: '/models/lenet/config.pbtxt' });
    expect(sha256Of(config)).toBe(h('config'));
    expect(prop(config, PROPERTY.tritonPlatform)).toEqual(['tensorrt_plan']);
    const model = byRef(bom, 'model');
    expect(sha256Of(model)).toBe(facts.model.sha256);
    expect(prop(model, PROPERTY.modelFormat)).toEqual(['tensorrt']);
    expect(prop(model, 'modelship:compile:tensorrt-version')).toEqual(['10.5.0']);
    expect(prop(model, 'modelship:compile:precision')).toEqual(['float16']);
    // a plan carries no ONNX metadata: its pedigree is the ONNX model it was built from
    expect(model.pedigree.ancestors).toHaveLength(1);
    expect(sha256Of(model.pedigree.ancestors[0])).toBe(sha256(fs.readFileSync(converted)));
    expect(model.pedigree.notes).toMatch(/^built into a TensorRT 10\.5\.0 plan on NVIDIA L4/);
    expect(model.modelCard.considerations.technicalLimitations).toContain(
      'a TensorRT 10.5.0 plan: runs only with that TensorRT, on GPUs of compute capability 8.9',
    );
    expect(components(bom).filter((c) => c.purl?.startsWith('pkg:npm/'))).toEqual([]);
    expect(
      components(bom)
        .map((c) => c['bom-ref'])
        .sort(),
    ).toEqual(['base-image', 'model', 'triton-config']);
    expect(bom.dependencies).toContainEqual({ ref: 'image', dependsOn: ['base-image', 'model', 'triton-config'] });
  });

  test("an encrypted model: the hash is the model's, the stored file and its hash are recorded", () => {
    const facts = modelshipFacts();
    facts.model.encrypted = { file: '/models/lenet.ort.onnx.enc', sha256: h('ciphertext') };
    const model = byRef(buildMlBom(facts).document, 'model');
    expect(sha256Of(model)).toBe(facts.model.sha256);
    expect(prop(model, PROPERTY.modelEncrypted)).toEqual(['true']);
    expect(prop(model, PROPERTY.modelEncryptedSha256)).toEqual([h('ciphertext')]);
    expect(prop(model, PROPERTY.modelFile)).toEqual(['/models/lenet.ort.onnx.enc']);
  });

  test('deterministic: equal facts give equal bytes, whatever the order of the lists; the serial number follows the image', () => {
    const a = modelshipFacts();
    const b = modelshipFacts();
    b.npmPackages = b.npmPackages!.slice().reverse();
    b.image.tags = b.image.tags.slice().reverse();
    b.onnxruntime!.libraries.reverse();
    const one = buildMlBom(a).json;
    expect(buildMlBom(b).json).toBe(one);
    expect(buildMlBom(a).json).toBe(one);
    const other = buildMlBom({ ...a, image: { ...a.image, digest: `sha256:${h('another image')}` } }).document;
    expect(other.serialNumber).not.toBe(JSON.parse(one).serialNumber);
    const given = 'urn:uuid:01234567-89ab-4def-8123-456789abcdef';
    expect(buildMlBom({ ...a, serialNumber: given }).document.serialNumber).toBe(given);
  });

  test('facts that would make an invalid BOM are bad input', () => {
    const f = modelshipFacts();
    expect(() => buildMlBom({ ...f, model: { ...f.model, sha256: 'abc' } })).toThrow(/the model sha256 is not a sha256/);
    expect(() => buildMlBom({ ...f, image: { ...f.image, digest: 'sha256:xyz' } })).toThrow(ModelshipError);
    expect(() => buildMlBom({ ...f, created: 'yesterday' })).toThrow(ModelshipError);
    expect(() => buildMlBom({ ...f, model: { ...f.model, name: '' } })).toThrow(/model-name/);
  });

  test('what the attestation policy of smoke and rollout reads from it (src/shared/verify-image.ts)', () => {
    const facts = modelshipFacts();
    const statement = { predicate: buildMlBom(facts).document } as unknown as InTotoStatement;
    const checks = parsePolicy(`parity=pass,model-sha256=${facts.model.sha256},model-name=lenet,runtime=modelship`);
    expect(evaluatePolicy(checks, { cyclonedx: [statement] }).filter((r) => !r.pass)).toEqual([]);
    const triton = { predicate: buildMlBom(tritonFacts()).document } as unknown as InTotoStatement;
    expect(evaluatePolicy(parsePolicy('runtime=modelship'), { cyclonedx: [triton] })[0]).toMatchObject({ pass: false, found: [['triton']] });
  });
});

describe('provenanceStatement: in-toto v1, SLSA provenance v1', () => {
  const GITHUB_ENV = {
    GITHUB_ACTIONS: 'true',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_REPOSITORY: 'acme/models',
    GITHUB_WORKFLOW_REF: 'acme/models/.github/workflows/deploy.yml@refs/heads/main',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '2',
    GITHUB_EVENT_NAME: 'push',
    GITHUB_REPOSITORY_ID: '123',
    GITHUB_REPOSITORY_OWNER_ID: '456',
    RUNNER_ENVIRONMENT: 'github-hosted',
  };
  const SHA = 'a'.repeat(40);
  /** the image stage's config, secrets included: only the inputs that shaped the image may come out */
  const cfg = (): ImageParameters & Record<string, unknown> => ({
    image: 'ghcr.io/acme/lenet',
    model: 'models/lenet.ort.onnx',
    modelName: 'lenet',
    runtime: 'modelship',
    gpu: true,
    parity: 'pass',
    encryptModel: true,
    modelKey: 'THE-MODEL-KEY-00112233445566778899aabbccddeeff',
    registryPassword: 'THE-REGISTRY-PASSWORD',
    apiKeyRequired: true,
    cache: 'auto',
    push: true,
    baseImage: `${BASE}@${BASE_DIGEST}`,
    tritonImage: 'nvcr.io/nvidia/tritonserver:24.10-py3',
    nodeVersion: '24.22.3',
    nodeBinary: '',
    nodeMirror: 'https://user:MIRROR-TOKEN@mirror.example/node?sig=MIRROR-SIG',
    providerPackage: '',
    nugetSource: 'https://api.nuget.org/v3/index.json',
  });
  const params = (inputs = cfg()) => ({
    inputs,
    git: { source: 'https://github.com/acme/models', sha: SHA, ref: 'refs/heads/main' },
    buildxDriver: 'docker-container',
    startedOn: '2026-01-02T03:00:00Z',
    finishedOn: '2026-01-02T03:04:05Z',
    hostname: 'build-host-1',
  });

  test('on GitHub: the workflow run is the builder; the inputs, the source commit and every material by digest', () => {
    const facts = modelshipFacts();
    const s = provenanceStatement(facts, params(), GITHUB_ENV);
    expect(s).toMatchObject({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: 'ghcr.io/acme/lenet', digest: { sha256: IMAGE_DIGEST.slice(7) } }],
      predicateType: 'https://slsa.dev/provenance/v1',
    });
    const p = s.predicate;
    expect(p.buildDefinition.buildType).toBe(BUILD_TYPE);
    expect(p.runDetails.builder.id).toBe('https://github.com/acme/models/.github/workflows/deploy.yml@refs/heads/main');
    expect(p.runDetails.metadata).toEqual({
      invocationId: 'https://github.com/acme/models/actions/runs/4242/attempts/2',
      startedOn: '2026-01-02T03:00:00Z',
      finishedOn: '2026-01-02T03:04:05Z',
    });
    expect(p.buildDefinition.externalParameters).toEqual({
      inputs: {
        image: 'ghcr.io/acme/lenet',
        model: 'models/lenet.ort.onnx',
        'model-name': 'lenet',
        runtime: 'modelship',
        gpu: true,
        parity: 'pass',
        'encrypt-model': true,
        cache: 'auto',
        push: true,
        'base-image': `${BASE}@${BASE_DIGEST}`,
        'node-version': '24.22.3',
        'node-mirror': 'https://redacted@mirror.example/node?redacted',
        'nuget-source': 'https://api.nuget.org/v3/index.json',
      },
      workflow: { repository: 'https://github.com/acme/models', ref: 'refs/heads/main', path: '.github/workflows/deploy.yml' },
    });
    expect(p.buildDefinition.internalParameters).toEqual({
      modelship: VERSION,
      buildxDriver: 'docker-container',
      github: { event_name: 'push', repository_id: '123', repository_owner_id: '456', runner_environment: 'github-hosted' },
    });
    // never a secret: the model key, the registry password, a token in a URL
    expect(JSON.stringify(s)).not.toMatch(/THE-MODEL-KEY|THE-REGISTRY-PASSWORD|MIRROR-TOKEN|MIRROR-SIG|modelKey|apiKey/);
    const deps = p.buildDefinition.resolvedDependencies;
    const digestOf = (role: RegExp) => deps.find((d) => role.test(d.annotations?.role ?? ''))?.digest;
    expect(deps[0]).toEqual({ uri: 'git+https://github.com/acme/models@refs/heads/main', digest: { gitCommit: SHA } });
    expect(digestOf(/^model$/)).toEqual({ sha256: facts.model.sha256 });
    expect(digestOf(/^onnx/)).toEqual({ sha256: sha256(fs.readFileSync(converted)) });
    expect(digestOf(/caffemodel/)).toEqual({ sha256: sha256(fs.readFileSync(path.join(LENET, 'weights.caffemodel'))) });
    expect(digestOf(/prototxt/)).toEqual({ sha256: sha256(fs.readFileSync(path.join(LENET, 'deploy.prototxt'))) });
    expect(deps.find((d) => d.annotations?.role === 'base image')).toMatchObject({
      uri: expect.stringMatching(/^pkg:oci\/cuda@sha256:/),
      digest: { sha256: BASE_DIGEST.slice(7) },
    });
    expect(deps.find((d) => d.name === 'node')).toMatchObject({ digest: { sha256: h('node') }, downloadLocation: NODE_URL });
    expect(deps.find((d) => d.name === 'Microsoft.ML.OnnxRuntime.Gpu.Linux')).toMatchObject({
      uri: 'pkg:nuget/Microsoft.ML.OnnxRuntime.Gpu.Linux@1.30.0',
      digest: { sha256: h('nupkg') },
    });
  });

  test('off GitHub: the CLI of this version on its host; no invocation id', () => {
    const s = provenanceStatement(modelshipFacts(), params(), { HOME: '/root', GITHUB_REPOSITORY: 'acme/models' });
    expect(s.predicate.runDetails.builder).toEqual({ id: `${CLI_BUILDER}@${VERSION}`, version: { modelship: VERSION } });
    expect(s.predicate.runDetails.builder.id).toBe(`https://github.com/org/modelship/cli@${VERSION}`);
    expect(s.predicate.runDetails.metadata).toEqual({ startedOn: '2026-01-02T03:00:00Z', finishedOn: '2026-01-02T03:04:05Z' });
    expect(s.predicate.buildDefinition.internalParameters).toEqual({ modelship: VERSION, buildxDriver: 'docker-container', hostname: 'build-host-1' });
    expect(s.predicate.buildDefinition.externalParameters.workflow).toBeUndefined();
  });

  test('a Triton image: its own inputs, config.pbtxt a byproduct', () => {
    const inputs = { ...cfg(), runtime: 'triton' as const, maxBatchSize: 8, maxQueueDelayUs: 1000 };
    const s = provenanceStatement(tritonFacts(), params(inputs), {});
    const got = s.predicate.buildDefinition.externalParameters.inputs as Record<string, unknown>;
    expect(got).toMatchObject({ runtime: 'triton', 'triton-image': 'nvcr.io/nvidia/tritonserver:24.10-py3', 'max-batch-size': 8, 'max-queue-delay-us': 1000 });
    expect(got['base-image']).toBeUndefined();
    expect(got['node-version']).toBeUndefined();
    expect(s.predicate.runDetails.byproducts).toEqual([
      { name: 'config.pbtxt', digest: { sha256: h('config') }, annotations: { path: '/models/lenet/config.pbtxt' } },
    ]);
  });

  test('no image digest, no statement', () => {
    const f = modelshipFacts();
    expect(() => provenanceStatement({ ...f, image: { ...f.image, digest: undefined } }, params(), {})).toThrow(/no digest/);
  });

  test('what the attestation policy reads from it: builder, build type, source revision', () => {
    const s = provenanceStatement(modelshipFacts(), params(), GITHUB_ENV) as unknown as InTotoStatement;
    const checks = parsePolicy(`builder-id=${GITHUB_ENV.GITHUB_SERVER_URL}/${GITHUB_ENV.GITHUB_WORKFLOW_REF},build-type=${BUILD_TYPE},source-revision=${SHA}`);
    expect(evaluatePolicy(checks, { slsaprovenance1: [s] }).filter((r) => !r.pass)).toEqual([]);
  });

  test.each([
    ['https://user:pw@host/path?token=x', 'https://redacted@host/path?redacted'],
    ['https://host/a.nupkg', 'https://host/a.nupkg'],
    ['/local/a.nupkg', '/local/a.nupkg'],
  ])('redactUrl(%s)', (url, want) => {
    expect(redactUrl(url)).toBe(want);
  });
});
