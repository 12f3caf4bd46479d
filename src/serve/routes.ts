import type * as http from 'http';
import { ProtocolError } from '../protocol/kserve';
import { KeyGuard } from './auth';
import { forwardingHeaders } from './client-address';
import { Call, Endpoints } from './endpoints';
import { Lifecycle } from './lifecycle';
import { notServed } from './model';

/** One endpoint of the server: which requests reach it, and what is checked before it answers. */
export interface Route {
  /** its label in the metrics */
  name: string;
  /** the path, trailing slashes dropped; a model's route names its groups `model` and (optionally) `version` */
  path: RegExp;
  /** the methods it takes (others: 405 with Allow); none: any */
  methods?: readonly string[];
  /** answered without the API key: the orchestrator's probes carry none */
  open?: boolean;
  /** refused 503 once the server is closing (new inference; what is in flight still finishes) */
  refusedWhileClosing?: boolean;
  handle: (call: Call) => number | Promise<number>;
}

/** A route of the served model: /v2/models/{model}[/versions/{version}]`action`. */
const modelPath = (action: string) => new RegExp(`^/v2/models/(?<model>[^/]+)(?:/versions/(?<version>[^/]+))?${action}$`);

/** The KServe v2 endpoints (and the extensions), tried in order: the first whose path matches answers. */
export function servingRoutes(endpoints: Endpoints): Route[] {
  const inference = { methods: ['POST'], refusedWhileClosing: true } as const;
  return [
    { name: 'health', path: /^\/v2\/health\/live$/, open: true, handle: (c) => endpoints.live(c) },
    { name: 'health', path: /^\/v2\/health\/ready$/, open: true, handle: (c) => endpoints.ready(c) },
    { name: 'metrics', path: /^\/metrics$/, handle: (c) => endpoints.metrics(c) },
    { name: 'metadata', path: /^\/v2$/, handle: (c) => endpoints.serverMetadata(c) },
    // Triton's statistics of every model (before the model routes: it would be model "stats"'s metadata)
    { name: 'stats', path: /^\/v2\/models\/stats$/, methods: ['GET'], handle: (c) => endpoints.modelStatistics(c) },
    { name: 'repository', path: /^\/v2\/repository\/index$/, methods: ['POST'], handle: (c) => endpoints.repositoryIndex(c) },
    // (before the actions: /v2/models/m/versions/infer is version "infer"'s metadata)
    { name: 'metadata', path: modelPath(''), handle: (c) => endpoints.modelMetadata(c) },
    { name: 'ready', path: modelPath('/ready'), handle: (c) => endpoints.modelReady(c) },
    { name: 'infer', path: modelPath('/infer'), ...inference, handle: (c) => endpoints.infer(c) },
    { name: 'classify', path: modelPath('/classify'), ...inference, handle: (c) => endpoints.classify(c) },
    { name: 'detect', path: modelPath('/detect'), ...inference, handle: (c) => endpoints.detect(c) },
    // Triton's model-configuration and statistics extensions (perf_analyzer reads both)
    { name: 'config', path: modelPath('/config'), methods: ['GET'], handle: (c) => endpoints.modelConfig(c) },
    { name: 'stats', path: modelPath('/stats'), methods: ['GET'], handle: (c) => endpoints.modelStatistics(c) },
  ];
}

/** The request target as a URL; a target that is not an origin-form path is the client's fault (400). */
export function requestUrl(target: string | undefined): URL {
  const t = target ?? '/';
  if (!t.startsWith('/')) throw new ProtocolError(400, `malformed request target "${t.slice(0, 100)}"`);
  try {
    // (a base and a path joined as text: `//x` would otherwise be read as a host)
    return new URL(`http://localhost${t}`);
  } catch {
    throw new ProtocolError(400, `malformed request target "${t.slice(0, 100)}"`);
  }
}

/** A percent-encoded path segment, decoded; a malformed escape (`%`, `%zz`) is the client's fault (400). */
export function decodePath(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ProtocolError(400, `malformed percent-encoding in "${segment.slice(0, 100)}"`);
  }
}

/** A request's metrics label before it is routed (so that a request that fails is counted on its route). */
export function provisionalRouteName(target: string | undefined): string {
  const m = /\/(infer|classify|detect|ready|config|stats)\/?$/.exec(target?.split('?')[0] ?? '');
  return m ? m[1] : /health/.test(target ?? '') ? 'health' : 'other';
}

export interface RouterOptions {
  /** the served model's name and version: a model route for another is 404 */
  model: { name: string; version: string };
  /** the API key (when set, every route but the open ones needs "Authorization: Bearer <key>"), shared with gRPC */
  keys: KeyGuard;
}

/** Answer the request being routed; the status answered. */
type Reply = (status: number, body: unknown, headers?: Record<string, string | number>) => number;

/** The route table applied to requests: the first route whose path matches, after the checks it asks for. */
export class Router {
  constructor(
    private readonly routes: readonly Route[],
    private readonly lifecycle: Lifecycle,
    private readonly options: RouterOptions,
  ) {}

  /** Answer `req`: its route's name (the metrics label) and the status answered; a thrown error is the caller's. */
  async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<[string, number]> {
    const url = requestUrl(req.url);
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const send: Reply = (status, body, headers) => (this.lifecycle.send(res, status, body, headers), status);
    let route: Route | undefined;
    let match: RegExpExecArray | null = null;
    for (const r of this.routes)
      if ((match = r.path.exec(path))) {
        route = r;
        break;
      }
    if (!route?.open) {
      // (an unknown path too: without the key, nothing about what is served)
      const refused = this.refusal(req, send, route?.name ?? 'unknown');
      if (refused !== undefined) return ['auth', refused];
    }
    if (!route || !match) return ['unknown', send(404, { error: `no route ${method} ${path}` })];
    const { model, version } = match.groups ?? {};
    if (model !== undefined) {
      const served = this.options.model;
      const wanted = decodePath(model);
      // counted on the route asked for (an infer on another model is an infer answered 404)
      if (wanted !== served.name || (version !== undefined && version !== served.version))
        return [route.name, send(404, { error: notServed(served, wanted, version) })];
    }
    if (route.methods && !route.methods.includes(method))
      return [route.name, send(405, { error: `${route.name} needs ${route.methods.join(' or ')}` }, { allow: route.methods.join(', ') })];
    if (route.refusedWhileClosing && this.lifecycle.closing) return [route.name, send(503, { error: 'the server is shutting down' })];
    return [route.name, await route.handle({ req, res, url })];
  }

  /**
   * The status of an answer refusing the API key (401; 429 when the client is past its failure limit), or undefined:
   * it may pass. `route`: the route asked for, the metrics' label of a refusal.
   */
  private refusal(req: http.IncomingMessage, send: Reply, route: string): number | undefined {
    const forwarding = forwardingHeaders((name) => req.headers[name]);
    const refusal = this.options.keys.check(req.headers.authorization, req.socket.remoteAddress, forwarding, { protocol: 'http', route });
    if (refusal?.status === 429)
      return send(
        429,
        { error: `too many failed API-key attempts from ${refusal.client.address}; without the right key, try again in ${refusal.retryAfterS} s` },
        { 'retry-after': refusal.retryAfterS },
      );
    if (refusal) return send(401, { error: 'missing or invalid API key: send "Authorization: Bearer <key>"' }, { 'www-authenticate': 'Bearer' });
    return undefined;
  }
}

/**
 * The metrics-only listener's one route: GET /metrics without the API key (what Prometheus' pod annotations point
 * to); anything else 404.
 */
export function metricsOnly(endpoints: Endpoints, lifecycle: Lifecycle): http.RequestListener {
  return (req, res) => {
    let url: URL | undefined;
    try {
      url = requestUrl(req.url);
    } catch {
      /* not a path: 404 below */
    }
    if (url?.pathname === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) void endpoints.metrics({ req, res, url });
    else lifecycle.send(res, 404, { error: 'this port serves GET /metrics only' });
  };
}
