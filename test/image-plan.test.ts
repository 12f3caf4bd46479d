import * as yaml from 'js-yaml';
import { computeTags, sanitizeTag } from '../src/image/tags';
import { renderDockerfile, renderCompose, composeHealthcheck } from '../src/image/dockerfile';
import * as http from 'http';
import type { AddressInfo } from 'net';
import { runProcess } from '../src/util/proc';
import { cacheFlags, contextLock, pruneContexts, IMAGE_ORT_DIR } from '../src/image';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseImageRef } from '../src/shared/registry';
import { planSmoke, percentile } from '../src/smoke';
import type { SmokeConfig } from '../src/smoke/inputs';
import { runAction } from './helpers/runner';

const IMG = 'ghcr.io/acme/googlenet';
const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('image tags follow docker/metadata-action', () => {
  test.each([
    ['branch push', { ref: 'refs/heads/feature/fast-conv', eventName: 'push' }, ['feature-fast-conv', 'sha-0123456']],
    ['default branch gets latest', { ref: 'refs/heads/main', eventName: 'push', defaultBranch: 'main' }, ['main', 'latest', 'sha-0123456']],
    ['semver tag', { ref: 'refs/tags/v1.2.3', eventName: 'push' }, ['1.2.3', '1.2', '1', 'latest', 'sha-0123456']],
    ['pre-release semver: no floating tags', { ref: 'refs/tags/v2.0.0-rc.1', eventName: 'push' }, ['2.0.0-rc.1', 'sha-0123456']],
    ['major 0 gets no major tag', { ref: 'refs/tags/v0.4.1', eventName: 'push' }, ['0.4.1', '0.4', 'latest', 'sha-0123456']],
    ['non-semver tag', { ref: 'refs/tags/release-7', eventName: 'push' }, ['release-7', 'sha-0123456']],
    ['pull request', { ref: 'refs/pull/42/merge', eventName: 'pull_request', prNumber: 42 }, ['pr-42', 'sha-0123456']],
    ['schedule', { ref: 'refs/heads/main', eventName: 'schedule' }, ['nightly', 'main', 'sha-0123456']],
  ])('%s', (_n, ctx, tags) => {
    expect(computeTags(IMG, { sha: SHA, ...ctx })).toEqual(tags.map((t) => `${IMG}:${t}`));
  });

  test('tag charset', () => {
    expect(sanitizeTag('-feat/Ünicode branch')).toBe('feat--nicode-branch');
  });
});

describe('the generated Dockerfile and compose file', () => {
  const df = renderDockerfile({
    baseImage: 'local/debian:bookworm',
    modelFile: 'model.onnx',
    modelName: 'googlenet',
    port: 8000,
    uid: 10001,
    labels: { 'org.opencontainers.image.revision': SHA },
    env: {},
    providers: false,
    ortDir: IMAGE_ORT_DIR,
  });
  const lines = df.split('\n');
  test('EXPOSE: KServe v2 over HTTP (8000) and gRPC (8001), metrics (8002)', () => {
    expect(lines).toContain('EXPOSE 8000 8001 8002');
  });

  const layers = (d: string) => d.split('\n').filter((l) => /^(COPY|ADD|RUN) /.test(l));

  test('no syntax line or heredoc; the model COPY is the last layer instruction; non-root', () => {
    expect(df).not.toMatch(/^# ?syntax=/m);
    expect(df).not.toMatch(/<</);
    const layerLines = lines.map((l, i) => [l, i] as const).filter(([l]) => /^(COPY|ADD|RUN) /.test(l));
    expect(layerLines[layerLines.length - 1][0]).toBe('COPY model/ /models/');
    expect(lines).toContain('USER 10001:10001');
    expect(lines).toContain(`LABEL org.opencontainers.image.revision="${SHA}"`);
    expect(df).toMatch(/ENTRYPOINT \["\/opt\/modelship\/node\/bin\/node", "\/opt\/modelship\/dist\/index.js", "serve"\]/);
    expect(layers(df)).toEqual(['COPY node/ /opt/modelship/node/', 'COPY dist/ /opt/modelship/dist/', 'COPY model/ /models/']);
  });

  test('gpu: the CUDA provider layer sits next to libonnxruntime.so.1, before the model layer; strict CUDA by default', () => {
    const gpu = renderDockerfile({
      baseImage: 'b',
      modelFile: 'model.onnx',
      modelName: 'googlenet',
      port: 8000,
      uid: 10001,
      labels: {},
      env: { MODELSHIP_PROVIDER: 'cuda' },
      providers: true,
      ortDir: IMAGE_ORT_DIR,
    });
    expect(layers(gpu)).toEqual([
      'COPY node/ /opt/modelship/node/',
      'COPY dist/ /opt/modelship/dist/',
      'COPY providers/ /opt/modelship/dist/bin/napi-v6/linux/x64/',
      'COPY model/ /models/',
    ]);
    expect(gpu).toMatch(/^ENV MODELSHIP_PROVIDER="cuda"$/m);
  });

  test('compose: the image by digest, a GPU reservation when asked, secrets only by reference', () => {
    const c = yaml.load(
      renderCompose({
        service: 'googlenet',
        image: `${IMG}@sha256:${'a'.repeat(64)}`,
        runtime: 'modelship',
        port: 8000,
        hostPort: 8000,
        gpu: true,
        env: { MODELSHIP_PROVIDER: 'cuda' },
        secretsEnv: ['MODELSHIP_API_KEY'],
      }),
    ) as any;
    const svc = c.services.googlenet;
    expect(svc.image).toBe(`${IMG}@sha256:${'a'.repeat(64)}`);
    expect(svc.deploy.resources.reservations.devices).toEqual([{ driver: 'nvidia', count: 'all', capabilities: ['gpu'] }]);
    expect(svc.environment).toEqual({ MODELSHIP_PROVIDER: 'cuda', MODELSHIP_API_KEY: '${MODELSHIP_API_KEY}' });
    // KServe v2 over HTTP and gRPC, and the metrics port, each movable at `up` time
    expect(svc.ports).toEqual([
      '127.0.0.1:${MODELSHIP_PORT:-8000}:8000',
      '127.0.0.1:${MODELSHIP_GRPC_PORT:-8001}:8001',
      '127.0.0.1:${MODELSHIP_METRICS_PORT:-8002}:8002',
    ]);
    expect(svc.healthcheck).toMatchObject({
      test: ['CMD', '/opt/modelship/node/bin/node', '-e', expect.stringContaining('/v2/health/ready')],
      start_period: '120s',
    });
  });

  // the healthcheck commands as the container runs them (the image's Node.js here is this one; python3 is the host's),
  // against a server that is ready, one that is not, and none at all: only the first is healthy
  test.each(['modelship', 'triton'] as const)('compose healthcheck (%s): exit 0 only when /v2/health/ready answers 200', async (runtime) => {
    let status = 200;
    const server = http.createServer((req, res) => {
      res.statusCode = req.url === '/v2/health/ready' ? status : 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const check = async (p: number) => {
      const [, cmd, ...args] = composeHealthcheck(runtime, p);
      const r = await runProcess(cmd === '/opt/modelship/node/bin/node' ? process.execPath : cmd, args);
      return r.code;
    };
    try {
      expect(await check(port)).toBe(0);
      status = 503;
      expect(await check(port)).not.toBe(0);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await check(port)).not.toBe(0);
    // nothing a compose file would interpolate
    expect(composeHealthcheck(runtime, 8000).join(' ')).not.toContain('$');
  });

  test('cache: inline on the docker driver, gha on GitHub, registry elsewhere', () => {
    expect(cacheFlags('docker', IMG, {}, 'auto')).toEqual(['--cache-from', `type=registry,ref=${IMG}:buildcache`, '--cache-to', 'type=inline']);
    expect(cacheFlags('docker-container', IMG, { ACTIONS_CACHE_URL: 'u', ACTIONS_RUNTIME_TOKEN: 't' }, 'auto')).toEqual([
      '--cache-from',
      'type=gha',
      '--cache-to',
      'type=gha,mode=max',
    ]);
    expect(cacheFlags('docker-container', IMG, {}, 'auto')).toEqual([
      '--cache-from',
      `type=registry,ref=${IMG}:buildcache`,
      '--cache-to',
      `type=registry,ref=${IMG}:buildcache,mode=max`,
    ]);
    expect(cacheFlags('docker', IMG, {}, 'off')).toEqual([]);
  });

  test('build contexts of other repositories are pruned: the most recent and any used within the hour stay', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-ctx-'));
    const now = Date.now();
    const mk = (n: string, ageH: number | undefined) => {
      fs.mkdirSync(path.join(root, n, 'runtime'), { recursive: true });
      if (ageH === undefined) return;
      fs.writeFileSync(path.join(root, n, '.used'), '');
      fs.utimesSync(path.join(root, n, '.used'), (now - ageH * 3600_000) / 1000, (now - ageH * 3600_000) / 1000);
    };
    mk('current', 100);
    for (let i = 0; i < 8; i++) mk(`old${i}`, 10 + i); // old0 most recent … old7 oldest
    mk('fresh1', 0.1);
    mk('fresh2', 0.5);
    mk('unmarked', undefined); // from an older version: no .used marker, made long ago
    const longAgo = (now - 20 * 3600_000) / 1000;
    fs.utimesSync(path.join(root, 'unmarked'), longAgo, longAgo);
    pruneContexts(root, path.join(root, 'current'), now);
    expect(fs.readdirSync(root).sort()).toEqual(['current', 'fresh1', 'fresh2', 'old0', 'old1', 'old2'].sort());
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a context another build is making (no .used yet) or holds (its lock) is never pruned', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-ctx-'));
    const now = Date.now();
    const old = (d: string) => {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, '.used'), '');
      fs.utimesSync(path.join(d, '.used'), (now - 30 * 3600_000) / 1000, (now - 30 * 3600_000) / 1000);
    };
    for (let i = 0; i < 8; i++) old(path.join(root, `old${i}`));
    fs.mkdirSync(path.join(root, 'making')); // mkdir'd by another build this instant
    const unlock = await contextLock(path.join(root, 'old7'));
    pruneContexts(root, path.join(root, 'current'), now);
    // the five most recent stay anyway (making, old0-old3); of old4-old7 the held one stays
    expect(fs.readdirSync(root).sort()).toEqual(['making', 'old0', 'old1', 'old2', 'old3', 'old7', 'old7.lock'].sort());
    await unlock();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('two builds of one repository take turns on its context (contextLock)', async () => {
    const ctx = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-ctx-')), 'repo');
    const events: string[] = [];
    const waits: string[] = [];
    const build = async (n: string) => {
      const unlock = await contextLock(ctx, { info: (l: string) => waits.push(`${n}: ${l}`) } as never);
      events.push(`${n} in`);
      await new Promise((r) => setTimeout(r, 300));
      events.push(`${n} out`);
      await unlock();
    };
    await Promise.all([build('a'), build('b')]);
    // one after the other, whichever took the lock first (on a loaded machine b's attempt can land first), the other
    // told that it waits
    const [first, second] = events[0] === 'a in' ? ['a', 'b'] : ['b', 'a'];
    expect(events).toEqual([`${first} in`, `${first} out`, `${second} in`, `${second} out`]);
    expect(waits).toEqual([
      expect.stringMatching(new RegExp(`^${second}: another build of this image repository on this host holds its build context .*; waiting for it$`)),
    ]);
    expect(fs.existsSync(`${ctx}.lock`)).toBe(false);
    fs.rmSync(path.dirname(ctx), { recursive: true, force: true });
  });

  test('image references', () => {
    expect(parseImageRef('127.0.0.1:5000/modelship/googlenet@sha256:' + 'b'.repeat(64))).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'modelship/googlenet',
      tag: undefined,
      digest: 'sha256:' + 'b'.repeat(64),
    });
    expect(parseImageRef('acme/googlenet:v1')).toMatchObject({ registry: 'docker.io', repository: 'acme/googlenet', tag: 'v1' });
    expect(() => parseImageRef('Not/Valid')).toThrow(/not a valid image reference/);
  });
});

describe('smoke plan', () => {
  test('secrets reach the container by name only; GPU runs add --gpus all and nvidia-smi', () => {
    const cfg: SmokeConfig = {
      image: `${IMG}@sha256:${'c'.repeat(64)}`,
      runtime: 'modelship',
      protocol: 'http',
      modelName: 'm',
      tolerance: 1e-5,
      gpu: true,
      apiKey: 'topsecret',
      modelKey: 'k'.repeat(64),
      sampleImage: '',
      expectedTop1: '',
      requests: 1,
      concurrency: 1,
      readyTimeoutS: 5,
      registryUsername: '',
      registryPassword: '',
    };
    const p = planSmoke(cfg, 'modelship-smoke-x', 'run-7');
    expect(p.run).toEqual([
      'run',
      '-d',
      '--name',
      'modelship-smoke-x',
      '--label',
      'dev.modelship.smoke=true',
      '--label',
      'dev.modelship.owner=run-7',
      '-p',
      '127.0.0.1::8000',
      '--gpus',
      'all',
      '-e',
      'MODELSHIP_API_KEY',
      '-e',
      'MODELSHIP_MODEL_KEY',
      '-e',
      'MODELSHIP_PROVIDER=cuda',
      `${IMG}@sha256:${'c'.repeat(64)}`,
    ]);
    expect(p.run.join(' ')).not.toContain('topsecret');
    expect(p.gpuQuery).toEqual(['exec', 'modelship-smoke-x', 'nvidia-smi', '--query-gpu=name,driver_version,compute_cap', '--format=csv,noheader']);
    expect(p.remove).toEqual(['rm', '-f', '-v', 'modelship-smoke-x']);
    // over gRPC its port is published beside HTTP's (readiness and the model's placement stay on HTTP)
    const g = planSmoke({ ...cfg, protocol: 'grpc' }, 'modelship-smoke-x', 'run-7');
    expect(g.run.slice(8, 12)).toEqual(['-p', '127.0.0.1::8000', '-p', '127.0.0.1::8001']);
  });

  test('percentiles (nearest rank)', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(xs, 50), percentile(xs, 95), percentile(xs, 99)]).toEqual([50, 95, 99]);
  });
});

describe('secrets are masked by the action', () => {
  test('registry-password, model-key and api-key are registered as secrets before any work', () => {
    const r = runAction({ stage: 'image', image: 'Bad Image', 'registry-password': 'pa55w0rd-xyz', 'model-key': 'ab'.repeat(32), 'api-key': 'api-k3y' });
    expect(r.code).toBe(1);
    for (const secret of ['pa55w0rd-xyz', 'ab'.repeat(32), 'api-k3y']) {
      expect(r.stdout).toContain(`::add-mask::${secret}`);
      expect(
        r.stdout
          .split('\n')
          .filter((l) => !l.startsWith('::add-mask::'))
          .join('\n'),
      ).not.toContain(secret);
    }
  });
});
