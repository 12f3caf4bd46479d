import * as fs from 'fs';
import * as core from '@actions/core';
import { INPUTS, readConfig } from '../config';
import { Logger } from '../stage';
import { runStage } from '../run';
import { externalFailure, isModelshipError } from '../util/errors';
import { cleanupSmokeContainers } from '../smoke';
import { kubeconfigFile, rolloutOwner } from '../rollout/owner';
import { prNumber, previewNamespace } from '../preview';

const actionLogger: Logger = {
  info: (m) => core.info(m),
  warning: (m, where) => core.warning(m, where?.file ? { file: where.file, startLine: where.line, startColumn: where.column } : undefined),
  group: (name, fn) => core.group(name, fn),
};

/**
 * The post step (action.yml `post:`, always run): clean up what a cancelled or failed main step left behind.
 * The runner marks it by the state the main step saved.
 */
export async function post(): Promise<void> {
  try {
    const removed = await cleanupSmokeContainers(actionLogger);
    const state = core.getState('rollout');
    if (state) {
      const r = JSON.parse(state) as { kubeconfig: string; namespace: string; app: string; owner: string; temporary: boolean };
      try {
        const { cleanupRollout } = await import('../rollout');
        removed.push(...(await cleanupRollout(r.kubeconfig, r.namespace, r.app, r.owner, actionLogger)));
      } finally {
        if (r.temporary) fs.rmSync(r.kubeconfig, { force: true });
      }
    }
    if (removed.length === 0) core.info('modelship post: nothing to clean up');
  } catch (e) {
    core.warning(`modelship post: cleanup failed: ${(e as Error).message}`);
  }
}

/** The GitHub Action: inputs from the runner (INPUT_*), outputs to GITHUB_OUTPUT, a job summary, annotations. */
export async function action(): Promise<void> {
  core.saveState('isPost', 'true');
  try {
    for (const i of INPUTS) {
      if (i.secret) {
        const v = core.getInput(i.name);
        if (v) core.setSecret(v);
      }
    }
    const cfg = readConfig((name) => core.getInput(name));
    if ((cfg.stage === 'rollout' || cfg.stage === 'preview' || cfg.stage === 'pipeline') && !cfg.rollout.dryRun) {
      // what the post step needs to remove a canary and a lease a cancelled run leaves behind
      const kubeconfig = kubeconfigFile(cfg.rollout.kubeconfig);
      const namespace = cfg.stage === 'preview' ? previewNamespace(cfg.rollout.app, prNumber(cfg.preview.prNumber)) : cfg.rollout.namespace;
      core.saveState(
        'rollout',
        JSON.stringify({ kubeconfig, namespace, app: cfg.rollout.app, owner: rolloutOwner(), temporary: kubeconfig !== cfg.rollout.kubeconfig }),
      );
      cfg.rollout.kubeconfig = cfg.preview.rollout.kubeconfig = cfg.cleanup.kubeconfig = kubeconfig;
    }
    const result = await runStage(cfg, actionLogger);
    for (const [k, v] of Object.entries(result.outputs)) core.setOutput(k, v);
    if (process.env.GITHUB_STEP_SUMMARY) await core.summary.addRaw(result.summary, true).write();
    if (!result.ok) core.setFailed(result.failure ?? 'stage failed');
  } catch (e) {
    const failure = externalFailure(e);
    if (isModelshipError(e)) {
      const loc = e.location;
      // one annotation that points at the file and line (setFailed would add a second, location-less one)
      core.error(
        e.message,
        loc.file
          ? { file: loc.file, startLine: loc.line, startColumn: loc.column, title: `modelship: ${e.code} error` }
          : { title: `modelship: ${e.code} error` },
      );
      process.exitCode = 1;
    } else if (failure) {
      // another system failed (the GitHub API, the network): its failure, named, not a bug in modelship
      core.error(failure.message, { title: `modelship: ${failure.system} failure` });
      process.exitCode = 1;
    } else {
      core.setFailed(`internal error (a bug in modelship): ${(e as Error).stack ?? String(e)}`);
    }
  }
}

/** The action's logic as @github/local-action calls it (`local-action run . src/action/main.ts .env`). */
export const run = action;
