import * as fs from 'fs';
import { tmpDir } from './helpers/caffe';
import { runCli } from './helpers/cli';
import { LAB } from './helpers/lab';
import { labDescribe } from './helpers/needs';
import { runId } from './helpers/shared';
import { cosignFlags, cosignRelease, generateKeyPair, pushTinyImage, supplyChainFiles } from './helpers/cosign';
import { installCosign, verifyAttestations, verifyImage, type Cosign, type Verifier } from '../src/shared/cosign';
import { verifyBeforeUse } from '../src/shared/verify-image';
import { ModelshipError } from '../src/util/errors';
import type { Logger } from '../src/stage';

// The sign stage with the real cosign (v3.1.3, .tools/bin/cosign, installed by the stage from a local stand-in for its
// release) against the lab's plain-HTTP registry, through the CLI (in process, as the action's inputs): a small image
// pushed, its ML-BOM and provenance made by the image stage's own builders, signed and attested by the stage with a
// key pair of cosign's own; then verified as smoke and rollout verify (verifyBeforeUse: the signature, both
// attestations and an attestation-policy on each). An image the stage signed with another key is refused, and a
// provenance of another image stops the stage before anything reaches the registry. No Rekor here: transparency-log
// false.
jest.setTimeout(300_000);

const describeLab = labDescribe(['docker', 'registry', 'cosign']);

const dir = tmpDir('modelship-sign-stage-lab-');
const REPO_ = `${LAB.registry}/modelship-test/sign-stage-${runId()}-${process.pid}`;
const PASSWORD = 'sign-stage-k1-Pa55';

const lines: string[] = [];
const log: Logger = { info: (l) => lines.push(l), warning: (l) => lines.push(`warning: ${l}`), group: (_n, fn) => fn() };

/** `x` with every ISO 8601 timestamp in one form (an instant is the same with or without .000). */
function sameInstants(x: unknown): unknown {
  if (typeof x === 'string') return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(x) ? new Date(x).toISOString() : x;
  if (Array.isArray(x)) return x.map(sameInstants);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, sameInstants(v)]));
  return x;
}

async function refused(p: Promise<unknown>): Promise<ModelshipError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ModelshipError) return e;
    throw e;
  }
  throw new Error('expected it to be refused');
}

describeLab('the sign stage against the lab registry (real cosign, key pairs, no transparency log)', () => {
  let release: Awaited<ReturnType<typeof cosignRelease>>;
  let cosign: Cosign;
  let k1: ReturnType<typeof generateKeyPair>;
  let k2: ReturnType<typeof generateKeyPair>;
  let k1Verifier: Verifier;

  beforeAll(async () => {
    release = await cosignRelease();
    cosign = await installCosign(release.source, log);
    k1 = generateKeyPair(dir, 'k1', PASSWORD);
    k2 = generateKeyPair(dir, 'k2', 'sign-stage-k2-password');
    k1Verifier = { kind: 'key', key: k1.pub };
  });
  afterAll(async () => {
    await release?.close();
  });

  /** The sign stage through the CLI, signing with `key` (PEM text, as from a secret). */
  const sign = (image: string, key: ReturnType<typeof generateKeyPair>, files: { mlBom?: string; provenance?: string }) =>
    runCli([
      'sign',
      '--image',
      image,
      ...(files.mlBom ? ['--ml-bom-file', files.mlBom] : []),
      ...(files.provenance ? ['--provenance-file', files.provenance] : []),
      '--sign',
      'key',
      '--signing-key',
      fs.readFileSync(key.key, 'utf8'),
      '--signing-key-password',
      key.password,
      '--transparency-log',
      'false',
      ...cosignFlags(release.source),
      '--json',
    ]);

  test("signed with a key and both documents attested: the signature, the ML-BOM and the provenance verify with the project's verification", async () => {
    const image = pushTinyImage(REPO_, 'signed', `sign stage ${Date.now()}`, dir);
    const files = await supplyChainFiles(image, dir, 'pass');
    const r = await sign(image, k1, files);
    expect([r.code, r.stderr.match(/^error: .*/m)?.[0]]).toEqual([0, undefined]);
    expect(r.json()).toEqual({ image, signed: 'true' });

    const bom = JSON.parse(fs.readFileSync(files.mlBom, 'utf8')) as { components: { type: string; hashes?: { content: string }[] }[] };
    const statement = JSON.parse(fs.readFileSync(files.provenance, 'utf8')) as { predicate: unknown };
    const modelSha = bom.components.find((c) => c.type === 'machine-learning-model')!.hashes![0].content;
    const verified = await verifyBeforeUse(
      {
        verifier: k1Verifier,
        transparencyLog: false,
        // a rule on each attestation: the ML-BOM's (cyclonedx) and the provenance's (slsaprovenance1)
        policy: [
          { key: 'parity', expected: 'pass' },
          { key: 'model-sha256', expected: modelSha },
          { key: 'runtime', expected: 'modelship' },
          { key: 'source-revision', expected: 'a'.repeat(40) },
        ],
        cosign: release.source,
      },
      image,
      log,
    );
    expect(verified.image).toBe(image);
    expect(verified.policy.map((p) => [p.key, p.pass])).toEqual([
      ['parity', true],
      ['model-sha256', true],
      ['runtime', true],
      ['source-revision', true],
    ]);
    // what verified is what the image stage wrote: the whole ML-BOM, the provenance statement's predicate, each
    // in a statement cosign made with the signed digest as its subject
    expect(verified.attestations.cyclonedx!.map((s) => s.predicate)).toEqual([bom]);
    // (cosign reads an SLSA v1 predicate into its protobuf form and writes it back: a timestamp loses its .000)
    expect(verified.attestations.slsaprovenance1!.map((s) => sameInstants(s.predicate))).toEqual([sameInstants(statement.predicate)]);
    for (const s of [...verified.attestations.cyclonedx!, ...verified.attestations.slsaprovenance1!])
      expect(s.subject.map((x) => x.digest.sha256)).toEqual([verified.digest.slice('sha256:'.length)]);

    // a policy the verified ML-BOM does not meet is refused, as smoke and rollout would refuse it
    const e = await refused(
      verifyBeforeUse({ verifier: k1Verifier, transparencyLog: false, policy: [{ key: 'parity', expected: 'fail' }], cosign: release.source }, image, log),
    );
    expect([e.code, e.location.field]).toEqual(['verify', 'attestation-policy']);

    // the key's password and the private key never reached the log
    expect(r.stderr).not.toContain(PASSWORD);
    expect(r.stderr).not.toContain(fs.readFileSync(k1.key, 'utf8').split('\n')[1]);
  });

  test('an image the stage signed with another key is refused: its signature and its attestations', async () => {
    const image = pushTinyImage(REPO_, 'other-key', `sign stage other key ${Date.now()}`, dir);
    const files = await supplyChainFiles(image, dir, 'pass');
    const r = await sign(image, k2, files);
    expect([r.code, r.json()]).toEqual([0, { image, signed: 'true' }]);
    // it is signed, by k2
    expect((await verifyImage(cosign, { image, verifier: { kind: 'key', key: k2.pub }, transparencyLog: false }, log)).image).toBe(image);
    const e = await refused(
      verifyBeforeUse({ verifier: k1Verifier, transparencyLog: false, policy: [{ key: 'parity', expected: 'pass' }], cosign: release.source }, image, log),
    );
    expect([e.code, e.location.field]).toEqual(['verify', 'verify']);
    expect(e.message).toMatch(/the signature was not made with verify-key \(another key, or altered after signing\)/);
    for (const type of ['cyclonedx', 'slsaprovenance1'] as const) {
      const a = await refused(verifyAttestations(cosign, { image, verifier: k1Verifier, transparencyLog: false, type }, log));
      expect([type, a.code]).toEqual([type, 'verify']);
      expect(a.message).toMatch(new RegExp(`${type} attestation`));
    }
  });

  test('a provenance of another image stops the stage before anything is signed', async () => {
    const a = pushTinyImage(REPO_, 'a', `sign stage a ${Date.now()}`, dir);
    const b = pushTinyImage(REPO_, 'b', `sign stage b ${Date.now()}`, dir);
    const ofA = await supplyChainFiles(a, dir);
    const r = await sign(b, k1, { provenance: ofA.provenance });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/error: input "provenance-file": .* describes another image \(subject sha256:[0-9a-f]{64}\), not the image to sign/);
    const e = await refused(verifyImage(cosign, { image: b, verifier: k1Verifier, transparencyLog: false }, log));
    expect(e.message).toMatch(/no signature \(the image is not signed\)/);
  });
});
