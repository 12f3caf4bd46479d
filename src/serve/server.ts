import * as http from 'http';
import type * as prom from 'prom-client';
import { DynamicBatcher } from './batcher';
import { ByteBudget, defaultInflightBytes, memoryLimit } from './memory';
import { AuthFailureLog, FailedAuthLimiter, KeyGuard } from './auth';
import { addressList, ClientAddresses } from './client-address';
import { ErrorAnswer, errorAnswer } from './errors';
import { Endpoints } from './endpoints';
import { GrpcDoor } from './grpc/service';
import { Lifecycle, listen } from './lifecycle';
import { ServerMetrics } from './metrics';
import { modelBatcher, readModel, startModel } from './model';
import { ServeOptions } from './options';
import { metricsOnly, provisionalRouteName, Router, servingRoutes } from './routes';
import { ModelshipError } from '../util/errors';

/**
 * modelship's KServe v2 server, put together: the model (model.ts) on its inference thread behind a dynamic batcher,
 * request bodies read within their limits (body.ts), the route table (routes.ts) over the endpoints (endpoints.ts),
 * errors answered from one table (errors.ts), the metrics (metrics.ts), and listening and draining (lifecycle.ts);
 * and the same over gRPC (grpc/), a second front door onto all of it.
 */

export { DEFAULT_SERVE } from './options';
export type { ServeOptions } from './options';
export { bodyCoding } from './body';
export type { BodyCoding } from './body';
export { requestUrl, decodePath } from './routes';
export { OFFLOAD_JSON_BYTES } from './endpoints';
/** onnxruntime's threading for a server (the session lives on its inference thread, worker.ts) */
export { ortThreading } from './worker';

export interface RunningServer {
  url: string;
  port: number;
  /** stop taking work: readiness false, finish in-flight requests, close */
  drain(): Promise<void>;
  provider: string;
  metrics: prom.Registry;
  batcher: DynamicBatcher;
  /** the metrics-only listener's port, when there is one */
  metricsPort?: number;
  /** the gRPC listener's port (inference.GRPCInferenceService), when there is one */
  grpcPort?: number;
  /** the bound on request bytes held at once */
  maxInflightBytes: number;
}

/** how long a client that is still sending a refused body may go on (its bytes discarded) before it is cut */
const LINGER_MS = 2000;

/** Load the model and serve it over the KServe v2 protocol. */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const { bytes, sig } = readModel(opts);
  const mem = memoryLimit();
  const inflightLimit = opts.maxInflightBytes > 0 ? opts.maxInflightBytes : defaultInflightBytes(mem, opts.maxBodyBytes);
  if (inflightLimit < opts.maxBodyBytes)
    throw new ModelshipError(
      'input',
      `the in-flight bound (${inflightLimit} bytes) is below the body limit (${opts.maxBodyBytes}): the largest request could never be taken`,
      { field: 'max-inflight-bytes' },
    );

  // (a bad entry is refused before the model is loaded)
  const clients = new ClientAddresses(addressList(opts.trustedProxies));

  const lifecycle = new Lifecycle(opts.log);
  // the inference thread's death, heard once the model has started and until the server is drained
  let onCrash: ((e: Error) => void) | undefined;
  const model = await startModel(bytes, sig, opts, (e) => onCrash?.(e));
  onCrash = (e) => lifecycle.fail(e);
  opts.log(
    `request bytes in flight bounded at ${inflightLimit} (${opts.maxInflightBytes > 0 ? 'configured' : `a quarter of ${mem.source}: ${mem.bytes}`}); headers within ${opts.headerTimeoutMs} ms, bodies within ${opts.bodyTimeoutMs} ms`,
  );
  const budget = new ByteBudget(inflightLimit);
  const { provider, fallbackReason } = model.engine;
  const metrics = new ServerMetrics({
    inflightBytes: () => budget.inUse,
    inflightBytesLimit: inflightLimit,
    provider,
    requestedProvider: opts.provider.requested,
    fallback: Boolean(fallbackReason),
  });
  if (model.detectionOutputs.length)
    opts.log(
      `detection output${model.detectionOutputs.length > 1 ? 's' : ''} ${model.detectionOutputs.join(', ')}: [1, 1, D, 7] tables, split per request by image_id; POST /v2/models/${opts.modelName}/detect takes an image`,
    );
  const batcher = modelBatcher(model, opts, (n) => metrics.batch(n));
  const endpoints = new Endpoints({
    model,
    batcher,
    lifecycle,
    metrics,
    bodyLimits: { maxBodyBytes: opts.maxBodyBytes, bodyTimeoutMs: opts.bodyTimeoutMs, budget },
    opts,
  });
  // (one count of failed keys per client address, whichever door they come by)
  const authWindowMs = opts.authFailureWindowMs ?? 60_000;
  const authLog = new AuthFailureLog(opts.log, authWindowMs);
  const keys = new KeyGuard({
    key: opts.apiKey,
    failures: new FailedAuthLimiter(opts.authFailureLimit, authWindowMs),
    clients,
    metrics,
    log: authLog,
  });
  if (opts.apiKey && opts.trustedProxies.length)
    opts.log(`trusted proxies ${opts.trustedProxies.join(', ')}: failed API keys from them count against the client their X-Forwarded-For / Forwarded names`);
  const router = new Router(servingRoutes(endpoints), lifecycle, { model, keys });

  // Node's own clocks bound a client that never finishes its headers (it answers 408 itself) and, as a backstop
  // to the body's timer, the whole request; checked every second rather than every 30 s
  const serverOptions: http.ServerOptions = {
    headersTimeout: opts.headerTimeoutMs,
    requestTimeout: opts.headerTimeoutMs + opts.bodyTimeoutMs + 1000,
    connectionsCheckingInterval: Math.min(1000, opts.headerTimeoutMs),
  };
  const server = http.createServer(serverOptions, requestListener(router, lifecycle, metrics, opts.log));
  server.keepAliveTimeout = 5000;
  const stopThreads = () => Promise.all([model.engine.release(), model.decoders.stop()]);

  // the scrape port: /metrics and nothing else, without the API key (what Prometheus' pod annotations point to)
  let metricsServer: http.Server | undefined;
  let metricsPort: number | undefined;
  try {
    if (opts.metricsPort !== undefined) {
      metricsServer = http.createServer(serverOptions, metricsOnly(endpoints, lifecycle));
      metricsPort = await listen(metricsServer, opts.metricsPort, opts.host);
    }
  } catch (e) {
    await stopThreads();
    throw new ModelshipError('io', `cannot listen for metrics on ${opts.host}:${opts.metricsPort}: ${(e as Error).message}`, { field: 'metrics-port' });
  }
  let grpcDoor: GrpcDoor | undefined;
  let grpcPort: number | undefined;
  try {
    if (opts.grpcPort !== undefined) {
      grpcDoor = new GrpcDoor({ model, batcher, lifecycle, metrics, budget, keys, opts });
      grpcPort = await grpcDoor.listen(opts.grpcPort, opts.host);
    }
  } catch (e) {
    grpcDoor?.server.forceShutdown();
    metricsServer?.close();
    await stopThreads();
    throw new ModelshipError('io', `cannot listen for gRPC on ${opts.host}:${opts.grpcPort}: ${(e as Error).message}`, { field: 'grpc-port' });
  }
  let port: number;
  try {
    port = await listen(server, opts.port, opts.host);
  } catch (e) {
    grpcDoor?.server.forceShutdown();
    metricsServer?.close();
    await stopThreads();
    throw new ModelshipError('io', `cannot listen on ${opts.host}:${opts.port}: ${(e as Error).message}`, { field: 'port' });
  }
  opts.log(
    `listening on http://${opts.host}:${port} (KServe v2; max batch ${opts.maxBatchSize}, max queue delay ${opts.maxQueueDelayMs} ms${opts.apiKey ? ', API key required' : ''})${grpcPort !== undefined ? `; gRPC on :${grpcPort}` : ''}${metricsPort !== undefined ? `; metrics on :${metricsPort}/metrics` : ''}`,
  );

  return {
    url: `http://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${port}`,
    port,
    provider,
    metrics: metrics.registry,
    batcher,
    metricsPort,
    grpcPort,
    maxInflightBytes: inflightLimit,
    async drain() {
      await lifecycle.drain(server, metricsServer, opts.drainDelayMs, opts.drainTimeoutMs, grpcDoor?.server);
      onCrash = undefined;
      await stopThreads();
      authLog.summarize();
      opts.log('drained; bye');
    },
  };
}

/** Each request routed, counted in the metrics, and, when it fails, answered from the error table. */
function requestListener(router: Router, lifecycle: Lifecycle, metrics: ServerMetrics, log: (line: string) => void): http.RequestListener {
  return (req, res) => {
    lifecycle.begin();
    const end = metrics.begin();
    // the metrics label, known before the handler runs (so failures are counted on their route)
    let routeName = provisionalRouteName(req.url);
    router
      .route(req, res)
      .then(([name, code]) => {
        routeName = name;
        metrics.answered(name, code);
      })
      .catch((e: unknown) => {
        const answer = errorAnswer(e);
        if (answer.logStack) log(`error: ${(e as Error).stack ?? String(e)}`);
        answerFailure(req, res, answer, lifecycle);
        metrics.answered(routeName, answer.status);
      })
      .finally(() => {
        end(routeName);
        lifecycle.end();
      });
  };
}

/** A failed request's answer (when someone is there to read it), and what then becomes of its connection. */
function answerFailure(req: http.IncomingMessage, res: http.ServerResponse, answer: ErrorAnswer, lifecycle: Lifecycle): void {
  if (!answer.answered || res.headersSent || res.destroyed) return;
  // a body left unread (refused, too big, too slow) ends the connection after the answer
  lifecycle.send(res, answer.status, { error: answer.message }, { ...(req.complete ? {} : { connection: 'close' }), ...answer.headers });
  // a client too slow to send its body within the timeout is not waited for any longer; one still sending a
  // refused body gets a moment to read the answer (its bytes are discarded meanwhile), then is cut
  if (answer.cutAfterAnswer) res.once('finish', () => req.socket.destroy());
  else if (!req.complete) res.once('finish', () => setTimeout(() => req.socket.destroy(), LINGER_MS).unref());
}
