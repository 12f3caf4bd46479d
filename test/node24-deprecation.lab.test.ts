import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';
import { LAB, requireLab } from './helpers/lab';
import { requireCluster, KUBECONFIG, LAB_PODS_PATCH, dropNamespaces, kubectl } from './helpers/kube';
import { startAction, parseOutputFile, NODE24, RunnerResult } from './helpers/runner';
import { labDescribe } from './helpers/needs';

// Issue 20, point 10: on Node 24 (action.yml's `using: node24`) no stage prints a deprecation warning. They came from
// the Kubernetes client's HTTP stack: node-fetch@2 calls url.parse() on every request (DEP0169) and loads
// whatwg-url@5 → tr46@0.0.3, which require Node's builtin punycode (DEP0040); package.json's overrides give the
// client node-fetch@3 (WHATWG URL only, no whatwg-url). Every stage runs here under Node 24 with
// --throw-deprecation (a deprecation would end the process) and its output must not name one: the whole main job
// (stage pipeline: convert, compile, image, smoke, rollout) and the PR preview (stage preview, a PR comment to a
// stand-in GitHub API, then stage cleanup), each through the action as the runner starts it, with its post step;
// and the CLI's rollout against an API server that is not there (the client loaded, a request made, failed fast).
// The bundle: dist/index.js, or the one MODELSHIP_TEST_BUNDLE names (a scratch build of the working tree).
jest.setTimeout(600_000);

const BUNDLE = process.env.MODELSHIP_TEST_BUNDLE ?? path.join(REPO, 'dist/index.js');
const LENET = path.join(FIXTURES, 'lenet');
const work = tmpDir('modelship-node24-');
const repo = `${LAB.registry}/modelship-test/lenet-node24-${process.pid}`;
const nsPrefix = `n24${process.pid}`;
const patch = path.join(work, 'realnode.yaml');
const DEPRECATION = /DeprecationWarning|\[DEP\d+\]|deprecated/i;
/** Node 24 as the runner starts an action, deprecations fatal (worker threads and children inherit NODE_OPTIONS) */
const NODE24_ENV = { NODE_OPTIONS: '--throw-deprecation' };

fs.writeFileSync(patch, LAB_PODS_PATCH);

/** A stand-in for GitHub's issue-comments API (list, create, update), recording what it was asked. */
function githubFake(): Promise<{ url: string; requests: string[]; close: () => void }> {
  const comments: { id: number; body: string; html_url: string }[] = [];
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      const send = (status: number, o: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(o));
      };
      const u = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && /\/issues\/\d+\/comments$/.test(u.pathname)) return send(200, comments);
      if (req.method === 'POST' && /\/issues\/\d+\/comments$/.test(u.pathname)) {
        const c = {
          id: comments.length + 1,
          body: JSON.parse(body).body,
          html_url: `https://github.example/octo/models/pull/7#issuecomment-${comments.length + 1}`,
        };
        comments.push(c);
        return send(201, c);
      }
      const m = /\/issues\/comments\/(\d+)$/.exec(u.pathname);
      if (req.method === 'PATCH' && m) {
        const c = comments.find((x) => x.id === Number(m[1]))!;
        c.body = JSON.parse(body).body;
        return send(200, c);
      }
      send(404, { message: 'Not Found' });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests, close: () => server.close() }),
    ),
  );
}

/**
 * The action's step as the runner runs it on Node 24, then its post step with the state it saved (started, not run
 * synchronously: the stand-in GitHub API answers from this process).
 */
async function actionAndPost(inputs: Record<string, string>, env: Record<string, string>): Promise<{ main: RunnerResult; post: RunnerResult }> {
  const main = await startAction(inputs, { node: NODE24, main: BUNDLE, env: { ...NODE24_ENV, ...env } }).done;
  const state = parseOutputFile(fs.readFileSync(main.stateFile, 'utf8'));
  const post = await startAction(
    {},
    { node: NODE24, main: BUNDLE, env: { ...NODE24_ENV, ...env, ...Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v])) } },
  ).done;
  return { main, post };
}

function noDeprecation(what: string, r: { stdout: string; stderr: string }): void {
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => DEPRECATION.test(l));
  expect(`${what}: ${lines.join('\n')}`).toBe(`${what}: `);
}

function expectExit(what: string, r: { code: number | null; stdout: string; stderr: string }, code: number): void {
  if (r.code !== code) throw new Error(`${what}: exit ${r.code}, expected ${code}; log:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
}

labDescribe(['node24'])('the CLI on Node 24', () => {
  test('the CLI: rollout loads the Kubernetes client and makes a request (to an API server that is not there): no deprecation', () => {
    const kc = path.join(work, 'closed.kubeconfig');
    fs.writeFileSync(
      kc,
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
    );
    for (const extra of [[], ['--dry-run']]) {
      const r = spawnSync(
        NODE24,
        [
          '--throw-deprecation',
          BUNDLE,
          'rollout',
          '--image',
          `${repo}@sha256:${'a'.repeat(64)}`,
          '--model-name',
          'lenet',
          '--app',
          'lenet',
          '--namespace',
          'nowhere',
          '--kubeconfig',
          kc,
          ...extra,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expectExit('rollout', { code: r.status, stdout: r.stdout, stderr: r.stderr }, 1);
      expect(r.stderr).toContain('cannot reach the API server https://127.0.0.1:1');
      noDeprecation(`rollout ${extra.join(' ')}`, r);
    }
  });
});

labDescribe(['docker', 'registry', 'cluster', 'node24'])('on the lab, through the action', () => {
  beforeAll(() => {
    requireLab();
    requireCluster();
  });
  afterAll(() => dropNamespaces(nsPrefix));

  let image = '';

  test('stage pipeline (convert, compile, image, smoke, rollout) and its post step: no deprecation', async () => {
    const ns = `${nsPrefix}-main`;
    const { main, post } = await actionAndPost(
      {
        stage: 'pipeline',
        prototxt: path.join(LENET, 'deploy.prototxt'),
        caffemodel: path.join(LENET, 'weights.caffemodel'),
        reference: LENET,
        out: path.join(work, 'lenet.onnx'),
        image: repo,
        'model-name': 'lenet',
        'base-image': LAB.baseImage,
        revision: 'b'.repeat(40),
        'compose-file': path.join(work, 'compose.yml'),
        app: 'lenet',
        namespace: ns,
        patch,
        cpu: '50m',
        memory: '256Mi',
        'bake-time': '1',
        kubeconfig: KUBECONFIG,
      },
      { GITHUB_RUN_ID: '2401', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'deploy' },
    );
    expectExit('pipeline', main, 0);
    expect(main.outputs.decision).toBe('promoted');
    image = main.outputs.image;
    noDeprecation('pipeline', main);
    expectExit('post', post, 0);
    noDeprecation('pipeline post', post);
  });

  test('stage preview (with its PR comment) and its post step, then stage cleanup: no deprecation', async () => {
    expect(image).toMatch(/@sha256:/);
    const gh = await githubFake();
    try {
      const app = `${nsPrefix}-pv`;
      const env = { GITHUB_RUN_ID: '2402', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: 'preview', GITHUB_API_URL: gh.url, GITHUB_REPOSITORY: 'octo/models' };
      const common = { app, 'pr-number': '7', 'github-token': 'ghs_fake', kubeconfig: KUBECONFIG };
      const { main, post } = await actionAndPost(
        { stage: 'preview', image, 'model-name': 'lenet', reference: LENET, patch, cpu: '50m', memory: '256Mi', 'bake-time': '1', ...common },
        env,
      );
      expectExit('preview', main, 0);
      expect(main.outputs.decision).toBe('promoted');
      expect(main.outputs['comment-id']).toBe('1');
      noDeprecation('preview', main);
      expectExit('preview post', post, 0);
      noDeprecation('preview post', post);
      const cleanup = await actionAndPost({ stage: 'cleanup', image: repo, ...common }, env);
      expectExit('cleanup', cleanup.main, 0);
      expect(cleanup.main.outputs.removed).toContain(`namespace ${app}-pr-7`);
      noDeprecation('cleanup', cleanup.main);
      noDeprecation('cleanup post', cleanup.post);
      expect(gh.requests).toContainEqual(expect.stringMatching(/^POST \/repos\/octo\/models\/issues\/7\/comments/));
      expect(gh.requests).toContainEqual(expect.stringMatching(/^PATCH \/repos\/octo\/models\/issues\/comments\/1/));
    } finally {
      gh.close();
      try {
        kubectl(['delete', 'namespace', `${nsPrefix}-pv-pr-7`, '--wait=false']);
      } catch {
        /* removed by cleanup */
      }
    }
  });
});
