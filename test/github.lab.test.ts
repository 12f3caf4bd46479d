import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';
import { runCli } from './helpers/cli';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';
import { LAB, requireLab } from './helpers/lab';
import { requireCluster, kubectl, kubectlJson, exists, pods, waitFor, KUBECONFIG, RESTRICTED, privilegedPodRefusal, CPU_BURST_PATCH } from './helpers/kube';
import { startAction, RunnerResult } from './helpers/runner';
import { OUTPUTS, STAGE_INCLUDES } from '../src/config';
import { labDescribe } from './helpers/needs';

// The GitHub side end to end, through the bundled action under the runner's contract, on the lab (registry and
// cluster): the pipeline stage from a prototxt to a promoted rollout, and PR previews with a real pull_request
// payload, the GitHub API being a local HTTP server that records what @actions/github sends.
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24']);

const LENET = path.join(FIXTURES, 'lenet');
const work = tmpDir('modelship-github-');
const repo = `${LAB.registry}/modelship-test/lenet-gh-${process.pid}`;
/** examples/lab-realnode.patch.yaml (the real node), after the CPU burst (the pods start in seconds, not at 50m's pace) */
const patch = path.join(work, 'lab-realnode.patch.yaml');
fs.writeFileSync(patch, `${CPU_BURST_PATCH}${fs.readFileSync(path.join(REPO, 'examples/lab-realnode.patch.yaml'), 'utf8')}`);
const owned: string[] = [];

beforeAll(() => {
  requireLab();
  requireCluster();
});

afterAll(() => {
  for (const ns of owned) {
    try {
      kubectl(['delete', 'namespace', ns, '--wait=false']);
    } catch {
      /* gone already */
    }
  }
});

function expectOk(r: RunnerResult): void {
  if (r.code !== 0) throw new Error(`action exited ${r.code}:\n${(r.stdout + r.stderr).slice(-4000)}`);
}

describeLab('the pipeline stage through the bundled action', () => {
  test('prototxt → ONNX → compiled → image pushed → smoke → canary promoted; every output set, every summary section', async () => {
    const ns = `gh${process.pid}-pipeline`;
    owned.push(ns);
    const run = startAction(
      {
        stage: 'pipeline',
        prototxt: path.join(LENET, 'deploy.prototxt'),
        caffemodel: path.join(LENET, 'weights.caffemodel'),
        reference: LENET,
        out: path.join(work, 'pipeline/lenet.onnx'),
        image: repo,
        'model-name': 'lenet',
        'base-image': LAB.baseImage,
        'compose-file': path.join(work, 'pipeline/docker-compose.yml'),
        requests: '20',
        namespace: ns,
        replicas: '1',
        'bake-time': '2',
        cpu: '50m',
        memory: '256Mi',
        patch,
        kubeconfig: KUBECONFIG,
      },
      { env: { GITHUB_SHA: 'f'.repeat(40), GITHUB_REF: 'refs/heads/main', GITHUB_REPOSITORY: 'octo/models', GITHUB_SERVER_URL: 'https://github.com' } },
    );
    const r = await run.done;
    expectOk(r);
    const declared = OUTPUTS.filter((o) => STAGE_INCLUDES.pipeline!.some((s) => o.stages.includes(s)));
    const emptyAllowed = new Set(['gpu-info']); // gpu is false
    for (const o of declared) {
      expect([o.name, o.name in r.outputs]).toEqual([o.name, true]);
      if (!emptyAllowed.has(o.name)) expect([o.name, r.outputs[o.name]]).not.toEqual([o.name, '']);
    }
    expect(r.outputs).toMatchObject({ parity: 'pass', 'compile-parity': 'pass', smoke: 'pass', decision: 'promoted' });
    for (const section of [
      '## modelship convert',
      '## modelship compile',
      '## modelship image',
      '## modelship smoke',
      '## modelship rollout: ✅ promoted',
      '### Parity against Caffe',
      '```mermaid\nxychart-beta',
      '### Timeline',
      '```mermaid\ngantt',
    ]) {
      expect(r.summary).toContain(section);
    }
    // long steps are folded into log groups
    expect(r.stdout).toContain('::group::modelship convert');
    expect(r.stdout).toContain('::group::modelship rollout');
    expect(kubectlJson<any>(['-n', ns, 'get', 'deployment', 'lenet']).spec.template.spec.containers[0].image).toBe(r.outputs.image);
  });
});

/** A stand-in for api.github.com: records every request, keeps the issue comments of one repository. */
function fakeGitHub() {
  const requests: { method: string; url: string; auth?: string; body: any }[] = [];
  const comments: { id: number; body: string; html_url: string }[] = [];
  let next = 100;
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      const body = data ? JSON.parse(data) : undefined;
      requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const list = /^\/repos\/octo\/models\/issues\/(\d+)\/comments/.exec(req.url!);
      const one = /^\/repos\/octo\/models\/issues\/comments\/(\d+)$/.exec(req.url!);
      if (list && req.method === 'GET') return send(200, comments);
      if (list && req.method === 'POST') {
        const c = { id: ++next, body: body.body, html_url: `https://github.com/octo/models/pull/${list[1]}#issuecomment-${next}` };
        comments.push(c);
        return send(201, c);
      }
      if (one && req.method === 'PATCH') {
        const c = comments.find((x) => x.id === Number(one[1]));
        if (!c) return send(404, { message: 'Not Found' });
        c.body = body.body;
        return send(200, c);
      }
      send(404, { message: `no route ${req.method} ${req.url}` });
    });
  });
  return { server, requests, comments };
}

describeLab('PR deploy previews', () => {
  test('pull_request opened/synchronize: deploy to <app>-pr-<N>, one comment posted then updated; closed: namespace and pr tag removed', async () => {
    const gh = fakeGitHub();
    await new Promise<void>((r) => gh.server.listen(0, '127.0.0.1', r));
    const api = `http://127.0.0.1:${(gh.server.address() as AddressInfo).port}`;
    try {
      const pr = 4000 + (process.pid % 1000);
      const ns = `lenet-pr-${pr}`;
      owned.push(ns);
      // the PR's image, tagged pr-<N> by the image stage from the PR's merge ref
      const onnx = path.join(work, 'pr/lenet.onnx');
      expect(
        (await runCli(['convert', '--prototxt', path.join(LENET, 'deploy.prototxt'), '--caffemodel', path.join(LENET, 'weights.caffemodel'), '--out', onnx]))
          .code,
      ).toBe(0);
      const img = await runCli([
        'image',
        '--image',
        repo,
        '--model',
        onnx,
        '--model-name',
        'lenet',
        '--base-image',
        LAB.baseImage,
        '--revision',
        'e'.repeat(40),
        '--ref',
        `refs/pull/${pr}/merge`,
        '--compose-file',
        path.join(work, 'pr/c.yml'),
        '--json',
      ]);
      expect(img.code).toBe(0);
      expect(img.json().tags).toContain(`${repo}:pr-${pr}`);
      const image = img.json().image as string;

      // a pull_request event payload as GitHub sends it (the fields the preview reads, and the usual ones around them)
      const event = (action: string) => {
        const f = path.join(work, `event-${action}.json`);
        fs.writeFileSync(
          f,
          JSON.stringify({
            action,
            number: pr,
            pull_request: {
              number: pr,
              state: action === 'closed' ? 'closed' : 'open',
              merged: false,
              title: 'Retrain GoogLeNet',
              head: { ref: 'retrain', sha: 'd'.repeat(40) },
              base: { ref: 'main', sha: 'c'.repeat(40) },
              html_url: `https://github.com/octo/models/pull/${pr}`,
              user: { login: 'octocat' },
            },
            repository: { name: 'models', full_name: 'octo/models', owner: { login: 'octo' } },
            sender: { login: 'octocat' },
          }),
        );
        return {
          GITHUB_EVENT_NAME: 'pull_request',
          GITHUB_EVENT_PATH: f,
          GITHUB_REPOSITORY: 'octo/models',
          GITHUB_API_URL: api,
          GITHUB_SHA: 'd'.repeat(40),
          GITHUB_RUN_ID: '991',
          GITHUB_JOB: 'preview',
        };
      };
      const smokeReport = JSON.stringify({
        parity: 'pass',
        'max-abs-diff': '2.98e-7',
        'latency-p50-ms': '3.10',
        'latency-p95-ms': '4.20',
        'latency-p99-ms': '5.00',
        'throughput-rps': '812.5',
      });
      // drain-delay 0: the test waits for the closed preview's namespace to go, hence for its pods to end
      const preview = (action: string) =>
        startAction(
          {
            stage: 'preview',
            image,
            'model-name': 'lenet',
            reference: LENET,
            replicas: '1',
            'bake-time': '2',
            'drain-delay': '0',
            cpu: '50m',
            memory: '256Mi',
            patch,
            kubeconfig: KUBECONFIG,
            'github-token': 'ghs_test_token_123',
            'smoke-report': smokeReport,
          },
          { env: event(action) },
        ).done;

      const opened = await preview('opened');
      expectOk(opened);
      expect(opened.outputs['preview-namespace']).toBe(ns);
      expect(opened.outputs.decision).toBe('promoted');
      expect(opened.outputs['preview-url']).toMatch(new RegExp(`/api/v1/namespaces/${ns}/services/lenet:http/proxy/v2/models/lenet$`));
      expect(pods(ns, 'lenet', 'stable').every((p) => p.ready && p.image === image)).toBe(true);
      expect(kubectlJson<any>(['get', 'namespace', ns]).metadata.labels['app.kubernetes.io/managed-by']).toBe('modelship');
      // the preview namespace enforces Pod Security restricted: its pods meet it, a privileged pod is refused there
      expect(kubectlJson<any>(['get', 'namespace', ns]).metadata.labels).toMatchObject(RESTRICTED);
      expect(privilegedPodRefusal(ns)).toMatch(/violates PodSecurity "restricted:latest"/);
      // one comment, posted through @actions/github with the token
      const posts = gh.requests.filter((q) => q.method === 'POST');
      expect(posts).toHaveLength(1);
      expect(posts[0].url).toBe(`/repos/octo/models/issues/${pr}/comments`);
      expect(posts[0].auth).toBe('token ghs_test_token_123');
      const body: string = posts[0].body.body;
      expect(body).toContain('<!-- modelship-preview:lenet -->');
      expect(body).toContain(`| preview | ${opened.outputs['preview-url']} |`);
      expect(body).toContain(`| namespace | \`${ns}\` |`);
      expect(body).toContain(`| image | \`${image}\` |`);
      expect(body).toContain('| parity against Caffe | pass (max \\|Δ\\| 2.98e-7) |');
      expect(body).toContain('| smoke latency | p50 3.10 ms, p95 4.20 ms, p99 5.00 ms, 812.5 req/s |');
      expect(body).toMatch(/\| preview golden requests \| p95 [\d.]+ ms \(promoted\) \|/);
      expect(opened.outputs['comment-id']).toBe(String(gh.comments[0].id));
      expect(opened.summary).toContain('### PR preview');
      // the token is masked in the log
      expect(opened.stdout).toContain('::add-mask::ghs_test_token_123');

      // a push to the PR: the same comment is updated, not a second one posted
      const pushed = await preview('synchronize');
      expectOk(pushed);
      expect(gh.requests.filter((q) => q.method === 'POST')).toHaveLength(1);
      const patches = gh.requests.filter((q) => q.method === 'PATCH');
      expect(patches).toHaveLength(1);
      expect(patches[0].url).toBe(`/repos/octo/models/issues/comments/${gh.comments[0].id}`);
      expect(gh.comments).toHaveLength(1);

      // closed: the namespace and the pr-<N> tag go, and the comment says so
      const closed = await startAction(
        { stage: 'cleanup', 'model-name': 'lenet', image: repo, kubeconfig: KUBECONFIG, 'github-token': 'ghs_test_token_123' },
        { env: event('closed') },
      ).done;
      expectOk(closed);
      expect(closed.outputs.removed).toContain(`namespace ${ns}`);
      expect(closed.outputs.removed).toContain(`image ${repo}:pr-${pr}`);
      await waitFor('the preview namespace to be gone', () => !exists('namespace', '', ns), 180_000);
      const tag = await fetch(`http://${LAB.registry}/v2/${repo.slice(LAB.registry.length + 1)}/manifests/pr-${pr}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
      });
      expect(tag.status).toBe(404);
      expect(gh.comments[0].body).toContain(`modelship preview: \`lenet\` for #${pr} removed`);
      expect(closed.outputs['comment-id']).toBe(String(gh.comments[0].id));
    } finally {
      gh.server.close();
    }
  });

  test('a preview outside a pull_request, without pr-number, fails naming the input', async () => {
    const r = await startAction(
      { stage: 'preview', image: `${repo}@sha256:${'0'.repeat(64)}`, 'model-name': 'lenet', kubeconfig: KUBECONFIG, 'github-token': 't' },
      { env: { GITHUB_EVENT_NAME: 'push' } },
    ).done;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/::error title=modelship%3A input error::input "pr-number": not given, and the event \(push\) has no pull_request/);
  });
});
