import * as http from 'http';
import { AddressInfo } from 'net';
import { commentStep, commentMarker, runCleanup, upsertComment } from '../src/preview';
import { CleanupConfig } from '../src/config';
import { Logger } from '../src/stage';
import { ModelshipError } from '../src/util/errors';
import { mockKube } from './helpers/mocks';
import { closedPort } from './helpers/http';

// Issue 20, point 6: the PR comment comes after the work (the preview deployed, the namespace and tags removed), so
// the GitHub API's failure there (unreachable, answering 502) is a warning that names the call and its status, and the
// stage's outputs are still returned. The comment step (src/preview commentStep) with the real octokit against a
// closed port and a stand-in that answers 502; runCleanup through it, its Kubernetes side a recording stub as in
// test/cleanup-ghcr.test.ts (runPreview's rollout needs the lab's cluster: its comment goes through the same step).

// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest.mock factories run before the imports: they can only require
jest.mock('@actions/github', () => require('./helpers/mocks').actionsGithub(), { virtual: true });

// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest.mock factories run before the imports: they can only require
jest.mock('../src/rollout/kube', () => require('./helpers/mocks').kubeModule);

const TOKEN = 'ghs_comment_token_789';
const servers: http.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** A stand-in for api.github.com answering every request with `status`; records the requests. */
async function answering(status: number, message: string) {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message, documentation_url: 'https://docs.github.com/rest' }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

function capture(): Logger & { lines: string[]; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  return { lines, warnings, info: (m) => lines.push(m), warning: (m) => warnings.push(m), group: (_n, fn) => fn() };
}

const post = (env: NodeJS.ProcessEnv) => () => upsertComment(TOKEN, 4, commentMarker('lenet'), 'body', false, env);

describe("the comment step: the GitHub API's failure is a warning naming the call", () => {
  test('unreachable (a closed port): "failed" and the network\'s reason', async () => {
    const port = await closedPort();
    const log = capture();
    const r = await commentStep(log, post({ GITHUB_API_URL: `http://127.0.0.1:${port}`, GITHUB_REPOSITORY: 'octo/models' }));
    expect(r.value).toBeUndefined();
    expect(r.warning).toBe(`PR comment not posted: GitHub API: GET /repos/octo/models/issues/4/comments failed: connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(log.warnings).toEqual([r.warning]);
  });

  test('a gateway answering 502: "answered 502"; a 403 with what the token needs', async () => {
    const bad = await answering(502, 'Server Error');
    const log = capture();
    const r = await commentStep(log, post({ GITHUB_API_URL: bad.url, GITHUB_REPOSITORY: 'octo/models' }));
    expect(r).toEqual({ warning: 'PR comment not posted: GitHub API: GET /repos/octo/models/issues/4/comments answered 502: Server Error' });
    expect(bad.requests).toEqual(['GET /repos/octo/models/issues/4/comments?per_page=100']);
    const denied = await answering(403, 'Resource not accessible by integration');
    const d = await commentStep(capture(), post({ GITHUB_API_URL: denied.url, GITHUB_REPOSITORY: 'octo/models' }));
    expect(d.warning).toBe(
      'PR comment not posted: GitHub API: GET /repos/octo/models/issues/4/comments answered 403: Resource not accessible by integration (the github-token needs pull-requests: write, or issues: write, on the repository)',
    );
  });

  test("modelship's own errors still throw: a bug, an input error", async () => {
    await expect(
      commentStep(capture(), async () => {
        throw new TypeError('x is not a function');
      }),
    ).rejects.toThrow(TypeError);
    await expect(commentStep(capture(), () => upsertComment('', 4, 'm', 'b', false, {}))).rejects.toThrow(ModelshipError);
    expect(await commentStep(capture(), async () => 7)).toEqual({ value: 7 });
  });
});

describe('runCleanup: the comment fails after the namespace went; the outputs are still returned', () => {
  const cfg = (pr: number): CleanupConfig => ({
    app: 'lenet',
    kubeconfig: '',
    prNumber: pr,
    image: '',
    registryUsername: '',
    registryPassword: '',
    githubToken: TOKEN,
    comment: true,
  });

  test.each([
    [
      'the GitHub API answers 502',
      async () => (await answering(502, 'Server Error')).url,
      /^PR comment not posted: GitHub API: GET \/repos\/octo\/models\/issues\/(\d+)\/comments answered 502: Server Error$/,
    ],
    [
      'the GitHub API is unreachable',
      async () => `http://127.0.0.1:${await closedPort()}`,
      /^PR comment not posted: GitHub API: GET \/repos\/octo\/models\/issues\/(\d+)\/comments failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
    ],
  ])('%s', async (_n, api, warning) => {
    const pr = 40 + mockKube.removed.length;
    mockKube.namespaces.add(`lenet-pr-${pr}`);
    const log = capture();
    const r = await runCleanup(cfg(pr), log, { GITHUB_API_URL: await api(), GITHUB_REPOSITORY: 'octo/models' });
    expect(r.ok).toBe(true);
    expect(r.outputs).toEqual({ removed: `namespace lenet-pr-${pr}`, 'preview-namespace': `lenet-pr-${pr}`, 'comment-id': '' });
    expect(mockKube.removed).toContain(`lenet-pr-${pr}`);
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(warning);
    expect(warning.exec(log.warnings[0])![1]).toBe(String(pr));
    expect(r.summary).toContain(`> [!WARNING]\n> ${log.warnings[0]}`);
  });

  test('no GITHUB_REPOSITORY for the comment: an input error before anything is removed', async () => {
    mockKube.namespaces.add('lenet-pr-60');
    const before = mockKube.removed.length;
    await expect(runCleanup(cfg(60), capture(), {})).rejects.toThrow(
      /GITHUB_REPOSITORY \(owner\/repo\) is not set: the PR comment needs the repository \(or set comment: false\)/,
    );
    expect(mockKube.removed).toHaveLength(before);
    expect(mockKube.namespaces.has('lenet-pr-60')).toBe(true);
  });
});
