import * as http from 'http';
import { createHash } from 'crypto';
import { AddressInfo } from 'net';
import { cacheTag, listTags, planUntag, removeTags } from '../src/shared/registry';
import { deletePreviewTags, previewTags } from '../src/preview';
import { cacheFlags } from '../src/image';
import { computeTags, pullRequestOf } from '../src/image/tags';

// Issue 20, point 7: cleanup removes only the tags a preview made (pr-<N>, buildcache-pr-<N>), never a manifest another
// tag points to, on any registry; and a preview build never writes the deploy's cache ref. The pure parts as table
// tests; removeTags and deletePreviewTags against a local stand-in for a registry's API (tags, manifests, indexes;
// tag deletion as the OCI distribution spec has it, refused as distribution 2.x does, or one that deletes more). The
// real registry (distribution 2.8, which refuses tag deletion) is test/cleanup-registry.lab.test.ts's.

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

type TagDelete = 'untag' | 'refuse' | 'everything';

/**
 * A registry's API for one repository, octo/lenet: manifests by digest, tags, GET tags/list paged (n, last, Link),
 * DELETE by digest (the manifest and every tag on it). DELETE by tag: `untag` removes the tag alone (OCI distribution
 * spec; distribution 3), `refuse` answers 400 DIGEST_INVALID (distribution 2.x), `everything` deletes the manifest
 * with all its tags (a registry that gets it wrong). `listStatus` makes tags/list fail.
 */
async function fakeRegistry(o: { tagDelete: TagDelete; pageSize?: number; listStatus?: number; headWithoutDigest?: boolean }) {
  const manifests = new Map<string, { type: string; body: string }>();
  const blobs = new Map<string, string>();
  const tags = new Map<string, string>();
  const requests: string[] = [];
  const put = (type: string, content: object) => {
    const body = JSON.stringify(content);
    const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    manifests.set(digest, { type, body });
    return digest;
  };
  const dropManifest = (digest: string) => {
    manifests.delete(digest);
    for (const [t, d] of [...tags]) if (d === digest) tags.delete(t);
  };
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const u = new URL(req.url!, 'http://x');
    const send = (status: number, headers: Record<string, string> = {}, body = '') => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (u.pathname === '/v2/octo/lenet/tags/list' && req.method === 'GET') {
      if (o.listStatus) return send(o.listStatus, {}, JSON.stringify({ errors: [{ code: 'UNKNOWN' }] }));
      const all = [...tags.keys()].sort();
      const n = Number(u.searchParams.get('n') ?? all.length);
      const per = Math.min(n, o.pageSize ?? n);
      const last = u.searchParams.get('last');
      const from = last ? all.findIndex((t) => t > last) : 0;
      const page = from < 0 ? [] : all.slice(from, from + per);
      const more = from >= 0 && from + per < all.length;
      return send(
        200,
        more ? { link: `</v2/octo/lenet/tags/list?last=${page[page.length - 1]}&n=${per}>; rel="next"` } : {},
        JSON.stringify({ name: 'octo/lenet', tags: page }),
      );
    }
    const blob = /^\/v2\/octo\/lenet\/blobs\/(.+)$/.exec(u.pathname);
    if (blob && req.method === 'GET')
      return blobs.has(blob[1]) ? send(200, {}, blobs.get(blob[1])) : send(404, {}, JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN' }] }));
    const m = /^\/v2\/octo\/lenet\/manifests\/(.+)$/.exec(u.pathname);
    if (!m) return send(404, {}, JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN' }] }));
    const ref = m[1];
    const digest = ref.startsWith('sha256:') ? ref : tags.get(ref);
    const manifest = digest ? manifests.get(digest) : undefined;
    if (req.method === 'HEAD' || req.method === 'GET') {
      if (!manifest) return send(404, {}, JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN' }] }));
      return send(
        200,
        { 'content-type': manifest.type, ...(o.headWithoutDigest && req.method === 'HEAD' ? {} : { 'docker-content-digest': digest! }) },
        manifest.body,
      );
    }
    if (req.method === 'DELETE') {
      if (!manifest) return send(404, {}, JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN' }] }));
      if (ref.startsWith('sha256:')) {
        dropManifest(digest!);
        return send(202);
      }
      if (o.tagDelete === 'refuse')
        return send(400, {}, JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' }] }));
      if (o.tagDelete === 'everything') dropManifest(digest!);
      else tags.delete(ref);
      return send(202);
    }
    send(405);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  /** a manifest of its own (`seed` makes it unique), tagged with `names` */
  const image = (seed: string, ...names: string[]) => {
    const digest = put(OCI_MANIFEST, { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { digest: `sha256:${seed.padEnd(64, '0')}`, size: 1 }, layers: [] });
    for (const t of names) tags.set(t, digest);
    return digest;
  };
  /** an image whose config carries `labels` (as the image stage writes them), tagged with `names` */
  const labelled = (labels: Record<string, string>, ...names: string[]) => {
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: labels } });
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    blobs.set(configDigest, config);
    const digest = put(OCI_MANIFEST, {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { digest: configDigest, size: config.length, mediaType: 'application/vnd.oci.image.config.v1+json' },
      layers: [],
    });
    for (const t of names) tags.set(t, digest);
    return digest;
  };
  const index = (children: string[], ...names: string[]) => {
    const digest = put(OCI_INDEX, {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((d) => ({ digest: d, mediaType: OCI_MANIFEST, size: 1, platform: { os: 'linux', architecture: 'amd64' } })),
    });
    for (const t of names) tags.set(t, digest);
    return digest;
  };
  return { repo: `${host}/octo/lenet`, tags, requests, image, labelled, index, deletes: () => requests.filter((r) => r.startsWith('DELETE')) };
}

const servers: http.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

/** no GitHub token (not ghcr.io), no registry credentials */
const NO_AUTH = { githubToken: '' };
const D = (n: number) => `sha256:${String(n).repeat(64)}`;

describe('planUntag: which manifests the tags to remove point to, and who else points to them (pure)', () => {
  test.each<[string, Record<string, string>, Record<string, { digest: string; children?: string[] }>, { digest: string; tags: string[]; others: string[] }[]]>([
    ['the only tag of its manifest', { 'pr-7': D(1) }, { main: { digest: D(2) } }, [{ digest: D(1), tags: ['pr-7'], others: [] }]],
    [
      "other tags on the same manifest (the issue's buildcache, pr-4242, sha-…)",
      { 'pr-4242': D(1) },
      { buildcache: { digest: D(1) }, 'sha-abc1234': { digest: D(1) }, main: { digest: D(2) } },
      [{ digest: D(1), tags: ['pr-4242'], others: ['buildcache', 'sha-abc1234'] }],
    ],
    [
      'both preview tags on one manifest: neither counts as the other\'s "other"',
      { 'pr-9': D(1), 'buildcache-pr-9': D(1) },
      { main: { digest: D(2) } },
      [{ digest: D(1), tags: ['pr-9', 'buildcache-pr-9'], others: [] }],
    ],
    [
      'the preview tags on two manifests',
      { 'pr-9': D(1), 'buildcache-pr-9': D(3) },
      { 'sha-1': { digest: D(1) } },
      [
        { digest: D(1), tags: ['pr-9'], others: ['sha-1'] },
        { digest: D(3), tags: ['buildcache-pr-9'], others: [] },
      ],
    ],
    [
      'an image index that lists the manifest counts as pointing to it',
      { 'pr-5': D(1) },
      { multi: { digest: D(4), children: [D(2), D(1)] }, other: { digest: D(5), children: [D(2)] } },
      [{ digest: D(1), tags: ['pr-5'], others: ['multi'] }],
    ],
    ['nothing to remove', {}, { main: { digest: D(1) } }, []],
  ])('%s', (_n, ours, theirs, expected) => {
    expect(planUntag(ours, theirs)).toEqual(expected);
  });
});

describe("removeTags / deletePreviewTags against a registry's API", () => {
  test('shared with buildcache and sha-…, tag deletion supported: pr-<N> alone goes, the others still resolve to the manifest', async () => {
    const reg = await fakeRegistry({ tagDelete: 'untag' });
    const d = reg.image('a', 'buildcache', 'pr-4242', 'sha-abc1234');
    const r = await deletePreviewTags(reg.repo, previewTags(4242), NO_AUTH);
    expect(r).toEqual({ removed: [`image ${reg.repo}:pr-4242 (the tag alone: ${d} stays, tagged :buildcache, :sha-abc1234)`], warnings: [] });
    expect(Object.fromEntries(reg.tags)).toEqual({ buildcache: d, 'sha-abc1234': d });
    expect(reg.deletes()).toEqual(['DELETE /v2/octo/lenet/manifests/pr-4242']);
  });

  test('shared, the registry refuses tag deletion (distribution 2.x, 400 DIGEST_INVALID): everything kept, a warning naming the other tags', async () => {
    const reg = await fakeRegistry({ tagDelete: 'refuse' });
    const d = reg.image('a', 'buildcache', 'pr-4242', 'sha-abc1234', 'buildcache-pr-4242');
    const r = await deletePreviewTags(reg.repo, previewTags(4242), NO_AUTH);
    expect(r.removed).toEqual([]);
    expect(r.warnings).toEqual([
      `image ${reg.repo}:pr-4242 and :buildcache-pr-4242 not deleted: its manifest ${d} is also tagged :buildcache, :sha-abc1234, which deleting the manifest would delete too; the registry refused to delete the tag alone: DELETE /v2/octo/lenet/manifests/pr-4242 answered 400: {"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]} (a registry that deletes manifests only by digest, such as distribution 2.x, cannot remove one tag of a manifest that other tags share)`,
    ]);
    expect(reg.tags.size).toBe(4);
    expect(reg.deletes()).toEqual(['DELETE /v2/octo/lenet/manifests/pr-4242']); // never by digest
  });

  test('the preview tags the only tags of their manifests: each manifest deleted by digest, once', async () => {
    const reg = await fakeRegistry({ tagDelete: 'refuse' });
    const img = reg.image('b', 'pr-12');
    const cache = reg.image('c', 'buildcache-pr-12');
    const main = reg.image('d', 'main', 'buildcache');
    const r = await deletePreviewTags(reg.repo, previewTags(12), NO_AUTH);
    expect(r).toEqual({ removed: [`image ${reg.repo}:pr-12 (${img})`, `image ${reg.repo}:buildcache-pr-12 (${cache})`], warnings: [] });
    expect(Object.fromEntries(reg.tags)).toEqual({ main, buildcache: main });
    expect(reg.deletes().sort()).toEqual([`DELETE /v2/octo/lenet/manifests/${cache}`, `DELETE /v2/octo/lenet/manifests/${img}`].sort());
  });

  test('pr-<N> and buildcache-pr-<N> on one manifest and nothing else: the manifest goes, both tags listed', async () => {
    const reg = await fakeRegistry({ tagDelete: 'refuse' });
    const d = reg.image('e', 'pr-3', 'buildcache-pr-3');
    reg.image('f', 'main');
    expect(await deletePreviewTags(reg.repo, previewTags(3), NO_AUTH)).toEqual({
      removed: [`image ${reg.repo}:pr-3 (${d})`, `image ${reg.repo}:buildcache-pr-3 (${d})`],
      warnings: [],
    });
    expect(reg.deletes()).toEqual([`DELETE /v2/octo/lenet/manifests/${d}`]);
  });

  test('tags that do not exist: nothing removed, no warning, no DELETE', async () => {
    const reg = await fakeRegistry({ tagDelete: 'untag' });
    reg.image('g', 'main', 'pr-1');
    expect(await deletePreviewTags(reg.repo, previewTags(2), NO_AUTH)).toEqual({ removed: [], warnings: [] });
    expect(reg.deletes()).toEqual([]);
    expect(reg.tags.size).toBe(2);
  });

  test('the tags are read on every page (n, Link): a sharing tag on the last page keeps the manifest', async () => {
    const reg = await fakeRegistry({ tagDelete: 'refuse', pageSize: 2 });
    const d = reg.image('h', 'pr-8', 'zz-keep');
    for (const t of ['a1', 'a2', 'a3', 'a4']) reg.image(t, t);
    expect((await listTags(`${reg.repo}:x`)).sort()).toEqual(['a1', 'a2', 'a3', 'a4', 'pr-8', 'zz-keep']);
    expect(reg.requests.filter((q) => q.startsWith('GET /v2/octo/lenet/tags/list'))).toEqual([
      'GET /v2/octo/lenet/tags/list?n=1000',
      'GET /v2/octo/lenet/tags/list?last=a2&n=2',
      'GET /v2/octo/lenet/tags/list?last=a4&n=2',
    ]);
    const r = await removeTags(reg.repo, ['pr-8']);
    expect(r).toEqual([
      {
        digest: d,
        tags: ['pr-8'],
        others: ['zz-keep'],
        removed: [],
        refused: expect.stringMatching(/^DELETE \/v2\/octo\/lenet\/manifests\/pr-8 answered 400/),
      },
    ]);
    expect(reg.tags.get('zz-keep')).toBe(d);
  });

  test('an image index that lists the manifest keeps it (deleting it would break the index)', async () => {
    const reg = await fakeRegistry({ tagDelete: 'refuse' });
    const d = reg.image('i', 'pr-6');
    const idx = reg.index([d], 'multi-arch');
    const r = await removeTags(reg.repo, ['pr-6']);
    expect(r).toEqual([expect.objectContaining({ digest: d, others: ['multi-arch'], removed: [] })]);
    expect(reg.tags.get('multi-arch')).toBe(idx);
    expect(reg.deletes()).toEqual(['DELETE /v2/octo/lenet/manifests/pr-6']);
  });

  test('a registry whose HEAD sends no digest: the manifest is fetched and hashed', async () => {
    const reg = await fakeRegistry({ tagDelete: 'untag', headWithoutDigest: true });
    const d = reg.image('j', 'pr-2', 'sha-1111111');
    const r = await removeTags(reg.repo, ['pr-2']);
    expect(r).toEqual([{ digest: d, tags: ['pr-2'], others: ['sha-1111111'], how: 'tag', removed: ['pr-2'] }]);
    expect(reg.tags.get('sha-1111111')).toBe(d);
  });

  test('the tags cannot be listed: never deleted by digest, only the tag alone where the registry can, else a warning', async () => {
    const untag = await fakeRegistry({ tagDelete: 'untag', listStatus: 401 });
    const d = untag.image('k', 'pr-5');
    expect(await deletePreviewTags(untag.repo, ['pr-5'], NO_AUTH)).toEqual({ removed: [`image ${untag.repo}:pr-5 (the tag alone: ${d} stays)`], warnings: [] });
    expect(untag.deletes()).toEqual(['DELETE /v2/octo/lenet/manifests/pr-5']);
    const refuse = await fakeRegistry({ tagDelete: 'refuse', listStatus: 500 });
    const d2 = refuse.image('l', 'pr-5');
    const r = await deletePreviewTags(refuse.repo, ['pr-5'], NO_AUTH);
    expect(r.removed).toEqual([]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain(
      `image ${refuse.repo}:pr-5 not deleted: the repository's tags could not be listed (GET /v2/octo/lenet/tags/list answered 500: `,
    );
    expect(r.warnings[0]).toContain(
      `), so other tags may point to its manifest ${d2}; the registry refused to delete the tag alone: DELETE /v2/octo/lenet/manifests/pr-5 answered 400`,
    );
    expect(refuse.tags.get('pr-5')).toBe(d2);
  });

  test('claim: other tags the caller says are its own (all of them, on the manifest itself) go with the manifest', async () => {
    const reg = await fakeRegistry({ tagDelete: 'refuse' });
    const d = reg.image('n', 'pr-7', 'sha-7777777');
    const asked: [string[], string][] = [];
    const r = await removeTags(reg.repo, ['pr-7'], undefined, async (others, digest) => (asked.push([others, digest]), true));
    expect(asked).toEqual([[['sha-7777777'], d]]);
    expect(r).toEqual([{ digest: d, tags: ['pr-7', 'sha-7777777'], others: [], claimed: ['sha-7777777'], how: 'manifest', removed: ['pr-7', 'sha-7777777'] }]);
    expect(reg.tags.size).toBe(0);
    // refused, or a claim that fails: kept
    const kept = await fakeRegistry({ tagDelete: 'refuse' });
    kept.image('o', 'pr-7', 'sha-7777777');
    expect((await removeTags(kept.repo, ['pr-7'], undefined, async () => false))[0]).toMatchObject({ removed: [], others: ['sha-7777777'] });
    expect((await removeTags(kept.repo, ['pr-7'], undefined, async () => Promise.reject(new Error('no labels'))))[0]).toMatchObject({
      removed: [],
      others: ['sha-7777777'],
    });
    // a tag that points to an index listing the manifest is never claimed
    const idx = await fakeRegistry({ tagDelete: 'refuse' });
    const d2 = idx.image('p', 'pr-7');
    idx.index([d2], 'sha-7777777');
    let called = false;
    expect((await removeTags(idx.repo, ['pr-7'], undefined, async () => (called = true)))[0]).toMatchObject({ removed: [], others: ['sha-7777777'] });
    expect(called).toBe(false);
    expect(kept.tags.size + idx.tags.size).toBe(4);
  });

  test("deletePreviewTags: a sha-<7> tag is not the preview's unless the image says so (no labels here): kept", async () => {
    const reg = await fakeRegistry({ tagDelete: 'refuse' });
    const d = reg.image('q', 'pr-8', 'sha-8888888');
    const r = await deletePreviewTags(reg.repo, previewTags(8), NO_AUTH);
    expect(r.removed).toEqual([]);
    expect(r.warnings[0]).toContain(`image ${reg.repo}:pr-8 not deleted: its manifest ${d} is also tagged :sha-8888888,`);
    // only sha-<7> tags are ever looked at: a branch tag keeps the manifest without a look at its labels
    const branch = await fakeRegistry({ tagDelete: 'refuse' });
    branch.image('r', 'pr-8', 'sha-8888888', 'main');
    await deletePreviewTags(branch.repo, previewTags(8), NO_AUTH);
    expect(branch.requests.filter((q) => q.includes('/blobs/'))).toEqual([]);
  });

  test.each<[string, Record<string, string>, string[], boolean]>([
    [
      "built as pr-8 from that commit: the PR build's own, deleted with the image",
      { 'org.opencontainers.image.version': 'pr-8', 'org.opencontainers.image.revision': '8888888'.padEnd(40, 'a') },
      ['sha-8888888'],
      true,
    ],
    [
      "built as pr-8, with the build's cache tag too (docker driver)",
      { 'org.opencontainers.image.version': 'pr-8', 'org.opencontainers.image.revision': '8888888'.padEnd(40, 'a') },
      ['sha-8888888', 'buildcache-pr-8'],
      true,
    ],
    [
      'built as another PR',
      { 'org.opencontainers.image.version': 'pr-9', 'org.opencontainers.image.revision': '8888888'.padEnd(40, 'a') },
      ['sha-8888888'],
      false,
    ],
    [
      "built as a branch (a deploy's image)",
      { 'org.opencontainers.image.version': 'main', 'org.opencontainers.image.revision': '8888888'.padEnd(40, 'a') },
      ['sha-8888888'],
      false,
    ],
    [
      'built from another commit (the sha tag was moved onto it)',
      { 'org.opencontainers.image.version': 'pr-8', 'org.opencontainers.image.revision': '1234567'.padEnd(40, 'a') },
      ['sha-8888888'],
      false,
    ],
    [
      'a release tag on it too',
      { 'org.opencontainers.image.version': 'pr-8', 'org.opencontainers.image.revision': '8888888'.padEnd(40, 'a') },
      ['sha-8888888', 'v1.0.0'],
      false,
    ],
  ])("the labels decide whether a sha tag is the PR build's: %s", async (_n, labels, extra, deleted) => {
    const reg = await fakeRegistry({ tagDelete: 'refuse' });
    const d = reg.labelled(labels, 'pr-8', ...extra);
    const r = await deletePreviewTags(reg.repo, previewTags(8), NO_AUTH);
    if (deleted) {
      expect(r.warnings).toEqual([]);
      expect(r.removed.sort()).toEqual(['pr-8', ...extra].map((t) => `image ${reg.repo}:${t} (${d})`).sort());
      expect(reg.tags.size).toBe(0);
    } else {
      expect(r.removed).toEqual([]);
      expect(r.warnings[0]).toContain(`its manifest ${d} is also tagged`);
      expect(reg.tags.size).toBe(1 + extra.length);
    }
  });

  test('a registry that deletes more than the tag: the tags it took are named in a warning', async () => {
    const reg = await fakeRegistry({ tagDelete: 'everything' });
    const d = reg.image('m', 'pr-4', 'buildcache');
    const r = await deletePreviewTags(reg.repo, ['pr-4'], NO_AUTH);
    expect(r.removed).toEqual([`image ${reg.repo}:pr-4 (the tag alone: ${d} stays, tagged :buildcache)`]);
    expect(r.warnings).toEqual([
      `image ${reg.repo}:pr-4: after the tag deletion :buildcache no longer points to ${d} (the registry deleted more than the tag)`,
    ]);
  });
});

describe('a preview build writes a cache ref of its own', () => {
  const IMG = 'ghcr.io/acme/googlenet';
  test.each<[string, { ref: string; eventName: string; prNumber?: number }, number | undefined]>([
    ['pull request (refs/pull/N/merge)', { ref: 'refs/pull/42/merge', eventName: 'pull_request' }, 42],
    ['pull request, the number from the event', { ref: 'refs/pull/42/merge', eventName: 'pull_request', prNumber: 42 }, 42],
    ['branch push', { ref: 'refs/heads/main', eventName: 'push' }, undefined],
    ['tag push', { ref: 'refs/tags/v1.2.3', eventName: 'push' }, undefined],
    ['a branch push of an event that carries a pull_request: a branch build', { ref: 'refs/heads/main', eventName: 'push', prNumber: 3 }, undefined],
  ])('pullRequestOf: %s', (_n, ctx, pr) => {
    expect(pullRequestOf({ sha: 'a'.repeat(40), ...ctx })).toBe(pr);
    // the same rule as the pr-<N> image tag
    expect(computeTags(IMG, { sha: 'a'.repeat(40), ...ctx }).includes(`${IMG}:pr-${pr}`)).toBe(pr !== undefined);
  });

  test.each<[string, string, NodeJS.ProcessEnv, string, number | undefined, string[]]>([
    [
      'deploy, docker driver: inline, read from :buildcache',
      'docker',
      {},
      'auto',
      undefined,
      ['--cache-from', `type=registry,ref=${IMG}:buildcache`, '--cache-to', 'type=inline'],
    ],
    [
      "preview, docker driver: reads its own and the deploy's",
      'docker',
      {},
      'auto',
      42,
      ['--cache-from', `type=registry,ref=${IMG}:buildcache-pr-42`, '--cache-from', `type=registry,ref=${IMG}:buildcache`, '--cache-to', 'type=inline'],
    ],
    [
      'deploy, container driver: registry cache :buildcache',
      'docker-container',
      {},
      'auto',
      undefined,
      ['--cache-from', `type=registry,ref=${IMG}:buildcache`, '--cache-to', `type=registry,ref=${IMG}:buildcache,mode=max`],
    ],
    [
      'preview, container driver: writes :buildcache-pr-<N> only',
      'docker-container',
      {},
      'registry',
      42,
      [
        '--cache-from',
        `type=registry,ref=${IMG}:buildcache-pr-42`,
        '--cache-from',
        `type=registry,ref=${IMG}:buildcache`,
        '--cache-to',
        `type=registry,ref=${IMG}:buildcache-pr-42,mode=max`,
      ],
    ],
    [
      "preview on GitHub with gha: GitHub scopes the cache to the PR's ref",
      'docker-container',
      { ACTIONS_CACHE_URL: 'u', ACTIONS_RUNTIME_TOKEN: 't' },
      'auto',
      42,
      ['--cache-from', 'type=gha', '--cache-to', 'type=gha,mode=max'],
    ],
    ['off', 'docker', {}, 'off', 42, []],
  ])('cacheFlags: %s', (_n, driver, env, mode, pr, flags) => {
    expect(cacheFlags(driver, IMG, env, mode, pr)).toEqual(flags);
    // the preview never writes the deploy's ref
    if (pr !== undefined) expect(flags.filter((f) => f.startsWith('type=registry') && f.includes(`ref=${IMG}:buildcache,`))).toEqual([]);
  });

  test("the cache tags: the deploy's, the preview's; the preview cleanup removes its image tag and its cache tag", () => {
    expect(cacheTag()).toBe('buildcache');
    expect(cacheTag(42)).toBe('buildcache-pr-42');
    expect(previewTags(42)).toEqual(['pr-42', 'buildcache-pr-42']);
  });
});
