import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';
import { buildMlBom, bundledPackages, ImageFacts, modelLineage } from '../src/image/mlbom';
import { sha256 } from '../src/util/fsx';

// The image stage's ML-BOMs (src/image/mlbom.ts) against the CycloneDX 1.6 JSON schema, checked by CycloneDX's own
// Python library (cyclonedx-python-lib's JsonStrictValidator: no property the schema does not define) — an
// implementation independent of the JavaScript library that wrote them, and the judge of the modelCard and pedigree
// that modelship adds to that library's output. Its venv, .venv-cyclonedx/, is made by scripts/test.sh from
// test/requirements-cyclonedx.txt; without it the file is skipped saying so (under CI=true: a failure).

const VENV = path.join(REPO, '.venv-cyclonedx');
const PYTHON = path.join(VENV, 'bin/python');
const MAKE_VENV =
  'python3 -m venv .venv-cyclonedx && .venv-cyclonedx/bin/pip install --only-binary=:all: -r test/requirements-cyclonedx.txt && cp test/requirements-cyclonedx.txt .venv-cyclonedx/requirements.txt (scripts/test.sh does)';

/** '' when the validator runs here; else what is missing and how to make it. */
function validatorMissing(): string {
  if (!fs.existsSync(PYTHON)) return `.venv-cyclonedx is missing: ${MAKE_VENV}`;
  const r = spawnSync(PYTHON, ['-c', 'from cyclonedx.validation.json import JsonStrictValidator; import jsonschema'], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0)
    return `.venv-cyclonedx has no cyclonedx-python-lib[json-validation] (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}): ${MAKE_VENV}`;
  return '';
}

/** `describe` when the validator is there; else skipped with the reason (locally) or a failing test (CI=true). */
function validatorDescribe(): jest.Describe {
  const why = validatorMissing();
  if (!why) return describe;
  const file = path.relative(REPO, expect.getState().testPath ?? 'this file');
  if (/^(true|1)$/i.test(process.env.CI ?? '')) {
    test("CycloneDX's validator (.venv-cyclonedx) is there", () => {
      throw new Error(`${file}: ${why} (under CI=true a tools test never skips)`);
    });
  } else {
    process.stderr.write(`skipped ${file}: ${why}\n`);
    test.skip(`skipped: ${why}`, () => undefined);
  }
  return describe.skip;
}

/** argv: BOM files; prints, for each, the validator's errors (all of them) as a JSON list of messages */
const VALIDATE = `
import json, sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
v = JsonStrictValidator(SchemaVersion.V1_6)
out = {}
for f in sys.argv[1:]:
    errors = v.validate_str(open(f, encoding='utf-8').read(), all_errors=True)
    out[f] = [e.data.message if hasattr(e.data, 'message') else str(e) for e in (errors or [])]
print(json.dumps(out))
`;

/** The validator's errors for each document ([] = valid CycloneDX 1.6) */
function validate(docs: Record<string, string>): Record<string, string[]> {
  const dir = tmpDir();
  const files = Object.entries(docs).map(([name, json]) => {
    const f = path.join(dir, `${name}.cdx.json`);
    fs.writeFileSync(f, json);
    return [name, f] as const;
  });
  const r = spawnSync(PYTHON, ['-c', VALIDATE, ...files.map(([, f]) => f)], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`the validator failed (exit ${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as Record<string, string[]>;
  return Object.fromEntries(files.map(([name, f]) => [name, out[f]]));
}

const LENET = path.join(FIXTURES, 'lenet');
const h = (s: string) => sha256(s);

/** LeNet converted and compiled by the real stages; the facts of a modelship GPU image and of a Triton image of it */
async function imageFacts(): Promise<{ modelship: ImageFacts; triton: ImageFacts }> {
  const dir = tmpDir();
  const onnx = path.join(dir, 'lenet.onnx');
  expect(
    (await runCli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', path.join(LENET, 'weights.caffemodel'), '--out', onnx])).code,
  ).toBe(0);
  const c = await runCli(['compile', '--model', onnx, '--reference', LENET, '--json']);
  expect(c.code).toBe(0);
  const artifact = c.json()['artifact-path'] as string;
  const bytes = fs.readFileSync(artifact);
  const model = { name: 'lenet', sha256: sha256(bytes), lineage: modelLineage(artifact, bytes), parity: 'pass' };
  const modelship: ImageFacts = {
    image: { repository: 'ghcr.io/acme/lenet', digest: `sha256:${h('image')}`, tags: ['ghcr.io/acme/lenet:sha-1234567'] },
    runtime: 'modelship',
    gpu: true,
    created: '2026-01-02T03:04:05.000Z',
    model: { ...model, file: '/models/lenet.ort.onnx', encrypted: { file: '/models/lenet.ort.onnx.enc', sha256: h('ciphertext') } },
    base: { name: 'nvcr.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04', digest: `sha256:${h('base')}` },
    node: { version: '24.22.3', sha256: h('node'), source: 'https://nodejs.org/dist/v24.22.3/node-v24.22.3-linux-x64.tar.gz' },
    npmPackages: bundledPackages(fs.readFileSync(path.join(REPO, 'dist/licenses.txt'), 'utf8')),
    bundleSha256: h('bundle'),
    onnxruntime: { version: '1.30.0', libraries: [{ file: '/opt/modelship/dist/bin/napi-v6/linux/x64/libonnxruntime.so.1', sha256: h('ort') }] },
    providers: {
      package: 'Microsoft.ML.OnnxRuntime.Gpu.Linux',
      version: '1.30.0',
      sha256: h('nupkg'),
      sha512: 'ab'.repeat(64),
      source: 'https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.gpu.linux/1.30.0/microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg',
      files: [{ file: 'libonnxruntime_providers_cuda.so', sha256: h('cuda') }],
    },
  };
  const triton: ImageFacts = {
    image: { repository: '127.0.0.1:5000/lenet-triton', digest: `sha256:${h('triton image')}`, tags: ['127.0.0.1:5000/lenet-triton:main'] },
    runtime: 'triton',
    gpu: false,
    created: '2026-01-02T03:04:05.000Z',
    model: { ...model, file: '/models/lenet/1/model.onnx' },
    base: { name: 'nvcr.io/nvidia/tritonserver:24.10-py3', digest: `sha256:${h('tritonserver')}` },
    triton: { release: '24.10', platform: 'onnxruntime_onnx', config: { file: '/models/lenet/config.pbtxt', sha256: h('config') } },
  };
  return { modelship, triton };
}

validatorDescribe()("the ML-BOM is CycloneDX 1.6, by CycloneDX's own validator (cyclonedx-python-lib)", () => {
  let facts: { modelship: ImageFacts; triton: ImageFacts };
  beforeAll(async () => {
    facts = await imageFacts();
  }, 120_000);

  test('the BOMs of a modelship GPU image and of a Triton image are valid, modelCard and pedigree included', () => {
    const modelship = buildMlBom(facts.modelship);
    const triton = buildMlBom(facts.triton);
    // (what is checked: the parts modelship adds to the library's output are there)
    const model = (modelship.document.components as Record<string, unknown>[]).find((c) => c['bom-ref'] === 'model')!;
    expect(Object.keys(model)).toEqual(expect.arrayContaining(['modelCard', 'pedigree', 'hashes', 'properties']));
    expect(validate({ modelship: modelship.json, triton: triton.json })).toEqual({ modelship: [], triton: [] });
  });

  test('a broken BOM is rejected: the validator is really checking (a hash algorithm, the model card, a field 1.6 lacks)', () => {
    const bom = buildMlBom(facts.modelship).json;
    const broken = (edit: (doc: any) => void) => {
      const doc = JSON.parse(bom);
      edit(doc);
      return JSON.stringify(doc);
    };
    const model = (doc: any) => doc.components.find((c: any) => c['bom-ref'] === 'model');
    const got = validate({
      alg: broken((d) => (model(d).hashes[0].alg = 'SHA256')),
      approach: broken((d) => (model(d).modelCard.modelParameters.approach = { type: 'guesswork' })),
      extra: broken((d) => (model(d).pedigree.ancestry = [])),
      serial: broken((d) => (d.serialNumber = 'not-a-uuid')),
    });
    expect(got.alg.join('\n')).toMatch(/'SHA256' is not one of/);
    expect(got.approach.join('\n')).toMatch(/'guesswork' is not one of/);
    expect(got.extra.join('\n')).toMatch(/Additional properties are not allowed \('ancestry' was unexpected\)/);
    expect(got.serial.join('\n')).toMatch(/'not-a-uuid' does not match/);
  });
});
