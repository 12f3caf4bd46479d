import { ModelshipError } from '../util/errors';
import { GRPC_PORT, METRICS_PORT as SERVING_METRICS_PORT, Runtime, SERVER_DRAIN_TIMEOUT_S, TRITON_UID } from '../protocol/runtime';
import { SERVE_SETTINGS } from '../protocol/serve-settings';

/**
 * Kubernetes objects for a model deployment, as declared data (issue 4 builds the rollout on these).
 * Pure: no cluster access. Every object carries `app.kubernetes.io/managed-by: modelship`.
 */
export interface DeploySpec {
  app: string;
  /** the image's server: modelship, or Triton Inference Server (its image's CMD sets ports and exit timeout) */
  runtime: Runtime;
  namespace: string;
  /** the serving image by digest */
  image: string;
  modelName: string;
  replicas: number;
  gpu: boolean;
  /** resources.requests/limits for the serving container (cpu, memory) */
  resources: { cpu: string; memory: string };
  nodeSelector: Record<string, string>;
  tolerations: { key: string; operator?: string; value?: string; effect?: string }[];
  imagePullSecrets: string[];
  /** Secret (name, key) holding the API key, exposed as MODELSHIP_API_KEY */
  apiKeySecret?: { name: string; key: string };
  /** Secret (name, key) holding the model decryption key, exposed as MODELSHIP_MODEL_KEY */
  modelKeySecret?: { name: string; key: string };
  /** progressDeadlineSeconds of the Deployment */
  progressDeadlineSeconds: number;
  port: number;
  /** the server's metrics-only listener (MODELSHIP_METRICS_PORT): GET /metrics without the API key, nothing else */
  metricsPort: number;
  /**
   * drain-delay: seconds a terminating pod keeps serving (a preStop hook) while the endpoints controller and
   * kube-proxy (or any other load balancer) take it out of the Service
   */
  drainDelayS: number;
  /** MODELSHIP_DRAIN_TIMEOUT_S: after SIGTERM, seconds the server gives in-flight requests before cutting them */
  drainTimeoutS: number;
  /** the cluster's kubelets run the `sleep` lifecycle action (sleepActionServed): the preStop hook needs no process */
  sleepAction?: boolean;
}

/**
 * Whether every kubelet of a cluster whose API server is `version` runs the preStop `sleep` action: it is on by default
 * from kubelet 1.30 (beta; GA in 1.34), and kubelets may be three minors older than the API server, so an API server
 * from 1.33 on. Below that the hook starts a process in the container.
 */
export function sleepActionServed(version: { major: string; minor: string }): boolean {
  const major = parseInt(version.major, 10);
  const minor = parseInt(version.minor, 10);
  return major > 1 || (major === 1 && minor >= 33);
}

/**
 * The oldest Kubernetes minor modelship deploys to (README "Supported Kubernetes"): every field the manifests write is
 * served and on by default from it: the PodDisruptionBudget's unhealthyPodEvictionPolicy and the topology spread's
 * matchLabelKeys (beta, on by default, in 1.27), on top of Pod Security admission (1.25) and policy/v1 (1.21). Server-side
 * apply refuses a field an older API server does not know.
 */
export const KUBERNETES_FLOOR = { major: 1, minor: 27 };

/** Undefined when an API server of `version` is supported, else why not (for the stage's error). */
export function unsupportedServer(version: { major: string; minor: string; gitVersion?: string }): string | undefined {
  const major = parseInt(version.major, 10);
  const minor = parseInt(version.minor, 10); // managed clusters report e.g. "27+"
  if (!Number.isFinite(major) || !Number.isFinite(minor)) return undefined; // a server that does not say: let the API server judge each object
  if (major > KUBERNETES_FLOOR.major || (major === KUBERNETES_FLOOR.major && minor >= KUBERNETES_FLOOR.minor)) return undefined;
  return `the cluster runs Kubernetes ${version.gitVersion ?? `${major}.${minor}`}, older than ${KUBERNETES_FLOOR.major}.${KUBERNETES_FLOOR.minor}, the oldest release modelship deploys to (its PodDisruptionBudget and topology spread use fields on by default from ${KUBERNETES_FLOOR.major}.${KUBERNETES_FLOOR.minor}; see README "Supported Kubernetes")`;
}

/** The port of the server's metrics-only listener in the pods (MODELSHIP_METRICS_PORT; the scrape annotations point at it). */
export const METRICS_PORT = SERVING_METRICS_PORT;
/** MODELSHIP_DRAIN_TIMEOUT_S of the pods (the server's default); Triton's image sets the same --exit-timeout-secs. */
export const DRAIN_TIMEOUT_S = SERVER_DRAIN_TIMEOUT_S;
/** Largest drain-delay: every pod termination (a rollout step, a scale-down, a node drain) takes at least that long; 5000 is more likely meant as ms. */
export const MAX_DRAIN_DELAY_S = 300;
/**
 * MODELSHIP_DRAIN_DELAY_S of the pods after a preStop wait: on SIGTERM the server answers with `Connection: close` for
 * this long before it stops taking work, so clients that hold a keep-alive connection to the pod (a ClusterIP is
 * resolved per connection, not per request) reconnect to another pod instead of meeting a closed socket.
 */
export const SERVER_DRAIN_DELAY_S = 2;
/** Grace period beyond the preStop wait and the drain timeout: starting the hook's process, the server's exit. */
export const GRACE_MARGIN_S = 5;
/** The image's Node.js (the image stage's ENTRYPOINT runs it): the preStop hook's only tool, no shell is guaranteed. */
export const IMAGE_NODE = '/opt/modelship/node/bin/node';

/**
 * terminationGracePeriodSeconds: Kubernetes counts the preStop hook inside the grace period (the kubelet runs the hook,
 * then sends SIGTERM with what is left, at least 2 s), so it covers the hook's wait, then the server's own drain delay
 * (SERVER_DRAIN_DELAY_S, Connection: close on every answer) and drain timeout, then a margin for the hook's start and
 * the exit.
 */
export function gracePeriodSeconds(s: Pick<DeploySpec, 'drainDelayS' | 'drainTimeoutS'> & { runtime?: Runtime }): number {
  return s.drainDelayS + serverDrainDelay(s) + s.drainTimeoutS + GRACE_MARGIN_S;
}

/**
 * drain-delay 0 asks for no waiting at all: then the server stops taking work on SIGTERM too. Triton has no such
 * phase: on SIGTERM it finishes what is in flight within --exit-timeout-secs (the image's CMD sets DRAIN_TIMEOUT_S).
 */
const serverDrainDelay = (s: Pick<DeploySpec, 'drainDelayS'> & { runtime?: Runtime }): number =>
  s.drainDelayS > 0 && s.runtime !== 'triton' ? SERVER_DRAIN_DELAY_S : 0;

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
};

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function validateSpec(s: DeploySpec): void {
  const bad = (field: string, why: string): never => {
    throw new ModelshipError('input', `input "${field}": ${why}`, { field });
  };
  if (!NAME.test(s.app) || s.app.length > 50)
    bad('app', `must be a DNS label of at most 50 characters (it names the Deployment and its -canary twin), got "${s.app}"`);
  if (!NAME.test(s.namespace) || s.namespace.length > 63) bad('namespace', `must be a DNS label, got "${s.namespace}"`);
  if (!/@sha256:[0-9a-f]{64}$/.test(s.image)) bad('image', `deploy the image by digest (repository@sha256:...), got "${s.image}"`);
  if (!Number.isInteger(s.replicas) || s.replicas < 1) bad('replicas', `must be a positive integer, got ${s.replicas}`);
  if (!Number.isInteger(s.drainDelayS) || s.drainDelayS < 0 || s.drainDelayS > MAX_DRAIN_DELAY_S)
    bad('drain-delay', `expected whole seconds from 0 to ${MAX_DRAIN_DELAY_S}, got ${s.drainDelayS}`);
}

/** The labels that select the serving pods; the canary adds `track: canary`, the stable `track: stable`. */
export function selectorLabels(app: string): Record<string, string> {
  return { 'app.kubernetes.io/name': app, 'app.kubernetes.io/component': 'model-server' };
}

/** The environment of modelship's server (Triton's image takes its settings from its CMD). */
function modelshipEnv(s: DeploySpec): Record<string, unknown>[] {
  const env: Record<string, unknown>[] = [
    { name: SERVE_SETTINGS.modelName.env, value: s.modelName },
    { name: SERVE_SETTINGS.port.env, value: String(s.port) },
    { name: SERVE_SETTINGS.grpcPort.env, value: String(GRPC_PORT) },
    { name: SERVE_SETTINGS.metricsPort.env, value: String(s.metricsPort) },
    // the preStop hook has already kept the pod serving for drain-delay seconds while it left the Service's
    // endpoints: on SIGTERM the server only sheds its keep-alive clients (Connection: close) for a moment, then
    // stops taking work and finishes what is in flight
    { name: SERVE_SETTINGS.drainDelay.env, value: String(serverDrainDelay(s)) },
    { name: SERVE_SETTINGS.drainTimeout.env, value: String(s.drainTimeoutS) },
  ];
  if (s.gpu) env.push({ name: SERVE_SETTINGS.provider.env, value: 'cuda' });
  if (s.apiKeySecret) env.push({ name: SERVE_SETTINGS.apiKey.env, valueFrom: { secretKeyRef: { name: s.apiKeySecret.name, key: s.apiKeySecret.key } } });
  if (s.modelKeySecret)
    env.push({ name: SERVE_SETTINGS.modelKey.env, valueFrom: { secretKeyRef: { name: s.modelKeySecret.name, key: s.modelKeySecret.key } } });
  return env;
}

/**
 * The preStop hook that keeps a terminating pod serving for drain-delay seconds while it leaves the Service's
 * endpoints: the kubelet's own `sleep` action where the cluster runs it (no process in the container); below that
 * (sleepActionServed) a process: modelship's image has no shell, so its own Node.js waits; Triton's images (Ubuntu)
 * have coreutils' sleep.
 */
function preStop(s: DeploySpec): Record<string, unknown> {
  if (s.sleepAction) return { sleep: { seconds: s.drainDelayS } };
  return { exec: { command: s.runtime === 'triton' ? ['sleep', String(s.drainDelayS)] : [IMAGE_NODE, '-e', `setTimeout(() => {}, ${s.drainDelayS * 1000})`] } };
}

function container(s: DeploySpec): Record<string, unknown> {
  const triton = s.runtime === 'triton';
  const limits: Record<string, string> = { cpu: s.resources.cpu, memory: s.resources.memory };
  if (s.gpu) limits['nvidia.com/gpu'] = '1';
  const probe = (path: string, period: number, failures: number) => ({
    httpGet: { path, port: 'http' },
    periodSeconds: period,
    failureThreshold: failures,
    timeoutSeconds: 2,
  });
  return {
    name: 'model-server',
    image: s.image,
    imagePullPolicy: 'IfNotPresent',
    ports: [
      { name: 'http', containerPort: s.port, protocol: 'TCP' },
      // KServe v2 over gRPC: modelship's MODELSHIP_GRPC_PORT, Triton's --grpc-port (its image's CMD)
      { name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' },
      { name: 'metrics', containerPort: s.metricsPort, protocol: 'TCP' },
    ],
    ...(triton ? {} : { env: modelshipEnv(s) }),
    resources: { requests: { cpu: s.resources.cpu, memory: s.resources.memory }, limits },
    // both runtimes answer KServe v2's health routes; Triton's readiness means every model in its repository is ready
    readinessProbe: probe('/v2/health/ready', 2, 2),
    livenessProbe: { ...probe('/v2/health/live', 5, 3), initialDelaySeconds: 5 },
    // the startup probe looks every second, so a pod is Ready (or seen failing) within a second of it
    startupProbe: probe('/v2/health/ready', 1, 120),
    // a terminating pod is removed from the Service's endpoints while the kubelet runs this hook; SIGTERM comes after it
    ...(s.drainDelayS > 0 ? { lifecycle: { preStop: preStop(s) } } : {}),
    // Triton (and its Python backend's stubs) write to /tmp: a writable emptyDir under a read-only root
    ...(triton ? { volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }] } : {}),
    // what Pod Security's `restricted` profile requires (and a read-only root beyond it)
    securityContext: {
      runAsNonRoot: true,
      runAsUser: triton ? TRITON_UID : 10001,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}

/** A Deployment for the stable track (`<app>`) or the canary (`<app>-canary`). */
export function deployment(s: DeploySpec, track: 'stable' | 'canary', replicas: number): K8sObject {
  const name = track === 'stable' ? s.app : `${s.app}-canary`;
  const labels = { ...selectorLabels(s.app), track, 'app.kubernetes.io/managed-by': 'modelship' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: s.namespace, labels, annotations: { 'modelship.dev/image': s.image } },
    spec: {
      replicas,
      progressDeadlineSeconds: s.progressDeadlineSeconds,
      revisionHistoryLimit: 5,
      selector: { matchLabels: { ...selectorLabels(s.app), track } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: { ...selectorLabels(s.app), track },
          // the common scrape convention (and the lab's pod discovery): the server's metrics-only listener, which
          // needs no API key and serves nothing but /metrics, so a scraper never holds a key nor reaches inference
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(s.metricsPort), 'prometheus.io/path': '/metrics' },
        },
        spec: {
          // the server never calls the Kubernetes API: no token in its pods
          automountServiceAccountToken: false,
          containers: [container(s)],
          ...(s.runtime === 'triton' ? { volumes: [{ name: 'tmp', emptyDir: {} }] } : {}),
          terminationGracePeriodSeconds: gracePeriodSeconds(s),
          ...(Object.keys(s.nodeSelector).length ? { nodeSelector: s.nodeSelector } : {}),
          ...(s.tolerations.length ? { tolerations: s.tolerations } : {}),
          ...(s.imagePullSecrets.length ? { imagePullSecrets: s.imagePullSecrets.map((n) => ({ name: n })) } : {}),
          topologySpreadConstraints: [spreadAcrossNodes(s.app, track)],
        },
      },
    },
  };
}

/**
 * Soft spread of a track's pods across nodes: one node going away (a drain, a failure) takes as few of them as the
 * cluster allows, and a cluster with one node still schedules them all (ScheduleAnyway). matchLabelKeys
 * pod-template-hash counts only the pods of the same ReplicaSet, so during a rolling update the new pods spread among
 * themselves instead of around the old ones (on by default from Kubernetes 1.27: the floor, see README).
 */
export function spreadAcrossNodes(app: string, track: 'stable' | 'canary'): Record<string, unknown> {
  return {
    maxSkew: 1,
    topologyKey: 'kubernetes.io/hostname',
    whenUnsatisfiable: 'ScheduleAnyway',
    labelSelector: { matchLabels: { ...selectorLabels(app), track } },
    matchLabelKeys: ['pod-template-hash'],
  };
}

/** disruption-budget: `auto`, `none`, or maxUnavailable as a number of pods or a percentage. */
export type DisruptionBudget = 'auto' | 'none' | number | `${number}%`;

/**
 * The PodDisruptionBudget's maxUnavailable for the stable Deployment, or undefined for none. `auto`: a quarter of the
 * replicas (the Deployment's own default for a rolling update), at least 1; with 1 replica none, since any budget then
 * either blocks every node drain (0 may go) or protects nothing (1 may go).
 */
export function budgetMaxUnavailable(setting: DisruptionBudget, replicas: number): number | string | undefined {
  if (setting === 'none') return undefined;
  if (setting === 'auto') return replicas < 2 ? undefined : Math.max(1, Math.floor(replicas / 4));
  return setting;
}

/**
 * A PodDisruptionBudget (policy/v1) over the stable Deployment's pods (`selector`: its live selector when it has one):
 * evictions (`kubectl drain`, a cluster autoscaler, a node upgrade) take at most maxUnavailable of them at a time.
 * unhealthyPodEvictionPolicy AlwaysAllow: pods that are not Ready protect nothing, so a crash-looping pod never blocks
 * a drain (on by default from 1.27).
 */
export function disruptionBudget(s: Pick<DeploySpec, 'app' | 'namespace'>, maxUnavailable: number | string, selector: Record<string, string>): K8sObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: s.app, namespace: s.namespace, labels: { ...selectorLabels(s.app), 'app.kubernetes.io/managed-by': 'modelship' } },
    spec: { maxUnavailable, selector: { matchLabels: selector }, unhealthyPodEvictionPolicy: 'AlwaysAllow' },
  };
}

/** The Service users call (stable and canary pods) or the canary-only Service used for verification. */
export function service(s: DeploySpec, which: 'main' | 'canary'): K8sObject {
  const selector = which === 'main' ? selectorLabels(s.app) : { ...selectorLabels(s.app), track: 'canary' };
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: which === 'main' ? s.app : `${s.app}-canary`,
      namespace: s.namespace,
      labels: { ...selectorLabels(s.app), 'app.kubernetes.io/managed-by': 'modelship' },
    },
    // protocol is explicit (TCP, the default; the server-side apply of Kubernetes before 1.21 required it). Clients
    // call KServe v2 over HTTP or gRPC; the metrics port is scraped from the pods (their annotations), not served here
    spec: {
      selector,
      ports: [
        { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
        { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', protocol: 'TCP' },
      ],
    },
  };
}

/** The name of the image pull Secret that modelship creates from the registry credentials (create-pull-secret). */
export const pullSecretName = (app: string): string => `${app}-registry`;

/**
 * An image pull Secret (kubernetes.io/dockerconfigjson) for `registry` from a user and password, labelled as
 * modelship's. Its data is a secret: never print this object (dry runs and reports name it only).
 */
export function pullSecret(s: DeploySpec, registry: string, username: string, password: string): K8sObject {
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  const dockerconfig = JSON.stringify({ auths: { [registry]: { username, password, auth } } });
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: pullSecretName(s.app), namespace: s.namespace, labels: { ...selectorLabels(s.app), 'app.kubernetes.io/managed-by': 'modelship' } },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(dockerconfig).toString('base64') },
  };
}

/**
 * Pod Security admission's labels for a namespace that enforces `restricted` (the version: the API server's own,
 * `latest`). Warnings follow the enforce level when the namespace sets no warn level, so a Deployment whose pods would
 * be refused is answered with a warning (what the stage's dry run reads: admission.ts).
 */
export const RESTRICTED_NAMESPACE_LABELS: Record<string, string> = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
};

/**
 * A namespace modelship creates (create-namespace, PR previews): labelled as modelship's, and enforcing Pod Security
 * `restricted`, which modelship's own pods meet (container(): non-root, no privilege escalation, no capabilities,
 * RuntimeDefault seccomp), so nothing runs privileged in a namespace it made.
 */
export function namespaceManifest(name: string, annotations: Record<string, string> = {}): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'modelship', ...RESTRICTED_NAMESPACE_LABELS }, annotations },
  };
}

/** Canary replicas for `percent` of `replicas`: rounded up, at least 1. */
export function canaryReplicas(replicas: number, percent: number): number {
  if (!Number.isFinite(percent) || percent < 1 || percent > 100) {
    throw new ModelshipError('input', `input "canary-percent": must be between 1 and 100, got ${percent}`, { field: 'canary-percent' });
  }
  return Math.max(1, Math.ceil((replicas * percent) / 100));
}
