import { goldenRequests, measureLatency, percentile, GoldenTarget, GOLDEN_TABLE_HEAD } from '../../shared/golden';
import { KServeGrpcClient, KServeGrpcError } from '../../protocol/kserve-grpc-client';
import { status as grpcStatus } from '@grpc/grpc-js';
import { GateFailure, sleep } from '../health';
import type { Gate, GateContext, GateResult } from './gate';

/** What the golden requests send and allow: the model, the reference and its tolerance, the latency sample and limit. */
export interface GoldenSettings {
  modelName: string;
  /** the Caffe reference directory; none: only the model's metadata is read */
  reference?: string;
  tolerance: number;
  /** sent as a bearer token when set */
  apiKey: string;
  /** requests timed for the latency p95 (0: none) */
  verifyRequests: number;
  /** 0: no limit */
  maxLatencyMs: number;
}

export const authorization = (apiKey: string): Record<string, string> => (apiKey ? { authorization: `Bearer ${apiKey}` } : {});

/**
 * The golden gate: the release's Service answers the model's metadata, then every reference batch within tolerance
 * of Caffe's outputs, then `verifyRequests` timed requests with a p95 within max-latency-ms. The batch-1 request goes
 * on to the bake, which repeats it.
 */
export function goldenGate(name: string, settings: GoldenSettings): Gate {
  return { gate: 'golden', name, run: (ctx) => sendGoldenRequests(ctx, settings) };
}

async function sendGoldenRequests(ctx: GateContext, s: GoldenSettings): Promise<GateResult> {
  const service = ctx.release.service;
  const transport = ctx.transport(service);
  const headers = authorization(s.apiKey);
  const meta = await modelMetadata(transport, service, s.modelName, headers, ctx.signal);
  if (!s.reference) return { passes: true };
  const res = await goldenRequests(transport, {
    reference: s.reference,
    modelName: s.modelName,
    inputName: meta.inputs![0].name,
    singleInput: meta.inputs!.length === 1,
    tolerance: s.tolerance,
    headers,
  });
  const table = [...GOLDEN_TABLE_HEAD, ...res.rows];
  ctx.observed({ evidence: table });
  if (res.failures.length) throw new GateFailure(`golden requests to ${service}: ${res.failures[0]}`, [...res.failures, ...table]);
  let p95: number | undefined;
  if (res.batch1 && s.verifyRequests > 0) {
    const m = await measureLatency(transport, s.modelName, res.batch1, s.verifyRequests, 1, headers);
    p95 = percentile(m.sorted, 95);
    ctx.observed({ latencyP95Ms: p95 });
    if (m.errors) throw new GateFailure(`${m.errors} of ${s.verifyRequests} golden requests to ${service} failed: ${m.firstError}`);
    if (s.maxLatencyMs > 0 && p95 > s.maxLatencyMs)
      throw new GateFailure(
        `golden requests to ${service}: latency p95 ${p95.toFixed(1)} ms > max-latency-ms ${s.maxLatencyMs} (p50 ${percentile(m.sorted, 50).toFixed(1)} ms, ${s.verifyRequests} requests)`,
      );
  }
  const latency =
    p95 !== undefined ? `; p95 ${p95.toFixed(1)} ms over ${s.verifyRequests} requests${s.maxLatencyMs > 0 ? ` (limit ${s.maxLatencyMs} ms)` : ''}` : '';
  return { passes: true, detail: `${res.compared} outputs match the reference${latency}`, evidence: table, found: { goldenRequest: res.batch1 } };
}

/**
 * The model's metadata from `service`; the proxy answers 503 until the Service's endpoints catch up with the pods'
 * readiness (over gRPC: no answer yet, or UNAVAILABLE, from what is in front of the canary).
 */
async function modelMetadata(
  transport: GoldenTarget,
  service: string,
  modelName: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<{ inputs?: { name: string }[] }> {
  if (transport instanceof KServeGrpcClient) {
    for (let i = 0; ; i++) {
      try {
        return await transport.modelMetadata(modelName, { headers });
      } catch (e) {
        const retry = e instanceof KServeGrpcError && (e.source !== 'server' || e.code === grpcStatus.UNAVAILABLE);
        if (i >= 20 || !retry) throw new GateFailure(`model metadata from ${service} over gRPC: ${(e as Error).message}`);
      }
      await sleep(500, signal);
    }
  }
  for (let i = 0; ; i++) {
    const r = await transport(`/v2/models/${modelName}`, { headers, timeoutMs: 10_000 }).catch((e: Error) => ({
      status: 0,
      body: Buffer.from(e.message),
      headers: {},
    }));
    if (r.status === 200) return JSON.parse(r.body.toString()) as { inputs?: { name: string }[] };
    if (i >= 20 || (r.status >= 400 && r.status < 500 && r.status !== 404))
      throw new GateFailure(`model metadata from ${service}: HTTP ${r.status}: ${r.body.toString().slice(0, 300)}`);
    await sleep(500, signal);
  }
}
