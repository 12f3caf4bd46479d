import { buildMlBom, PROPERTY, type ImageFacts } from '../src/image/mlbom';
import { provenanceStatement } from '../src/image/provenance';
import { evaluatePolicy, parsePolicy, POLICY_RULES } from '../src/shared/verify-image';
import type { InTotoStatement } from '../src/shared/cosign';

// attestation-policy's rules read what the image stage attests: the ML-BOM of src/image/mlbom.ts and the SLSA
// provenance of src/image/provenance.ts, built here from one set of facts (no registry, no cosign). A rename on
// either side fails here, not in a deploy. (The rules on hand-made predicates: test/cosign.test.ts.)

const MODEL_SHA = 'cd'.repeat(32);
const COMMIT = 'a'.repeat(40);
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const WORKFLOW = 'org/repo/.github/workflows/deploy.yml@refs/heads/main';

const facts = (parity: string, runtime: 'modelship' | 'triton' = 'modelship'): ImageFacts => ({
  image: { repository: 'ghcr.io/org/lenet', digest: DIGEST, tags: ['ghcr.io/org/lenet:main'] },
  runtime,
  created: '2026-01-02T03:04:05Z',
  model: { name: 'lenet', file: '/models/lenet/1/model.onnx', sha256: MODEL_SHA, parity },
  base: { name: 'debian:bookworm', digest: `sha256:${'ef'.repeat(32)}` },
});

const statement = (predicateType: string, predicate: unknown): InTotoStatement => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'ghcr.io/org/lenet', digest: { sha256: DIGEST.slice(7) } }],
  predicateType,
  predicate,
});

function attestations(parity: string, runtime: 'modelship' | 'triton' = 'modelship') {
  const f = facts(parity, runtime);
  const bom = buildMlBom(f).document;
  const provenance = provenanceStatement(
    f,
    {
      inputs: { image: 'ghcr.io/org/lenet', model: 'lenet.onnx', modelName: 'lenet', runtime, gpu: false, parity, encryptModel: false, cache: '', push: true },
      git: { source: 'https://github.com/org/repo', sha: COMMIT, ref: 'refs/heads/main' },
      startedOn: '2026-01-02T03:00:00Z',
      finishedOn: '2026-01-02T03:04:05Z',
    },
    { GITHUB_ACTIONS: 'true', GITHUB_REPOSITORY: 'org/repo', GITHUB_RUN_ID: '1', GITHUB_WORKFLOW_REF: WORKFLOW, GITHUB_SERVER_URL: 'https://github.com' },
  );
  return {
    cyclonedx: [statement('https://cyclonedx.org/bom', bom)],
    slsaprovenance1: [statement(provenance.predicateType, provenance.predicate)],
    buildType: provenance.predicate.buildDefinition.buildType,
  };
}

describe("attestation-policy on the image stage's own ML-BOM and provenance", () => {
  test("the property names the rules read are the BOM builder's", () => {
    expect(PROPERTY.parity).toBe('modelship:parity:status');
    expect(PROPERTY.runtime).toBe('modelship:runtime');
  });

  test('every rule finds its value', () => {
    const a = attestations('pass');
    const checks = parsePolicy(
      `parity=pass,model-sha256=${MODEL_SHA},model-name=lenet,runtime=modelship,builder-id=https://github.com/${WORKFLOW},build-type=${a.buildType},source-revision=${COMMIT}`,
    );
    expect(checks.map((c) => c.key).sort()).toEqual(POLICY_RULES.map((r) => r.key).sort());
    const results = evaluatePolicy(checks, a);
    expect(results.filter((r) => !r.pass)).toEqual([]);
  });

  test('and fails on what differs: the parity verdict, the model, the runtime, the commit', () => {
    const results = evaluatePolicy(
      parsePolicy(`parity=pass,model-sha256=${'0'.repeat(64)},runtime=modelship,source-revision=${'b'.repeat(40)}`),
      attestations('fail', 'triton'),
    );
    expect(results.map((r) => [r.key, r.pass])).toEqual([
      ['parity', false],
      ['model-sha256', false],
      ['runtime', false],
      ['source-revision', false],
    ]);
    expect(results[0].found).toEqual([['fail']]);
    expect(results[2].found).toEqual([['triton']]);
  });
});
