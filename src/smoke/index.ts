import * as fs from 'fs';
import * as http from 'http';
import * as crypto from 'crypto';
import { SmokeConfig } from './inputs';
import { Logger, StageResult } from '../stage';
import { ModelshipError } from '../util/errors';
import { runProcess } from '../util/proc';
import { referenceBatches } from '../shared/reference';
import { goldenRequests, GOLDEN_TABLE_HEAD, GoldenRequest, GoldenTarget, httpTransport, measureLatency, percentile, Transport } from '../shared/golden';
import { GRPC_PORT, SERVING_PORT } from '../protocol/runtime';
import { KServeGrpcClient } from '../protocol/kserve-grpc-client';
import { SERVE_SETTINGS } from '../protocol/serve-settings';
import { classifyImage, detectImage, detectionOutput, detectServer, modelPlacement, ModelMeta, ServerInfo } from '../protocol/kserve-client';
import { formatBox, iou, matchDetections, ExpectedDetection, ImageDetection } from '../protocol/detections';
import { parseImageRef } from '../shared/registry';
import { openRegistrySession } from '../util/dockerconfig';
import { verifyBeforeUse } from '../shared/verify-image';

/** Who started a smoke container: the workflow run and job on GitHub, else this process (for the post-step cleanup). */
export function smokeOwner(env: NodeJS.ProcessEnv = process.env): string {
  return env.GITHUB_RUN_ID ? `${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}-${env.GITHUB_JOB ?? 'job'}` : `pid-${process.pid}`;
}

/** The docker commands of a smoke run, as data. */
export function planSmoke(
  cfg: SmokeConfig,
  name: string,
  owner = smokeOwner(),
): { pull: string[]; run: string[]; gpuQuery: string[]; logs: string[]; remove: string[] } {
  const env: string[] = [];
  // secrets travel by name only: docker reads their values from its own environment, never from argv
  if (cfg.apiKey) env.push('-e', SERVE_SETTINGS.apiKey.env);
  if (cfg.modelKey) env.push('-e', SERVE_SETTINGS.modelKey.env);
  if (cfg.gpu && cfg.runtime === 'modelship') env.push('-e', `${SERVE_SETTINGS.provider.env}=cuda`);
  // the sample image's preprocessing, where the server preprocesses (modelship's /detect): not a secret
  if (cfg.preprocess && cfg.runtime === 'modelship') env.push('-e', `${SERVE_SETTINGS.preprocess.env}=${JSON.stringify(cfg.preprocess)}`);
  return {
    pull: ['pull', cfg.image],
    run: [
      'run',
      '-d',
      '--name',
      name,
      '--label',
      'dev.modelship.smoke=true',
      '--label',
      `dev.modelship.owner=${owner}`,
      '-p',
      `127.0.0.1::${SERVING_PORT}`,
      // over gRPC, its port too (HTTP stays: readiness, and where the model runs, which only modelship's HTTP metadata says)
      ...(cfg.protocol === 'grpc' ? ['-p', `127.0.0.1::${GRPC_PORT}`] : []),
      ...(cfg.gpu ? ['--gpus', 'all'] : []),
      ...env,
      cfg.image,
    ],
    gpuQuery: ['exec', name, 'nvidia-smi', '--query-gpu=name,driver_version,compute_cap', '--format=csv,noheader'],
    logs: ['logs', '--tail', '60', name],
    remove: ['rm', '-f', '-v', name],
  };
}

export { percentile };

/** A mermaid xychart of the latency percentiles for the job summary. */
function latencyChart(p: Record<string, number>): string {
  const keys = Object.keys(p);
  return [
    '```mermaid',
    'xychart-beta',
    '  title "Smoke latency (ms)"',
    `  x-axis [${keys.map((k) => `"${k}"`).join(', ')}]`,
    `  y-axis "ms" 0 --> ${Math.ceil(Math.max(...Object.values(p)) * 1.2 + 1)}`,
    `  bar [${keys.map((k) => p[k].toFixed(2)).join(', ')}]`,
    '```',
  ].join('\n');
}

/**
 * The smoke stage, the GPU runner's gate: run the pushed image by digest, wait for readiness, send golden
 * requests (the parity reference must reproduce Caffe's outputs; a sample image must give the expected top-1, or a
 * detection model's expected detections),
 * measure latency and throughput, and always remove the container — on success, failure and cancellation.
 */
export async function runSmoke(cfg: SmokeConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<StageResult> {
  if (!/@sha256:[0-9a-f]{64}$/.test(cfg.image) && !cfg.allowTag) {
    throw new ModelshipError(
      'input',
      `input "image": smoke runs the pushed image by digest (repository@sha256:..., the image stage's "image" output), got "${cfg.image}"`,
      { field: 'image' },
    );
  }
  if (cfg.reference) referenceBatches(cfg.reference); // fails early on a missing directory
  const name = `modelship-smoke-${crypto.randomBytes(4).toString('hex')}`;
  // a private image: the login lives in a DOCKER_CONFIG of this stage's own, removed when it ends
  const session = await openRegistrySession(parseImageRef(cfg.image).registry, cfg.registryUsername, cfg.registryPassword, env);
  // verify (cosign) before anything is pulled: what does not verify stops the stage here, and from here on the image
  // is the digest that verified (a tag, where allowed, resolved once)
  if (cfg.verification) {
    try {
      cfg = { ...cfg, image: (await verifyBeforeUse(cfg.verification, cfg.image, log, session.env)).image };
    } catch (e) {
      session.close();
      throw e;
    }
  }
  const plan = planSmoke(cfg, name);
  const dockerEnv = {
    ...session.env,
    ...(cfg.apiKey ? { [SERVE_SETTINGS.apiKey.env]: cfg.apiKey } : {}),
    ...(cfg.modelKey ? { [SERVE_SETTINGS.modelKey.env]: cfg.modelKey } : {}),
  };
  const docker = (args: string[], onLine?: (l: string) => void) => runProcess('docker', args, { env: dockerEnv, onLine });
  /** the host port `docker run -p 127.0.0.1::<port>` published for the container's `port`, or undefined */
  const publishedPort = async (container: string, port: number) =>
    (await docker(['port', container, `${port}/tcp`])).stdout.trim().split('\n')[0]?.split(':').pop() || undefined;
  let started = false;
  const cleanup = async () => {
    if (started) {
      started = false;
      await docker(plan.remove);
    }
  };
  const onSignal = (sig: NodeJS.Signals) => {
    void cleanup().finally(() => {
      session.close();
      process.kill(process.pid, sig);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const auth: Record<string, string> = cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {};
  const failures: string[] = [];
  const outputs: Record<string, string> = {
    smoke: 'fail',
    'latency-p50-ms': '',
    'latency-p95-ms': '',
    'latency-p99-ms': '',
    'throughput-rps': '',
    'gpu-info': '',
  };
  let summary = '## modelship smoke\n\n';
  let logTail = '';
  let grpcClient: KServeGrpcClient | undefined;
  try {
    const pull = await log.group(`docker pull ${cfg.image}`, () => docker(plan.pull, log.info));
    if (pull.code !== 0) {
      const registry = parseImageRef(cfg.image).registry;
      const denied = /unauthorized|no basic auth credentials|authentication required|denied/i.test(pull.stderr);
      const hint = denied
        ? cfg.registryUsername
          ? ` (registry ${registry} refused the login of "${cfg.registryUsername}")`
          : ` (registry ${registry} requires a login: give registry-username and registry-password)`
        : '';
      throw new ModelshipError('io', `docker pull ${cfg.image} failed${hint}: ${pull.stderr.trim().slice(-400)}`);
    }
    const run = await docker(plan.run);
    if (run.code !== 0) throw new ModelshipError('io', `docker run failed: ${run.stderr.trim().slice(-600)}`);
    started = true;
    const port = await publishedPort(name, SERVING_PORT);
    if (!port) {
      // a container that has already exited (a model it cannot load, a wrong key) has no port mapping left: say so
      const running = (await docker(['inspect', '-f', '{{.State.Running}}', name])).stdout.trim();
      throw new ModelshipError('io', running === 'true' ? 'the container published no port' : 'the container exited before it became ready');
    }
    const base = `http://127.0.0.1:${port}`;
    log.info(`container ${name} serving on ${base}`);
    const t: Transport = httpTransport(base);

    // readiness
    const t0 = Date.now();
    let ready = false;
    while (Date.now() - t0 < cfg.readyTimeoutS * 1000) {
      const state = (await docker(['inspect', '-f', '{{.State.Running}}', name])).stdout.trim();
      if (state !== 'true') throw new ModelshipError('io', 'the container exited before it became ready');
      try {
        if ((await t(`/v2/health/ready`, { timeoutMs: 2000 })).status === 200) {
          ready = true;
          break;
        }
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!ready) throw new ModelshipError('io', `the server was not ready within ${cfg.readyTimeoutS} s`);
    // over gRPC: the same server on its gRPC port must say it is ready too (ServerReady), within what is left
    let target: GoldenTarget = t;
    if (cfg.protocol === 'grpc') {
      const grpcPort = await publishedPort(name, GRPC_PORT);
      if (!grpcPort) throw new ModelshipError('io', `the container published no gRPC port (${GRPC_PORT})`);
      grpcClient = new KServeGrpcClient(`127.0.0.1:${grpcPort}`, { headers: auth });
      target = grpcClient;
      log.info(`KServe v2 over gRPC on 127.0.0.1:${grpcPort}`);
      while (!(await grpcClient.ready(2000))) {
        if (Date.now() - t0 > cfg.readyTimeoutS * 1000)
          throw new ModelshipError(
            'io',
            `the server answered HTTP but was not ready over gRPC (ServerReady on port ${GRPC_PORT}) within ${cfg.readyTimeoutS} s`,
          );
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const readyMs = Date.now() - t0;
    log.info(`ready after ${readyMs} ms`);
    // what answers: the runtime decides what else may be asked (only what that server defines)
    let server: ServerInfo;
    try {
      server = grpcClient ? await grpcClient.server() : await detectServer(t, auth);
    } catch (e) {
      throw new ModelshipError('io', (e as Error).message);
    }
    log.info(`the server is ${server.name} ${server.version}`);
    if (server.runtime !== cfg.runtime)
      failures.push(
        `the image was meant for runtime ${cfg.runtime}, but its server says it is ${server.name} ${server.version} (${grpcClient ? 'gRPC ServerMetadata' : 'GET /v2'})`,
      );
    const meta = grpcClient ? await grpcModelMeta(grpcClient, cfg.modelName) : await httpModelMeta(t, cfg.modelName, auth);
    const placement = await modelPlacement(t, server, cfg.modelName, auth);
    if (cfg.gpu) {
      const g = await docker(plan.gpuQuery);
      outputs['gpu-info'] = g.code === 0 ? g.stdout.trim() : `nvidia-smi failed: ${g.stderr.trim()}`;
      if (g.code !== 0) failures.push(`nvidia-smi in the container failed: ${g.stderr.trim()}`);
      if (placement.device !== 'cuda') failures.push(`gpu is true but ${server.name} does not run the model on the GPU: ${placement.detail}`);
    }
    summary += `Image \`${cfg.image}\` ready in ${readyMs} ms: ${server.name} ${server.version}, ${placement.detail}${outputs['gpu-info'] ? `, GPU ${outputs['gpu-info']}` : ''}.\n\n`;

    // golden requests: the parity reference
    let goldenBody: GoldenRequest | undefined;
    if (cfg.reference) {
      const g = await goldenRequests(target, {
        reference: cfg.reference,
        modelName: cfg.modelName,
        inputName: meta.inputs[0].name,
        singleInput: meta.inputs.length === 1,
        tolerance: cfg.tolerance,
        headers: auth,
      });
      goldenBody = g.batch1;
      failures.push(...g.failures);
      summary += `### Golden requests (the parity reference)\n\n${[...GOLDEN_TABLE_HEAD, ...g.rows].join('\n')}\n\n`;
    }
    // golden request: a sample image, a detection model's detections or a classifier's top-1
    const detector = detectionOutput(meta);
    if (cfg.sampleImage && detector && cfg.expectedTop1 !== '') {
      failures.push(
        `expected-top1 is given, but model "${cfg.modelName}" is a detection model (output ${detector}, a table of detections): give expected-detections instead`,
      );
    } else if (cfg.sampleImage && (cfg.expectedDetections || detector)) {
      const threshold = cfg.detectionThreshold ?? 0.5;
      const r = detector
        ? await detectImage(target, {
            runtime: server.runtime,
            modelName: cfg.modelName,
            meta,
            image: fs.readFileSync(cfg.sampleImage),
            threshold,
            headers: auth,
            preprocess: cfg.preprocess,
          })
        : undefined;
      const check = sampleDetections(cfg.sampleImage, cfg.expectedDetections, threshold, r, cfg.modelName);
      summary += check.summary;
      if (r && r.error === undefined)
        log.info(
          `sample image: ${r.detections.length} detection${r.detections.length === 1 ? '' : 's'} with score ≥ ${threshold} through ${r.route}${cfg.expectedDetections ? `, expected ${cfg.expectedDetections.length}: ${check.failure ? 'fail' : 'pass'}` : ''}`,
        );
      if (check.failure) failures.push(check.failure);
    } else if (cfg.sampleImage) {
      const r = await classifyImage(target, {
        modelName: cfg.modelName,
        meta,
        image: fs.readFileSync(cfg.sampleImage),
        k: 5,
        headers: auth,
        preprocess: cfg.preprocess,
      });
      const top = r.top[0];
      const ok = top !== undefined && (cfg.expectedTop1 === '' || String(top.index) === cfg.expectedTop1);
      const got = top ? `${top.index} (${top.score.toFixed(4)})` : r.status ? `HTTP ${r.status} ${r.error ?? ''}` : r.error;
      summary += `### Sample image\n\n\`${cfg.sampleImage}\` → top-1 ${got}${cfg.expectedTop1 ? `, expected ${cfg.expectedTop1}` : ''}: ${ok ? 'pass' : '**fail**'}\n\n`;
      if (!ok) failures.push(`the sample image gave top-1 ${got}, expected ${cfg.expectedTop1}`);
    }

    // latency and throughput
    if (cfg.requests > 0 && goldenBody) {
      // over HTTP, keep-alive connections, one per client; over gRPC, the clients' calls share one HTTP/2 connection
      const agent = new http.Agent({ keepAlive: true, maxSockets: cfg.concurrency });
      const m = await measureLatency(grpcClient ?? httpTransport(base, agent), cfg.modelName, goldenBody, cfg.requests, cfg.concurrency, auth);
      agent.destroy();
      const lat = m.sorted;
      const errors = m.errors;
      const wall = m.wallS;
      const p = { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99) };
      outputs['latency-p50-ms'] = p.p50.toFixed(2);
      outputs['latency-p95-ms'] = p.p95.toFixed(2);
      outputs['latency-p99-ms'] = p.p99.toFixed(2);
      outputs['throughput-rps'] = (cfg.requests / wall).toFixed(1);
      if (errors) failures.push(`${errors} of ${cfg.requests} latency requests failed`);
      summary += `### Latency (${cfg.requests} requests over ${grpcClient ? 'gRPC' : 'HTTP'}, concurrency ${cfg.concurrency}, batch 1)\n\np50 ${outputs['latency-p50-ms']} ms, p95 ${outputs['latency-p95-ms']} ms, p99 ${outputs['latency-p99-ms']} ms; ${outputs['throughput-rps']} requests/s\n\n${latencyChart(p)}\n\n`;
      log.info(
        `latency p50 ${outputs['latency-p50-ms']} ms, p95 ${outputs['latency-p95-ms']} ms, p99 ${outputs['latency-p99-ms']} ms; ${outputs['throughput-rps']} req/s`,
      );
    }
  } catch (e) {
    failures.push(e instanceof ModelshipError ? e.message : `unexpected error: ${(e as Error).message}`);
  } finally {
    if (started && failures.length) {
      // docker logs replays the container's stdout and stderr on its own stdout and stderr
      const l = await docker(plan.logs);
      logTail = (l.stdout + l.stderr).trim();
    }
    grpcClient?.close();
    await cleanup();
    session.close();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (failures.length) {
    const tail = logTail ? `\n\ncontainer log (last lines):\n${logTail.split('\n').slice(-30).join('\n')}` : '';
    summary += `### Failed\n\n${failures.map((f) => `- ${f}`).join('\n')}\n${logTail ? `\n<details><summary>container log</summary>\n\n\`\`\`\n${logTail}\n\`\`\`\n</details>\n` : ''}`;
    outputs.smoke = 'fail';
    return { outputs, summary, ok: false, failure: `smoke failed:\n- ${failures.join('\n- ')}${tail}` };
  }
  outputs.smoke = 'pass';
  return { outputs, summary, ok: true };
}

/** The model's metadata over HTTP (GET /v2/models/<name>), with modelship's parameters (its provider, its detection outputs). */
async function httpModelMeta(t: Transport, modelName: string, auth: Record<string, string>): Promise<ModelMeta> {
  const mr = await t(`/v2/models/${modelName}`, { headers: auth });
  const meta = JSON.parse(mr.body.toString() || '{}') as Partial<ModelMeta> & { error?: string };
  if (mr.status !== 200 || !meta.inputs)
    throw new ModelshipError('io', `model metadata of "${modelName}" unavailable (HTTP ${mr.status}): ${meta.error ?? mr.body.toString().slice(0, 200)}`);
  return meta as ModelMeta;
}

/** The model's metadata over gRPC (ModelMetadata): its inputs and outputs. */
async function grpcModelMeta(c: KServeGrpcClient, modelName: string): Promise<ModelMeta> {
  try {
    return await c.modelMetadata(modelName);
  } catch (e) {
    throw new ModelshipError('io', `model metadata of "${modelName}" unavailable: ${(e as Error).message}`);
  }
}

/**
 * The sample image's detections against the expected ones: the same number, each expected detection matched one to
 * one by a found one of the same label with IoU ≥ 0.5. `found` undefined: the model has no detection output. Returns
 * the summary's section and the failure, if any.
 */
export function sampleDetections(
  image: string,
  expected: ExpectedDetection[] | undefined,
  threshold: number,
  found: { status: number; route: string; detections: ImageDetection[]; width?: number; height?: number; error?: string } | undefined,
  modelName: string,
): { summary: string; failure?: string } {
  const head = `### Sample image (detections)\n\n`;
  if (!found) {
    const failure = `expected-detections is given, but model "${modelName}" has no detection output (a [1, 1, -1, 7] table of SSD's DetectionOutput): it is not a detection model`;
    return { summary: `${head}\`${image}\`: **fail**: ${failure}\n\n`, failure };
  }
  if (found.error !== undefined) {
    const failure = `the sample image through ${found.route} failed${found.status ? ` (HTTP ${found.status})` : ''}: ${found.error}`;
    return { summary: `${head}\`${image}\`: **fail**: ${failure}\n\n`, failure };
  }
  const got = found.detections;
  const det = (d: { label: number; box: readonly number[]; score?: number }) =>
    `label ${d.label} ${formatBox(d.box)}${d.score !== undefined ? ` score ${d.score.toFixed(3)}` : ''}`;
  const where = `\`${image}\`${found.width ? ` (${found.width}×${found.height})` : ''} through ${found.route}, score ≥ ${threshold}`;
  if (!expected) {
    const list = got.map((d) => `- ${det(d)}`).join('\n');
    return { summary: `${head}${where}: ${got.length} detection${got.length === 1 ? '' : 's'} (none expected: not checked)\n\n${list}${list ? '\n\n' : ''}` };
  }
  const m = matchDetections(expected, got);
  const rows = expected.map((e, i) => {
    const g = m.matches[i].got;
    return `| ${det(e)} | ${g >= 0 ? det(got[g]) : '—'} | ${g >= 0 ? m.matches[i].iou.toFixed(3) : ''} | ${g >= 0 ? 'pass' : '**fail**'} |`;
  });
  for (const j of m.extra) rows.push(`| — | ${det(got[j])} | | **fail** |`);
  const table = ['| expected | found | IoU | result |', '|---|---|---:|:---:|', ...rows].join('\n');
  const summary = `${head}${where}: ${got.length} detection${got.length === 1 ? '' : 's'}, expected ${expected.length}: ${m.pass ? 'pass' : '**fail**'}\n\n${table}\n\n`;
  if (m.pass) return { summary };
  const problems: string[] = [];
  expected.forEach((e, i) => {
    if (m.matches[i].got >= 0) return;
    // the nearest found box of any label, to say how far off it is
    let best = -1;
    let bestIou = 0;
    got.forEach((g, j) => {
      const v = iou(e.box, g.box);
      if (v > bestIou) [best, bestIou] = [j, v];
    });
    problems.push(`expected ${det(e)} has no match (same label, IoU ≥ 0.5)${best >= 0 ? `; nearest found: ${det(got[best])}, IoU ${bestIou.toFixed(3)}` : ''}`);
  });
  for (const j of m.extra) problems.push(`found ${det(got[j])} was not expected`);
  return {
    summary,
    failure: `the sample image gave ${got.length} detection${got.length === 1 ? '' : 's'} (score ≥ ${threshold}), expected ${expected.length}: ${problems.join('; ')}`,
  };
}

/**
 * The action's post step: remove smoke containers this job left behind (a cancelled or killed run cannot clean
 * up after itself). Only containers labelled with this job's owner id are touched.
 */
export async function cleanupSmokeContainers(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const owner = smokeOwner(env);
  const ps = await runProcess('docker', [
    'ps',
    '-a',
    '--filter',
    'label=dev.modelship.smoke=true',
    '--filter',
    `label=dev.modelship.owner=${owner}`,
    '--format',
    '{{.Names}}',
  ]);
  if (ps.code !== 0) return []; // no docker on this runner: nothing to clean
  const names = ps.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    await runProcess('docker', ['rm', '-f', '-v', n]);
    log.info(`removed smoke container ${n} left by this job`);
  }
  return names;
}
