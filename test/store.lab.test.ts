import * as fs from 'fs';
import * as path from 'path';
import { storePush, storePull } from '../src/store';
import { sha256 } from '../src/util/fsx';
import { FIXTURES, tmpDir } from './helpers/caffe';
import { LAB } from './helpers/lab';
import { labDescribe } from './helpers/needs';

// Model storage (test/store.test.ts) in the lab registry (lab/up.sh docker).
const artifact = path.join(FIXTURES, 'lenet/weights.caffemodel'); // any file: the store does not care what it holds

labDescribe(['registry'])('content-addressed model storage in a registry', () => {
  test('registry: pushed as an OCI artifact, restored by digest', async () => {
    const repo = `${LAB.registry}/modelship-test/store-${process.pid}`;
    const pushed = await storePush(artifact, `oci:${repo}`, { tag: 'v1' });
    expect(pushed.location).toBe(`oci:${repo}@${pushed.manifestDigest}`);
    const out = path.join(tmpDir(), 'restored.bin');
    await storePull(pushed.location, out);
    expect(sha256(fs.readFileSync(out))).toBe(pushed.artifactDigest.slice(7));
    await expect(storePull(`oci:${repo}:v1`, out)).rejects.toThrow(/pull needs a digest/);
  });
});
