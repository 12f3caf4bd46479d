#!/usr/bin/env node
import { isMainThread } from 'worker_threads';

/**
 * One bundle, three front doors. The runner starts `node dist/index.js` with no arguments and GITHUB_ACTIONS=true:
 * that is the action. Anything else (`npx modelship convert ...`, also inside a workflow `run:` step) is the CLI.
 * The serving runtime's worker threads start this same file (see serve/threads.ts): they run the worker's main only.
 * Each door loads only its own modules, on use: `modelship convert` starts without @actions/core, the serving
 * runtime or the other stages. The action's door is a chunk of its own in the bundle (dist/NNN.index.js, with
 * @actions/core and its HTTP client, a third of the bundle): the CLI does not even parse it.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- each door requires its modules when taken (above), kept in the bundle's main file */
const serveWorker = isMainThread ? undefined : (require('./serve/worker') as typeof import('./serve/worker'));
if (serveWorker?.isServeWorker()) {
  serveWorker.workerMain();
} else {
  const argv = process.argv.slice(2);
  if (argv.length === 0 && process.env.GITHUB_ACTIONS === 'true') {
    // the runner gives the post step the state the main step saved (@actions/core saveState → STATE_isPost)
    void import('./action/main').then(({ action, post }) => (process.env.STATE_isPost === 'true' ? post() : action()));
  } else {
    const { cli } = require('./cli') as typeof import('./cli');
    void cli(argv).then((code) => {
      process.exitCode = code;
    });
  }
}
/* eslint-enable @typescript-eslint/no-require-imports -- the doors end here */
