import * as fs from 'fs';
import * as path from 'path';
import { FIXTURES } from './caffe';

// The mutators of the convert fuzz (test/fuzz.test.ts; its timing: bench/fuzz.ts), seeded through rng.ts.

const TOKENS = [
  '{',
  '}',
  ':',
  '"',
  "'",
  '#',
  '[',
  ']',
  ',',
  '-',
  '0',
  '-1',
  '999999999',
  '1e40',
  'nan',
  'inf',
  '\\',
  '\n',
  ' ',
  'layer',
  'bottom',
  'top',
  'type',
  'num_output',
  'kernel_size',
  'stride: 0',
  'pad: 7',
  'group: 3',
  'axis: -9',
  'dim: 0',
  'dim: -1',
  'slice_point: 1',
  'type: "Reshape"',
  'type: "Crop"',
  'type: "Eltwise"',
  'type: "Slice"',
  'type: "Split"',
  'top: "data"',
  'bottom: "data"',
  '\u0000',
  '\u00ff',
  'é',
];

export function mutateText(src: string, r: () => number): string {
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
          s = s.slice(0, m.index) + repl + s.slice(m.index + m[0].length);
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
          s = s.slice(0, a.index) + b[0] + s.slice(a.index + a[0].length);
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

export function mutateBytes(src: Uint8Array, r: () => number): Uint8Array {
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

/** The nets mutated: small fixtures of every layer family (lenet_v1's caffemodel is 1.7 MB). */
export const NETS = ['zoo_branch', 'zoo_conv', 'zoo_legacy', 'lenet_v1'].map((n) => ({
  name: n,
  prototxt: fs.readFileSync(path.join(FIXTURES, n, 'deploy.prototxt'), 'utf8'),
  caffemodel: fs.readFileSync(path.join(FIXTURES, n, 'weights.caffemodel')),
}));
