#!/usr/bin/env node
import { cli } from './cli';
import { action, post } from './action/main';

/**
 * One bundle, two front doors. The runner starts `node dist/index.js` with no arguments and GITHUB_ACTIONS=true:
 * that is the action. Anything else (`npx modelship convert ...`, also inside a workflow `run:` step) is the CLI.
 */
const argv = process.argv.slice(2);
if (argv.length === 0 && process.env.GITHUB_ACTIONS === 'true') {
  // the runner gives the post step the state the main step saved (@actions/core saveState → STATE_isPost)
  void (process.env.STATE_isPost === 'true' ? post() : action());
} else {
  void cli(argv).then((code) => {
    process.exitCode = code;
  });
}
