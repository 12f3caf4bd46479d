import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * The run's temporary directory (test/helpers/caffe.ts tmpDir), removed by global-teardown.ts: the unit tier's whole
 * global setup, and the first step of the lab tier's (global-setup.ts).
 */
export default function runTmp(): void {
  process.env.MODELSHIP_TEST_TMP ??= fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-run-'));
}
