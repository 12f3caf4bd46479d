import { ChildProcess, spawn } from 'child_process';
import * as net from 'net';
import { requireLab } from './helpers/lab';
import { KUBECONFIG, KUBECTL, requireCluster, runCliProcess } from './helpers/kube';
import { labDescribe } from './helpers/needs';
import { lenetImage } from './helpers/lenet-image';
import { expectExit, rolloutFile } from './helpers/rollout';

// The rollout's golden requests over gRPC (protocol grpc) on the lab's cluster: LeNet canaries of modelship's image
// answer KServe v2 gRPC on their `grpc` port, reached through verify-url (grpc://...) — here a local TCP front that
// stands for an ingress: each connection is carried to the canary-only Service's grpc port by its own
// `kubectl port-forward` (the API server's service proxy, the default path, carries HTTP/1.1 only). The golden gate
// and the bake's requests go that way: the right model is promoted, a wrong one is rolled back.
jest.setTimeout(600_000);

const describeLab = labDescribe(['docker', 'registry', 'cluster', 'node24']);

const { nsPrefix, base, dropNamespaces } = rolloutFile('rg');

/** 127.0.0.1:<port> → `<service>`'s port 8001 in `ns`, one `kubectl port-forward` per connection (so a new canary is found). */
async function grpcFront(ns: string, service: string): Promise<{ port: number; connections: () => number; close: () => void }> {
  const children: ChildProcess[] = [];
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.pause();
    const child = spawn(KUBECTL, ['-n', ns, 'port-forward', `service/${service}`, ':8001', '--address', '127.0.0.1'], {
      env: { ...process.env, KUBECONFIG },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (!m || socket.readableFlowing !== false) return;
      const upstream = net.connect(Number(m[1]), '127.0.0.1', () => {
        socket.pipe(upstream).pipe(socket);
        socket.resume();
      });
      const end = () => {
        socket.destroy();
        upstream.destroy();
        child.kill();
      };
      upstream.on('error', end).on('close', end);
      socket.on('error', end).on('close', end);
    });
    child.on('exit', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () => {
      server.close();
      for (const c of children) c.kill();
    },
  };
}

describeLab('golden requests over gRPC to the canary', () => {
  beforeAll(() => {
    requireLab();
    requireCluster();
  });
  afterAll(() => dropNamespaces());

  test('protocol grpc through verify-url: the right model is promoted, a wrong one rolled back', async () => {
    const ns = `${nsPrefix}-grpc`;
    const front = await grpcFront(ns, 'lenet-canary');
    try {
      const grpcFlags = ['--protocol', 'grpc', '--verify-url', `grpc://127.0.0.1:${front.port}`, '--verify-requests', '10'];
      const ok = await runCliProcess(base(ns, await lenetImage('a'), grpcFlags));
      expectExit(ok, 0);
      expect(ok.outputs).toMatchObject({ decision: 'promoted', 'gate-golden': 'pass' });
      expect(Number(ok.outputs['verify-latency-p95-ms'])).toBeGreaterThan(0);
      // the golden requests went to the canary over gRPC, through the front
      expect(front.connections()).toBeGreaterThan(0);
      const seen = front.connections();
      const bad = await runCliProcess(base(ns, await lenetImage('wrong'), grpcFlags));
      expectExit(bad, 1);
      expect(bad.outputs).toMatchObject({ decision: 'rolled-back', 'gate-golden': 'fail' });
      expect(bad.outputs.reason).toMatch(/golden requests to lenet-canary: output "prob" at batch 1 differs from the reference/);
      expect(front.connections()).toBeGreaterThan(seen);
    } finally {
      front.close();
    }
  });
});
