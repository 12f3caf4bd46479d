// The server's route table (src/serve/routes.ts) and error table (src/serve/errors.ts), without a socket.
import type * as http from 'http';
import { ProtocolError } from '../src/protocol/kserve';
import { AuthFailureLog, FailedAuthLimiter, KeyGuard } from '../src/serve/auth';
import { ClientAddresses } from '../src/serve/client-address';
import type { Endpoints } from '../src/serve/endpoints';
import { BodyTimeout, ClientGone, ErrorAnswer, errorAnswer, Overloaded, UnsupportedEncoding } from '../src/serve/errors';
import { Lifecycle } from '../src/serve/lifecycle';
import { decodePath, provisionalRouteName, requestUrl, Router, servingRoutes } from '../src/serve/routes';

/** An answer as the fake response took it. */
interface Answer {
  status?: number;
  headers: Record<string, string | number>;
  body?: { error?: string };
}

function fakeResponse(): { res: http.ServerResponse; answer: Answer } {
  const answer: Answer = { headers: {} };
  const res = {
    writeHead(status: number, headers: Record<string, string | number>) {
      answer.status = status;
      answer.headers = headers;
    },
    end(buf: Buffer) {
      answer.body = JSON.parse(buf.toString());
    },
  };
  return { res: res as unknown as http.ServerResponse, answer };
}

/** Endpoints that only say which of them was called (200). */
function fakeEndpoints(called: string[]): Endpoints {
  return new Proxy({}, { get: (_, name) => () => (called.push(String(name)), 200) }) as Endpoints;
}

function router(opts: { apiKey?: string } = {}) {
  const called: string[] = [];
  const lifecycle = new Lifecycle(() => undefined);
  const r = new Router(servingRoutes(fakeEndpoints(called)), lifecycle, {
    model: { name: 'lenet', version: '1' },
    keys: new KeyGuard({
      key: opts.apiKey,
      failures: new FailedAuthLimiter(3),
      clients: new ClientAddresses(undefined),
      metrics: { authFailure: () => undefined },
      log: new AuthFailureLog(() => undefined, 60_000),
    }),
  });
  const call = async (method: string, url: string, headers: http.IncomingHttpHeaders = {}) => {
    const { res, answer } = fakeResponse();
    const req = { method, url, headers, socket: { remoteAddress: '10.0.0.1' } } as unknown as http.IncomingMessage;
    const [route, status] = await r.route(req, res);
    return { route, status, answer, called: called.splice(0) };
  };
  return { call, lifecycle };
}

describe('the route table', () => {
  test.each([
    ['GET', '/v2/health/live', 'health', 'live'],
    ['GET', '/v2/health/ready/', 'health', 'ready'],
    ['HEAD', '/v2/health/ready', 'health', 'ready'],
    ['GET', '/metrics', 'metrics', 'metrics'],
    ['GET', '/v2', 'metadata', 'serverMetadata'],
    ['GET', '/v2/models/lenet', 'metadata', 'modelMetadata'],
    ['POST', '/v2/models/lenet', 'metadata', 'modelMetadata'],
    ['GET', '/v2/models/lenet/versions/1', 'metadata', 'modelMetadata'],
    ['GET', '/v2/models/lenet/ready', 'ready', 'modelReady'],
    ['GET', '/v2/models/le%6Eet/versions/1/ready', 'ready', 'modelReady'],
    ['POST', '/v2/models/lenet/infer', 'infer', 'infer'],
    ['POST', '/v2/models/lenet/versions/1/infer/', 'infer', 'infer'],
    ['POST', '/v2/models/lenet/classify?top_k=3', 'classify', 'classify'],
    ['POST', '/v2/models/lenet/detect', 'detect', 'detect'],
  ])('%s %s: route %s, endpoint %s', async (method, url, route, endpoint) => {
    const r = await router().call(method, url);
    expect(r).toMatchObject({ route, status: 200, called: [endpoint] });
  });

  test('an unknown path: 404 naming it', async () => {
    for (const url of ['/', '/v1/models/lenet', '/v2/models', '/v2/models/lenet/explain', '/v2/models/lenet/versions/1/2']) {
      const r = await router().call('GET', url);
      expect(r).toMatchObject({ route: 'unknown', status: 404, called: [] });
      expect(r.answer.body?.error).toBe(`no route GET ${url.replace(/\/+$/, '')}`);
    }
  });

  test('inference by any method but POST: 405 with Allow, counted on its route', async () => {
    for (const action of ['infer', 'classify', 'detect']) {
      const r = await router().call('GET', `/v2/models/lenet/${action}`);
      expect(r).toMatchObject({ route: action, status: 405, called: [], answer: { headers: { allow: 'POST' }, body: { error: `${action} needs POST` } } });
    }
  });

  test('another model or version: 404 on the route asked for', async () => {
    const { call } = router();
    expect(await call('POST', '/v2/models/resnet/infer')).toMatchObject({
      route: 'infer',
      status: 404,
      called: [],
      answer: { body: { error: 'model "resnet" is not served here (serving "lenet" version 1)' } },
    });
    expect(await call('GET', '/v2/models/lenet/versions/2/ready')).toMatchObject({
      route: 'ready',
      status: 404,
      answer: { body: { error: 'model "lenet" version 2 is not served here (serving "lenet" version 1)' } },
    });
    // /versions/infer is a version named "infer", not the infer route
    expect(await call('POST', '/v2/models/lenet/versions/infer')).toMatchObject({ route: 'metadata', status: 404 });
  });

  test('closing: new inference 503, the rest still answered', async () => {
    const { call, lifecycle } = router();
    lifecycle.closing = true;
    lifecycle.ready = false;
    expect(await call('POST', '/v2/models/lenet/infer')).toMatchObject({
      route: 'infer',
      status: 503,
      called: [],
      answer: { body: { error: 'the server is shutting down' }, headers: { connection: 'close' } },
    });
    expect(await call('GET', '/v2/models/lenet')).toMatchObject({ route: 'metadata', status: 200 });
  });

  test('with an API key: health needs none; everything else, unknown paths too, 401 without it, 429 after too many (the right key still passes)', async () => {
    const { call } = router({ apiKey: 'k3y' });
    expect(await call('GET', '/v2/health/live')).toMatchObject({ route: 'health', status: 200 });
    expect(await call('GET', '/v2/models/lenet', { authorization: 'Bearer k3y' })).toMatchObject({ route: 'metadata', status: 200 });
    expect(await call('GET', '/nowhere', { authorization: 'Bearer k3y' })).toMatchObject({ route: 'unknown', status: 404 });
    expect(await call('GET', '/nowhere')).toMatchObject({ route: 'auth', status: 401, answer: { headers: { 'www-authenticate': 'Bearer' } } });
    expect(await call('POST', '/v2/models/lenet/infer', { authorization: 'Bearer wrong' })).toMatchObject({ route: 'auth', status: 401, called: [] });
    expect(await call('GET', '/metrics')).toMatchObject({ route: 'auth', status: 401 });
    const limited = await call('GET', '/v2', { authorization: 'Bearer nope' });
    expect(limited).toMatchObject({ route: 'auth', status: 429, called: [] });
    expect(limited.answer.headers['retry-after']).toBeGreaterThan(0);
    expect(await call('GET', '/v2', { authorization: 'Bearer k3y' })).toMatchObject({ route: 'metadata', status: 200 });
  });

  test('a malformed target or percent-encoding is a 400 (thrown, answered from the error table)', async () => {
    const { call } = router();
    await expect(call('GET', 'http://elsewhere/v2')).rejects.toMatchObject({ status: 400 });
    await expect(call('GET', '/v2/models/%zz/infer')).rejects.toMatchObject({ status: 400, message: 'malformed percent-encoding in "%zz"' });
    expect(() => requestUrl('*')).toThrow(ProtocolError);
    expect(requestUrl('//x/v2').pathname).toBe('//x/v2');
    expect(decodePath('a%20b')).toBe('a b');
  });

  test.each([
    ['/v2/models/m/infer', 'infer'],
    ['/v2/models/m/classify/?top_k=1', 'classify'],
    ['/v2/models/m/detect', 'detect'],
    ['/v2/models/m/ready', 'ready'],
    ['/v2/health/live', 'health'],
    ['/v2/models/m', 'other'],
    [undefined, 'other'],
  ])('before routing, %p is counted as %p', (target, name) => {
    expect(provisionalRouteName(target)).toBe(name);
  });
});

describe('the error table', () => {
  test.each<[string, Error, Partial<ErrorAnswer>]>([
    ['Overloaded', new Overloaded('full'), { status: 503, headers: { 'retry-after': 1 }, logStack: false, answered: true, cutAfterAnswer: false }],
    [
      'UnsupportedEncoding',
      new UnsupportedEncoding('br'),
      { status: 501, headers: { 'accept-encoding': 'gzip, deflate' }, logStack: false, answered: true, cutAfterAnswer: false },
    ],
    ['BodyTimeout', new BodyTimeout('slow'), { status: 408, headers: {}, logStack: false, answered: true, cutAfterAnswer: true }],
    ['ClientGone', new ClientGone(), { status: 499, headers: {}, logStack: false, answered: false, cutAfterAnswer: false }],
    ['ProtocolError 400', new ProtocolError(400, 'bad'), { status: 400, headers: {}, logStack: false, answered: true, cutAfterAnswer: false }],
    ['ProtocolError 413', new ProtocolError(413, 'big'), { status: 413, headers: {}, logStack: false, answered: true }],
    ['ProtocolError 503', new ProtocolError(503, 'stopped'), { status: 503, headers: {}, logStack: false, answered: true }],
    ['ProtocolError 500', new ProtocolError(500, 'odd'), { status: 500, headers: {}, logStack: true, answered: true }],
    ['Error', new Error('boom'), { status: 500, message: 'internal error: boom', headers: {}, logStack: true, answered: true, cutAfterAnswer: false }],
  ])('%s', (_, error, answer) => {
    expect(errorAnswer(error)).toMatchObject({ message: answer.message ?? error.message, ...answer });
  });

  test('what is not an Error at all is a 500 too', () => {
    expect(errorAnswer('a string')).toMatchObject({ status: 500, logStack: true, answered: true });
  });

  test("the headers are the answer's own copy", () => {
    const a = errorAnswer(new Overloaded('x'));
    a.headers.connection = 'close';
    expect(errorAnswer(new Overloaded('x')).headers).toEqual({ 'retry-after': 1 });
  });
});
