import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { tmpDir } from './helpers/caffe';
import { LAB } from './helpers/lab';
import { labDescribe } from './helpers/needs';
import { runId } from './helpers/shared';
import { alterAttestation, cosignRelease, generateKeyPair, GITHUB_ISSUER, pushTinyImage, testCa } from './helpers/cosign';
import { attestImage, Cosign, installCosign, signImage, verifyAttestations, verifyImage, type Verifier } from '../src/shared/cosign';
import { verifyBeforeUse } from '../src/shared/verify-image';
import { ModelshipError } from '../src/util/errors';
import type { Logger } from '../src/stage';

// The real cosign (v3.1.3, .tools/bin/cosign), installed by installCosign from a local stand-in for its GitHub release,
// against the lab's plain-HTTP registry: key pairs of its own (generate-key-pair), signatures and attestations
// without a transparency log (there is no Rekor here: transparency-log false), and what must be refused: an unsigned
// image, another key, an attestation signed by someone else, a tag moved to an unsigned digest; then keyless
// verification against a local test CA (openssl) standing in for Fulcio.
jest.setTimeout(180_000);

const describeLab = labDescribe(['docker', 'registry', 'cosign']);

const dir = tmpDir('modelship-cosign-lab-');
const REPO_ = `${LAB.registry}/modelship-test/cosign-${runId()}-${process.pid}`;
const IDENTITY = 'https://github.com/org/repo/.github/workflows/deploy.yml@refs/heads/main';
const PASSWORD = 'k1-Pa55-word';

const lines: string[] = [];
const log: Logger = { info: (l) => lines.push(l), warning: (l) => lines.push(`warning: ${l}`), group: (_n, fn) => fn() };

async function refused(p: Promise<unknown>): Promise<ModelshipError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ModelshipError) return e;
    throw e;
  }
  throw new Error('expected it to be refused');
}

const BOM = (parity: string, sha = 'cd'.repeat(32)) => ({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  version: 1,
  metadata: { properties: [{ name: 'modelship:runtime', value: 'modelship' }] },
  components: [
    {
      type: 'machine-learning-model',
      name: 'lenet',
      hashes: [{ alg: 'SHA-256', content: sha }],
      properties: [{ name: 'modelship:parity:status', value: parity }],
    },
  ],
});
const PROVENANCE = {
  buildDefinition: {
    buildType: 'https://modelship.dev/image/v1',
    externalParameters: { image: REPO_ },
    resolvedDependencies: [{ uri: 'git+https://github.com/org/repo@refs/heads/main', digest: { gitCommit: 'a'.repeat(40) } }],
  },
  runDetails: { builder: { id: IDENTITY }, metadata: { invocationId: 'https://github.com/org/repo/actions/runs/1' } },
};

describeLab('cosign against the lab registry (key pairs, no transparency log)', () => {
  let release: Awaited<ReturnType<typeof cosignRelease>>;
  let cosign: Cosign;
  let k1: ReturnType<typeof generateKeyPair>;
  let k2: ReturnType<typeof generateKeyPair>;
  let signed = '';
  let verifier: Verifier;

  beforeAll(async () => {
    release = await cosignRelease();
    cosign = await installCosign(release.source, log);
    k1 = generateKeyPair(dir, 'k1', PASSWORD);
    k2 = generateKeyPair(dir, 'k2', 'k2-password');
    verifier = { kind: 'key', key: fs.readFileSync(k1.pub, 'utf8') };
    signed = pushTinyImage(REPO_, 'signed', `signed ${Date.now()}`, dir);
  });
  afterAll(async () => {
    await release?.close();
  });

  test('installCosign took the binary from the stand-in release, checked against cosign-sha256; it is cosign v3.1.3', () => {
    expect(cosign.sha256).toBe(release.source.sha256);
    expect(execFileSync(cosign.binary, ['version'], { encoding: 'utf8' })).toMatch(/GitVersion:\s+v3\.1\.3/);
    expect(cosign.binary.startsWith(process.env.RUNNER_TOOL_CACHE ?? '')).toBe(true);
  });

  test('sign + attest (CycloneDX ML-BOM, SLSA provenance) + verify: the digest, the statements, the policy', async () => {
    // the private key as the input's PEM text, its password through COSIGN_PASSWORD only
    const signer = { kind: 'key' as const, key: fs.readFileSync(k1.key, 'utf8'), password: PASSWORD };
    await signImage(cosign, { image: signed, signer, transparencyLog: false }, log);
    await attestImage(cosign, { image: signed, signer, transparencyLog: false, type: 'cyclonedx', predicate: BOM('pass') }, log);
    const provenanceFile = path.join(dir, 'provenance.json');
    fs.writeFileSync(provenanceFile, JSON.stringify(PROVENANCE));
    await attestImage(
      cosign,
      { image: signed, signer: { ...signer, key: k1.key }, transparencyLog: false, type: 'slsaprovenance1', predicate: provenanceFile },
      log,
    );

    const v = await verifyImage(cosign, { image: signed, verifier, transparencyLog: false }, log);
    expect(v).toEqual({ image: signed, digest: signed.split('@')[1] });
    // the public key as a path works the same
    expect((await verifyImage(cosign, { image: signed, verifier: { kind: 'key', key: k1.pub }, transparencyLog: false }, log)).digest).toBe(v.digest);

    const boms = await verifyAttestations(cosign, { image: signed, verifier, transparencyLog: false, type: 'cyclonedx' }, log);
    expect(boms).toHaveLength(1);
    expect(boms[0].predicateType).toBe('https://cyclonedx.org/bom');
    expect(boms[0].subject[0].digest.sha256).toBe(v.digest.slice(7));
    expect(boms[0].predicate).toEqual(BOM('pass'));
    const provenance = await verifyAttestations(cosign, { image: signed, verifier, transparencyLog: false, type: 'slsaprovenance1' }, log);
    expect(provenance.map((s) => s.predicate)).toEqual([PROVENANCE]);

    const ok = await verifyBeforeUse(
      {
        verifier,
        transparencyLog: false,
        policy: [
          { key: 'parity', expected: 'pass' },
          { key: 'model-sha256', expected: 'cd'.repeat(32) },
          { key: 'runtime', expected: 'modelship' },
          { key: 'builder-id', expected: IDENTITY },
          { key: 'source-revision', expected: 'a'.repeat(40) },
        ],
        cosign: release.source,
      },
      signed,
      log,
    );
    expect(ok.image).toBe(signed);
    expect(ok.policy.every((p) => p.pass)).toBe(true);

    // a policy the verified BOM does not meet
    const e = await refused(
      verifyBeforeUse({ verifier, transparencyLog: false, policy: [{ key: 'parity', expected: 'fail' }], cosign: release.source }, signed, log),
    );
    expect([e.code, e.location.field]).toEqual(['verify', 'attestation-policy']);
    expect(e.message).toMatch(/attestation-policy failed: parity: the cyclonedx attestation states "pass" .* the policy wants "fail"/);

    // the password and the private key never reached the log
    const text = lines.join('\n');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(fs.readFileSync(k1.key, 'utf8').split('\n')[1]);
  });

  test('refused: an unsigned image (no signature, no attestation)', async () => {
    const unsigned = pushTinyImage(REPO_, 'unsigned', `unsigned ${Date.now()}`, dir);
    const e = await refused(verifyImage(cosign, { image: unsigned, verifier, transparencyLog: false }, log));
    expect([e.code, e.location.field]).toEqual(['verify', 'verify']);
    expect(e.message).toMatch(/: no signature \(the image is not signed\)/);
    const a = await refused(verifyAttestations(cosign, { image: unsigned, verifier, transparencyLog: false, type: 'cyclonedx' }, log));
    expect(a.code).toBe('verify');
    expect(a.message).toMatch(/: no attestation \(the image is not signed or not attested\)/);
  });

  test('refused: a signature made with another key', async () => {
    const other = pushTinyImage(REPO_, 'other-key', `other key ${Date.now()}`, dir);
    await signImage(cosign, { image: other, signer: { kind: 'key', key: k2.key, password: k2.password }, transparencyLog: false }, log);
    expect((await verifyImage(cosign, { image: other, verifier: { kind: 'key', key: k2.pub }, transparencyLog: false }, log)).image).toBe(other);
    const e = await refused(verifyImage(cosign, { image: other, verifier, transparencyLog: false }, log));
    expect(e.code).toBe('verify');
    expect(e.message).toMatch(/the signature was not made with verify-key \(another key, or altered after signing\)/);
  });

  test("refused: an attestation someone else signed (a BOM saying parity pass, over the signer's own saying fail)", async () => {
    const image = pushTinyImage(REPO_, 'tampered', `tampered ${Date.now()}`, dir);
    const mine = { kind: 'key' as const, key: k1.key, password: PASSWORD };
    await signImage(cosign, { image, signer: mine, transparencyLog: false }, log);
    await attestImage(cosign, { image, signer: mine, transparencyLog: false, type: 'cyclonedx', predicate: BOM('fail') }, log);
    // the forgery: attached to the same digest, signed with another key
    await attestImage(
      cosign,
      { image, signer: { kind: 'key', key: k2.key, password: k2.password }, transparencyLog: false, type: 'cyclonedx', predicate: BOM('pass') },
      log,
    );
    const boms = await verifyAttestations(cosign, { image, verifier, transparencyLog: false, type: 'cyclonedx' }, log);
    expect(boms.map((s) => s.predicate)).toEqual([BOM('fail')]);
    const e = await refused(
      verifyBeforeUse({ verifier, transparencyLog: false, policy: [{ key: 'parity', expected: 'pass' }], cosign: release.source }, image, log),
    );
    expect(e.message).toMatch(/parity: the cyclonedx attestation states "fail"/);

    // an image whose only BOM is the forgery: no attestation verifies
    const forged = pushTinyImage(REPO_, 'forged', `forged ${Date.now()}`, dir);
    await signImage(cosign, { image: forged, signer: mine, transparencyLog: false }, log);
    await attestImage(
      cosign,
      { image: forged, signer: { kind: 'key', key: k2.key, password: k2.password }, transparencyLog: false, type: 'cyclonedx', predicate: BOM('pass') },
      log,
    );
    const f = await refused(verifyAttestations(cosign, { image: forged, verifier, transparencyLog: false, type: 'cyclonedx' }, log));
    expect(f.code).toBe('verify');
    expect(f.message).toMatch(
      /no cyclonedx attestation verified \(missing, altered, or signed by another signer; what verified: https:\/\/sigstore.dev\/cosign\/sign\/v1\)/,
    );
  });

  test('refused: an attestation altered in the registry after it was signed (its statement changed, the signature kept)', async () => {
    const image = pushTinyImage(REPO_, 'altered', `altered ${Date.now()}`, dir);
    const mine = { kind: 'key' as const, key: k1.key, password: PASSWORD };
    await signImage(cosign, { image, signer: mine, transparencyLog: false }, log);
    await attestImage(cosign, { image, signer: mine, transparencyLog: false, type: 'cyclonedx', predicate: BOM('fail') }, log);
    expect((await verifyAttestations(cosign, { image, verifier, transparencyLog: false, type: 'cyclonedx' }, log)).map((s) => s.predicate)).toEqual([
      BOM('fail'),
    ]);
    await alterAttestation(image, 'https://cyclonedx.org/bom', (s) => {
      s.predicate = BOM('pass');
    });
    const e = await refused(verifyAttestations(cosign, { image, verifier, transparencyLog: false, type: 'cyclonedx' }, log));
    expect(e.code).toBe('verify');
    expect(e.message).toMatch(/no cyclonedx attestation verified \(missing, altered, or signed by another signer/);
    // the signature itself is untouched
    expect((await verifyImage(cosign, { image, verifier, transparencyLog: false }, log)).image).toBe(image);
  });

  test('refused: a tag moved to another, unsigned digest (verification resolves the tag once and returns that digest)', async () => {
    const a = pushTinyImage(REPO_, 'moving', `moving a ${Date.now()}`, dir);
    await signImage(cosign, { image: a, signer: { kind: 'key', key: k1.key, password: PASSWORD }, transparencyLog: false }, log);
    expect(await verifyImage(cosign, { image: `${REPO_}:moving`, verifier, transparencyLog: false }, log)).toEqual({ image: a, digest: a.split('@')[1] });
    const b = pushTinyImage(REPO_, 'moving', `moving b ${Date.now()}`, dir);
    expect(b).not.toBe(a);
    const e = await refused(verifyImage(cosign, { image: `${REPO_}:moving`, verifier, transparencyLog: false }, log));
    expect(e.code).toBe('verify');
    expect(e.message).toMatch(/no signature/);
    // the signed digest itself still verifies
    expect((await verifyImage(cosign, { image: a, verifier, transparencyLog: false }, log)).image).toBe(a);
  });

  test("the registry unreachable is the network's failure, not a verdict", async () => {
    const e = await refused(verifyImage(cosign, { image: `127.0.0.1:9/modelship-test/none@sha256:${'0'.repeat(64)}`, verifier, transparencyLog: false }, log));
    expect(e.code).toBe('io');
    expect(e.message).toMatch(/the network failed \(registry 127\.0\.0\.1:9 or Sigstore\)/);
  });

  test('keyless against a local test CA (no Fulcio, no Rekor): identity, issuer and roots checked', async () => {
    const ca = testCa(dir, IDENTITY);
    const image = pushTinyImage(REPO_, 'keyless', `keyless ${Date.now()}`, dir);
    // signed as Fulcio's certificate would: the leaf's key, the leaf certificate and its chain up to the root
    const signer = { kind: 'key' as const, key: ca.key, password: ca.password, certificate: ca.certificate, certificateChain: ca.chain };
    await signImage(cosign, { image, signer, transparencyLog: false }, log);
    await attestImage(cosign, { image, signer, transparencyLog: false, type: 'cyclonedx', predicate: BOM('pass') }, log);
    const keyless: Verifier = { kind: 'keyless', identity: IDENTITY, issuer: GITHUB_ISSUER, roots: ca.caPem };
    expect((await verifyImage(cosign, { image, verifier: keyless, transparencyLog: false }, log)).image).toBe(image);
    const boms = await verifyAttestations(cosign, { image, verifier: keyless, transparencyLog: false, type: 'cyclonedx' }, log);
    expect(boms.map((s) => s.predicate)).toEqual([BOM('pass')]);

    const wrongIdentity = await refused(
      verifyImage(
        cosign,
        { image, verifier: { ...keyless, identity: 'https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main' }, transparencyLog: false },
        log,
      ),
    );
    expect(wrongIdentity.code).toBe('verify');
    expect(wrongIdentity.message).toMatch(/identity mismatch/);
    const wrongIssuer = await refused(
      verifyImage(cosign, { image, verifier: { ...keyless, issuer: 'https://accounts.example.com' }, transparencyLog: false }, log),
    );
    expect(wrongIssuer.message).toMatch(/identity mismatch/);
    const otherCa = testCa(dir, IDENTITY, GITHUB_ISSUER, 'other');
    const wrongRoots = await refused(verifyImage(cosign, { image, verifier: { ...keyless, roots: otherCa.caPem }, transparencyLog: false }, log));
    expect(wrongRoots.code).toBe('verify');
    expect(wrongRoots.message).toMatch(/does not chain to the trusted roots/);
  });
});
