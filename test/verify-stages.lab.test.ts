import * as fs from 'fs';
import { createHash } from 'crypto';
import { execFileSync } from 'child_process';
import { runCli } from './helpers/cli';
import { tmpDir } from './helpers/caffe';
import { docker, LAB } from './helpers/lab';
import { labDescribe } from './helpers/needs';
import { runId } from './helpers/shared';
import { kubectl, runCliProcess } from './helpers/kube';
import { expectExit } from './helpers/rollout';
import { LENET, lenetImage } from './helpers/lenet-image';
import { cosignFlags, cosignRelease, generateKeyPair, pushTinyImage } from './helpers/cosign';
import { attestImage, Cosign, installCosign, signImage } from '../src/shared/cosign';

// smoke and rollout with verify on, through the CLI (in process, as the action's inputs): an image that does not
// verify (unsigned, another key's signature, an ML-BOM that fails attestation-policy) stops the stage before it pulls
// (smoke: the image never reaches the Docker engine, no `docker pull` in the log) or deploys (rollout: not even the
// namespace is made); a signed image passes and the stage goes on with the digest that verified (smoke: LeNet served
// and its golden requests pass; rollout: the dry run's plan names the digest). No Rekor here: transparency-log false.
// Smoke runs in process; rollout through the bundle (dist/index.js, rebuilt by `npm run build`), as every rollout test.
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cosign', 'node24']);
const describeCluster = labDescribe(['docker', 'registry', 'cosign', 'cluster']);

const dir = tmpDir('modelship-verify-stages-');
const REPO_ = `${LAB.registry}/modelship-test/verify-${runId()}-${process.pid}`;
const PASSWORD = 'stage-key-Pa55';
const quiet = { info: () => undefined };

let release: Awaited<ReturnType<typeof cosignRelease>>;
let cosign: Cosign;
let k1: ReturnType<typeof generateKeyPair>;
let k2: ReturnType<typeof generateKeyPair>;

const BOM = (parity: string) => ({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  components: [{ type: 'machine-learning-model', name: 'lenet', properties: [{ name: 'modelship:parity:status', value: parity }] }],
});

/** A small image of its own (pushed, then removed from the engine, so a pull would show), signed as asked. */
async function image(name: string, sign: 'unsigned' | 'k1' | 'k2', parity?: string): Promise<string> {
  const ref = pushTinyImage(REPO_, name, `${name} ${Date.now()}`, dir);
  docker(['rmi', `${REPO_}:${name}`]);
  const key = sign === 'k1' ? k1 : k2;
  if (sign !== 'unsigned')
    await signImage(cosign, { image: ref, signer: { kind: 'key', key: key.key, password: key.password }, transparencyLog: false }, quiet);
  if (parity)
    await attestImage(
      cosign,
      { image: ref, signer: { kind: 'key', key: key.key, password: key.password }, transparencyLog: false, type: 'cyclonedx', predicate: BOM(parity) },
      quiet,
    );
  return ref;
}

const inEngine = (ref: string) => {
  try {
    docker(['image', 'inspect', ref]);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  release = await cosignRelease();
  cosign = await installCosign(release.source, quiet);
  k1 = generateKeyPair(dir, 'k1', PASSWORD);
  k2 = generateKeyPair(dir, 'k2', 'other-password');
});
afterAll(async () => {
  await release?.close();
});

const verifyFlags = (more: string[] = []) => [
  '--verify',
  'key',
  '--verify-key',
  k1.pub,
  '--transparency-log',
  'false',
  ...cosignFlags(release.source),
  ...more,
];

describeLab('smoke verifies before it pulls', () => {
  const smoke = (ref: string, more: string[] = []) =>
    runCli(['smoke', '--image', ref, '--model-name', 'lenet', '--requests', '0', '--ready-timeout', '60', ...verifyFlags(more)]);

  test.each([
    ['an unsigned image', 'unsigned', undefined, [] as string[], /error: image .*: no signature \(the image is not signed\)/],
    ['a signature by another key', 'k2', undefined, [], /error: image .*: the signature was not made with verify-key/],
    [
      'an ML-BOM that fails attestation-policy',
      'k1',
      'fail',
      ['--attestation-policy', 'parity=pass'],
      /error: image .*: attestation-policy failed: parity: the cyclonedx attestation states "fail"/,
    ],
  ] as const)('refused: %s; nothing pulled', async (_what, sign, parity, more, message) => {
    const ref = await image(`smoke-${sign}-${parity ?? 'none'}`, sign, parity);
    const r = await smoke(ref, [...more]);
    expectExit(r, 1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/docker pull/);
    expect(inEngine(ref)).toBe(false);
  });

  test('a signed LeNet image (ML-BOM parity pass) verifies, and smoke runs that digest: golden requests pass', async () => {
    // the run's shared LeNet image, copied into this file's repository: its signatures stay out of the shared one
    const shared = await lenetImage('a');
    docker(['pull', '-q', shared]);
    docker(['tag', shared, `${REPO_}:lenet`]);
    docker(['push', '-q', `${REPO_}:lenet`]);
    const digest = JSON.parse(docker(['inspect', '--format', '{{json .RepoDigests}}', `${REPO_}:lenet`])) as string[];
    const ref = digest.find((d) => d.startsWith(`${REPO_}@`))!;
    docker(['rmi', `${REPO_}:lenet`]);
    const signer = { kind: 'key' as const, key: fs.readFileSync(k1.key, 'utf8'), password: PASSWORD };
    await signImage(cosign, { image: ref, signer, transparencyLog: false }, quiet);
    await attestImage(cosign, { image: ref, signer, transparencyLog: false, type: 'cyclonedx', predicate: BOM('pass') }, quiet);

    const r = await runCli([
      'smoke',
      '--image',
      ref,
      '--model-name',
      'lenet',
      '--reference',
      LENET,
      '--requests',
      '20',
      ...verifyFlags(['--attestation-policy', 'parity=pass']),
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/error:/);
    expectExit(r, 0);
    expect(r.json().smoke).toBe('pass');
    // verified first, then pulled by that digest
    const verified = r.stderr.indexOf(`verified the signature of ${ref}`);
    expect(verified).toBeGreaterThanOrEqual(0);
    expect(r.stderr.indexOf(`docker pull ${ref}`)).toBeGreaterThan(verified);
    expect(r.stderr).toContain('attestation-policy: parity=pass: pass');
  });
});

describeLab('the image stage signs and attests; smoke verifies what it attested', () => {
  test("image with sign key: LeNet's digest signed, its ML-BOM and provenance attested (and written); smoke verifies a policy on the parity, the model's sha256, the runtime and the commit, and refuses another model's sha256", async () => {
    const onnx = `${dir}/e2e/lenet.onnx`;
    const conv = await runCli([
      'convert',
      '--prototxt',
      `${LENET}/deploy.prototxt`,
      '--caffemodel',
      `${LENET}/weights.caffemodel`,
      '--reference',
      LENET,
      '--out',
      onnx,
    ]);
    expectExit(conv, 0);
    const keyText = fs.readFileSync(k1.key, 'utf8');
    const revision = 'e'.repeat(40);
    const r = await runCli([
      'image',
      '--image',
      `${REPO_}-e2e`,
      '--model',
      onnx,
      '--model-name',
      'lenet',
      '--base-image',
      LAB.baseImage,
      '--revision',
      revision,
      '--ref',
      'refs/heads/main',
      '--compose-file',
      `${dir}/e2e/docker-compose.yml`,
      '--parity',
      'pass',
      '--sign',
      'key',
      '--signing-key',
      keyText,
      '--signing-key-password',
      PASSWORD,
      '--transparency-log',
      'false',
      ...cosignFlags(release.source),
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/error:/);
    expectExit(r, 0);
    const out = r.json();
    expect(out).toMatchObject({ signed: 'true', 'ml-bom': `${dir}/e2e/ml-bom.cdx.json`, provenance: `${dir}/e2e/provenance.intoto.json` });
    // the secrets appear nowhere in what the stage printed
    for (const secret of [PASSWORD, keyText.split('\n')[1]]) expect(r.stderr + JSON.stringify(out)).not.toContain(secret);
    const bom = JSON.parse(fs.readFileSync(out['ml-bom'] as string, 'utf8')) as { components: { type: string; hashes: { content: string }[] }[] };
    const sha = bom.components.find((c) => c.type === 'machine-learning-model')!.hashes[0].content;
    expect(sha).toBe(createHash('sha256').update(fs.readFileSync(onnx)).digest('hex'));
    const image = out.image as string;
    // (the build left it in the engine by its tags: smoke must pull what it verified)
    for (const tag of (out.tags as string).split('\n')) docker(['rmi', tag]);

    const smoke = (policy: string) =>
      runCli([
        'smoke',
        '--image',
        image,
        '--model-name',
        'lenet',
        '--reference',
        LENET,
        '--requests',
        '5',
        ...verifyFlags(['--attestation-policy', policy]),
        '--json',
      ]);
    const good = await smoke(`parity=pass,model-sha256=${sha},runtime=modelship,source-revision=${revision}`);
    expect(good.stderr).not.toMatch(/error:/);
    expectExit(good, 0);
    expect(good.json().smoke).toBe('pass');
    expect(good.stderr).toContain(`attestation-policy: parity=pass, model-sha256=${sha}, runtime=modelship, source-revision=${revision}: pass`);
    const other = await smoke(`model-sha256=${'0'.repeat(64)}`);
    expectExit(other, 1);
    expect(other.stderr).toMatch(/attestation-policy failed: model-sha256/);
  });
});

describeCluster('rollout verifies before it deploys', () => {
  const ns = `vfy${process.pid}`;
  // the bundle, as the other rollout tests run it (jest cannot load @kubernetes/client-node in process)
  const rollout = (ref: string, more: string[] = []) =>
    runCliProcess(['rollout', '--image', ref, '--model-name', 'lenet', '--namespace', ns, '--cpu', '50m', '--memory', '64Mi', ...verifyFlags(more)]);
  const nsExists = () => {
    try {
      kubectl(['get', 'namespace', ns]);
      return true;
    } catch {
      return false;
    }
  };
  afterAll(() => {
    try {
      execFileSync(process.env.LAB_KUBECTL ?? 'kubectl', ['delete', 'namespace', ns, '--wait=false'], { stdio: 'ignore' });
    } catch {
      /* never made */
    }
  });

  test.each([
    ['an unsigned image', 'unsigned', undefined, [] as string[], /error: image .*: no signature/],
    ['a signature by another key', 'k2', undefined, [], /error: image .*: the signature was not made with verify-key/],
    ['an ML-BOM that fails attestation-policy', 'k1', 'fail', ['--attestation-policy', 'parity=pass'], /error: image .*: attestation-policy failed: parity/],
  ] as const)('refused: %s; nothing deployed (not even the namespace)', async (_what, sign, parity, more, message) => {
    const ref = await image(`rollout-${sign}-${parity ?? 'none'}`, sign, parity);
    const r = await rollout(ref, [...more]);
    expectExit(r, 1);
    expect(r.stderr).toMatch(message);
    expect(nsExists()).toBe(false);
  });

  test('a signed image verifies and the plan (dry run) deploys exactly that digest', async () => {
    const ref = await image('rollout-signed', 'k1', 'pass');
    const r = await rollout(ref, ['--attestation-policy', 'parity=pass', '--dry-run']);
    expect(r.stderr).not.toMatch(/error:/);
    expectExit(r, 0);
    expect(r.outputs.decision).toBe('dry-run');
    expect(r.stderr).toContain(`verified the signature of ${ref}`);
    const images = [...r.stderr.matchAll(/^\+?\s*image: (\S+)$/gm)].map((m) => m[1]);
    expect(images.length).toBeGreaterThan(0);
    expect(new Set(images)).toEqual(new Set([ref]));
    expect(nsExists()).toBe(false);
  });
});
