import * as http from 'http';
import * as https from 'https';

/** An HTTP reply, its body buffered. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP or HTTPS request (by the URL's scheme) with the whole reply buffered: golden requests, the API
 * server's proxy and the registry API all go through here. `timeout` (ms) ends a request that stalls.
 */
export function exchange(url: string | URL, opts: https.RequestOptions = {}, body?: Uint8Array): Promise<Reply> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const request = u.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(u, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}
