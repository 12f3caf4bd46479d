import { convertCaffe } from '../src/convert/converter';
import { ModelshipError } from '../src/util/errors';
import { rng } from './helpers/rng';
import { NETS, mutateBytes, mutateText } from './helpers/fuzz';

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

// How long the cases take, and the slowest one (the former 100 s budget of the 6,000 prototxts): bench/fuzz.ts.
describe('fuzz: mutated inputs give typed errors, never a crash or a hang', () => {
  test('6,000 mutated prototxts (seed 1)', () => {
    const r = rng(1);
    const t: Tally = { ok: 0, typed: {} };
    for (let i = 0; i < 6000; i++) {
      const net = NETS[i % NETS.length];
      attempt(Buffer.from(mutateText(net.prototxt, r), 'utf8'), net.caffemodel, t, `prototxt case ${i}, seed 1, net ${net.name}`);
    }
    if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify(t));
    // some mutations are harmless (comments, whitespace), most must be caught
    expect(t.ok).toBeGreaterThan(0);
    expect(Object.values(t.typed).reduce((a, b) => a + b, 0)).toBeGreaterThan(3000);
    expect(Object.keys(t.typed).sort()).toEqual(expect.arrayContaining(['graph', 'schema', 'syntax', 'unsupported', 'weights']));
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
