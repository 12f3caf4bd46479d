import * as fs from 'fs';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import { convertCaffe } from '../src/convert/converter';
import { startServer, DEFAULT_SERVE, RunningServer, ServeOptions } from '../src/serve/server';
import { serveOptions } from '../src/serve/main';
import { AuthFailureLog, checkApiKey, FailedAuthLimiter } from '../src/serve/auth';
import {
  addressList,
  canonicalAddress,
  ClientAddresses,
  forwardedHops,
  forwardingHeaders,
  hopAddress,
  peerAddress,
  xForwardedForHops,
} from '../src/serve/client-address';
import { inferenceService } from '../src/protocol/grpc';
import { ModelshipError } from '../src/util/errors';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { request } from './helpers/http';

// The failed-API-key limit (issue 26): the right key is always served, whatever its address's count; past the
// limit only a missing or wrong key is refused harder (429 / RESOURCE_EXHAUSTED). Behind trusted proxies
// (--trusted-proxies) the client counted is the one X-Forwarded-For / Forwarded names; from any other peer those
// headers are ignored. Failures are counted in modelship_auth_failures_total and logged, boundedly, by address.

let model = '';
beforeAll(() => {
  const d = path.join(FIXTURES, 'lenet');
  const conv = convertCaffe({
    prototxt: fs.readFileSync(path.join(d, 'deploy.prototxt')),
    prototxtFile: 'p',
    caffemodel: fs.readFileSync(path.join(d, 'weights.caffemodel')),
    caffemodelFile: 'w',
  });
  model = path.join(tmpDir('modelship-auth-limit-'), 'lenet.onnx');
  fs.writeFileSync(model, conv.onnx);
});

function options(extra: Partial<ServeOptions>, log: string[] = []): ServeOptions {
  return {
    ...DEFAULT_SERVE,
    host: '127.0.0.1',
    port: 0,
    grpcPort: 0,
    modelPath: model,
    modelName: 'lenet',
    apiKey: 'k3y',
    log: (l) => log.push(l),
    ...extra,
  };
}

/** GET the model's metadata over HTTP with `key` (none: no Authorization header) and any other headers. */
const metadata = (srv: RunningServer, key?: string, headers: Record<string, string> = {}) =>
  request(`${srv.url}/v2/models/lenet`, { headers: { ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}), ...headers } });

/** ModelMetadata over gRPC with `key` and other metadata: the status code (OK or the error's) and details. */
async function grpcMetadata(srv: RunningServer, key?: string, md: Record<string, string> = {}): Promise<{ code: grpc.status; details: string }> {
  const c = new (inferenceService().Client)(`127.0.0.1:${srv.grpcPort}`, grpc.credentials.createInsecure());
  const meta = new grpc.Metadata();
  if (key !== undefined) meta.set('authorization', `Bearer ${key}`);
  for (const [k, v] of Object.entries(md)) meta.set(k, v);
  try {
    return await new Promise((resolve) =>
      (c as unknown as Record<string, (...a: unknown[]) => void>).ModelMetadata.call(c, { name: 'lenet' }, meta, (e: grpc.ServiceError | null) =>
        resolve(e ? { code: e.code, details: e.details } : { code: grpc.status.OK, details: '' }),
      ),
    );
  } finally {
    c.close();
  }
}

/** a sample's value in the server's registry (0 when absent) */
async function sample(srv: RunningServer, series: string): Promise<number> {
  const text = await srv.metrics.metrics();
  return Number(new RegExp(`^${series.replace(/[{}"|()[\]]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('client addresses (client-address.ts)', () => {
  test.each([
    ['192.0.2.60', '192.0.2.60'],
    [' 192.0.2.60:4711 ', '192.0.2.60'],
    ['2001:DB8:0::17', '2001:db8::17'],
    ['"[2001:db8:cafe::17]:4711"', '2001:db8:cafe::17'],
    ['[2001:db8::17]', '2001:db8::17'],
    ['"192.0.2.60"', '192.0.2.60'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['::FFFF:a00:1', '10.0.0.1'],
    ['unknown', undefined],
    ['_hidden', undefined],
    ['"_SEVKISEK"', undefined],
    ['', undefined],
    ['10.0.0.300', undefined],
    ['[10.0.0.1', undefined],
    ['example.com', undefined],
  ])('hop %j → %j', (text, expected) => {
    expect(hopAddress(text)).toBe(expected);
  });

  test.each([
    ['203.0.113.5', ['203.0.113.5']],
    ['203.0.113.5, 10.0.0.2,10.0.0.3', ['203.0.113.5', '10.0.0.2', '10.0.0.3']],
    ['203.0.113.5:1234, [2001:db8::1]:80', ['203.0.113.5', '2001:db8::1']],
    ['unknown, 10.0.0.2', [undefined, '10.0.0.2']],
    ['203.0.113.5,,10.0.0.2', ['203.0.113.5', undefined, '10.0.0.2']],
  ])('X-Forwarded-For %j', (header, hops) => {
    expect(xForwardedForHops(header)).toEqual(hops);
  });

  test.each([
    ['for=192.0.2.60;proto=http;by=203.0.113.43', ['192.0.2.60']],
    ['For="[2001:db8:cafe::17]:4711"', ['2001:db8:cafe::17']],
    ['for=192.0.2.43, for=198.51.100.17', ['192.0.2.43', '198.51.100.17']],
    ['for=unknown, for=198.51.100.17;by=unknown', [undefined, '198.51.100.17']],
    ['for="_gazonk"', [undefined]],
    ['proto=https;by=10.0.0.1', [undefined]],
    // (a quoted value may hold the separators)
    ['for="198.51.100.17";x="a,b;c", for=10.0.0.2', ['198.51.100.17', '10.0.0.2']],
  ])('Forwarded %j', (header, hops) => {
    expect(forwardedHops(header)).toEqual(hops);
  });

  test.each([
    ['127.0.0.1:52614', '127.0.0.1'],
    ['::1:52614', '::1'],
    ['[::1]:52614', '::1'],
    ['::1', '::1'],
    ['unknown', 'unknown'],
  ])('gRPC peer %j → %j', (peer, expected) => {
    expect(peerAddress(peer)).toBe(expected);
  });

  test('forwarding headers: HTTP strings and gRPC metadata arrays; repeated ones joined in order', () => {
    expect(forwardingHeaders((n) => ({ 'x-forwarded-for': '1.2.3.4', forwarded: undefined })[n])).toEqual({ xForwardedFor: '1.2.3.4' });
    expect(forwardingHeaders((n) => (n === 'forwarded' ? ['for=1.2.3.4', 'for=5.6.7.8'] : []))).toEqual({ forwarded: 'for=1.2.3.4,for=5.6.7.8' });
  });

  const trusted = new ClientAddresses(addressList(['10.0.0.0/8', 'fd00::/8', '127.0.0.1']));
  test.each<[string, string | undefined, { xForwardedFor?: string; forwarded?: string }, string]>([
    [
      'an untrusted peer: the headers are its own words, ignored',
      '198.51.100.1',
      { xForwardedFor: '203.0.113.5', forwarded: 'for=203.0.113.6' },
      '198.51.100.1',
    ],
    ['a trusted peer: the forwarded client', '10.1.2.3', { xForwardedFor: '203.0.113.5' }, '203.0.113.5'],
    ['an IPv4-mapped trusted peer matches the IPv4 CIDR', '::ffff:10.1.2.3', { xForwardedFor: '203.0.113.5' }, '203.0.113.5'],
    [
      'trusted hops are walked from the right past each trusted one',
      '10.0.0.1',
      { xForwardedFor: '198.51.100.9, 203.0.113.5, 10.0.0.7, 127.0.0.1' },
      '203.0.113.5',
    ],
    ['a spoofed left part stays left of the first untrusted hop', '10.0.0.1', { xForwardedFor: '10.9.9.9, 203.0.113.5' }, '203.0.113.5'],
    ['every hop trusted: the leftmost', '10.0.0.1', { xForwardedFor: '10.0.0.5, 10.0.0.6' }, '10.0.0.5'],
    ['an unknown hop: the peer', '10.0.0.1', { xForwardedFor: '203.0.113.5, unknown, 10.0.0.6' }, '10.0.0.1'],
    ['no header: the peer', '10.0.0.1', {}, '10.0.0.1'],
    ['Forwarded without X-Forwarded-For', 'fd00::1', { forwarded: 'for=192.0.2.60;proto=https, for="[fd00::2]:8080"' }, '192.0.2.60'],
    ['X-Forwarded-For before Forwarded', '10.0.0.1', { xForwardedFor: '203.0.113.5', forwarded: 'for=192.0.2.60' }, '203.0.113.5'],
    ['Forwarded for=unknown: the peer', '10.0.0.1', { forwarded: 'for=unknown' }, '10.0.0.1'],
    ['no peer (the socket gone)', undefined, { xForwardedFor: '203.0.113.5' }, 'unknown'],
  ])('%s', (_, peer, headers, address) => {
    expect(trusted.of(peer, headers).address).toBe(address);
  });

  test('no trusted proxies: every request is its peer, whatever its headers', () => {
    const none = new ClientAddresses(addressList([]));
    expect(none.of('10.0.0.1', { xForwardedFor: '203.0.113.5' })).toEqual({ address: '10.0.0.1', peer: '10.0.0.1' });
    expect(none.of('::ffff:127.0.0.1', {})).toEqual({ address: '127.0.0.1', peer: '127.0.0.1' });
    expect(canonicalAddress('nonsense')).toBeUndefined();
  });

  test.each(['10.0.0.0/33', '10.0.0.0/', 'fd00::/129', '10.0.0', 'example.com', '10.0.0.0/8/8', '*'])(
    'a bad entry %j is refused naming trusted-proxies',
    (entry) => {
      let e: unknown;
      try {
        addressList(['127.0.0.1', entry]);
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(ModelshipError);
      expect((e as ModelshipError).code).toBe('input');
      expect((e as ModelshipError).location.field).toBe('trusted-proxies');
      expect((e as Error).message).toMatch(/--trusted-proxies \/ MODELSHIP_TRUSTED_PROXIES must be IP addresses or CIDRs/);
    },
  );

  test('the setting: off by default, read from the flag or the environment, a bad CIDR refused at start', () => {
    expect(serveOptions(['--model', 'm.onnx'], {}, () => undefined).trustedProxies).toEqual([]);
    expect(serveOptions(['--model', 'm.onnx', '--trusted-proxies', '10.0.0.0/8, ::1'], {}, () => undefined).trustedProxies).toEqual(['10.0.0.0/8', '::1']);
    expect(serveOptions(['--model', 'm.onnx'], { MODELSHIP_TRUSTED_PROXIES: '192.168.0.0/16' }, () => undefined).trustedProxies).toEqual(['192.168.0.0/16']);
    expect(() => serveOptions(['--model', 'm.onnx', '--trusted-proxies', '10.0.0.0/33'], {}, () => undefined)).toThrow(/trusted-proxies.*"10\.0\.0\.0\/33"/);
  });
});

describe('the failed-key count (auth.ts)', () => {
  test('the right key passes past the limit; a missing or wrong one gets 429 until the window ends, which the right key does not reset', () => {
    let now = 0;
    const l = new FailedAuthLimiter(3, 10_000, 100, () => now);
    expect(checkApiKey('k', undefined, 'a', l)).toEqual({ status: 401, reason: 'missing', attempt: 1 });
    expect(checkApiKey('k', 'Bearer x', 'a', l)).toEqual({ status: 401, reason: 'wrong', attempt: 2 });
    expect(checkApiKey('k', 'Basic k', 'a', l)).toEqual({ status: 401, reason: 'wrong', attempt: 3 });
    expect(checkApiKey('k', 'Bearer k', 'a', l)).toBeUndefined();
    expect(checkApiKey('k', 'Bearer x', 'a', l)).toEqual({ status: 429, reason: 'limited', retryAfterS: 10 });
    expect(checkApiKey('k', undefined, 'a', l)).toEqual({ status: 429, reason: 'limited', retryAfterS: 10 });
    expect(checkApiKey('k', 'Bearer x', 'b', l)).toMatchObject({ status: 401 });
    now = 9_001;
    expect(checkApiKey('k', 'bearer k', 'a', l)).toBeUndefined();
    expect(checkApiKey('k', 'Bearer x', 'a', l)).toMatchObject({ status: 429, retryAfterS: 1 });
    now = 10_000;
    expect(checkApiKey('k', 'Bearer x', 'a', l)).toEqual({ status: 401, reason: 'wrong', attempt: 1 });
    expect(checkApiKey(undefined, undefined, 'a', l)).toBeUndefined();
  });

  test("the log: an address's first failure per window, then one summary line; at most maxLines addresses per window", () => {
    let now = 0;
    const lines: string[] = [];
    const log = new AuthFailureLog(
      (l) => lines.push(l),
      60_000,
      () => now,
      2,
    );
    const site = { protocol: 'http', route: 'infer' } as const;
    log.refused({ address: '203.0.113.5', peer: '10.0.0.1' }, { status: 401, reason: 'wrong', attempt: 1 }, site);
    log.refused({ address: '203.0.113.5', peer: '10.0.0.1' }, { status: 401, reason: 'wrong', attempt: 2 }, site);
    log.refused({ address: '203.0.113.5', peer: '10.0.0.1' }, { status: 429, reason: 'limited', retryAfterS: 30 }, site);
    log.refused({ address: '10.0.0.9', peer: '10.0.0.9' }, { status: 401, reason: 'missing', attempt: 1 }, { protocol: 'grpc', route: 'metadata' });
    log.refused({ address: '10.0.0.10', peer: '10.0.0.10' }, { status: 401, reason: 'wrong', attempt: 1 }, site);
    expect(lines).toEqual([
      'auth: wrong API key from 203.0.113.5 via 10.0.0.1 (http, route infer); more failures from it within 60 s are counted (modelship_auth_failures_total), not logged one by one',
      'auth: missing API key from 10.0.0.9 (grpc, route metadata); more failures from it within 60 s are counted (modelship_auth_failures_total), not logged one by one',
    ]);
    now = 60_000;
    log.refused({ address: '10.0.0.10', peer: '10.0.0.10' }, { status: 401, reason: 'wrong', attempt: 2 }, site);
    expect(lines.slice(2)).toEqual([
      "auth: 3 more failed API-key attempts in the last 60 s, not logged one by one (1 refused 429: past their address's limit)",
    ]);
    log.summarize();
    expect(lines.slice(3)).toEqual(["auth: 1 more failed API-key attempt in the last 0 s, not logged one by one (0 refused 429: past their address's limit)"]);
    log.summarize();
    expect(lines).toHaveLength(4);
  });
});

describe('the limit on a server, both doors', () => {
  let srv: RunningServer;
  const log: string[] = [];
  beforeAll(async () => {
    srv = await startServer(options({ authFailureLimit: 3, authFailureWindowMs: 3000 }, log));
  });
  afterAll(() => srv.drain());

  test('20 wrong keys, then the right key from the same address: 200 over HTTP, OK over gRPC; wrong and missing keys get 429 until the window ends', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await metadata(srv, `guess-${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, ...Array(17).fill(429)]);
    const ok = await metadata(srv, 'k3y');
    expect(ok.status).toBe(200);
    expect(ok.json().name).toBe('lenet');
    expect(await grpcMetadata(srv, 'k3y')).toEqual({ code: grpc.status.OK, details: '' });

    const limited = await metadata(srv, 'guess-again');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(3);
    expect(limited.json().error).toMatch(/^too many failed API-key attempts from 127\.0\.0\.1; without the right key, try again in \d s$/);
    expect((await metadata(srv)).status).toBe(429);
    expect(await grpcMetadata(srv, 'guess')).toEqual({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: expect.stringMatching(/^too many failed API-key attempts from 127\.0\.0\.1/),
    });
    expect((await grpcMetadata(srv)).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // the right key all along did not reset the count
    expect((await metadata(srv, 'k3y')).status).toBe(200);
    expect((await metadata(srv, 'guess-more')).status).toBe(429);

    // the window (3 s from the first failure) ends: 401 again, a new window
    await sleep(Number(limited.headers['retry-after']) * 1000 + 100);
    expect((await metadata(srv, 'guess-later')).status).toBe(401);
    expect((await grpcMetadata(srv, 'guess-later')).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  test('failures are counted by route, reason and protocol; requests_total keeps route="auth"', async () => {
    expect(await sample(srv, 'modelship_auth_failures_total{route="metadata",reason="wrong",protocol="http"}')).toBe(4);
    expect(await sample(srv, 'modelship_auth_failures_total{route="metadata",reason="limited",protocol="http"}')).toBe(20);
    expect(await sample(srv, 'modelship_auth_failures_total{route="metadata",reason="limited",protocol="grpc"}')).toBe(2);
    expect(await sample(srv, 'modelship_auth_failures_total{route="metadata",reason="wrong",protocol="grpc"}')).toBe(1);
    expect(await sample(srv, 'modelship_requests_total{route="auth",code="429"}')).toBe(20);
    // an unknown path is refused without saying so, and counted as such
    expect((await request(`${srv.url}/nowhere`)).status).toBe(401);
    expect(await sample(srv, 'modelship_auth_failures_total{route="unknown",reason="missing",protocol="http"}')).toBe(1);
  });

  test('the log names the address, once per window, never a key', () => {
    const auth = log.filter((l) => l.startsWith('auth: '));
    expect(auth).toEqual([
      'auth: wrong API key from 127.0.0.1 (http, route metadata); more failures from it within 3 s are counted (modelship_auth_failures_total), not logged one by one',
      expect.stringMatching(/^auth: 24 more failed API-key attempts in the last \d+ s, not logged one by one \(22 refused 429: past their address's limit\)$/),
      'auth: wrong API key from 127.0.0.1 (http, route metadata); more failures from it within 3 s are counted (modelship_auth_failures_total), not logged one by one',
    ]);
    expect(log.join('\n')).not.toMatch(/guess|k3y|Bearer/);
  });
});

describe('a missing key counts as a wrong one', () => {
  test('two missing keys reach a limit of 2: then missing and wrong keys get 429, the right key 200', async () => {
    const srv = await startServer(options({ authFailureLimit: 2 }));
    try {
      expect((await metadata(srv)).status).toBe(401);
      expect((await grpcMetadata(srv)).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await metadata(srv)).status).toBe(429);
      expect((await metadata(srv, 'wrong')).status).toBe(429);
      expect((await metadata(srv, 'k3y')).status).toBe(200);
      expect(await sample(srv, 'modelship_auth_failures_total{route="metadata",reason="missing",protocol="grpc"}')).toBe(1);
    } finally {
      await srv.drain();
    }
  });
});

describe('behind trusted proxies (--trusted-proxies 127.0.0.1/32)', () => {
  let srv: RunningServer;
  const log: string[] = [];
  beforeAll(async () => {
    srv = await startServer(options({ authFailureLimit: 2, trustedProxies: ['127.0.0.1/32'] }, log));
  });
  afterAll(() => srv.drain());

  test('two clients forwarded with different X-Forwarded-For are counted apart, over both doors', async () => {
    const a = { 'x-forwarded-for': '203.0.113.5' };
    const b = { 'x-forwarded-for': '203.0.113.6' };
    expect((await metadata(srv, 'wrong', a)).status).toBe(401);
    expect((await grpcMetadata(srv, 'wrong', a)).code).toBe(grpc.status.UNAUTHENTICATED);
    const limited = await metadata(srv, 'wrong', a);
    expect(limited.status).toBe(429);
    expect(limited.json().error).toMatch(/from 203\.0\.113\.5;/);
    // through a second trusted hop: still client a
    expect((await metadata(srv, 'wrong', { 'x-forwarded-for': '203.0.113.5, 127.0.0.1' })).status).toBe(429);
    expect((await grpcMetadata(srv, 'wrong', a)).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // b, and the proxy's own address, are not limited by a's failures
    expect((await metadata(srv, 'wrong', b)).status).toBe(401);
    expect((await grpcMetadata(srv, 'wrong', b)).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await metadata(srv, 'wrong')).status).toBe(401);
    // and a's right key is served
    expect((await metadata(srv, 'k3y', a)).status).toBe(200);
  });

  test('Forwarded: for= (RFC 7239) names the client when there is no X-Forwarded-For', async () => {
    const c = { forwarded: 'for="[2001:db8::1]:4711";proto=http' };
    expect((await metadata(srv, 'wrong', c)).status).toBe(401);
    expect((await metadata(srv, 'wrong', c)).status).toBe(401);
    const limited = await metadata(srv, 'wrong', c);
    expect(limited.status).toBe(429);
    expect(limited.json().error).toMatch(/from 2001:db8::1;/);
    expect((await metadata(srv, 'wrong', { forwarded: 'for=198.51.100.7' })).status).toBe(401);
  });

  test('the log names the client and the proxy it came through, never the header', () => {
    expect(log).toContain(
      'auth: wrong API key from 203.0.113.5 via 127.0.0.1 (http, route metadata); more failures from it within 60 s are counted (modelship_auth_failures_total), not logged one by one',
    );
    expect(log).toContainEqual(expect.stringMatching(/^auth: wrong API key from 2001:db8::1 via 127\.0\.0\.1 /));
    expect(log.join('\n')).not.toMatch(/4711|proto=|for=|Bearer|k3y/);
  });
});

describe('without trusted proxies', () => {
  test('a spoofed X-Forwarded-For or Forwarded from the peer is ignored: rotating it does not escape the limit', async () => {
    const srv = await startServer(options({ authFailureLimit: 3 }));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await metadata(srv, 'wrong', { 'x-forwarded-for': `198.51.100.${i}`, forwarded: `for=192.0.2.${i}` })).status);
      expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
      const spoofed = await grpcMetadata(srv, 'wrong', { 'x-forwarded-for': '198.51.100.99' });
      expect(spoofed).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, details: expect.stringMatching(/from 127\.0\.0\.1;/) });
    } finally {
      await srv.drain();
    }
  });

  test('a bad CIDR in the setting is refused before the server starts, naming trusted-proxies', async () => {
    await expect(startServer(options({ trustedProxies: ['10.0.0.0/8', '10.0.0.0/33'] }))).rejects.toMatchObject({
      code: 'input',
      location: { field: 'trusted-proxies' },
      message: expect.stringMatching(/--trusted-proxies \/ MODELSHIP_TRUSTED_PROXIES must be IP addresses or CIDRs.*"10\.0\.0\.0\/33"/),
    });
  });
});
