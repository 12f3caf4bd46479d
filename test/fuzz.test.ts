import * as fs from 'fs';
import * as path from 'path';
import { convertCaffe } from '../src/convert/converter';
import { ModelshipError } from '../src/util/errors';
import { FIXTURES } from './helpers/caffe';
import { rng } from './helpers/rng';

const TOKENS = ['{', '}', ':', '"', "'", '#', '[', ']', ',', '-', '0', '-1', '999999999', '1e40', 'nan', 'inf', '\\', '\n', ' ', 'layer', 'bottom', 'top', 'type', 'num_output', 'kernel_size', 'stride: 0', 'pad: 7', 'group: 3', 'axis: -9', 'dim: 0', 'dim: -1', 'slice_point: 1', 'type: "Reshape"', 'type: "Crop"', 'type: "Eltwise"', 'type: "Slice"', 'type: "Split"', 'top: "data"', 'bottom: "data"', '\u0000', '\u00ff', 'é'];

function mutateText(src: string, r: () => number): string {
  const n = 1 + Math.floor(r() * 3);
  let s = src;
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * (s.length + 1));
    switch (Math.floor(r() * 7)) {
      case 0: // delete a span
        s = s.slice(0, i) + s.slice(Math.min(s.length, i + 1 + Math.floor(r() * 20)));
        break;
      case 1: // insert a token
        s = s.slice(0, i) + TOKENS[Math.floor(r() * TOKENS.length)] + s.slice(i);
        break;
      case 2: {
        // replace a number
        const nums = [...s.matchAll(/-?\d+(\.\d+)?/g)];
        if (nums.length) {
          const m = nums[Math.floor(r() * nums.length)];
          const repl = ['0', '-1', '1', '3', '65535', '2147483648', '1e9', '0.5', '-7'][Math.floor(r() * 9)];
          s = s.slice(0, m.index!) + repl + s.slice(m.index! + m[0].length);
        }
        break;
      }
      case 3: {
        // duplicate or drop a line
        const lines = s.split('\n');
        const j = Math.floor(r() * lines.length);
        if (r() < 0.5) lines.splice(j, 0, lines[j]);
        else lines.splice(j, 1);
        s = lines.join('\n');
        break;
      }
      case 4: {
        // swap two quoted names (rewires the graph)
        const names = [...s.matchAll(/"[^"\n]*"/g)];
        if (names.length > 1) {
          const a = names[Math.floor(r() * names.length)];
          const b = names[Math.floor(r() * names.length)];
          s = s.slice(0, a.index!) + b[0] + s.slice(a.index! + a[0].length);
        }
        break;
      }
      case 5: // truncate
        s = s.slice(0, i);
        break;
      default: // flip a character
        if (s.length) s = s.slice(0, i) + String.fromCharCode(Math.floor(r() * 128)) + s.slice(i + 1);
    }
  }
  return s;
}

function mutateBytes(src: Uint8Array, r: () => number): Uint8Array {
  const b = Buffer.from(src);
  const kind = Math.floor(r() * 5);
  if (kind === 0) return b.subarray(0, Math.floor(r() * b.length)); // truncate
  if (kind === 1) {
    // insert random bytes
    const i = Math.floor(r() * b.length);
    const ins = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256)));
    return Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
  }
  if (kind === 2) {
    // delete a span
    const i = Math.floor(r() * b.length);
    return Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + Math.floor(r() * 16)))]);
  }
  // flip bytes, biased towards the head where tags and lengths live
  const flips = 1 + Math.floor(r() * 4);
  for (let k = 0; k < flips; k++) {
    const i = kind === 3 ? Math.floor(r() * Math.min(b.length, 512)) : Math.floor(r() * b.length);
    b[i] = Math.floor(r() * 256);
  }
  return b;
}

interface Tally {
  ok: number;
  typed: Record<string, number>;
}

function attempt(prototxt: Uint8Array, caffemodel: Uint8Array, t: Tally, replay: string): void {
  try {
    convertCaffe({ prototxt, prototxtFile: 'fuzz.prototxt', caffemodel, caffemodelFile: 'fuzz.caffemodel' });
    t.ok++;
  } catch (e) {
    if (!(e instanceof ModelshipError)) {
      throw new Error(`untyped ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} (${replay})\n${(e as Error)?.stack}`);
    }
    expect(e.message.length).toBeGreaterThan(10);
    t.typed[e.code] = (t.typed[e.code] ?? 0) + 1;
  }
}

const NETS = ['zoo_branch', 'zoo_conv', 'zoo_legacy', 'lenet_v1'].map((n) => ({
  name: n,
  prototxt: fs.readFileSync(path.join(FIXTURES, n, 'deploy.prototxt'), 'utf8'),
  caffemodel: fs.readFileSync(path.join(FIXTURES, n, 'weights.caffemodel')),
}));

describe('fuzz: mutated inputs give typed errors, never a crash or a hang', () => {
  test('6,000 mutated prototxts (seed 1)', () => {
    const r = rng(1);
    const t: Tally = { ok: 0, typed: {} };
    const started = Date.now();
    for (let i = 0; i < 6000; i++) {
      const net = NETS[i % NETS.length];
      attempt(Buffer.from(mutateText(net.prototxt, r), 'utf8'), net.caffemodel, t, `prototxt case ${i}, seed 1, net ${net.name}`);
    }
    if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify(t));
    // some mutations are harmless (comments, whitespace), most must be caught
    expect(t.ok).toBeGreaterThan(0);
    expect(Object.values(t.typed).reduce((a, b) => a + b, 0)).toBeGreaterThan(3000);
    expect(Object.keys(t.typed).sort()).toEqual(expect.arrayContaining(['graph', 'schema', 'syntax', 'unsupported', 'weights']));
    expect(Date.now() - started).toBeLessThan(100_000);
  });

  test('4,000 mutated caffemodels (seed 2)', () => {
    const r = rng(2);
    const t: Tally = { ok: 0, typed: {} };
    for (let i = 0; i < 4000; i++) {
      const net = NETS[i % 3]; // the small zoo weights: lenet_v1 is 1.7 MB
      attempt(Buffer.from(net.prototxt, 'utf8'), mutateBytes(net.caffemodel, r), t, `caffemodel case ${i}, seed 2, net ${net.name}`);
    }
    if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify(t));
    expect(t.typed.binary).toBeGreaterThan(1000);
    expect(Object.values(t.typed).reduce((a, b) => a + b, 0) + t.ok).toBe(4000);
  });
});
