import { execFile, execFileSync, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { REPO } from './caffe';
import { pythonVenv } from './venv';

/**
 * The lab's real Triton Inference Server (test/triton-lab/README.md): the image, a running container, and Triton's own
 * Python client (tritonclient) in a host venv. Needs the lab's Docker engine and registry (lab/up.sh docker).
 */

const run = promisify(execFile);

export const TRITON_LAB_IMAGE = `${process.env.LAB_REGISTRY ?? '127.0.0.1:5000'}/local/tritonserver:24.10-pytriton`;
/** the CMD a product image derived from the Triton image carries */
export const TRITON_CMD = ['tritonserver', '--model-repository=/models', '--http-port=8000', '--grpc-port=8001', '--metrics-port=8002'];

let built: Promise<string> | undefined;

/** Build (or find in the registry: the tag is a hash of the inputs) and push the image; resolves with its hash-tagged reference. */
export function buildTritonLabImage(): Promise<string> {
  built ??= run('bash', [path.join(REPO, 'test/triton-lab/build.sh')], { cwd: REPO, maxBuffer: 64 * 2 ** 20 }).then(
    (r) => r.stdout.trim().split('\n').pop()!,
    (e: Error & { stderr?: string }) => {
      built = undefined;
      throw new Error(`test/triton-lab/build.sh failed: ${e.message}\n${(e.stderr ?? '').slice(-3000)}`);
    },
  );
  return built;
}

export interface RunningTriton {
  /** http://127.0.0.1:<port published for 8000> */
  url: string;
  /** 127.0.0.1:<port published for 8001>: KServe v2 over gRPC (a grpc-js or tritonclient target) */
  grpcTarget: string;
  /** http://127.0.0.1:<port published for 8002>/metrics */
  metricsUrl: string;
  container: string;
  /** the derived image: FROM the Triton image, COPY <repo> /models, CMD TRITON_CMD */
  image: string;
  logs(): string;
  /** remove the container and the derived image */
  stop(): void;
}

export interface StartTritonOptions {
  /** `docker run --user` (the derived image runs as root otherwise) */
  user?: string;
  /** arguments that replace TRITON_CMD's tail (after `tritonserver`), e.g. to add --exit-on-error=false */
  args?: string[];
  /** wait for GET /v2/health/ready (default); false: only for /v2/health/live */
  waitReady?: boolean;
  timeoutMs?: number;
}

/**
 * Run Triton on `modelRepoDir` the way a product image would: a derived image (COPY of the repository to /models,
 * CMD tritonserver ...), ports 8000, 8001 and 8002 published on 127.0.0.1. Resolves when it is ready (or live); rejects with
 * its logs when it exits or the timeout passes.
 */
export async function startTriton(modelRepoDir: string, o: StartTritonOptions = {}): Promise<RunningTriton> {
  const base = await buildTritonLabImage();
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'triton-derived-'));
  const id = crypto.randomBytes(4).toString('hex');
  const image = `modelship-test/triton-models:${process.pid}-${id}`;
  const container = `triton-lab-${process.pid}-${id}`;
  try {
    fs.cpSync(modelRepoDir, path.join(ctx, 'models'), { recursive: true, dereference: true });
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY models/ /models/\nCMD ${JSON.stringify(TRITON_CMD)}\n`);
    await run('docker', ['build', '-q', '--network', 'none', '-t', image, ctx], { maxBuffer: 16 * 2 ** 20 });
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
  const args = ['run', '-d', '--name', container, '-p', '127.0.0.1::8000', '-p', '127.0.0.1::8001', '-p', '127.0.0.1::8002'];
  if (o.user) args.push('--user', o.user);
  args.push(image);
  if (o.args) args.push('tritonserver', ...o.args);
  await run('docker', args);
  const port = (p: number) =>
    execFileSync('docker', ['port', container, `${p}/tcp`], { encoding: 'utf8' })
      .trim()
      .split('\n')[0]
      .split(':')
      .pop();
  // Triton logs to stderr, the wrapper's line too
  const logs = () => {
    const r = spawnSync('docker', ['logs', container], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`;
  };
  const stop = () => {
    spawnSync('docker', ['rm', '-f', container], { stdio: 'ignore' });
    spawnSync('docker', ['rmi', '-f', image], { stdio: 'ignore' });
  };
  const t: RunningTriton = { url: '', grpcTarget: '', metricsUrl: '', container, image, logs, stop };
  try {
    t.url = `http://127.0.0.1:${port(8000)}`;
    t.grpcTarget = `127.0.0.1:${port(8001)}`;
    t.metricsUrl = `http://127.0.0.1:${port(8002)}/metrics`;
    const deadline = Date.now() + (o.timeoutMs ?? 90_000);
    const probe = o.waitReady === false ? '/v2/health/live' : '/v2/health/ready';
    for (;;) {
      const state = execFileSync('docker', ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', container], { encoding: 'utf8' }).trim();
      if (!state.startsWith('running')) throw new Error(`the Triton container stopped (${state})`);
      // (a probe the published port accepts but never answers must not hold the loop: undici would wait 300 s)
      const ok = await fetch(t.url + probe, { signal: AbortSignal.timeout(5000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return t;
      if (Date.now() > deadline) throw new Error(`Triton not ${o.waitReady === false ? 'live' : 'ready'} after ${o.timeoutMs ?? 90_000} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (e) {
    const l = logs();
    stop();
    throw new Error(`${(e as Error).message}; its logs:\n${l.slice(-6000)}`);
  }
}

/**
 * The Python of a venv with Triton's own client (test/requirements-triton-client.txt), built once in .venv-triton-client/ at
 * the repository root (rebuilt when the requirements change; pip reaches PyPI the first time).
 */
export function tritonClientPython(): string {
  return pythonVenv('triton-client', 'import tritonclient.http, tritonclient.grpc');
}

/**
 * A short tritonclient.http session against `url`: is_server_live, is_server_ready, is_model_ready,
 * get_server_metadata, get_model_metadata, then infer on the reference inputs input_b{1,2}.npy with binary_data true
 * and false, each compared with output_b<N>__<output>.npy. Every step's result or exception is reported (JSON).
 */
export const TRITON_CLIENT_CHECK = `
import json, sys, traceback
import numpy as np
import tritonclient.http as httpclient

url, model, ref = sys.argv[1], sys.argv[2], sys.argv[3]
headers = json.loads(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None
report = {'url': url, 'model': model, 'steps': {}, 'errors': []}

def step(name, fn):
    try:
        v = fn()
        report['steps'][name] = v
        return v
    except Exception as e:
        report['errors'].append({'step': name, 'type': type(e).__name__, 'message': str(e), 'trace': traceback.format_exc()[-2000:]})
        return None

c = httpclient.InferenceServerClient(url=url.split('://', 1)[-1])
step('is_server_live', lambda: c.is_server_live(headers=headers))
step('is_server_ready', lambda: c.is_server_ready(headers=headers))
step('is_model_ready', lambda: c.is_model_ready(model, headers=headers))
step('get_server_metadata', lambda: c.get_server_metadata(headers=headers))
meta = step('get_model_metadata', lambda: c.get_model_metadata(model, headers=headers))
inp = meta['inputs'][0]['name'] if meta else 'data'
out = meta['outputs'][0]['name'] if meta else 'prob'
for b in (1, 2):
    x = np.load('%s/input_b%d.npy' % (ref, b)).astype(np.float32)
    y = np.load('%s/output_b%d__%s.npy' % (ref, b, out.replace('/', '_')))
    for binary in (True, False):
        def infer():
            i = httpclient.InferInput(inp, list(x.shape), 'FP32')
            i.set_data_from_numpy(x, binary_data=binary)
            o = httpclient.InferRequestedOutput(out, binary_data=binary)
            r = c.infer(model, [i], outputs=[o], headers=headers)
            got = r.as_numpy(out)
            if got is None:
                raise RuntimeError('as_numpy(%r) is None; response %s' % (out, json.dumps(r.get_response())[:500]))
            return {'shape': list(got.shape), 'dtype': str(got.dtype),
                    'max_abs_diff': float(np.max(np.abs(got.astype(np.float64) - y.astype(np.float64)))) if got.shape == y.shape else None,
                    'top5': np.argsort(-got.reshape(got.shape[0], -1), axis=1, kind='stable')[:, :5].tolist(),
                    'ref_top5': np.argsort(-y.reshape(y.shape[0], -1), axis=1, kind='stable')[:, :5].tolist()}
        step('infer_b%d_%s' % (b, 'binary' if binary else 'json'), infer)
c.close()
print(json.dumps(report))
`;

export interface TritonClientReport {
  url: string;
  model: string;
  steps: Record<string, any>;
  errors: { step: string; type: string; message: string; trace: string }[];
}

/** Run TRITON_CLIENT_CHECK with the venv's Python. */
export async function tritonClientCheck(url: string, model: string, reference: string, headers?: Record<string, string>): Promise<TritonClientReport> {
  const r = await run(tritonClientPython(), ['-c', TRITON_CLIENT_CHECK, url, model, reference, headers ? JSON.stringify(headers) : ''], {
    maxBuffer: 16 * 2 ** 20,
    timeout: 120_000,
  });
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/**
 * Triton's extensions through tritonclient.http against `url`: get_model_config, get_model_repository_index and
 * get_inference_statistics (the model's and all models') around inferences of the reference input input_b1.npy
 * repeated to batch sizes 1, 4, `maxBatch` and `maxBatch` + 1, one at a time (each its own execution), each compared
 * with output_b1__<output>.npy repeated; a refused one reports the client's exception (status and message).
 */
export const TRITON_EXTENSIONS_CHECK = `
import json, sys, time, traceback
import numpy as np
import tritonclient.http as httpclient
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

url, model, ref, max_batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
protocol = sys.argv[5] if len(sys.argv) > 5 else 'http'
report = {'url': url, 'model': model, 'protocol': protocol, 'steps': {}, 'errors': []}

def to_dict(msg):
    # a gRPC answer as Triton's HTTP JSON reads: every field (defaults too), the proto's names, enums by name, int64s as
    # numbers (protobuf's own JSON writes them as strings and leaves defaults out)
    out = {}
    for f in msg.DESCRIPTOR.fields:
        v = getattr(msg, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name['value']
            out[f.name] = {k: value(vf, x) for k, x in v.items()}
        elif f.label == f.LABEL_REPEATED:
            out[f.name] = [value(f, x) for x in v]
        elif f.message_type is not None and not msg.HasField(f.name):
            continue
        else:
            out[f.name] = value(f, v)
    return out

def value(f, v):
    if f.message_type is not None:
        return to_dict(v)
    if f.enum_type is not None:
        return f.enum_type.values_by_number[v].name
    return v

class GrpcAsHttp:
    # tritonclient.grpc's calls, answering what tritonclient.http's answer
    def __init__(self, target):
        self.c = grpcclient.InferenceServerClient(url=target)
    def get_model_config(self, model, model_version=''):
        return to_dict(self.c.get_model_config(model, model_version=model_version).config)
    def get_model_repository_index(self):
        return [{k: v for k, v in to_dict(m).items() if v != ''} for m in self.c.get_model_repository_index().models]
    def get_inference_statistics(self, model_name='', model_version=''):
        return to_dict(self.c.get_inference_statistics(model_name, model_version=model_version))
    def infer(self, model, inputs, outputs):
        return self.c.infer(model, inputs, outputs=outputs)
    def close(self):
        self.c.close()

client = grpcclient if protocol == 'grpc' else httpclient

def step(name, fn):
    try:
        v = fn()
        report['steps'][name] = v
        return v
    except Exception as e:
        report['errors'].append({'step': name, 'type': type(e).__name__, 'message': str(e), 'trace': traceback.format_exc()[-2000:]})
        return None

c = GrpcAsHttp(url) if protocol == 'grpc' else httpclient.InferenceServerClient(url=url.split('://', 1)[-1])
config = step('get_model_config', lambda: c.get_model_config(model))
step('get_model_config_v1', lambda: c.get_model_config(model, model_version='1'))
step('get_model_repository_index', lambda: c.get_model_repository_index())
step('stats_before', lambda: c.get_inference_statistics(model))
inp = config['input'][0]['name'] if config else 'data'
out = config['output'][0]['name'] if config else 'prob'
x1 = np.load('%s/input_b1.npy' % ref).astype(np.float32)
y1 = np.load('%s/output_b1__%s.npy' % (ref, out.replace('/', '_')))
for b in (1, 4, max_batch, max_batch + 1):
    x = np.repeat(x1, b, axis=0)
    y = np.repeat(y1, b, axis=0)
    def infer():
        i = client.InferInput(inp, list(x.shape), 'FP32')
        if protocol == 'grpc':
            i.set_data_from_numpy(x)
            requested = client.InferRequestedOutput(out)
        else:
            i.set_data_from_numpy(x, binary_data=True)
            requested = client.InferRequestedOutput(out, binary_data=True)
        try:
            got = c.infer(model, [i], outputs=[requested]).as_numpy(out)
        except InferenceServerException as e:
            return {'refused': {'status': e.status(), 'message': e.message()}}
        return {'shape': list(got.shape), 'max_abs_diff': float(np.max(np.abs(got.astype(np.float64) - y.astype(np.float64))))}
    step('infer_b%d' % b, infer)
# (Triton counts a request when it releases it, which can be just after the response: read until the figures settle)
after = step('stats_after', lambda: c.get_inference_statistics(model))
for _ in range(20):
    time.sleep(0.1)
    again = step('stats_after', lambda: c.get_inference_statistics(model))
    if again == after:
        break
    after = again
step('stats_after_v1', lambda: c.get_inference_statistics(model, model_version='1'))
step('stats_all', lambda: c.get_inference_statistics())
c.close()
print(json.dumps(report))
`;

/** Run TRITON_EXTENSIONS_CHECK with the venv's Python, over HTTP (url: http://host:port) or gRPC (url: host:port). */
export async function tritonExtensionsCheck(
  url: string,
  model: string,
  reference: string,
  maxBatch: number,
  protocol: 'http' | 'grpc' = 'http',
): Promise<TritonClientReport> {
  const r = await run(tritonClientPython(), ['-c', TRITON_EXTENSIONS_CHECK, url, model, reference, String(maxBatch), protocol], {
    maxBuffer: 16 * 2 ** 20,
    timeout: 120_000,
  });
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
