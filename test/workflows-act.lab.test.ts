import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { LAB, requireLab } from './helpers/lab';
import { ORACLE, tmpDir } from './helpers/caffe';
import { KUBECONFIG, kubectlJson, requireCluster, dropNamespaces, exists, RESTRICTED } from './helpers/kube';
import { releaseMirror, Mirror } from './helpers/node-release';
import {
  actionCheckout,
  callerFromTemplate,
  callerRepo,
  githubFake,
  requireAct,
  runAct,
  standIns,
  ActRun,
  lenetFiles,
  LENET_WITH,
  LAB_ROLLOUT_WITH,
} from './helpers/act';
import { DEFAULT_NODE_VERSION } from '../src/image/node';
import { resolveDigest } from '../src/shared/registry';
import { labDescribe } from './helpers/needs';
import { cosignRelease, generateKeyPair } from './helpers/cosign';

const describeLab = labDescribe(['act', 'docker', 'registry', 'cluster', 'node24', 'cosign']);

/**
 * Lab: the caller templates of workflows/ run by a GitHub Actions engine (nektos/act, test/helpers/act.ts) on this
 * host against the lab (registry, Kubernetes with its real node), with LeNet and real Caffe's reference: deploy on
 * push; pr-preview opened, then closed; convert on a pull request. The jobs run the action from a copy of this
 * repository as `org/modelship@v1`, and the reusable workflows are resolved from it as GitHub would. The deploy
 * signs with a key in its sign job (real cosign, served from a local mirror as its release would be) and smoke and
 * the rollout verify it before they pull or deploy.
 * Stand-ins, named: actions/checkout (act copies the caller's tree), docker/setup-buildx-action,
 * actions/upload-artifact and actions/download-artifact (composite actions of ours), GitHub's REST API (a recording
 * fake, via GITHUB_API_URL), cosign's GitHub release (a local mirror of the binary built from the Go module proxy).
 * What act does not enforce, and so this test cannot check: `permissions:` (the grants are checked statically in
 * workflows.test.ts), `environment:` protection rules and `concurrency:` groups (their presence is checked
 * statically there too), runner labels (every label runs on this host), and `paths:` / `types:` filters of the
 * callers' `on:` (the test picks the workflow and the event).
 */

const RUN = `${process.pid}`;
const LENET = path.join(ORACLE, 'models/lenet');
const REPO_NAME = 'acme/models';
const IMAGE_REPO = `${LAB.registry}/${REPO_NAME}/lenet-${RUN}`;
const NAMESPACE = `act-${RUN}`;
const PR = 4242;

let work: string;
let repo: string;
let actionDir: string;
let stand: Record<string, string>;
let mirror: Mirror;
let api: Awaited<ReturnType<typeof githubFake>>;
let cosign: Awaited<ReturnType<typeof cosignRelease>>;
let signingKey: ReturnType<typeof generateKeyPair>;
let sha = '';
let deploySha = '';

const act = (workflow: string, event: string, payload: object) =>
  runAct({
    repo,
    workflow,
    event,
    payload: { repository: { full_name: REPO_NAME, name: 'models', owner: { login: 'acme' }, default_branch: 'main' }, ...payload },
    actionDir,
    standIns: stand,
    // the templates' secret names: KUBECONFIG for deploys, PREVIEW_KUBECONFIG for previews
    secrets: {
      GITHUB_TOKEN: 'ghs_actTestToken0123456789',
      KUBECONFIG: fs.readFileSync(KUBECONFIG, 'utf8'),
      PREVIEW_KUBECONFIG: fs.readFileSync(KUBECONFIG, 'utf8'),
      COSIGN_KEY: fs.readFileSync(signingKey.key, 'utf8'),
      COSIGN_PASSWORD: signingKey.password,
    },
    env: { GITHUB_API_URL: api.url },
    work,
  });

/** On failure, the end of act's log says which step broke. */
function expectSuccess(r: ActRun): void {
  if (r.code !== 0) throw new Error(`act exited ${r.code}:\n${r.log.slice(-6000)}`);
}

/** The digest a tag of the test's image repository resolves to (undefined: no such tag). */
const tagDigest = (tag: string) => resolveDigest(`${IMAGE_REPO}:${tag}`);

beforeAll(async () => {
  requireAct();
  requireLab();
  requireCluster();
  work = tmpDir('act-');
  actionDir = actionCheckout(path.join(work, 'modelship'));
  stand = standIns(path.join(work, 'stand-ins'));
  mirror = await releaseMirror(DEFAULT_NODE_VERSION);
  api = await githubFake();
  cosign = await cosignRelease();
  signingKey = generateKeyPair(work, 'deploy', 'act-signing-Pa55');
  const cosignInputs = { 'cosign-version': cosign.source.version, 'cosign-mirror': cosign.source.mirror, 'cosign-sha256': cosign.source.sha256 };
  const verifyInputs = {
    ...cosignInputs,
    verify: 'key',
    'verify-key': fs.readFileSync(signingKey.pub, 'utf8'),
    'transparency-log': false,
    'attestation-policy': 'parity=pass,model-name=lenet',
  };
  repo = path.join(work, 'models');
  const image = `${LAB.registry}/\${{ github.repository }}/lenet-${RUN}`;
  // a 2 s bake (LAB_ROLLOUT_WITH's 10 s is bench/act-deploy.ts's): these jobs prove the outputs, not the bake
  const rollout = { ...LAB_ROLLOUT_WITH, 'bake-time': 2 };
  const build = { ...LENET_WITH, image, 'model-name': 'lenet', 'base-image': LAB.baseImage, 'node-mirror': mirror.url, gpu: false };
  sha = callerRepo(repo, lenetFiles(LENET), {
    'deploy.yml': callerFromTemplate(
      'deploy-caller.yml',
      'deploy',
      {
        ...build,
        environment: 'production',
        namespace: NAMESPACE,
        replicas: 1,
        ...rollout,
        // signed in the sign job with a key; smoke and the rollout verify it (no Rekor here: transparency-log false)
        sign: 'key',
        'sign-inputs': yaml.dump({ ...cosignInputs, 'transparency-log': false }),
        'smoke-inputs': yaml.dump(verifyInputs),
        'rollout-inputs': yaml.dump(verifyInputs),
      },
      { 'signing-key': '${{ secrets.COSIGN_KEY }}', 'signing-key-password': '${{ secrets.COSIGN_PASSWORD }}' },
    ),
    'pr-preview.yml': callerFromTemplate('pr-preview-caller.yml', 'preview', { ...build, ...rollout }),
    'convert.yml': callerFromTemplate('convert-caller.yml', 'convert', LENET_WITH),
  });
}, 120_000);

afterAll(async () => {
  dropNamespaces('', NAMESPACE);
  dropNamespaces('', `lenet-pr-${PR}`);
  await mirror?.close();
  await api?.close();
  await cosign?.close();
});

describeLab('lab: the caller templates run by an Actions engine (act)', () => {
  let deploy: ActRun;

  test('deploy on push: build, smoke on the build runner (gpu false), rollout promoted on the real node; the outputs reach the caller', async () => {
    deploySha = sha;
    deploy = await act('deploy.yml', 'push', { ref: 'refs/heads/main', after: sha, head_commit: { id: sha } });
    expectSuccess(deploy);
    expect(deploy.jobs).toEqual({ build: 'succeeded', sign: 'succeeded', smoke: 'succeeded', rollout: 'succeeded', report: 'succeeded' });
    const { deploy: called } = deploy.needs;
    expect(called.result).toBe('success');
    expect(called.outputs.signed).toBe('true');
    // the sign job took cosign from its release (the mirror, or the runner's tool cache after an earlier run: checked
    // against the pinned sha256 either way), signed and attested both documents; smoke and the rollout verified
    // before running
    const signJob = deploy.log
      .split('\n')
      .filter((l) => /^\[[^\]]*\/sign\s*\]/.test(l)) // act pads the job names to one width
      .join('\n');
    expect(signJob).toMatch(/cosign v[\d.]+(: sha256 [0-9a-f]{64} verified; cached| from the tool cache .*: sha256 [0-9a-f]{64} verified)/);
    expect(signJob).toMatch(
      /\| cosign sign [^\n]*sha256:[0-9a-f]{64}\n[^]*\| cosign attest [^\n]*--type cyclonedx[^]*\| cosign attest [^\n]*--type slsaprovenance1/,
    );
    expect(deploy.log).not.toContain('act-signing-Pa55');
    expect(deploy.log).not.toContain('ENCRYPTED SIGSTORE PRIVATE KEY');
    expect(deploy.log.match(/attestation-policy: parity=pass, model-name=lenet: pass/g)?.length).toBeGreaterThanOrEqual(2);
    expect(called.outputs.image).toMatch(new RegExp(`^${IMAGE_REPO.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}$`));
    expect(called.outputs.parity).toBe('pass');
    expect(Number(called.outputs['latency-p95-ms'])).toBeGreaterThan(0);
    expect(called.outputs.decision).toBe('promoted');
    // the stable pods run the pushed digest, on the real node (node-selector and tolerations reached the rollout)
    const pods = kubectlJson<{ items: { spec: { nodeName: string; containers: { image: string; resources: { requests: Record<string, string> } }[] } }[] }>([
      'get',
      'pods',
      '-n',
      NAMESPACE,
      '-l',
      'app.kubernetes.io/name=lenet',
      '-o',
      'json',
    ]).items;
    expect(pods.length).toBeGreaterThan(0);
    for (const p of pods) {
      expect(p.spec.nodeName).toBe('realnode');
      expect(p.spec.containers[0].image).toBe(called.outputs.image);
      expect(p.spec.containers[0].resources.requests).toMatchObject({ cpu: '200m', memory: '512Mi' });
    }
    // in the namespace the rollout created, which enforces Pod Security restricted
    expect(kubectlJson<{ metadata: { labels: Record<string, string> } }>(['get', 'namespace', NAMESPACE]).metadata.labels).toMatchObject(RESTRICTED);
    // the image was built from the lab's base and the Node.js release of the mirror (no Docker Hub, no nodejs.org)
    expect(mirror.requests.some((r) => r.endsWith('.tar.gz')) || /node.*tool cache/i.test(deploy.log)).toBe(true);
    expect(deploy.log).not.toMatch(/DeprecationWarning|internal error/);
  }, 600_000);

  let cacheBefore: string | undefined;
  let deployTags: Record<string, string | undefined> = {};

  test('pr-preview opened: the preview is up, the outputs reach the caller, the PR comment shows parity and smoke', async () => {
    expect(deploy?.code).toBe(0);
    // the pull request's head: a commit after the deployed one
    sha = callerRepo(repo, { 'models/lenet/NOTES.md': 'a change under review\n' }, {});
    cacheBefore = await tagDigest('buildcache');
    deployTags = Object.fromEntries(
      await Promise.all(['latest', 'main', `sha-${deploySha.slice(0, 7)}`, 'buildcache'].map(async (t) => [t, await tagDigest(t)])),
    );
    expect(Object.values(deployTags).every((d) => d?.startsWith('sha256:'))).toBe(true);
    const r = await act('pr-preview.yml', 'pull_request', {
      action: 'opened',
      number: PR,
      pull_request: { number: PR, head: { sha, ref: 'new-model' }, base: { ref: 'main' } },
    });
    expectSuccess(r);
    // cleanup is skipped (its if: is for closed)
    expect(r.jobs).toEqual({ build: 'succeeded', smoke: 'succeeded', preview: 'succeeded', report: 'succeeded' });
    expect(r.needs.preview.result).toBe('success');
    expect(r.needs.preview.outputs['preview-url']).toMatch(new RegExp(`/namespaces/lenet-pr-${PR}/services/lenet:http/proxy/v2/models/lenet$`));
    expect(exists('deployment', `lenet-pr-${PR}`, 'lenet')).toBe(true);
    expect(kubectlJson<{ metadata: { labels: Record<string, string> } }>(['get', 'namespace', `lenet-pr-${PR}`]).metadata.labels).toMatchObject(RESTRICTED);
    // one comment, posted with the job's token, naming the parity from the build job and the smoke figures
    const posts = api.requests.filter((q) => q.method === 'POST');
    expect(posts.map((q) => q.path)).toEqual([`/repos/${REPO_NAME}/issues/${PR}/comments`]);
    expect(posts[0].auth).toBe('token ghs_actTestToken0123456789');
    const body = [...api.comments.values()][0].body;
    expect(body).toMatch(/\| parity against Caffe \| pass \(max \\\|Δ\\\| \d\.\d\de-\d+\) \|/);
    expect(body).toMatch(/\| smoke latency \| p50 [\d.]+ ms, p95 [\d.]+ ms/);
    expect(body).toContain(`${IMAGE_REPO}@sha256:`);
    // the preview's build wrote its own image tag and left the deploy's cache where it was
    expect(await tagDigest(`pr-${PR}`)).toMatch(/^sha256:/);
    expect(await tagDigest('buildcache')).toBe(cacheBefore);
  }, 600_000);

  test('pr-preview closed: cleanup removes only what the preview made', async () => {
    for (const t of [`pr-${PR}`, `buildcache-pr-${PR}`, `sha-${sha.slice(0, 7)}`])
      expect([t, await tagDigest(t)]).toEqual([t, expect.stringMatching(/^sha256:/)]);
    const r = await act('pr-preview.yml', 'pull_request', {
      action: 'closed',
      number: PR,
      pull_request: { number: PR, head: { sha, ref: 'new-model' }, base: { ref: 'main' }, merged: false },
    });
    expectSuccess(r);
    // build, smoke and preview are skipped on closed; cleanup ran
    expect(r.jobs).toEqual({ cleanup: 'succeeded', report: 'succeeded' });
    // what the preview's build pushed: its tag, its own build cache and the PR commit's sha tag
    for (const t of [`pr-${PR}`, `buildcache-pr-${PR}`, `sha-${sha.slice(0, 7)}`]) expect([t, await tagDigest(t)]).toEqual([t, undefined]);
    // the deploy's tags are untouched, each where it was
    for (const [tag, digest] of Object.entries(deployTags)) expect([tag, await tagDigest(tag)]).toEqual([tag, digest]);
    // the deploy's namespace and its Deployment stay; the preview's namespace goes
    expect(exists('deployment', NAMESPACE, 'lenet')).toBe(true);
    const ns = kubectlJson<{ items: { metadata: { name: string; deletionTimestamp?: string } }[] }>(['get', 'namespaces', '-o', 'json']).items.find(
      (n) => n.metadata.name === `lenet-pr-${PR}`,
    );
    expect(ns === undefined || ns.metadata.deletionTimestamp !== undefined).toBe(true);
    // the comment was updated, not duplicated
    expect(api.comments.size).toBe(1);
    expect([...api.comments.values()][0].body).toMatch(/removed/);
  }, 600_000);

  test('convert on a pull request: parity passes, the outputs reach the caller, the model is uploaded', async () => {
    const r = await act('convert.yml', 'pull_request', {
      action: 'synchronize',
      number: PR,
      pull_request: { number: PR, head: { sha, ref: 'new-model' }, base: { ref: 'main' } },
    });
    expectSuccess(r);
    expect(r.jobs).toEqual({ convert: 'succeeded', report: 'succeeded' });
    expect(r.needs.convert.result).toBe('success');
    expect(r.needs.convert.outputs.parity).toBe('pass');
    expect(r.needs.convert.outputs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Number(r.needs.convert.outputs['max-abs-diff'])).toBeLessThan(1e-3);
    expect(fs.readdirSync(path.join(work, 'artifacts/onnx-model')).sort()).toEqual(['model.onnx', 'parity.json']);
  }, 300_000);
});
