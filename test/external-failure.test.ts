import * as http from 'http';
import { AddressInfo } from 'net';
import { externalFailure, ModelshipError } from '../src/util/errors';
import { runCli } from './helpers/cli';
import { closedPort } from './helpers/http';

// Issue 20, point 6: a failure of another system (the GitHub API through octokit, the network) is reported as that
// system's failure, naming it and the call, and not as "internal error (a bug in modelship)". The classification
// (src/util/errors.ts externalFailure) as table tests, on errors made by hand and on the real errors octokit and Node
// raise (a closed port, a server answering 502, a host that does not resolve); then the CLI's and the action's
// top-level reports, with the stage replaced by one that throws those errors.

// @actions/github and @actions/core are ESM-only: @actions/github is loaded by Node's own require (see
// test/cleanup-ghcr.test.ts); @actions/core is replaced by a recorder, as the action's catch block is under test here.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest.mock factories run before the imports: they can only require
jest.mock('@actions/github', () => require('./helpers/mocks').actionsGithub(), { virtual: true });
const mockCore = { errors: [] as { message: string; props?: Record<string, unknown> }[], failed: [] as string[], outputs: {} as Record<string, string> };
jest.mock(
  '@actions/core',
  () => ({
    getInput: () => '',
    setSecret: () => undefined,
    saveState: () => undefined,
    getState: () => '',
    info: () => undefined,
    warning: () => undefined,
    group: (_n: string, fn: () => Promise<unknown>) => fn(),
    setOutput: (k: string, v: string) => (mockCore.outputs[k] = v),
    error: (message: string, props?: Record<string, unknown>) => mockCore.errors.push({ message, props }),
    setFailed: (m: string) => mockCore.failed.push(m),
    summary: { addRaw: () => ({ write: async () => undefined }) },
  }),
  { virtual: true },
);
// the stage that runs: one that throws what the test puts here
const mockStage: { error?: unknown } = {};
jest.mock('../src/run', () => ({
  runStage: async () => {
    throw mockStage.error;
  },
}));
jest.mock('../src/config', () => ({ ...jest.requireActual('../src/config'), readConfig: () => ({ stage: 'cleanup' }) }));

const servers: http.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** A stand-in for api.github.com that answers every request with `status` (a gateway's 502, say). */
async function answering(status: number, message: string): Promise<string> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message, documentation_url: 'https://docs.github.com/rest' }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The error the real octokit (@actions/github) throws for GET /repos/octo/models/issues/4/comments against `baseUrl`. */
async function octokitError(baseUrl: string): Promise<unknown> {
  const github = await import('@actions/github');
  const octokit = github.getOctokit('ghs_token', { baseUrl });
  try {
    await octokit.rest.issues.listComments({ owner: 'octo', repo: 'models', issue_number: 4 });
  } catch (e) {
    return e;
  }
  throw new Error('the request did not fail');
}

/** The error Node's fetch or http throws for a request to `url`. */
async function nodeError(f: () => Promise<unknown>): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  throw new Error('the request did not fail');
}

const httpGet = (url: string) =>
  new Promise((resolve, reject) => {
    http.get(url, resolve).on('error', reject);
  });

let port: number;
const real: Record<string, unknown> = {};
beforeAll(async () => {
  port = await closedPort();
  real.octokitRefused = await octokitError(`http://127.0.0.1:${port}`);
  real.octokit502 = await octokitError(await answering(502, 'Server Error'));
  real.octokit403 = await octokitError(await answering(403, 'Resource not accessible by integration'));
  real.octokitNoHost = await octokitError('http://api.invalid');
  real.fetchRefused = await nodeError(() => fetch(`http://127.0.0.1:${port}/x`));
  real.httpRefused = await nodeError(() => httpGet(`http://127.0.0.1:${port}/x`));
  real.httpNoHost = await nodeError(() => httpGet('http://registry.invalid/v2/'));
});

describe('externalFailure: which system failed, and the call', () => {
  test.each([
    [
      'octokit, nothing listening',
      'octokitRefused',
      {
        system: 'GitHub API',
        call: 'GET /repos/octo/models/issues/4/comments',
        status: undefined,
        message: /^GitHub API: GET \/repos\/octo\/models\/issues\/4\/comments failed: connect ECONNREFUSED 127\.0\.0\.1:\d+$/,
      },
    ],
    [
      'octokit, a 502 from a gateway',
      'octokit502',
      {
        system: 'GitHub API',
        call: 'GET /repos/octo/models/issues/4/comments',
        status: 502,
        message: /^GitHub API: GET \/repos\/octo\/models\/issues\/4\/comments answered 502: Server Error$/,
      },
    ],
    [
      'octokit, a 403 (the documentation URL dropped)',
      'octokit403',
      {
        system: 'GitHub API',
        status: 403,
        message: /^GitHub API: GET \/repos\/octo\/models\/issues\/4\/comments answered 403: Resource not accessible by integration$/,
      },
    ],
    [
      'octokit, a host that does not resolve',
      'octokitNoHost',
      {
        system: 'GitHub API',
        status: undefined,
        message: /^GitHub API: GET \/repos\/octo\/models\/issues\/4\/comments failed: getaddrinfo (ENOTFOUND|EAI_AGAIN) api\.invalid$/,
      },
    ],
    [
      'fetch, nothing listening (the code is on the cause)',
      'fetchRefused',
      { system: 'network', call: undefined, message: /^network: connect ECONNREFUSED 127\.0\.0\.1:\d+$/ },
    ],
    ['http, nothing listening', 'httpRefused', { system: 'network', message: /^network: connect ECONNREFUSED 127\.0\.0\.1:\d+$/ }],
    ['http, a host that does not resolve', 'httpNoHost', { system: 'network', message: /^network: getaddrinfo (ENOTFOUND|EAI_AGAIN) registry\.invalid$/ }],
  ])('%s', (_name, which, expected) => {
    const f = externalFailure(real[which]);
    expect(f).toBeDefined();
    const { message, ...rest } = expected as { message: RegExp } & Record<string, unknown>;
    expect(f!.message).toMatch(message);
    for (const [k, v] of Object.entries(rest)) expect([k, (f as unknown as Record<string, unknown>)[k]]).toEqual([k, v]);
  });

  const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' });
  test.each<[string, unknown, string | undefined]>([
    [
      'an octokit-shaped error with a response',
      Object.assign(new Error('Bad Gateway - https://docs.github.com/rest'), {
        name: 'HttpError',
        status: 502,
        response: { status: 502 },
        request: { method: 'PATCH', url: 'https://api.github.com/repos/o/r/issues/comments/9' },
      }),
      'GitHub API: PATCH /repos/o/r/issues/comments/9 answered 502: Bad Gateway',
    ],
    [
      'an octokit-shaped error without one (status 500, the network below)',
      Object.assign(new Error('getaddrinfo ENOTFOUND api.example'), {
        name: 'HttpError',
        status: 500,
        request: { method: 'GET', url: 'https://api.example/repos/o/r/issues/4/comments?per_page=100' },
        cause: Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('getaddrinfo ENOTFOUND api.example'), { code: 'ENOTFOUND' }) }),
      }),
      'GitHub API: GET /repos/o/r/issues/4/comments failed: getaddrinfo ENOTFOUND api.example',
    ],
    ['a network error, its code on it', refused, 'network: connect ECONNREFUSED 10.0.0.1:443'],
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'network: read ECONNRESET'],
    ['a timeout', Object.assign(new Error('connect ETIMEDOUT 10.0.0.1:443'), { code: 'ETIMEDOUT' }), 'network: connect ETIMEDOUT 10.0.0.1:443'],
    [
      'DNS, temporarily',
      Object.assign(new Error('getaddrinfo EAI_AGAIN api.github.com'), { code: 'EAI_AGAIN' }),
      'network: getaddrinfo EAI_AGAIN api.github.com',
    ],
    [
      "Node's AggregateError (happy eyeballs: no message of its own, the code and the attempts)",
      Object.assign(new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5000'), { code: 'ECONNREFUSED' })], ''), { code: 'ECONNREFUSED' }),
      'network: connect ECONNREFUSED ::1:5000',
    ],
    ['wrapped as the cause of a plain error', new Error('request failed', { cause: refused }), 'network: connect ECONNREFUSED 10.0.0.1:443'],
    ["a ModelshipError: modelship's own report", new ModelshipError('io', 'cannot reach the registry', {}), undefined],
    ['a bug: a TypeError', new TypeError("Cannot read properties of undefined (reading 'x')"), undefined],
    ['a file error is not the network', Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }), undefined],
    ['an HttpError-named error without its request', Object.assign(new Error('x'), { name: 'HttpError', status: 500 }), undefined],
    ['not an error at all', 'a string', undefined],
    ['nothing', undefined, undefined],
  ])('%s', (_name, e, message) => {
    expect(externalFailure(e)?.message).toBe(message);
  });
});

describe('the top-level reports: another system\'s failure is named, a bug is still "internal error"', () => {
  test('CLI: the GitHub API (502), the network (ECONNREFUSED): "error: <system>: ...", exit 1; a bug: internal error, exit 70', async () => {
    mockStage.error = real.octokit502;
    const a = await runCli(['cleanup']);
    expect(a.code).toBe(1);
    expect(a.stderr).toBe('error: GitHub API: GET /repos/octo/models/issues/4/comments answered 502: Server Error\n');
    mockStage.error = real.fetchRefused;
    const b = await runCli(['cleanup']);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/^error: network: connect ECONNREFUSED 127\.0\.0\.1:\d+\n$/);
    mockStage.error = new TypeError('x is not a function');
    const c = await runCli(['cleanup']);
    expect(c.code).toBe(70);
    expect(c.stderr).toMatch(/^internal error \(a bug in modelship\): TypeError: x is not a function/);
  });

  test('action: an annotation titled with the system, exit code 1, no "internal error"; a bug still fails as one', async () => {
    const { action } = await import('../src/action/main');
    const exit = process.exitCode;
    try {
      mockStage.error = real.octokitNoHost;
      await action();
      expect(mockCore.failed).toEqual([]);
      expect(mockCore.errors).toHaveLength(1);
      expect(mockCore.errors[0].message).toMatch(
        /^GitHub API: GET \/repos\/octo\/models\/issues\/4\/comments failed: getaddrinfo (ENOTFOUND|EAI_AGAIN) api\.invalid$/,
      );
      expect(mockCore.errors[0].props).toEqual({ title: 'modelship: GitHub API failure' });
      expect(process.exitCode).toBe(1);

      process.exitCode = 0;
      mockStage.error = real.httpRefused;
      await action();
      expect(mockCore.errors[1]).toEqual({
        message: expect.stringMatching(/^network: connect ECONNREFUSED 127\.0\.0\.1:\d+$/),
        props: { title: 'modelship: network failure' },
      });
      expect(process.exitCode).toBe(1);

      mockStage.error = new TypeError('x is not a function');
      await action();
      expect(mockCore.errors).toHaveLength(2);
      expect(mockCore.failed).toHaveLength(1);
      expect(mockCore.failed[0]).toMatch(/^internal error \(a bug in modelship\): TypeError: x is not a function/);
    } finally {
      process.exitCode = exit;
    }
  });
});
