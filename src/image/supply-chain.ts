import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Logger } from '../stage';
import { sha256, writeFileAtomic } from '../util/fsx';
import { signAndAttest, type SigningConfig } from '../shared/attest';
import { buildMlBom, bundledPackages, modelLineage, type FileDigest, type ImageFacts } from './mlbom';
import { provenanceStatement, type ImageParameters } from './provenance';
import type { NodeRuntime } from './node';
import type { GpuProviders } from './gpu-provider';

/**
 * The image's supply chain: what went into it (a CycloneDX ML-BOM), how it was built (an in-toto statement with an
 * SLSA provenance v1 predicate), both written as files for the workflow to keep, and — with input `sign` — the pushed
 * digest signed with cosign and both documents attached to it as signed attestations (src/shared/attest.ts, which the
 * sign stage shares), which smoke and rollout verify (src/shared/verify-image.ts) before they pull or deploy it.
 */

/** What the runtime's context put in the image, for the BOM (each context fills in its part). */
export interface ContextFacts {
  base: { name: string; digest?: string };
  node?: NodeRuntime;
  providers?: GpuProviders;
  /** runtime modelship: the server bundle's directory (dist/: licenses.txt, index.js, ONNX Runtime's libraries) */
  dist?: string;
  /** runtime triton: the generated config.pbtxt and the backend platform */
  triton?: { release: string; config: string; platform: string };
}

/** onnxruntime-node's native libraries in the bundle (what IMAGE_ORT_DIR holds in the image). */
const ORT_LIBS = path.join('bin', 'napi-v6', 'linux', 'x64');

const fileDigest = (file: string, name = path.basename(file)): FileDigest => ({ file: name, sha256: sha256(fs.readFileSync(file)) });

/** The facts the BOM and the provenance are made of, gathered from the stage's inputs and what its context holds. */
export function imageFacts(o: {
  repository: string;
  digest: string;
  tags: string[];
  runtime: ImageFacts['runtime'];
  gpu: boolean;
  created: string;
  model: { name: string; path: string; bytes: Uint8Array; fileInImage: string; encrypted?: FileDigest; parity: string };
  context: ContextFacts;
  /** what could not be read (the BOM is then made without it) */
  warn: (line: string) => void;
}): ImageFacts {
  const c = o.context;
  // the lineage is what the model's own metadata says: a file that is not an ONNX model or a TensorRT plan modelship
  // can read has none, and the image (whose server will judge the model) is still described
  let lineage: ImageFacts['model']['lineage'];
  try {
    lineage = modelLineage(o.model.path, o.model.bytes);
    for (const w of lineage.warnings) o.warn(`ML-BOM: ${w}`);
  } catch (e) {
    o.warn(`ML-BOM: no lineage for ${o.model.path}: ${(e as Error).message}`);
  }
  const facts: ImageFacts = {
    image: { repository: o.repository, digest: o.digest, tags: o.tags },
    runtime: o.runtime,
    gpu: o.gpu,
    created: o.created,
    model: {
      name: o.model.name,
      file: o.model.fileInImage,
      sha256: sha256(o.model.bytes),
      ...(o.model.encrypted ? { encrypted: o.model.encrypted } : {}),
      ...(lineage ? { lineage } : {}),
      parity: o.model.parity,
    },
    base: c.base,
  };
  if (c.node) facts.node = { version: c.node.version, sha256: fileDigest(c.node.binary).sha256, source: c.node.source };
  if (c.dist) {
    // a bundle of one's own (MODELSHIP_DIST) may come without ncc's license list: then no packages are listed
    const licenses = path.join(c.dist, 'licenses.txt');
    if (fs.existsSync(licenses)) facts.npmPackages = bundledPackages(fs.readFileSync(licenses, 'utf8'));
    else o.warn(`ML-BOM: the server bundle has no licenses.txt (${licenses}): its npm packages are not listed`);
    facts.bundleSha256 = fileDigest(path.join(c.dist, 'index.js')).sha256;
    const ortDir = path.join(c.dist, ORT_LIBS);
    const ort = facts.npmPackages?.find((p) => p.name === 'onnxruntime-node');
    if (ort && fs.existsSync(ortDir))
      facts.onnxruntime = {
        version: ort.version,
        libraries: fs
          .readdirSync(ortDir)
          .sort()
          .map((f) => fileDigest(path.join(ortDir, f))),
      };
  }
  if (c.providers) {
    const p = c.providers.provenance;
    facts.providers = {
      package: p.package,
      version: p.version,
      ...(p.sha256 ? { sha256: p.sha256 } : {}),
      ...(p.sha512 ? { sha512: p.sha512 } : {}),
      ...(p.source ? { source: p.source } : {}),
      files: c.providers.files.map((f) =>
        p[`${path.basename(f)}.sha256`] ? { file: path.basename(f), sha256: p[`${path.basename(f)}.sha256`] } : fileDigest(f),
      ),
    };
  }
  if (c.triton)
    facts.triton = {
      release: c.triton.release,
      config: { file: `${o.model.name}/config.pbtxt`, sha256: sha256(Buffer.from(c.triton.config)) },
      platform: c.triton.platform,
    };
  return facts;
}

export interface SupplyChainResult {
  mlBomFile: string;
  provenanceFile: string;
  signed: boolean;
}

/**
 * Write the ML-BOM and the provenance statement (atomically: a file is whole or not there), then, when signing, sign
 * the pushed digest and attest both documents to it. cosign comes from its release through the tool cache.
 */
export async function recordSupplyChain(
  o: {
    facts: ImageFacts;
    inputs: ImageParameters;
    git: { source: string; sha: string; ref?: string };
    buildxDriver: string;
    startedOn: string;
    files: { mlBom: string; provenance: string };
    signing: SigningConfig;
    /** repository@sha256:... pushed (signing needs it pushed) */
    pinned: string;
  },
  log: Logger,
  env: NodeJS.ProcessEnv,
): Promise<SupplyChainResult> {
  const bom = buildMlBom(o.facts);
  const statement = provenanceStatement(
    o.facts,
    { inputs: o.inputs, git: o.git, buildxDriver: o.buildxDriver, startedOn: o.startedOn, finishedOn: new Date().toISOString(), hostname: os.hostname() },
    env,
  );
  writeFileAtomic(o.files.mlBom, bom.json);
  writeFileAtomic(o.files.provenance, JSON.stringify(statement, null, 2) + '\n');
  log.info(`ML-BOM (CycloneDX 1.6): ${o.files.mlBom}; provenance (in-toto, SLSA v1): ${o.files.provenance}`);
  if (o.signing.sign === 'off') return { mlBomFile: o.files.mlBom, provenanceFile: o.files.provenance, signed: false };
  // the sequence the sign stage runs too (src/shared/attest.ts), on the documents as they were written
  await signAndAttest({ image: o.pinned, signing: o.signing, mlBom: bom.document, provenance: statement }, log, env);
  return { mlBomFile: o.files.mlBom, provenanceFile: o.files.provenance, signed: true };
}
