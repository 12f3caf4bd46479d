import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { tmpDir } from './helpers/caffe';
import { nodeMirror } from './helpers/node-release';
import { readConfig } from '../src/config';
import { ModelshipError } from '../src/util/errors';
import { openAuthConfig } from '../src/util/dockerconfig';
import {
  attestArgs,
  attestImage,
  classifyCosignFailure,
  COSIGN_CHECKSUMS,
  COSIGN_RELEASES,
  cosignError,
  decodeEnvelopes,
  DEFAULT_COSIGN_VERSION,
  downloadFailure,
  installCosign,
  planCosignDownload,
  redact,
  signArgs,
  signImage,
  trustedRootFor,
  verifiedDigests,
  verifyArgs,
  verifyAttestationArgs,
  verifyImage,
  verifyReason,
} from '../src/shared/cosign';
import { evaluatePolicy, parsePolicy, planVerification, POLICY_RULES } from '../src/shared/verify-image';

// cosign's part of signing and verification that needs no registry: the install (a local HTTP server stands in for
// GitHub's releases), the argument tables, what cosign's messages mean, the attestation policy, the inputs, and how
// secrets reach cosign (a stand-in cosign records what it was given). The real cosign against the lab registry:
// test/cosign.lab.test.ts; the stages refusing before they pull or deploy: test/verify-stages.lab.test.ts.

const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const LAB_IMAGE = `127.0.0.1:5000/m/lenet@${DIGEST}`;
const GHCR_IMAGE = `ghcr.io/org/lenet@${DIGEST}`;
const quiet = { info: () => undefined };

function caught(fn: () => unknown): ModelshipError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ModelshipError) return e;
    throw e;
  }
  throw new Error('expected a ModelshipError');
}
async function rejected(p: Promise<unknown>): Promise<ModelshipError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ModelshipError) return e;
    throw e;
  }
  throw new Error('expected a ModelshipError');
}

describe('the cosign download, planned', () => {
  test('by default the GitHub release, pinned by the table (the published cosign_checksums.txt values)', () => {
    expect(planCosignDownload({ version: DEFAULT_COSIGN_VERSION, mirror: '', sha256: '' }, 'linux-amd64')).toEqual({
      version: '3.1.3',
      platform: 'linux-amd64',
      url: `${COSIGN_RELEASES}/v3.1.3/cosign-linux-amd64`,
      sha256: '4629c757b7618056f8ddd7e2625ae9fdd94c0372a65049520bc7d9df9efc7f71',
    });
    expect(planCosignDownload({ version: 'v3.1.3', mirror: '', sha256: '' }, 'linux-arm64')).toMatchObject({
      url: 'https://github.com/sigstore/cosign/releases/download/v3.1.3/cosign-linux-arm64',
      sha256: 'c5d324e091826b0d7a78eb16fef316450b4eb9aaec045611c08ba06f5e73220a',
    });
    expect(COSIGN_CHECKSUMS[DEFAULT_COSIGN_VERSION]['linux-amd64']).toMatch(/^[0-9a-f]{64}$/);
  });

  test('a mirror, or a version the table lacks, needs cosign-sha256; malformed inputs fail naming theirs', () => {
    const hash = 'f'.repeat(64);
    expect(planCosignDownload({ version: '3.1.3', mirror: 'https://mirror.example/cosign/', sha256: hash.toUpperCase() }, 'linux-amd64')).toEqual({
      version: '3.1.3',
      platform: 'linux-amd64',
      url: 'https://mirror.example/cosign/v3.1.3/cosign-linux-amd64',
      sha256: hash,
    });
    expect(planCosignDownload({ version: '9.9.9', mirror: '', sha256: hash }, 'linux-amd64').url).toBe(`${COSIGN_RELEASES}/v9.9.9/cosign-linux-amd64`);
    const cases: [Parameters<typeof planCosignDownload>[0], string, RegExp][] = [
      [{ version: '3.1.3', mirror: 'https://mirror.example', sha256: '' }, 'cosign-sha256', /mirror https:\/\/mirror\.example needs its sha256/],
      [{ version: '9.9.9', mirror: '', sha256: '' }, 'cosign-sha256', /cosign 9\.9\.9 \(linux-amd64\) has no sha256 in modelship's table/],
      [{ version: 'latest', mirror: '', sha256: '' }, 'cosign-version', /expected a cosign release version like 3\.1\.3, got "latest"/],
      [{ version: '3.1.3', mirror: 'ftp://x', sha256: hash }, 'cosign-mirror', /expected an http\(s\) URL/],
      [{ version: '3.1.3', mirror: '', sha256: 'abc' }, 'cosign-sha256', /expected a sha256 in hex/],
    ];
    for (const [src, field, message] of cases) {
      const e = caught(() => planCosignDownload(src, 'linux-amd64'));
      expect([e.code, e.location.field]).toEqual(['input', field]);
      expect(e.message).toMatch(message);
    }
  });
});

describe('installCosign from a mirror (a local HTTP server laid out as the GitHub release)', () => {
  const dir = tmpDir('modelship-cosign-install-');
  // a stand-in binary: what matters here is the bytes and their digest
  const fake = path.join(dir, 'cosign-linux-amd64');
  fs.writeFileSync(fake, '#!/bin/sh\necho "cosign stand-in"\n');
  const good = sha256(fs.readFileSync(fake));
  const saved = { cache: process.env.RUNNER_TOOL_CACHE, temp: process.env.RUNNER_TEMP };
  beforeEach(() => {
    process.env.RUNNER_TOOL_CACHE = fs.mkdtempSync(path.join(dir, 'cache-'));
    process.env.RUNNER_TEMP = fs.mkdtempSync(path.join(dir, 'temp-'));
  });
  afterAll(() => {
    for (const [k, v] of [
      ['RUNNER_TOOL_CACHE', saved.cache],
      ['RUNNER_TEMP', saved.temp],
    ] as const)
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });
  const platform = process.arch === 'arm64' ? 'linux-arm64' : 'linux-amd64';

  test('verified, cached, and the second run comes from the tool cache (re-verified; a changed entry is downloaded again)', async () => {
    const mirror = await nodeMirror({ [`v3.1.3/cosign-${platform}`]: { file: fake } });
    try {
      const lines: string[] = [];
      const log = { info: (l: string) => lines.push(l) };
      const first = await installCosign({ version: '3.1.3', mirror: mirror.url, sha256: good }, log);
      expect(first).toMatchObject({ version: '3.1.3', sha256: good, url: `${mirror.url}/v3.1.3/cosign-${platform}` });
      expect(first.binary.startsWith(process.env.RUNNER_TOOL_CACHE!)).toBe(true);
      expect(execFileSync(first.binary, { encoding: 'utf8' })).toBe('cosign stand-in\n');
      expect(mirror.requests).toEqual([`v3.1.3/cosign-${platform}`]);
      // nothing left in RUNNER_TEMP: the download and the staging directory are gone
      expect(fs.readdirSync(process.env.RUNNER_TEMP!)).toEqual([]);

      const second = await installCosign({ version: '3.1.3', mirror: mirror.url, sha256: good }, log);
      expect(second.binary).toBe(first.binary);
      expect(mirror.requests).toHaveLength(1);
      expect(lines.join('\n')).toMatch(/from the tool cache .*sha256 [0-9a-f]{64} verified/);

      // an entry that no longer hashes to the pin is not used: downloaded again
      fs.appendFileSync(first.binary, '# changed\n');
      const third = await installCosign({ version: '3.1.3', mirror: mirror.url, sha256: good }, log);
      expect(mirror.requests).toHaveLength(2);
      expect(sha256(fs.readFileSync(third.binary))).toBe(good);
      expect(lines.join('\n')).toMatch(/does not hash to .*downloading it again/);
    } finally {
      await mirror.close();
    }
  });

  test('a download that does not hash to the pin is refused, naming the URL and both digests; nothing is cached', async () => {
    const mirror = await nodeMirror({ [`v3.1.3/cosign-${platform}`]: { file: fake } });
    try {
      const pin = 'e'.repeat(64);
      const e = await rejected(installCosign({ version: '3.1.3', mirror: mirror.url, sha256: pin }, quiet));
      expect(e.message).toContain(`${mirror.url}/v3.1.3/cosign-${platform}`);
      expect(e.message).toContain(`expected sha256 ${pin}, got ${good}`);
      expect(fs.readdirSync(process.env.RUNNER_TOOL_CACHE!)).toEqual([]);
      expect(fs.readdirSync(process.env.RUNNER_TEMP!)).toEqual([]);
    } finally {
      await mirror.close();
    }
  });

  test("any other download failure is the mirror's (or GitHub's) failure, named as such; a checksum mismatch stays as it is", () => {
    const plan = planCosignDownload({ version: '3.1.3', mirror: '', sha256: '' }, 'linux-amd64');
    const refusedConnection = new ModelshipError('io', `cannot download cosign v3.1.3 from ${plan.url}: connect ECONNREFUSED 127.0.0.1:9`);
    const github = downloadFailure(refusedConnection, plan, '');
    expect([github.message, (github as ModelshipError).location.field]).toEqual([
      `GitHub releases (github.com) failed: cannot download cosign v3.1.3 from ${plan.url}: connect ECONNREFUSED 127.0.0.1:9`,
      'cosign-version',
    ]);
    const mirror = downloadFailure(refusedConnection, plan, 'https://user:secret@mirror.example/cosign');
    expect(mirror.message).toMatch(/^the cosign mirror https:\/\/mirror\.example\/cosign failed: /);
    expect(mirror.message).not.toContain('secret');
    const mismatch = new ModelshipError('io', 'checksum mismatch for cosign v3.1.3 x: expected sha256 a, got b');
    expect(downloadFailure(mismatch, plan, '')).toBe(mismatch);
  });

  test('a version the mirror does not have (404) is an input error naming cosign-version and cosign-mirror', async () => {
    const mirror = await nodeMirror({});
    try {
      const e = await rejected(installCosign({ version: '3.1.4', mirror: mirror.url, sha256: good }, quiet));
      expect([e.code, e.location.field]).toEqual(['input', 'cosign-mirror']);
      expect(e.message).toMatch(
        /there is no cosign v3\.1\.4 at http:\/\/127\.0\.0\.1:\d+\/v3\.1\.4\/cosign-linux-\w+ \(HTTP 404\): check cosign-version and cosign-mirror/,
      );
    } finally {
      await mirror.close();
    }
  });
});

describe('cosign arguments (pure)', () => {
  const key = { kind: 'key' as const, keyFile: '/tmp/x/cosign.key' };
  const pub = { kind: 'key' as const, keyFile: '/tmp/x/verify.pub' };
  const identity = 'https://github.com/org/repo/.github/workflows/deploy.yml@refs/heads/main';
  const keyless = { kind: 'keyless' as const, identity, issuer: 'https://token.actions.githubusercontent.com' };
  const roots = { ...keyless, trustedRootFile: '/tmp/x/trusted_root.json' };
  test.each([
    [
      'sign, key, log on, HTTPS registry',
      signArgs({ image: GHCR_IMAGE, signer: key, transparencyLog: true }),
      ['sign', '--key', key.keyFile, '--yes', GHCR_IMAGE],
    ],
    [
      'sign, key, log off, plain-HTTP registry',
      signArgs({ image: LAB_IMAGE, signer: key, transparencyLog: false }),
      ['sign', '--key', key.keyFile, '--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry', '--yes', LAB_IMAGE],
    ],
    [
      'sign, key with a certificate and its chain (a private CA)',
      signArgs({ image: GHCR_IMAGE, signer: { ...key, certificateFile: '/c.pem', chainFile: '/chain.pem' }, transparencyLog: false }),
      [
        'sign',
        '--key',
        key.keyFile,
        '--certificate',
        '/c.pem',
        '--certificate-chain',
        '/chain.pem',
        '--tlog-upload=false',
        '--use-signing-config=false',
        '--yes',
        GHCR_IMAGE,
      ],
    ],
    [
      'sign, keyless (GitHub OIDC)',
      signArgs({ image: GHCR_IMAGE, signer: { kind: 'keyless' }, transparencyLog: true }),
      ['sign', '--oidc-provider=github-actions', '--yes', GHCR_IMAGE],
    ],
    [
      'attest a CycloneDX BOM, key, log off, plain HTTP',
      attestArgs({ image: LAB_IMAGE, signer: key, transparencyLog: false, predicateFile: '/p.json', type: 'cyclonedx' }),
      [
        'attest',
        '--key',
        key.keyFile,
        '--predicate',
        '/p.json',
        '--type',
        'cyclonedx',
        '--tlog-upload=false',
        '--use-signing-config=false',
        '--allow-http-registry',
        '--yes',
        LAB_IMAGE,
      ],
    ],
    [
      'attest SLSA provenance, keyless',
      attestArgs({ image: GHCR_IMAGE, signer: { kind: 'keyless' }, transparencyLog: true, predicateFile: '/p.json', type: 'slsaprovenance1' }),
      ['attest', '--oidc-provider=github-actions', '--predicate', '/p.json', '--type', 'slsaprovenance1', '--yes', GHCR_IMAGE],
    ],
    [
      'verify, key, log on',
      verifyArgs({ image: GHCR_IMAGE, verifier: pub, transparencyLog: true }),
      ['verify', '--key', pub.keyFile, '--output', 'json', GHCR_IMAGE],
    ],
    [
      'verify, key, log off, plain HTTP',
      verifyArgs({ image: LAB_IMAGE, verifier: pub, transparencyLog: false }),
      ['verify', '--key', pub.keyFile, '--insecure-ignore-tlog=true', '--allow-http-registry', '--output', 'json', LAB_IMAGE],
    ],
    [
      "verify, keyless, Sigstore's roots",
      verifyArgs({ image: GHCR_IMAGE, verifier: keyless, transparencyLog: true }),
      ['verify', '--certificate-identity', identity, '--certificate-oidc-issuer', keyless.issuer, '--output', 'json', GHCR_IMAGE],
    ],
    [
      'verify, keyless, a private CA, log off',
      verifyArgs({ image: LAB_IMAGE, verifier: roots, transparencyLog: false }),
      [
        'verify',
        '--certificate-identity',
        identity,
        '--certificate-oidc-issuer',
        keyless.issuer,
        '--trusted-root',
        roots.trustedRootFile,
        '--allow-certificate-chain',
        '--insecure-ignore-tlog=true',
        '--insecure-ignore-sct=true',
        '--allow-http-registry',
        '--output',
        'json',
        LAB_IMAGE,
      ],
    ],
    [
      'verify-attestation, key, log off',
      verifyAttestationArgs({ image: LAB_IMAGE, verifier: pub, transparencyLog: false, type: 'cyclonedx' }),
      ['verify-attestation', '--key', pub.keyFile, '--type', 'cyclonedx', '--insecure-ignore-tlog=true', '--allow-http-registry', LAB_IMAGE],
    ],
    [
      'verify-attestation, keyless, log on',
      verifyAttestationArgs({ image: GHCR_IMAGE, verifier: keyless, transparencyLog: true, type: 'slsaprovenance1' }),
      ['verify-attestation', '--certificate-identity', identity, '--certificate-oidc-issuer', keyless.issuer, '--type', 'slsaprovenance1', GHCR_IMAGE],
    ],
  ])('%s', (_name, args, expected) => expect(args).toEqual(expected));
});

describe("what cosign's messages mean (its own words, from v3.1.3)", () => {
  test.each([
    ['no signatures found', 'verify', 'no signature (the image is not signed)'],
    [
      'no matching attestations: failed to verify signature: could not verify envelope: accepted signatures do not match threshold, Found: 0, Expected 1',
      'verify',
      'the signature was not made with verify-key (another key, or altered after signing)',
    ],
    [
      'no matching attestations: failed to verify certificate identity: no matching CertificateIdentity found, last error: expected SAN value "https://github.com/evil/repo/x@refs/heads/main", got "https://github.com/org/repo/.github/workflows/deploy.yml@refs/heads/main"',
      'verify',
      "the signature's certificate is not of certificate-identity / certificate-oidc-issuer (identity mismatch)",
    ],
    [
      'no matching attestations: failed to verify certificate: x509: certificate signed by unknown authority',
      'verify',
      "the signature's certificate does not chain to the trusted roots (certificate-roots, else Sigstore's)",
    ],
    ['Get "https://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused', 'network', undefined],
    ['Get "https://ghcr.io/v2/": x509: certificate signed by unknown authority', 'network', undefined],
    ['GET http://127.0.0.1:5000/v2/m/manifests/nope: MANIFEST_UNKNOWN: manifest unknown; unknown tag=nope', 'registry', undefined],
    ['image tag not found: GET http://127.0.0.1:5000/v2/m/manifests/x: MANIFEST_UNKNOWN: manifest unknown', 'registry', undefined],
    ['GET https://ghcr.io/token?scope=repository%3Aorg%2Fm%3Apull: UNAUTHORIZED: authentication required', 'registry', undefined],
    ['getting trusted root from TUF for new bundle verification: failed to fetch', 'sigstore', undefined],
    ['loading public key: PEM decoding failed', 'key', undefined],
  ])('%s', (message, kind, reason) => {
    expect(classifyCosignFailure(message)).toBe(kind);
    if (reason) expect(verifyReason(message, { kind: /SAN|x509/.test(message) ? 'keyless' : 'key' })).toBe(reason);
  });

  test('attestations: a missing type names what there is', () => {
    const m = 'none of the attestations matched the predicate type: slsaprovenance1, found: https://sigstore.dev/cosign/sign/v1,https://cyclonedx.org/bom';
    expect(classifyCosignFailure(m)).toBe('verify');
    expect(verifyReason(m, { kind: 'key' }, 'slsaprovenance1')).toBe(
      'no slsaprovenance1 attestation verified (missing, altered, or signed by another signer; what verified: https://sigstore.dev/cosign/sign/v1,https://cyclonedx.org/bom)',
    );
  });

  test("cosign's error line is read out of its stderr", () => {
    const stderr = [
      'WARNING: Skipping tlog verification is an insecure practice that lacks transparency and auditability verification for the signature.',
      'Error: no signatures found',
      'error during command execution: no signatures found',
    ].join('\n');
    expect(cosignError(stderr)).toBe('no signatures found');
    expect(cosignError('something odd\n')).toBe('something odd');
  });

  test('the output of verify and verify-attestation', () => {
    const payload = [
      {
        critical: { identity: { 'docker-reference': 'r' }, image: { 'docker-manifest-digest': DIGEST }, type: 'https://sigstore.dev/cosign/sign/v1' },
        optional: {},
      },
    ];
    expect(verifiedDigests(`\n${JSON.stringify(payload)}\n`)).toEqual([DIGEST]);
    expect(verifiedDigests('not json')).toEqual([]);
    const statement = {
      _type: 'https://in-toto.io/Statement/v0.1',
      subject: [{ name: 'r', digest: { sha256: 'ab'.repeat(32) } }],
      predicateType: 'https://cyclonedx.org/bom',
      predicate: { bomFormat: 'CycloneDX' },
    };
    const envelope = {
      payloadType: 'application/vnd.in-toto+json',
      payload: Buffer.from(JSON.stringify(statement)).toString('base64'),
      signatures: [{ sig: 'x' }],
    };
    expect(decodeEnvelopes(`${JSON.stringify(envelope)}\n${JSON.stringify({ ...envelope, payloadType: 'text/plain' })}\ngarbage\n`)).toEqual([statement]);
  });

  test('secrets are redacted, line by line for a PEM', () => {
    const pem = '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAAbbbbCCCCdddd\nEEEEffff\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----';
    expect(redact('key AAAAbbbbCCCCdddd and p4ssw0rd!', [pem, 'p4ssw0rd!'])).toBe('key *** and ***');
  });
});

describe('the attestation policy', () => {
  const modelHash = 'cd'.repeat(32);
  const bom = (status: string, hash = modelHash) => ({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ digest: { sha256: 'ab'.repeat(32) } }],
    predicateType: 'https://cyclonedx.org/bom',
    predicate: {
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      metadata: { component: { type: 'application', name: 'lenet-serving' }, properties: [{ name: 'modelship:runtime', value: 'modelship' }] },
      components: [
        {
          type: 'machine-learning-model',
          name: 'lenet',
          hashes: [{ alg: 'SHA-256', content: hash.toUpperCase() }],
          properties: [{ name: 'modelship:parity:status', value: status }],
        },
      ],
    },
  });
  const provenance = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ digest: { sha256: 'ab'.repeat(32) } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: 'https://modelship.dev/image/v1',
        resolvedDependencies: [{ uri: 'git+https://github.com/org/repo@refs/heads/main', digest: { gitCommit: 'a'.repeat(40) } }],
      },
      runDetails: { builder: { id: 'https://github.com/org/repo/.github/workflows/deploy.yml@refs/heads/main' } },
    },
  };

  test('each key is a typed rule; unknown keys and malformed values name attestation-policy', () => {
    expect(parsePolicy(`parity=pass, model-sha256=${modelHash.toUpperCase()},runtime=modelship`)).toEqual([
      { key: 'parity', expected: 'pass' },
      { key: 'model-sha256', expected: modelHash },
      { key: 'runtime', expected: 'modelship' },
    ]);
    expect(parsePolicy('')).toEqual([]);
    for (const [text, message] of [
      ['parity=pass,signed-by=me', /unknown key "signed-by"; the keys are parity, model-sha256/],
      ['model-sha256=abc', /model-sha256: expected a sha256 in hex/],
      ['parity', /expected key=value pairs/],
      ['parity=pass,parity=fail', /"parity" is given twice/],
    ] as const) {
      const e = caught(() => parsePolicy(text));
      expect([e.code, e.location.field]).toEqual(['input', 'attestation-policy']);
      expect(e.message).toMatch(message);
    }
    expect(POLICY_RULES.every((r) => r.describe.length > 10)).toBe(true);
  });

  test('evaluated on the verified predicates: every attestation of the type must state the value', () => {
    const checks = parsePolicy(
      `parity=pass,model-sha256=${modelHash},runtime=modelship,model-name=lenet,builder-id=${provenance.predicate.runDetails.builder.id},source-revision=${'a'.repeat(40)}`,
    );
    expect(
      planVerification(
        { verifier: { kind: 'key', key: 'k' }, transparencyLog: false, policy: checks, cosign: { version: '3.1.3', mirror: '', sha256: '' } },
        LAB_IMAGE,
      ).attestations,
    ).toEqual(['cyclonedx', 'slsaprovenance1']);
    const ok = evaluatePolicy(checks, { cyclonedx: [bom('pass')], slsaprovenance1: [provenance] });
    expect(ok.map((r) => [r.key, r.pass])).toEqual(checks.map((c) => [c.key, true]));

    const failed = evaluatePolicy(parsePolicy('parity=pass'), { cyclonedx: [bom('pass'), bom('fail')] });
    expect(failed[0]).toMatchObject({ pass: false, found: [['pass'], ['fail']] });
    expect(failed[0].why).toMatch(/the cyclonedx attestation \(2 of 2\) states "fail" for the parity result .* the policy wants "pass"/);

    const missing = evaluatePolicy(parsePolicy('builder-id=x'), { cyclonedx: [bom('pass')] });
    expect(missing[0]).toMatchObject({ pass: false, why: 'no verified slsaprovenance1 attestation' });
    expect(evaluatePolicy(parsePolicy(`model-sha256=${'0'.repeat(64)}`), { cyclonedx: [bom('pass')] })[0].why).toMatch(/states "cdcd/);
  });
});

describe('the verify inputs (smoke, rollout, preview, pipeline)', () => {
  const dir = tmpDir('modelship-verify-inputs-');
  const pubFile = path.join(dir, 'cosign.pub');
  fs.writeFileSync(pubFile, '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n');
  const read = (stage: string, given: Record<string, string>) => readConfig((n) => ({ stage, image: `127.0.0.1:5000/m/lenet@${DIGEST}`, ...given })[n]);

  test('off by default; key and keyless read into the smoke and rollout configs', () => {
    expect(read('smoke', {}).smoke.verification).toBeUndefined();
    const key = read('rollout', { verify: 'key', 'verify-key': pubFile, 'transparency-log': 'false', 'attestation-policy': 'parity=pass' });
    expect(key.rollout.verification).toEqual({
      verifier: { kind: 'key', key: pubFile },
      transparencyLog: false,
      policy: [{ key: 'parity', expected: 'pass' }],
      cosign: { version: '3.1.3', mirror: '', sha256: '' },
    });
    const keyless = read('smoke', { verify: 'keyless', 'certificate-identity': 'https://github.com/org/repo/.github/workflows/deploy.yml@refs/heads/main' });
    expect(keyless.smoke.verification?.verifier).toEqual({
      kind: 'keyless',
      identity: 'https://github.com/org/repo/.github/workflows/deploy.yml@refs/heads/main',
      issuer: 'https://token.actions.githubusercontent.com',
      roots: undefined,
    });
    // a preview is a rollout, the pipeline runs both
    expect(read('preview', { verify: 'key', 'verify-key': pubFile }).preview.rollout.verification?.verifier.kind).toBe('key');
    const pipeline = read('pipeline', {
      verify: 'key',
      'verify-key': pubFile,
      image: '127.0.0.1:5000/m/lenet',
      prototxt: 'd.prototxt',
      caffemodel: 'w.caffemodel',
    });
    expect([pipeline.smoke.verification?.verifier.kind, pipeline.rollout.verification?.verifier.kind]).toEqual(['key', 'key']);
  });

  test.each([
    [{ verify: 'yes' }, 'verify', /expected one of off, key, keyless/],
    [{ verify: 'key' }, 'verify-key', /is required with verify: key/],
    [{ verify: 'key', 'verify-key': '/no/such.pub' }, 'verify-key', /PEM text or the path of a PEM file.*no such file/],
    [{ verify: 'key', 'verify-key': 'PUB', 'certificate-identity': 'x' }, 'certificate-identity', /is for verify: keyless/],
    [{ verify: 'keyless' }, 'certificate-identity', /is required with verify: keyless/],
    [{ verify: 'keyless', 'certificate-identity': 'i', 'certificate-oidc-issuer': 'github' }, 'certificate-oidc-issuer', /expected the OIDC issuer's URL/],
    [{ verify: 'keyless', 'certificate-identity': 'i', 'certificate-roots': 'ROOTS' }, 'certificate-roots', /carry no transparency log keys/],
    [{ 'attestation-policy': 'parity=pass' }, 'attestation-policy', /give verify \(key or keyless\) too/],
    [{ verify: 'key', 'verify-key': 'PUB', 'attestation-policy': 'colour=blue' }, 'attestation-policy', /unknown key "colour"/],
    [{ verify: 'key', 'verify-key': 'PUB', 'cosign-mirror': 'https://mirror.example' }, 'cosign-sha256', /needs its sha256/],
    [{ verify: 'key', 'verify-key': 'PUB', 'cosign-version': '0.0.1' }, 'cosign-sha256', /no sha256 in modelship's table/],
  ])('%j fails naming %s', (given, field, message) => {
    const roots = path.join(dir, 'roots.pem');
    fs.writeFileSync(roots, CA_PEM);
    const values = Object.fromEntries(Object.entries(given).map(([k, v]) => [k, v === 'PUB' ? pubFile : v === 'ROOTS' ? roots : v]));
    for (const stage of ['smoke', 'rollout']) {
      const e = caught(() => read(stage, values));
      expect([e.code, e.location.field]).toEqual(['input', field]);
      expect(e.message).toMatch(message);
    }
  });

  test('stages that do not verify ignore the inputs', () => {
    expect(read('convert', { verify: 'key', prototxt: 'd.prototxt', caffemodel: 'w.caffemodel' }).smoke.verification).toBeUndefined();
  });
});

/** A self-signed CA (P-256), made once with openssl for these tests. */
const CA_PEM = (() => {
  const d = tmpDir('modelship-ca-');
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', path.join(d, 'ca.key')]);
  execFileSync('openssl', [
    'req',
    '-new',
    '-x509',
    '-key',
    path.join(d, 'ca.key'),
    '-subj',
    '/O=modelship test/CN=local test CA',
    '-days',
    '2',
    '-out',
    path.join(d, 'ca.pem'),
  ]);
  return fs.readFileSync(path.join(d, 'ca.pem'), 'utf8');
})();

describe('certificate-roots as a Sigstore trusted root', () => {
  test('a PEM of roots becomes a trusted_root.json of certificate authorities (with the log off)', () => {
    const tr = JSON.parse(trustedRootFor(CA_PEM, false)) as {
      mediaType: string;
      certificateAuthorities: { subject: object; certChain: { certificates: { rawBytes: string }[] } }[];
      tlogs: unknown[];
    };
    expect(tr.mediaType).toBe('application/vnd.dev.sigstore.trustedroot+json;version=0.1');
    expect(tr.tlogs).toEqual([]);
    expect(tr.certificateAuthorities).toHaveLength(1);
    expect(tr.certificateAuthorities[0].subject).toEqual({ organization: 'modelship test', commonName: 'local test CA' });
    expect(Buffer.from(tr.certificateAuthorities[0].certChain.certificates[0].rawBytes, 'base64').equals(new crypto.X509Certificate(CA_PEM).raw)).toBe(true);
  });

  test('a trusted_root.json is taken as it is; anything else names certificate-roots', () => {
    const json = JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [{ baseUrl: 'https://rekor.internal' }] });
    const dir = tmpDir('modelship-roots-');
    fs.writeFileSync(path.join(dir, 'tr.json'), json);
    expect(trustedRootFor(path.join(dir, 'tr.json'), true)).toBe(json);
    fs.writeFileSync(path.join(dir, 'empty.pem'), 'nothing here\n');
    for (const [roots, tlog, message] of [
      [CA_PEM, true, /carry no transparency log keys/],
      [path.join(dir, 'empty.pem'), false, /found no certificate/],
      [path.join(dir, 'nope.pem'), false, /no such file/],
      ['{"mediaType": "x"}', false, /is JSON but not a Sigstore trusted_root.json/],
    ] as const) {
      const src = roots.startsWith('{') ? path.join(dir, 'bad.json') : roots;
      if (roots.startsWith('{')) fs.writeFileSync(src, roots);
      const e = caught(() => trustedRootFor(src, tlog));
      expect(e.location.field).toBe('certificate-roots');
      expect(e.message).toMatch(message);
    }
  });
});

describe('how secrets reach cosign (a stand-in cosign records what it was given)', () => {
  const dir = tmpDir('modelship-cosign-fake-');
  const record = path.join(dir, 'record');
  const binary = path.join(dir, 'cosign');
  // records its argv, COSIGN_PASSWORD, and the key file's mode, directory and text; fails as told
  fs.writeFileSync(
    binary,
    [
      '#!/bin/sh',
      'printf "%s\\n" "$@" > "$FAKE_RECORD.args"',
      'printf "%s" "$COSIGN_PASSWORD" > "$FAKE_RECORD.password"',
      'while [ $# -gt 0 ]; do',
      '  if [ "$1" = --key ]; then stat -c %a "$2" > "$FAKE_RECORD.keymode"; dirname "$2" > "$FAKE_RECORD.keydir"; cat "$2" > "$FAKE_RECORD.key"; fi',
      '  if [ "$1" = --predicate ]; then cat "$2" > "$FAKE_RECORD.predicate"; fi',
      '  shift',
      'done',
      'if [ -n "$FAKE_FAIL" ]; then printf "Error: %s\\nerror during command execution: %s\\n" "$FAKE_FAIL" "$FAKE_FAIL" >&2; exit 1; fi',
      'printf "%s\\n" "$FAKE_STDOUT"',
    ].join('\n'),
    { mode: 0o755 },
  );
  const cosign = { binary, version: '3.1.3', url: 'file:', sha256: '' };
  const PASSWORD = 'hunter2-Pa55word';
  const KEY = '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nZm9vYmFyYmF6cXV4cXV1eA==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n';
  const env = (more: Record<string, string> = {}) => ({ PATH: process.env.PATH, RUNNER_TEMP: dir, FAKE_RECORD: record, ...more });
  const read = (what: string) => fs.readFileSync(`${record}.${what}`, 'utf8');

  test('the key (PEM text) is a 0600 file in a private directory removed afterwards; the password only in the environment', async () => {
    const lines: string[] = [];
    await signImage(
      cosign,
      { image: LAB_IMAGE, signer: { kind: 'key', key: KEY, password: PASSWORD }, transparencyLog: false },
      { info: (l) => lines.push(l) },
      env(),
    );
    expect(read('keymode').trim()).toBe('600');
    expect(read('key')).toBe(KEY);
    expect(fs.existsSync(read('keydir').trim())).toBe(false);
    expect(read('password')).toBe(PASSWORD);
    const args = read('args');
    expect(args).not.toContain(PASSWORD);
    expect(args).not.toContain('Zm9vYmFy');
    expect(args.trim().split('\n')).toEqual([
      'sign',
      '--key',
      path.join(read('keydir').trim(), 'cosign.key'),
      '--tlog-upload=false',
      '--use-signing-config=false',
      '--allow-http-registry',
      '--yes',
      LAB_IMAGE,
    ]);
    expect(lines.join('\n')).not.toContain(PASSWORD);
    expect(lines.join('\n')).toContain(`signed ${LAB_IMAGE} (no transparency log)`);
  });

  test('a failure that repeats a secret does not: redacted in the message and the log', async () => {
    const lines: string[] = [];
    const e = await rejected(
      attestImage(
        cosign,
        {
          image: LAB_IMAGE,
          signer: { kind: 'key', key: KEY, password: PASSWORD },
          transparencyLog: true,
          type: 'cyclonedx',
          predicate: { bomFormat: 'CycloneDX' },
        },
        { info: (l) => lines.push(l) },
        env({ FAKE_FAIL: `decrypt: password ${PASSWORD} is wrong for Zm9vYmFyYmF6cXV4cXV1eA==` }),
      ),
    );
    expect(JSON.parse(read('predicate'))).toEqual({ bomFormat: 'CycloneDX' });
    expect(e.code).toBe('input');
    expect(e.message).toMatch(/the signing key cannot be used/);
    expect(e.message + lines.join('\n')).not.toContain(PASSWORD);
    expect(e.message + lines.join('\n')).not.toContain('Zm9vYmFyYmF6cXV4cXV1eA==');
  });

  test('no password: COSIGN_PASSWORD is set empty (cosign never waits on a terminal); a key by path is used where it is', async () => {
    const keyFile = path.join(dir, 'my.key');
    fs.writeFileSync(keyFile, KEY);
    await signImage(
      cosign,
      { image: GHCR_IMAGE, signer: { kind: 'key', key: keyFile }, transparencyLog: true },
      quiet,
      env({ COSIGN_PASSWORD: 'from-outside' }),
    );
    expect(read('password')).toBe('');
    expect(read('args').split('\n').slice(0, 3)).toEqual(['sign', '--key', keyFile]);
    const e = await rejected(
      signImage(cosign, { image: GHCR_IMAGE, signer: { kind: 'key', key: '/no/such.key', field: 'signing-key' }, transparencyLog: true }, quiet, env()),
    );
    expect([e.code, e.location.field]).toEqual(['input', 'signing-key']);
  });

  test("signing by tag is refused; keyless signing needs the job's OIDC token", async () => {
    const tag = await rejected(
      signImage(cosign, { image: '127.0.0.1:5000/m/lenet:v1', signer: { kind: 'key', key: KEY }, transparencyLog: true }, quiet, env()),
    );
    expect(tag.message).toMatch(/works on an image by digest/);
    const keyless = await rejected(signImage(cosign, { image: GHCR_IMAGE, signer: { kind: 'keyless' }, transparencyLog: true }, quiet, env()));
    expect(keyless.message).toMatch(/id-token: write/);
    await signImage(
      cosign,
      { image: GHCR_IMAGE, signer: { kind: 'keyless' }, transparencyLog: true },
      quiet,
      env({ ACTIONS_ID_TOKEN_REQUEST_URL: 'https://token.example', ACTIONS_ID_TOKEN_REQUEST_TOKEN: 't' }),
    );
    expect(read('args').trim().split('\n')).toEqual(['sign', '--oidc-provider=github-actions', '--yes', GHCR_IMAGE]);
  });

  test("verify: the digest cosign verified comes back; a verdict is a 'verify' error, a registry failure is the registry's", async () => {
    const payload = JSON.stringify([{ critical: { image: { 'docker-manifest-digest': DIGEST } } }]);
    const pub = '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n';
    const byTag = await verifyImage(
      cosign,
      { image: 'ghcr.io/org/lenet:v1', verifier: { kind: 'key', key: pub }, transparencyLog: true },
      quiet,
      env({ FAKE_STDOUT: payload }),
    );
    expect(byTag).toEqual({ image: `ghcr.io/org/lenet@${DIGEST}`, digest: DIGEST });
    const other = `sha256:${'cd'.repeat(32)}`;
    const mismatch = await rejected(
      verifyImage(
        cosign,
        { image: `ghcr.io/org/lenet@${other}`, verifier: { kind: 'key', key: pub }, transparencyLog: true },
        quiet,
        env({ FAKE_STDOUT: payload }),
      ),
    );
    expect(mismatch.code).toBe('verify');
    const unsigned = await rejected(
      verifyImage(cosign, { image: GHCR_IMAGE, verifier: { kind: 'key', key: pub }, transparencyLog: true }, quiet, env({ FAKE_FAIL: 'no signatures found' })),
    );
    expect([unsigned.code, unsigned.location.field]).toEqual(['verify', 'verify']);
    expect(unsigned.message).toBe(`image ${GHCR_IMAGE}: no signature (the image is not signed) (cosign: no signatures found)`);
    const down = await rejected(
      verifyImage(
        cosign,
        { image: GHCR_IMAGE, verifier: { kind: 'key', key: pub }, transparencyLog: true },
        quiet,
        env({ FAKE_FAIL: 'Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io: no such host' }),
      ),
    );
    expect(down.code).toBe('io');
    expect(down.message).toMatch(/the network failed \(registry ghcr\.io or Sigstore\)/);
  });
});

describe('registry credentials for cosign without a docker CLI (rollout)', () => {
  test("a private DOCKER_CONFIG: the user's config carried over, the login written into it (0600), removed on close", () => {
    const home = tmpDir('modelship-authcfg-');
    const user = path.join(home, 'user-docker');
    fs.mkdirSync(user);
    fs.writeFileSync(
      path.join(user, 'config.json'),
      JSON.stringify({ auths: { 'other.example': { auth: 'b3RoZXI6eA==' } }, credsStore: 'desktop', proxies: { default: {} } }),
    );
    const env = { DOCKER_CONFIG: user, RUNNER_TEMP: home };
    const s = openAuthConfig('ghcr.io', 'ci-bot', 's3cret', env);
    const dir = s.env.DOCKER_CONFIG!;
    expect(dir).not.toBe(user);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'config.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))).toEqual({
      auths: { 'other.example': { auth: 'b3RoZXI6eA==' }, 'ghcr.io': { auth: Buffer.from('ci-bot:s3cret').toString('base64') } },
      proxies: { default: {} },
    });
    s.close();
    expect(fs.existsSync(dir)).toBe(false);
    expect(JSON.parse(fs.readFileSync(path.join(user, 'config.json'), 'utf8')).auths['ghcr.io']).toBeUndefined();
    // Docker Hub's key is its legacy URL; no username: the environment as it is
    const hub = openAuthConfig('docker.io', 'u', 'p', env);
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(hub.env.DOCKER_CONFIG!, 'config.json'), 'utf8')).auths)).toContain('https://index.docker.io/v1/');
    hub.close();
    expect(openAuthConfig('ghcr.io', '', '', env).env).toBe(env);
    expect(() => openAuthConfig('ghcr.io', 'u', '', env)).toThrow(/registry-username" needs "registry-password"/);
  });
});
