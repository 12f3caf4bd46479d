// Benchmark: the LRN op against the compile stage's primitive form of it (src/compile/lrn.ts) on the CPU, on the bundled
// onnxruntime-node and on ONNX Runtime 1.20.1, the last release before its CPU LRN kernel got ~3× slower.
//   npx tsx bench/lrn.ts [model-dir ...] [--synthetic alexnet,caffenet] [--rounds R] [--seconds S] [--threads N] [--no-python]
// Nets: GoogLeNet converted by the convert stage from the Caffe oracle (../shared/caffe-oracle/models/bvlc_googlenet,
// real Caffe's outputs beside it), or the model dirs given (same layout); and, as the oracle has no AlexNet, BVLC's
// AlexNet and CaffeNet deploy nets (CaffeNet pools before it normalizes) with seeded weights, no Caffe reference (their
// LRN layers are GoogLeNet's: local_size 5, alpha 1e-4, beta 0.75); `--synthetic ''` leaves them out.
// Each net is converted once; its primitive form is decomposeLrn of that ONNX, as compile makes it. Four setups, each
// run for S seconds (default 2) per round, the order rotating over R rounds (default 5) so that load on a shared
// machine hits them alike: onnxruntime-node (in process) and the Python wheel onnxruntime==1.20.1 (a pinned venv,
// test/requirements-ort-1.20.txt, in a child that waits on stdin between runs), each with the op and with the primitive
// form; the modelship server's session options (graph optimization all, N intra-op threads that sleep when idle,
// default 2), batch 1. Printed: img/s (median over the rounds) and the ratios of each round, medians; max |Δ| of the
// primitive form against the op (batch 1 and 2), for the oracle nets the parity of both forms against real Caffe; and
// what `lrn: auto` (chooseLrnForm, as compile runs it) chooses, with its own figures.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { spawn, ChildProcessWithoutNullStreams } from 'child_process';
import * as protobuf from 'protobufjs';
import type * as Ort from 'onnxruntime-node';
import { convertCaffe, ConversionResult } from '../src/convert/converter';
import { chooseLrnForm, decomposeLrn, probeFeeds } from '../src/compile/lrn';
import { checkOutputParity } from '../src/shared/parity';
import { maxAbs } from '../src/shared/compare';
import { inputFile } from '../src/shared/reference';
import { loadOrt } from '../src/util/ort';
import { NpyArray, encodeNpy, readNpy } from '../src/util/npy';
import { pythonVenv } from '../test/helpers/venv';
import { rng } from '../test/helpers/rng';

const ORACLE = path.resolve(__dirname, '../../shared/caffe-oracle/models');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const ROUNDS = Number(arg('rounds', '5'));
const SECONDS = Number(arg('seconds', '2'));
const THREADS = Number(arg('threads', '2'));
const PYTHON = !process.argv.includes('--no-python');
const SYNTHETIC = arg('synthetic', 'alexnet,caffenet').split(',').filter(Boolean);
const DIRS: string[] = [];
for (let i = 2; i < process.argv.length; i++) {
  if (['--rounds', '--seconds', '--threads', '--synthetic'].includes(process.argv[i])) i++;
  else if (!process.argv[i].startsWith('--')) DIRS.push(process.argv[i]);
}

// ---------- BVLC AlexNet / CaffeNet with seeded weights ----------

interface Layer {
  name: string;
  type: string;
  bottom: string;
  top: string;
  param?: string;
  blobs?: number[][];
}

function alexnet(caffenet: boolean): Layer[] {
  const L: Layer[] = [];
  const conv = (n: number, c: number, out: number, k: number, o: { stride?: number; pad?: number; group?: number }, bottom: string) => {
    const g = o.group ?? 1;
    L.push({
      name: `conv${n}`,
      type: 'Convolution',
      bottom,
      top: `conv${n}`,
      param: `convolution_param { num_output: ${out} kernel_size: ${k}${o.stride ? ` stride: ${o.stride}` : ''}${o.pad ? ` pad: ${o.pad}` : ''}${g > 1 ? ` group: ${g}` : ''} }`,
      blobs: [[out, c / g, k, k], [out]],
    });
    L.push({ name: `relu${n}`, type: 'ReLU', bottom: `conv${n}`, top: `conv${n}` });
  };
  const norm = (n: number, bottom: string) =>
    L.push({ name: `norm${n}`, type: 'LRN', bottom, top: `norm${n}`, param: 'lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 }' });
  const pool = (n: number, bottom: string) =>
    L.push({ name: `pool${n}`, type: 'Pooling', bottom, top: `pool${n}`, param: 'pooling_param { pool: MAX kernel_size: 3 stride: 2 }' });
  // AlexNet normalizes, then pools; CaffeNet pools, then normalizes
  const block = (n: number, from: string): string => {
    if (caffenet) {
      pool(n, from);
      norm(n, `pool${n}`);
      return `norm${n}`;
    }
    norm(n, from);
    pool(n, `norm${n}`);
    return `pool${n}`;
  };
  conv(1, 3, 96, 11, { stride: 4 }, 'data');
  let b = block(1, 'conv1');
  conv(2, 96, 256, 5, { pad: 2, group: 2 }, b);
  b = block(2, 'conv2');
  conv(3, 256, 384, 3, { pad: 1 }, b);
  conv(4, 384, 384, 3, { pad: 1, group: 2 }, 'conv3');
  conv(5, 384, 256, 3, { pad: 1, group: 2 }, 'conv4');
  pool(5, 'conv5');
  let inputs = 256 * 6 * 6;
  let from = 'pool5';
  for (const [i, n] of [
    [6, 4096],
    [7, 4096],
    [8, 1000],
  ]) {
    L.push({ name: `fc${i}`, type: 'InnerProduct', bottom: from, top: `fc${i}`, param: `inner_product_param { num_output: ${n} }`, blobs: [[n, inputs], [n]] });
    if (i < 8) {
      L.push({ name: `relu${i}`, type: 'ReLU', bottom: `fc${i}`, top: `fc${i}` });
      L.push({ name: `drop${i}`, type: 'Dropout', bottom: `fc${i}`, top: `fc${i}`, param: 'dropout_param { dropout_ratio: 0.5 }' });
    }
    from = `fc${i}`;
    inputs = n;
  }
  L.push({ name: 'prob', type: 'Softmax', bottom: 'fc8', top: 'prob' });
  return L;
}

/** The deploy prototxt and a caffemodel (V2, BlobProto shape + packed data) of seeded weights with variance 1/fan-in. */
function synthetic(name: string): { prototxt: string; caffemodel: Uint8Array } {
  const layers = alexnet(name === 'caffenet');
  let text = `name: "${name}"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 10 dim: 3 dim: 227 dim: 227 } } }\n`;
  for (const l of layers) text += `layer { name: "${l.name}" type: "${l.type}" bottom: "${l.bottom}" top: "${l.top}"${l.param ? ` ${l.param}` : ''} }\n`;
  const r = rng(name === 'caffenet' ? 2 : 1);
  const w = protobuf.Writer.create();
  for (const l of layers.filter((x) => x.blobs)) {
    w.uint32((100 << 3) | 2).fork();
    w.uint32((1 << 3) | 2).string(l.name);
    w.uint32((2 << 3) | 2).string(l.type);
    l.blobs!.forEach((shape, i) => {
      const n = shape.reduce((a, d) => a * d, 1);
      const a = i === 0 ? Math.sqrt(3 / (n / shape[0])) : 0.01; // U(−a, a) has variance 1/fan-in; biases small
      const data = new Float32Array(n);
      for (let k = 0; k < n; k++) data[k] = i === 0 ? (r() * 2 - 1) * a : a;
      w.uint32((7 << 3) | 2).fork(); // blobs
      w.uint32((7 << 3) | 2).fork(); // shape
      w.uint32((1 << 3) | 2).fork();
      for (const d of shape) w.int64(d);
      w.ldelim().ldelim();
      w.uint32((5 << 3) | 2).bytes(new Uint8Array(data.buffer));
      w.ldelim();
    });
    w.ldelim();
  }
  return { prototxt: text, caffemodel: w.finish() };
}

// ---------- ONNX Runtime 1.20.1 in a Python child ----------

const PY = `
import sys, time, numpy as np, onnxruntime as ort
threads, x1 = int(sys.argv[1]), np.load(sys.argv[2])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.add_session_config_entry('session.intra_op.allow_spinning', '0')
s = {}
for pair in sys.argv[3:]:
    form, file = pair.split('=', 1)
    s[form] = ort.InferenceSession(file, so, providers=['CPUExecutionProvider'])
    name = s[form].get_inputs()[0].name
    for _ in range(3): s[form].run(None, {name: x1})
print('ready', ort.__version__, flush=True)
for line in sys.stdin:
    form, secs = line.split()
    sess, name = s[form], s[form].get_inputs()[0].name
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < float(secs):
        sess.run(None, {name: x1}); n += 1
    print(n / (time.perf_counter() - t0), flush=True)
`;

class PythonOrt {
  private readonly lines: AsyncIterableIterator<string>;
  version = '';
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    this.lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }
  static async start(python: string, input: string, models: Record<string, string>): Promise<PythonOrt> {
    const script = path.join(os.tmpdir(), `bench-lrn-${process.pid}.py`);
    fs.writeFileSync(script, PY);
    const child = spawn(python, [script, String(THREADS), input, ...Object.entries(models).map(([f, m]) => `${f}=${m}`)]);
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    const p = new PythonOrt(child);
    const ready = await p.line();
    p.version = ready.split(' ')[1];
    return p;
  }
  private async line(): Promise<string> {
    const r = await this.lines.next();
    if (r.done) throw new Error('the Python child exited');
    return r.value;
  }
  async ips(form: string, seconds: number): Promise<number> {
    this.child.stdin.write(`${form} ${seconds}\n`);
    return Number(await this.line());
  }
  stop(): void {
    this.child.stdin.end();
  }
}

// ---------- measuring ----------

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function session(model: Uint8Array): Promise<Ort.InferenceSession> {
  return loadOrt().InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: THREADS,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
}

function tensors(feeds: Record<string, NpyArray>): Record<string, Ort.Tensor> {
  const ort = loadOrt();
  return Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.shape)]));
}

async function ips(s: Ort.InferenceSession, feeds: Record<string, Ort.Tensor>, seconds: number): Promise<number> {
  let n = 0;
  const t0 = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - t0) < seconds * 1e9) {
    await s.run(feeds);
    n++;
  }
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function outputs(s: Ort.InferenceSession, feeds: Record<string, NpyArray>): Promise<Float32Array[]> {
  const r = await s.run(tensors(feeds));
  return s.outputNames.map((n) => new Float32Array(r[n].data as Float32Array));
}

async function bench(name: string, conv: ConversionResult, reference: string | undefined, python: string | undefined): Promise<void> {
  const op = conv.onnx;
  const d = decomposeLrn(op);
  const prim = d.model;
  const ort = loadOrt();
  const inputs = conv.inputs;
  if (inputs.length !== 1) throw new Error(`${name}: one input expected`);
  const input = inputs[0].name;
  // batch 1: the reference's input, else seeded values (as compile's measurement takes them); batch 2: the reference's,
  // else that input and its negation
  const b1 = probeFeeds(inputs, reference) as Record<string, NpyArray>;
  const x = b1[input];
  const b2: Record<string, NpyArray> = {
    [input]: reference
      ? readNpy(inputFile(reference, 2, input, true))
      : { shape: [2, ...x.shape.slice(1)], data: Float32Array.from([...x.data, ...x.data.map((v) => -v)]) },
  };
  console.log(`\n## ${name}: ${d.nodes.length} LRN nodes (${d.nodes.map((n) => n.name).join(', ')}) → ${d.operators.join(', ')}`);

  // accuracy: the primitive form against the op, and both against real Caffe where there is a reference
  const [so, sp] = [await session(op), await session(prim)];
  for (const [batch, feeds] of [
    [1, b1],
    [2, b2],
  ] as const) {
    const [a, b] = [await outputs(so, feeds), await outputs(sp, feeds)];
    console.log(`max |Δ| primitive vs op, batch ${batch}: ${Math.max(...a.map((x, i) => maxAbs(b[i], x))).toExponential(2)}`);
  }
  if (reference) {
    for (const [form, model] of [
      ['op', op],
      ['primitive', prim],
    ] as const) {
      const r = await checkOutputParity({ onnx: model, inputs, outputs: conv.outputs }, reference, { optimization: 'all' });
      console.log(`parity against real Caffe, ${form}: ${r.status}, max |Δ| ${r.maxAbsDiff.toExponential(2)} over batches ${r.batches.join(', ')}`);
    }
  }

  // throughput
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-lrn-'));
  let py: PythonOrt | undefined;
  try {
    if (python) {
      fs.writeFileSync(path.join(dir, 'op.onnx'), op);
      fs.writeFileSync(path.join(dir, 'primitive.onnx'), prim);
      fs.writeFileSync(path.join(dir, 'input.npy'), encodeNpy(x.shape, x.data));
      py = await PythonOrt.start(python, path.join(dir, 'input.npy'), { op: path.join(dir, 'op.onnx'), primitive: path.join(dir, 'primitive.onnx') });
    }
    const t = tensors(b1);
    for (const s of [so, sp]) for (let k = 0; k < 3; k++) await s.run(t);
    const node = `onnxruntime-node ${ort.env.versions.node}`;
    const setups: [string, () => Promise<number>][] = [
      [`${node} op`, () => ips(so, t, SECONDS)],
      [`${node} primitive`, () => ips(sp, t, SECONDS)],
    ];
    if (py) {
      const p = py;
      setups.push([`onnxruntime ${p.version} op`, () => p.ips('op', SECONDS)], [`onnxruntime ${p.version} primitive`, () => p.ips('primitive', SECONDS)]);
    }
    const got = new Map<string, number[]>(setups.map(([k]) => [k, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < setups.length; k++) {
        const [label, fn] = setups[(k + r) % setups.length];
        got.get(label)!.push(await fn());
      }
    }
    console.log(`\nimg/s, batch 1, ${THREADS} intra-op threads, ${ROUNDS} rounds × ${SECONDS} s (median; all rounds):`);
    for (const [label, xs] of got) console.log(`  ${label.padEnd(36)} ${median(xs).toFixed(1).padStart(6)}   ${xs.map((x) => x.toFixed(1)).join(' ')}`);
    const ratio = (a: string, b: string) => median(got.get(a)!.map((x, i) => x / got.get(b)![i]));
    const labels = [...got.keys()];
    console.log('ratios (median over rounds of the same round):');
    console.log(`  ${node}: primitive / op = ${ratio(labels[1], labels[0]).toFixed(3)}`);
    if (py) {
      console.log(`  onnxruntime ${py.version}: primitive / op = ${ratio(labels[3], labels[2]).toFixed(3)}`);
      console.log(`  ${node} op / ${py.version} op = ${ratio(labels[0], labels[2]).toFixed(3)}`);
      console.log(`  ${node} primitive / ${py.version} op = ${ratio(labels[1], labels[2]).toFixed(3)}`);
      console.log(
        `  ${node} primitive / ${py.version} best = ${median(got.get(labels[1])!.map((x, i) => x / Math.max(got.get(labels[2])![i], got.get(labels[3])![i]))).toFixed(3)}`,
      );
    }
  } finally {
    py?.stop();
    await so.release();
    await sp.release();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  // what compile's lrn: auto does with this net (its own measurement: 1 thread, 7 rounds)
  const quiet = { info: () => undefined, warning: (m: string) => console.log(`warning: ${m}`), group: <T>(_n: string, fn: () => Promise<T>) => fn() };
  const auto = await chooseLrnForm(op, { setting: 'auto', executionProvider: 'cpu', inputs, reference, tolerance: 1e-3 }, quiet);
  console.log(`compile, lrn: auto → ${auto.record!.form}: ${auto.record!.reason}`);
}

async function main(): Promise<void> {
  const python = PYTHON ? pythonVenv('ort-1.20', 'import onnxruntime, numpy') : undefined;
  const dirs = DIRS.length ? DIRS : [path.join(ORACLE, 'bvlc_googlenet')];
  for (const dir of dirs) {
    const conv = convertCaffe({
      prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')),
      prototxtFile: path.join(dir, 'deploy.prototxt'),
      caffemodel: fs.readFileSync(path.join(dir, 'weights.caffemodel')),
      caffemodelFile: path.join(dir, 'weights.caffemodel'),
    });
    await bench(path.basename(dir).replace(/^bvlc_/, ''), conv, dir, python);
  }
  for (const name of SYNTHETIC) {
    const s = synthetic(name);
    const conv = convertCaffe({
      prototxt: Buffer.from(s.prototxt),
      prototxtFile: `${name}.prototxt`,
      caffemodel: s.caffemodel,
      caffemodelFile: `${name}.caffemodel`,
    });
    await bench(name, conv, undefined, python);
  }
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
