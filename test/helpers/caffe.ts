import * as path from 'path';
import * as fs from 'fs';
import * as os from 'os';
import { caffeSchema } from '../../src/formats/schema/caffe';

/** Caffe's full schema (the project's), whose NetParameter writes caffemodels in the layouts real files use. */
export const caffeRoot = caffeSchema;

export function encodeNet(obj: Record<string, unknown>): Uint8Array {
  const T = caffeRoot().lookupType('caffe.NetParameter');
  const err = T.verify(obj);
  if (err) throw new Error(err);
  return T.encode(T.fromObject(obj)).finish();
}

export const REPO = path.resolve(__dirname, '../..');
export const FIXTURES = path.join(REPO, 'test/fixtures/caffe');
/** ../shared/caffe-oracle beside the checkout (CI places shared/ next to the clone) */
export const ORACLE = path.resolve(REPO, '../shared/caffe-oracle');

export function oracleAvailable(): boolean {
  return fs.existsSync(path.join(ORACLE, 'models'));
}

/**
 * A fresh temporary directory. Under jest it lies in the run's own directory (MODELSHIP_TEST_TMP, made by
 * global-setup.ts), which global-teardown.ts removes when the run ends: images, models and venvs the tests write do
 * not pile up in /tmp.
 */
export function tmpDir(prefix = 'modelship-test-'): string {
  return fs.mkdtempSync(path.join(process.env.MODELSHIP_TEST_TMP || os.tmpdir(), prefix));
}

/**
 * The "wrong model" of the rollout tests: LeNet's weights with one ip2 bias moved, so class 3 wins more often than
 * Caffe says. Writes it to `file` and returns the path.
 */
export function wrongLenetCaffemodel(lenetDir: string, file: string): string {
  const T = caffeRoot().lookupType('caffe.NetParameter');
  const net = T.decode(fs.readFileSync(path.join(lenetDir, 'weights.caffemodel'))) as any;
  net.layer.find((l: any) => l.name === 'ip2').blobs[1].data[3] += 5;
  fs.writeFileSync(file, T.encode(net).finish());
  return file;
}
