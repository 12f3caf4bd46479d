import * as fs from 'fs';
import { fail, InputSpec, OutputSpec, Reader } from '../inputs';
import type { SharedConfig } from '../shared/inputs';
import type { SigningConfig } from '../shared/attest';
import { PREDICATE_TYPES, isPemOrFile, planCosignDownload, repositoryOf } from '../shared/cosign';
import { parseImageRef } from '../shared/registry';

/**
 * The sign stage has no input or output of its own: each of its inputs (image, ml-bom-file, provenance-file, sign,
 * signing-key, signing-key-password, transparency-log, cosign-*, registry-username, registry-password) and outputs
 * (image, signed) is the image stage's too, declared once in src/shared/inputs.ts. What is its own is how it reads
 * them: the image by digest, the documents the image stage wrote read and checked against that digest before
 * anything is signed.
 */
export const SIGN_INPUTS: InputSpec[] = [];
export const SIGN_OUTPUTS: OutputSpec[] = [];

/** A document to attest, as read from its file. */
export interface AttestedDocument<T> {
  /** the file it was read from (its input's value) */
  file: string;
  document: T;
}

/** An in-toto statement with an SLSA provenance v1 predicate, as the image stage writes it (provenance-file). */
export interface ProvenanceDocument {
  _type: string;
  subject: { name?: string; digest: Record<string, string> }[];
  predicateType: typeof PREDICATE_TYPES.slsaprovenance1;
  predicate: Record<string, unknown>;
}

export interface SignConfig {
  /** repository@sha256:... (a tag given with the digest is dropped: what is signed is the digest) */
  image: string;
  /** sha256:<64 hex> */
  digest: string;
  signing: SigningConfig;
  /** the CycloneDX ML-BOM to attest; undefined: ml-bom-file not given */
  mlBom?: AttestedDocument<Record<string, unknown>>;
  /** the provenance statement, whose predicate is attested; undefined: provenance-file not given */
  provenance?: AttestedDocument<ProvenanceDocument>;
  registryUsername: string;
  registryPassword: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** A file's JSON, or an input error naming the input and the file. */
function readJson(input: string, file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(input, `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    return fail(input, `${file} is not JSON: ${(e as Error).message}`);
  }
}

/**
 * The ML-BOM of ml-bom-file: a CycloneDX JSON document; where it names the image it describes (its metadata
 * component, a container, by digest: the image stage's does), that must be this digest.
 */
export function readMlBom(file: string, digest: string): Record<string, unknown> {
  const doc = readJson('ml-bom-file', file);
  if (!isObject(doc) || doc.bomFormat !== 'CycloneDX')
    fail(
      'ml-bom-file',
      `${file} is not a CycloneDX JSON document (bomFormat is ${JSON.stringify(isObject(doc) ? doc.bomFormat : undefined)}, not "CycloneDX")`,
    );
  const component = isObject(doc.metadata) && isObject(doc.metadata.component) ? doc.metadata.component : {};
  const version = component.type === 'container' && typeof component.version === 'string' ? component.version : '';
  if (DIGEST.test(version) && version !== digest)
    fail('ml-bom-file', `${file} describes another image (${String(component.name)}@${version}), not the image to sign (${digest})`);
  return doc;
}

/**
 * The provenance of provenance-file: an in-toto statement (v1) with an SLSA provenance v1 predicate whose subject is
 * this digest. cosign attests the predicate in a statement of its own, with the signed digest as its subject: a
 * document of another image would be attested to this one, so it is refused.
 */
export function readProvenance(file: string, digest: string): ProvenanceDocument {
  const doc = readJson('provenance-file', file);
  if (!isObject(doc) || typeof doc._type !== 'string' || !doc._type.startsWith('https://in-toto.io/Statement/'))
    fail(
      'provenance-file',
      `${file} is not an in-toto statement (_type is ${JSON.stringify(isObject(doc) ? doc._type : undefined)}, not https://in-toto.io/Statement/v1)`,
    );
  if (doc.predicateType !== PREDICATE_TYPES.slsaprovenance1)
    fail('provenance-file', `${file} is not SLSA provenance: predicateType is ${JSON.stringify(doc.predicateType)}, not ${PREDICATE_TYPES.slsaprovenance1}`);
  if (!isObject(doc.predicate)) fail('provenance-file', `${file} has no predicate (the SLSA provenance object the attestation carries)`);
  const subject = Array.isArray(doc.subject) ? doc.subject.filter(isObject) : [];
  const digests = subject.map((s) => (isObject(s.digest) && typeof s.digest.sha256 === 'string' ? `sha256:${s.digest.sha256}` : '')).filter(Boolean);
  if (!digests.length) fail('provenance-file', `${file} names no subject by sha256 digest: it cannot be matched to the image`);
  if (!digests.includes(digest)) fail('provenance-file', `${file} describes another image (subject ${digests.join(', ')}), not the image to sign (${digest})`);
  return doc as unknown as ProvenanceDocument;
}

export function readSignConfig(r: Reader, s: SharedConfig): SignConfig {
  const c: SignConfig = {
    image: s.image,
    digest: '',
    signing: s.signing,
    registryUsername: s.registryUsername,
    registryPassword: s.registryPassword,
  };
  // only the sign stage reads these as documents: for the image stage ml-bom-file and provenance-file are where it writes
  if (r.stage !== 'sign') return c;
  let ref: ReturnType<typeof parseImageRef>;
  try {
    ref = parseImageRef(s.image);
  } catch (e) {
    return fail('image', (e as Error).message);
  }
  if (!ref.digest)
    fail(
      'image',
      `the sign stage signs a pushed image by digest (repository@sha256:<64 hex>, the image stage's image output), got "${s.image}": a tag can move between the push and the signature`,
    );
  c.digest = ref.digest;
  // what is signed is the digest: a tag given beside it is dropped
  c.image = `${repositoryOf(s.image)}@${ref.digest}`;
  if (c.registryUsername && !c.registryPassword) fail('registry-password', 'is required with registry-username (cosign logs in with both)');
  const mlBomFile = r.raw('ml-bom-file');
  const provenanceFile = r.raw('provenance-file');
  if (mlBomFile) c.mlBom = { file: mlBomFile, document: readMlBom(mlBomFile, c.digest) };
  if (provenanceFile) c.provenance = { file: provenanceFile, document: readProvenance(provenanceFile, c.digest) };
  if (c.signing.sign === 'key' && !isPemOrFile(c.signing.signingKey))
    fail('signing-key', 'expected the cosign private key as PEM text or the path of its file, and there is no such file');
  // a malformed or unpinned cosign input fails now, before anything is signed
  if (c.signing.sign !== 'off') planCosignDownload(c.signing.cosign);
  return c;
}
