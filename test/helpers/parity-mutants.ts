import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { convertCaffe } from '../../src/convert/converter';
import { checkParity } from '../../src/convert/parity';
import { ParityReport } from '../../src/shared/parity';
import { caffeSchema } from '../../src/formats/schema/caffe';

/**
 * Real conversion mistakes, made honestly: each mutant changes the converter's input (deploy.prototxt or caffemodel)
 * so that the conversion computes what a converter with that bug would compute, while the reference stays what real
 * Caffe computed for the unchanged net. A correct gate must fail each of them (test/parity-gate.test.ts; the measured
 * |Δ| are in the README's "The parity gate", from bench/parity-table.ts).
 */
export interface Mutant {
  /** short id */
  id: string;
  /** the mistake, as the README names it */
  name: string;
  /** the net it is made from */
  net: string;
  /** the real-Caffe reference of the unchanged net */
  reference: string;
  /** the layer where the mistake is (what the per-layer check should name) */
  layer: string;
  /** the deploy.prototxt and caffemodel bytes the converter gets */
  make(): { prototxt: Buffer; caffemodel: Buffer };
}

const REPO = path.resolve(__dirname, '../..');
const ORACLE = path.resolve(REPO, '../shared/caffe-oracle/models');
const FIXTURES = path.join(REPO, 'test/fixtures/caffe');

function files(dir: string) {
  return { prototxt: fs.readFileSync(path.join(dir, 'deploy.prototxt')), caffemodel: fs.readFileSync(path.join(dir, 'weights.caffemodel')) };
}

/** Decode a caffemodel, let `edit` change its layers, encode it again. */
function editWeights(bytes: Buffer, edit: (layers: { name: string; type: string; blobs: { shape?: { dim: number[] }; data: number[] }[] }[]) => void): Buffer {
  const T = caffeSchema().lookupType('caffe.NetParameter');
  const net = T.decode(bytes) as unknown as { layer: Parameters<typeof edit>[0] };
  edit(net.layer);
  return Buffer.from(T.encode(net as never).finish());
}

/** Insert `text` into the `pooling_param { … }` / `eltwise_param { … }` block of layer `name` (text prototxt). */
function editLayerParam(prototxt: Buffer, layer: string, param: string, edit: (block: string) => string): Buffer {
  const s = prototxt.toString('utf8');
  const at = s.search(new RegExp(`name:\\s*"${layer.replace(/[/.]/g, '\\$&')}"`));
  if (at < 0) throw new Error(`no layer "${layer}"`);
  const open = s.indexOf(`${param} {`, at);
  const close = s.indexOf('}', open);
  if (open < 0 || close < 0) throw new Error(`no ${param} in layer "${layer}"`);
  return Buffer.from(s.slice(0, open) + edit(s.slice(open, close + 1)) + s.slice(close + 1));
}

export const MUTANTS: Mutant[] = [
  {
    id: 'pool-floor',
    name: 'Pooling output size rounded down (floor) where Caffe rounds up (ceil)',
    net: 'squeezenet_v1.1',
    reference: path.join(ORACLE, 'squeezenet_v1.1'),
    layer: 'pool3',
    // pool3 (56→28, floor 27) and pool5 (28→14, floor 13); the global pool10 keeps the output [N,1000,1,1]
    make() {
      const f = files(this.reference);
      let p: Buffer = f.prototxt;
      for (const l of ['pool3', 'pool5'])
        p = editLayerParam(p, l, 'pooling_param', (b) => b.replace('pooling_param {', 'pooling_param {\n    round_mode: FLOOR'));
      return { prototxt: p, caffemodel: f.caffemodel };
    },
  },
  {
    id: 'bn-no-scale-factor',
    name: "BatchNorm without its scale factor (mean and variance not divided by Caffe's blobs[2])",
    net: 'mobilenet_v1',
    reference: path.join(ORACLE, 'mobilenet_v1'),
    layer: 'conv1/bn',
    // what a converter ignoring blobs[2] (999.982 here) computes: mean·sf and var·sf used as they are
    make() {
      const f = files(this.reference);
      return {
        prototxt: f.prototxt,
        caffemodel: editWeights(f.caffemodel, (layers) => {
          for (const l of layers) if (l.type === 'BatchNorm') l.blobs[2].data = [1];
        }),
      };
    },
  },
  {
    id: 'bn-eps',
    name: "BatchNorm epsilon 1e-3 (Keras's default) where the net says Caffe's 1e-5",
    net: 'mobilenet_v1',
    reference: path.join(ORACLE, 'mobilenet_v1'),
    layer: 'conv1/bn',
    make() {
      const f = files(this.reference);
      return { prototxt: Buffer.from(f.prototxt.toString('utf8').replace(/eps: 1e-5/g, 'eps: 1e-3')), caffemodel: f.caffemodel };
    },
  },
  {
    id: 'ip-transposed',
    name: 'InnerProduct weight read transposed (Caffe stores [out, in], read as [in, out])',
    net: 'lenet',
    reference: path.join(ORACLE, 'lenet'),
    layer: 'ip1',
    make() {
      const f = files(this.reference);
      return {
        prototxt: f.prototxt,
        caffemodel: editWeights(f.caffemodel, (layers) => {
          const w = layers.find((l) => l.name === 'ip1')!.blobs[0];
          const [out, inn] = w.shape!.dim.map(Number);
          const d = w.data;
          // the matrix a converter gets when it takes the [out, in] buffer for an [in, out] one
          w.data = Array.from({ length: out * inn }, (_, k) => d[(k % inn) * out + Math.floor(k / inn)]);
        }),
      };
    },
  },
  {
    id: 'eltwise-coeff',
    name: 'Eltwise SUM coefficients ignored (0.5·a − 1.5·b computed as a + b)',
    net: 'zoo_branch (test fixture)',
    reference: path.join(FIXTURES, 'zoo_branch'),
    layer: 'sum',
    make() {
      const f = files(this.reference);
      return { prototxt: editLayerParam(f.prototxt, 'sum', 'eltwise_param', (b) => b.replace(/\s*coeff:\s*[-0-9.e]+/g, '')), caffemodel: f.caffemodel };
    },
  },
  {
    id: 'bgr-swapped',
    name: 'Input channel order swapped (RGB fed to a BGR net)',
    net: 'bvlc_googlenet',
    reference: path.join(ORACLE, 'bvlc_googlenet'),
    layer: 'conv1/7x7_s2',
    // conv(W with its input channels reversed, x) = conv(W, x with channels reversed): the net sees RGB for BGR
    make() {
      const f = files(this.reference);
      return {
        prototxt: f.prototxt,
        caffemodel: editWeights(f.caffemodel, (layers) => {
          const w = layers.find((l) => l.name === 'conv1/7x7_s2')!.blobs[0];
          const [o, c, kh, kw] = w.shape!.dim.map(Number);
          const d = w.data;
          const hw = kh * kw;
          w.data = Array.from({ length: o * c * hw }, (_, k) => {
            const oi = Math.floor(k / (c * hw));
            const ci = Math.floor(k / hw) % c;
            return d[oi * c * hw + (c - 1 - ci) * hw + (k % hw)];
          });
        }),
      };
    },
  },
];

/** Write a mutant's prototxt and caffemodel into a fresh directory (for the CLI). */
export function writeMutant(m: Mutant, dir = fs.mkdtempSync(path.join(os.tmpdir(), `mutant-${m.id}-`))): { dir: string; prototxt: string; caffemodel: string } {
  const { prototxt, caffemodel } = m.make();
  const p = path.join(dir, 'deploy.prototxt');
  const w = path.join(dir, 'weights.caffemodel');
  fs.writeFileSync(p, prototxt);
  fs.writeFileSync(w, caffemodel);
  return { dir, prototxt: p, caffemodel: w };
}

/** Convert a mutant and check it against the unchanged net's reference with the default gate, per layer too. */
export async function runMutant(m: Mutant): Promise<ParityReport> {
  const { prototxt, caffemodel } = m.make();
  const conv = convertCaffe({ prototxt, prototxtFile: `${m.id}/deploy.prototxt`, caffemodel, caffemodelFile: `${m.id}/weights.caffemodel` });
  return checkParity(conv, m.reference, { perLayer: fs.existsSync(path.join(m.reference, 'blobs_b1')) });
}
