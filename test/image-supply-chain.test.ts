import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { imageFacts } from '../src/image/supply-chain';
import { buildMlBom } from '../src/image/mlbom';
import { tmpDir } from './helpers/caffe';

// imageFacts: the facts the image stage gives the ML-BOM. The lineage is read from the model's own metadata; a file
// modelship cannot read as a model (the image stage accepts any bytes: the server judges them) is described without
// one, with a warning, rather than failing the build (test/image-cache-pr.lab.test.ts builds such images).
describe('imageFacts', () => {
  const dir = tmpDir('modelship-supply-chain-');
  const base = (file: string, bytes: Uint8Array, warn: (l: string) => void, dist?: string) =>
    imageFacts({
      repository: '127.0.0.1:5000/acme/m',
      digest: `sha256:${'a'.repeat(64)}`,
      tags: ['127.0.0.1:5000/acme/m:sha-aaaaaaa'],
      runtime: 'modelship',
      gpu: false,
      created: '2026-12-07T00:00:00.000Z',
      model: { name: 'm', path: file, bytes, fileInImage: path.basename(file), parity: 'unknown' },
      context: { base: { name: '127.0.0.1:5000/local/debian', digest: `sha256:${'b'.repeat(64)}` }, ...(dist ? { dist } : {}) },
      warn,
    });

  test('a model that is not ONNX: no lineage, a warning naming the file, and still a BOM with its sha256', () => {
    const file = path.join(dir, 'junk.onnx');
    const bytes = Buffer.from('not a real model');
    fs.writeFileSync(file, bytes);
    const warnings: string[] = [];
    const facts = base(file, bytes, (l) => warnings.push(l));
    expect(facts.model.lineage).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^ML-BOM: no lineage for ${file.replace(/[.]/g, '\\.')}: .*not an ONNX model`))]);
    const bom = JSON.parse(buildMlBom(facts).json) as { components: { type: string; hashes?: { content: string }[] }[] };
    const model = bom.components.find((c) => c.type === 'machine-learning-model')!;
    expect(model.hashes?.[0].content).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  test("a server bundle of one's own without ncc's licenses.txt (MODELSHIP_DIST): no npm packages, a warning naming it", () => {
    const dist = path.join(dir, 'own-dist');
    fs.mkdirSync(dist, { recursive: true });
    fs.writeFileSync(path.join(dist, 'index.js'), '// a stand-in bundle');
    const file = path.join(dir, 'junk2.onnx');
    fs.writeFileSync(file, 'x');
    const warnings: string[] = [];
    const facts = base(file, Buffer.from('x'), (l) => warnings.push(l), dist);
    expect(facts.npmPackages).toBeUndefined();
    expect(facts.bundleSha256).toBe(createHash('sha256').update('// a stand-in bundle').digest('hex'));
    expect(warnings).toContain(`ML-BOM: the server bundle has no licenses.txt (${path.join(dist, 'licenses.txt')}): its npm packages are not listed`);
  });
});
