/**
 * Small pieces of the Kubernetes client that need no client: kept apart from kube.ts so code that only reads
 * API errors or writes Lease timestamps does not load @kubernetes/client-node (ESM-only, and large).
 */

/** A Kubernetes API error (client-node's ApiException: code + the API server's Status body), or undefined. */
export function apiError(e: unknown): { code: number; message: string } | undefined {
  const x = e as { code?: unknown; body?: unknown } | null;
  if (!x || typeof x !== 'object' || typeof x.code !== 'number' || !('body' in x)) return undefined;
  let message = String(x.body);
  try {
    message = (JSON.parse(String(x.body)) as { message?: string }).message ?? message;
  } catch {
    /* body is not a Status */
  }
  return { code: x.code, message };
}

/** The Lease API's MicroTime: the API server (1.34 as much as 1.20) refuses millisecond timestamps ("cannot parse .908Z as .000000"). */
export class MicroTime extends Date {
  override toISOString(): string {
    return super.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  }
}
