import * as crypto from 'crypto';
import type { ClientAddress, ClientAddresses, ForwardingHeaders } from './client-address';
import type { ServerMetrics } from './metrics';

/** `Authorization: Bearer <key>` against the server's key, in constant time; the scheme is case-insensitive (RFC 9110). */
export function bearerMatches(header: string | undefined, key: string): boolean {
  const m = /^Bearer +(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = crypto.createHash('sha256').update(m[1]).digest();
  const b = crypto.createHash('sha256').update(key).digest();
  // (hashes of equal length: the comparison time says nothing about the key's length either)
  return crypto.timingSafeEqual(a, b);
}

/**
 * Failed API-key attempts per client address: after `limit` failures within `windowMs`, the address's further
 * failures are refused harder (429 with Retry-After rather than 401) until the window that began with its first
 * failure ends. It slows a guesser, and never stands between a client and the right key: clients behind one proxy
 * address share its count, and one of them misconfigured must not lock the others out. A good key does not clear
 * the count either (a guesser that also holds a key would gain by it). At most `maxClients` addresses are tracked;
 * the oldest windows go first.
 */
export class FailedAuthLimiter {
  private readonly seen = new Map<string, { count: number; until: number }>();

  constructor(
    readonly limit = 10,
    readonly windowMs = 60_000,
    private readonly maxClients = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** seconds until `addr` is no longer refused 429; 0 when it is not now */
  blockedFor(addr: string): number {
    const e = this.seen.get(addr);
    const t = this.now();
    if (!e || e.until <= t) return 0;
    return e.count >= this.limit ? Math.ceil((e.until - t) / 1000) : 0;
  }

  /** A failure from `addr`; its number within the address's window (1: the first, which opened the window). */
  fail(addr: string): number {
    const t = this.now();
    let e = this.seen.get(addr);
    if (!e || e.until <= t) {
      this.seen.delete(addr);
      if (this.seen.size >= this.maxClients) {
        // Map keeps insertion order: the first entries have the oldest windows
        for (const [k, v] of this.seen) {
          if (this.seen.size < this.maxClients && v.until > t) break;
          this.seen.delete(k);
        }
      }
      e = { count: 0, until: t + this.windowMs };
      this.seen.set(addr, e);
    }
    return ++e.count;
  }
}

/** Why a key was refused, as the metrics label it. */
export type AuthFailureReason = 'missing' | 'wrong' | 'limited';

/**
 * Why a request's credentials are refused: no key or a wrong one (401; `attempt`, its number in its address's
 * window), or either of them from an address past its limit (429).
 */
export type KeyRefusal = { status: 401; reason: 'missing' | 'wrong'; attempt: number } | { status: 429; reason: 'limited'; retryAfterS: number };

/**
 * The API-key check both front doors make (HTTP's Authorization header, gRPC's `authorization` metadata): the
 * refusal, or undefined when `header` carries `key` (or no key is set), whatever `addr`'s count. A missing or wrong
 * key counts against `addr` in `failures`, whichever door it came by, so that a guesser gains nothing by switching;
 * past the limit it is refused 429 (and no longer counted: the window stays the one its first failure opened).
 */
export function checkApiKey(key: string | undefined, header: string | undefined, addr: string, failures: FailedAuthLimiter): KeyRefusal | undefined {
  if (!key) return undefined;
  // (compared in constant time before anything else: how long a refusal takes says nothing of the count either)
  if (bearerMatches(header, key)) return undefined;
  const wait = failures.blockedFor(addr);
  if (wait > 0) return { status: 429, reason: 'limited', retryAfterS: wait };
  return { status: 401, reason: header ? 'wrong' : 'missing', attempt: failures.fail(addr) };
}

/** Where a key was checked: the front door, and the route (the metrics' label) the request was for. */
export interface KeyCheckSite {
  protocol: 'http' | 'grpc';
  route: string;
}

/**
 * The log's side of refused keys, bounded: an address's first failure in its window is logged with the address
 * (never the key, nor a header's text), at most `maxLines` of them per window, the rest only counted and summed up
 * in one line once a window has passed (with the next failure after it, or at drain), so that a flood of wrong keys,
 * from one address or from many, cannot flood the log too.
 */
export class AuthFailureLog {
  private lines = 0;
  private notLogged = 0;
  private limited = 0;
  private since: number;

  constructor(
    private readonly log: (line: string) => void,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxLines = 100,
  ) {
    this.since = now();
  }

  refused(client: ClientAddress, refusal: KeyRefusal, site: KeyCheckSite): void {
    if (this.now() - this.since >= this.windowMs) this.summarize();
    if (refusal.status === 401 && refusal.attempt === 1 && this.lines < this.maxLines) {
      this.lines++;
      const via = client.peer !== client.address ? ` via ${client.peer}` : '';
      this.log(
        `auth: ${refusal.reason} API key from ${client.address}${via} (${site.protocol}, route ${site.route}); more failures from it within ${Math.ceil(this.windowMs / 1000)} s are counted (modelship_auth_failures_total), not logged one by one`,
      );
      return;
    }
    this.notLogged++;
    if (refusal.status === 429) this.limited++;
  }

  /** The failures not logged one by one since the last summary, in one line (none: nothing). */
  summarize(): void {
    if (this.notLogged)
      this.log(
        `auth: ${this.notLogged} more failed API-key attempt${this.notLogged > 1 ? 's' : ''} in the last ${Math.ceil((this.now() - this.since) / 1000)} s, not logged one by one (${this.limited} refused 429: past their address's limit)`,
      );
    this.lines = 0;
    this.notLogged = 0;
    this.limited = 0;
    this.since = this.now();
  }
}

/** What the key check is made with: the key, the per-address count, and where its failures are seen. */
export interface KeyGuardParts {
  /** the server's key; none: every request passes */
  key?: string;
  failures: FailedAuthLimiter;
  /** which client a request is counted as (its peer, or behind trusted proxies the forwarded address) */
  clients: ClientAddresses;
  metrics: Pick<ServerMetrics, 'authFailure'>;
  log: AuthFailureLog;
}

/** The API-key check of both front doors, with one count of failures per client and the same metrics and log. */
export class KeyGuard {
  constructor(private readonly parts: KeyGuardParts) {}

  /**
   * A request's key (`header`, the Authorization header's or metadata's text) checked: undefined when it may pass;
   * else the refusal and the client it was counted against, `peer` (the socket's address) or the forwarded one.
   */
  check(
    header: string | undefined,
    peer: string | undefined,
    forwarding: ForwardingHeaders,
    site: KeyCheckSite,
  ): (KeyRefusal & { client: ClientAddress }) | undefined {
    const { key, failures, clients, metrics, log } = this.parts;
    if (!key) return undefined;
    const client = clients.of(peer, forwarding);
    const refusal = checkApiKey(key, header, client.address, failures);
    if (!refusal) return undefined;
    metrics.authFailure(site.route, refusal.reason, site.protocol);
    log.refused(client, refusal, site);
    return { ...refusal, client };
  }
}
