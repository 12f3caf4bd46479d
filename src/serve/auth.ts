import * as crypto from 'crypto';

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
 * Failed API-key attempts per client address: after `limit` failures within `windowMs`, the address is refused
 * (429 with Retry-After) until the window that began with its first failure ends. A good key does not clear the
 * count (a guesser that also holds a key gains nothing). At most `maxClients` addresses are tracked; the oldest
 * windows go first.
 */
export class FailedAuthLimiter {
  private readonly seen = new Map<string, { count: number; until: number }>();

  constructor(
    readonly limit = 10,
    readonly windowMs = 60_000,
    private readonly maxClients = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** seconds until `addr` may try again; 0 when it may now */
  blockedFor(addr: string): number {
    const e = this.seen.get(addr);
    const t = this.now();
    if (!e || e.until <= t) return 0;
    return e.count >= this.limit ? Math.ceil((e.until - t) / 1000) : 0;
  }

  fail(addr: string): void {
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
    e.count++;
  }
}

/** Why a request's credentials are refused: none or a wrong key (401), or too many failures from its address (429). */
export type KeyRefusal = { status: 401 } | { status: 429; retryAfterS: number };

/**
 * The API-key check both front doors make (HTTP's Authorization header, gRPC's `authorization` metadata): the
 * refusal, or undefined when `header` carries `key` (or no key is set). A wrong key counts against `addr` in
 * `failures`, whichever door it came by, so that a guesser gains nothing by switching.
 */
export function checkApiKey(key: string | undefined, header: string | undefined, addr: string, failures: FailedAuthLimiter): KeyRefusal | undefined {
  if (!key) return undefined;
  const wait = failures.blockedFor(addr);
  if (wait > 0) return { status: 429, retryAfterS: wait };
  if (bearerMatches(header, key)) return undefined;
  failures.fail(addr);
  return { status: 401 };
}
