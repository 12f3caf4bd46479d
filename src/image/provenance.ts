import * as path from 'path';
import { PackageURL } from 'packageurl-js';
import type { Runtime } from '../protocol/runtime';
import { ModelshipError } from '../util/errors';
import { VERSION } from '../version';
import { MODELSHIP_REPOSITORY_URL, nodePurl, ociPurl } from './mlbom';
import type { ImageFacts } from './mlbom';

/**
 * The image's provenance: an in-toto Statement v1 about the image (by digest) with an SLSA provenance v1 predicate —
 * what shaped it (the stage's inputs), what went into it by digest (the source commit, the model and the Caffe files
 * it came from, the base image, Node.js, the CUDA provider package) and who built it (the GitHub workflow run, or the
 * CLI on a host). `provenanceStatement` is pure: the environment and the clock come in as arguments.
 */

export const IN_TOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** What a modelship image build is: its externalParameters are the image stage's inputs, by input name. */
export const BUILD_TYPE = `${MODELSHIP_REPOSITORY_URL}/image@v1`;
/** The builder off GitHub: modelship's CLI (`${CLI_BUILDER}@<version>`). */
export const CLI_BUILDER = `${MODELSHIP_REPOSITORY_URL}/cli`;

/** SLSA's ResourceDescriptor (in-toto v1). */
export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest?: Record<string, string>;
  downloadLocation?: string;
  annotations?: Record<string, string>;
}

export interface SlsaProvenance {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    internalParameters: Record<string, unknown>;
    resolvedDependencies: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version?: Record<string, string> };
    metadata: { invocationId?: string; startedOn?: string; finishedOn?: string };
    byproducts?: ResourceDescriptor[];
  };
}

export interface ProvenanceStatement {
  _type: typeof IN_TOTO_STATEMENT_V1;
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: typeof SLSA_PROVENANCE_V1;
  predicate: SlsaProvenance;
}

/**
 * The image stage's inputs that shaped the image (the fields of its ImageConfig of the same names: the config itself
 * may be passed, only these are read — never model-key, the registry password or the API key).
 */
export interface ImageParameters {
  image: string;
  model: string;
  modelName: string;
  runtime: Runtime;
  gpu: boolean;
  parity: string;
  encryptModel: boolean;
  cache: string;
  push: boolean;
  baseImage?: string;
  tritonImage?: string;
  maxBatchSize?: number;
  maxQueueDelayUs?: number;
  nodeVersion?: string;
  nodeBinary?: string;
  nodeMirror?: string;
  providerPackage?: string;
  nugetSource?: string;
  preprocess?: unknown;
}

export interface ProvenanceParams {
  inputs: ImageParameters;
  /** the source the image was built from (the stage's gitContext): repository URL, commit, ref */
  git?: { source: string; sha: string; ref?: string };
  /** the buildx driver that built it (docker, docker-container, ...) */
  buildxDriver?: string;
  /** when the stage started and finished (ISO 8601) */
  startedOn: string;
  finishedOn: string;
  /** the host the CLI ran on (off GitHub) */
  hostname?: string;
}

/** A URL with its credentials (user:password@) and query (a token, a signature) taken out: provenance is public. */
export function redactUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return value; // a path
  }
  if (u.username || u.password) {
    u.username = 'redacted';
    u.password = '';
  }
  if (u.search) u.search = '?redacted';
  return u.toString();
}

/** externalParameters.inputs: the inputs by their action names, those of this runtime (and of gpu) only */
function externalInputs(p: ImageParameters): Record<string, unknown> {
  const modelship = p.runtime !== 'triton';
  const entries: [string, unknown][] = [
    ['image', p.image],
    ['model', p.model],
    ['model-name', p.modelName],
    ['runtime', p.runtime],
    ['gpu', p.gpu],
    ['parity', p.parity],
    ['encrypt-model', p.encryptModel],
    ['cache', p.cache],
    ['push', p.push],
    ...(modelship
      ? ([
          ['base-image', p.baseImage],
          ...(p.nodeBinary
            ? [['node-binary', p.nodeBinary]]
            : [
                ['node-version', p.nodeVersion],
                ['node-mirror', p.nodeMirror && redactUrl(p.nodeMirror)],
              ]),
          ...(p.gpu
            ? [
                ['provider-package', p.providerPackage && redactUrl(p.providerPackage)],
                ['nuget-source', p.nugetSource && redactUrl(p.nugetSource)],
              ]
            : []),
          ['preprocess', p.preprocess],
        ] as [string, unknown][])
      : ([
          ['triton-image', p.tritonImage],
          ['max-batch-size', p.maxBatchSize],
          ['max-queue-delay-us', p.maxQueueDelayUs],
        ] as [string, unknown][])),
  ];
  return Object.fromEntries(entries.filter(([, v]) => v !== undefined && v !== ''));
}

/** What went into the image, by digest. */
function resolvedDependencies(f: ImageFacts, params: ProvenanceParams): ResourceDescriptor[] {
  const out: ResourceDescriptor[] = [];
  const g = params.git;
  // the commit, also when the repository's URL is unknown (a CLI run outside a clone with a remote): named then
  if (g && /^[0-9a-f]{40}$/i.test(g.sha))
    out.push({
      ...(g.source ? { uri: `git+${redactUrl(g.source)}${g.ref ? `@${g.ref}` : ''}` } : { name: 'source', ...(g.ref ? { annotations: { ref: g.ref } } : {}) }),
      digest: { gitCommit: g.sha.toLowerCase() },
    });
  out.push({ name: path.basename(params.inputs.model || f.model.file), digest: { sha256: f.model.sha256.toLowerCase() }, annotations: { role: 'model' } });
  const c = f.model.lineage?.compile;
  if (c?.source?.sha256)
    out.push({
      name: path.basename(c.source.path ?? 'model.onnx'),
      digest: { sha256: c.source.sha256 },
      annotations: { role: 'onnx (compiled into the model)' },
    });
  const meta = f.model.lineage?.onnxMetadata ?? {};
  for (const role of ['prototxt', 'caffemodel'] as const) {
    const v = meta[`modelship.${role}_sha256`];
    if (v) out.push({ name: role, digest: { sha256: v }, annotations: { role: `caffe ${role} (converted into the model)` } });
  }
  const base = ociPurl(f.base.name, f.base.digest);
  out.push({
    name: f.base.name,
    uri: base.purl,
    ...(base.digest ? { digest: { sha256: base.digest.slice('sha256:'.length) } } : {}),
    annotations: { role: 'base image' },
  });
  if (f.node)
    out.push({
      name: 'node',
      uri: nodePurl(f.node),
      ...(f.node.sha256 ? { digest: { sha256: f.node.sha256 } } : {}),
      ...(/^https?:\/\//.test(f.node.source) ? { downloadLocation: f.node.source } : {}),
      annotations: { role: 'Node.js (the digest is of bin/node)' },
    });
  const p = f.providers;
  if (p)
    out.push({
      name: p.package,
      uri: new PackageURL('nuget', undefined, p.package, p.version).toString(),
      ...(p.sha256 || p.sha512 ? { digest: { ...(p.sha256 ? { sha256: p.sha256 } : {}), ...(p.sha512 ? { sha512: p.sha512 } : {}) } } : {}),
      ...(p.source && /^https?:\/\//.test(p.source) ? { downloadLocation: redactUrl(p.source) } : {}),
      annotations: { role: 'CUDA provider package' },
    });
  return out;
}

/** GITHUB_WORKFLOW_REF (owner/repo/.github/workflows/x.yml@refs/heads/main): the workflow's path in its repository */
function workflowPath(workflowRef: string, repository: string): string | undefined {
  const at = workflowRef.lastIndexOf('@');
  const p = at < 0 ? workflowRef : workflowRef.slice(0, at);
  return p.startsWith(`${repository}/`) ? p.slice(repository.length + 1) : undefined;
}

/**
 * The image's provenance statement. On GitHub (GITHUB_ACTIONS=true with GITHUB_REPOSITORY and GITHUB_RUN_ID) the
 * builder is the workflow (`${GITHUB_SERVER_URL}/${GITHUB_WORKFLOW_REF}`) and the invocation its run attempt;
 * elsewhere the builder is modelship's CLI of this version, on `params.hostname`.
 */
export function provenanceStatement(facts: ImageFacts, params: ProvenanceParams, env: NodeJS.ProcessEnv): ProvenanceStatement {
  const digest = facts.image.digest;
  if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest))
    throw new ModelshipError('input', `provenance: the image has no digest (sha256:<64 hex>) to name as its subject, got "${digest ?? ''}"`);
  const onGitHub = env.GITHUB_ACTIONS === 'true' && !!env.GITHUB_REPOSITORY && !!env.GITHUB_RUN_ID;
  const server = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');
  const externalParameters: Record<string, unknown> = { inputs: externalInputs(params.inputs) };
  const internalParameters: Record<string, unknown> = { modelship: VERSION, ...(params.buildxDriver ? { buildxDriver: params.buildxDriver } : {}) };
  let builder: SlsaProvenance['runDetails']['builder'];
  let invocationId: string | undefined;
  if (onGitHub) {
    const repository = env.GITHUB_REPOSITORY!;
    builder = { id: env.GITHUB_WORKFLOW_REF ? `${server}/${env.GITHUB_WORKFLOW_REF}` : `${server}/${repository}/actions`, version: { modelship: VERSION } };
    invocationId = `${server}/${repository}/actions/runs/${env.GITHUB_RUN_ID}/attempts/${env.GITHUB_RUN_ATTEMPT || '1'}`;
    const wf = env.GITHUB_WORKFLOW_REF ? workflowPath(env.GITHUB_WORKFLOW_REF, repository) : undefined;
    externalParameters.workflow = { repository: `${server}/${repository}`, ...(env.GITHUB_REF ? { ref: env.GITHUB_REF } : {}), ...(wf ? { path: wf } : {}) };
    // the run's context as GitHub's own build type records it (ids survive renames; the runner says who ran it)
    const github = Object.fromEntries(
      (
        [
          ['event_name', env.GITHUB_EVENT_NAME],
          ['repository_id', env.GITHUB_REPOSITORY_ID],
          ['repository_owner_id', env.GITHUB_REPOSITORY_OWNER_ID],
          ['runner_environment', env.RUNNER_ENVIRONMENT],
        ] as [string, string | undefined][]
      ).filter(([, v]) => v),
    );
    if (Object.keys(github).length) internalParameters.github = github;
  } else {
    builder = { id: `${CLI_BUILDER}@${VERSION}`, version: { modelship: VERSION } };
    if (params.hostname) internalParameters.hostname = params.hostname;
  }
  const config = facts.triton?.config;
  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [{ name: facts.image.repository, digest: { sha256: digest.slice('sha256:'.length) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: { buildType: BUILD_TYPE, externalParameters, internalParameters, resolvedDependencies: resolvedDependencies(facts, params) },
      runDetails: {
        builder,
        metadata: { ...(invocationId ? { invocationId } : {}), startedOn: params.startedOn, finishedOn: params.finishedOn },
        // what the build generated beside the image: Triton's config.pbtxt
        ...(config ? { byproducts: [{ name: 'config.pbtxt', digest: { sha256: config.sha256 }, annotations: { path: config.file } }] } : {}),
      },
    },
  };
}
