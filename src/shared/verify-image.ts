import { fail, Reader } from '../inputs';
import type { Logger } from '../stage';
import { ModelshipError } from '../util/errors';
import {
  AttestationType,
  CosignSource,
  InTotoStatement,
  installCosign,
  isPemOrFile,
  planCosignDownload,
  PREDICATE_TYPES,
  trustedRootFor,
  Verifier,
  verifyAttestations,
  verifyImage,
} from './cosign';

/**
 * Verification of the image before smoke pulls it or rollout deploys it (inputs verify, verify-key,
 * certificate-identity, certificate-oidc-issuer, certificate-roots, transparency-log, attestation-policy): its cosign
 * signature, then, when the policy asks, its attestations (the image stage's CycloneDX ML-BOM and SLSA provenance),
 * each checked by a rule of POLICY_RULES. What to verify is data (planVerification); verifyBeforeUse does it and
 * returns the image by the digest it verified, the only reference the stage may use afterwards.
 */

export const VERIFY_MODES = ['off', 'key', 'keyless'] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

/** GitHub Actions' OIDC issuer: keyless signatures made in a workflow carry it. */
export const GITHUB_OIDC_ISSUER = 'https://token.actions.githubusercontent.com';

/** One key=value of attestation-policy, its value checked by the rule's parse. */
export interface PolicyCheck {
  key: string;
  expected: string;
}

/** What a stage verifies, as its inputs say it (undefined: verify off). */
export interface ImageVerification {
  verifier: Verifier;
  /** signatures and attestations are in the transparency log (else it is not looked for) */
  transparencyLog: boolean;
  policy: PolicyCheck[];
  cosign: CosignSource;
}

// ---------------------------------------------------------------------------------------------------------------
// the policy: one small typed rule per key, on the verified predicates

/**
 * A rule of attestation-policy: the attestation it reads, the form of its expected value, and the values the
 * predicate states. Passes when every verified attestation of its type states the expected value.
 */
export interface PolicyRule {
  key: string;
  type: AttestationType;
  /** what it checks, for the input's description and messages */
  describe: string;
  /** the expected value normalized, or a message saying what form it must have */
  parse(value: string): string | { error: string };
  /** the values the predicate states for it ([] when it states none) */
  read(predicate: unknown): string[];
}

type Json = Record<string, unknown>;
const obj = (x: unknown): Json => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Json) : {});
const arr = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
const str = (x: unknown): string[] => (typeof x === 'string' && x !== '' ? [x] : []);

/** The ML-BOM's model components (type machine-learning-model): metadata.component and components, nested ones too. */
export function modelComponents(bom: unknown): Json[] {
  const out: Json[] = [];
  const walk = (c: unknown) => {
    const o = obj(c);
    if (o.type === 'machine-learning-model') out.push(o);
    arr(o.components).forEach(walk);
  };
  walk(obj(obj(bom).metadata).component);
  arr(obj(bom).components).forEach(walk);
  return out;
}

/** A CycloneDX property's values on the model components (and, where a component lacks it, the BOM's metadata). */
function bomProperty(name: string): (bom: unknown) => string[] {
  const of = (o: Json) =>
    arr(o.properties)
      .map(obj)
      .filter((p) => p.name === name)
      .flatMap((p) => str(p.value));
  return (bom) => {
    const models = modelComponents(bom);
    const values = models.flatMap(of);
    return values.length ? values : of(obj(obj(bom).metadata));
  };
}

const word = (what: string) => (v: string) => (/^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$/.test(v) ? v : { error: `expected ${what}, got "${v}"` });
const hex = (len: number, what: string) => (v: string) =>
  new RegExp(`^[0-9a-fA-F]{${len}}$`).test(v) ? v.toLowerCase() : { error: `expected ${what}, got "${v}"` };

/** The keys attestation-policy knows. Kept small and data-like: a key is a line here. */
export const POLICY_RULES: PolicyRule[] = [
  {
    key: 'parity',
    type: 'cyclonedx',
    describe: 'the parity result the ML-BOM records for the model (property modelship:parity:status: pass, fail, skipped)',
    parse: word('a parity status (pass)'),
    read: bomProperty('modelship:parity:status'),
  },
  {
    key: 'model-sha256',
    type: 'cyclonedx',
    describe: "the model file's SHA-256 in the ML-BOM (the model component's hashes)",
    parse: hex(64, 'a sha256 in hex'),
    read: (bom) =>
      modelComponents(bom).flatMap((c) =>
        arr(c.hashes)
          .map(obj)
          .filter((h) => h.alg === 'SHA-256')
          .flatMap((h) => str(h.content).map((x) => x.toLowerCase())),
      ),
  },
  {
    key: 'model-name',
    type: 'cyclonedx',
    describe: "the model component's name in the ML-BOM",
    parse: word('a model name'),
    read: (bom) => modelComponents(bom).flatMap((c) => str(c.name)),
  },
  {
    key: 'runtime',
    type: 'cyclonedx',
    describe: 'the serving runtime the ML-BOM records (property modelship:runtime: modelship, triton)',
    parse: word('a runtime (modelship or triton)'),
    read: bomProperty('modelship:runtime'),
  },
  {
    key: 'builder-id',
    type: 'slsaprovenance1',
    describe: "the SLSA provenance's builder (runDetails.builder.id)",
    parse: word('a builder id (a URI)'),
    read: (p) => str(obj(obj(obj(p).runDetails).builder).id),
  },
  {
    key: 'build-type',
    type: 'slsaprovenance1',
    describe: "the SLSA provenance's buildDefinition.buildType",
    parse: word('a build type (a URI)'),
    read: (p) => str(obj(obj(p).buildDefinition).buildType),
  },
  {
    key: 'source-revision',
    type: 'slsaprovenance1',
    describe: "the git commit the SLSA provenance names (a resolvedDependencies entry's digest.gitCommit)",
    parse: hex(40, 'a git commit (40 hex)'),
    read: (p) =>
      arr(obj(obj(p).buildDefinition).resolvedDependencies)
        .map(obj)
        .flatMap((d) => str(obj(d.digest).gitCommit).map((x) => x.toLowerCase())),
  },
];

const RULES = new Map(POLICY_RULES.map((r) => [r.key, r]));

/** attestation-policy: `key=value` pairs, comma-separated; an unknown key or a malformed value fails naming the input. */
export function parsePolicy(text: string): PolicyCheck[] {
  const checks: PolicyCheck[] = [];
  for (const item of text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq <= 0) fail('attestation-policy', `expected key=value pairs separated by commas, got "${item}"`);
    const key = item.slice(0, eq).trim();
    const rule = RULES.get(key);
    if (!rule) fail('attestation-policy', `unknown key "${key}"; the keys are ${POLICY_RULES.map((r) => r.key).join(', ')}`);
    const v = rule.parse(item.slice(eq + 1).trim());
    if (typeof v !== 'string') fail('attestation-policy', `${key}: ${v.error}`);
    if (checks.some((c) => c.key === key)) fail('attestation-policy', `"${key}" is given twice`);
    checks.push({ key, expected: v });
  }
  return checks;
}

/** One check's outcome. */
export interface PolicyResult extends PolicyCheck {
  type: AttestationType;
  pass: boolean;
  /** the values each verified attestation states (one list per attestation) */
  found: string[][];
  /** why it failed */
  why?: string;
}

/** The policy on the verified statements, by type (pure). A type with no verified attestation fails its checks. */
export function evaluatePolicy(checks: PolicyCheck[], statements: Partial<Record<AttestationType, InTotoStatement[]>>): PolicyResult[] {
  return checks.map((c) => {
    const rule = RULES.get(c.key)!;
    const list = statements[rule.type] ?? [];
    const found = list.map((s) => rule.read(s.predicate));
    if (!list.length) return { ...c, type: rule.type, pass: false, found, why: `no verified ${rule.type} attestation` };
    const bad = found.findIndex((values) => !values.includes(c.expected));
    if (bad < 0) return { ...c, type: rule.type, pass: true, found };
    const got = found[bad].length ? found[bad].map((v) => `"${v}"`).join(', ') : 'nothing';
    return {
      ...c,
      type: rule.type,
      pass: false,
      found,
      why: `the ${rule.type} attestation${list.length > 1 ? ` (${bad + 1} of ${list.length})` : ''} states ${got} for ${rule.describe}, the policy wants "${c.expected}"`,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// the inputs

/** The cosign install inputs (image, smoke, rollout). */
export function readCosignSource(r: Reader): CosignSource {
  return { version: r.raw('cosign-version'), mirror: r.raw('cosign-mirror'), sha256: r.raw('cosign-sha256') };
}

/** verify and what goes with it, checked (undefined: off). Only for stages that read verify. */
export function readVerification(r: Reader): ImageVerification | undefined {
  if (!r.uses('verify')) return undefined;
  const mode = r.oneOf('verify', VERIFY_MODES);
  const transparencyLog = r.bool('transparency-log');
  const policyText = r.raw('attestation-policy');
  const keylessOnly = ['certificate-identity', 'certificate-roots'];
  if (mode === 'off') {
    if (policyText) fail('attestation-policy', 'checks verified attestations: give verify (key or keyless) too');
    return undefined;
  }
  const policy = parsePolicy(policyText);
  const cosign = readCosignSource(r);
  planCosignDownload(cosign); // a malformed or unpinned cosign input fails now, not after the build
  if (mode === 'key') {
    if (r.raw('verify-key') === '') fail('verify-key', 'is required with verify: key (the public key, PEM text or a file)');
    for (const name of keylessOnly) if (r.raw(name) !== '') fail(name, 'is for verify: keyless (verify: key checks verify-key only)');
    const key = r.raw('verify-key');
    if (!isPemOrFile(key))
      fail(
        'verify-key',
        `expected the public key as PEM text or the path of a PEM file, got "${key.length > 80 ? `${key.slice(0, 80)}...` : key}" (no such file)`,
      );
    return { verifier: { kind: 'key', key }, transparencyLog, policy, cosign };
  }
  if (r.raw('verify-key') !== '') fail('verify-key', 'is for verify: key (verify: keyless checks the certificate identity)');
  const identity = r.raw('certificate-identity');
  if (!identity)
    fail('certificate-identity', 'is required with verify: keyless (e.g. https://github.com/org/repo/.github/workflows/deploy.yml@refs/heads/main)');
  const issuer = r.raw('certificate-oidc-issuer');
  if (!/^https?:\/\//.test(issuer)) fail('certificate-oidc-issuer', `expected the OIDC issuer's URL (e.g. ${GITHUB_OIDC_ISSUER}), got "${issuer}"`);
  const roots = r.raw('certificate-roots');
  if (roots) trustedRootFor(roots, transparencyLog); // readable, certificates or a trusted root, and usable with the log switch
  return { verifier: { kind: 'keyless', identity, issuer, roots: roots || undefined }, transparencyLog, policy, cosign };
}

// ---------------------------------------------------------------------------------------------------------------
// the plan and the effect

/** What verifyBeforeUse does, as data. */
export interface VerificationPlan {
  image: string;
  verifier: Verifier;
  transparencyLog: boolean;
  /** the attestation types the policy reads: each verified by digest after the signature */
  attestations: AttestationType[];
  checks: PolicyCheck[];
}

export function planVerification(v: ImageVerification, image: string): VerificationPlan {
  const attestations = [...new Set(v.policy.map((c) => RULES.get(c.key)!.type))];
  return { image, verifier: v.verifier, transparencyLog: v.transparencyLog, attestations, checks: v.policy };
}

export interface VerifiedImage {
  /** repository@sha256:...: the only reference the stage may use after this */
  image: string;
  digest: string;
  attestations: Partial<Record<AttestationType, InTotoStatement[]>>;
  policy: PolicyResult[];
}

/** The plan in words, for the log. */
export function describePlan(p: VerificationPlan): string {
  const who =
    p.verifier.kind === 'key'
      ? 'verify-key'
      : `certificate-identity ${p.verifier.identity} (issuer ${p.verifier.issuer}${p.verifier.roots ? ', certificate-roots' : ", Sigstore's roots"})`;
  const atts = p.attestations.length ? `; attestations ${p.attestations.map((t) => `${t} (${PREDICATE_TYPES[t]})`).join(', ')}` : '';
  return `verify ${p.image}: signature by ${who}${p.transparencyLog ? '' : ', transparency log off'}${atts}${p.checks.length ? `; policy ${p.checks.map((c) => `${c.key}=${c.expected}`).join(',')}` : ''}`;
}

/**
 * Verify before use: install cosign, verify the signature (a tag resolves to a digest here, once), then each
 * attestation the policy needs by that digest, then the policy. Anything that does not verify throws a 'verify'
 * ModelshipError naming it; the registry's or the network's failure is named as theirs. `env` carries the stage's
 * DOCKER_CONFIG (a private registry's login).
 */
export async function verifyBeforeUse(v: ImageVerification, image: string, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<VerifiedImage> {
  const plan = planVerification(v, image);
  return log.group(`verify ${image}`, async () => {
    log.info(describePlan(plan));
    const cosign = await installCosign(v.cosign, log);
    const verified = await verifyImage(cosign, { image, verifier: plan.verifier, transparencyLog: plan.transparencyLog }, log, env);
    const attestations: VerifiedImage['attestations'] = {};
    for (const type of plan.attestations)
      attestations[type] = await verifyAttestations(
        cosign,
        { image: verified.image, verifier: plan.verifier, transparencyLog: plan.transparencyLog, type },
        log,
        env,
      );
    const policy = evaluatePolicy(plan.checks, attestations);
    const failed = policy.filter((p) => !p.pass);
    if (failed.length)
      throw new ModelshipError('verify', `image ${verified.image}: attestation-policy failed: ${failed.map((f) => `${f.key}: ${f.why}`).join('; ')}`, {
        field: 'attestation-policy',
      });
    if (policy.length) log.info(`attestation-policy: ${policy.map((p) => `${p.key}=${p.expected}`).join(', ')}: pass`);
    return { ...verified, attestations, policy };
  });
}
