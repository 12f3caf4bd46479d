import { fail, Reader } from '../inputs';
import type { Logger } from '../stage';
import { attestImage, installCosign, signImage, type AttestationType, type CosignSource, type Signer } from './cosign';
import { readCosignSource } from './verify-image';

/**
 * Signing an image that is pushed, by digest, and attaching its supply-chain documents to it as signed attestations:
 * the image stage does it right after its push (input sign), the sign stage in a job of its own (the one job of a
 * workflow that holds `id-token: write` for keyless signing). One sequence for both, signAndAttest: cosign installed,
 * the digest signed, then the CycloneDX ML-BOM and the SLSA provenance attested, each when there is one. Smoke and
 * rollout verify them (verify-image.ts) before they pull or deploy.
 */

/** input `sign`: no signature, a cosign key pair's private key (signing-key), or keyless (GitHub's OIDC token). */
export const SIGN_MODES = ['off', 'key', 'keyless'] as const;
export type SignMode = (typeof SIGN_MODES)[number];

export interface SigningConfig {
  sign: SignMode;
  /** sign: key: the cosign private key, PEM text or a file path (a secret) */
  signingKey: string;
  signingKeyPassword: string;
  transparencyLog: boolean;
  cosign: CosignSource;
}

/** The inputs sign, signing-key, signing-key-password, transparency-log and cosign-* (image, sign), checked. */
export function readSigning(r: Reader): SigningConfig {
  const c: SigningConfig = {
    sign: r.oneOf('sign', SIGN_MODES),
    signingKey: r.raw('signing-key'),
    signingKeyPassword: r.raw('signing-key-password'),
    transparencyLog: r.bool('transparency-log'),
    cosign: readCosignSource(r),
  };
  if (c.sign === 'key' && !c.signingKey) fail('signing-key', 'sign: key needs the cosign private key (PEM text from a secret, or a file path)');
  if (c.sign !== 'key' && c.signingKey) fail('signing-key', `is only used with sign: key (sign is ${c.sign})`);
  return c;
}

/** Who signs, as cosign.ts takes it (sign must not be off). */
export function signerOf(s: SigningConfig): Signer {
  if (s.sign === 'off') throw new Error('internal: no signer with sign: off');
  return s.sign === 'key' ? { kind: 'key', key: s.signingKey, password: s.signingKeyPassword, field: 'signing-key' } : { kind: 'keyless' };
}

/** What signAndAttest signs and attaches. */
export interface SignAndAttest {
  /** repository@sha256:..., pushed (the signature and attestations are stored in the registry beside it) */
  image: string;
  /** how to sign (sign key or keyless) and where cosign comes from */
  signing: SigningConfig;
  /** the ML-BOM, a CycloneDX document: attested as --type cyclonedx; undefined: not attested */
  mlBom?: object;
  /**
   * the provenance, an in-toto statement with an SLSA provenance v1 predicate: its predicate is attested as --type
   * slsaprovenance1 (cosign makes the statement itself, with the signed digest as its subject); undefined: not attested
   */
  provenance?: { predicate: object };
}

/**
 * Sign the image (by digest) and attest its ML-BOM and its provenance to it, in that order, with cosign from its
 * release through the tool cache. Returns the attestation types attached. `env` carries the DOCKER_CONFIG that logs
 * cosign in to the registry.
 */
export async function signAndAttest(o: SignAndAttest, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<AttestationType[]> {
  const signer = signerOf(o.signing);
  const attestations: [AttestationType, object][] = [];
  if (o.mlBom) attestations.push(['cyclonedx', o.mlBom]);
  if (o.provenance) attestations.push(['slsaprovenance1', o.provenance.predicate]);
  const what = attestations.length ? ` and attest its ${[o.mlBom ? 'ML-BOM' : '', o.provenance ? 'provenance' : ''].filter(Boolean).join(' and ')}` : '';
  return log.group(`sign ${o.image}${what} (cosign ${o.signing.cosign.version})`, async () => {
    const cosign = await installCosign(o.signing.cosign, log);
    const base = { image: o.image, signer, transparencyLog: o.signing.transparencyLog };
    await signImage(cosign, base, log, env);
    for (const [type, predicate] of attestations) await attestImage(cosign, { ...base, type, predicate }, log, env);
    return attestations.map(([type]) => type);
  });
}
