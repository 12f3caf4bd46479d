import * as fs from 'fs';
import { PreviewConfig, CleanupConfig } from '../config';
import { Logger, StageResult } from '../stage';
import { ModelshipError } from '../util/errors';
import { deleteTag } from '../image/registry';

/**
 * PR deploy previews: `preview` deploys the PR's image to namespace `<app>-pr-<N>` (the rollout stage, so the
 * same verification) and posts or updates one PR comment with the URL, parity and smoke figures; `cleanup` (on PR
 * close) deletes the namespace and the `pr-<N>` image tag, and marks the comment. The GitHub API goes through
 * @actions/github (GITHUB_API_URL, GITHUB_REPOSITORY, as on a runner).
 */

/** The PR number: the input, else the pull_request event's (GITHUB_EVENT_PATH). */
export function prNumber(given: number | undefined, env: NodeJS.ProcessEnv = process.env): number {
  if (given !== undefined) return given;
  let payload: { pull_request?: { number?: number }; number?: number } = {};
  if (env.GITHUB_EVENT_PATH && fs.existsSync(env.GITHUB_EVENT_PATH)) payload = JSON.parse(fs.readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as typeof payload;
  const n = payload.pull_request?.number ?? payload.number;
  if (!n) throw new ModelshipError('input', `input "pr-number": not given, and the event (${env.GITHUB_EVENT_NAME ?? 'none'}) has no pull_request; run on pull_request or pass pr-number`, { field: 'pr-number' });
  return n;
}

export const previewNamespace = (app: string, pr: number) => `${app}-pr-${pr}`.slice(0, 63);
export const commentMarker = (app: string) => `<!-- modelship-preview:${app} -->`;

/** The PR comment, as markdown (pure). */
export function previewComment(o: { app: string; pr: number; namespace: string; url: string; image: string; decision: string; reason: string; verifyP95: string; report: Record<string, string>; sha?: string }): string {
  const r = o.report;
  const parity = r.parity ? `${r.parity}${r['max-abs-diff'] ? ` (max \\|Δ\\| ${Number(r['max-abs-diff']).toExponential(2)})` : ''}` : 'not reported';
  const smoke = r['latency-p50-ms'] ? `p50 ${r['latency-p50-ms']} ms, p95 ${r['latency-p95-ms']} ms, p99 ${r['latency-p99-ms'] ?? '–'} ms${r['throughput-rps'] ? `, ${r['throughput-rps']} req/s` : ''}` : 'not reported';
  const ok = o.decision === 'promoted';
  return [
    commentMarker(o.app),
    `### ${ok ? '🚀' : '❌'} modelship preview: \`${o.app}\` for #${o.pr}`,
    '',
    '| | |',
    '|---|---|',
    `| preview | ${ok ? o.url : `not deployed: ${o.reason.split('\n')[0].replace(/\|/g, '\\|')}`} |`,
    `| namespace | \`${o.namespace}\` |`,
    `| image | \`${o.image}\` |`,
    `| parity against Caffe | ${parity} |`,
    `| smoke latency | ${smoke} |`,
    `| preview golden requests | ${o.verifyP95 ? `p95 ${o.verifyP95} ms` : '–'} (${o.decision}) |`,
    '',
    o.sha ? `<sub>Updated for ${o.sha.slice(0, 7)}. This comment is updated on every push and marked when the PR closes.</sub>` : '<sub>This comment is updated on every push and marked when the PR closes.</sub>',
    '',
  ].join('\n');
}

/** Post the comment, or update the one this app posted before (found by its marker). */
export async function upsertComment(token: string, pr: number, marker: string, body: string, onlyUpdate = false): Promise<{ id: number; url: string } | undefined> {
  if (!token) throw new ModelshipError('input', 'input "github-token": needed to comment on the pull request (or set comment: false)', { field: 'github-token' });
  const github = await import('@actions/github');
  const octokit = github.getOctokit(token);
  if (!process.env.GITHUB_REPOSITORY) throw new ModelshipError('input', 'GITHUB_REPOSITORY (owner/repo) is not set: the PR comment needs the repository', { field: 'github-token' });
  const { owner, repo } = github.context.repo;
  const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: pr, per_page: 100 });
  const mine = comments.find((c) => c.body?.includes(marker));
  if (mine) {
    const r = await octokit.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
    return { id: r.data.id, url: r.data.html_url };
  }
  if (onlyUpdate) return undefined;
  const r = await octokit.rest.issues.createComment({ owner, repo, issue_number: pr, body });
  return { id: r.data.id, url: r.data.html_url };
}

export async function runPreview(cfg: PreviewConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<StageResult> {
  const pr = prNumber(cfg.prNumber, env);
  const app = cfg.rollout.app;
  const namespace = previewNamespace(app, pr);
  if (cfg.comment && !cfg.githubToken) throw new ModelshipError('input', 'input "github-token": needed to comment on the pull request (or set comment: false)', { field: 'github-token' });
  const { runRollout } = await import('../rollout');
  const { Kube } = await import('../rollout/kube');
  const r = await runRollout({ ...cfg.rollout, namespace, createNamespace: true }, log, env);
  const server = Kube.load(cfg.rollout.kubeconfig).server.replace(/\/$/, '');
  const url = cfg.previewUrl
    ? cfg.previewUrl.replace(/\{\{\s*app\s*\}\}/g, app).replace(/\{\{\s*namespace\s*\}\}/g, namespace).replace(/\{\{\s*pr\s*\}\}/g, String(pr))
    : `${server}/api/v1/namespaces/${namespace}/services/${app}:http/proxy/v2/models/${cfg.rollout.modelName}`;
  const body = previewComment({ app, pr, namespace, url, image: cfg.rollout.image, decision: r.outputs.decision, reason: r.outputs.reason, verifyP95: r.outputs['verify-latency-p95-ms'], report: cfg.smokeReport, sha: env.GITHUB_SHA });
  let comment: { id: number; url: string } | undefined;
  if (cfg.comment && !cfg.rollout.dryRun) comment = await log.group('PR comment', () => upsertComment(cfg.githubToken, pr, commentMarker(app), body));
  if (comment) log.info(`PR comment ${comment.url}`);
  return {
    ...r,
    outputs: { ...r.outputs, 'preview-url': r.outputs.decision === 'promoted' ? url : '', 'preview-namespace': namespace, 'comment-id': comment ? String(comment.id) : '' },
    summary: `${r.summary}\n### PR preview\n\n${body}`,
  };
}

export async function runCleanup(cfg: CleanupConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<StageResult> {
  const pr = prNumber(cfg.prNumber, env);
  const namespace = previewNamespace(cfg.app, pr);
  const removed: string[] = [];
  const { Kube } = await import('../rollout/kube');
  const kube = Kube.load(cfg.kubeconfig);
  const ns = await kube.get('v1', 'Namespace', undefined, namespace);
  if (ns) {
    // only a namespace the preview created: never a namespace someone else made under that name
    if (ns.metadata.labels?.['app.kubernetes.io/managed-by'] !== 'modelship') throw new ModelshipError('input', `namespace ${namespace} was not created by modelship (no app.kubernetes.io/managed-by=modelship label); not deleting it`, { field: 'app' });
    await kube.remove('v1', 'Namespace', '', namespace);
    removed.push(`namespace ${namespace}`);
  }
  if (cfg.image) {
    // the repository, without a tag or digest the input may carry (a registry's :port stays)
    const ref = `${cfg.image.replace(/@sha256:[0-9a-f]{64}$/, '').replace(/:[A-Za-z0-9_][A-Za-z0-9_.-]*$/, '')}:pr-${pr}`;
    const digest = await deleteTag(ref, cfg.registryUsername ? { username: cfg.registryUsername, password: cfg.registryPassword } : undefined);
    if (digest) removed.push(`image ${ref} (${digest})`);
  }
  let comment: { id: number; url: string } | undefined;
  if (cfg.comment && cfg.githubToken) {
    const body = `${commentMarker(cfg.app)}\n### 🧹 modelship preview: \`${cfg.app}\` for #${pr} removed\n\nThe PR closed: ${removed.length ? removed.map((x) => `\`${x}\``).join(', ') : 'nothing was left'} removed.\n`;
    comment = await upsertComment(cfg.githubToken, pr, commentMarker(cfg.app), body, true);
  }
  for (const x of removed) log.info(`removed ${x}`);
  return {
    outputs: { removed: removed.join('\n'), 'preview-namespace': namespace, 'comment-id': comment ? String(comment.id) : '' },
    summary: `## modelship cleanup\n\nPR #${pr}: ${removed.length ? removed.map((x) => `\`${x}\``).join(', ') : 'nothing to remove'}.\n`,
    ok: true,
  };
}
