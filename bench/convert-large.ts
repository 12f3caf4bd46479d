// Benchmark: a large net (VGG16, 553 MB of weights) against the physical floor, measured in the same run.
//   npx tsx bench/convert-large.ts [--runs N] [--dir DIR] [--keep] [--also SRC_DIR]
// There is no VGG16 caffemodel here: this writes one. The deploy net is the BVLC model zoo's
// VGG_ILSVRC_16_layers_deploy.prototxt (legacy V1 `layers`, input 10×3×224×224); the weights are seeded random
// float32s in Caffe's binary format (V2 `layer`, BlobProto `shape` + packed `data`, 138,357,544 values), written
// blob by blob, so the generator never holds them all. DIR (default: a temp dir) keeps them between runs with --keep.
//
// Each measurement runs in a fresh child process (same loader for all), rounds interleaved so load on a shared
// machine hits every mode alike; medians of time and peak RSS (process.resourceUsage().maxRSS):
//   floor         fs.readFileSync(caffemodel) + the same bytes written as the converter writes its output
//                 (util/fsx writeFileAtomic: temp file, write, fsync, rename)
//   floor-nosync  fs.readFileSync(caffemodel) + fs.writeFileSync of the same bytes (no fsync)
//   convert       the CLI's `modelship convert --prototxt … --caffemodel … --out …` (no --reference), in process
//   --also SRC_DIR  the same with another checkout's src/ (e.g. a `git worktree` of an older commit): before/after
//                 figures from one run
// Goal (issue 14): convert ≤ 2× the floor's time, peak RSS ≤ 1.3× the floor's.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { Writable } from 'stream';
import { rng } from '../test/helpers/rng';

type Mode = 'floor' | 'floor-nosync' | 'convert' | 'convert-also';

// ---------- the net ----------

/** VGG16's layer list: conv channel counts, 'M' a 2×2/2 max pool (Simonyan & Zisserman, configuration D). */
const CONV_PLAN: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

interface LayerDef {
  name: string;
  /** V1 enum type (prototxt) and V2 type string (caffemodel) */
  v1: string;
  v2: string;
  bottom: string;
  top: string;
  param?: string;
  blobs?: number[][];
}

function vgg16(): LayerDef[] {
  const layers: LayerDef[] = [];
  let blob = 'data';
  let channels = 3;
  let stage = 1;
  let sub = 1;
  for (const c of CONV_PLAN) {
    if (c === 'M') {
      const top = `pool${stage}`;
      layers.push({
        name: top,
        v1: 'POOLING',
        v2: 'Pooling',
        bottom: blob,
        top,
        param: 'pooling_param {\n    pool: MAX\n    kernel_size: 2\n    stride: 2\n  }',
      });
      blob = top;
      stage++;
      sub = 1;
      continue;
    }
    const name = `conv${stage}_${sub}`;
    layers.push({
      name,
      v1: 'CONVOLUTION',
      v2: 'Convolution',
      bottom: blob,
      top: name,
      param: `convolution_param {\n    num_output: ${c}\n    pad: 1\n    kernel_size: 3\n  }`,
      blobs: [[c, channels, 3, 3], [c]],
    });
    layers.push({ name: `relu${stage}_${sub}`, v1: 'RELU', v2: 'ReLU', bottom: name, top: name });
    blob = name;
    channels = c;
    sub++;
  }
  let inputs = channels * 7 * 7;
  for (const [i, n] of [
    [6, 4096],
    [7, 4096],
    [8, 1000],
  ]) {
    const name = `fc${i}`;
    layers.push({
      name,
      v1: 'INNER_PRODUCT',
      v2: 'InnerProduct',
      bottom: blob,
      top: name,
      param: `inner_product_param {\n    num_output: ${n}\n  }`,
      blobs: [[n, inputs], [n]],
    });
    if (i < 8) {
      layers.push({ name: `relu${i}`, v1: 'RELU', v2: 'ReLU', bottom: name, top: name });
      layers.push({ name: `drop${i}`, v1: 'DROPOUT', v2: 'Dropout', bottom: name, top: name, param: 'dropout_param {\n    dropout_ratio: 0.5\n  }' });
    }
    blob = name;
    inputs = n;
  }
  layers.push({ name: 'prob', v1: 'SOFTMAX', v2: 'Softmax', bottom: blob, top: 'prob' });
  return layers;
}

function prototxt(layers: LayerDef[]): string {
  let s = 'name: "VGG_ILSVRC_16_layers"\ninput: "data"\ninput_dim: 10\ninput_dim: 3\ninput_dim: 224\ninput_dim: 224\n';
  for (const l of layers) {
    s += `layers {\n  bottom: "${l.bottom}"\n  top: "${l.top}"\n  name: "${l.name}"\n  type: ${l.v1}\n${l.param ? `  ${l.param}\n` : ''}}\n`;
  }
  return s;
}

// ---------- hand-encoded caffemodel ----------

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const tag = (field: number, wire: number) => varint(field * 8 + wire);
const lenField = (field: number, len: number) => [...tag(field, 2), ...varint(len)];
const str = (field: number, s: string) => {
  const b = Buffer.from(s, 'utf8');
  return [...lenField(field, b.length), ...b];
};

/** BlobProto minus its data bytes: shape { dim… } then the header of packed `data` (field 5). */
function blobHead(dims: number[]): { head: number[]; count: number } {
  const packed = dims.flatMap((d) => varint(d));
  const shape = [...lenField(1, packed.length), ...packed];
  const count = dims.reduce((a, d) => a * d, 1);
  return { head: [...lenField(7, shape.length), ...shape, ...lenField(5, count * 4)], count };
}

function writeCaffemodel(file: string, layers: LayerDef[], seed: number): number {
  const fd = fs.openSync(file, 'w');
  const r = rng(seed);
  const chunk = Buffer.alloc(4 << 20);
  const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let total = 0;
  const put = (bytes: number[] | Buffer) => {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
    fs.writeSync(fd, b);
    total += b.length;
  };
  try {
    put(str(1, 'VGG_ILSVRC_16_layers'));
    for (const l of layers) {
      const heads = (l.blobs ?? []).map(blobHead);
      const fields = [...str(1, l.name), ...str(2, l.v2), ...str(3, l.bottom), ...str(4, l.top)];
      const blobLens = heads.map((h) => h.head.length + h.count * 4);
      const layerLen = fields.length + blobLens.reduce((a, n) => a + tag(7, 2).length + varint(n).length + n, 0);
      put([...lenField(100, layerLen), ...fields]);
      heads.forEach((h, i) => {
        put([...lenField(7, blobLens[i]), ...h.head]);
        // small uniform values, weight-like (the converter never looks at them)
        const scale = 0.05;
        for (let left = h.count; left > 0;) {
          const n = Math.min(left, chunk.length / 4);
          // float32 little-endian, as Caffe writes on every platform it runs on
          for (let k = 0; k < n; k++) dv.setFloat32(k * 4, (r() * 2 - 1) * scale, true);
          put(chunk.subarray(0, n * 4));
          left -= n;
        }
      });
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return total;
}

// ---------- measurements ----------

interface Sample {
  ms: number;
  maxRssKiB: number;
}

async function child(mode: Mode, dir: string, src: string): Promise<void> {
  const proto = path.join(dir, 'deploy.prototxt');
  const weights = path.join(dir, 'weights.caffemodel');
  const out = path.join(dir, `out-${process.pid}.onnx`);
  let ms = 0;
  if (mode === 'floor' || mode === 'floor-nosync') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the floor child loads fsx alone, not the converter it is compared with
    const { writeFileAtomic } = require('../src/util/fsx') as typeof import('../src/util/fsx');
    const t0 = process.hrtime.bigint();
    const bytes = fs.readFileSync(weights);
    if (mode === 'floor') writeFileAtomic(out, bytes);
    else fs.writeFileSync(out, bytes);
    ms = Number(process.hrtime.bigint() - t0) / 1e6;
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known at run time: this checkout's src/ or the one compared with
    const { cli } = require(path.join(src, 'cli')) as typeof import('../src/cli');
    const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
    const t0 = process.hrtime.bigint();
    const code = await cli(['convert', '--prototxt', proto, '--caffemodel', weights, '--out', out], sink(), sink());
    ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (code !== 0) throw new Error(`convert exited ${code}`);
  }
  const size = fs.statSync(out).size;
  fs.rmSync(out);
  process.stdout.write(JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS, size }) + '\n');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1] as Mode, args[2], args[3]);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const runs = Number(opt('--runs') ?? 5);
  const keep = args.includes('--keep');
  const dir = path.resolve(opt('--dir') ?? path.join(os.tmpdir(), 'modelship-vgg16-synthetic'));
  fs.mkdirSync(dir, { recursive: true });
  const layers = vgg16();
  const weights = path.join(dir, 'weights.caffemodel');
  const values = layers.flatMap((l) => l.blobs ?? []).reduce((a, b) => a + b.reduce((x, d) => x * d, 1), 0);
  fs.writeFileSync(path.join(dir, 'deploy.prototxt'), prototxt(layers));
  const stamp = path.join(dir, 'weights.seed');
  const seed = 16;
  if (!(fs.existsSync(weights) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === `${seed} ${fs.statSync(weights).size}`)) {
    const t0 = Date.now();
    const size = writeCaffemodel(weights, layers, seed);
    fs.writeFileSync(stamp, `${seed} ${size}`);
    console.log(
      `wrote ${weights}: ${(size / 1e6).toFixed(1)} MB, ${values.toLocaleString('en')} float32 values, in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
  const size = fs.statSync(weights).size;
  fs.readFileSync(weights); // warm the page cache once, so the first round does not pay the disk
  const also = opt('--also');
  const srcOf = (m: Mode) => (m === 'convert-also' ? path.resolve(also!, 'src') : path.join(__dirname, '../src'));
  const MODES: Mode[] = ['floor', 'floor-nosync', 'convert', ...(also ? ['convert-also' as const] : [])];
  const samples: Record<Mode, (Sample & { size: number })[]> = { floor: [], 'floor-nosync': [], convert: [], 'convert-also': [] };
  try {
    for (let r = 0; r < runs; r++) {
      for (const mode of MODES) {
        const c = spawnSync(process.execPath, [...process.execArgv, __filename, '--child', mode, dir, srcOf(mode)], { encoding: 'utf8', maxBuffer: 1 << 24 });
        if (c.status !== 0) throw new Error(`${mode} child failed: ${c.stderr}`);
        samples[mode].push(JSON.parse(c.stdout.trim().split('\n').pop()!) as Sample & { size: number });
      }
    }
  } finally {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
  const med = (m: Mode) => ({ ms: median(samples[m].map((s) => s.ms)), mib: median(samples[m].map((s) => s.maxRssKiB)) / 1024 });
  const f = med('floor');
  const fn = med('floor-nosync');
  const c = med('convert');
  const onnx = samples.convert[0].size;
  const all = (m: Mode) => samples[m].map((s) => `${(s.ms / 1000).toFixed(2)}s/${(s.maxRssKiB / 1024).toFixed(0)}M`).join(' ');
  console.log(
    `VGG16 (synthetic): caffemodel ${(size / 1e6).toFixed(1)} MB (${(size / 2 ** 20).toFixed(1)} MiB), ONNX ${(onnx / 1e6).toFixed(1)} MB; node ${process.version}, ${os.cpus().length} CPUs, ${runs} rounds, medians`,
  );
  console.log(`floor (read + write, fsync) : ${(f.ms / 1000).toFixed(2)} s, peak RSS ${f.mib.toFixed(0)} MiB   [${all('floor')}]`);
  console.log(`floor (read + write)        : ${(fn.ms / 1000).toFixed(2)} s, peak RSS ${fn.mib.toFixed(0)} MiB   [${all('floor-nosync')}]`);
  console.log(`modelship convert           : ${(c.ms / 1000).toFixed(2)} s, peak RSS ${c.mib.toFixed(0)} MiB   [${all('convert')}]`);
  console.log(`convert / floor (fsync)     : time ${(c.ms / f.ms).toFixed(2)}x (goal ≤ 2x), peak RSS ${(c.mib / f.mib).toFixed(2)}x (goal ≤ 1.3x)`);
  console.log(`convert / floor (no fsync)  : time ${(c.ms / fn.ms).toFixed(2)}x, peak RSS ${(c.mib / fn.mib).toFixed(2)}x`);
  if (also) {
    const a = med('convert-also');
    console.log(`convert, ${also}: ${(a.ms / 1000).toFixed(2)} s, peak RSS ${a.mib.toFixed(0)} MiB   [${all('convert-also')}]`);
    console.log(
      `  / floor (fsync) time ${(a.ms / f.ms).toFixed(2)}x, peak RSS ${(a.mib / f.mib).toFixed(2)}x; / floor (no fsync) time ${(a.ms / fn.ms).toFixed(2)}x, peak RSS ${(a.mib / fn.mib).toFixed(2)}x`,
    );
  }
}

void main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
