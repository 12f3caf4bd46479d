import { fail, InputSpec, OutputSpec, Reader } from '../inputs';
import type { SharedConfig } from '../shared/inputs';
import type { RolloutConfig } from '../rollout/inputs';

/** The preview and cleanup stages' own inputs and outputs (a preview is a rollout: it reads the rollout's too). */
export const PREVIEW_INPUTS: InputSpec[] = [
  {
    name: 'pr-number',
    description: "preview, cleanup: the pull request number (default: the pull_request event's); the preview namespace is <app>-pr-<N>.",
    default: '',
    kind: 'number',
    stages: ['preview', 'cleanup'],
  },
  {
    name: 'github-token',
    description:
      "preview, cleanup: token for the one PR comment (post, update; masked); cleanup: also deletes a ghcr.io image's pr-<N> package version through the GitHub Packages API (packages: write, admin access to the package).",
    default: '${{ github.token }}',
    kind: 'string',
    stages: ['preview', 'cleanup'],
    secret: true,
  },
  {
    name: 'preview-url',
    description:
      "preview: the URL the PR comment links to ({{app}}, {{namespace}}, {{pr}} are filled in; default: the Service through the API server's proxy).",
    default: '',
    kind: 'string',
    stages: ['preview'],
  },
  {
    name: 'comment',
    description: 'preview, cleanup: post or update the PR comment.',
    default: 'true',
    kind: 'boolean',
    stages: ['preview', 'cleanup'],
  },
  {
    name: 'smoke-report',
    description:
      "preview: the convert and smoke figures for the PR comment, as JSON: the outputs of the jobs before (toJSON(needs), whose jobs' outputs are merged) or one job's outputs (toJSON(needs.smoke.outputs)); keys used: parity, max-abs-diff, latency-p50-ms, latency-p95-ms, latency-p99-ms, throughput-rps.",
    default: '',
    kind: 'string',
    stages: ['preview'],
  },
];

export const PREVIEW_OUTPUTS: OutputSpec[] = [
  { name: 'preview-url', description: "preview: the URL of the PR's preview deployment.", stages: ['preview'] },
  { name: 'preview-namespace', description: 'preview, cleanup: the preview namespace <app>-pr-<N>.', stages: ['preview', 'cleanup'] },
  {
    name: 'comment-id',
    description: 'preview, cleanup: the id of the PR comment posted or updated (empty when comment is false).',
    stages: ['preview', 'cleanup'],
  },
  {
    name: 'removed',
    description:
      "cleanup: what was removed, one per line (the namespace, the preview's tags: pr-<N>, buildcache-pr-<N>, and the sha-<7> its build pushed with them); a tag that could not be deleted (the registry refused, or another tag shares its manifest and the registry cannot delete a tag alone) is a warning and not listed.",
    stages: ['cleanup'],
  },
];

export interface PreviewConfig {
  rollout: RolloutConfig;
  prNumber?: number;
  githubToken: string;
  previewUrl: string;
  comment: boolean;
  smokeReport: Record<string, string>;
}

export interface CleanupConfig {
  app: string;
  kubeconfig: string;
  prNumber?: number;
  /** the image repository whose pr-<N> tag goes (empty: no registry cleanup) */
  image: string;
  registryUsername: string;
  registryPassword: string;
  githubToken: string;
  comment: boolean;
}

/**
 * The figures for the PR comment: a map of outputs (`toJSON(needs.smoke.outputs)`), or a `needs` context
 * (`toJSON(needs)`: `{job: {result, outputs}}`), whose jobs' outputs are merged in order, so the build job's parity and
 * the smoke job's latencies both arrive.
 */
export function parseReport(text: string): Record<string, string> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return fail('smoke-report', `is not JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v))
    return fail('smoke-report', `expected a JSON object of outputs or a needs context, got ${text.slice(0, 80)}`);
  const entries = Object.entries(v as Record<string, unknown>);
  const isJob = (x: unknown): x is { outputs?: Record<string, unknown> } =>
    !!x && typeof x === 'object' && !Array.isArray(x) && ('outputs' in x || 'result' in x);
  const flat = entries.flatMap(([k, x]) => (isJob(x) ? Object.entries(x.outputs ?? {}) : [[k, x] as const]));
  return Object.fromEntries(flat.filter(([, x]) => x !== null && x !== undefined && x !== '').map(([k, x]) => [k, String(x)]));
}

export function readPreviewConfig(r: Reader, s: SharedConfig, rollout: RolloutConfig): { preview: PreviewConfig; cleanup: CleanupConfig } {
  const prRaw = r.raw('pr-number');
  if (prRaw !== '' && !/^[1-9]\d*$/.test(prRaw)) fail('pr-number', `expected a pull request number, got "${prRaw}"`);
  const smokeReport = r.raw('smoke-report') ? parseReport(r.raw('smoke-report')) : {};
  // an unexpanded expression (a workflow that passed the literal text) is no token
  const githubToken = r.raw('github-token').startsWith('${{') ? '' : r.raw('github-token');
  const preview: PreviewConfig = {
    rollout,
    prNumber: prRaw ? Number(prRaw) : undefined,
    githubToken,
    previewUrl: r.raw('preview-url'),
    comment: r.bool('comment'),
    smokeReport,
  };
  const cleanup: CleanupConfig = {
    app: rollout.app,
    kubeconfig: rollout.kubeconfig,
    prNumber: preview.prNumber,
    image: s.image,
    registryUsername: s.registryUsername,
    registryPassword: s.registryPassword,
    githubToken,
    comment: preview.comment,
  };
  if (r.stage === 'cleanup' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(cleanup.app))
    fail(r.raw('app') ? 'app' : 'model-name', `the app name must be a DNS label, got "${cleanup.app}"`);
  return { preview, cleanup };
}
