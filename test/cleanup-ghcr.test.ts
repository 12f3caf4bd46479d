import * as http from 'http';
import { AddressInfo } from 'net';
import { deletePreviewTag, runCleanup, commentMarker } from '../src/preview';
import { CleanupConfig } from '../src/config';
import { Logger } from '../src/stage';
import { mockKube } from './helpers/mocks';

// PR preview cleanup of the pr-<N> tag, without a cluster: on ghcr.io through the GitHub Packages API (a local HTTP
// server stands in for api.github.com and records what @actions/github sends), elsewhere through the registry API
// (a local server that refuses deletes as ghcr.io does; the lab registry's delete: test/cleanup-registry.lab.test.ts).
// The namespace deletion itself is covered on the lab's cluster by test/github.lab.test.ts; here the Kubernetes side
// of runCleanup is a recording stub.

// @actions/github is ESM-only ("exports" has just an "import" condition), which Jest's CommonJS module system cannot
// load: Node's own require (require(esm), Node >= 20.19) loads the real module by its path, as
// test/helpers/tool-cache-bridge.js does for @actions/tool-cache.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest.mock factories run before the imports: they can only require
jest.mock('@actions/github', () => require('./helpers/mocks').actionsGithub(), { virtual: true });

// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest.mock factories run before the imports: they can only require
jest.mock('../src/rollout/kube', () => require('./helpers/mocks').kubeModule);

const TOKEN = 'ghs_cleanup_token_456';
const digest = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

type Version = { id: number; name: string; metadata: { package_type: 'container'; container: { tags: string[] } } };
const version = (id: number, tags: string[]): Version => ({ id, name: digest(id % 10), metadata: { package_type: 'container', container: { tags } } });

/**
 * A stand-in for api.github.com: accounts (GET /users/{name}), container packages of orgs and users (versions listed
 * in pages with Link headers, deleted by id), the issue comments of octo/models; `fail` answers one route with an
 * error as GitHub words it. Records every request with its raw path.
 */
function fakeGitHub(o: {
  accounts: Record<string, 'Organization' | 'User'>;
  packages: Record<string, Version[]>;
  perPage?: number;
  fail?: { method: string; path: RegExp; status: number; message: string };
}) {
  const requests: { method: string; url: string; auth?: string; body?: any }[] = [];
  const comments: { id: number; body: string; html_url: string }[] = [];
  let base = '';
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      const body = data ? JSON.parse(data) : undefined;
      requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(payload === undefined ? '' : JSON.stringify(payload));
      };
      const u = new URL(req.url!, 'http://x');
      if (o.fail && req.method === o.fail.method && o.fail.path.test(u.pathname))
        return send(o.fail.status, {
          message: o.fail.message,
          documentation_url: 'https://docs.github.com/rest/packages/packages',
          status: String(o.fail.status),
        });
      const account = /^\/users\/([^/]+)$/.exec(u.pathname);
      if (account && req.method === 'GET') {
        const type = o.accounts[account[1]];
        return type ? send(200, { login: account[1], id: 1, type }) : send(404, { message: 'Not Found' });
      }
      // /orgs/{org}/... or /users/{username}/..., package_name as sent (encoded)
      const pkg = /^\/(orgs|users)\/([^/]+)\/packages\/container\/([^/]+)\/versions(?:\/(\d+))?$/.exec(u.pathname);
      if (pkg) {
        const [, kind, owner, name, id] = pkg;
        const expected = o.accounts[owner] === 'Organization' ? 'orgs' : 'users';
        const versions = kind === expected ? o.packages[`${owner}/${decodeURIComponent(name)}`] : undefined;
        if (!versions) return send(404, { message: 'Package not found.' });
        if (req.method === 'GET' && !id) {
          const per = Math.min(Number(u.searchParams.get('per_page') ?? 30), o.perPage ?? 100);
          const page = Number(u.searchParams.get('page') ?? 1);
          const last = Math.max(1, Math.ceil(versions.length / per));
          const link: Record<string, string> =
            page < last
              ? { link: `<${base}${u.pathname}?per_page=${per}&page=${page + 1}>; rel="next", <${base}${u.pathname}?per_page=${per}&page=${last}>; rel="last"` }
              : {};
          return send(200, versions.slice((page - 1) * per, page * per), link);
        }
        if (req.method === 'DELETE' && id) {
          const i = versions.findIndex((v) => v.id === Number(id));
          if (i < 0) return send(404, { message: 'Not Found' });
          versions.splice(i, 1);
          return send(204);
        }
      }
      const list = /^\/repos\/octo\/models\/issues\/(\d+)\/comments$/.exec(u.pathname);
      const one = /^\/repos\/octo\/models\/issues\/comments\/(\d+)$/.exec(u.pathname);
      if (list && req.method === 'GET') return send(200, comments);
      if (one && req.method === 'PATCH') {
        const c = comments.find((x) => x.id === Number(one[1]));
        if (!c) return send(404, { message: 'Not Found' });
        c.body = body.body;
        return send(200, c);
      }
      send(404, { message: `no route ${req.method} ${req.url}` });
    });
  });
  const start = async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return base;
  };
  return { server, start, requests, comments, calls: () => requests.map((q) => `${q.method} ${q.url}`) };
}

const servers: http.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

async function withGitHub(o: Parameters<typeof fakeGitHub>[0]) {
  const gh = fakeGitHub(o);
  servers.push(gh.server);
  const api = await gh.start();
  return { gh, env: { GITHUB_API_URL: api, GITHUB_REPOSITORY: 'octo/models' } as NodeJS.ProcessEnv };
}

function capture(): Logger & { lines: string[]; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  return { lines, warnings, info: (m) => lines.push(m), warning: (m) => warnings.push(m), group: (_n, fn) => fn() };
}

describe('ghcr.io: the pr-<N> tag goes through the GitHub Packages API', () => {
  test("an organization's package: the owner is looked up, the versions are listed (every page), the version carrying only the tag is deleted by id", async () => {
    const versions = [version(301, ['main', 'sha-aaaaaaa']), version(302, []), version(303, ['pr-6']), version(304, ['pr-7']), version(305, ['pr-8'])];
    const { gh, env } = await withGitHub({ accounts: { 'octo-org': 'Organization' }, packages: { 'octo-org/models/lenet': versions }, perPage: 2 });
    const r = await deletePreviewTag('ghcr.io/octo-org/models/lenet:pr-7', { githubToken: TOKEN, env });
    expect(r).toEqual({ removed: `image ghcr.io/octo-org/models/lenet:pr-7 (${digest(4)}, package version 304)` });
    // the package name is the path after ghcr.io/<owner>/, its slash encoded
    expect(gh.calls()).toEqual([
      'GET /users/octo-org',
      'GET /orgs/octo-org/packages/container/models%2Flenet/versions?state=active&per_page=100',
      'GET /orgs/octo-org/packages/container/models%2Flenet/versions?per_page=2&page=2',
      'DELETE /orgs/octo-org/packages/container/models%2Flenet/versions/304',
    ]);
    expect(gh.requests.every((q) => q.auth === `token ${TOKEN}`)).toBe(true);
    expect(versions.map((v) => v.id)).toEqual([301, 302, 303, 305]);
  });

  test("a user's package, the registry host in any case: the user endpoints", async () => {
    const versions = [version(411, ['pr-12']), version(412, ['latest'])];
    const { gh, env } = await withGitHub({ accounts: { octocat: 'User' }, packages: { 'octocat/lenet': versions } });
    const r = await deletePreviewTag('GHCR.io/octocat/lenet:pr-12', { githubToken: TOKEN, env });
    expect(r.warning).toBeUndefined();
    expect(r.removed).toBe(`image GHCR.io/octocat/lenet:pr-12 (${digest(1)}, package version 411)`);
    expect(gh.calls()).toEqual([
      'GET /users/octocat',
      'GET /users/octocat/packages/container/lenet/versions?per_page=100',
      'DELETE /users/octocat/packages/container/lenet/versions/411',
    ]);
    expect(versions.map((v) => v.id)).toEqual([412]);
  });

  test('a version that carries other tags too is not deleted (that would delete them): a warning naming them', async () => {
    const versions = [version(521, ['pr-9', 'sha-1234567', 'main'])];
    const { gh, env } = await withGitHub({ accounts: { 'octo-org': 'Organization' }, packages: { 'octo-org/lenet': versions } });
    const r = await deletePreviewTag('ghcr.io/octo-org/lenet:pr-9', { githubToken: TOKEN, env });
    expect(r.removed).toBeUndefined();
    expect(r.warning).toBe(
      `image ghcr.io/octo-org/lenet:pr-9 not deleted: its package version 521 (${digest(1)}) also carries :sha-1234567, :main; deleting the version would delete those tags too, and GitHub has no API to remove one tag from a version`,
    );
    expect(gh.calls().filter((c) => c.startsWith('DELETE'))).toEqual([]);
    expect(versions).toHaveLength(1);
  });

  test('no version carries the tag: nothing to remove, no warning', async () => {
    const { gh, env } = await withGitHub({ accounts: { 'octo-org': 'Organization' }, packages: { 'octo-org/lenet': [version(601, ['main'])] } });
    expect(await deletePreviewTag('ghcr.io/octo-org/lenet:pr-3', { githubToken: TOKEN, env })).toEqual({});
    expect(gh.calls()).toEqual(['GET /users/octo-org', 'GET /orgs/octo-org/packages/container/lenet/versions?state=active&per_page=100']);
  });

  test('the Packages API refuses (403 on the delete, 404 on the list) or there is no token: a warning with the reason', async () => {
    const forbidden = await withGitHub({
      accounts: { 'octo-org': 'Organization' },
      packages: { 'octo-org/lenet': [version(701, ['pr-5'])] },
      fail: { method: 'DELETE', path: /\/versions\/\d+$/, status: 403, message: 'Permission denied' },
    });
    const r = await deletePreviewTag('ghcr.io/octo-org/lenet:pr-5', { githubToken: TOKEN, env: forbidden.env });
    expect(r.removed).toBeUndefined();
    expect(r.warning).toMatch(
      /^image ghcr\.io\/octo-org\/lenet:pr-5 not deleted: GitHub Packages API: DELETE \/orgs\/octo-org\/packages\/container\/lenet\/versions\/701 answered 403: Permission denied \(the github-token needs packages: write and admin access to the package/,
    );
    const missing = await withGitHub({ accounts: { octocat: 'User' }, packages: {} });
    expect((await deletePreviewTag('ghcr.io/octocat/lenet:pr-5', { githubToken: TOKEN, env: missing.env })).warning).toBe(
      'image ghcr.io/octocat/lenet:pr-5 not deleted: GitHub Packages API: GET /users/octocat/packages/container/lenet/versions answered 404: Package not found. (no such package, or the github-token cannot see it)',
    );
    expect((await deletePreviewTag('ghcr.io/octocat/lenet:pr-5', { githubToken: '', env: missing.env })).warning).toBe(
      'image ghcr.io/octocat/lenet:pr-5 not deleted: ghcr.io tags are deleted through the GitHub Packages API, which needs input "github-token"',
    );
    expect(missing.gh.requests).toHaveLength(2); // none without a token
  });
});

/** A registry that refuses deletes, as ghcr.io does on its registry API (or one without deletes enabled). */
async function refusingRegistry(status = 405, errors = [{ code: 'UNSUPPORTED', message: 'The operation is unsupported.' }]) {
  const requests: string[] = [];
  let asked = '';
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.method === 'HEAD' && /\/manifests\/pr-\d+$/.test(req.url!)) {
      asked = /pr-\d+$/.exec(req.url!)![0];
      res.writeHead(200, { 'docker-content-digest': digest(9), 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      return res.end();
    }
    const list = /^\/v2\/(.+)\/tags\/list(\?|$)/.exec(req.url!);
    if (req.method === 'GET' && list) {
      // one tag, the pr-<N> asked for: a manifest no other tag shares
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ name: list[1], tags: [asked] }));
    }
    res.writeHead(req.method === 'DELETE' ? status : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

describe('other registries: the registry API', () => {
  test('a registry that refuses the delete (405 UNSUPPORTED, 403 DENIED): a warning with its reason', async () => {
    const unsupported = await refusingRegistry();
    const r = await deletePreviewTag(`${unsupported.host}/octo/lenet:pr-4`, { githubToken: TOKEN });
    expect(r.removed).toBeUndefined();
    expect(r.warning).toContain(
      `image ${unsupported.host}/octo/lenet:pr-4 not deleted: registry refused to delete ${unsupported.host}/octo/lenet:pr-4 (${digest(9)}): HTTP 405 {"errors":[{"code":"UNSUPPORTED"`,
    );
    expect(r.warning).toContain('(the registry does not allow deleting manifests; a distribution registry needs REGISTRY_STORAGE_DELETE_ENABLED=true)');
    // the tags listed first (no other tag shares the manifest), then the manifest by digest
    expect(unsupported.requests).toEqual([
      'HEAD /v2/octo/lenet/manifests/pr-4',
      'GET /v2/octo/lenet/tags/list?n=1000',
      `DELETE /v2/octo/lenet/manifests/${digest(9)}`,
    ]);
    const denied = await refusingRegistry(403, [{ code: 'DENIED', message: 'requested access to the resource is denied' }]);
    const d = await deletePreviewTag(`${denied.host}/octo/lenet:pr-4`, { githubToken: TOKEN, registryAuth: { username: 'u', password: 'p' } });
    expect(d.warning).toMatch(
      /HTTP 403 \{"errors":\[\{"code":"DENIED".*\(the registry credentials, registry-username and registry-password, are missing or may not delete\)$/,
    );
  });
});

describe('runCleanup: a tag that cannot be deleted is a warning; the namespace and the comment are still done', () => {
  const cfg = (image: string, pr: number): CleanupConfig => ({
    app: 'lenet',
    kubeconfig: '',
    prNumber: pr,
    image,
    registryUsername: '',
    registryPassword: '',
    githubToken: TOKEN,
    comment: true,
  });

  test('ghcr.io, the Packages API answers 403: namespace removed, comment marked with the warning, the stage passes', async () => {
    const { gh, env } = await withGitHub({
      accounts: { 'octo-org': 'Organization' },
      packages: { 'octo-org/lenet': [version(801, ['pr-31'])] },
      fail: { method: 'GET', path: /\/versions$/, status: 403, message: 'Resource not accessible by integration' },
    });
    gh.comments.push({ id: 91, body: `${commentMarker('lenet')}\nthe preview`, html_url: 'https://github.com/octo/models/pull/31#issuecomment-91' });
    mockKube.namespaces.add('lenet-pr-31');
    const log = capture();
    const r = await runCleanup(cfg('ghcr.io/octo-org/lenet@sha256:' + 'a'.repeat(64), 31), log, env);
    expect(r.ok).toBe(true);
    expect(mockKube.removed).toContain('lenet-pr-31');
    expect(r.outputs).toEqual({ removed: 'namespace lenet-pr-31', 'preview-namespace': 'lenet-pr-31', 'comment-id': '91' });
    // the versions could not be listed: neither of the preview's tags (pr-<N>, its build's cache ref) was deleted
    const warning =
      'image ghcr.io/octo-org/lenet:pr-31 and :buildcache-pr-31 not deleted: GitHub Packages API: GET /orgs/octo-org/packages/container/lenet/versions answered 403: Resource not accessible by integration (the github-token needs packages: write';
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain(warning);
    expect(r.summary).toContain('PR #31: `namespace lenet-pr-31`.');
    expect(r.summary).toContain(`> [!WARNING]\n> ${warning}`);
    expect(gh.calls()).toEqual([
      'GET /users/octo-org',
      'GET /orgs/octo-org/packages/container/lenet/versions?state=active&per_page=100',
      'GET /repos/octo/models/issues/31/comments?per_page=100',
      'PATCH /repos/octo/models/issues/comments/91',
    ]);
    expect(gh.comments[0].body).toContain('modelship preview: `lenet` for #31 removed');
    expect(gh.comments[0].body).toContain('The PR closed: `namespace lenet-pr-31` removed.');
    expect(gh.comments[0].body).toContain(warning);
  });

  test('ghcr.io, deletable: the namespace and the package version are removed', async () => {
    const versions = [version(811, ['pr-32'])];
    const { gh, env } = await withGitHub({ accounts: { octocat: 'User' }, packages: { 'octocat/lenet': versions } });
    mockKube.namespaces.add('lenet-pr-32');
    const log = capture();
    const r = await runCleanup({ ...cfg('ghcr.io/octocat/lenet', 32), comment: false }, log, env);
    expect(r.ok).toBe(true);
    expect(log.warnings).toEqual([]);
    expect(r.outputs.removed).toBe(`namespace lenet-pr-32\nimage ghcr.io/octocat/lenet:pr-32 (${digest(1)}, package version 811)`);
    expect(gh.calls()).toEqual([
      'GET /users/octocat',
      'GET /users/octocat/packages/container/lenet/versions?per_page=100',
      'DELETE /users/octocat/packages/container/lenet/versions/811',
    ]);
    expect(versions).toEqual([]);
  });

  test('a registry answering 405 UNSUPPORTED: a warning, not a failure', async () => {
    const reg = await refusingRegistry();
    const { gh, env } = await withGitHub({ accounts: {}, packages: {} });
    gh.comments.push({ id: 92, body: `${commentMarker('lenet')}\nthe preview`, html_url: 'https://github.com/octo/models/pull/33#issuecomment-92' });
    mockKube.namespaces.add('lenet-pr-33');
    const log = capture();
    const r = await runCleanup(cfg(`${reg.host}/octo/lenet:sha-1234567`, 33), log, env);
    expect(r.ok).toBe(true);
    expect(r.outputs.removed).toBe('namespace lenet-pr-33');
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toMatch(
      /^image 127\.0\.0\.1:\d+\/octo\/lenet:pr-33 not deleted: registry refused to delete .* HTTP 405 \{"errors":\[\{"code":"UNSUPPORTED"/,
    );
    expect(r.summary).toContain('> [!WARNING]');
    expect(gh.comments[0].body).toContain('HTTP 405');
    expect(gh.calls()).toEqual(['GET /repos/octo/models/issues/33/comments?per_page=100', 'PATCH /repos/octo/models/issues/comments/92']);
  });
});
