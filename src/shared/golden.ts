import * as fs from 'fs';
import { readNpy } from '../util/npy';
import { referenceBatches, inputFile, outputFile } from './reference';
import { compareOutput, DEFAULT_TOLERANCE } from './compare';
import { compareDetections, describeDetections, isDetectionShape } from '../protocol/detections';
import { encodeInferRequest, decodeInferResponse, HEADER_LENGTH, DecodedTensor } from '../protocol/kserve';
import { httpTransport, type Transport } from '../protocol/kserve-client';
import { KServeGrpcClient, type InputTensor } from '../protocol/kserve-grpc-client';
import type { Reply } from '../util/http';

// the transport golden requests travel by (src/protocol/kserve-client.ts), for their callers
export type { Reply, Transport };
export { httpTransport };

/**
 * Golden requests over the KServe v2 protocol, shared by smoke (a container on 127.0.0.1) and rollout (a canary
 * behind the Kubernetes API server's service proxy, or a verify URL): the parity reference input must reproduce
 * Caffe's reference output within tolerance. How they travel is a GoldenTarget: HTTP (a Transport) or gRPC (a
 * KServeGrpcClient); what is checked is the same.
 */

/** Where golden requests go: KServe v2 over HTTP (a Transport) or over gRPC (src/protocol/kserve-grpc-client.ts). */
export type GoldenTarget = Transport | KServeGrpcClient;

/** A golden request kept to be sent again (the latency measurement, the bake's ticks): its tensor, and its HTTP body. */
export interface GoldenRequest {
  body: Buffer;
  headerLength: number;
  input: InputTensor;
}

/** the request for one input tensor, every output asked for in binary */
export function goldenRequest(input: InputTensor): GoldenRequest {
  return { ...encodeInferRequest([input], { binaryOutputs: true }), input };
}

/**
 * Send one golden request: the decoded outputs, or why there are none, worded by who said it — the server's answer
 * (an HTTP status and body, a gRPC status and details) or no answer at all (the connection, the deadline).
 */
export async function sendGolden(
  t: GoldenTarget,
  modelName: string,
  req: GoldenRequest,
  headers: Record<string, string> = {},
): Promise<{ outputs: DecodedTensor[]; failure?: undefined } | { failure: string }> {
  if (t instanceof KServeGrpcClient) {
    try {
      return await t.infer(modelName, [req.input], { headers });
    } catch (e) {
      return { failure: `over gRPC: ${(e as Error).message}` };
    }
  }
  const r = await t(`/v2/models/${modelName}/infer`, {
    body: req.body,
    headers: { ...headers, [HEADER_LENGTH]: req.headerLength, 'content-type': 'application/octet-stream' },
  });
  if (r.status !== 200) return { failure: `answered HTTP ${r.status}: ${r.body.toString().slice(0, 300)}` };
  return decodeInferResponse(r.body, r.headers[HEADER_LENGTH] === undefined ? undefined : Number(r.headers[HEADER_LENGTH]));
}

export interface GoldenResult {
  /** one markdown table row per compared output */
  rows: string[];
  failures: string[];
  /** the batch-1 request, reused for latency measurements and the bake */
  batch1?: GoldenRequest;
  compared: number;
}

export const GOLDEN_TABLE_HEAD = ['| batch | output | max \\|Δ\\| | limit | top-5 | result |', '|---:|---|---:|---:|:---:|:---:|'];

/**
 * Send every reference batch once and compare each output with Caffe's: a tensor within `tolerance` and with the same
 * top-5; a detection table (reference and answer both [1, 1, D, 7]) as a set of detections (compareDetections: the
 * same count per image, each reference detection matched by one of the same label, score and box within
 * DETECTION_TOLERANCE), its table row giving the count in the top-5 column.
 */
export async function goldenRequests(
  t: GoldenTarget,
  golden: { reference: string; modelName: string; inputName: string; singleInput: boolean; tolerance: number; headers?: Record<string, string> },
): Promise<GoldenResult> {
  const res: GoldenResult = { rows: [], failures: [], compared: 0 };
  for (const b of referenceBatches(golden.reference)) {
    const x = readNpy(inputFile(golden.reference, b, golden.inputName, golden.singleInput));
    const req = goldenRequest({ name: golden.inputName, shape: x.shape, data: x.data });
    if (b === 1) res.batch1 = req;
    const dec = await sendGolden(t, golden.modelName, req, golden.headers);
    if (dec.failure !== undefined) {
      res.failures.push(`golden request at batch ${b} ${dec.failure}`);
      continue;
    }
    for (const out of dec.outputs) {
      const refFile = outputFile(golden.reference, b, out.name);
      if (!fs.existsSync(refFile)) continue;
      const ref = readNpy(refFile);
      res.compared++;
      if (isDetectionShape(out.shape) && isDetectionShape(ref.shape)) {
        const d = compareDetections(out.name, b, out, ref);
        const got = d.counts.reduce((a, x) => a + x.got, 0);
        const want = d.counts.reduce((a, x) => a + x.reference, 0);
        res.rows.push(
          `| ${b} | ${out.name} | ${Math.max(d.maxScoreDiff, d.maxBoxDiff).toExponential(2)} | ${Math.max(d.tolerance.score, d.tolerance.box).toExponential(2)} | ${got === want && d.unmatched === 0 ? `${got} detections` : `${got} detections, expected ${want}`} | ${d.pass ? 'pass' : '**fail**'} |`,
        );
        if (!d.pass) res.failures.push(`output "${out.name}" at batch ${b} differs from the reference: ${describeDetections(d)}`);
        continue;
      }
      const c = compareOutput(out.name, b, out, ref, { ...DEFAULT_TOLERANCE, maxAbsDiff: golden.tolerance });
      const mismatches = c.topK.flatMap((tk, n) =>
        tk.onnx.join() === tk.reference.join() ? [] : [`item ${n}: top-5 ${JSON.stringify(tk.onnx)}, expected ${JSON.stringify(tk.reference)}`],
      );
      res.rows.push(
        `| ${b} | ${out.name} | ${c.maxAbsDiff.toExponential(2)} | ${c.limit.toExponential(2)} | ${c.topKMatch ? 'same' : 'differs'} | ${c.pass ? 'pass' : '**fail**'} |`,
      );
      if (!c.pass)
        res.failures.push(
          `output "${out.name}" at batch ${b} differs from the reference: max |Δ| ${c.maxAbsDiff.toExponential(3)} > ${c.limit.toExponential(3)}${c.topK.length === 0 ? ` (shape [${out.shape.join(', ')}])` : ''}${mismatches.length ? `; ${mismatches.join('; ')}` : ''}`,
        );
    }
  }
  if (res.compared === 0 && res.failures.length === 0)
    res.failures.push(`no output of the model matched a reference file output_b<N>__<blob>.npy in ${golden.reference}`);
  return res;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * Send `requests` copies of one request from `concurrency` workers; latencies in ms, sorted. Over HTTP only the status
 * is read (the body is not decoded: the time is the server's and the wire's); over gRPC the answer is decoded.
 */
export async function measureLatency(
  t: GoldenTarget,
  modelName: string,
  req: GoldenRequest,
  requests: number,
  concurrency: number,
  headers: Record<string, string> = {},
): Promise<{ sorted: number[]; errors: number; wallS: number; firstError?: string }> {
  const lat: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const send = async (): Promise<string | undefined> => {
    if (t instanceof KServeGrpcClient) return (await sendGolden(t, modelName, req, headers)).failure;
    const r = await t(`/v2/models/${modelName}/infer`, { body: req.body, headers: { ...headers, [HEADER_LENGTH]: req.headerLength } });
    return r.status === 200 ? undefined : `HTTP ${r.status}: ${r.body.toString().slice(0, 200)}`;
  };
  const worker = async () => {
    while (next < requests) {
      next++;
      const s = process.hrtime.bigint();
      const failure = await send();
      lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      if (failure !== undefined) {
        errors++;
        firstError ??= failure;
      }
    }
  };
  const w0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallS = Number(process.hrtime.bigint() - w0) / 1e9;
  lat.sort((a, b) => a - b);
  return { sorted: lat, errors, wallS, firstError };
}
