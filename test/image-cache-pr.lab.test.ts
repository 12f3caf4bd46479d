import * as fs from 'fs';
import * as path from 'path';
import { runCli } from './helpers/cli';
import { tmpDir } from './helpers/caffe';
import { LAB, requireLab } from './helpers/lab';
import { resolveDigest } from '../src/shared/registry';
import { labDescribe } from './helpers/needs';

// Issue 20, point 7, on the lab (the Docker engine, its builder, the registry; lab/up.sh docker): the templates use one
// image repository for deploys and previews, so a preview build (the image stage with a pull request's ref: tags
// pr-<N> and sha-…) must not move the deploy's <image>:buildcache: it writes <image>:buildcache-pr-<N> and only reads
// the deploy's. Then the cleanup of that PR leaves the deploy's tags where they were. The image carries a stand-in
// for the server bundle (MODELSHIP_DIST: nothing in it runs here) and the pinned Node.js from the tool cache.
jest.setTimeout(600_000);

jest.mock('../src/rollout/kube', () => ({
  Kube: { load: () => ({ canI: async () => true, get: async () => undefined, remove: async () => false }) },
}));

const RUN = `${process.pid}-${Date.now()}`;
const repo = `${LAB.registry}/modelship-test/cache-pr-${RUN}`;
const work = tmpDir('modelship-cache-pr-');
const saved = process.env.MODELSHIP_DIST;

beforeAll(() => {
  requireLab();
  const dist = path.join(work, 'dist');
  fs.mkdirSync(path.join(dist, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(dist, 'index.js'), '// a stand-in for the bundle\n');
  process.env.MODELSHIP_DIST = dist;
});
const built: string[] = [];
afterAll(async () => {
  if (saved === undefined) delete process.env.MODELSHIP_DIST;
  else process.env.MODELSHIP_DIST = saved;
  // the test's own images, by digest (what cleanup deleted already answers 404)
  for (const digest of built)
    await fetch(`http://${LAB.registry}/v2/${repo.slice(LAB.registry.length + 1)}/manifests/${digest}`, { method: 'DELETE' }).catch(() => undefined);
});

/** The image stage from source: `model` bytes as the model, built for `ref` at `revision`; its JSON outputs. */
async function build(name: string, ref: string, revision: string): Promise<Record<string, string>> {
  const model = path.join(work, `${name}.onnx`);
  fs.writeFileSync(model, `not a real model: ${name} ${RUN}`);
  const r = await runCli([
    'image',
    '--image',
    repo,
    '--model',
    model,
    '--model-name',
    'lenet',
    '--base-image',
    LAB.baseImage,
    '--ref',
    ref,
    '--revision',
    revision,
    '--compose-file',
    path.join(work, `${name}.yml`),
    '--json',
  ]);
  if (r.code !== 0) throw new Error(`image stage failed (${r.code}):\n${r.stderr.slice(-3000)}`);
  built.push(r.json().digest);
  return r.json();
}

labDescribe(['docker', 'registry', 'node24'])('image caches of a preview build', () => {
  test("a preview build writes buildcache-pr-<N>, not the deploy's buildcache; the PR's cleanup leaves the deploy's tags", async () => {
    const deploy = await build('deploy', 'refs/heads/main', 'a'.repeat(40));
    expect(deploy.tags.split('\n')).toEqual([`${repo}:main`, `${repo}:sha-aaaaaaa`]);
    const cache = await resolveDigest(`${repo}:buildcache`);
    expect(cache).toMatch(/^sha256:[0-9a-f]{64}$/);

    const preview = await build('preview', 'refs/pull/4242/merge', 'b'.repeat(40));
    expect(preview.tags.split('\n')).toEqual([`${repo}:pr-4242`, `${repo}:sha-bbbbbbb`]);
    expect(preview.digest).not.toBe(deploy.digest);
    // the deploy's cache ref did not move; the preview's cache is a ref of its own
    expect(await resolveDigest(`${repo}:buildcache`)).toBe(cache);
    expect(await resolveDigest(`${repo}:buildcache-pr-4242`)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await resolveDigest(`${repo}:main`)).toBe(deploy.digest);

    const { runCleanup } = await import('../src/preview');
    const warnings: string[] = [];
    const r = await runCleanup(
      { app: 'lenet', kubeconfig: '', prNumber: 4242, image: repo, registryUsername: '', registryPassword: '', githubToken: '', comment: false },
      { info: () => undefined, warning: (m) => warnings.push(m), group: (_n, fn) => fn() },
      {},
    );
    expect(r.ok).toBe(true);
    // the deploy's tags as they were
    expect(await resolveDigest(`${repo}:buildcache`)).toBe(cache);
    expect(await resolveDigest(`${repo}:main`)).toBe(deploy.digest);
    expect(await resolveDigest(`${repo}:sha-aaaaaaa`)).toBe(deploy.digest);
    // the preview's own, all on the preview image's manifest: pr-4242, buildcache-pr-4242 (the docker driver's inline
    // cache tags the image itself) and sha-bbbbbbb, which the PR's build pushed (the image's labels say it was built as
    // pr-4242 from bbbbbbb): the manifest is deleted by digest, with the three
    expect(warnings).toEqual([]);
    const removed = r.outputs.removed.split('\n').sort();
    if (JSON.parse(preview.metadata).driver === 'docker') {
      expect(removed).toEqual([
        `image ${repo}:buildcache-pr-4242 (${preview.digest})`,
        `image ${repo}:pr-4242 (${preview.digest})`,
        `image ${repo}:sha-bbbbbbb (${preview.digest})`,
      ]);
    } else {
      // a container driver: the registry cache is a manifest of its own, deleted by digest too
      expect(removed).toEqual(expect.arrayContaining([`image ${repo}:pr-4242 (${preview.digest})`, `image ${repo}:sha-bbbbbbb (${preview.digest})`]));
      expect(removed.some((x) => x.startsWith(`image ${repo}:buildcache-pr-4242 (`))).toBe(true);
    }
    for (const t of ['pr-4242', 'buildcache-pr-4242', 'sha-bbbbbbb']) expect([t, await resolveDigest(`${repo}:${t}`)]).toEqual([t, undefined]);
  });
});
