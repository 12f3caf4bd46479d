import * as net from 'net';
import { SERVE_SETTINGS, ServeSetting, settingLabel } from '../protocol/serve-settings';
import { ModelshipError } from '../util/errors';

/**
 * Which client a request comes from, for counting its failed API keys (auth.ts): its direct peer, or, when that peer
 * is a trusted proxy (--trusted-proxies), the address the proxies forwarded (X-Forwarded-For, else RFC 7239's
 * Forwarded). Behind an ingress, a mesh sidecar or the API server's proxy every client arrives from a few proxy
 * addresses; counting by those would lump strangers together. The headers are the client's own words unless a proxy
 * wrote them, so they are read only when the peer is trusted, and walked from the right (the hop nearest the server,
 * written by the proxy that connected to us) past trusted hops to the first that is not: the address a trusted
 * proxy saw connect to it. That is the algorithm of nginx's real_ip_recursive and Express's "trust proxy".
 */

/** The client a request is counted as, and the peer that connected (the same unless a trusted proxy forwarded it). */
export interface ClientAddress {
  address: string;
  peer: string;
}

/** The forwarding headers of a request (HTTP headers, gRPC metadata), as received; each may be absent. */
export interface ForwardingHeaders {
  xForwardedFor?: string;
  forwarded?: string;
}

/**
 * A request's forwarding headers from its header (HTTP) or metadata (gRPC) values by name; repeated ones joined in
 * order, as one list (each proxy appends its hop).
 */
export function forwardingHeaders(get: (name: 'x-forwarded-for' | 'forwarded') => unknown): ForwardingHeaders {
  const text = (v: unknown): string | undefined => (Array.isArray(v) ? v.map(String).join(',') : typeof v === 'string' ? v : '') || undefined;
  return { xForwardedFor: text(get('x-forwarded-for')), forwarded: text(get('forwarded')) };
}

/** A gRPC peer's address without its port ("[::1]:52614" or "::1:52614" → "::1"), as HTTP's socket.remoteAddress gives it. */
export function peerAddress(peer: string): string {
  const m = /^\[?(.*?)\]?:\d+$/.exec(peer);
  return m && net.isIP(m[1]) ? m[1] : peer;
}

/** An IP address in one canonical form (IPv6 compressed and lower case, an IPv4-mapped one as IPv4); else undefined. */
export function canonicalAddress(text: string): string | undefined {
  const family = net.isIP(text);
  if (family === 4) return text;
  if (family !== 6) return undefined;
  try {
    // (so that one client counts as one, however its address is written: ::FFFF:a00:1 is 10.0.0.1)
    const v6 = new net.SocketAddress({ address: text, family: 'ipv6' }).address;
    return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6)?.[1] ?? v6;
  } catch {
    return undefined;
  }
}

/**
 * One hop's address as a forwarding header writes it: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::17`,
 * `"[2001:db8::17]:4711"` (RFC 7239 quotes and brackets an IPv6 address; either header may carry a port). Undefined
 * for what names no address: `unknown`, an obfuscated identifier (`_hidden`), anything else.
 */
export function hopAddress(text: string): string | undefined {
  const t = text.trim().replace(/^"(.*)"$/, '$1');
  return canonicalAddress(t) ?? canonicalAddress(/^\[([^\]]+)\](?::\d+)?$/.exec(t)?.[1] ?? /^([\d.]+):\d+$/.exec(t)?.[1] ?? '');
}

/** `text` split at each `sep` that is not inside a quoted string (Forwarded's values may be quoted). */
function splitUnquoted(text: string, sep: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** X-Forwarded-For's hops, the client first: each an address, or undefined where it names none. */
export function xForwardedForHops(header: string): (string | undefined)[] {
  return header.split(',').map(hopAddress);
}

/** RFC 7239 Forwarded's hops, the client first: each element's `for=` address, or undefined where it names none. */
export function forwardedHops(header: string): (string | undefined)[] {
  return splitUnquoted(header, ',').map((element) => {
    const pair = splitUnquoted(element, ';').find((p) => /^\s*for\s*=/i.test(p));
    return pair === undefined ? undefined : hopAddress(pair.slice(pair.indexOf('=') + 1));
  });
}

/**
 * Comma-separated addresses and CIDRs (`10.0.0.0/8, fd00::/8, 127.0.0.1`) as a BlockList; undefined when there are
 * none. An entry that is neither is refused naming `setting`. (BlockList matches an IPv4-mapped IPv6 address, as a
 * dual-stack socket reports an IPv4 peer, against IPv4 entries.)
 */
export function addressList(entries: readonly string[], setting: ServeSetting = SERVE_SETTINGS.trustedProxies): net.BlockList | undefined {
  if (!entries.length) return undefined;
  const list = new net.BlockList();
  for (const entry of entries) {
    const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry.trim());
    const family = m ? net.isIP(m[1]) : 0;
    const prefix = m?.[2] === undefined ? undefined : Number(m[2]);
    try {
      if (!m || family === 0 || (prefix !== undefined && prefix > (family === 4 ? 32 : 128))) throw new Error();
      if (prefix === undefined) list.addAddress(m[1], family === 4 ? 'ipv4' : 'ipv6');
      else list.addSubnet(m[1], prefix, family === 4 ? 'ipv4' : 'ipv6');
    } catch {
      throw new ModelshipError(
        'input',
        `${settingLabel(setting)} must be IP addresses or CIDRs, comma-separated (e.g. 10.0.0.0/8,fd00::/8,127.0.0.1); "${entry.slice(0, 100)}" is neither`,
        { field: setting.flag ?? setting.env },
      );
    }
  }
  return list;
}

/** The client addresses of requests, given the trusted proxies (none: every request is its peer's). */
export class ClientAddresses {
  constructor(private readonly trusted: net.BlockList | undefined) {}

  /** The client of a request from `peer` (the socket's remote address, or undefined once it is gone) with `headers`. */
  of(peer: string | undefined, headers: ForwardingHeaders): ClientAddress {
    const from = peer ? (canonicalAddress(peer) ?? peer) : 'unknown';
    if (!this.trusts(from)) return { address: from, peer: from };
    // X-Forwarded-For is what ingresses, meshes and the API server's proxy write; Forwarded only without it (a
    // proxy that writes one header passes the other through as the client sent it)
    const hops = headers.xForwardedFor ? xForwardedForHops(headers.xForwardedFor) : headers.forwarded ? forwardedHops(headers.forwarded) : [];
    let address = from;
    for (let i = hops.length - 1; i >= 0 && this.trusts(address); i--) {
      const hop = hops[i];
      // (a hop that names no address: nothing beyond it can be told apart, so the request is its peer's)
      if (hop === undefined) return { address: from, peer: from };
      address = hop;
    }
    return { address, peer: from };
  }

  private trusts(address: string): boolean {
    const family = net.isIP(address);
    return this.trusted !== undefined && family !== 0 && this.trusted.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}
