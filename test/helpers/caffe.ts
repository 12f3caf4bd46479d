import * as path from 'path';
import * as fs from 'fs';
import * as protobuf from 'protobufjs';
import { CAFFE_PROTO } from '../../src/convert/schema/caffe';

/** Caffe's full NetParameter encoder (protobufjs), to write caffemodels in the layouts real files use. */
let root: protobuf.Root | undefined;
export function caffeRoot(): protobuf.Root {
  if (!root) {
    root = protobuf.parse(CAFFE_PROTO, { keepCase: true }).root;
    root.resolveAll();
  }
  return root;
}

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

export function tmpDir(prefix = 'modelship-test-'): string {
  return fs.mkdtempSync(path.join(require('os').tmpdir(), prefix));
}
