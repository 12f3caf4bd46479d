import * as prom from 'prom-client';

/** What the metrics say about the server beyond its requests. */
export interface MetricsSources {
  /** request bytes held now (read when scraped) */
  inflightBytes: () => number;
  /** the bound on them */
  inflightBytesLimit: number;
  /** the execution provider the model runs on, the one asked for, and whether that is a fallback */
  provider: string;
  requestedProvider: string;
  fallback: boolean;
}

/** The server's Prometheus metrics (modelship_*), Node's and the process's among them, in a registry of its own. */
export class ServerMetrics {
  readonly registry = new prom.Registry();
  private readonly requests: prom.Counter<'route' | 'code' | 'protocol'>;
  private readonly errors: prom.Counter<'route' | 'code' | 'protocol'>;
  private readonly latency: prom.Histogram<'route' | 'protocol'>;
  private readonly batchSizes: prom.Histogram;
  private readonly inflight: prom.Gauge;
  private readonly authFailures: prom.Counter<'route' | 'reason' | 'protocol'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    // prom-client's own names already start with process_ / nodejs_: the prefix is modelship_ alone
    prom.collectDefaultMetrics({ register: this.registry, prefix: 'modelship_' });
    // three of prom-client's gauges end in _total, which names counters (promtool warns); each is the sum over the
    // `type` label of its namesake without the suffix, which stays
    for (const what of ['handles', 'requests', 'resources']) this.registry.removeSingleMetric(`modelship_nodejs_active_${what}_total`);
    // Both front doors count on the same series names and routes (infer, ready, metadata, health, ...). An HTTP
    // request's labels are route and code, its status, as they always were; a gRPC call's add protocol="grpc", and
    // its code is the HTTP status google.rpc.Code maps its gRPC status to (grpc/status.ts: OK 200, INVALID_ARGUMENT
    // 400, UNAUTHENTICATED 401, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, CANCELLED 499, INTERNAL 500, UNIMPLEMENTED
    // 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504), so that code=~"5.." (the rollout's error rate) means the same on both
    this.requests = new prom.Counter({
      name: 'modelship_requests_total',
      help: 'Requests answered: HTTP, and gRPC (protocol="grpc", code its HTTP equivalent)',
      labelNames: ['route', 'code', 'protocol'],
      registers,
    });
    this.errors = new prom.Counter({
      name: 'modelship_request_errors_total',
      help: 'Requests answered with 4xx/5xx (gRPC: a status whose HTTP equivalent is one)',
      labelNames: ['route', 'code', 'protocol'],
      registers,
    });
    this.latency = new prom.Histogram({
      name: 'modelship_request_duration_seconds',
      help: 'Request latency',
      labelNames: ['route', 'protocol'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    // Refused keys, by why: none sent, a wrong one, or either from an address past --auth-failure-limit (429). Unlike
    // the request counters, protocol is always set: a failed key is a security event whichever door it came by
    this.authFailures = new prom.Counter({
      name: 'modelship_auth_failures_total',
      help: 'Requests refused for their API key: reason missing or wrong (401), or limited (429: too many failures from the client address)',
      labelNames: ['route', 'reason', 'protocol'],
      registers,
    });
    this.batchSizes = new prom.Histogram({ name: 'modelship_batch_size', help: 'Items per executed batch', buckets: [1, 2, 4, 8, 16, 32, 64], registers });
    this.inflight = new prom.Gauge({ name: 'modelship_inflight_requests', help: 'Requests being handled', registers });
    new prom.Gauge({
      name: 'modelship_inflight_request_bytes',
      help: 'Request bytes held (bodies being read or waiting for their answer)',
      registers,
      collect() {
        this.set(sources.inflightBytes());
      },
    });
    new prom.Gauge({ name: 'modelship_inflight_request_bytes_limit', help: 'The bound on request bytes held at once', registers }).set(
      sources.inflightBytesLimit,
    );
    new prom.Gauge({
      name: 'modelship_execution_provider',
      help: 'The execution provider the model runs on (1), what was requested, and whether that is a fallback',
      labelNames: ['provider', 'requested', 'fallback'],
      registers,
    }).set({ provider: sources.provider, requested: sources.requestedProvider, fallback: String(sources.fallback) }, 1);
  }

  /**
   * A request has begun: counted in flight; the returned function ends it, its latency observed under `route` (and
   * `protocol`, for a gRPC call).
   */
  begin(): (route: string, protocol?: 'grpc') => void {
    this.inflight.inc();
    const end = this.latency.startTimer();
    return (route, protocol) => {
      end(protocol ? { route, protocol } : { route });
      this.inflight.dec();
    };
  }

  /** A request answered with `code` (an error too, from 400 on); a gRPC call's code is its status's HTTP equivalent. */
  answered(route: string, code: number, protocol?: 'grpc'): void {
    const labels = { route, code: String(code), ...(protocol ? { protocol } : {}) };
    this.requests.inc(labels);
    if (code >= 400) this.errors.inc(labels);
  }

  /** A request refused for its API key: on `route`, for `reason`, by either door. */
  authFailure(route: string, reason: 'missing' | 'wrong' | 'limited', protocol: 'http' | 'grpc'): void {
    this.authFailures.inc({ route, reason, protocol });
  }

  /** A batch of `items` has run. */
  batch(items: number): void {
    this.batchSizes.observe(items);
  }

  /** The exposition text, and its content type. */
  async exposition(): Promise<{ contentType: string; text: Buffer }> {
    // prom-client writes a statistic of no samples yet (the event-loop lag's mean at start) as "Nan", which is not
    // the exposition format's NaN; a mean of nothing is no sample at all
    const text = Buffer.from((await this.registry.metrics()).replace(/^[^#\n][^\n]* NaN$\n?/gim, ''));
    return { contentType: this.registry.contentType, text };
  }
}
