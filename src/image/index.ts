import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as lockfile from 'proper-lockfile';
import { ImageConfig } from './inputs';
import { Logger, StageResult } from '../stage';
import { ModelshipError } from '../util/errors';
import { readFileChecked, sha256, writeFileAtomic } from '../util/fsx';
import { runProcess } from '../util/proc';
import { encryptModel, parseKey } from '../protocol/model-crypto';
import { renderDockerfile, renderCompose, setContextModes } from './dockerfile';
import { computeTags, GitContext, pullRequestOf } from './tags';
import { cacheTag, fetchManifest, parseImageRef } from '../shared/registry';
import { VERSION } from '../version';
import { resolveNodeRuntime, NodeRuntime } from './node';
import { resolveGpuProviders, ORT_VERSION, GpuProviders } from './gpu-provider';
import { checkBaseImageLoads } from './basecheck';
import { openRegistrySession } from '../util/dockerconfig';
import { refuseModelshipPlan } from '../shared/tensorrt';
import { pinImage, planTritonModel, renderTritonDockerfile, writeTritonRepository } from './triton';
import { SERVING_PORT } from '../protocol/runtime';
import { SERVE_SETTINGS } from '../protocol/serve-settings';
import { ContextFacts, imageFacts, recordSupplyChain } from './supply-chain';

export { SERVING_PORT };
export const SERVING_UID = 10001;

/** The directory of the server bundle to ship: the running bundle, or the repository's dist/ when run from source. */
export function distDir(): string {
  // (computed step by step: a literal path next to __dirname would make ncc copy that directory into the bundle)
  let repo = __dirname;
  for (let i = 0; i < 2; i++) repo = path.dirname(repo);
  for (const d of [process.env.MODELSHIP_DIST, __dirname, path.join(repo, 'dist')]) {
    if (d && fs.existsSync(path.join(d, 'index.js')) && fs.existsSync(path.join(d, 'bin'))) return d;
  }
  throw new ModelshipError('io', 'cannot find the modelship bundle (dist/index.js) to put in the image; run `npm run build` or set MODELSHIP_DIST');
}

/** Git context for tags and labels: inputs first, then the GitHub runner's environment, then the local checkout. */
export async function gitContext(cfg: ImageConfig, env: NodeJS.ProcessEnv): Promise<GitContext & { source: string }> {
  let event: { pull_request?: { number?: number; head?: { sha?: string } }; repository?: { default_branch?: string; html_url?: string } } = {};
  if (env.GITHUB_EVENT_PATH && fs.existsSync(env.GITHUB_EVENT_PATH)) {
    try {
      event = JSON.parse(fs.readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as typeof event;
    } catch {
      event = {};
    }
  }
  const git = async (args: string[]) => {
    try {
      const r = await runProcess('git', args);
      return r.code === 0 ? r.stdout.trim() : '';
    } catch {
      return '';
    }
  };
  const sha = cfg.revision || event.pull_request?.head?.sha || env.GITHUB_SHA || (await git(['rev-parse', 'HEAD']));
  const ref = cfg.ref || env.GITHUB_REF || (await git(['symbolic-ref', '-q', 'HEAD'])) || '';
  const source =
    cfg.source || event.repository?.html_url || (env.GITHUB_REPOSITORY ? `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}` : '');
  return {
    sha,
    ref,
    eventName: env.GITHUB_EVENT_NAME ?? 'push',
    defaultBranch: event.repository?.default_branch ?? cfg.defaultBranch,
    prNumber: event.pull_request?.number,
    source,
  };
}

/**
 * buildx cache flags: registry cache where the driver can export it, gha on GitHub, inline on the docker driver (the
 * image itself, tagged with the cache ref, carries the cache). The cache ref is `<image>:buildcache`; a pull
 * request's build (`pr`) writes `<image>:buildcache-pr-<N>` of its own and reads it and the deploy's, so a preview
 * never moves the deploy's cache (gha caches are scoped to the PR's ref by GitHub already).
 */
export function cacheFlags(driver: string, image: string, env: NodeJS.ProcessEnv, mode: string, pr?: number): string[] {
  if (mode === 'off') return [];
  const ref = `${image}:${cacheTag(pr)}`;
  const from = [...new Set([ref, `${image}:${cacheTag()}`])].flatMap((r) => ['--cache-from', `type=registry,ref=${r}`]);
  if (driver === 'docker') return [...from, '--cache-to', 'type=inline'];
  if (mode === 'gha' || (mode === 'auto' && env.ACTIONS_CACHE_URL && env.ACTIONS_RUNTIME_TOKEN))
    return ['--cache-from', 'type=gha', '--cache-to', 'type=gha,mode=max'];
  return [...from, '--cache-to', `type=registry,ref=${ref},mode=max`];
}

/** Set every mtime under `dir` to `t`: identical content gives identical layers on any runner. */
function setTimes(dir: string, t: number): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) setTimes(p, t);
    fs.utimesSync(p, t, t);
  }
  fs.utimesSync(dir, t, t);
}

/** Build contexts kept for incremental transfer: the most recently used ones, and any used within the hour. */
const KEEP_CONTEXTS = 6;
const KEEP_RECENT_MS = 3600_000;

/** Remove build contexts of other image repositories that have not been used for a while (each holds a runtime copy). */
export function pruneContexts(root: string, current: string, now = Date.now()): void {
  // a context without .used is being made by another build right now: its directory's own time counts
  const used = (d: string) => {
    for (const f of [path.join(d, '.used'), d]) {
      try {
        return fs.statSync(f).mtimeMs;
      } catch {
        /* the next */
      }
    }
    return 0;
  };
  const dirs = fs
    .readdirSync(root)
    .filter((n) => !n.endsWith('.lock'))
    .map((n) => path.join(root, n))
    .filter((d) => d !== current)
    .map((d) => ({ d, t: used(d) }))
    .sort((a, b) => b.t - a.t);
  for (const [i, { d, t }] of dirs.entries()) {
    // never one another build holds (contextLock)
    if (i >= KEEP_CONTEXTS - 1 && now - t > KEEP_RECENT_MS && !lockfile.checkSync(d, { realpath: false, stale: LOCK_STALE_MS }))
      fs.rmSync(d, { recursive: true, force: true });
  }
}

/** A build context's lock is stale when its holder has not refreshed it for this long (proper-lockfile's mtime check). */
const LOCK_STALE_MS = 30_000;

/**
 * Hold the build context of one image repository from its preparation to the end of its build: two builds of the same
 * repository on one host (two jobs of a self-hosted runner, a pull request's build beside the push's) take turns,
 * neither rewriting the context the other's buildx is reading; a build of another repository never prunes it. A lock
 * left by a killed build goes stale in 30 s. proper-lockfile: an atomic mkdir of `<ctx>.lock`, refreshed while held.
 */
export async function contextLock(ctx: string, log?: Logger): Promise<() => Promise<void>> {
  fs.mkdirSync(ctx, { recursive: true });
  const opts = { realpath: false, stale: LOCK_STALE_MS, update: LOCK_STALE_MS / 3 };
  try {
    return await lockfile.lock(ctx, { ...opts, retries: 0 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
  }
  log?.info(`another build of this image repository on this host holds its build context (${ctx}); waiting for it`);
  // up to ~10 minutes, a try every 1-2 s
  return lockfile.lock(ctx, { ...opts, retries: { retries: 400, minTimeout: 1000, maxTimeout: 2000 } });
}

/** The directory ONNX Runtime's libraries live in inside the image (next to the binding, in the bundle). */
export const IMAGE_ORT_DIR = '/opt/modelship/dist/bin/napi-v6/linux/x64';

/** Copy (or hard-link, when on the same file system) `src` to `dst`. */
function place(src: string, dst: string): void {
  try {
    fs.linkSync(src, dst);
  } catch {
    fs.copyFileSync(src, dst);
  }
}

/** Is `dir/.key` equal to `key`? If not, empty `dir` and let `fill` rebuild it, then record the key. */
function keyed(dir: string, key: string, fill: () => void): void {
  const keyFile = `${dir}.key`;
  if (fs.existsSync(dir) && fs.existsSync(keyFile) && fs.readFileSync(keyFile, 'utf8') === key) return;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(keyFile, { force: true });
  fs.mkdirSync(dir, { recursive: true });
  fill();
  setTimes(dir, 0);
  fs.writeFileSync(keyFile, key);
}

export interface ContextInputs {
  image: string;
  node: NodeRuntime;
  /** the CUDA provider libraries (gpu: true) */
  providers?: string[];
  modelFile: string;
  modelBytes: Uint8Array;
  modelSha: string;
}

/**
 * The build context lives in a stable directory per image repository, so BuildKit's incremental context transfer
 * (which trusts size + mtime) only sends what changed: a model-only rebuild transfers the model alone. Runtime
 * files (Node.js and its LICENSE, the server bundle, the CUDA providers) get mtime 0 and are refreshed only when
 * their source changes; the model gets an mtime derived from its sha256, so a new model of the same size is never
 * mistaken for the old one. Contexts of repositories not built for a while are pruned.
 */
export function contextDir(image: string): string {
  return path.join(os.tmpdir(), 'modelship-build', sha256(image).slice(0, 16));
}

/** (the caller holds contextLock(ctx)) */
function prepareContext(c: ContextInputs, ctx: string): string {
  const root = path.dirname(ctx);
  const dist = distDir();
  const stamp = (f: string) => {
    const st = fs.statSync(f);
    return [f, st.size, st.mtimeMs];
  };
  fs.mkdirSync(ctx, { recursive: true });
  fs.writeFileSync(path.join(ctx, '.used'), '');
  for (const old of ['runtime', '.runtime-key']) fs.rmSync(path.join(ctx, old), { recursive: true, force: true }); // an older layout
  keyed(path.join(ctx, 'node'), JSON.stringify({ node: stamp(c.node.binary), license: c.node.license ? stamp(c.node.license) : null }), () => {
    fs.mkdirSync(path.join(ctx, 'node/bin'));
    fs.copyFileSync(c.node.binary, path.join(ctx, 'node/bin/node'));
    fs.chmodSync(path.join(ctx, 'node/bin/node'), 0o755);
    if (c.node.license) fs.copyFileSync(c.node.license, path.join(ctx, 'node/LICENSE'));
  });
  // the server needs index.js and the onnxruntime binaries, not the chunks other stages load lazily (the Kubernetes client)
  keyed(path.join(ctx, 'dist'), JSON.stringify(stamp(path.join(dist, 'index.js'))), () =>
    fs.cpSync(dist, path.join(ctx, 'dist'), { recursive: true, filter: (src) => !/[\\/]\d+\.index\.js$/.test(src) }),
  );
  if (c.providers) {
    keyed(path.join(ctx, 'providers'), JSON.stringify(c.providers.map(stamp)), () => {
      for (const f of c.providers!) place(f, path.join(ctx, 'providers', path.basename(f)));
    });
  } else {
    fs.rmSync(path.join(ctx, 'providers'), { recursive: true, force: true });
    fs.rmSync(path.join(ctx, 'providers.key'), { force: true });
  }
  fs.writeFileSync(path.join(ctx, '.used'), '');
  fs.rmSync(path.join(ctx, 'model'), { recursive: true, force: true });
  fs.mkdirSync(path.join(ctx, 'model'));
  fs.writeFileSync(path.join(ctx, 'model', c.modelFile), c.modelBytes, { mode: 0o644 });
  setTimes(path.join(ctx, 'model'), parseInt(c.modelSha.slice(0, 7), 16));
  // what COPY takes into the image must be readable by its user whatever the umask, on every build (a context kept
  // from an earlier build may have been written under another umask)
  for (const d of ['node', 'dist', 'providers', 'model']) if (fs.existsSync(path.join(ctx, d))) setContextModes(path.join(ctx, d));
  try {
    pruneContexts(root, ctx);
  } catch {
    /* another build may be pruning too: leftovers are only disk space */
  }
  return ctx;
}

/**
 * The image stage: generate the serving Dockerfile, build and push it with the real `docker buildx build`,
 * and report the digest, tags and metadata; also write a docker-compose.yml that serves the image by digest.
 */
export async function runImage(cfg: ImageConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<StageResult> {
  const startedOn = new Date().toISOString();
  const ref = parseImageRef(cfg.image);
  if (ref.tag || ref.digest)
    throw new ModelshipError('input', `input "image": give the repository without a tag (tags are computed), got "${cfg.image}"`, { field: 'image' });
  // the builder's driver decides the cache flags; asking takes a third of a second, so it runs while the context is prepared
  const inspecting = runProcess('docker', ['buildx', 'inspect']).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  const model = readFileChecked(cfg.model, 'model');
  const modelDigest = sha256(model);
  let modelBytes: Uint8Array = model;
  let modelFile = path.basename(cfg.model);
  if (cfg.encryptModel) {
    if (!cfg.modelKey) throw new ModelshipError('input', 'input "encrypt-model" needs input "model-key" (32 bytes, hex or base64)', { field: 'model-key' });
    modelBytes = encryptModel(model, parseKey(cfg.modelKey, 'input "model-key"'));
    modelFile += '.enc';
  }
  const git = await gitContext(cfg, env);
  const tags = computeTags(cfg.image, git);
  // a pull request's build (tagged pr-<N>) writes its own build cache ref
  const pr = pullRequestOf(git);
  if (tags.length === 0)
    throw new ModelshipError('input', 'no image tag could be computed: give input "revision" (a commit sha) or run inside a git checkout', {
      field: 'revision',
    });
  const labels: Record<string, string> = {
    'org.opencontainers.image.title': cfg.modelName,
    'org.opencontainers.image.description': `${cfg.runtime === 'triton' ? 'Triton Inference Server' : 'modelship'} serving image for ${cfg.modelName} (KServe v2)`,
    'org.opencontainers.image.source': git.source,
    'org.opencontainers.image.revision': git.sha,
    'org.opencontainers.image.created': new Date().toISOString(),
    'org.opencontainers.image.version': tags[0].slice(cfg.image.length + 1),
    'org.opencontainers.image.base.name': cfg.runtime === 'triton' ? cfg.tritonImage : cfg.baseImage,
    'dev.modelship.runtime': cfg.runtime,
    'dev.modelship.model.sha256': modelDigest,
    'dev.modelship.model.name': cfg.modelName,
    'dev.modelship.model.encrypted': String(cfg.encryptModel),
    'dev.modelship.parity': cfg.parity,
    'dev.modelship.version': VERSION,
  };

  // registry credentials live in a DOCKER_CONFIG of this stage's own, removed when it ends (the base image checks
  // may pull from the same private registry)
  const docker = await openRegistrySession(ref.registry, cfg.registryUsername, cfg.registryPassword, env);
  const dockerEnv = docker.env;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-image-'));
  let unlock: (() => Promise<void>) | undefined;
  try {
    // runtime modelship builds from a context kept per image repository (prepareContext), held until its build ends
    const context = cfg.runtime === 'triton' ? '' : contextDir(cfg.image);
    if (context) unlock = await contextLock(context, log);
    // everything fetched and checked before anything is built
    const {
      ctx,
      dockerfile,
      facts: contextFacts,
    } = cfg.runtime === 'triton'
      ? await tritonContext(cfg, { model, labels, work, env: dockerEnv }, log)
      : await modelshipContext(
          cfg,
          { modelFile, modelBytes, modelSha: cfg.encryptModel ? sha256(modelBytes) : modelDigest, labels, env: dockerEnv, contextDir: context },
          log,
        );
    // the Dockerfile stays outside the context (its labels change every build)
    fs.writeFileSync(path.join(work, 'Dockerfile'), dockerfile);

    const inspect = await inspecting;
    if (inspect.code !== 0) throw new ModelshipError('io', `docker buildx is not available: ${inspect.stderr.trim()}`);
    const driver = /Driver:\s*(\S+)/.exec(inspect.stdout)?.[1] ?? 'docker';
    const metaFile = path.join(work, 'buildx-metadata.json');
    const args = [
      'buildx',
      'build',
      '--file',
      path.join(work, 'Dockerfile'),
      ...tags.flatMap((t) => ['--tag', t]),
      ...(driver === 'docker' && cfg.cache !== 'off' ? ['--tag', `${cfg.image}:${cacheTag(pr)}`] : []),
      '--provenance=false',
      '--metadata-file',
      metaFile,
      ...cacheFlags(driver, cfg.image, env, cfg.cache, pr),
      cfg.push ? '--push' : '--load',
      ctx,
    ];
    const t0 = Date.now();
    const build = await log.group(`docker buildx build (${driver} driver) → ${tags.join(', ')}`, () =>
      runProcess('docker', args, { onLine: log.info, env: dockerEnv }),
    );
    if (build.code !== 0)
      throw new ModelshipError('io', `docker buildx build failed (exit ${build.code}):\n${build.stderr.trim().split('\n').slice(-15).join('\n')}`);
    const seconds = (Date.now() - t0) / 1000;
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as Record<string, unknown>;
    const reported = meta['containerimage.digest'];
    const digest = typeof reported === 'string' ? reported : '';
    if (!/^sha256:[0-9a-f]{64}$/.test(digest))
      throw new ModelshipError('io', `buildx reported no image digest (metadata: ${JSON.stringify(meta).slice(0, 300)})`);
    const cached = (build.stdout + build.stderr).split('\n').filter((l) => /\bCACHED\b/.test(l)).length;
    const pinned = `${cfg.image}@${digest}`;
    let layers: { digest: string; size: number }[] = [];
    if (cfg.push)
      layers = (await fetchManifest(pinned, cfg.registryUsername ? { username: cfg.registryUsername, password: cfg.registryPassword } : undefined)).layers;
    const size = layers.reduce((a, l) => a + l.size, 0);

    const composePath = cfg.composeFile;
    const service = cfg.modelName.replace(/[^a-z0-9-]/gi, '-').toLowerCase() || 'model';
    const secretsEnv = [...(cfg.encryptModel ? [SERVE_SETTINGS.modelKey.env] : []), ...(cfg.apiKeyRequired ? [SERVE_SETTINGS.apiKey.env] : [])];
    writeFileAtomic(
      composePath,
      renderCompose({
        service,
        image: pinned,
        runtime: cfg.runtime,
        port: SERVING_PORT,
        hostPort: SERVING_PORT,
        gpu: cfg.gpu,
        env: cfg.gpu && cfg.runtime === 'modelship' ? { [SERVE_SETTINGS.provider.env]: 'cuda' } : {},
        secretsEnv,
      }),
    );

    // what went into the image and how it was built, as files; signed and attested to the digest with input sign
    const supply = await recordSupplyChain(
      {
        facts: imageFacts({
          repository: cfg.image,
          digest,
          tags,
          runtime: cfg.runtime,
          gpu: cfg.gpu,
          created: labels['org.opencontainers.image.created'],
          model: {
            name: cfg.modelName,
            path: cfg.model,
            bytes: model,
            fileInImage: modelFile,
            ...(cfg.encryptModel ? { encrypted: { file: modelFile, sha256: sha256(modelBytes) } } : {}),
            parity: cfg.parity,
          },
          context: contextFacts,
          warn: (line) => log.warning(line),
        }),
        inputs: cfg,
        git,
        buildxDriver: driver,
        startedOn,
        files: { mlBom: cfg.mlBomFile, provenance: cfg.provenanceFile },
        signing: cfg.signing,
        pinned,
      },
      log,
      dockerEnv,
    );

    const metadata = {
      image: pinned,
      digest,
      tags,
      labels,
      runtime: cfg.runtime,
      ...(cfg.runtime === 'triton' ? { baseImage: `${labels['org.opencontainers.image.base.name']}@${labels['org.opencontainers.image.base.digest']}` } : {}),
      layers: layers.map((l) => l.digest),
      size,
      driver,
      buildSeconds: seconds,
      layersCached: cached,
      buildx: meta,
    };
    const summary = [
      '## modelship image',
      '',
      `| | |`,
      `|---|---|`,
      `| image | \`${pinned}\` |`,
      `| tags | ${tags.map((t) => `\`${t}\``).join(', ')} |`,
      `| size (compressed layers) | ${(size / 2 ** 20).toFixed(1)} MiB in ${layers.length} layers |`,
      `| build steps reused from cache | ${cached} |`,
      `| build time | ${seconds.toFixed(1)} s (${driver} driver) |`,
      `| runtime | ${cfg.runtime === 'triton' ? `Triton Inference Server, FROM \`${labels['org.opencontainers.image.base.name']}@${labels['org.opencontainers.image.base.digest']}\`` : 'modelship'} |`,
      `| model | \`${cfg.model}\` sha256 \`${modelDigest.slice(0, 16)}…\`${cfg.encryptModel ? ' (AES-256-GCM encrypted)' : ''}, parity ${cfg.parity} |`,
      `| supply chain | ML-BOM \`${supply.mlBomFile}\`, provenance \`${supply.provenanceFile}\`; ${supply.signed ? `signed and attested with cosign (${cfg.signing.sign})` : 'not signed'} |`,
      '',
    ].join('\n');
    return {
      outputs: {
        image: pinned,
        digest,
        tags: tags.join('\n'),
        metadata: JSON.stringify(metadata),
        'compose-file': composePath,
        'ml-bom': supply.mlBomFile,
        provenance: supply.provenanceFile,
        signed: String(supply.signed),
      },
      summary,
      ok: true,
    };
  } finally {
    await unlock?.().catch(() => undefined);
    docker.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The modelship runtime's context: Node.js, the server bundle, for a GPU image the CUDA provider, the model. */
async function modelshipContext(
  cfg: ImageConfig,
  build: { modelFile: string; modelBytes: Uint8Array; modelSha: string; labels: Record<string, string>; env: NodeJS.ProcessEnv; contextDir: string },
  log: Logger,
): Promise<{ ctx: string; dockerfile: string; facts: ContextFacts }> {
  refuseModelshipPlan(cfg.model);
  const node = await log.group('Node.js for the image', () =>
    resolveNodeRuntime({ nodeBinary: cfg.nodeBinary, nodeVersion: cfg.nodeVersion, nodeMirror: cfg.nodeMirror }, log),
  );
  build.labels['dev.modelship.node.version'] = node.version;
  let providers: string[] | undefined;
  let gpuProviders: GpuProviders | undefined;
  if (cfg.gpu) {
    const gpu = await log.group(`ONNX Runtime ${ORT_VERSION} CUDA provider`, () =>
      resolveGpuProviders({ version: ORT_VERSION, package: cfg.providerPackage, sha256: cfg.providerPackageSha256, nugetSource: cfg.nugetSource }, log),
    );
    await log.group(`can ${cfg.baseImage} load the CUDA provider?`, () => checkBaseImageLoads(cfg.baseImage, gpu.files, log, build.env));
    providers = gpu.files;
    gpuProviders = gpu;
    build.labels['dev.modelship.onnxruntime.provider'] = 'cuda';
    build.labels['dev.modelship.onnxruntime.provider-package'] = `Microsoft.ML.OnnxRuntime.Gpu.Linux ${ORT_VERSION} sha256:${gpu.provenance.sha256 ?? ''}`;
  }
  const ctx = prepareContext(
    { image: cfg.image, node, providers, modelFile: build.modelFile, modelBytes: build.modelBytes, modelSha: build.modelSha },
    build.contextDir,
  );
  const dockerfile = renderDockerfile({
    baseImage: cfg.baseImage,
    modelFile: build.modelFile,
    modelName: cfg.modelName,
    port: SERVING_PORT,
    uid: SERVING_UID,
    labels: build.labels,
    env: {
      ...(cfg.gpu ? { [SERVE_SETTINGS.provider.env]: 'cuda' } : {}),
      ...(cfg.preprocess ? { [SERVE_SETTINGS.preprocess.env]: JSON.stringify(cfg.preprocess) } : {}),
    },
    providers: !!providers,
    ortDir: IMAGE_ORT_DIR,
  });
  const base = parseImageRef(cfg.baseImage);
  const facts: ContextFacts = {
    base: { name: cfg.baseImage.replace(/@sha256:[0-9a-f]{64}$/, ''), ...(base.digest ? { digest: base.digest } : {}) },
    node,
    ...(gpuProviders ? { providers: gpuProviders } : {}),
    dist: path.join(ctx, 'dist'),
  };
  return { ctx, dockerfile, facts };
}

/**
 * Runtime triton's context: a model repository with a generated, validated config.pbtxt; FROM the Triton image
 * pinned to the digest it resolves to now (recorded in the labels and the metadata output). A TensorRT plan must
 * have been built by the TensorRT of that image.
 */
async function tritonContext(
  cfg: ImageConfig,
  build: { model: Uint8Array; labels: Record<string, string>; work: string; env: NodeJS.ProcessEnv },
  log: Logger,
): Promise<{ ctx: string; dockerfile: string; facts: ContextFacts }> {
  const creds = cfg.registryUsername ? { username: cfg.registryUsername, password: cfg.registryPassword } : undefined;
  // pinned first: a plan's TensorRT is checked against the image that will be built FROM, not a local tag
  const base = await log.group(`resolve ${cfg.tritonImage}`, async () => {
    const b = await pinImage(cfg.tritonImage, build.env);
    log.info(b.pinned);
    return b;
  });
  const m = await log.group(`Triton model repository for ${cfg.modelName}`, async () => {
    const t = await planTritonModel({
      model: cfg.model,
      bytes: build.model,
      modelName: cfg.modelName,
      gpu: cfg.gpu,
      maxQueueDelayUs: cfg.maxQueueDelayUs,
      maxBatch: cfg.maxBatchSize,
      servingImage: cfg.tritonImage,
      servingRef: base.pinned,
      env: build.env,
      creds,
    });
    log.info(
      `${t.platform}, max_batch_size ${t.maxBatchSize}${t.tensorrt ? `; the plan's TensorRT ${t.tensorrt.plan} is the serving image's ${t.tensorrt.image}` : ''}`,
    );
    for (const line of t.config.trimEnd().split('\n')) log.info(`  ${line}`);
    return t;
  });
  build.labels['org.opencontainers.image.base.digest'] = base.digest;
  build.labels['dev.modelship.triton.platform'] = m.platform;
  if (m.tensorrt) build.labels['dev.modelship.tensorrt.version'] = m.tensorrt.plan;
  const ctx = path.join(build.work, 'context');
  writeTritonRepository(ctx, cfg.modelName, m, build.model);
  // BuildKit's context transfer trusts size + mtime, across builds: a new model or config of the same size (KIND_CPU
  // and KIND_GPU are) must not be taken for the one it sent before, so the mtime is derived from their content
  setTimes(ctx, parseInt(sha256(Buffer.concat([Buffer.from(m.config), build.model])).slice(0, 7), 16));
  return {
    ctx,
    dockerfile: renderTritonDockerfile({ baseImage: base.pinned, labels: build.labels }),
    facts: {
      base: { name: cfg.tritonImage.replace(/@sha256:[0-9a-f]{64}$/, ''), digest: base.digest },
      triton: { release: cfg.tritonRelease, config: m.config, platform: m.platform },
    },
  };
}
