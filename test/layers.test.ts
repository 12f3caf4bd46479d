import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { REPO, tmpDir } from './helpers/caffe';

// The layers of src/ and the rules between them (.dependency-cruiser.cjs, checked by `npm run lint:deps`, which
// scripts/test.sh runs). Here: src/ keeps them, each rule catches what it is for (on a small tree made to break each
// once), and README's map is the rule file's.
const CONFIG = path.join(REPO, '.dependency-cruiser.cjs');
const DEPCRUISE = path.join(REPO, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Rule {
  name: string;
  from: { path?: string };
  to: { path?: string };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the rule file is CommonJS, read as depcruise reads it
const RULES = (require(CONFIG) as { forbidden: Rule[] }).forbidden;

/** `rule: from → to` for every violation depcruise finds in `dir`'s src/ (cycles as `rule: a → b → a`). */
function violations(dir: string): string[] {
  const r = spawnSync(process.execPath, [DEPCRUISE, 'src', '--config', CONFIG, '--output-type', 'json'], { cwd: dir, encoding: 'utf8' });
  if (!r.stdout.trim()) throw new Error(`depcruise printed nothing (exit ${r.status}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { summary: { violations: { from: string; to: string; rule: { name: string }; cycle?: { name: string }[] }[] } };
  return out.summary.violations
    .map((v) => `${v.rule.name}: ${v.cycle ? [v.from, ...v.cycle.map((c) => c.name)].join(' → ') : v.to === v.from ? v.from : `${v.from} → ${v.to}`}`)
    .sort();
}

describe('the layers of src/ (.dependency-cruiser.cjs)', () => {
  test('src/ keeps them', () => {
    expect(violations(REPO)).toEqual([]);
  });

  test('each rule catches what it is for', () => {
    const dir = tmpDir('layers-');
    const files: Record<string, string> = {
      'tsconfig.json':
        '{ "compilerOptions": { "module": "ESNext", "moduleResolution": "Bundler", "strict": true, "noEmit": true }, "include": ["src/**/*.ts"] }',
      'package.json': '{ "name": "layers", "version": "0.0.0" }',
      // upward
      'src/util/up.ts': "import { c } from '../convert/a'; export const u = c;",
      'src/formats/f.ts': "import { p } from '../protocol/p'; export const f = p;",
      'src/protocol/p.ts': 'export const p = 1;',
      // a stage into another; a runtime cycle (a ⇄ b) but not one closed by an `import type` (t1 ⇄ t2)
      'src/convert/a.ts': "import { k } from '../compile/k'; import { b } from './b'; export const c = k + b;",
      'src/convert/b.ts': "import { c } from './a'; export const b = 1; export const x = () => c;",
      'src/compile/t1.ts': "import type { T } from './t2'; export const t1 = (x: T) => x;",
      'src/compile/t2.ts': "import { t1 } from './t1'; export type T = number; export const t2 = t1;",
      'src/compile/k.ts': "import { t2 } from './t2'; export const k = t2(1);",
      // preview may use rollout's kube.ts, not its lease.ts
      'src/preview/index.ts': "import { kube } from '../rollout/kube'; import { lease } from '../rollout/lease'; export const pv = kube + lease;",
      'src/rollout/kube.ts': 'export const kube = 1;',
      'src/rollout/lease.ts': 'export const lease = 1;',
      // the server into shared/
      'src/serve/x.ts': "import { s } from '../shared/s'; export const sv = s;",
      'src/shared/s.ts': "import { stray } from '../stray'; export const s = stray;",
      // modules in no layer, and one nothing uses
      'src/stray.ts': 'export const stray = 1;',
      'src/stray2.ts': "import * as fs from 'fs'; export const st = fs;",
      'src/convert/orphan.ts': 'export const lonely = 1;',
    };
    for (const [f, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), text + '\n');
    }
    expect(violations(dir)).toEqual(
      [
        'in-a-layer-importer: src/stray2.ts → fs',
        'in-a-layer: src/shared/s.ts → src/stray.ts',
        'no-circular: src/convert/a.ts → src/convert/b.ts → src/convert/a.ts',
        'no-cross-stage: src/convert/a.ts → src/compile/k.ts',
        'no-orphans: src/convert/orphan.ts',
        'no-upward-from-formats: src/formats/f.ts → src/protocol/p.ts',
        'no-upward-from-util: src/util/up.ts → src/convert/a.ts',
        'preview-composes-rollout: src/preview/index.ts → src/rollout/lease.ts',
        'serve-speaks-only-the-protocol: src/serve/x.ts → src/shared/s.ts',
      ].sort(),
    );
  });

  test("README's map is the rule file's: the same layers, in order, each row's paths in its layer", () => {
    // bottom to top: each no-upward rule is a layer; the top one is what the last rule keeps out
    const upward = RULES.filter((r) => r.name.startsWith('no-upward-from-'));
    const layers = upward.map((r) => ({ name: r.name.slice('no-upward-from-'.length), path: new RegExp(r.from.path!) }));
    layers.push({ name: '', path: new RegExp(upward[upward.length - 1].to.path!) });
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## How it is built'), readme.indexOf('\n## ', readme.indexOf('## How it is built') + 1));
    const rows = [...section.matchAll(/^\s*\| `([a-z]+)` \| ([^|]+) \|/gm)].map((m) => ({
      name: m[1],
      paths: [...m[2].matchAll(/`([^`]+)`/g)].map((p) => p[1]),
    }));
    expect(rows).toHaveLength(layers.length);
    const readmeBottomUp = rows.reverse();
    readmeBottomUp.forEach((row, i) => {
      if (layers[i].name) expect(row.name).toBe(layers[i].name);
      for (const p of row.paths) {
        const module = p.endsWith('/') ? `${p}x.ts` : p;
        expect([p, layers.map((l) => l.path.test(module))]).toEqual([p, layers.map((_, j) => j === i)]);
      }
    });
  });
});
