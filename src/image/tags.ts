/**
 * Image tags following docker/metadata-action's default rules:
 *   type=schedule, type=ref,event=branch (branch name, '/' → '-'), type=ref,event=tag, type=ref,event=pr (pr-N),
 *   type=semver ({{version}}, {{major}}.{{minor}}, {{major}}; not for pre-releases), type=sha (sha-<7>),
 *   latest for the default branch and for a non-prerelease semver tag.
 */
export interface GitContext {
  sha: string;
  /** refs/heads/main, refs/tags/v1.2.3, refs/pull/42/merge */
  ref: string;
  eventName: string;
  defaultBranch?: string;
  prNumber?: number;
}

const SEMVER = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** Docker tag charset: [A-Za-z0-9_.-], at most 128 chars, not starting with '.' or '-'. */
export function sanitizeTag(s: string): string {
  return s
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 128);
}

/** The pull request a build is for (its image gets the pr-<N> tag), else undefined: a branch or tag build. */
export function pullRequestOf(ctx: GitContext): number | undefined {
  if (ctx.ref.startsWith('refs/heads/') || ctx.ref.startsWith('refs/tags/')) return undefined;
  const m = /^refs\/pull\/(\d+)\//.exec(ctx.ref);
  return ctx.prNumber ?? (m ? Number(m[1]) : undefined);
}

export function computeTags(image: string, ctx: GitContext): string[] {
  const tags: string[] = [];
  const add = (t: string) => {
    const s = sanitizeTag(t);
    if (s && !tags.includes(s)) tags.push(s);
  };
  const pr = pullRequestOf(ctx);
  if (ctx.eventName === 'schedule') add('nightly');
  if (ctx.ref.startsWith('refs/heads/')) {
    const branch = ctx.ref.slice('refs/heads/'.length);
    add(branch);
    if (ctx.defaultBranch && branch === ctx.defaultBranch) add('latest');
  } else if (ctx.ref.startsWith('refs/tags/')) {
    const tag = ctx.ref.slice('refs/tags/'.length);
    const m = SEMVER.exec(tag);
    if (m) {
      const [, major, minor, patch, pre] = m;
      add(`${major}.${minor}.${patch}${pre ? `-${pre}` : ''}`);
      if (!pre) {
        add(`${major}.${minor}`);
        if (major !== '0') add(major);
        add('latest');
      }
    } else add(tag);
  } else if (pr !== undefined) {
    add(`pr-${pr}`);
  }
  if (ctx.sha) add(`sha-${ctx.sha.slice(0, 7)}`);
  return tags.map((t) => `${image}:${t}`);
}
