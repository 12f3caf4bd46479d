import { execFile, execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import { convertCaffe } from '../src/convert/converter';
import { goldenRequests, httpTransport } from '../src/shared/golden';
import { startServer, DEFAULT_SERVE, RunningServer } from '../src/serve/server';
import { readNpy } from '../src/util/npy';
import { ORACLE, tmpDir } from './helpers/caffe';
import { requireLab, docker } from './helpers/lab';
import {
  buildTritonLabImage,
  startTriton,
  RunningTriton,
  tritonClientCheck,
  tritonClientPython,
  TritonClientReport,
  tritonExtensionsCheck,
} from './helpers/triton-lab';
import { labDescribe } from './helpers/needs';

// The lab's REAL Triton Inference Server 2.51.0 (test/triton-lab/: from PyPI's nvidia-pytriton, laid out like
// nvcr.io/nvidia/tritonserver:24.10-py3) serving what modelship converts, with a config.pbtxt of the form the product
// generates. ONNX models run through the image's python-backend adapter (the wheel has no ONNX Runtime backend); the
// config is Triton's to load and enforce. Both Triton and modelship's own server are then checked with Triton's own
// Python client (tritonclient, in .venv-triton-client/).

const describeLab = labDescribe(['docker', 'registry']);

const LENET = path.join(ORACLE, 'models/lenet');
const GOOGLENET = path.join(ORACLE, 'models/bvlc_googlenet');

function onnxOf(dir: string): Buffer {
  return Buffer.from(
    convertCaffe({
      prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')),
      prototxtFile: 'deploy.prototxt',
      caffemodel: fs.readFileSync(path.join(dir, 'weights.caffemodel')),
      caffemodelFile: 'weights.caffemodel',
    }).onnx,
  );
}

/**
 * config.pbtxt as the product generates it (src/image/triton-config.ts, written here by hand): ONNX Runtime platform,
 * batch dim left out of dims, dynamic batching, one CPU instance.
 */
function configPbtxt(name: string, input: [string, number[]], output: [string, number[]]): string {
  return `# Triton model configuration, written by modelship
name: "${name}"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "${input[0]}"
    data_type: TYPE_FP32
    dims: [ ${input[1].join(', ')} ]
  }
]
output [
  {
    name: "${output[0]}"
    data_type: TYPE_FP32
    dims: [ ${output[1].join(', ')} ]
  }
]
dynamic_batching {
  max_queue_delay_microseconds: 1000
}
instance_group [
  {
    count: 1
    kind: KIND_CPU
  }
]
`;
}

function writeModel(repo: string, name: string, onnx: Buffer, config: string): void {
  fs.mkdirSync(path.join(repo, name, '1'), { recursive: true });
  fs.writeFileSync(path.join(repo, name, '1', 'model.onnx'), onnx);
  fs.writeFileSync(path.join(repo, name, 'config.pbtxt'), config);
}

/** the sum over label sets of `name{model="<model>",...} value` */
function metric(text: string, name: string, model: string): number {
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`).exec(line);
    if (m && m[1].split(',').includes(`model="${model}"`)) {
      sum += Number(m[2]);
      seen = true;
    }
  }
  if (!seen) throw new Error(`no ${name}{model="${model}"} in the metrics`);
  return sum;
}

const getJson = async (url: string) => {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as any };
};
const postJson = async (url: string, body: unknown) => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as any };
};

let image = '';
let lenetOnnx: Buffer;
let triton: RunningTriton;

beforeAll(async () => {
  requireLab();
  expect(fs.existsSync(LENET) && fs.existsSync(GOOGLENET)).toBe(true); // ../shared/caffe-oracle, beside the checkout
  image = await buildTritonLabImage();
  lenetOnnx = onnxOf(LENET);
  const repo = tmpDir('triton-repo-');
  writeModel(repo, 'lenet', lenetOnnx, configPbtxt('lenet', ['data', [1, 28, 28]], ['prob', [10]]));
  writeModel(repo, 'googlenet', onnxOf(GOOGLENET), configPbtxt('googlenet', ['data', [3, 224, 224]], ['prob', [1000]]));
  triton = await startTriton(repo);
}, 600_000);

afterAll(() => triton?.stop());

describeLab('the image looks like nvcr.io/nvidia/tritonserver:24.10-py3 from the outside', () => {
  test('hash-tagged in the registry; ENV versions, PATH, no ENTRYPOINT; tritonserver on PATH, backends in /opt/tritonserver/backends, user triton-server (uid 1000)', () => {
    expect(image).toMatch(/^127\.0\.0\.1:5000\/local\/tritonserver:24\.10-pytriton-[0-9a-f]{16}$/);
    const cfg = JSON.parse(docker(['image', 'inspect', '-f', '{{json .Config}}', image]));
    expect(cfg.Env).toEqual(expect.arrayContaining(['TRITON_SERVER_VERSION=2.51.0', 'NVIDIA_TRITON_SERVER_VERSION=24.10']));
    expect(cfg.Env.find((e: string) => e.startsWith('PATH='))).toMatch(/^PATH=\/opt\/tritonserver\/bin:/);
    expect(cfg.Entrypoint ?? null).toBeNull();
    const out = docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--user',
      '1000',
      image,
      'sh',
      '-c',
      'id -un; id -u; command -v tritonserver; ls /opt/tritonserver/backends /opt/tritonserver/backends/python',
    ]);
    expect(out.split('\n').slice(0, 3)).toEqual(['triton-server', '1000', '/opt/tritonserver/bin/tritonserver']);
    expect(out).toMatch(/^python$/m);
    expect(out).toMatch(/^triton_python_backend_stub$/m);
    expect(out).toMatch(/^libtriton_python\.so$/m);
  });

  test('a second build.sh finds the image in the registry and builds nothing', () => {
    // what it did, from its log and the registry (not from how long it took): no download, no build, no push
    const [repo, tag] = [image.slice(0, image.lastIndexOf(':')), image.slice(image.lastIndexOf(':') + 1)];
    const manifest = () =>
      execFileSync(
        'curl',
        [
          '-sf',
          '-H',
          'Accept: application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json',
          `http://${repo.replace('/', '/v2/')}/manifests/${tag}`,
        ],
        { encoding: 'utf8' },
      );
    const before = manifest();
    const r = spawnSync('bash', ['test/triton-lab/build.sh'], { cwd: path.resolve(__dirname, '..'), encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').pop()).toBe(image);
    expect(r.stderr).toContain(`[triton-lab] registry has ${image}: nothing to build`);
    expect(r.stderr).not.toMatch(/downloading the wheels|apt-get download|building |built and pushed/);
    expect(manifest()).toBe(before);
  });
});

describeLab('the real Triton 2.51.0 serving the generated config', () => {
  test('the wrapper says what it rewrote, and only that', () => {
    const logs = triton.logs();
    for (const m of ['lenet', 'googlenet']) {
      expect(logs).toMatch(
        new RegExp(`model "${m}": config.pbtxt line \`platform: "onnxruntime_onnx"\` replaced by \`backend: "python"\`.*the rest of the config is as written`),
      );
    }
    expect(logs).toMatch(/successfully loaded 'lenet'/);
    expect(logs).toMatch(/modelship onnx adapter: model 'googlenet' version 1: ONNX Runtime 1\.19\.2 \(CPUExecutionProvider\)/);
  });

  test('GET /v2 is Triton 2.51.0', async () => {
    const r = await getJson(`${triton.url}/v2`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'triton', version: '2.51.0' });
    expect(r.body.extensions).toEqual(expect.arrayContaining(['binary_tensor_data', 'model_configuration', 'statistics']));
  });

  test('GET /v2/models/lenet/config is the generated config, as Triton loaded it (backend "python" in place of the ONNX Runtime platform)', async () => {
    const { status, body } = await getJson(`${triton.url}/v2/models/lenet/config`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      name: 'lenet',
      backend: 'python',
      platform: '',
      max_batch_size: 8,
      input: [{ name: 'data', data_type: 'TYPE_FP32', dims: [1, 28, 28] }],
      output: [{ name: 'prob', data_type: 'TYPE_FP32', dims: [10] }],
      dynamic_batching: { max_queue_delay_microseconds: 1000 },
      instance_group: [{ kind: 'KIND_CPU', count: 1 }],
    });
    const meta = await getJson(`${triton.url}/v2/models/lenet`);
    expect(meta.body).toMatchObject({
      name: 'lenet',
      versions: ['1'],
      inputs: [{ name: 'data', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
      outputs: [{ name: 'prob', datatype: 'FP32', shape: [-1, 10] }],
    });
  });

  test.each([
    ['lenet', LENET],
    ['googlenet', GOOGLENET],
  ])('golden requests on %s reproduce real Caffe at batch 1 and 2 within 1e-5', async (model, reference) => {
    const g = await goldenRequests(httpTransport(triton.url), { reference, modelName: model, inputName: 'data', singleInput: true, tolerance: 1e-5 });
    expect(g.failures).toEqual([]);
    expect(g.compared).toBe(2);
    expect(g.rows.map((r) => r.split('|')[1].trim())).toEqual(['1', '2']);
  });

  test('Triton enforces the config on requests: a wrong shape and a batch over max_batch_size are 400s', async () => {
    const zeros = (shape: number[]) => ({ name: 'data', datatype: 'FP32', shape, data: new Array(shape.reduce((a, b) => a * b)).fill(0) });
    const shape = await postJson(`${triton.url}/v2/models/lenet/infer`, { inputs: [zeros([1, 1, 28, 29])] });
    expect(shape.status).toBe(400);
    expect(shape.body.error).toMatch(/unexpected shape for input 'data' for model 'lenet'\. Expected \[-1,1,28,28\], got \[1,1,28,29\]/);
    const batch = await postJson(`${triton.url}/v2/models/lenet/infer`, { inputs: [zeros([9, 1, 28, 28])] });
    expect(batch.status).toBe(400);
    expect(batch.body.error).toMatch(/batch-size must be <= 8/);
    const dtype = await postJson(`${triton.url}/v2/models/lenet/infer`, { inputs: [{ ...zeros([1, 1, 28, 28]), datatype: 'FP64' }] });
    expect(dtype.status).toBe(400);
    expect(dtype.body.error).toMatch(/data-type is 'FP64', but model 'lenet' expects 'FP32'/);
  });

  test('the dynamic batcher gathers concurrent requests into one execution; the adapter splits the results back right', async () => {
    const x = readNpy(path.join(LENET, 'input_b2.npy'));
    const y = readNpy(path.join(LENET, 'output_b2__prob.npy'));
    const item = (n: number) => Array.from(x.data.subarray(n * 784, (n + 1) * 784));
    const stats = async () =>
      (await getJson(`${triton.url}/v2/models/lenet/stats`)).body.model_stats[0] as { inference_count: number; execution_count: number };
    const s0 = await stats();
    const replies = await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        postJson(`${triton.url}/v2/models/lenet/infer`, { inputs: [{ name: 'data', datatype: 'FP32', shape: [1, 1, 28, 28], data: item(i % 2) }] }),
      ),
    );
    replies.forEach((r, i) => {
      expect(r.status).toBe(200);
      const got: number[] = r.body.outputs[0].data;
      const want = Array.from(y.data.subarray((i % 2) * 10, (i % 2) * 10 + 10));
      expect(Math.max(...got.map((v, k) => Math.abs(v - want[k])))).toBeLessThanOrEqual(1e-5);
    });
    const s1 = await stats();
    expect(s1.inference_count - s0.inference_count).toBe(32);
    // fewer executions than requests: the batcher merged some (each execution runs ONNX Runtime once)
    expect(s1.execution_count - s0.execution_count).toBeLessThan(32);
  });

  test('metrics on :8002: nv_inference_request_success/failure/duration_us and nv_inference_count count the requests', async () => {
    const read = async () => {
      const text = await (await fetch(triton.metricsUrl)).text();
      const names = ['nv_inference_request_success', 'nv_inference_request_failure', 'nv_inference_request_duration_us', 'nv_inference_count'] as const;
      return Object.fromEntries(names.map((n) => [n, metric(text, n, 'lenet')])) as Record<(typeof names)[number], number>;
    };
    const before = await read();
    const g = await goldenRequests(httpTransport(triton.url), { reference: LENET, modelName: 'lenet', inputName: 'data', singleInput: true, tolerance: 1e-5 });
    expect(g.failures).toEqual([]);
    let after = await read();
    for (let i = 0; i < 20 && after.nv_inference_request_success < before.nv_inference_request_success + 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await read();
    }
    expect(after.nv_inference_request_success).toBe(before.nv_inference_request_success + 2);
    expect(after.nv_inference_count).toBe(before.nv_inference_count + 3); // batch 1 + batch 2
    expect(after.nv_inference_request_duration_us).toBeGreaterThan(before.nv_inference_request_duration_us);
    expect(after.nv_inference_request_failure).toBe(before.nv_inference_request_failure);
  });
});

describeLab('a config that does not fit the model is refused', () => {
  test("a wrong dim: the model is not ready and the log says why (as Triton's ONNX Runtime backend would); run as uid 1000", async () => {
    const repo = tmpDir('triton-bad-');
    writeModel(repo, 'lenet', lenetOnnx, configPbtxt('lenet', ['data', [1, 28, 29]], ['prob', [10]]));
    const bad = await startTriton(repo, {
      user: '1000',
      waitReady: false,
      args: ['--model-repository=/models', '--http-port=8000', '--grpc-port=8001', '--metrics-port=8002', '--exit-on-error=false'],
    });
    try {
      expect((await fetch(`${bad.url}/v2/models/lenet/ready`)).status).toBe(400);
      expect((await fetch(`${bad.url}/v2/health/ready`)).status).toBe(400);
      const logs = bad.logs();
      expect(logs).toMatch(
        /failed to load 'lenet' version 1: .*model 'lenet', tensor 'data': the model expects 4 dimensions \(shape \[-1,1,28,28\]\) but the model configuration specifies 4 dimensions \(an initial batch dimension because max_batch_size > 0 followed by the explicit tensor shape, making complete shape \[-1,1,28,29\]\)/,
      );
      const index = await postJson(`${bad.url}/v2/repository/index`, {});
      expect(index.body).toEqual([expect.objectContaining({ name: 'lenet', state: 'UNAVAILABLE' })]);
    } finally {
      bad.stop();
    }
  }, 180_000);
});

describeLab("Triton's own Python client (tritonclient.http, tritonclient.grpc) against both runtimes", () => {
  let ms: RunningServer;
  beforeAll(async () => {
    tritonClientPython(); // the venv, once
    const model = path.join(tmpDir(), 'lenet.onnx');
    fs.writeFileSync(model, lenetOnnx);
    // batching as the lab's config.pbtxt for Triton says (max_batch_size 8, max_queue_delay_microseconds 1000)
    ms = await startServer({
      ...DEFAULT_SERVE,
      host: '127.0.0.1',
      port: 0,
      modelPath: model,
      modelName: 'lenet',
      maxBatchSize: 8,
      maxQueueDelayMs: 1,
      grpcPort: 0,
      log: () => undefined,
    });
  }, 600_000);
  afterAll(() => ms?.drain());

  const expectClean = (r: TritonClientReport, platform: string, serverName: string) => {
    // on failure, the report names the step, the exception and the trace
    expect(r.errors).toEqual([]);
    expect(r.steps).toMatchObject({ is_server_live: true, is_server_ready: true, is_model_ready: true, get_server_metadata: { name: serverName } });
    expect(r.steps.get_model_metadata).toMatchObject({
      name: 'lenet',
      platform,
      inputs: [{ name: 'data', datatype: 'FP32', shape: [-1, 1, 28, 28] }],
      outputs: [{ name: 'prob', datatype: 'FP32', shape: [-1, 10] }],
    });
    for (const b of [1, 2]) {
      for (const enc of ['binary', 'json']) {
        const s = r.steps[`infer_b${b}_${enc}`];
        expect({ step: `infer_b${b}_${enc}`, shape: s.shape, dtype: s.dtype, top5: s.top5 }).toEqual({
          step: `infer_b${b}_${enc}`,
          shape: [b, 10],
          dtype: 'float32',
          top5: s.ref_top5,
        });
        expect(s.max_abs_diff).toBeLessThanOrEqual(1e-5);
      }
    }
  };

  test('the Triton container', async () => {
    expectClean(await tritonClientCheck(triton.url, 'lenet', LENET), 'python', 'triton');
  });

  test("modelship's server (from source)", async () => {
    expectClean(await tritonClientCheck(ms.url, 'lenet', LENET), 'onnxruntime_onnx', 'modelship');
  });

  // tritonclient's request_compression_algorithm ("gzip" / "deflate") sends the whole body compressed with
  // Content-Encoding, Inference-Header-Content-Length being the uncompressed JSON's length: Triton inflates it, and so
  // does modelship's server (it used to answer 400 "malformed JSON in the request").
  const compressed = (url: string) => promisify(execFile)(tritonClientPython(), ['-c', COMPRESSED_REQUESTS, url, LENET]);

  test('the Triton container inflates gzip / deflate request bodies', async () => {
    await compressed(triton.url);
  });

  test('modelship: a request body with Content-Encoding: gzip / deflate (tritonclient request_compression_algorithm)', async () => {
    await compressed(ms.url);
  });

  // Triton's model-configuration and statistics extensions and the repository index, through tritonclient
  // (get_model_config, get_inference_statistics, get_model_repository_index), around inferences at batch 1, 4, the
  // max (8) and one over it, which both refuse. Each runtime's session runs once, the tests below read it.
  const sessions = new Map<string, Promise<TritonClientReport>>();
  const extensions = (runtime: 'triton' | 'modelship', protocol: 'http' | 'grpc' = 'http') => {
    const key = `${runtime} ${protocol}`;
    const url = protocol === 'grpc' ? (runtime === 'triton' ? triton.grpcTarget : `127.0.0.1:${ms.grpcPort}`) : runtime === 'triton' ? triton.url : ms.url;
    if (!sessions.has(key)) sessions.set(key, tritonExtensionsCheck(url, 'lenet', LENET, 8, protocol));
    return sessions.get(key)!;
  };

  type Duration = { count: number; ns: number };
  const delta = (a: Duration, b: Duration): Duration => ({ count: a.count - b.count, ns: a.ns - b.ns });

  /** What both runtimes answer alike; the change in the model's failure count, which is where they differ. */
  const expectExtensions = (r: TritonClientReport, refusedStatus = '400'): number => {
    // on failure, the report names the step, the exception and the trace
    expect(r.errors).toEqual([]);
    const { steps } = r;
    expect(steps.get_model_config).toMatchObject({
      name: 'lenet',
      max_batch_size: 8,
      input: [{ name: 'data', data_type: 'TYPE_FP32', format: 'FORMAT_NONE', dims: [1, 28, 28] }],
      output: [{ name: 'prob', data_type: 'TYPE_FP32', dims: [10] }],
      dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: 1000 },
      instance_group: [{ name: 'lenet_0', kind: 'KIND_CPU', count: 1 }],
      version_policy: { latest: { num_versions: 1 } },
    });
    expect(steps.get_model_config_v1).toEqual(steps.get_model_config);
    expect(steps.get_model_repository_index).toContainEqual({ name: 'lenet', version: '1', state: 'READY' });
    for (const b of [1, 4, 8]) {
      expect({ b, shape: steps[`infer_b${b}`].shape }).toEqual({ b, shape: [b, 10] });
      expect(steps[`infer_b${b}`].max_abs_diff).toBeLessThanOrEqual(1e-5);
    }
    expect(steps.infer_b9).toEqual({
      refused: { status: refusedStatus, message: expect.stringMatching(/inference request batch-size must be <= 8 for 'lenet'/) },
    });
    const [s0] = steps.stats_before.model_stats;
    const [s1] = steps.stats_after.model_stats;
    expect(s1).toMatchObject({ name: 'lenet', version: '1' });
    expect(steps.stats_after_v1).toEqual(steps.stats_after);
    expect(steps.stats_all.model_stats).toContainEqual(s1);
    // three requests, each its own execution (one at a time): 13 items, one batch of each size
    expect([s1.inference_count - s0.inference_count, s1.execution_count - s0.execution_count]).toEqual([13, 3]);
    const d = Object.fromEntries(Object.keys(s1.inference_stats).map((k) => [k, delta(s1.inference_stats[k], s0.inference_stats[k])]));
    for (const k of ['success', 'queue', 'compute_input', 'compute_infer', 'compute_output']) {
      expect({ k, count: d[k].count }).toEqual({ k, count: 3 });
      expect(d[k].ns).toBeGreaterThan(0);
    }
    expect(d.success.ns).toBeGreaterThanOrEqual(d.queue.ns + d.compute_input.ns + d.compute_infer.ns + d.compute_output.ns);
    const batches = (s: any, size: number): number => s.batch_stats.find((b: any) => b.batch_size === size)?.compute_infer.count ?? 0;
    for (const size of [1, 4, 8]) expect({ size, executions: batches(s1, size) - batches(s0, size) }).toEqual({ size, executions: 1 });
    expect(batches(s1, 9)).toBe(0);
    return d.fail.count;
  };

  test('extensions: the Triton container', async () => {
    // Triton refuses a batch over max_batch_size before the request reaches the model, and counts it nowhere
    expect(expectExtensions(await extensions('triton'))).toBe(0);
  });

  test("extensions: modelship's server (from source)", async () => {
    // modelship counts every inference request it refuses as a failure of the model (Triton 2.51 does not, above)
    expect(expectExtensions(await extensions('modelship'))).toBe(1);
  });

  // the same session over gRPC (tritonclient.grpc; its answers read as HTTP's JSON: every field, int64s as numbers),
  // with the same expectations; a refused batch is INVALID_ARGUMENT
  test('extensions over gRPC: the Triton container', async () => {
    expect(expectExtensions(await extensions('triton', 'grpc'), 'StatusCode.INVALID_ARGUMENT')).toBe(0);
  });

  test("extensions over gRPC: modelship's server (from source)", async () => {
    expect(expectExtensions(await extensions('modelship', 'grpc'), 'StatusCode.INVALID_ARGUMENT')).toBe(1);
  });

  test('each runtime answers the same configuration over gRPC as over HTTP', async () => {
    for (const runtime of ['triton', 'modelship'] as const) {
      const http = (await extensions(runtime)).steps.get_model_config;
      const grpc = (await extensions(runtime, 'grpc')).steps.get_model_config;
      // (fields newer than tritonclient 2.41's proto, which its gRPC client cannot read: Triton 2.51's runtime,
      // is_non_linear_format_io)
      const known = (c: any) => {
        const { runtime: _r, ...rest } = c;
        const tensors = (ts: any[]) => ts.map(({ is_non_linear_format_io: _n, ...t }) => t);
        return { ...rest, input: tensors(rest.input), output: tensors(rest.output) };
      };
      expect({ runtime, config: known(grpc) }).toEqual({ runtime, config: known(http) });
    }
  });

  test("extensions: modelship's configuration is Triton's for the same config.pbtxt, field by field", async () => {
    const theirs = (await extensions('triton')).steps.get_model_config;
    const ours = (await extensions('modelship')).steps.get_model_config;
    // fields newer than the protocol modelship carries (tritonclient 2.41's proto): modelship leaves them out
    // (src/serve/model-config.ts), so in Triton's they must be empty or default
    const { runtime, ...rest } = theirs;
    expect(runtime).toBe('');
    const tensors = (ts: any[]) =>
      ts.map(({ is_non_linear_format_io, ...t }) => {
        expect(is_non_linear_format_io).toBe(false);
        return t;
      });
    // where they genuinely differ: the lab's Triton runs the ONNX model on its python backend (the wheel has no ONNX
    // Runtime backend: test/triton-lab/README.md), modelship on ONNX Runtime, as the config's platform says
    expect([rest.platform, rest.backend, rest.default_model_filename]).toEqual(['', 'python', 'model.py']);
    expect([ours.platform, ours.backend, ours.default_model_filename]).toEqual(['onnxruntime_onnx', 'onnxruntime', 'model.onnx']);
    expect({ ...ours, platform: '', backend: 'python', default_model_filename: 'model.py' }).toEqual({
      ...rest,
      input: tensors(rest.input),
      output: tensors(rest.output),
    });
  });
});

const COMPRESSED_REQUESTS = `
import sys, numpy as np, tritonclient.http as h
c = h.InferenceServerClient(url=sys.argv[1].split('://', 1)[-1])
x = np.load(sys.argv[2] + '/input_b1.npy').astype(np.float32)
y = np.load(sys.argv[2] + '/output_b1__prob.npy')
for alg in ('gzip', 'deflate'):
    i = h.InferInput('data', list(x.shape), 'FP32'); i.set_data_from_numpy(x)
    d = np.abs(c.infer('lenet', [i], request_compression_algorithm=alg).as_numpy('prob') - y).max()
    assert d <= 1e-5, (alg, d)
`;
