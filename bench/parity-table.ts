// Measurement behind the parity gate's default (README "The parity gate"): for every net with real-Caffe references,
// how far a correct conversion drifts from Caffe, end to end at batch 1 and 2 under each ONNX Runtime setting the
// project runs, and per layer (each layer on Caffe's own bottoms); then the mutants of test/helpers/parity-mutants.ts
// (real mistakes) against the same gate.
//   npx tsx bench/parity-table.ts [model-dir ...] [--no-mutants] [--json out.json]
// Without dirs: ../shared/caffe-oracle/models/* and models-v1/lenet. A dir needs deploy.prototxt, weights.caffemodel,
// input_b<N>.npy, output_b<N>__<blob>.npy (blobs_b1/ for the per-layer column), the caffe-oracle layout.
// Settings: "disabled" is the convert stage's parity run (the graph as converted); "basic" and "extended" are the
// compile stage's artifacts (ORT's offline optimization for the CUDA and the CPU execution provider, then run as
// saved, as compile checks them); "all" is what the modelship server runs (src/serve/worker.ts).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { convertCaffe } from '../src/convert/converter';
import { checkParity } from '../src/convert/parity';
import { ParityReport } from '../src/shared/parity';
import { DEFAULT_TOLERANCE, ParityTolerance } from '../src/shared/compare';
import { loadOrt } from '../src/util/ort';
import { readNpy } from '../src/util/npy';
import { outputFile } from '../src/shared/reference';
import { MUTANTS, runMutant } from '../test/helpers/parity-mutants';

type Level = 'disabled' | 'basic' | 'extended' | 'all';
const LEVELS: Level[] = ['disabled', 'basic', 'extended', 'all'];
const ORACLE = path.resolve(__dirname, '../../shared/caffe-oracle');

/** For the raw numbers: a zero end-to-end limit makes the top-k comparison strict (no near-ties); pass is ignored. */
const MEASURE: ParityTolerance = { maxAbsDiff: 0, topK: DEFAULT_TOLERANCE.topK, layerRelative: DEFAULT_TOLERANCE.layerRelative };

async function optimize(model: Uint8Array, level: 'basic' | 'extended'): Promise<Uint8Array> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'parity-table-'));
  try {
    const out = path.join(tmp, 'optimized.onnx');
    const s = await loadOrt().InferenceSession.create(model, { executionProviders: ['cpu'], graphOptimizationLevel: level, optimizedModelFilePath: out });
    await s.release();
    return fs.readFileSync(out);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

interface Row {
  net: string;
  dir: string;
  layers: number;
  /** end-to-end max |Δ| per setting and batch; the gate's scale max(1, max|ref|) is 1 for every net here (probabilities) */
  e2e: Record<Level, Record<number, number>>;
  /** max |Δ| / max|ref| (relative), at the worst setting and batch */
  relative: number;
  /** strict top-5 (the same classes in the same order, no tie rule), per setting */
  top5: Record<Level, boolean>;
  /** smallest gap between consecutive reference scores within the top 6 (how close a top-5 tie is) */
  top5Margin: number;
  /** worst per-layer max |Δ| / (layerRelative · max(1, max|ref|)), with the layer; null without blobs_b1/ */
  worstLayer: { ratio: number; layer: string; type: string; maxAbsDiff: number; endToEnd?: number } | null;
  seconds: number;
}

function margin(ref: Float32Array, per: number, k: number): number {
  let m = Infinity;
  for (let n = 0; n < ref.length / per; n++) {
    const s = Array.from(ref.subarray(n * per, (n + 1) * per)).sort((a, b) => b - a);
    for (let i = 0; i < Math.min(k, s.length - 1); i++) m = Math.min(m, s[i] - s[i + 1]);
  }
  return m;
}

async function measure(dir: string): Promise<Row> {
  const t0 = Date.now();
  const proto = path.join(dir, 'deploy.prototxt');
  const weights = path.join(dir, 'weights.caffemodel');
  const conv = convertCaffe({ prototxt: fs.readFileSync(proto), prototxtFile: proto, caffemodel: fs.readFileSync(weights), caffemodelFile: weights });
  const perLayer = fs.existsSync(path.join(dir, 'blobs_b1'));
  const e2e = {} as Row['e2e'];
  const top5 = {} as Row['top5'];
  let relative = 0;
  let first: ParityReport | undefined;
  for (const level of LEVELS) {
    // basic/extended: the compile stage's offline artifact, run as saved; all: the server's online optimization
    const offline = level === 'basic' || level === 'extended';
    const model = offline ? { onnx: await optimize(conv.onnx, level), inputs: conv.inputs, outputs: conv.outputs } : conv;
    const r = await checkParity(model, dir, { perLayer: perLayer && level === 'disabled', tolerance: MEASURE, optimization: offline ? 'disabled' : level });
    first ??= r;
    e2e[level] = {};
    for (const c of r.outputs) {
      e2e[level][c.batch] = Math.max(e2e[level][c.batch] ?? 0, c.maxAbsDiff);
    }
    top5[level] = r.outputs.every((c) => c.topKMatch);
    for (const c of r.outputs) {
      const ref = readRefMax(dir, c.batch, c.output);
      relative = Math.max(relative, c.maxAbsDiff / ref);
    }
  }
  const prob = first!.outputs.find((c) => c.batch === Math.max(...first!.batches))!;
  const refData = readRef(dir, prob.batch, prob.output);
  const top5Margin = margin(refData, refData.length / prob.batch, DEFAULT_TOLERANCE.topK);
  let worstLayer: Row['worstLayer'] = null;
  if (first!.perLayer) {
    for (const l of first!.perLayer.layers) {
      const ratio = l.maxAbsDiff / l.limit;
      if (!worstLayer || ratio > worstLayer.ratio) worstLayer = { ratio, layer: l.layer, type: l.type, maxAbsDiff: l.maxAbsDiff, endToEnd: l.endToEnd };
    }
  }
  const rel = path.relative(ORACLE, dir);
  const net = rel.startsWith('models-v1/') ? `${path.basename(dir)} (V1 files)` : path.basename(dir);
  return { net, dir, layers: conv.net.layers.length, e2e, relative, top5, top5Margin, worstLayer, seconds: (Date.now() - t0) / 1000 };
}

function readRef(dir: string, batch: number, output: string): Float32Array {
  return readNpy(outputFile(dir, batch, output)).data;
}
function readRefMax(dir: string, batch: number, output: string): number {
  let m = 0;
  for (const x of readRef(dir, batch, output)) m = Math.max(m, Math.abs(x));
  return m;
}

const e = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));

async function main() {
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf('--json');
  const jsonOut = jsonAt >= 0 ? args.splice(jsonAt, 2)[1] : undefined;
  const noMutants = args.includes('--no-mutants');
  let dirs = args.filter((a) => !a.startsWith('--'));
  if (dirs.length === 0) {
    dirs = [
      ...['lenet', 'bvlc_googlenet', 'squeezenet_v1.1', 'mobilenet_v1'].map((n) => path.join(ORACLE, 'models', n)),
      path.join(ORACLE, 'models-v1', 'lenet'),
    ];
  }
  const rows: Row[] = [];
  for (const dir of dirs) {
    const r = await measure(dir);
    rows.push(r);
    process.stderr.write(`${r.net}: ${r.seconds.toFixed(1)} s\n`);
  }
  const lines = [
    '| net | layers | end-to-end max \\|Δ\\| b1 / b2, as converted (disabled) | basic | extended | all | top-5 identical | worst layer: max \\|Δ\\| / limit |',
    '|---|---:|---:|---:|---:|---:|:---:|---|',
    ...rows.map((r) => {
      const cell = (l: Level) => `${e(r.e2e[l][1])} / ${e(r.e2e[l][2])}`;
      const wl = r.worstLayer ? `${r.worstLayer.ratio.toFixed(3)} (\`${r.worstLayer.layer}\`, ${r.worstLayer.type})` : '– (no blobs_b1/)';
      return `| ${r.net} | ${r.layers} | ${cell('disabled')} | ${cell('basic')} | ${cell('extended')} | ${cell('all')} | ${LEVELS.every((l) => r.top5[l]) ? 'yes' : `no (${LEVELS.filter((l) => !r.top5[l]).join(', ')})`} (margin ${e(r.top5Margin)}) | ${wl} |`;
    }),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const worst = Math.max(...rows.flatMap((r) => LEVELS.flatMap((l) => Object.values(r.e2e[l]))));
  process.stdout.write(
    `\nworst correct end-to-end max |Δ|: ${e(worst)}; worst relative (max |Δ| / max |ref|): ${e(Math.max(...rows.map((r) => r.relative)))}\n`,
  );
  const mutants: {
    name: string;
    net: string;
    e2e: number;
    limit: number;
    topK: boolean;
    layer?: string;
    layerDiff?: number;
    layerLimit?: number;
    verdict: string;
  }[] = [];
  if (!noMutants) {
    process.stdout.write(
      '\n| mutant | net | end-to-end max \\|Δ\\| / limit | top-5 (strict) | per-layer: first diverging layer, max \\|Δ\\| / limit | which failed |\n|---|---|---:|:---:|---|---|\n',
    );
    for (const m of MUTANTS) {
      const r = await runMutant(m);
      const worstOut = r.outputs.reduce((a, b) => (b.maxAbsDiff / b.limit > a.maxAbsDiff / a.limit ? b : a));
      const f = r.perLayer?.firstDivergence;
      const row = {
        name: m.name,
        net: m.net,
        e2e: worstOut.maxAbsDiff,
        limit: worstOut.limit,
        topK: r.outputs.every((c) => c.topK.every((t) => t.onnx.join() === t.reference.join())),
        layer: f?.layer,
        layerDiff: f?.maxAbsDiff,
        layerLimit: f?.limit,
        verdict: r.verdict.failed,
      };
      mutants.push(row);
      const layer = f ? `\`${f.layer}\`, ${e(f.maxAbsDiff)} / ${e(f.limit)}` : '–';
      process.stdout.write(`| ${row.name} | ${row.net} | ${e(row.e2e)} / ${e(row.limit)} | ${row.topK ? 'same' : 'differs'} | ${layer} | ${row.verdict} |\n`);
    }
  }
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ rows, mutants }, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v), 2) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
