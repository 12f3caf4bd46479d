import * as fs from 'fs';
import * as https from 'https';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { execFileSync, spawn, spawnSync, ChildProcess } from 'child_process';
import { REPO } from './caffe';
import { withLock } from './shared';
import { readNpy } from '../../src/util/npy';
import { encodeInferRequest, decodeInferResponse, HEADER_LENGTH } from '../../src/protocol/kserve';
import { compareOutput, DEFAULT_TOLERANCE } from '../../src/shared/compare';

/**
 * The lab's Kubernetes cluster (lab/up.sh k8s), reached the ways its README allows: kubectl, and the API
 * server's proxy with the kubeconfig's client certificate. The rollout stage itself runs as a subprocess of the
 * bundle (dist/index.js), the way users run it (jest's module loader cannot load @kubernetes/client-node, ESM-only).
 */
export const KUBECONFIG = process.env.KUBECONFIG ?? '/var/lib/modelship-lab/pki/admin.kubeconfig';
export const KUBECTL = process.env.LAB_KUBECTL ?? '/var/lib/modelship-lab/bin/kubectl';
export const PROMETHEUS = process.env.LAB_PROMETHEUS ?? '';

export function requireCluster(): void {
  try {
    kubectl(['get', '--raw', '/readyz']);
  } catch (e) {
    throw new Error(`the lab's Kubernetes cluster is not running: start it with \`lab/up.sh\` as root (${(e as Error).message.split('\n')[0]})`);
  }
}

export function kubectl(args: string[], input?: string): string {
  return execFileSync(KUBECTL, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG } });
}

export function kubectlJson<T = any>(args: string[]): T {
  return JSON.parse(kubectl([...args, '-o', 'json'])) as T;
}

/** Pod Security admission's labels of a namespace that enforces `restricted` (what modelship puts on namespaces it creates). */
export const RESTRICTED: Record<string, string> = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
};

/** Create a namespace that enforces Pod Security `restricted` (plus `labels`: a warn level, say). */
export function createRestrictedNamespace(ns: string, labels: Record<string, string> = {}): void {
  kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { ...RESTRICTED, ...labels } } }));
}

/**
 * Proof that a namespace enforces Pod Security `restricted`: its labels, and the API server's answer to a privileged
 * pod there (a server-side dry run: nothing is created). Returns the refusal's text ('' when the pod was admitted).
 */
export function privilegedPodRefusal(ns: string): string {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'privileged-probe', namespace: ns },
    spec: { containers: [{ name: 'c', image: 'local/busybox:static', securityContext: { privileged: true } }] },
  };
  const r = spawnSync(KUBECTL, ['create', '--dry-run=server', '-f', '-'], {
    input: JSON.stringify(pod),
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG },
  });
  return r.status === 0 ? '' : r.stderr;
}

/** `kubectl apply --server-side --dry-run=server` of one object (create, for one that is not stored): exit code, and stderr (the API server's warnings). */
export function serverDryRun(obj: object, verb: 'apply' | 'create' = 'apply'): { code: number | null; stderr: string } {
  const args =
    verb === 'apply'
      ? ['apply', '--server-side', '--field-manager=modelship', '--force-conflicts', '--dry-run=server', '-f', '-']
      : ['create', '--dry-run=server', '-f', '-'];
  const r = spawnSync(KUBECTL, args, { input: JSON.stringify(obj), encoding: 'utf8', env: { ...process.env, KUBECONFIG } });
  return { code: r.status, stderr: r.stderr };
}

export function exists(kind: string, ns: string, name: string): boolean {
  try {
    kubectl(['-n', ns, 'get', kind, name, '-o', 'name']);
    return true;
  } catch {
    return false;
  }
}

/** Pods of a Deployment track, with what the tests compare: uid, restarts, image, ready. */
export function pods(ns: string, app: string, track: string): { name: string; uid: string; restarts: number; image: string; ready: boolean }[] {
  const l = kubectlJson<{ items: any[] }>(['-n', ns, 'get', 'pods', '-l', `app.kubernetes.io/name=${app},track=${track}`]);
  return l.items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => ({
      name: p.metadata.name,
      uid: p.metadata.uid,
      restarts: (p.status.containerStatuses ?? []).reduce((n: number, c: any) => n + c.restartCount, 0),
      image: p.spec.containers[0].image,
      ready: (p.status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
    }));
}

const kc = () => yaml.load(fs.readFileSync(KUBECONFIG, 'utf8')) as any;

/** An HTTP request through the API server (service or pod proxy), authenticated with the kubeconfig's client certificate. */
export function apiRequest(
  p: string,
  opts: { method?: string; body?: Buffer; headers?: Record<string, string | number> } = {},
): Promise<{ status: number; headers: Record<string, any>; body: Buffer }> {
  const c = kc();
  const cluster = c.clusters[0].cluster;
  const user = c.users[0].user;
  const b64 = (s: string) => Buffer.from(s, 'base64');
  return new Promise((resolve, reject) => {
    const req = https.request(
      cluster.server + p,
      {
        method: opts.method ?? (opts.body ? 'POST' : 'GET'),
        headers: opts.headers,
        ca: b64(cluster['certificate-authority-data']),
        cert: b64(user['client-certificate-data']),
        key: b64(user['client-key-data']),
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    if (opts.body) req.write(opts.body);
    req.end();
  });
}

/** The lab cluster's API server version (major, minor as it reports them). */
export function serverVersion(): { major: string; minor: string } {
  return JSON.parse(kubectl(['get', '--raw', '/version'])) as { major: string; minor: string };
}

/** A kubeconfig for a ServiceAccount (token auth) with only the given ClusterRole rules. */
export function serviceAccountKubeconfig(ns: string, name: string, rules: object[], file: string): void {
  kubectl(['create', 'namespace', ns]);
  kubectl(['-n', ns, 'create', 'serviceaccount', name]);
  kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: `${ns}-${name}` }, rules }),
  );
  kubectl(['create', 'clusterrolebinding', `${ns}-${name}`, `--clusterrole=${ns}-${name}`, `--serviceaccount=${ns}:${name}`]);
  // a TokenRequest (every release the lab runs has it; from 1.24 a ServiceAccount gets no token Secret)
  const token = (
    JSON.parse(
      kubectl(
        ['create', '--raw', `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, '-f', '-'],
        JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } }),
      ),
    ) as { status: { token: string } }
  ).status.token;
  const c = kc();
  fs.writeFileSync(
    file,
    yaml.dump({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'lab', cluster: c.clusters[0].cluster }],
      users: [{ name, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'lab', user: name } }],
      'current-context': 'sa',
    }),
  );
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
}

/** Start `node dist/index.js <args> --json`; `done` resolves when it exits. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<CliRun>; stderr: () => string } {
  const child = spawn(process.execPath, [path.join(REPO, 'dist/index.js'), ...args, '--json'], {
    env: { ...process.env, KUBECONFIG, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<CliRun>((resolve) =>
    child.on('close', (code, signal) => {
      let outputs: Record<string, string> = {};
      try {
        outputs = JSON.parse(stdout);
      } catch {
        /* no outputs: an input error */
      }
      resolve({ code, signal, stdout, stderr, outputs });
    }),
  );
  return { child, done, stderr: () => stderr };
}

export const runCliProcess = (args: string[], env: NodeJS.ProcessEnv = {}) => startCli(args, env).done;

/**
 * Poll `cond` until it holds, for at most `ms`. The first checks come 250 ms apart, then further apart up to 1 s: most
 * conditions here cost a kubectl process, and the lab's files run at once on two CPUs.
 */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  for (let pause = 250; Date.now() - t0 < ms; pause = Math.min(1000, pause * 1.5)) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, pause));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A --patch file's text that lands a Deployment's pods on the lab's real kubelet node (its label and taint; no cluster DNS there). */
export const REAL_NODE_PATCH = `# land the pods on the lab's real kubelet node
kind: Deployment
spec:
  template:
    spec:
      nodeSelector: {realnode: "true"}
      tolerations: [{key: realnode, operator: Exists, effect: NoSchedule}]
      dnsPolicy: Default
`;

/**
 * A --patch document that lets the model server burst to one CPU while it asks for what --cpu says (the tests' 50m:
 * what the scheduler counts stays small, so the files that run at once fit the real node's 2 CPUs). With the limit at
 * 50m too, the kernel throttles the server's start to ~13 s a pod (~4 s at 250m): waiting for nothing, on every pod of
 * every rollout. First in the file, so a test that appends container settings to REAL_NODE_PATCH's document still can.
 */
export const CPU_BURST_PATCH = `# let the model server burst beyond its CPU request (the lab's tests ask for little)
kind: Deployment
spec:
  template:
    spec:
      containers:
      - name: model-server
        resources:
          limits: {cpu: "1"}
---
`;

/** REAL_NODE_PATCH with CPU_BURST_PATCH before it: the LeNet rollouts of the lab tests. */
export const LAB_PODS_PATCH = `${CPU_BURST_PATCH}${REAL_NODE_PATCH}`;

/**
 * `rollout --flag value ...` from the default flags, each overridden by `more` (`--flag value`, or a bare `--flag`
 * for a boolean): the CLI refuses a flag given twice.
 */
export function rolloutArgs(defaults: Record<string, string>, more: string[] = []): string[] {
  const flags = new Map<string, string | undefined>(Object.entries(defaults));
  for (let i = 0; i < more.length; i++) {
    const name = more[i].slice(2);
    const value = more[i + 1] !== undefined && !more[i + 1].startsWith('--') ? more[++i] : undefined;
    flags.set(name, value);
  }
  return ['rollout', ...[...flags].flatMap(([k, v]) => (v === undefined ? [`--${k}`] : [`--${k}`, v]))];
}

/**
 * Delete the namespace `prefix` and those named `<prefix>-...` (or only the one named `only`), without waiting. (Not
 * every name that starts with `prefix`: ro12 would take ro123-canary, another worker's.)
 */
export function dropNamespaces(prefix: string, only?: string): void {
  for (const l of kubectl(['get', 'namespaces', '-o', 'name']).split('\n')) {
    if (only ? l === `namespace/${only}` : l === `namespace/${prefix}` || l.startsWith(`namespace/${prefix}-`)) {
      try {
        kubectl(['delete', l, '--wait=false']);
      } catch {
        /* already going */
      }
    }
  }
}

/**
 * Advertise `count` nvidia.com/gpu in a node's status (0: withdraw them). The lab has no device plugin: the extended
 * resource in the status is what lets pods that ask for a GPU schedule on the real node (and run on its CPU).
 */
export async function setNodeGpus(node: string, count: number): Promise<void> {
  const op =
    count > 0 ? { op: 'add', path: '/status/capacity/nvidia.com~1gpu', value: String(count) } : { op: 'remove', path: '/status/capacity/nvidia.com~1gpu' };
  const r = await apiRequest(`/api/v1/nodes/${node}/status`, {
    method: 'PATCH',
    body: Buffer.from(JSON.stringify([op])),
    headers: { 'content-type': 'application/json-patch+json' },
  });
  // (removing what is not there: 422, nothing to do)
  if (r.status !== 200 && !(count === 0 && r.status === 422))
    throw new Error(`PATCH node ${node} status (nvidia.com/gpu ${count}): HTTP ${r.status} ${r.body.toString().slice(0, 300)}`);
  await waitFor(
    `nvidia.com/gpu allocatable ${count} on ${node}`,
    () => (kubectlJson<any>(['get', 'node', node]).status.allocatable?.['nvidia.com/gpu'] ?? '0') === String(count),
    30_000,
  );
}

/**
 * `fn` while `node` advertises `count` nvidia.com/gpu (setNodeGpus), withdrawn after. The node's status is the
 * cluster's, not a test's: the files that use it (rollout-basic, rollout-triton), which run at once in different
 * workers, take turns through a lock (machine-wide: another jest run on the lab too), so one never withdraws the GPUs
 * under the other's pods.
 */
export async function withNodeGpus<T>(node: string, count: number, fn: () => Promise<T>): Promise<T> {
  return withLock(
    `node-gpus-${node}`,
    async () => {
      await setNodeGpus(node, count);
      try {
        return await fn();
      } finally {
        await setNodeGpus(node, 0);
      }
    },
    { machine: true },
  );
}

/**
 * A client of a Service, as users call it: the golden batch-1 request of `reference` (LeNet's layout: input `data`,
 * output `prob`) through the API server's service proxy (which picks a ready endpoint per request) from `loops`
 * concurrent loops, until stopped or for at most `maxMs`. Every answer must be 200 and match the reference; failures
 * are kept with their time since the start. Used by the rollout tests and bench/rollout.ts.
 */
export function serviceClient(o: { ns: string; service: string; model: string; reference: string; loops?: number; maxMs?: number }) {
  const x = readNpy(path.join(o.reference, 'input_b1.npy'));
  const ref = readNpy(path.join(o.reference, 'output_b1__prob.npy'));
  const req = encodeInferRequest([{ name: 'data', shape: x.shape, data: x.data }], { binaryOutputs: true });
  const stats = { sent: 0, ok: 0, failed: [] as string[] };
  const t0 = Date.now();
  const maxMs = o.maxMs ?? 300_000;
  let stop = false;
  const loop = async () => {
    while (!stop && Date.now() - t0 < maxMs) {
      const at = ((Date.now() - t0) / 1000).toFixed(1);
      stats.sent++;
      try {
        const r = await apiRequest(`/api/v1/namespaces/${o.ns}/services/${o.service}:http/proxy/v2/models/${o.model}/infer`, {
          body: req.body,
          headers: { [HEADER_LENGTH]: req.headerLength },
        });
        if (r.status !== 200) throw new Error(`HTTP ${r.status} ${r.body.toString().slice(0, 200)}`);
        const out = decodeInferResponse(r.body, Number(r.headers[HEADER_LENGTH])).outputs[0];
        if (!compareOutput('prob', 1, out, ref, DEFAULT_TOLERANCE).pass) throw new Error('wrong output');
        stats.ok++;
      } catch (e) {
        stats.failed.push(`${at} s: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const all = Promise.all(Array.from({ length: o.loops ?? 4 }, loop));
  return {
    stats,
    stop: async () => {
      stop = true;
      await all;
      return { ...stats, seconds: (Date.now() - t0) / 1000 };
    },
  };
}
