import * as fs from 'fs';
import * as path from 'path';
import { deletePreviewTag, runCleanup } from '../src/preview';
import { resolveDigest } from '../src/shared/registry';
import { storePush } from '../src/store';
import { Logger } from '../src/stage';
import { LAB, requireLab } from './helpers/lab';
import { tmpDir } from './helpers/caffe';
import { labDescribe } from './helpers/needs';

// Issue 20, point 7, on the lab's real registry (distribution 2.8, deletes enabled; lab/up.sh docker): cleanup of a PR
// preview removes the tags the preview made (pr-<N>, buildcache-pr-<N>) and never a manifest another tag points to.
// Before the fix, buildcache, pr-4242 and sha-… on one manifest were all gone after the cleanup of PR 4242. (A sha-…
// tag that the PR's own build pushed goes with its image: test/image-cache-pr.lab.test.ts.) The Kubernetes side of runCleanup is a stub (no preview namespace exists); no PR comment (comment: false).

jest.mock('../src/rollout/kube', () => ({
  Kube: { load: () => ({ canI: async () => true, get: async () => undefined, remove: async () => false }) },
}));

const describeLab = labDescribe(['registry']);
const RUN = `${process.pid}-${Date.now()}`;
const work = tmpDir('modelship-cleanup-lab-');
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

const pushed: string[] = [];

/** A manifest of its own (content unique to this run and `name`) in `repo`, tagged `tag`: its digest. */
async function push(repo: string, name: string, tag: string): Promise<string> {
  const file = path.join(work, `${name}.bin`);
  fs.writeFileSync(file, `${name} ${RUN}`);
  const digest = (await storePush(file, `oci:${repo}`, { tag })).manifestDigest;
  pushed.push(`${repo}@${digest}`);
  return digest;
}

/** Tag the manifest `digest` of `repo` also as `tag` (the registry API: GET it, PUT it under the tag; same bytes, same digest). */
async function tag(repo: string, digest: string, tag: string): Promise<void> {
  const base = `http://${repo.replace(LAB.registry, `${LAB.registry}/v2`)}/manifests`;
  const get = await fetch(`${base}/${digest}`, { headers: { accept: MANIFEST_TYPES } });
  expect(get.status).toBe(200);
  const put = await fetch(`${base}/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': get.headers.get('content-type')! },
    body: Buffer.from(await get.arrayBuffer()),
  });
  expect(put.status).toBe(201);
}

function capture(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => undefined, warning: (m) => warnings.push(m), group: (_n, fn) => fn() };
}

const cleanup = (image: string, pr: number, log: Logger) =>
  runCleanup({ app: 'lenet', kubeconfig: '', prNumber: pr, image, registryUsername: '', registryPassword: '', githubToken: '', comment: false }, log, {});

beforeAll(() => requireLab());
// the test's own manifests, by digest (what is already gone answers 404)
afterAll(async () => {
  for (const ref of pushed)
    await fetch(`http://${ref.replace(LAB.registry, `${LAB.registry}/v2`).replace('@', '/manifests/')}`, { method: 'DELETE' }).catch(() => undefined);
});

describeLab("cleanup on a registry other than ghcr.io (the lab's distribution 2.8)", () => {
  test('buildcache, pr-4242 and sha-… on one manifest: buildcache and sha-… still resolve to it afterwards', async () => {
    const repo = `${LAB.registry}/modelship-test/cleanup-shared-${RUN}`;
    const d = await push(repo, 'shared', 'pr-4242');
    await tag(repo, d, 'buildcache');
    await tag(repo, d, 'sha-abc1234');
    const log = capture();
    const r = await cleanup(`${repo}:sha-abc1234`, 4242, log);
    expect(r.ok).toBe(true);
    expect(await resolveDigest(`${repo}:buildcache`)).toBe(d);
    expect(await resolveDigest(`${repo}:sha-abc1234`)).toBe(d);
    if (r.outputs.removed.includes(`${repo}:pr-4242`)) {
      // a registry with the OCI tag deletion: the pr tag alone is gone
      expect(await resolveDigest(`${repo}:pr-4242`)).toBeUndefined();
      expect(log.warnings).toEqual([]);
    } else {
      // distribution 2.x deletes manifests only by digest (tag deletion: 400 DIGEST_INVALID): everything kept, a warning
      expect(r.outputs.removed).toBe('');
      expect(await resolveDigest(`${repo}:pr-4242`)).toBe(d);
      expect(log.warnings).toHaveLength(1);
      expect(log.warnings[0]).toContain(
        `image ${repo}:pr-4242 not deleted: its manifest ${d} is also tagged :buildcache, :sha-abc1234, which deleting the manifest would delete too; the registry refused to delete the tag alone: DELETE /v2/modelship-test/cleanup-shared-${RUN}/manifests/pr-4242 answered 400`,
      );
      expect(r.summary).toContain('> [!WARNING]');
    }
  });

  test("pr-<N> and buildcache-pr-<N> the only tags of their manifests: both deleted; the deploy's tags stay", async () => {
    const repo = `${LAB.registry}/modelship-test/cleanup-own-${RUN}`;
    const main = await push(repo, 'main', 'main');
    await tag(repo, main, 'buildcache');
    const preview = await push(repo, 'preview', 'pr-4243');
    const cache = await push(repo, 'preview-cache', 'buildcache-pr-4243');
    const log = capture();
    const r = await cleanup(repo, 4243, log);
    expect(log.warnings).toEqual([]);
    expect(r.outputs.removed.split('\n')).toEqual([`image ${repo}:pr-4243 (${preview})`, `image ${repo}:buildcache-pr-4243 (${cache})`]);
    expect(await resolveDigest(`${repo}:pr-4243`)).toBeUndefined();
    expect(await resolveDigest(`${repo}:buildcache-pr-4243`)).toBeUndefined();
    expect(await resolveDigest(`${repo}@${preview}`)).toBeUndefined();
    expect(await resolveDigest(`${repo}:main`)).toBe(main);
    expect(await resolveDigest(`${repo}:buildcache`)).toBe(main);
  });

  test("pr-<N> and a sha-… tag on a manifest that is not the PR build's image (no labels saying so): both kept, a warning", async () => {
    const repo = `${LAB.registry}/modelship-test/cleanup-sha-${RUN}`;
    const d = await push(repo, 'sha', 'pr-4245');
    await tag(repo, d, 'sha-1234567');
    const log = capture();
    const r = await cleanup(repo, 4245, log);
    expect(r.outputs.removed).toBe('');
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]).toContain(
      `image ${repo}:pr-4245 not deleted: its manifest ${d} is also tagged :sha-1234567, which deleting the manifest would delete too`,
    );
    expect(await resolveDigest(`${repo}:sha-1234567`)).toBe(d);
    expect(await resolveDigest(`${repo}:pr-4245`)).toBe(d);
  });

  test('a PR whose tags do not exist: nothing removed, no warning, the repository as it was', async () => {
    const repo = `${LAB.registry}/modelship-test/cleanup-none-${RUN}`;
    const main = await push(repo, 'none', 'main');
    const log = capture();
    const r = await cleanup(repo, 4244, log);
    expect(r.outputs.removed).toBe('');
    expect(log.warnings).toEqual([]);
    expect(r.summary).toContain('PR #4244: nothing to remove.');
    expect(await resolveDigest(`${repo}:main`)).toBe(main);
  });
});

// deletePreviewTag alone (test/cleanup-ghcr.test.ts has it against ghcr.io's Packages API and a refusing registry)
describeLab('the pr-<N> tag on a registry other than ghcr.io, through the registry API', () => {
  test('the lab registry: the pr-<N> tag is deleted (HEAD for the digest, DELETE by digest), then gone', async () => {
    const repo = `${LAB.registry}/modelship-test/cleanup-${process.pid}`;
    const file = path.join(tmpDir('modelship-cleanup-'), 'artifact.bin');
    fs.writeFileSync(file, `preview ${process.pid} ${Date.now()}`); // a manifest of its own: deleting it takes no one else's tags
    const stored = await storePush(file, `oci:${repo}`, { tag: 'pr-21' });
    const r = await deletePreviewTag(`${repo}:pr-21`, { githubToken: 'ghs_cleanup_token_456' });
    expect(r).toEqual({ removed: `image ${repo}:pr-21 (${stored.manifestDigest})` });
    const head = await fetch(`http://${repo.replace(LAB.registry, `${LAB.registry}/v2`)}/manifests/pr-21`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(head.status).toBe(404);
    // a second cleanup finds nothing to remove
    expect(await deletePreviewTag(`${repo}:pr-21`, { githubToken: 'ghs_cleanup_token_456' })).toEqual({});
  });
});
