#!/usr/bin/env node
import { cli } from './cli';
import { action } from './action/main';

/**
 * One bundle, two front doors. The runner starts `node dist/index.js` with no arguments and GITHUB_ACTIONS=true:
 * that is the action. Anything else (`npx modelship convert ...`, also inside a workflow `run:` step) is the CLI.
 */
const argv = process.argv.slice(2);
if (argv.length === 0 && process.env.GITHUB_ACTIONS === 'true') {
  void action();
} else {
  void cli(argv).then((code) => {
    process.exitCode = code;
  });
}
