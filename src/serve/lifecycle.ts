import type * as grpc from '@grpc/grpc-js';
import * as http from 'http';
import { AddressInfo } from 'net';
import { HEADER_LENGTH } from '../protocol/kserve';

/**
 * A server's life: ready, then (SIGTERM) draining — readiness false, every answer closing its connection so that
 * keep-alive clients reconnect to another replica — then closing: no new inference, in-flight requests finished
 * within the drain timeout, stalled connections cut. A crashed inference thread breaks it: liveness fails, so that
 * the orchestrator restarts the container. Both front doors, HTTP and gRPC, share it: their requests are counted in
 * flight alike, and they are closed together.
 */
export class Lifecycle {
  /** readiness: false from the start of a drain, or once broken */
  ready = true;
  /** set when the drain delay is over: from then on new inference is refused (in-flight requests still finish) */
  closing = false;
  /** why the server cannot serve any more (its inference thread died) */
  broken: string | undefined;
  private inflight = 0;
  private whenIdle: (() => void) | undefined;

  constructor(private readonly log: (line: string) => void) {}

  /** A request has begun. */
  begin(): void {
    this.inflight++;
  }

  /** A request has been answered (or given up). */
  end(): void {
    this.inflight--;
    if (this.inflight === 0 && this.whenIdle) this.whenIdle();
  }

  /** requests being handled */
  get inFlight(): number {
    return this.inflight;
  }

  /** No session, no server: liveness fails. */
  fail(e: Error): void {
    this.log(`fatal: ${e.message}`);
    this.broken = e.message;
    this.ready = false;
  }

  /** Answer with a JSON body (or a Buffer: binary tensor data when HEADER_LENGTH is among the headers). */
  send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}): void {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    // while draining, every answer ends its connection: keep-alive clients reconnect to another replica
    if (!this.ready) headers = { ...headers, connection: 'close' };
    res.writeHead(status, {
      'content-type': Buffer.isBuffer(body) && headers[HEADER_LENGTH] !== undefined ? 'application/octet-stream' : 'application/json',
      'content-length': buf.length,
      ...headers,
    });
    res.end(buf);
  }

  /**
   * Stop taking work: readiness false, `delayMs` more of serving (answers closing their connections), then close
   * `server` and `grpcServer` and wait at most `timeoutMs` for their in-flight requests before cutting what is still
   * open; then close `metricsServer`.
   */
  async drain(server: http.Server, metricsServer: http.Server | undefined, delayMs: number, timeoutMs: number, grpcServer?: grpc.Server): Promise<void> {
    this.ready = false;
    this.log(`draining: readiness is false${delayMs ? `; serving ${delayMs} ms more while load balancers take this replica out` : ''}`);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    this.closing = true;
    this.log(`closing: no new connections; finishing ${this.inflight} in-flight request${this.inflight === 1 ? '' : 's'} (at most ${timeoutMs} ms)`);
    let cut: () => void = () => undefined;
    const httpClosed = new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      this.whenIdle = () => server.closeIdleConnections();
    });
    // gRPC's graceful shutdown: no new connections, a GOAWAY on each open one (channels reconnect to another replica;
    // a call that arrives meanwhile is refused with UNAVAILABLE), and done once the calls in flight are answered
    const grpcClosed = new Promise<void>((resolve) => {
      if (!grpcServer) return resolve();
      grpcServer.tryShutdown(() => resolve());
      cut = () => (grpcServer.forceShutdown(), resolve());
    });
    // a client that stalls (headers or body never finished, a call never answered) must not hold the process past the bound
    const timer = setTimeout(() => {
      this.log(`drain timeout: cutting ${this.inflight} unfinished request${this.inflight === 1 ? '' : 's'} and any stalled connection`);
      server.closeAllConnections();
      cut();
    }, timeoutMs);
    await Promise.all([httpClosed, grpcClosed]);
    clearTimeout(timer);
    if (metricsServer) {
      metricsServer.closeAllConnections();
      await new Promise<void>((r) => metricsServer.close(() => r()));
    }
  }
}

/** Listen on `host`:`port` (0: any free port); the port listened on. */
export const listen = (server: http.Server, port: number, host: string): Promise<number> =>
  new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
