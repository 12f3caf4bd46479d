// Benchmark: the convert fuzz of test/fuzz.test.ts, timed (the standard: tests that measure time live in bench/).
//   npx tsx bench/fuzz.ts [--runs N]
// The same seeded cases as the test: 6,000 mutated prototxts (seed 1) and 4,000 mutated caffemodels (seed 2), each
// converted in process. Prints the wall time of each set, the mean per case and the slowest case (with what replays
// it). Goal: the 6,000 prototxts in < 100 s, no case over 1 s. Exits 1 when a goal is missed.
import * as os from 'os';
import { convertCaffe } from '../src/convert/converter';
import { rng } from '../test/helpers/rng';
import { NETS, mutateBytes, mutateText } from '../test/helpers/fuzz';

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(args[runsAt + 1]) : 1;

function timed(cases: number, make: (i: number) => { prototxt: Uint8Array; caffemodel: Uint8Array; replay: string }) {
  let slowest = { ms: 0, replay: '' };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < cases; i++) {
    const c = make(i);
    const s = process.hrtime.bigint();
    try {
      convertCaffe({ prototxt: c.prototxt, prototxtFile: 'fuzz.prototxt', caffemodel: c.caffemodel, caffemodelFile: 'fuzz.caffemodel' });
    } catch {
      /* typed or not: test/fuzz.test.ts checks that */
    }
    const ms = Number(process.hrtime.bigint() - s) / 1e6;
    if (ms > slowest.ms) slowest = { ms, replay: c.replay };
  }
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, slowest };
}

const missed: string[] = [];
console.log(`bench/fuzz.ts: ${os.cpus()[0]?.model ?? '?'} (${os.cpus().length} CPUs), Node ${process.version}`);
for (let run = 1; run <= RUNS; run++) {
  const r1 = rng(1);
  const text = timed(6000, (i) => {
    const net = NETS[i % NETS.length];
    return { prototxt: Buffer.from(mutateText(net.prototxt, r1), 'utf8'), caffemodel: net.caffemodel, replay: `prototxt case ${i}, seed 1, net ${net.name}` };
  });
  const r2 = rng(2);
  const bytes = timed(4000, (i) => {
    const net = NETS[i % 3];
    return {
      prototxt: Buffer.from(net.prototxt, 'utf8'),
      caffemodel: mutateBytes(net.caffemodel, r2),
      replay: `caffemodel case ${i}, seed 2, net ${net.name}`,
    };
  });
  for (const [what, r, cases, budget] of [
    ['6,000 mutated prototxts', text, 6000, 100_000],
    ['4,000 mutated caffemodels', bytes, 4000, Infinity],
  ] as const) {
    console.log(
      `run ${run}: ${what}: ${(r.ms / 1000).toFixed(1)} s, ${(r.ms / cases).toFixed(2)} ms per case; slowest ${r.slowest.ms.toFixed(0)} ms (${r.slowest.replay})`,
    );
    if (r.ms >= budget) missed.push(`${what}: ${(r.ms / 1000).toFixed(1)} s (goal < ${budget / 1000} s)`);
    if (r.slowest.ms >= 1000) missed.push(`${what}: one case took ${r.slowest.ms.toFixed(0)} ms (${r.slowest.replay}; goal < 1 s)`);
  }
}
console.log(missed.length ? `MISSED: ${missed.join('; ')}` : 'all goals met');
process.exit(missed.length ? 1 : 0);
