import { readConfig } from '../src/config';
import { runCli } from './helpers/cli';

// Input `protocol` (http | grpc), read by smoke and by the rollout's golden requests (and so by the pipeline and a
// preview): a bad value, and a rollout over gRPC without a gRPC address of the canary, fail before anything runs,
// naming the input.

const IMAGE = `127.0.0.1:5000/m@sha256:${'a'.repeat(64)}`;
const rollout = (o: Record<string, string>) => (n: string) => ({ stage: 'rollout', image: IMAGE, 'model-name': 'lenet', ...o })[n];

test('the default is http; grpc is read for smoke and for the rollout', () => {
  expect(readConfig((n) => ({ stage: 'smoke', image: IMAGE })[n]).smoke.protocol).toBe('http');
  expect(readConfig((n) => ({ stage: 'smoke', image: IMAGE, protocol: 'grpc' })[n]).smoke.protocol).toBe('grpc');
  expect(readConfig(rollout({})).rollout.protocol).toBe('http');
  const g = readConfig(rollout({ protocol: 'grpc', 'verify-url': 'grpc://canary.example:8001' })).rollout;
  expect({ protocol: g.protocol, verifyUrl: g.verifyUrl }).toEqual({ protocol: 'grpc', verifyUrl: 'grpc://canary.example:8001' });
  expect(readConfig(rollout({ protocol: 'grpc', 'verify-url': 'grpcs://canary.example:443' })).rollout.protocol).toBe('grpc');
});

test('a protocol that is neither is refused, naming the input (the CLI flag of the same name too)', async () => {
  expect(() => readConfig((n) => ({ stage: 'smoke', image: IMAGE, protocol: 'http2' })[n])).toThrow(
    /input "protocol": expected one of http, grpc, got "http2"/,
  );
  const r = await runCli(['smoke', '--image', IMAGE, '--protocol', 'websocket']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/input "protocol": expected one of http, grpc, got "websocket"/);
});

test("rollout over gRPC needs the canary's gRPC address in verify-url: the service proxy carries HTTP/1.1 only", () => {
  expect(() => readConfig(rollout({ protocol: 'grpc' }))).toThrow(
    /input "verify-url": is required with protocol grpc: the API server's service proxy carries HTTP\/1\.1 only/,
  );
  expect(() => readConfig(rollout({ protocol: 'grpc', 'verify-url': 'http://canary:8000' }))).toThrow(
    /input "verify-url": with protocol grpc, expected the canary's gRPC address grpc:\/\/host:port \(grpcs:\/\/ for TLS\), got "http:\/\/canary:8000"/,
  );
  expect(() => readConfig(rollout({ protocol: 'grpc', 'verify-url': 'grpc://canary' }))).toThrow(/input "verify-url": with protocol grpc/);
  // and the other way round
  expect(() => readConfig(rollout({ 'verify-url': 'grpc://canary:8001' }))).toThrow(
    /input "verify-url": expected an http\(s\) URL, got "grpc:\/\/canary:8001" \(a gRPC address needs protocol: grpc\)/,
  );
});
