import { exchange, Reply } from '../../src/util/http';

/** One HTTP request to a test server (no keep-alive agent), through the project's own client; `json()` parses the body. */
export async function request(
  url: string,
  opts: { method?: string; body?: Buffer | string; headers?: Record<string, string | number> } = {},
): Promise<Reply & { json: () => any }> {
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
  const r = await exchange(url, { method: opts.method ?? (opts.body ? 'POST' : 'GET'), headers: opts.headers, agent: false }, body);
  return { ...r, json: () => JSON.parse(r.body.toString()) };
}

/** A port nothing listens on (bound, then closed): a connection to it is refused. */
export async function closedPort(): Promise<number> {
  const net = await import('net');
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as import('net').AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
