import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';
import * as yaml from 'js-yaml';
import { REPO } from './caffe';
import { NODE24 } from './runner';

/**
 * Workflows as a GitHub Actions engine runs them: nektos/act (built from the Go module proxy by scripts/test.sh into
 * .tools/bin/act), jobs on this host (`-P <label>=-self-hosted`), this repository as `org/modelship@v1` (a copy of
 * what a tag checkout holds: tracked and unignored files, so dist/ as committed), reusable workflows resolved from
 * it. What cannot be had here is stood in for, each named:
 * - actions/checkout@v4: act copies the caller's working tree into the job's workspace instead (its built-in
 *   behaviour for a checkout of the repository under test);
 * - docker/setup-buildx-action@v3, actions/upload-artifact@v4 and actions/download-artifact@v4: composite
 *   actions of ours (GitHub's code cannot be downloaded here): the first reports the host's buildx builder, the second
 *   copies the files (a directory's contents, as GitHub's does) into a directory the test reads, the third copies
 *   them back into a later job's workspace;
 * - GitHub's REST API: a recording fake of the issue-comments endpoints (githubFake), reached through GITHUB_API_URL.
 */

export const ACT = path.join(REPO, '.tools/bin/act');
export const ACT_VERSION = '0.2.89';

export function requireAct(): void {
  let v = '';
  try {
    v = execFileSync(ACT, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    /* missing */
  }
  if (v !== `act version ${ACT_VERSION}`)
    throw new Error(
      `${ACT} is not nektos/act ${ACT_VERSION} (${v || 'missing'}): scripts/test.sh builds it (GOFLAGS=-mod=mod GOBIN=$PWD/.tools/bin go install github.com/nektos/act@v${ACT_VERSION})`,
    );
}

/** This repository as a tag checkout has it: tracked and unignored files (no node_modules, no .tools). */
export function actionCheckout(dir: string): string {
  const files = execFileSync('git', ['ls-files', '-z', '-co', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f && fs.existsSync(path.join(REPO, f)));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
    fs.chmodSync(path.join(dir, f), fs.statSync(path.join(REPO, f)).mode);
  }
  return dir;
}

/** The stand-ins for GitHub's own actions (see above), as action repositories. */
export function standIns(dir: string): Record<string, string> {
  const write = (name: string, action: object) => {
    fs.mkdirSync(path.join(dir, name), { recursive: true });
    fs.writeFileSync(path.join(dir, name, 'action.yml'), yaml.dump(action, { lineWidth: 200 }));
    return path.join(dir, name);
  };
  return {
    'docker/setup-buildx-action@v3': write('setup-buildx', {
      name: 'stand-in for docker/setup-buildx-action (reports the host builder; creates none)',
      outputs: { name: { value: '${{ steps.b.outputs.name }}' }, driver: { value: '${{ steps.b.outputs.driver }}' } },
      runs: {
        using: 'composite',
        steps: [
          {
            id: 'b',
            shell: 'bash',
            run: 'docker buildx version\necho "name=$(docker buildx inspect | sed -n "s/^Name: *//p" | head -1)" >> "$GITHUB_OUTPUT"\necho "driver=$(docker buildx inspect | sed -n "s/^Driver: *//p" | head -1)" >> "$GITHUB_OUTPUT"',
          },
        ],
      },
    }),
    'actions/upload-artifact@v4': write('upload-artifact', {
      name: 'stand-in for actions/upload-artifact (copies the files to $ACT_ARTIFACTS/<name>/)',
      inputs: { name: { default: 'artifact' }, path: { required: true }, 'if-no-files-found': { default: 'warn' } },
      runs: {
        using: 'composite',
        steps: [
          {
            shell: 'bash',
            env: { NAME: '${{ inputs.name }}', FILES: '${{ inputs.path }}' },
            run: 'mkdir -p "$ACT_ARTIFACTS/$NAME"\nwhile IFS= read -r f; do [ -n "$f" ] && [ -e "$f" ] || continue; if [ -d "$f" ]; then cp -r "$f/." "$ACT_ARTIFACTS/$NAME/"; else cp "$f" "$ACT_ARTIFACTS/$NAME/"; fi; done <<< "$FILES"\nls "$ACT_ARTIFACTS/$NAME"',
          },
        ],
      },
    }),
    'actions/download-artifact@v4': write('download-artifact', {
      name: 'stand-in for actions/download-artifact (copies $ACT_ARTIFACTS/<name>/ into path)',
      inputs: { name: { required: true }, path: { default: '.' } },
      runs: {
        using: 'composite',
        steps: [
          {
            shell: 'bash',
            env: { NAME: '${{ inputs.name }}', DEST: '${{ inputs.path }}' },
            run: '[ -d "$ACT_ARTIFACTS/$NAME" ] || { echo "::error::Artifact not found: $NAME"; exit 1; }\nmkdir -p "$DEST"\ncp -r "$ACT_ARTIFACTS/$NAME/." "$DEST/"\nls "$DEST"',
          },
        ],
      },
    }),
  };
}

export interface ApiRequest {
  method: string;
  path: string;
  auth?: string;
  body?: { body?: string };
}

/** A recording fake of GitHub's REST API: the issue-comments endpoints the preview and cleanup stages call. */
export async function githubFake(): Promise<{
  url: string;
  requests: ApiRequest[];
  comments: Map<number, { id: number; issue: number; body: string }>;
  close: () => Promise<void>;
}> {
  const requests: ApiRequest[] = [];
  const comments = new Map<number, { id: number; issue: number; body: string }>();
  let next = 1000;
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (d) => (data += d));
    req.on('end', () => {
      const u = new URL(req.url!, 'http://x');
      const body = data ? (JSON.parse(data) as { body?: string }) : undefined;
      requests.push({ method: req.method!, path: u.pathname, auth: req.headers.authorization, body });
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const view = (c: { id: number; issue: number; body: string }) => ({
        id: c.id,
        body: c.body,
        html_url: `https://github.com/acme/models/pull/${c.issue}#issuecomment-${c.id}`,
      });
      const list = /^\/repos\/[^/]+\/[^/]+\/issues\/(\d+)\/comments$/.exec(u.pathname);
      if (list && req.method === 'GET') return send(200, [...comments.values()].filter((c) => c.issue === Number(list[1])).map(view));
      if (list && req.method === 'POST') {
        const c = { id: next++, issue: Number(list[1]), body: body?.body ?? '' };
        comments.set(c.id, c);
        return send(201, view(c));
      }
      const one = /^\/repos\/[^/]+\/[^/]+\/issues\/comments\/(\d+)$/.exec(u.pathname);
      if (one && req.method === 'PATCH' && comments.has(Number(one[1]))) {
        const c = comments.get(Number(one[1]))!;
        c.body = body?.body ?? c.body;
        return send(200, view(c));
      }
      send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, comments, close: () => new Promise((r) => server.close(() => r())) };
}

export interface ActRun {
  code: number | null;
  log: string;
  /** `toJSON(needs)` as the caller's report job saw it: each called job's result and outputs */
  needs: Record<string, { result: string; outputs: Record<string, string> }>;
  /** each job that ran, by its id (the called workflow's jobs too): succeeded or failed, from act's log */
  jobs: Record<string, 'succeeded' | 'failed'>;
  seconds: number;
}

/** act's closing line of each job (`[<workflow>/<job name>] 🏁  Job succeeded`), by the job's last path segment. */
export function jobResults(log: string): ActRun['jobs'] {
  const jobs: ActRun['jobs'] = {};
  for (const m of log.matchAll(/^\[([^\]]+)\]\s+\S+\s+Job (succeeded|failed)$/gm)) jobs[m[1].split('/').pop()!.trim()] = m[2] as 'succeeded' | 'failed';
  return jobs;
}

/**
 * A caller repository as a user has it: the model files, the caller workflow (a template of workflows/ with the
 * lab's values) and a report job after the call, which writes what the caller sees (`toJSON(needs)`).
 */
export function callerRepo(dir: string, files: Record<string, string | { copy: string }>, workflows: Record<string, object>): string {
  for (const [rel, what] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    if (typeof what === 'string') fs.writeFileSync(path.join(dir, rel), what);
    else fs.cpSync(what.copy, path.join(dir, rel), { recursive: true });
  }
  execFileSync('chmod', ['-R', 'u+w', dir]);
  for (const [name, wf] of Object.entries(workflows)) {
    fs.mkdirSync(path.join(dir, '.github/workflows'), { recursive: true });
    fs.writeFileSync(path.join(dir, '.github/workflows', name), yaml.dump(wf, { lineWidth: 200 }));
  }
  const git = (...a: string[]) => execFileSync('git', a, { cwd: dir, stdio: 'pipe' });
  if (!fs.existsSync(path.join(dir, '.git'))) {
    git('init', '-q', '-b', 'main');
    // act takes github.repository from the origin remote
    git('remote', 'add', 'origin', 'https://github.com/acme/models.git');
  }
  git('add', '-A');
  git('-c', 'user.email=dev@example.com', '-c', 'user.name=dev', 'commit', '-q', '--allow-empty', '-m', 'model');
  return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
}

/** The model of the lab's callers: LeNet and real Caffe's outputs for it, at the paths the caller's `with:` names. */
export function lenetFiles(lenetDir: string): Record<string, { copy: string }> {
  const files: Record<string, { copy: string }> = {
    'models/lenet/deploy.prototxt': { copy: path.join(lenetDir, 'deploy.prototxt') },
    'models/lenet/weights.caffemodel': { copy: path.join(lenetDir, 'weights.caffemodel') },
  };
  for (const f of ['input_b1.npy', 'output_b1__prob.npy', 'summary.json', 'blobs_b1'])
    if (fs.existsSync(path.join(lenetDir, f))) files[`models/lenet/reference/${f}`] = { copy: path.join(lenetDir, f) };
  return files;
}

export const LENET_WITH = { prototxt: 'models/lenet/deploy.prototxt', caffemodel: 'models/lenet/weights.caffemodel', reference: 'models/lenet/reference' };
/** What the lab needs of every rollout, through the workflows' named inputs: the real node (its label and taint), small pods, a short bake. */
export const LAB_ROLLOUT_WITH = {
  'node-selector': 'realnode=true',
  tolerations: '[{key: realnode, operator: Exists, effect: NoSchedule}]',
  cpu: '200m',
  memory: '512Mi',
  'bake-time': 10,
};

/** A caller workflow from a template of workflows/: its `on:`, permissions and secrets (and moreSecrets), the given `with:`, a report job. */
export function callerFromTemplate(template: string, job: string, withValues: Record<string, unknown>, moreSecrets: Record<string, string> = {}): object {
  const wf = yaml.load(fs.readFileSync(path.join(REPO, 'workflows', template), 'utf8')) as {
    jobs: Record<string, { with?: Record<string, unknown>; secrets?: Record<string, string> }>;
  };
  const called = wf.jobs[job];
  if (!called) throw new Error(`workflows/${template} has no job ${job}`);
  called.with = { ...withValues };
  if (Object.keys(moreSecrets).length) called.secrets = { ...called.secrets, ...moreSecrets };
  return {
    ...wf,
    jobs: {
      ...wf.jobs,
      report: {
        needs: [job],
        if: '${{ always() }}',
        'runs-on': 'ubuntu-latest',
        steps: [{ shell: 'bash', env: { NEEDS: '${{ toJSON(needs) }}' }, run: 'printf "%s" "$NEEDS" > "$ACT_REPORT"' }],
      },
    },
  };
}

/** Run `act <event>` for one workflow of the caller repository; resolves when act exits. */
export function runAct(o: {
  repo: string;
  workflow: string;
  event: string;
  payload: object;
  actionDir: string;
  standIns: Record<string, string>;
  secrets: Record<string, string>;
  env?: Record<string, string>;
  work: string;
  timeoutMs?: number;
  /** HOME of act (its cache of actions and the runner's tool cache live under it): a fresh one for a cold run */
  home?: string;
}): Promise<ActRun> {
  const eventFile = path.join(o.work, `event-${Date.now()}.json`);
  fs.writeFileSync(eventFile, JSON.stringify(o.payload));
  // secrets as a dotenv file (multi-line values escaped), removed when act is done
  const secretFile = path.join(o.work, `secrets-${Date.now()}.env`);
  fs.writeFileSync(
    secretFile,
    Object.entries(o.secrets)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join('\n') + '\n',
    { mode: 0o600 },
  );
  const report = path.join(o.work, `needs-${Date.now()}.json`);
  const artifacts = path.join(o.work, 'artifacts');
  const env = { ACT_REPORT: report, ACT_ARTIFACTS: artifacts, ...(o.env ?? {}) };
  const args = [
    o.event,
    '-W',
    `.github/workflows/${o.workflow}`,
    '-e',
    eventFile,
    '-P',
    'ubuntu-latest=-self-hosted',
    '-P',
    'self-hosted=-self-hosted',
    '-P',
    'gpu=-self-hosted',
    '--action-offline-mode',
    '--local-repository',
    `org/modelship@v1=${o.actionDir}`,
    ...Object.entries(o.standIns).flatMap(([ref, dir]) => ['--local-repository', `${ref}=${dir}`]),
    '--secret-file',
    secretFile,
    '--actor',
    'octocat',
    ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
  ];
  const started = Date.now();
  // a runner's environment, not the test's: Node 24 first on PATH (the action's node24), nothing of the lab's
  const childEnv: NodeJS.ProcessEnv = {
    PATH: `${path.dirname(NODE24)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: o.home ?? process.env.HOME,
    LANG: 'C.UTF-8',
  };
  return new Promise((resolve, reject) => {
    const child = spawn(ACT, args, { cwd: o.repo, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 600_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      fs.rmSync(secretFile, { force: true });
      const needs = fs.existsSync(report) ? (JSON.parse(fs.readFileSync(report, 'utf8') || '{}') as ActRun['needs']) : {};
      resolve({ code, log, needs, jobs: jobResults(log), seconds: (Date.now() - started) / 1000 });
    });
  });
}
