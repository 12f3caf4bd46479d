import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './helpers/caffe';
import { runCli } from './helpers/cli';
import { nodeMirror, type Mirror } from './helpers/node-release';
import { supplyChainFiles } from './helpers/cosign';
import { INPUTS, OUTPUTS, readConfig } from '../src/config';
import { parseArgs, usage } from '../src/cli';
import { recordSupplyChain, imageFacts } from '../src/image/supply-chain';
import { planSign } from '../src/sign';
import { PREDICATE_TYPES } from '../src/shared/cosign';
import { ModelshipError } from '../src/util/errors';

// The sign stage without a registry: its inputs (the image by digest, the documents the image stage wrote checked
// against it), what it runs (a stand-in cosign, served from a local stand-in for cosign's release and installed as the
// stage installs cosign, records every command: its argv, COSIGN_PASSWORD, the key file, the predicate, the
// DOCKER_CONFIG), that sign off installs and runs nothing, that the image stage's signing runs the very same commands
// on the same documents, and its CLI flags. The real cosign against the lab registry: test/sign-stage.lab.test.ts.

const dir = tmpDir('modelship-sign-stage-');
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const OTHER = `sha256:${'cd'.repeat(32)}`;
const LAB_REPO = '127.0.0.1:5000/m/lenet';
const LAB_IMAGE = `${LAB_REPO}@${DIGEST}`;
const GHCR_IMAGE = `ghcr.io/org/lenet@${DIGEST}`;
const PASSWORD = 'sign-stage-Pa55word';
const KEY = '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nc2lnbi1zdGFnZS1rZXk=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n';
const REGISTRY_PASSWORD = 'registry-Pa55-token';

// a stand-in cosign: each run writes what it was given into a directory of its own, numbered in order
const record = path.join(dir, 'record');
const fake = path.join(dir, 'cosign-fake');
fs.writeFileSync(
  fake,
  [
    '#!/bin/sh',
    'n=$(ls "$FAKE_RECORD" | wc -l); d="$FAKE_RECORD/$n"; mkdir -p "$d"',
    'printf "%s\\n" "$@" > "$d/args"',
    'printf "%s" "$COSIGN_PASSWORD" > "$d/password"',
    'printf "%s" "$DOCKER_CONFIG" > "$d/docker-config-dir"',
    'if [ -n "$DOCKER_CONFIG" ] && [ -f "$DOCKER_CONFIG/config.json" ]; then cat "$DOCKER_CONFIG/config.json" > "$d/docker-config"; fi',
    'while [ $# -gt 0 ]; do',
    '  if [ "$1" = --key ]; then stat -c %a "$2" > "$d/keymode"; dirname "$2" > "$d/keydir"; cat "$2" > "$d/key"; fi',
    '  if [ "$1" = --predicate ]; then cat "$2" > "$d/predicate"; fi',
    '  shift',
    'done',
    'if [ -n "$FAKE_FAIL" ]; then printf "Error: %s\\n" "$FAKE_FAIL" >&2; exit 1; fi',
  ].join('\n') + '\n',
  { mode: 0o755 },
);
const FAKE_SHA = crypto.createHash('sha256').update(fs.readFileSync(fake)).digest('hex');
const platform = process.arch === 'arm64' ? 'linux-arm64' : 'linux-amd64';

interface Run {
  args: string[];
  password: string;
  dockerConfigDir: string;
  dockerConfig?: string;
  keyMode?: string;
  keyDir?: string;
  key?: string;
  predicate?: unknown;
}
/** What the stand-in cosign was given, run by run. */
function runs(): Run[] {
  if (!fs.existsSync(record)) return [];
  return fs
    .readdirSync(record)
    .sort((a, b) => Number(a) - Number(b))
    .map((n) => {
      const f = (x: string) => (fs.existsSync(path.join(record, n, x)) ? fs.readFileSync(path.join(record, n, x), 'utf8') : undefined);
      return {
        args: f('args')!.trimEnd().split('\n'),
        password: f('password')!,
        dockerConfigDir: f('docker-config-dir')!,
        dockerConfig: f('docker-config'),
        keyMode: f('keymode')?.trim(),
        keyDir: f('keydir')?.trim(),
        key: f('key'),
        predicate: f('predicate') === undefined ? undefined : (JSON.parse(f('predicate')!) as unknown),
      };
    });
}

let mirror: Mirror;
const saved = { cache: process.env.RUNNER_TOOL_CACHE, temp: process.env.RUNNER_TEMP, record: process.env.FAKE_RECORD };
beforeAll(async () => {
  mirror = await nodeMirror({ [`v3.1.3/cosign-${platform}`]: { file: fake } });
});
afterAll(async () => {
  await mirror.close();
  for (const [k, v] of [
    ['RUNNER_TOOL_CACHE', saved.cache],
    ['RUNNER_TEMP', saved.temp],
    ['FAKE_RECORD', saved.record],
  ] as const)
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});
beforeEach(() => {
  process.env.RUNNER_TOOL_CACHE = fs.mkdtempSync(path.join(dir, 'cache-'));
  process.env.RUNNER_TEMP = fs.mkdtempSync(path.join(dir, 'temp-'));
  process.env.FAKE_RECORD = record;
  fs.rmSync(record, { recursive: true, force: true });
  fs.mkdirSync(record);
  mirror.requests.length = 0;
});

const cosignFlags = () => ['--cosign-version', '3.1.3', '--cosign-mirror', mirror.url, '--cosign-sha256', FAKE_SHA];

/** A document file of `name` holding `content` (JSON unless a string). */
function file(name: string, content: unknown): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
}
const keyFile = file('cosign.key', KEY);

const statement = (digest: string, more: Record<string, unknown> = {}) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: LAB_REPO, digest: { sha256: digest.slice(7) } }],
  predicateType: PREDICATE_TYPES.slsaprovenance1,
  predicate: { buildDefinition: { buildType: 'https://github.com/org/modelship/image@v1' }, runDetails: { builder: { id: 'cli' } } },
  ...more,
});
const bom = (digest?: string) => ({
  bomFormat: 'CycloneDX',
  specVersion: '1.6',
  version: 1,
  ...(digest ? { metadata: { component: { type: 'container', name: LAB_REPO, version: digest } } } : {}),
  components: [{ type: 'machine-learning-model', name: 'lenet' }],
});

describe('the sign stage: bad input fails naming it, before cosign is installed or run', () => {
  const goodBom = file('good-bom.json', bom(DIGEST));
  const goodProvenance = file('good-provenance.json', statement(DIGEST));
  test.each([
    ['no image', [], 'image', /is required for stage sign/],
    [
      'a tag, not a digest',
      ['--image', `${LAB_REPO}:v1`],
      'image',
      /signs a pushed image by digest \(repository@sha256:<64 hex>.*got "127\.0\.0\.1:5000\/m\/lenet:v1"/,
    ],
    ['not an image reference', ['--image', 'Not An Image@sha256:x'], 'image', /is not a valid image reference/],
    ['ml-bom-file missing', ['--ml-bom-file', path.join(dir, 'no-such-bom.json')], 'ml-bom-file', /cannot read .*no-such-bom\.json: no such file/],
    ['ml-bom-file not JSON', ['--ml-bom-file', file('bom.txt', 'not json {')], 'ml-bom-file', /bom\.txt is not JSON/],
    [
      'ml-bom-file not CycloneDX',
      ['--ml-bom-file', file('spdx.json', { spdxVersion: 'SPDX-2.3' })],
      'ml-bom-file',
      /spdx\.json is not a CycloneDX JSON document/,
    ],
    [
      'an ML-BOM of another image',
      ['--ml-bom-file', file('other-bom.json', bom(OTHER))],
      'ml-bom-file',
      /other-bom\.json describes another image \(.*@sha256:cdcd.*\), not the image to sign/,
    ],
    [
      'provenance-file missing',
      ['--provenance-file', path.join(dir, 'no-such.intoto.json')],
      'provenance-file',
      /cannot read .*no-such\.intoto\.json: no such file/,
    ],
    ['provenance-file not JSON', ['--provenance-file', file('prov.txt', '{"_type":')], 'provenance-file', /prov\.txt is not JSON/],
    [
      'provenance-file not an in-toto statement',
      ['--provenance-file', file('bare.json', statement(DIGEST).predicate)],
      'provenance-file',
      /bare\.json is not an in-toto statement/,
    ],
    [
      'provenance of another predicate type',
      ['--provenance-file', file('v02.json', statement(DIGEST, { predicateType: 'https://slsa.dev/provenance/v0.2' }))],
      'provenance-file',
      /v02\.json is not SLSA provenance: predicateType is "https:\/\/slsa\.dev\/provenance\/v0\.2"/,
    ],
    [
      'provenance without a predicate',
      ['--provenance-file', file('nopred.json', statement(DIGEST, { predicate: undefined }))],
      'provenance-file',
      /nopred\.json has no predicate/,
    ],
    [
      'a provenance whose subject is another digest',
      ['--provenance-file', file('other-prov.json', statement(OTHER))],
      'provenance-file',
      /other-prov\.json describes another image \(subject sha256:cdcd[0-9a-f]+\), not the image to sign \(sha256:abab/,
    ],
    ['sign neither off, key nor keyless', ['--sign', 'yes'], 'sign', /expected one of off, key, keyless/],
    ['sign key without signing-key', ['--sign', 'key'], 'signing-key', /sign: key needs the cosign private key/],
    [
      'a signing-key that is neither PEM nor a file',
      ['--sign', 'key', '--signing-key', '/no/such/cosign.key'],
      'signing-key',
      /PEM text or the path of its file, and there is no such file/,
    ],
    ['signing-key with sign keyless', ['--sign', 'keyless', '--signing-key', keyFile], 'signing-key', /is only used with sign: key \(sign is keyless\)/],
    [
      'registry-username without registry-password',
      ['--sign', 'key', '--signing-key', keyFile, '--registry-username', 'bot'],
      'registry-password',
      /is required with registry-username/,
    ],
    [
      'cosign-version malformed',
      ['--sign', 'key', '--signing-key', keyFile, '--cosign-version', 'latest'],
      'cosign-version',
      /expected a cosign release version/,
    ],
  ])('%s', async (_what, flags, field, message) => {
    const base = ['--image', LAB_IMAGE, '--ml-bom-file', goodBom, '--provenance-file', goodProvenance, ...cosignFlags()];
    // a flag given twice is refused by the CLI: the case's own replace the base's
    const given = new Map<string, string>();
    for (const list of [base, flags]) for (let i = 0; i < list.length; i += 2) given.set(list[i], list[i + 1]);
    if (!flags.length) given.delete('--image');
    const r = await runCli(['sign', ...[...given].flat()]);
    expect([r.code, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toMatch(new RegExp(`^error: input "${field}": `));
    expect(r.stderr).toMatch(message);
    // nothing installed, nothing run
    expect(mirror.requests).toEqual([]);
    expect(runs()).toEqual([]);
    const e = (() => {
      try {
        readConfig((n) => ({ stage: 'sign', ...Object.fromEntries([...given].map(([k, v]) => [k.slice(2), v])) })[n]);
      } catch (x) {
        return x as ModelshipError;
      }
      throw new Error('expected readConfig to refuse it');
    })();
    expect([e.code, e.location.field]).toEqual(['input', field]);
  });

  test('the key never appears in the message of a bad signing-key', async () => {
    const secret = 'not-a-key-but-a-Secret-value';
    const r = await runCli(['sign', '--image', LAB_IMAGE, '--sign', 'key', '--signing-key', secret]);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toContain(secret);
  });

  test('documents are checked by the sign stage only: for the image stage the same inputs are where it writes', () => {
    const cfg = readConfig(
      (n) =>
        ({
          stage: 'image',
          image: LAB_REPO,
          'ml-bom-file': path.join(dir, 'to-be-written.cdx.json'),
          'provenance-file': path.join(dir, 'to-be-written.intoto.json'),
        })[n],
    );
    expect([cfg.image.mlBomFile, cfg.image.provenanceFile]).toEqual([path.join(dir, 'to-be-written.cdx.json'), path.join(dir, 'to-be-written.intoto.json')]);
  });
});

describe('the sign stage: what it signs and attests (a stand-in cosign records each command)', () => {
  test('sign off: signed false, the image as given; cosign is neither installed nor run', async () => {
    const files = await supplyChainFiles(LAB_IMAGE, dir);
    const r = await runCli(['sign', '--image', LAB_IMAGE, '--ml-bom-file', files.mlBom, '--provenance-file', files.provenance, ...cosignFlags(), '--json']);
    expect(r.code).toBe(0);
    expect(r.json()).toEqual({ image: LAB_IMAGE, signed: 'false' });
    expect(r.stderr).toMatch(/sign: off: .* is not signed/);
    expect(mirror.requests).toEqual([]);
    expect(runs()).toEqual([]);
  });

  test('key, no transparency log, plain-HTTP registry: sign, attest the ML-BOM, attest the provenance predicate; secrets in files removed afterwards', async () => {
    const files = await supplyChainFiles(LAB_IMAGE, dir);
    const r = await runCli([
      'sign',
      '--image',
      LAB_IMAGE,
      '--ml-bom-file',
      files.mlBom,
      '--provenance-file',
      files.provenance,
      '--sign',
      'key',
      '--signing-key',
      KEY,
      '--signing-key-password',
      PASSWORD,
      '--transparency-log',
      'false',
      '--registry-username',
      'bot',
      '--registry-password',
      REGISTRY_PASSWORD,
      ...cosignFlags(),
      '--json',
    ]);
    expect([r.code, r.json()]).toEqual([0, { image: LAB_IMAGE, signed: 'true' }]);
    expect(mirror.requests).toEqual([`v3.1.3/cosign-${platform}`]);
    const done = runs();
    const key = (i: number) => path.join(done[i].keyDir!, 'cosign.key');
    expect(done.map((x) => x.args)).toEqual([
      ['sign', '--key', key(0), '--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry', '--yes', LAB_IMAGE],
      [
        'attest',
        '--key',
        key(1),
        '--predicate',
        path.join(done[1].keyDir!, 'predicate.json'),
        '--type',
        'cyclonedx',
        '--tlog-upload=false',
        '--use-signing-config=false',
        '--allow-http-registry',
        '--yes',
        LAB_IMAGE,
      ],
      [
        'attest',
        '--key',
        key(2),
        '--predicate',
        path.join(done[2].keyDir!, 'predicate.json'),
        '--type',
        'slsaprovenance1',
        '--tlog-upload=false',
        '--use-signing-config=false',
        '--allow-http-registry',
        '--yes',
        LAB_IMAGE,
      ],
    ]);
    // the documents as the image stage wrote them: the whole BOM, the provenance statement's predicate
    const provenance = JSON.parse(fs.readFileSync(files.provenance, 'utf8')) as { predicate: unknown };
    expect(done.map((x) => x.predicate)).toEqual([undefined, JSON.parse(fs.readFileSync(files.mlBom, 'utf8')), provenance.predicate]);
    for (const x of done) {
      expect([x.keyMode, x.key, x.password]).toEqual(['600', KEY, PASSWORD]);
      expect(x.args.join(' ')).not.toContain(PASSWORD);
      // the registry login: a private DOCKER_CONFIG for cosign, written there, removed when the stage ended
      expect((JSON.parse(x.dockerConfig!) as { auths: Record<string, unknown> }).auths['127.0.0.1:5000']).toEqual({
        auth: Buffer.from(`bot:${REGISTRY_PASSWORD}`).toString('base64'),
      });
      expect(fs.existsSync(x.dockerConfigDir)).toBe(false);
      expect(fs.existsSync(x.keyDir!)).toBe(false);
    }
    expect(r.stderr).not.toContain(PASSWORD);
    expect(r.stderr).not.toContain(REGISTRY_PASSWORD);
    expect(r.stderr).not.toContain('c2lnbi1zdGFnZS1rZXk=');
    // nothing of the stage's left in RUNNER_TEMP
    expect(fs.readdirSync(process.env.RUNNER_TEMP!)).toEqual([]);
  });

  test('keyless, transparency log on, an HTTPS registry, the ML-BOM only (provenance-file empty): sign, attest cyclonedx', async () => {
    const saved = { url: process.env.ACTIONS_ID_TOKEN_REQUEST_URL, token: process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN };
    process.env.ACTIONS_ID_TOKEN_REQUEST_URL = 'https://token.example';
    process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN = 't';
    try {
      const mlBom = file('ghcr-bom.json', bom(DIGEST));
      // a tag beside the digest is dropped: what is signed is the digest
      const r = await runCli(['sign', '--image', `ghcr.io/org/lenet:v1@${DIGEST}`, '--ml-bom-file', mlBom, '--sign', 'keyless', ...cosignFlags(), '--json']);
      expect([r.code, r.json()]).toEqual([0, { image: GHCR_IMAGE, signed: 'true' }]);
      const done = runs();
      expect(done.map((x) => x.args)).toEqual([
        ['sign', '--oidc-provider=github-actions', '--yes', GHCR_IMAGE],
        ['attest', '--oidc-provider=github-actions', '--predicate', expect.stringMatching(/predicate\.json$/), '--type', 'cyclonedx', '--yes', GHCR_IMAGE],
      ]);
      expect(done[1].predicate).toEqual(bom(DIGEST));
      // no registry-username: cosign reads the environment's own Docker config
      expect(done[0].dockerConfigDir).toBe(process.env.DOCKER_CONFIG ?? '');
    } finally {
      for (const [k, v] of [
        ['ACTIONS_ID_TOKEN_REQUEST_URL', saved.url],
        ['ACTIONS_ID_TOKEN_REQUEST_TOKEN', saved.token],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  test("keyless without the job's OIDC token fails naming id-token: write; nothing signed", async () => {
    const saved = process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
    delete process.env.ACTIONS_ID_TOKEN_REQUEST_URL;
    try {
      const r = await runCli(['sign', '--image', GHCR_IMAGE, '--sign', 'keyless', ...cosignFlags()]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/id-token: write/);
      expect(runs()).toEqual([]);
    } finally {
      if (saved !== undefined) process.env.ACTIONS_ID_TOKEN_REQUEST_URL = saved;
    }
  });

  test("cosign failing (the registry refusing) is the registry's failure; the stage stops at the first command", async () => {
    process.env.FAKE_FAIL = 'PUT https://ghcr.io/v2/org/lenet/manifests/sha256-abab.sig: DENIED: permission_denied: write_package';
    try {
      const r = await runCli(['sign', '--image', GHCR_IMAGE, '--sign', 'key', '--signing-key', keyFile, ...cosignFlags()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/error: cosign sign ghcr\.io\/org\/lenet@sha256:abab[0-9a-f]+: registry ghcr\.io refused: .*DENIED/);
      expect(runs().map((x) => x.args[0])).toEqual(['sign']);
    } finally {
      delete process.env.FAKE_FAIL;
    }
  });

  test("the image stage's signing runs the same commands on the same documents (one sequence, src/shared/attest.ts)", async () => {
    const signing = {
      sign: 'key' as const,
      signingKey: keyFile,
      signingKeyPassword: PASSWORD,
      transparencyLog: false,
      cosign: { version: '3.1.3', mirror: mirror.url, sha256: FAKE_SHA },
    };
    const model = file('model.onnx', 'a model');
    const d = fs.mkdtempSync(path.join(dir, 'image-stage-'));
    const files = { mlBom: path.join(d, 'ml-bom.cdx.json'), provenance: path.join(d, 'provenance.intoto.json') };
    const quiet = { info: () => undefined, warning: () => undefined, group: <T>(_n: string, fn: () => Promise<T>) => fn() };
    const image = await recordSupplyChain(
      {
        facts: imageFacts({
          repository: LAB_REPO,
          digest: DIGEST,
          tags: [],
          runtime: 'modelship',
          gpu: false,
          created: '2026-12-07T00:00:00.000Z',
          model: { name: 'lenet', path: model, bytes: Buffer.from('a model'), fileInImage: 'model.onnx', parity: 'pass' },
          context: { base: { name: '127.0.0.1:5000/local/debian', digest: `sha256:${'b'.repeat(64)}` } },
          warn: () => undefined,
        }),
        inputs: { image: LAB_REPO, model, modelName: 'lenet', runtime: 'modelship', gpu: false, parity: 'pass', encryptModel: false, cache: 'off', push: true },
        git: { source: 'https://github.com/org/repo', sha: 'a'.repeat(40) },
        buildxDriver: 'docker',
        startedOn: '2026-12-07T00:00:00.000Z',
        files,
        signing,
        pinned: LAB_IMAGE,
      },
      quiet,
      { ...process.env },
    );
    expect(image.signed).toBe(true);
    const byImage = runs();
    fs.rmSync(record, { recursive: true, force: true });
    fs.mkdirSync(record);
    const r = await runCli([
      'sign',
      '--image',
      LAB_IMAGE,
      '--ml-bom-file',
      files.mlBom,
      '--provenance-file',
      files.provenance,
      '--sign',
      'key',
      '--signing-key',
      keyFile,
      '--signing-key-password',
      PASSWORD,
      '--transparency-log',
      'false',
      ...cosignFlags(),
    ]);
    expect(r.code).toBe(0);
    const bySign = runs();
    const normal = (x: Run) => ({
      args: x.args.map((a) => a.replace(/\/modelship-cosign-[^/]+\//, '/<private>/')),
      predicate: x.predicate,
      password: x.password,
    });
    expect(bySign).toHaveLength(3);
    expect(bySign.map(normal)).toEqual(byImage.map(normal));
  });
});

describe('the sign stage on the command line', () => {
  test('its flags are the action inputs it reads; its outputs image and signed', () => {
    const help = usage('sign');
    const flags = [...help.matchAll(/^ {2}--([a-z0-9-]+)/gm)].map((m) => m[1]).sort();
    expect(flags).toEqual(
      [
        'inputs',
        'image',
        'ml-bom-file',
        'provenance-file',
        'sign',
        'signing-key',
        'signing-key-password',
        'transparency-log',
        'cosign-version',
        'cosign-mirror',
        'cosign-sha256',
        'registry-username',
        'registry-password',
      ].sort(),
    );
    const outputs = help
      .slice(help.indexOf('outputs are printed'))
      .split('\n')
      .slice(1)
      .map((l) => /^ {2}(\S+)/.exec(l)?.[1])
      .filter(Boolean);
    expect(outputs).toEqual(['image', 'signed']);
    expect(help).toMatch(/^stages: .*\bsign\b/m);
    // one declaration per name (action.yml's keys): the sign stage's are the image stage's
    expect(new Set(INPUTS.map((i) => i.name)).size).toBe(INPUTS.length);
    expect(new Set(OUTPUTS.map((o) => o.name)).size).toBe(OUTPUTS.length);
    for (const name of ['image', 'signed']) expect(OUTPUTS.find((o) => o.name === name)!.stages).toEqual(['image', 'sign']);
  });

  test('flags parse into the stage config, --flag=value and booleans included', () => {
    const bomFile = file('cli-bom.json', bom(DIGEST));
    const provFile = file('cli-prov.json', statement(DIGEST));
    const { values, json } = parseArgs([
      'sign',
      '--image',
      LAB_IMAGE,
      `--ml-bom-file=${bomFile}`,
      '--provenance-file',
      provFile,
      '--sign',
      'key',
      '--signing-key',
      keyFile,
      '--signing-key-password',
      PASSWORD,
      '--transparency-log',
      'false',
      '--cosign-version',
      '3.1.3',
      '--registry-username',
      'bot',
      '--registry-password',
      REGISTRY_PASSWORD,
      '--json',
    ]);
    expect(json).toBe(true);
    const cfg = readConfig((n) => values.get(n));
    expect(cfg.stage).toBe('sign');
    expect(cfg.sign).toEqual({
      image: LAB_IMAGE,
      digest: DIGEST,
      signing: { sign: 'key', signingKey: keyFile, signingKeyPassword: PASSWORD, transparencyLog: false, cosign: { version: '3.1.3', mirror: '', sha256: '' } },
      mlBom: { file: bomFile, document: bom(DIGEST) },
      provenance: { file: provFile, document: statement(DIGEST) },
      registryUsername: 'bot',
      registryPassword: REGISTRY_PASSWORD,
    });
    expect(planSign(cfg.sign)).toEqual({
      image: LAB_IMAGE,
      signer: 'key',
      attestations: [
        { type: 'cyclonedx', file: bomFile },
        { type: 'slsaprovenance1', file: provFile },
      ],
      transparencyLog: false,
    });
    // a bare boolean flag is true; unknown flags are refused
    expect(readConfig((n) => parseArgs(['sign', '--image', LAB_IMAGE, '--transparency-log']).values.get(n)).sign.signing.transparencyLog).toBe(true);
    expect(() => parseArgs(['sign', '--signing-keys', 'x'])).toThrow(/unknown flag --signing-keys/);
    // the other inputs of the image stage are not the sign stage's: in `inputs` they are refused
    const e = (() => {
      try {
        readConfig((n) => ({ stage: 'sign', image: LAB_IMAGE, inputs: 'compose-file: x.yml' })[n]);
      } catch (x) {
        return x as ModelshipError;
      }
      throw new Error('expected a refusal');
    })();
    expect(e.message).toMatch(/"compose-file" is not read by stage sign/);
  });
});
