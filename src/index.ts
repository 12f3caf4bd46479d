#!/usr/bin/env node
import { isServeWorker, workerMain } from './serve/worker';

/**
 * One bundle, three front doors. The runner starts `node dist/index.js` with no arguments and GITHUB_ACTIONS=true:
 * that is the action. Anything else (`npx modelship convert ...`, also inside a workflow `run:` step) is the CLI.
 * The serving runtime's worker threads start this same file (see serve/threads.ts): they run the worker's main only.
 */
if (isServeWorker()) {
  workerMain();
} else {
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded only on the main thread: a worker needs neither */
  const { cli } = require('./cli') as typeof import('./cli');
  const { action, post } = require('./action/main') as typeof import('./action/main');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const argv = process.argv.slice(2);
  if (argv.length === 0 && process.env.GITHUB_ACTIONS === 'true') {
    // the runner gives the post step the state the main step saved (@actions/core saveState → STATE_isPost)
    void (process.env.STATE_isPost === 'true' ? post() : action());
  } else {
    void cli(argv).then((code) => {
      process.exitCode = code;
    });
  }
}
