import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Logger } from '../stage';
import { ModelshipError } from '../util/errors';
import { runProcess } from '../util/proc';
import { cacheDir, downloadVerified, ensureToolCacheEnv, findCached, hashFile, shownUrl } from '../util/toolcache';
import { parseImageRef, plainHttpRegistry } from './registry';

/**
 * cosign (sigstore/cosign): signatures and attestations of the serving image, shared by the image stage (sign,
 * attest), smoke and rollout (verify before they pull or deploy). Three parts, kept apart:
 * - the install: the release binary through @actions/tool-cache, pinned by sha256 (a table below, or cosign-sha256);
 * - the argument builders: pure, one per cosign command, from what is to be signed or verified (table-tested);
 * - the effects: run cosign with the secrets in files of a private temporary directory and the password in the
 *   child's environment only, and turn what it says into a verdict: a 'verify' ModelshipError naming what did not
 *   verify, or the registry's, the network's or Sigstore's failure named as theirs.
 * Registry credentials come from the DOCKER_CONFIG of the stage's session (cosign reads it like docker does).
 */

export const DEFAULT_COSIGN_VERSION = '3.1.3';
export const COSIGN_RELEASES = 'https://github.com/sigstore/cosign/releases/download';
/** The tool-cache name: modelship's own, so another action's cosign entry is neither used nor replaced. */
export const COSIGN_TOOL = 'modelship-cosign';

/**
 * sha256 of the release binaries, as each release's cosign_checksums.txt publishes them. A version or platform not
 * here (or any mirror) needs cosign-sha256.
 */
export const COSIGN_CHECKSUMS: Record<string, Record<string, string>> = {
  '3.1.3': {
    'linux-amd64': '4629c757b7618056f8ddd7e2625ae9fdd94c0372a65049520bc7d9df9efc7f71',
    'linux-arm64': 'c5d324e091826b0d7a78eb16fef316450b4eb9aaec045611c08ba06f5e73220a',
  },
};

/** Where cosign comes from: the inputs cosign-version, cosign-mirror and cosign-sha256. */
export interface CosignSource {
  /** x.y.z (a leading v is accepted) */
  version: string;
  /** '' = GitHub's releases; else a base URL with the same layout: `<mirror>/v<version>/cosign-<os>-<arch>` */
  mirror: string;
  /** '' = the table's; else the sha256 the download must have */
  sha256: string;
}

/** An installed cosign. */
export interface Cosign {
  binary: string;
  version: string;
  /** the URL it was downloaded from (first time) */
  url: string;
  sha256: string;
}

/** What to download: the URL and the digest it must have. */
export interface CosignDownload {
  version: string;
  /** `<os>-<arch>` as cosign's release assets name it (linux-amd64) */
  platform: string;
  url: string;
  sha256: string;
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };
const GOOS: Record<string, string> = { linux: 'linux', darwin: 'darwin' };

/** This machine as cosign's release assets name it, e.g. linux-amd64. */
export function cosignPlatform(platform: string = process.platform, arch: string = process.arch): string {
  const os_ = GOOS[platform];
  const arch_ = GOARCH[arch];
  if (!os_ || !arch_) throw new ModelshipError('unsupported', `cosign: no release binary for ${platform}/${arch} (linux or darwin, x64 or arm64)`);
  return `${os_}-${arch_}`;
}

/** The download for a source, its inputs checked (pure): a bad or unpinned input fails naming it. */
export function planCosignDownload(src: CosignSource, platform: string = cosignPlatform()): CosignDownload {
  const v = /^v?(\d+\.\d+\.\d+)$/.exec(src.version.trim());
  if (!v) throw input('cosign-version', `expected a cosign release version like ${DEFAULT_COSIGN_VERSION}, got "${src.version}"`);
  const version = v[1];
  const mirror = src.mirror.trim().replace(/\/+$/, '');
  if (mirror) {
    let u: URL | undefined;
    try {
      u = new URL(mirror);
    } catch {
      /* below */
    }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) throw input('cosign-mirror', `expected an http(s) URL, got "${src.mirror}"`);
  }
  const given = src.sha256.trim().toLowerCase();
  if (given && !/^[0-9a-f]{64}$/.test(given)) throw input('cosign-sha256', `expected a sha256 in hex (64 characters), got "${src.sha256}"`);
  const pinned = COSIGN_CHECKSUMS[version]?.[platform];
  // a mirror may serve anything: its files are pinned by whoever chose it
  if (!given && (mirror || !pinned))
    throw input(
      'cosign-sha256',
      mirror
        ? `cosign from the mirror ${shownUrl(mirror)} needs its sha256 (cosign-sha256: the cosign_checksums.txt line of cosign-${platform})`
        : `cosign ${version} (${platform}) has no sha256 in modelship's table (${Object.keys(COSIGN_CHECKSUMS).join(', ')}): give cosign-sha256 (the cosign_checksums.txt line of cosign-${platform})`,
    );
  const sha256 = given || pinned;
  return { version, platform, url: `${mirror || COSIGN_RELEASES}/v${version}/cosign-${platform}`, sha256 };
}

/**
 * cosign for this runner: from the tool cache when an entry of this version hashes to the pinned sha256 (re-verified
 * on every run), else downloaded, checked against the pin before it is used and cached. A mismatch names the URL
 * and both digests; a 404 is a wrong cosign-version (or cosign-mirror); any other download failure is the mirror's.
 */
export async function installCosign(src: CosignSource, log: Pick<Logger, 'info'>): Promise<Cosign> {
  const plan = planCosignDownload(src);
  const arch = plan.platform.split('-')[1];
  const cached = await findCached(COSIGN_TOOL, plan.version, arch);
  if (cached) {
    const binary = path.join(cached, 'cosign');
    const have = fs.existsSync(binary) ? (await hashFile(binary)).sha256 : '';
    if (have === plan.sha256) {
      log.info(`cosign v${plan.version} from the tool cache (${cached}): sha256 ${plan.sha256} verified`);
      return { binary, version: plan.version, url: plan.url, sha256: plan.sha256 };
    }
    log.info(`cosign v${plan.version} in the tool cache (${cached}) does not hash to ${plan.sha256}${have ? ` (it is ${have})` : ''}: downloading it again`);
  }
  const { temp } = ensureToolCacheEnv();
  const mirror = src.mirror.trim();
  log.info(`cosign v${plan.version}: downloading ${shownUrl(plan.url)}`);
  let file: string;
  try {
    file = (await downloadVerified(plan.url, { sha256: plan.sha256 }, `cosign v${plan.version}`)).file;
  } catch (e) {
    throw downloadFailure(e, plan, mirror);
  }
  const work = fs.mkdtempSync(path.join(temp, 'modelship-cosign-'));
  try {
    fs.copyFileSync(file, path.join(work, 'cosign'));
    fs.chmodSync(path.join(work, 'cosign'), 0o755);
    const dir = await cacheDir(work, COSIGN_TOOL, plan.version, arch);
    log.info(`cosign v${plan.version}: sha256 ${plan.sha256} verified; cached in ${dir}`);
    return { binary: path.join(dir, 'cosign'), version: plan.version, url: plan.url, sha256: plan.sha256 };
  } finally {
    fs.rmSync(file, { force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A failed download as the user can act on it: a checksum mismatch as it is, a 404 as the inputs', the rest as the mirror's. */
export function downloadFailure(e: unknown, plan: CosignDownload, mirror: string): Error {
  if (!(e instanceof ModelshipError)) return e as Error;
  if (/checksum mismatch/.test(e.message)) return e;
  if (/\bHTTP 404\b/.test(e.message))
    return input(
      mirror ? 'cosign-mirror' : 'cosign-version',
      `there is no cosign v${plan.version} at ${shownUrl(plan.url)} (HTTP 404): check cosign-version${mirror ? ' and cosign-mirror' : ''}`,
    );
  const where = mirror ? `the cosign mirror ${shownUrl(mirror)}` : 'GitHub releases (github.com)';
  return new ModelshipError('io', `${where} failed: ${e.message}`, { field: mirror ? 'cosign-mirror' : 'cosign-version' });
}

// ---------------------------------------------------------------------------------------------------------------
// the argument builders (pure)

/** The attestation types modelship writes and reads, as cosign's --type names them, and their in-toto predicate types. */
export const PREDICATE_TYPES = {
  cyclonedx: 'https://cyclonedx.org/bom',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
} as const;
export type AttestationType = keyof typeof PREDICATE_TYPES;

/** Who signs, as cosign is given it: a key file (optionally with a certificate and its chain), or keyless (GitHub's OIDC token, Fulcio). */
export type SignerFiles = { kind: 'key'; keyFile: string; certificateFile?: string; chainFile?: string } | { kind: 'keyless' };

/** Whom to trust: a public key file, or a certificate identity and issuer (and a trusted root other than Sigstore's). */
export type VerifierFiles =
  | { kind: 'key'; keyFile: string }
  | {
      kind: 'keyless';
      identity: string;
      issuer: string;
      /** a trusted_root.json of a private CA; undefined: Sigstore's public roots (TUF) */
      trustedRootFile?: string;
    };

export interface SignArgs {
  /** repository@sha256:... */
  image: string;
  signer: SignerFiles;
  /** upload to the transparency log (Rekor) */
  transparencyLog: boolean;
}

export interface VerifyArgs {
  image: string;
  verifier: VerifierFiles;
  /** expect a transparency log entry (else it is not looked for: only with transparency-log false) */
  transparencyLog: boolean;
}

function signerFlags(s: SignerFiles): string[] {
  if (s.kind === 'keyless') return ['--oidc-provider=github-actions'];
  return ['--key', s.keyFile, ...(s.certificateFile ? ['--certificate', s.certificateFile] : []), ...(s.chainFile ? ['--certificate-chain', s.chainFile] : [])];
}

/** cosign v3 signs through the signing config (TUF) that names Rekor; without the log, neither. */
const signTlogFlags = (on: boolean) => (on ? [] : ['--tlog-upload=false', '--use-signing-config=false']);

function verifierFlags(v: VerifierFiles): string[] {
  if (v.kind === 'key') return ['--key', v.keyFile];
  return [
    '--certificate-identity',
    v.identity,
    '--certificate-oidc-issuer',
    v.issuer,
    // a private CA's certificate travels with its chain (cosign sign --certificate-chain): allowed only there
    ...(v.trustedRootFile ? ['--trusted-root', v.trustedRootFile, '--allow-certificate-chain'] : []),
  ];
}

/** Without the log there is no inclusion proof, and (keyless) the certificate has no SCT to check unless Fulcio's. */
const verifyTlogFlags = (on: boolean, v: VerifierFiles) =>
  on ? [] : ['--insecure-ignore-tlog=true', ...(v.kind === 'keyless' ? ['--insecure-ignore-sct=true'] : [])];

/** A plain-HTTP registry (a loopback one, registry.ts) must be allowed by name. */
const registryFlags = (image: string) => (plainHttpRegistry(parseImageRef(image).registry) ? ['--allow-http-registry'] : []);

export function signArgs(o: SignArgs): string[] {
  return ['sign', ...signerFlags(o.signer), ...signTlogFlags(o.transparencyLog), ...registryFlags(o.image), '--yes', o.image];
}

export function attestArgs(o: SignArgs & { predicateFile: string; type: AttestationType }): string[] {
  return [
    'attest',
    ...signerFlags(o.signer),
    '--predicate',
    o.predicateFile,
    '--type',
    o.type,
    ...signTlogFlags(o.transparencyLog),
    ...registryFlags(o.image),
    '--yes',
    o.image,
  ];
}

export function verifyArgs(o: VerifyArgs): string[] {
  return ['verify', ...verifierFlags(o.verifier), ...verifyTlogFlags(o.transparencyLog, o.verifier), ...registryFlags(o.image), '--output', 'json', o.image];
}

export function verifyAttestationArgs(o: VerifyArgs & { type: AttestationType }): string[] {
  return [
    'verify-attestation',
    ...verifierFlags(o.verifier),
    '--type',
    o.type,
    ...verifyTlogFlags(o.transparencyLog, o.verifier),
    ...registryFlags(o.image),
    o.image,
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// what cosign said

/** Whose failure a cosign error is. */
export type CosignFailureKind = 'verify' | 'key' | 'registry' | 'network' | 'sigstore' | 'other';

/** cosign's own error line (`Error: ...`), else its last line. */
export function cosignError(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const err = [...lines].reverse().find((l) => l.startsWith('Error: '));
  return (err ? err.slice(7) : (lines.pop() ?? '')).replace(/^error during command execution: /, '');
}

/** Whose failure cosign's message says it is: the registry's, the network's, Sigstore's services', the key's, or a verdict. */
export function classifyCosignFailure(message: string): CosignFailureKind {
  // Go's net/http quotes the URL of a request that got no answer: a connection, DNS or TLS failure
  if (/\b(Get|Head|Post|Put|Patch) "https?:\/\/[^"]+": /.test(message)) return 'network';
  if (
    /dial tcp|no such host|connection refused|i\/o timeout|TLS handshake timeout|connection reset|network is unreachable|server misbehaving|context deadline exceeded/i.test(
      message,
    )
  )
    return 'network';
  if (
    /MANIFEST_UNKNOWN|NAME_UNKNOWN|BLOB_UNKNOWN|image tag not found|UNAUTHORIZED|DENIED|authentication required|toomanyrequests|NAME_INVALID|could not parse reference|unexpected status code \d+/.test(
      message,
    )
  )
    return 'registry';
  if (
    /loading public key|reading key|decrypt|incorrect password|encrypted|private key|PEM|signing config|getting signer/i.test(message) &&
    !/verify/i.test(message)
  )
    return 'key';
  if (
    /\btuf\b|trusted_root|trusted root|rekor|fulcio|transparency log|ct log|oidc|id token|identity token/i.test(message) &&
    !/no matching|failed to verify|identity/i.test(message)
  )
    return 'sigstore';
  if (
    /no signatures found|no matching (signatures|attestations)|failed to verify|do not match threshold|none of the attestations matched|invalid signature|signature verification|certificate identity|expected SAN|expected issuer|unknown authority|certificate chain|expired|no valid bundles|claims|verifying|x509/i.test(
      message,
    )
  )
    return 'verify';
  return 'other';
}

/** What did not verify, in words, from cosign's message (for a verdict). */
export function verifyReason(message: string, v: { kind: 'key' | 'keyless' }, type?: AttestationType): string {
  const what = type ? `${type} attestation` : 'signature';
  // cosign lists the types of what verified: an attestation signed by anyone else is not among them
  if (/none of the attestations matched the predicate type/.test(message))
    return `no ${type ?? 'such'} attestation verified (missing, altered, or signed by another signer; what verified: ${/found: (.*)$/.exec(message)?.[1] ?? 'other types'})`;
  // verify-attestation's words for an image with no attestation (and no bundle) at all: the list of errors is empty
  if (/no signatures found|no valid bundles|no matching attestations:\s*$/.test(message))
    return `no ${type ? 'attestation' : 'signature'} (the image is not signed${type ? ' or not attested' : ''})`;
  if (/certificate identity|expected SAN|expected issuer|OIDC issuer/i.test(message))
    return `the ${what}'s certificate is not of certificate-identity / certificate-oidc-issuer (identity mismatch)`;
  if (/unknown authority|certificate chain|leaf certificate|x509/i.test(message))
    return `the ${what}'s certificate does not chain to the trusted roots (certificate-roots, else Sigstore's)`;
  if (/expired/i.test(message)) return `the ${what}'s certificate has expired`;
  if (v.kind === 'key' && /do not match threshold|failed to verify signature|invalid signature|signature verification/i.test(message))
    return `the ${what} was not made with verify-key (another key, or altered after signing)`;
  return `the ${what} did not verify`;
}

// ---------------------------------------------------------------------------------------------------------------
// the effects

/** Who signs, as the stage has it: key material as PEM text or a file path. */
export type Signer =
  | {
      kind: 'key';
      /** the cosign private key: PEM text (an input's value) or a file path */
      key: string;
      /** its password (COSIGN_PASSWORD); '' for none */
      password?: string;
      /** a certificate for the key (PEM text or path) and its chain up to the root: a private CA's signing */
      certificate?: string;
      certificateChain?: string;
      /** the input the key came from, for messages (default signing-key) */
      field?: string;
    }
  | { kind: 'keyless' };

/** Whom a verification trusts, as the inputs say it. */
export type Verifier =
  | {
      kind: 'key';
      /** the public key: PEM text or a file path (verify-key) */
      key: string;
    }
  | {
      kind: 'keyless';
      identity: string;
      issuer: string;
      /** certificate-roots: a PEM file of a private CA's root certificates, or a Sigstore trusted_root.json; '' = Sigstore's public roots */
      roots?: string;
    };

export interface SignOptions {
  /** repository@sha256:... (cosign signs what a digest names, never a tag) */
  image: string;
  signer: Signer;
  transparencyLog: boolean;
}

export interface VerifyOptions {
  /** repository@sha256:... or repository:tag (a tag is resolved by cosign once; the digest it verified comes back) */
  image: string;
  verifier: Verifier;
  transparencyLog: boolean;
}

/** An in-toto statement, as verify-attestation verified it. */
export interface InTotoStatement {
  _type: string;
  subject: { name?: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate: unknown;
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

/** Key material as an input gives it: PEM text, or the path of a file that exists (what materializing it needs). */
export function isPemOrFile(value: string): boolean {
  if (PEM.test(value)) return true;
  try {
    return fs.statSync(value).isFile();
  } catch {
    return false;
  }
}

const DIGEST_REF = /@sha256:[0-9a-f]{64}$/;

/** Sign the image (by digest). */
export async function signImage(cosign: Cosign, o: SignOptions, log: Pick<Logger, 'info'>, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  byDigest(o.image, 'sign');
  await withFiles(env, async (files) => {
    const signer = materializeSigner(files, o.signer, env);
    const r = await run(cosign, signArgs({ image: o.image, signer, transparencyLog: o.transparencyLog }), files, log);
    if (r.code !== 0) throw signFailure('cosign sign', o.image, r.stderr, files.secrets);
    log.info(`signed ${o.image}${o.transparencyLog ? ' (recorded in the transparency log)' : ' (no transparency log)'}`);
  });
}

/** Attest the image (by digest): `predicate` is the predicate itself (written as JSON) or the path of a JSON file. */
export async function attestImage(
  cosign: Cosign,
  o: SignOptions & { type: AttestationType; predicate: object | string },
  log: Pick<Logger, 'info'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  byDigest(o.image, 'attest');
  await withFiles(env, async (files) => {
    const signer = materializeSigner(files, o.signer, env);
    const predicateFile = typeof o.predicate === 'string' ? o.predicate : files.write('predicate.json', JSON.stringify(o.predicate));
    const r = await run(cosign, attestArgs({ image: o.image, signer, transparencyLog: o.transparencyLog, predicateFile, type: o.type }), files, log);
    if (r.code !== 0) throw signFailure(`cosign attest --type ${o.type}`, o.image, r.stderr, files.secrets);
    log.info(`attested ${o.image}: ${o.type} (${PREDICATE_TYPES[o.type]})`);
  });
}

/**
 * Verify the image's signature; returns the digest it verified and the image by that digest (repository@sha256:...).
 * A reference by digest must come back with that digest; a tag is resolved by cosign, once, and what was verified is
 * the digest it named: the caller then uses that digest only (a tag moved afterwards changes nothing).
 */
export async function verifyImage(
  cosign: Cosign,
  o: VerifyOptions,
  log: Pick<Logger, 'info'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ image: string; digest: string }> {
  const ref = parseImageRef(o.image);
  return withFiles(env, async (files) => {
    const verifier = materializeVerifier(files, o.verifier, o.transparencyLog);
    const r = await run(cosign, verifyArgs({ image: o.image, verifier, transparencyLog: o.transparencyLog }), files, log);
    if (r.code !== 0) throw verifyFailure(o.image, r.stderr, o.verifier);
    const digests = new Set(verifiedDigests(r.stdout));
    if (digests.size !== 1)
      throw new ModelshipError(
        'verify',
        `image ${o.image}: cosign verified ${digests.size ? `signatures of several digests (${[...digests].join(', ')})` : 'no signature payload it printed'}`,
        { field: 'verify' },
      );
    const digest = [...digests][0];
    if (ref.digest && ref.digest !== digest)
      throw new ModelshipError('verify', `image ${o.image}: the verified signature is for ${digest}, not the digest asked for`, { field: 'verify' });
    const image = `${repositoryOf(o.image)}@${digest}`;
    log.info(`verified the signature of ${image}${ref.digest ? '' : ` (${o.image} resolved to it)`}`);
    return { image, digest };
  });
}

/**
 * Verify the image's attestations of one type (by digest); returns their in-toto statements (predicate included),
 * decoded from the DSSE envelopes cosign prints once it has verified them. None is a verdict: missing.
 */
export async function verifyAttestations(
  cosign: Cosign,
  o: VerifyOptions & { type: AttestationType },
  log: Pick<Logger, 'info'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<InTotoStatement[]> {
  byDigest(o.image, 'verify-attestation');
  const digest = o.image.slice(o.image.lastIndexOf('@sha256:') + 8);
  return withFiles(env, async (files) => {
    const verifier = materializeVerifier(files, o.verifier, o.transparencyLog);
    const r = await run(cosign, verifyAttestationArgs({ image: o.image, verifier, transparencyLog: o.transparencyLog, type: o.type }), files, log);
    if (r.code !== 0) throw verifyFailure(o.image, r.stderr, o.verifier, o.type);
    const statements = decodeEnvelopes(r.stdout).filter(
      (s) => s.predicateType === PREDICATE_TYPES[o.type] && s.subject.some((x) => x.digest.sha256 === digest),
    );
    if (!statements.length)
      throw new ModelshipError('verify', `image ${o.image}: no ${o.type} attestation of this digest verified (${PREDICATE_TYPES[o.type]})`, {
        field: 'verify',
      });
    log.info(`verified ${statements.length} ${o.type} attestation${statements.length === 1 ? '' : 's'} of ${o.image}`);
    return statements;
  });
}

/** The in-toto statements of verify-attestation's output: one DSSE envelope (JSON) per line, its payload base64. */
export function decodeEnvelopes(stdout: string): InTotoStatement[] {
  const out: InTotoStatement[] = [];
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    let env: { payloadType?: string; payload?: string };
    try {
      env = JSON.parse(t) as typeof env;
    } catch {
      continue;
    }
    if (env.payloadType !== 'application/vnd.in-toto+json' || typeof env.payload !== 'string') continue;
    try {
      const s = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as InTotoStatement;
      if (typeof s.predicateType === 'string' && Array.isArray(s.subject)) out.push(s);
    } catch {
      /* not a statement */
    }
  }
  return out;
}

/** The manifest digests of verify's output (a JSON array of simple-signing payloads). */
export function verifiedDigests(stdout: string): string[] {
  const line = stdout
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('['));
  if (!line) return [];
  try {
    const payloads = JSON.parse(line) as { critical?: { image?: { 'docker-manifest-digest'?: string } } }[];
    return payloads.map((p) => p.critical?.image?.['docker-manifest-digest'] ?? '').filter((d) => /^sha256:[0-9a-f]{64}$/.test(d));
  } catch {
    return [];
  }
}

/** registry/repository of a reference, without tag or digest. */
export function repositoryOf(image: string): string {
  return image.replace(/@sha256:[0-9a-f]{64}$/, '').replace(/:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, '');
}

function byDigest(image: string, what: string): void {
  parseImageRef(image);
  if (!DIGEST_REF.test(image)) throw input('image', `cosign ${what} works on an image by digest (repository@sha256:...), got "${image}"`);
}

/** A failure of another system cosign talked to (the network, the registry, Sigstore's `services`), named as such. */
function otherSystemFailure(kind: CosignFailureKind, what: string, image: string, message: string, services: string): ModelshipError | undefined {
  const registry = parseImageRef(image).registry;
  if (kind === 'network') return new ModelshipError('io', `${what} ${image}: the network failed (registry ${registry} or Sigstore): ${message}`);
  if (kind === 'registry') return new ModelshipError('io', `${what} ${image}: registry ${registry} refused: ${message}`);
  if (kind === 'sigstore') return new ModelshipError('io', `${what} ${image}: Sigstore's services (${services}) failed: ${message}`);
  return undefined;
}

/** The verdict of a failed verification, or the failure of whatever stood in its way (registry, network, Sigstore). */
function verifyFailure(image: string, stderr: string, v: Verifier, type?: AttestationType): ModelshipError {
  const message = cosignError(stderr);
  const what = type ? `cosign verify-attestation --type ${type}` : 'cosign verify';
  const kind = classifyCosignFailure(message);
  const other = otherSystemFailure(kind, what, image, message, 'TUF trusted root, Rekor');
  if (other) return other;
  if (kind === 'key') return input(v.kind === 'key' ? 'verify-key' : 'certificate-roots', `${what}: cosign cannot use it: ${message}`);
  return new ModelshipError('verify', `image ${image}: ${verifyReason(message, v, type)} (cosign: ${message})`, { field: 'verify' });
}

function signFailure(what: string, image: string, stderr: string, secrets: string[]): ModelshipError {
  const message = redact(cosignError(stderr), secrets);
  const kind = classifyCosignFailure(message);
  const other = otherSystemFailure(kind, what, image, message, 'Fulcio, Rekor, TUF');
  if (other) return other;
  if (kind === 'key') return new ModelshipError('input', `${what}: the signing key cannot be used (wrong password, or not a cosign key): ${message}`);
  return new ModelshipError('io', `${what} ${image} failed: ${message}`);
}

/** A private directory (0700, removed when done) for the key, certificates and predicate files of one cosign run. */
interface Files {
  dir: string;
  /** write a file (0600) into the directory; returns its path */
  write(name: string, content: string): string;
  /** values never to appear in a log or message */
  secrets: string[];
  /** the child's environment: the session's (its DOCKER_CONFIG), and COSIGN_PASSWORD when signing with a key */
  env: NodeJS.ProcessEnv;
}

async function withFiles<T>(env: NodeJS.ProcessEnv, fn: (files: Files) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(env.RUNNER_TEMP || os.tmpdir(), 'modelship-cosign-'));
  try {
    fs.chmodSync(dir, 0o700);
    const files: Files = {
      dir,
      write: (name, content) => {
        const f = path.join(dir, name);
        fs.writeFileSync(f, content, { mode: 0o600 });
        return f;
      },
      secrets: [],
      env: { ...env },
    };
    return await fn(files);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** PEM text into a file of the private directory; a path as it is (it must exist). */
function pemFile(files: Files, value: string, name: string, field: string): string {
  if (PEM.test(value)) return files.write(name, value.trim() + '\n');
  const f = value.trim();
  if (!isPemOrFile(f)) throw input(field, `expected PEM text or the path of a PEM file, got "${f.length > 80 ? `${f.slice(0, 80)}...` : f}" (no such file)`);
  return f;
}

function materializeSigner(files: Files, s: Signer, env: NodeJS.ProcessEnv): SignerFiles {
  if (s.kind === 'keyless') {
    // cosign's github-actions provider asks the runner for the job's OIDC token with these
    if (!env.ACTIONS_ID_TOKEN_REQUEST_URL || !env.ACTIONS_ID_TOKEN_REQUEST_TOKEN)
      throw new ModelshipError(
        'input',
        "keyless signing uses the job's GitHub OIDC token, and there is none (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are not set): give the job `permissions: id-token: write` (calling modelship's reusable workflows: the calling job grants it, for their sign job), or sign with a key",
      );
    return { kind: 'keyless' };
  }
  const field = s.field ?? 'signing-key';
  if (PEM.test(s.key)) {
    files.secrets.push(s.key);
    maskInLog(s.key);
  }
  // COSIGN_PASSWORD set, even empty: cosign must never wait for a password on a terminal
  files.env.COSIGN_PASSWORD = s.password ?? '';
  if (s.password) {
    files.secrets.push(s.password);
    maskInLog(s.password);
  }
  return {
    kind: 'key',
    keyFile: pemFile(files, s.key, 'cosign.key', field),
    certificateFile: s.certificate ? pemFile(files, s.certificate, 'certificate.pem', field) : undefined,
    chainFile: s.certificateChain ? pemFile(files, s.certificateChain, 'chain.pem', field) : undefined,
  };
}

function materializeVerifier(files: Files, v: Verifier, transparencyLog: boolean): VerifierFiles {
  if (v.kind === 'key') return { kind: 'key', keyFile: pemFile(files, v.key, 'verify.pub', 'verify-key') };
  const roots = v.roots?.trim();
  return {
    kind: 'keyless',
    identity: v.identity,
    issuer: v.issuer,
    trustedRootFile: roots ? files.write('trusted_root.json', trustedRootFor(roots, transparencyLog)) : undefined,
  };
}

/**
 * certificate-roots as cosign v3 takes a private CA (--trusted-root; --ca-roots is refused with Sigstore bundles): a
 * trusted_root.json given as it is, or one made from a PEM file of root (and intermediate) certificates, each root
 * its own certificate authority valid over the certificate's validity. Such a root has no transparency log keys, so
 * it verifies only with transparency-log false.
 */
export function trustedRootFor(roots: string, transparencyLog: boolean): string {
  let text: string;
  try {
    text = PEM.test(roots) ? roots : fs.readFileSync(roots, 'utf8');
  } catch (e) {
    throw input('certificate-roots', `cannot read ${roots}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (text.trim().startsWith('{')) {
    try {
      const doc = JSON.parse(text) as { mediaType?: string };
      if (!String(doc.mediaType).startsWith('application/vnd.dev.sigstore.trustedroot+json'))
        throw new Error(`mediaType is ${JSON.stringify(doc.mediaType)}, not application/vnd.dev.sigstore.trustedroot+json`);
    } catch (e) {
      throw input('certificate-roots', `is JSON but not a Sigstore trusted_root.json: ${(e as Error).message}`);
    }
    return text;
  }
  const pems = [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => m[0]);
  if (!pems.length) throw input('certificate-roots', 'expected a PEM file of CA certificates (or a Sigstore trusted_root.json), found no certificate');
  if (transparencyLog)
    throw input(
      'certificate-roots',
      "a private CA's roots carry no transparency log keys: verify its signatures with transparency-log false (or give a trusted_root.json that names your Rekor)",
    );
  const certificateAuthorities = pems.map((p) => {
    let x: crypto.X509Certificate;
    try {
      x = new crypto.X509Certificate(p);
    } catch (e) {
      throw input('certificate-roots', `a certificate does not parse: ${(e as Error).message}`);
    }
    const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(x.subject)?.[1];
    return {
      subject: { organization: field('O') ?? '', commonName: field('CN') ?? '' },
      certChain: { certificates: [{ rawBytes: x.raw.toString('base64') }] },
      validFor: { start: new Date(x.validFrom).toISOString(), end: new Date(x.validTo).toISOString() },
    };
  });
  return JSON.stringify(
    { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities, ctlogs: [], timestampAuthorities: [] },
    null,
    2,
  );
}

/** Run cosign: its messages to the log (secrets redacted), registry credentials from the session's DOCKER_CONFIG. */
async function run(cosign: Cosign, args: string[], files: Files, log: Pick<Logger, 'info'>) {
  log.info(`cosign ${args.join(' ')}`);
  const r = await runProcess(cosign.binary, args, { env: files.env });
  for (const line of r.stderr.split('\n')) if (line.trim() && !/^Flag --\S+ has been deprecated/.test(line)) log.info(`  ${redact(line, files.secrets)}`);
  return { ...r, stderr: redact(r.stderr, files.secrets) };
}

/** `text` with every secret (and each line of a multi-line one) replaced by ***. */
export function redact(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) {
    for (const part of [s, ...s.split('\n').map((l) => l.trim())]) if (part.length >= 6 && !/^-----/.test(part)) out = out.split(part).join('***');
  }
  return out;
}

/** On a runner: mask a secret in the job's log, line by line (the runner masks a multi-line value only whole). */
function maskInLog(secret: string): void {
  if (process.env.GITHUB_ACTIONS !== 'true') return;
  for (const line of secret.split('\n').map((l) => l.trim())) if (line.length >= 6 && !/^-----/.test(line)) process.stdout.write(`::add-mask::${line}\n`);
}

function input(field: string, message: string): ModelshipError {
  return new ModelshipError('input', `input "${field}": ${message}`, { field });
}
