import type { Logger, StageResult } from '../stage';
import { openAuthConfig } from '../util/dockerconfig';
import { signAndAttest, signerOf } from '../shared/attest';
import { parseImageRef } from '../shared/registry';
import type { SignConfig } from './inputs';

/**
 * The sign stage: sign an image the image stage pushed (by digest) and attest the ML-BOM and the provenance it wrote,
 * in a job of its own. In a workflow, the job that builds and pushes needs registry access and runs a build, and the
 * job that signs keyless needs `id-token: write`: this stage is the second, so the build never holds an OIDC token.
 * The sequence is the image stage's own (src/shared/attest.ts); the documents are read and checked against the digest
 * before anything is signed (inputs.ts). cosign logs in to the registry through a DOCKER_CONFIG of the stage's own
 * (no docker CLI needed), removed when the stage ends.
 */

/** What the stage will do, as data (for the log, the summary and the tests). */
export interface SignPlan {
  image: string;
  /** undefined: sign off, nothing done */
  signer?: 'key' | 'keyless';
  attestations: { type: 'cyclonedx' | 'slsaprovenance1'; file: string }[];
  transparencyLog: boolean;
}

export function planSign(cfg: SignConfig): SignPlan {
  return {
    image: cfg.image,
    signer: cfg.signing.sign === 'off' ? undefined : signerOf(cfg.signing).kind,
    attestations: [
      ...(cfg.mlBom ? [{ type: 'cyclonedx' as const, file: cfg.mlBom.file }] : []),
      ...(cfg.provenance ? [{ type: 'slsaprovenance1' as const, file: cfg.provenance.file }] : []),
    ],
    transparencyLog: cfg.signing.transparencyLog,
  };
}

function summaryOf(plan: SignPlan, signed: boolean): string {
  return [
    '## modelship sign',
    '',
    '| | |',
    '|---|---|',
    `| image | \`${plan.image}\` |`,
    `| signature | ${signed ? `cosign, ${plan.signer === 'key' ? 'key (signing-key)' : 'keyless (Sigstore certificate)'}${plan.transparencyLog ? ', in the transparency log' : ', no transparency log'}` : 'not signed (sign: off)'} |`,
    `| attestations | ${signed && plan.attestations.length ? plan.attestations.map((a) => `${a.type} (\`${a.file}\`)`).join(', ') : 'none'} |`,
    '',
  ].join('\n');
}

export async function runSign(cfg: SignConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<StageResult> {
  const plan = planSign(cfg);
  if (!plan.signer) {
    log.info(`sign: off: ${cfg.image} is not signed`);
    return { outputs: { image: cfg.image, signed: 'false' }, summary: summaryOf(plan, false), ok: true };
  }
  const login = openAuthConfig(parseImageRef(cfg.image).registry, cfg.registryUsername, cfg.registryPassword, env);
  try {
    await signAndAttest({ image: cfg.image, signing: cfg.signing, mlBom: cfg.mlBom?.document, provenance: cfg.provenance?.document }, log, login.env);
  } finally {
    login.close();
  }
  return { outputs: { image: cfg.image, signed: 'true' }, summary: summaryOf(plan, true), ok: true };
}
