import * as fs from 'fs';
import * as path from 'path';
import { spawn, execFileSync, ChildProcess } from 'child_process';
import { runCli } from './helpers/cli';
import { FIXTURES, REPO, tmpDir } from './helpers/caffe';
import { LAB, requireLab } from './helpers/lab';
import { requireCluster, kubectl, kubectlJson, runCliProcess, CPU_BURST_PATCH } from './helpers/kube';
import { labDescribe } from './helpers/needs';

// A second, real registry (Debian's docker-registry, as in the lab) with htpasswd auth, to prove the image stage's
// login: the password goes to `docker login --password-stdin` and is never printed.
jest.setTimeout(180_000);

const describeLab = labDescribe(['docker', 'registry', 'node24']);

const PORT = 5000 + 100 + (process.pid % 800);
const REGISTRY = `127.0.0.1:${PORT}`;
const dir = tmpDir('modelship-authreg-');
let registry: ChildProcess | undefined;
let privateImage = '';

beforeAll(async () => {
  requireLab();
  const hash = execFileSync(
    '/usr/bin/python3',
    ['-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', 's3cret-Pa55'],
    { encoding: 'utf8' },
  ).trim();
  fs.writeFileSync(path.join(dir, 'htpasswd'), `ci-bot:${hash}\n`);
  fs.writeFileSync(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'storage:',
      `  filesystem: { rootdirectory: ${path.join(dir, 'data')} }`,
      'http:',
      `  addr: ${REGISTRY}`,
      'auth:',
      `  htpasswd: { realm: modelship-test, path: ${path.join(dir, 'htpasswd')} }`,
      '',
    ].join('\n'),
  );
  registry = spawn('/usr/bin/docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      execFileSync('curl', ['-s', '-o', '/dev/null', `http://${REGISTRY}/v2/`]);
      return;
    } catch {
      /* starting */
    }
  }
  throw new Error('the auth registry did not start');
});

afterAll(() => {
  registry?.kill();
  try {
    execFileSync('docker', ['logout', REGISTRY], { stdio: 'ignore' });
  } catch {
    /* not logged in */
  }
});

describeLab('image stage: registry login', () => {
  // the user's own Docker config (a self-hosted runner's ~/.docker): another registry's login, a default credential
  // store, a buildx directory; modelship must leave it exactly as it was
  const userConfig = path.join(dir, 'user-docker');
  const runnerTemp = path.join(dir, 'runner-temp');
  const userConfigJson = JSON.stringify(
    { auths: { 'other.registry.example': { auth: Buffer.from('someone:else').toString('base64') } }, credsStore: 'no-such-helper' },
    null,
    2,
  );
  beforeAll(() => {
    fs.mkdirSync(path.join(userConfig, 'buildx'), { recursive: true });
    fs.writeFileSync(path.join(userConfig, 'config.json'), userConfigJson);
    fs.mkdirSync(runnerTemp, { recursive: true });
    process.env.DOCKER_CONFIG = userConfig;
    process.env.RUNNER_TEMP = runnerTemp;
  });
  afterAll(() => {
    delete process.env.DOCKER_CONFIG;
  });

  test('pushes with registry-username/password to a registry that requires them; the password is never printed', async () => {
    const model = path.join(dir, 'lenet.onnx');
    const lenet = path.join(FIXTURES, 'lenet');
    expect(
      (await runCli(['convert', '--prototxt', path.join(lenet, 'deploy.prototxt'), '--caffemodel', path.join(lenet, 'weights.caffemodel'), '--out', model]))
        .code,
    ).toBe(0);
    const common = [
      'image',
      '--image',
      `${REGISTRY}/modelship/lenet`,
      '--model',
      model,
      '--model-name',
      'lenet',
      '--base-image',
      LAB.baseImage,
      '--revision',
      'd'.repeat(40),
      '--ref',
      'refs/heads/main',
      '--compose-file',
      path.join(dir, 'c.yml'),
      '--registry-username',
      'ci-bot',
    ];
    const bad = await runCli([...common, '--registry-password', 'wrong-Pa55']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`docker login ${REGISTRY.replace(/\./g, '\\.')} failed`));
    expect(bad.stderr + bad.stdout).not.toContain('wrong-Pa55');
    const ok = await runCli([...common, '--registry-password', 's3cret-Pa55', '--json']);
    expect(ok.stderr).not.toMatch(/error:/);
    expect(ok.code).toBe(0);
    expect(ok.json().image).toMatch(new RegExp(`^${REGISTRY.replace(/\./g, '\\.')}/modelship/lenet@sha256:`));
    expect(ok.stderr + ok.stdout).not.toContain('s3cret-Pa55');
    // the credentials lived in a DOCKER_CONFIG of the stage's own, gone now: the user's config is as it was
    expect(fs.readFileSync(path.join(userConfig, 'config.json'), 'utf8')).toBe(userConfigJson);
    expect(fs.readdirSync(userConfig).sort()).toEqual(['buildx', 'config.json']);
    expect(fs.readdirSync(runnerTemp).filter((f) => f.startsWith('modelship-docker-config-'))).toEqual([]);
    // anonymous access is refused: the push really went through the login
    expect(execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${REGISTRY}/v2/modelship/lenet/tags/list`], { encoding: 'utf8' })).toBe(
      '401',
    );
    privateImage = ok.json().image;
  });

  test('smoke pulls the private image with the same credentials; without them it fails naming the registry; the user config is untouched', async () => {
    expect(privateImage).not.toBe('');
    execFileSync('docker', ['image', 'rm', '-f', privateImage], { stdio: 'ignore' }); // pulled, not found locally
    const smoke = ['smoke', '--image', privateImage, '--model-name', 'lenet', '--reference', path.join(FIXTURES, 'lenet'), '--requests', '0'];
    const anon = await runCli(smoke);
    expect(anon.code).toBe(1);
    expect(anon.stderr).toContain(`docker pull ${privateImage} failed (registry ${REGISTRY} requires a login: give registry-username and registry-password)`);
    const ok = await runCli([...smoke, '--registry-username', 'ci-bot', '--registry-password', 's3cret-Pa55', '--json']);
    expect(ok.stderr).not.toMatch(/error:/);
    expect(ok.json().smoke).toBe('pass');
    expect(ok.stderr + ok.stdout).not.toContain('s3cret-Pa55');
    expect(fs.readFileSync(path.join(userConfig, 'config.json'), 'utf8')).toBe(userConfigJson);
    expect(fs.readdirSync(runnerTemp).filter((f) => f.startsWith('modelship-docker-config-'))).toEqual([]);
  });

  labDescribe(['cluster'])('on the lab cluster', () => {
    test("rollout: the pods pull the private image with the pull Secret made from the same credentials (labelled as modelship's)", async () => {
      requireCluster();
      expect(privateImage).not.toBe('');
      execFileSync('docker', ['image', 'rm', '-f', privateImage], { stdio: 'ignore' }); // the kubelet must pull it
      const ns = `pull${process.pid}`;
      // examples/lab-realnode.patch.yaml (the real node), after the CPU burst (the pod starts in seconds, not at 50m's pace)
      const patch = path.join(dir, 'lab-realnode.patch.yaml');
      fs.writeFileSync(patch, `${CPU_BURST_PATCH}${fs.readFileSync(path.join(REPO, 'examples/lab-realnode.patch.yaml'), 'utf8')}`);
      try {
        const r = await runCliProcess([
          'rollout',
          '--image',
          privateImage,
          '--model-name',
          'lenet',
          '--app',
          'lenet',
          '--namespace',
          ns,
          '--replicas',
          '1',
          '--bake-time',
          '0',
          '--rollout-timeout',
          '120',
          '--reference',
          path.join(FIXTURES, 'lenet'),
          '--cpu',
          '50m',
          '--memory',
          '256Mi',
          '--patch',
          patch,
          '--registry-username',
          'ci-bot',
          '--registry-password',
          's3cret-Pa55',
          '--create-pull-secret',
        ]);
        if (r.code !== 0) throw new Error(`rollout exited ${r.code}:\n${r.stderr.slice(-3000)}`);
        expect(r.outputs.decision).toBe('promoted');
        expect(r.stderr + r.stdout).not.toContain('s3cret-Pa55');
        const secret = kubectlJson<any>(['-n', ns, 'get', 'secret', 'lenet-registry']);
        expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
        expect(secret.metadata.labels['app.kubernetes.io/managed-by']).toBe('modelship');
        expect(JSON.parse(Buffer.from(secret.data['.dockerconfigjson'], 'base64').toString()).auths[REGISTRY].username).toBe('ci-bot');
        const pod = kubectlJson<any>(['-n', ns, 'get', 'pods', '-l', 'app.kubernetes.io/name=lenet', '-o', 'json']).items[0];
        expect(pod.spec.imagePullSecrets).toEqual([{ name: 'lenet-registry' }]);
        expect(pod.status.containerStatuses[0].imageID).toContain(privateImage.split('@')[1]);
      } finally {
        kubectl(['delete', 'namespace', ns, '--wait=false']);
      }
    });
  });
});
