import { execFileSync } from 'child_process';
import { KServeGrpcClient } from '../../src/protocol/kserve-grpc-client';
import { closedPort } from './http';

/**
 * Serve a docker-compose.yml the image stage wrote with Debian's docker-compose (1.29), the way its user would:
 * `up -d` with the three host ports moved to free ones (MODELSHIP_PORT, MODELSHIP_GRPC_PORT, MODELSHIP_METRICS_PORT),
 * wait for `docker-compose ps` to say the service is healthy (the file's own healthcheck, run by the engine inside the
 * container), then check what each published port answers — GET /v2/health/ready, gRPC ServerReady (through the
 * project's KServe gRPC client), GET /metrics — and `down -v` whatever happened.
 */
export async function composeServe(
  file: string,
  project: string,
  extraEnv: Record<string, string> = {},
): Promise<{ ps: string; ready: number; grpcReady: boolean; grpcServer: string; metrics: { status: number; text: string }; secondsToHealthy: number }> {
  const [http, grpc, metrics] = [await closedPort(), await closedPort(), await closedPort()];
  const env = { ...process.env, MODELSHIP_PORT: String(http), MODELSHIP_GRPC_PORT: String(grpc), MODELSHIP_METRICS_PORT: String(metrics), ...extraEnv };
  const compose = (args: string[]) => execFileSync('docker-compose', ['-p', project, '-f', file, ...args], { env, encoding: 'utf8', stdio: 'pipe' });
  compose(['up', '-d']);
  try {
    const t0 = Date.now();
    let ps = '';
    // the engine runs the first check one interval (10 s) after the start; a model load may take longer
    while (!/\(healthy\)/.test(ps)) {
      if (/\(unhealthy\)|Exit \d+/.test(ps) || Date.now() - t0 > 150_000)
        throw new Error(`docker-compose ps does not show the service healthy:\n${ps}\n${compose(['logs', '--tail', '40'])}`);
      await new Promise((r) => setTimeout(r, 1000));
      ps = compose(['ps']);
    }
    const secondsToHealthy = (Date.now() - t0) / 1000;
    const ready = (await fetch(`http://127.0.0.1:${http}/v2/health/ready`)).status;
    const client = new KServeGrpcClient(`127.0.0.1:${grpc}`);
    let grpcReady = false;
    let grpcServer = '';
    try {
      grpcReady = await client.ready(5000);
      const s = await client.server().catch((e: Error) => ({ name: e.message, version: '' }));
      grpcServer = `${s.name} ${s.version}`.trim();
    } finally {
      client.close();
    }
    const m = await fetch(`http://127.0.0.1:${metrics}/metrics`);
    return { ps, ready, grpcReady, grpcServer, metrics: { status: m.status, text: await m.text() }, secondsToHealthy };
  } finally {
    compose(['down', '-v']);
  }
}
