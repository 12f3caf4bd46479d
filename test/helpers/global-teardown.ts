import * as fs from 'fs';

/** Removes the run's temporary directories (see tmpDir in caffe.ts); MODELSHIP_KEEP_TEST_TMP=1 keeps them to look at. */
export default async function globalTeardown(): Promise<void> {
  const dir = process.env.MODELSHIP_TEST_TMP;
  if (!dir || process.env.MODELSHIP_KEEP_TEST_TMP === '1' || !/modelship-run-/.test(dir)) return;
  fs.rmSync(dir, { recursive: true, force: true });
}
