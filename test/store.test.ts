import * as fs from 'fs';
import * as path from 'path';
import { storePush, storePull } from '../src/store';
import { sha256 } from '../src/util/fsx';
import { FIXTURES, tmpDir } from './helpers/caffe';

const artifact = path.join(FIXTURES, 'lenet/weights.caffemodel'); // any file: the store does not care what it holds

// in a registry (the lab's): test/store.lab.test.ts
describe('content-addressed model storage', () => {
  test('directory (OCI image layout): push, then restore by digest, verified', async () => {
    const dir = tmpDir();
    const store = path.join(dir, 'store');
    const pushed = await storePush(artifact, `dir:${store}`, { tag: 'lenet-v1' });
    expect(pushed.artifactDigest).toBe(`sha256:${sha256(fs.readFileSync(artifact))}`);
    expect(JSON.parse(fs.readFileSync(path.join(store, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(fs.readFileSync(path.join(store, 'index.json'), 'utf8'));
    expect(index.manifests).toEqual([
      expect.objectContaining({ digest: pushed.manifestDigest, annotations: { 'org.opencontainers.image.ref.name': 'lenet-v1' } }),
    ]);
    const out = path.join(dir, 'restored.bin');
    const pulled = await storePull(`dir:${store}@${pushed.manifestDigest}`, out);
    expect(pulled.artifactDigest).toBe(pushed.artifactDigest);
    expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(artifact))).toBe(0);
  });

  test('a corrupted blob is detected on restore and nothing is written', async () => {
    const dir = tmpDir();
    const store = path.join(dir, 'store');
    const pushed = await storePush(artifact, `dir:${store}`);
    const blob = path.join(store, 'blobs/sha256', pushed.artifactDigest.slice(7));
    const b = fs.readFileSync(blob);
    b[100] ^= 0xff;
    fs.writeFileSync(blob, b);
    const out = path.join(dir, 'restored.bin');
    await expect(storePull(`dir:${store}@${pushed.manifestDigest}`, out)).rejects.toThrow(/is corrupted: its content hashes to sha256:/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
