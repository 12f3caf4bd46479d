import * as yaml from 'js-yaml';
import { ModelshipError } from './util/errors';
import { parseBatches } from './compile/tensorrt';
import { DEFAULT_QUERIES } from './rollout/prometheus';
import { DRAIN_TIMEOUT_S, GRACE_MARGIN_S, MAX_DRAIN_DELAY_S, SERVER_DRAIN_DELAY_S } from './rollout/manifests';
import { DEFAULT_GPU_BASE_IMAGE } from './image/basecheck';
import { DEFAULT_NODE_VERSION } from './image/node';
import { DEFAULT_TRITON_RELEASE, RUNTIMES, Runtime, tensorrtImageFor, tritonImageFor } from './shared/runtime';

/**
 * The one surface shared by the action and the CLI: every action input is a CLI flag of the same name
 * (`--per-layer`), read once into a typed Config. action.yml and the README tables are checked against
 * INPUTS and OUTPUTS by a test, so the three cannot drift.
 */

export const STAGES = ['convert', 'compile', 'image', 'smoke', 'rollout', 'preview', 'cleanup', 'pipeline'] as const;
export type Stage = (typeof STAGES)[number];

/** The stages whose inputs a stage also reads: the pipeline runs five, a preview is a rollout. */
export const STAGE_INCLUDES: Partial<Record<Stage, Stage[]>> = { pipeline: ['convert', 'compile', 'image', 'smoke', 'rollout'], preview: ['rollout'] };

/** Does `stage` read input `i` (directly, or through a stage it runs)? */
export function inputUsedBy(i: InputSpec, stage: Stage): boolean {
  if (i.stages === 'all') return true;
  return [stage, ...(STAGE_INCLUDES[stage] ?? [])].some((s) => (i.stages as Stage[]).includes(s));
}

export interface InputSpec {
  name: string;
  description: string;
  /** default as action.yml states it ('' when there is none) */
  default: string;
  kind: 'string' | 'path' | 'boolean' | 'number';
  /** stages that use it; `required` lists those where it must be given */
  stages: Stage[] | 'all';
  required?: Stage[];
  secret?: boolean;
}

export interface OutputSpec {
  name: string;
  description: string;
  stages: Stage[];
}

export const INPUTS: InputSpec[] = [
  {
    name: 'stage',
    description: `Which stage to run: ${STAGES.join(' | ')}.`,
    default: '',
    kind: 'string',
    stages: 'all',
    required: [...STAGES],
  },
  {
    name: 'prototxt',
    description: 'convert, pipeline: path of the Caffe deploy.prototxt (V2 `layer` or legacy V1 `layers`).',
    default: '',
    kind: 'path',
    stages: ['convert', 'pipeline'],
    required: ['convert', 'pipeline'],
  },
  {
    name: 'caffemodel',
    description: 'convert, pipeline: path of the trained .caffemodel weights.',
    default: '',
    kind: 'path',
    stages: ['convert', 'pipeline'],
    required: ['convert', 'pipeline'],
  },
  {
    name: 'out',
    description: 'convert: where to write the ONNX model; parity.json and parity.md are written next to it.',
    default: 'model.onnx',
    kind: 'path',
    stages: ['convert'],
  },
  {
    name: 'reference',
    description:
      'convert, compile, smoke: directory with reference inputs and outputs from real Caffe (input_b<N>.npy, output_b<N>__<blob>.npy, optional blobs_b1/ and summary.json). Empty skips the parity check.',
    default: '',
    kind: 'path',
    stages: ['convert', 'compile', 'smoke', 'rollout'],
  },
  {
    name: 'per-layer',
    description: 'convert: also compare every intermediate blob (needs blobs_b1/ in the reference) and name the first layer that diverges.',
    default: 'false',
    kind: 'boolean',
    stages: ['convert'],
  },
  {
    name: 'tolerance',
    description: 'convert, compile, smoke, rollout: largest allowed max |Δ| between the ONNX and the Caffe outputs, scaled by max(1, max |reference|); top-5 must also be identical.',
    default: '1e-5',
    kind: 'number',
    stages: ['convert', 'compile', 'smoke', 'rollout'],
  },
  {
    name: 'model',
    description: 'compile: the ONNX model to compile (the convert stage\'s onnx-path); image: the model file to serve (an ONNX, e.g. compile\'s artifact-path).',
    default: 'model.onnx',
    kind: 'path',
    stages: ['compile', 'image'],
  },
  {
    name: 'target',
    description: 'compile: onnxruntime (ORT-optimized ONNX) or tensorrt (a TensorRT plan built by trtexec in base-image; needs a GPU runner).',
    default: 'onnxruntime',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'artifact',
    description: 'compile: where to write the artifact; empty means next to the model (<model>.ort.onnx or <model>.plan). Its metadata goes to <artifact>.json.',
    default: '',
    kind: 'path',
    stages: ['compile'],
  },
  {
    name: 'execution-provider',
    description: 'compile: the ONNX Runtime execution provider the artifact is optimized for: cpu or cuda.',
    default: 'cpu',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'base-image',
    description: 'image: the serving base image (pinned by digest; glibc-based); compile (tensorrt): the image that runs trtexec, which must then contain TensorRT, so the plan matches the TensorRT that serves it.',
    default: DEFAULT_GPU_BASE_IMAGE,
    kind: 'string',
    stages: ['compile', 'image'],
  },
  {
    name: 'runtime',
    description: 'image, smoke, rollout, preview: the serving runtime: modelship (this project\'s KServe v2 server on ONNX Runtime) or triton (NVIDIA Triton Inference Server with a generated model repository; serves ONNX and TensorRT plans). smoke and rollout also learn it from the server itself (GET /v2).',
    default: 'modelship',
    kind: 'string',
    stages: ['image', 'smoke', 'rollout', 'preview'],
  },
  {
    name: 'triton-release',
    description: 'compile (tensorrt), image (triton): NVIDIA\'s container release yy.mm: Triton serves from nvcr.io/nvidia/tritonserver:<release>-py3 and trtexec runs in nvcr.io/nvidia/tensorrt:<release>-py3, so a plan is built by the TensorRT that serves it.',
    default: DEFAULT_TRITON_RELEASE,
    kind: 'string',
    stages: ['compile', 'image'],
  },
  {
    name: 'triton-image',
    description: 'image (triton): the Triton server image to build FROM (a mirror, or repository@sha256:... to pin it); empty means nvcr.io/nvidia/tritonserver:<triton-release>-py3. The digest it resolves to is recorded in the image\'s labels and metadata.',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'tensorrt-image',
    description: 'compile (tensorrt): the image that runs trtexec (a mirror, or repository@sha256:...); empty means nvcr.io/nvidia/tensorrt:<triton-release>-py3.',
    default: '',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'calibration-cache',
    description: 'compile (tensorrt): an INT8 calibration cache for trtexec --calib; required with int8: true.',
    default: '',
    kind: 'path',
    stages: ['compile'],
  },
  {
    name: 'max-queue-delay-us',
    description: 'image (triton): dynamic batching\'s max_queue_delay_microseconds in the generated config.pbtxt.',
    default: '1000',
    kind: 'number',
    stages: ['image'],
  },
  {
    name: 'batch-sizes',
    description: 'compile (tensorrt): min,opt,max batch of the dynamic-batch optimization profile.',
    default: '1,8,32',
    kind: 'string',
    stages: ['compile'],
  },
  {
    name: 'fp16',
    description: 'compile: float16 artifact. onnxruntime (execution-provider cuda): float16 weights and activations, float32 inputs/outputs, parity checked with max(tolerance, 2e-3); tensorrt: --fp16.',
    default: 'false',
    kind: 'boolean',
    stages: ['compile'],
  },
  {
    name: 'int8',
    description: 'compile (tensorrt): also allow int8 kernels (--int8).',
    default: 'false',
    kind: 'boolean',
    stages: ['compile'],
  },
  {
    name: 'workspace-mib',
    description: 'compile (tensorrt): builder workspace memory pool in MiB (--memPoolSize=workspace:<n>M).',
    default: '4096',
    kind: 'number',
    stages: ['compile'],
  },
  {
    name: 'image',
    description: 'image: the image repository to push, without a tag (e.g. ghcr.io/org/googlenet); tags follow docker/metadata-action\'s rules. smoke, rollout, preview: the image to run, by digest (the image stage\'s image output); pipeline: the repository, as for image; cleanup: the repository whose pr-<N> tag is deleted (on ghcr.io the package version carrying only that tag, through the GitHub Packages API; elsewhere through the registry API).',
    default: '',
    kind: 'string',
    stages: ['image', 'smoke', 'rollout', 'preview', 'cleanup', 'pipeline'],
    required: ['image', 'smoke', 'rollout', 'preview', 'pipeline'],
  },
  {
    name: 'model-name',
    description: 'image, smoke, rollout: the name the model is served under (/v2/models/<model-name>).',
    default: 'model',
    kind: 'string',
    stages: ['image', 'smoke', 'rollout'],
  },
  {
    name: 'push',
    description: 'image: push to the registry (false: load into the local engine only).',
    default: 'true',
    kind: 'boolean',
    stages: ['image'],
  },
  {
    name: 'gpu',
    description: 'image: add ONNX Runtime\'s CUDA provider libraries (checked against the base image before the build), serve with the CUDA execution provider (strict: no CPU fallback) and reserve a GPU in the generated docker-compose.yml; smoke: run with --gpus all, report nvidia-smi and require the CUDA execution provider; rollout: request nvidia.com/gpu: 1 per pod, serve with CUDA and roll back a canary pod that serves on the CPU.',
    default: 'false',
    kind: 'boolean',
    stages: ['image', 'smoke', 'rollout'],
  },
  {
    name: 'cache',
    description: 'image: build cache: auto (gha on GitHub with a container driver, registry <image>:buildcache elsewhere, inline on the docker driver), gha, registry or off.',
    default: 'auto',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'registry-username',
    description: 'image: registry user for docker login, to push (and pull a private base image); smoke: to pull a private image (empty: no login). The login lives in a DOCKER_CONFIG of the stage\'s own, removed when it ends. rollout, preview: with create-pull-secret, the pods\' pull Secret is made from it; cleanup: to delete the pr-<N> tag (a registry other than ghcr.io).',
    default: '',
    kind: 'string',
    stages: ['image', 'smoke', 'rollout', 'preview', 'cleanup'],
  },
  {
    name: 'registry-password',
    description: 'image, smoke: registry password or token (masked; sent on stdin); rollout, preview: for create-pull-secret; cleanup: for the tag deletion.',
    default: '',
    kind: 'string',
    stages: ['image', 'smoke', 'rollout', 'preview', 'cleanup'],
    secret: true,
  },
  {
    name: 'encrypt-model',
    description: 'image: store the model AES-256-GCM encrypted in the image; the server decrypts it in memory with MODELSHIP_MODEL_KEY at run time.',
    default: 'false',
    kind: 'boolean',
    stages: ['image'],
  },
  {
    name: 'model-key',
    description: 'image: the 32-byte model key (hex or base64) used by encrypt-model; smoke: given to the container as MODELSHIP_MODEL_KEY (masked; never written into the image).',
    default: '',
    kind: 'string',
    stages: ['image', 'smoke'],
    secret: true,
  },
  {
    name: 'api-key',
    description: 'image: the serving API key; when set, the compose file passes MODELSHIP_API_KEY from the host environment; smoke: given to the container and sent as a bearer token (masked).',
    default: '',
    kind: 'string',
    stages: ['image', 'smoke'],
    secret: true,
  },
  {
    name: 'parity',
    description: 'image: the convert stage\'s parity result, recorded as the image label dev.modelship.parity.',
    default: 'unknown',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'revision',
    description: 'image: the source commit (default: the event\'s commit, else git rev-parse HEAD); gives the sha-<7> tag and the revision label.',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'ref',
    description: 'image: the git ref (refs/heads/..., refs/tags/v1.2.3, refs/pull/N/merge) for the branch, semver or pr-N tags (default: GITHUB_REF, else the checked-out branch).',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'source',
    description: 'image: the source repository URL for the org.opencontainers.image.source label (default: the workflow\'s repository).',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'compose-file',
    description: 'image: where to write the docker-compose.yml that serves the image by digest.',
    default: 'docker-compose.yml',
    kind: 'path',
    stages: ['image'],
  },
  {
    name: 'node-binary',
    description: 'image: a Node.js binary to put in the image instead of the official release (glibc linux-x64; a LICENSE file beside its bin/ directory is shipped too). Empty: the official Node.js node-version, downloaded and checked against its SHASUMS256.txt.',
    default: '',
    kind: 'path',
    stages: ['image'],
  },
  {
    name: 'node-version',
    description: 'image: the official Node.js release put in the image (linux-x64), downloaded from node-mirror into the tool cache and checked against the release\'s SHASUMS256.txt; its LICENSE is shipped in the image.',
    default: DEFAULT_NODE_VERSION,
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'node-mirror',
    description: 'image: where Node.js releases are downloaded from (the layout of nodejs.org/dist: v<version>/SHASUMS256.txt and node-v<version>-linux-x64.tar.gz).',
    default: 'https://nodejs.org/dist',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'provider-package',
    description: 'image (gpu): a mirror URL or a local path of the Microsoft.ML.OnnxRuntime.Gpu.Linux .nupkg (of the bundled ONNX Runtime version) that carries the CUDA provider libraries, for air-gapped runners; needs provider-package-sha256. Empty: from nuget-source, verified against the SHA-512 NuGet publishes.',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'provider-package-sha256',
    description: 'image (gpu): the sha256 (hex) that the provider-package must have.',
    default: '',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'nuget-source',
    description: 'image (gpu): the NuGet v3 service index that the CUDA provider package and its published hash come from.',
    default: 'https://api.nuget.org/v3/index.json',
    kind: 'string',
    stages: ['image'],
  },
  {
    name: 'sample-image',
    description: 'smoke: a JPEG or PNG sent to /classify as a golden request (empty: skipped).',
    default: '',
    kind: 'path',
    stages: ['smoke'],
  },
  {
    name: 'expected-top1',
    description: 'smoke: the class index or label the sample image must give as top-1.',
    default: '',
    kind: 'string',
    stages: ['smoke'],
  },
  {
    name: 'requests',
    description: 'smoke: number of requests for the latency and throughput measurement (0: skip).',
    default: '200',
    kind: 'number',
    stages: ['smoke'],
  },
  {
    name: 'concurrency',
    description: 'smoke: concurrent clients for the latency measurement.',
    default: '4',
    kind: 'number',
    stages: ['smoke'],
  },
  {
    name: 'ready-timeout',
    description: 'smoke: seconds to wait for the server to become ready.',
    default: '120',
    kind: 'number',
    stages: ['smoke'],
  },
  {
    name: 'app',
    description: 'rollout: the name of the Deployment and Service (the canary is <app>-canary; default: model-name).',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'namespace',
    description: 'rollout: the Kubernetes namespace.',
    default: 'default',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'kubeconfig',
    description: 'rollout: a kubeconfig file path or the kubeconfig YAML itself (masked); empty: $KUBECONFIG, ~/.kube/config or in-cluster.',
    default: '',
    kind: 'string',
    stages: ['rollout'],
    secret: true,
  },
  {
    name: 'strategy',
    description: 'rollout: canary (a verified <app>-canary Deployment, then promote or roll back) or basic (update in place, roll back to the previous ReplicaSet on failure).',
    default: 'canary',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'replicas',
    description: 'rollout: replicas of the stable Deployment.',
    default: '2',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'drain-delay',
    description: `rollout, preview: seconds a terminating pod keeps serving (a preStop hook) while Kubernetes takes it out of the Service's endpoints and kube-proxy and other proxies stop sending to it; then the server finishes its in-flight requests (at most ${DRAIN_TIMEOUT_S} s) and exits. On SIGTERM the server answers with Connection: close for ${SERVER_DRAIN_DELAY_S} s more (keep-alive clients reconnect elsewhere). The pods' terminationGracePeriodSeconds is drain-delay + ${SERVER_DRAIN_DELAY_S + DRAIN_TIMEOUT_S + GRACE_MARGIN_S}. Whole seconds, 0 (no hook) to ${MAX_DRAIN_DELAY_S}.`,
    default: '5',
    kind: 'number',
    stages: ['rollout', 'preview'],
  },
  {
    name: 'canary-percent',
    description: 'rollout: canary replicas as a percentage of replicas (rounded up, at least 1); 1 to 100.',
    default: '20',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'bake-time',
    description: 'rollout: seconds the canary must stay Ready without a restart after its golden requests pass.',
    default: '60',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'rollout-timeout',
    description: 'rollout: seconds from the first apply to the decision (readiness, verification, bake); also each Deployment\'s progress deadline. Past it: rolled back.',
    default: '600',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'verify-url',
    description: 'rollout: base URL of the canary for golden requests (empty: the canary-only Service through the API server\'s service proxy, which drops Authorization headers, so an API key needs a verify-url).',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'verify-requests',
    description: 'rollout: golden requests sent to the canary for its latency p95 (after the reference batches).',
    default: '20',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'max-latency-ms',
    description: 'rollout: largest allowed p95 latency of the canary\'s golden requests in ms (0: no limit).',
    default: '0',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'prometheus-url',
    description: 'rollout: Prometheus base URL for the metrics gate (empty: no metrics gate).',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'prometheus-samples-query',
    description: 'rollout: PromQL for the number of requests a track served ({{namespace}}, {{app}}, {{track}}, {{model}} are filled in).',
    default: DEFAULT_QUERIES.samples,
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'prometheus-error-rate-query',
    description: 'rollout: PromQL for a track\'s error rate (0 to 1).',
    default: DEFAULT_QUERIES.errorRate,
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'prometheus-latency-query',
    description: 'rollout: PromQL for a track\'s p99 latency in ms.',
    default: DEFAULT_QUERIES.latency,
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'min-samples',
    description: 'rollout: the metrics gate fails unless the canary served at least this many requests (no data is a failure).',
    default: '20',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'max-error-rate',
    description: 'rollout: largest allowed canary error rate from Prometheus.',
    default: '0.01',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'max-p99-ms',
    description: 'rollout: largest allowed canary p99 latency from Prometheus in ms (0: reported, not gated).',
    default: '0',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'dry-run',
    description: 'rollout: print the plan (the objects and their diff against the live state, from a server-side dry run) and change nothing.',
    default: 'false',
    kind: 'boolean',
    stages: ['rollout'],
  },
  {
    name: 'create-namespace',
    description: 'rollout: create the namespace when it is missing (checked against RBAC before anything is applied).',
    default: 'true',
    kind: 'boolean',
    stages: ['rollout'],
  },
  {
    name: 'lock-timeout',
    description: 'rollout: seconds to wait for another deploy of the same app and namespace (a Lease) before failing.',
    default: '300',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'lease-duration',
    description: 'rollout: seconds a deploy Lease stays valid without renewal; a lease left by a dead run is taken over after it.',
    default: '30',
    kind: 'number',
    stages: ['rollout'],
  },
  {
    name: 'manifest',
    description: 'rollout: your own Deployment/Service YAML, laid over the generated objects (modelship keeps the name, selector, routing labels and image).',
    default: '',
    kind: 'path',
    stages: ['rollout'],
  },
  {
    name: 'patch',
    description: 'rollout: a YAML file of strategic-merge patches (kustomize patchesStrategicMerge style, one document per object, `kind` required) applied on top, to the canary and the stable alike.',
    default: '',
    kind: 'path',
    stages: ['rollout'],
  },
  {
    name: 'node-selector',
    description: 'rollout: nodeSelector of the pods, as key=value,key=value.',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'tolerations',
    description: 'rollout: tolerations of the pods, as a YAML/JSON list (e.g. [{key: gpu, operator: Exists, effect: NoSchedule}]).',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'image-pull-secrets',
    description: 'rollout: names of Secrets for pulling the image, comma-separated.',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'create-pull-secret',
    description: 'rollout, preview: create (or update) the image pull Secret <app>-registry (kubernetes.io/dockerconfigjson, labelled as modelship\'s) in the namespace from registry-username and registry-password, and pull with it; a preview\'s goes with its namespace.',
    default: 'false',
    kind: 'boolean',
    stages: ['rollout', 'preview'],
  },
  {
    name: 'api-key-secret',
    description: 'rollout: Secret holding the serving API key, as name/key; given to the server as MODELSHIP_API_KEY.',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'model-key-secret',
    description: 'rollout: Secret holding the model decryption key (encrypt-model), as name/key; given to the server as MODELSHIP_MODEL_KEY.',
    default: '',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'cpu',
    description: 'rollout: CPU request and limit per pod.',
    default: '1',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'memory',
    description: 'rollout: memory request and limit per pod.',
    default: '1Gi',
    kind: 'string',
    stages: ['rollout'],
  },
  {
    name: 'pr-number',
    description: 'preview, cleanup: the pull request number (default: the pull_request event\'s); the preview namespace is <app>-pr-<N>.',
    default: '',
    kind: 'number',
    stages: ['preview', 'cleanup'],
  },
  {
    name: 'github-token',
    description: 'preview, cleanup: token for the one PR comment (post, update; masked); cleanup: also deletes a ghcr.io image\'s pr-<N> package version through the GitHub Packages API (packages: write, admin access to the package).',
    default: '${{ github.token }}',
    kind: 'string',
    stages: ['preview', 'cleanup'],
    secret: true,
  },
  {
    name: 'preview-url',
    description: 'preview: the URL the PR comment links to ({{app}}, {{namespace}}, {{pr}} are filled in; default: the Service through the API server\'s proxy).',
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
    description: 'preview: the smoke and convert figures for the PR comment, as JSON of their outputs (e.g. toJSON(needs.smoke.outputs)); keys used: parity, max-abs-diff, latency-p50-ms, latency-p95-ms, latency-p99-ms, throughput-rps.',
    default: '',
    kind: 'string',
    stages: ['preview'],
  },
];

export const OUTPUTS: OutputSpec[] = [
  { name: 'onnx-path', description: 'convert: path of the written ONNX model.', stages: ['convert'] },
  { name: 'sha256', description: 'convert: sha256 of the ONNX model file.', stages: ['convert'] },
  { name: 'parity', description: 'convert: pass, fail or skipped (no reference given).', stages: ['convert'] },
  { name: 'max-abs-diff', description: 'convert: largest |Δ| between ONNX and Caffe outputs over all reference batches (empty when skipped).', stages: ['convert'] },
  { name: 'parity-report', description: 'convert: path of parity.json (empty when skipped).', stages: ['convert'] },
  { name: 'artifact-path', description: 'compile: path of the deployment artifact (optimized ONNX or TensorRT plan).', stages: ['compile'] },
  { name: 'artifact-sha256', description: 'compile: sha256 of the artifact.', stages: ['compile'] },
  { name: 'artifact-metadata', description: 'compile: path of the artifact metadata JSON (runtime versions, execution provider; TensorRT version and compute capability).', stages: ['compile'] },
  { name: 'compile-parity', description: 'compile: pass, fail or skipped: the parity check of the optimized model.', stages: ['compile'] },
  { name: 'image', description: 'image: the pushed image by digest (repository@sha256:...).', stages: ['image'] },
  { name: 'digest', description: 'image: the image manifest digest.', stages: ['image'] },
  { name: 'tags', description: 'image: the pushed tags, one per line.', stages: ['image'] },
  { name: 'metadata', description: 'image: JSON: digest, tags, labels, layer digests, compressed size, cache reuse, build time, buildx metadata.', stages: ['image'] },
  { name: 'compose-file', description: 'image: path of the generated docker-compose.yml.', stages: ['image'] },
  { name: 'smoke', description: 'smoke: pass or fail.', stages: ['smoke'] },
  { name: 'latency-p50-ms', description: 'smoke: median request latency in ms (batch 1).', stages: ['smoke'] },
  { name: 'latency-p95-ms', description: 'smoke: 95th percentile latency in ms.', stages: ['smoke'] },
  { name: 'latency-p99-ms', description: 'smoke: 99th percentile latency in ms.', stages: ['smoke'] },
  { name: 'throughput-rps', description: 'smoke: requests per second at the given concurrency.', stages: ['smoke'] },
  { name: 'gpu-info', description: 'smoke: nvidia-smi in the container (name, driver, compute capability) when gpu is true.', stages: ['smoke'] },
  { name: 'decision', description: 'rollout: promoted, rolled-back or dry-run.', stages: ['rollout'] },
  { name: 'reason', description: 'rollout: why: the gate that failed and its evidence, or what was verified.', stages: ['rollout'] },
  { name: 'canary-replicas', description: 'rollout: replicas of the canary Deployment (0 for strategy basic).', stages: ['rollout'] },
  { name: 'gate-pods', description: 'rollout: pass, fail or skipped: canary pods Ready in time, then no restart or NotReady during bake-time.', stages: ['rollout'] },
  { name: 'gate-golden', description: 'rollout: pass, fail or skipped: golden requests to the canary reproduce the reference within tolerance, p95 within max-latency-ms.', stages: ['rollout'] },
  { name: 'gate-prometheus', description: 'rollout: pass, fail or skipped: the Prometheus gate (min-samples, max-error-rate, max-p99-ms).', stages: ['rollout'] },
  { name: 'verify-latency-p95-ms', description: 'rollout: p95 latency of the golden requests to the canary in ms.', stages: ['rollout'] },
  { name: 'decision-seconds', description: 'rollout: seconds from the first apply to the decision.', stages: ['rollout'] },
  { name: 'rollout-report', description: 'rollout: JSON: gates with results and evidence, the timeline of steps with durations, objects applied.', stages: ['rollout'] },
  { name: 'preview-url', description: 'preview: the URL of the PR\'s preview deployment.', stages: ['preview'] },
  { name: 'preview-namespace', description: 'preview, cleanup: the preview namespace <app>-pr-<N>.', stages: ['preview', 'cleanup'] },
  { name: 'comment-id', description: 'preview, cleanup: the id of the PR comment posted or updated (empty when comment is false).', stages: ['preview', 'cleanup'] },
  { name: 'removed', description: 'cleanup: what was removed, one per line (the namespace, the preview tag); a tag that could not be deleted is a warning and not listed.', stages: ['cleanup'] },
];

export interface ConvertConfig {
  prototxt: string;
  caffemodel: string;
  out: string;
  reference?: string;
  perLayer: boolean;
  tolerance: number;
}

export interface CompileConfig {
  model: string;
  target: 'onnxruntime' | 'tensorrt';
  artifact: string;
  executionProvider: 'cpu' | 'cuda';
  baseImage: string;
  batchSizes: [number, number, number];
  fp16: boolean;
  int8: boolean;
  workspaceMiB: number;
  /** the image that runs trtexec (tensorrt-image, else the TensorRT image of triton-release) */
  tensorrtImage: string;
  /** the Triton image of the same release (whose TensorRT serves the plan) */
  tritonImage: string;
  /** calibration-cache: INT8 calibration cache for trtexec --calib */
  calibrationCache: string;
  reference?: string;
  tolerance: number;
}

export interface ImageConfig {
  image: string;
  runtime: Runtime;
  /** the Triton server image to build FROM (runtime triton) */
  tritonImage: string;
  /** max-queue-delay-us: dynamic batching's max_queue_delay_microseconds (runtime triton) */
  maxQueueDelayUs: number;
  model: string;
  modelName: string;
  baseImage: string;
  push: boolean;
  gpu: boolean;
  cache: 'auto' | 'gha' | 'registry' | 'off';
  registryUsername: string;
  registryPassword: string;
  encryptModel: boolean;
  modelKey: string;
  apiKeyRequired: boolean;
  parity: string;
  revision: string;
  ref: string;
  source: string;
  defaultBranch?: string;
  composeFile: string;
  nodeBinary: string;
  nodeVersion: string;
  nodeMirror: string;
  providerPackage: string;
  providerPackageSha256: string;
  nugetSource: string;
}

export interface SmokeConfig {
  image: string;
  /** the runtime the image was built for; smoke checks it against what the server says (GET /v2) */
  runtime: Runtime;
  /** accept a tag instead of a digest (local use only; the action always passes the digest) */
  allowTag?: boolean;
  modelName: string;
  reference?: string;
  tolerance: number;
  gpu: boolean;
  apiKey: string;
  modelKey: string;
  sampleImage: string;
  expectedTop1: string;
  requests: number;
  concurrency: number;
  readyTimeoutS: number;
  registryUsername: string;
  registryPassword: string;
}

export interface RolloutConfig {
  app: string;
  runtime: Runtime;
  namespace: string;
  kubeconfig: string;
  image: string;
  modelName: string;
  strategy: 'canary' | 'basic';
  replicas: number;
  canaryPercent: number;
  /** drain-delay: seconds a terminating pod keeps serving (its preStop hook) */
  drainDelayS: number;
  bakeTimeS: number;
  timeoutS: number;
  verifyUrl: string;
  verifyRequests: number;
  maxLatencyMs: number;
  reference?: string;
  tolerance: number;
  apiKey: string;
  gpu: boolean;
  prometheus?: { url: string; samplesQuery: string; errorRateQuery: string; latencyQuery: string; minSamples: number; maxErrorRate: number; maxP99Ms: number };
  dryRun: boolean;
  createNamespace: boolean;
  lockTimeoutS: number;
  leaseDurationS: number;
  manifest: string;
  patch: string;
  nodeSelector: Record<string, string>;
  tolerations: { key: string; operator?: string; value?: string; effect?: string }[];
  imagePullSecrets: string[];
  /** create-pull-secret: the pods' pull Secret, made from the registry credentials */
  pullSecret?: { username: string; password: string };
  apiKeySecret?: { name: string; key: string };
  modelKeySecret?: { name: string; key: string };
  cpu: string;
  memory: string;
}

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

export interface Config {
  stage: Stage;
  convert: ConvertConfig;
  compile: CompileConfig;
  image: ImageConfig;
  smoke: SmokeConfig;
  rollout: RolloutConfig;
  preview: PreviewConfig;
  cleanup: CleanupConfig;
}

/** Where raw input values come from: the action's INPUT_* environment or the CLI's flags. */
export type InputSource = (name: string) => string | undefined;

function fail(input: string, message: string): never {
  throw new ModelshipError('input', `input "${input}": ${message}`, { field: input });
}

export function parseBoolean(name: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off', ''].includes(v)) return false;
  return fail(name, `expected true or false, got "${raw}"`);
}

/** Read and validate every input once, before any work. Unknown stage, missing or malformed values fail here. */
export function readConfig(source: InputSource): Config {
  const spec = new Map(INPUTS.map((i) => [i.name, i]));
  const raw = (name: string): string => {
    const v = source(name);
    return (v === undefined || v.trim() === '' ? spec.get(name)!.default : v).trim();
  };
  const stageRaw = raw('stage');
  if (stageRaw === '') fail('stage', `is required: one of ${STAGES.join(', ')}`);
  if (!(STAGES as readonly string[]).includes(stageRaw)) fail('stage', `unknown stage "${stageRaw}"; expected one of ${STAGES.join(', ')}`);
  const stage = stageRaw as Stage;
  for (const s of INPUTS) {
    if (s.required?.includes(stage) && raw(s.name) === '') fail(s.name, `is required for stage ${stage}`);
  }
  const num = (name: string): number => {
    const v = raw(name);
    const n = Number(v);
    if (v === '' || !Number.isFinite(n) || n < 0) fail(name, `expected a non-negative number, got "${v}"`);
    return n;
  };
  const convert: ConvertConfig = {
    prototxt: raw('prototxt'),
    caffemodel: raw('caffemodel'),
    out: raw('out'),
    reference: raw('reference') || undefined,
    perLayer: parseBoolean('per-layer', raw('per-layer')),
    tolerance: num('tolerance'),
  };
  if (stage === 'convert' && convert.perLayer && !convert.reference) fail('per-layer', 'needs a reference directory (input "reference")');
  const oneOf = <T extends string>(name: string, values: readonly T[]): T => {
    const v = raw(name);
    if (!(values as readonly string[]).includes(v)) fail(name, `expected one of ${values.join(', ')}, got "${v}"`);
    return v as T;
  };
  const compile: CompileConfig = {
    model: raw('model'),
    target: oneOf('target', ['onnxruntime', 'tensorrt'] as const),
    artifact: raw('artifact'),
    executionProvider: oneOf('execution-provider', ['cpu', 'cuda'] as const),
    baseImage: raw('base-image'),
    batchSizes: parseBatches(raw('batch-sizes')),
    fp16: parseBoolean('fp16', raw('fp16')),
    int8: parseBoolean('int8', raw('int8')),
    workspaceMiB: num('workspace-mib'),
    tensorrtImage: raw('tensorrt-image') || tensorrtImageFor(raw('triton-release')),
    tritonImage: raw('triton-image') || tritonImageFor(raw('triton-release')),
    calibrationCache: raw('calibration-cache'),
    reference: convert.reference,
    tolerance: convert.tolerance,
  };
  if (compile.int8 && compile.target !== 'tensorrt') fail('int8', 'is only for target tensorrt');
  if (!/^\d\d\.\d\d$/.test(raw('triton-release'))) fail('triton-release', `expected NVIDIA's container release yy.mm (e.g. ${DEFAULT_TRITON_RELEASE}), got "${raw('triton-release')}"`);
  const runtime = oneOf('runtime', RUNTIMES);
  const image: ImageConfig = {
    image: raw('image'),
    runtime,
    tritonImage: compile.tritonImage,
    maxQueueDelayUs: num('max-queue-delay-us'),
    model: raw('model'),
    modelName: raw('model-name'),
    baseImage: raw('base-image'),
    push: parseBoolean('push', raw('push')),
    gpu: parseBoolean('gpu', raw('gpu')),
    cache: oneOf('cache', ['auto', 'gha', 'registry', 'off'] as const),
    registryUsername: raw('registry-username'),
    registryPassword: raw('registry-password'),
    encryptModel: parseBoolean('encrypt-model', raw('encrypt-model')),
    modelKey: raw('model-key'),
    apiKeyRequired: raw('api-key') !== '',
    parity: raw('parity'),
    revision: raw('revision'),
    ref: raw('ref'),
    source: raw('source'),
    composeFile: raw('compose-file'),
    nodeBinary: raw('node-binary'),
    nodeVersion: raw('node-version'),
    nodeMirror: raw('node-mirror'),
    providerPackage: raw('provider-package'),
    providerPackageSha256: raw('provider-package-sha256').toLowerCase(),
    nugetSource: raw('nuget-source'),
  };
  if (!/^\d+\.\d+\.\d+$/.test(image.nodeVersion)) fail('node-version', `expected a Node.js release version x.y.z, got "${image.nodeVersion}"`);
  if (image.providerPackageSha256 && !/^[0-9a-f]{64}$/.test(image.providerPackageSha256)) fail('provider-package-sha256', `expected 64 hex digits, got "${raw('provider-package-sha256')}"`);
  if (image.providerPackage && !image.providerPackageSha256) fail('provider-package-sha256', 'is required with provider-package: the sha256 that the package must have');
  if (!['convert', 'compile', 'cleanup'].includes(stage) && !/^[a-z0-9][a-z0-9_-]*$/.test(image.modelName)) fail('model-name', `must be lower-case letters, digits, '-' or '_', got "${image.modelName}"`);
  const int = (name: string, min: number): number => {
    const n = num(name);
    if (!Number.isInteger(n) || n < min) fail(name, `expected an integer ≥ ${min}, got "${raw(name)}"`);
    return n;
  };
  const smoke: SmokeConfig = {
    image: image.image,
    runtime,
    modelName: image.modelName,
    reference: convert.reference,
    tolerance: convert.tolerance,
    gpu: image.gpu,
    apiKey: raw('api-key'),
    modelKey: image.modelKey,
    sampleImage: raw('sample-image'),
    expectedTop1: raw('expected-top1'),
    requests: int('requests', 0),
    concurrency: int('concurrency', 1),
    readyTimeoutS: int('ready-timeout', 1),
    registryUsername: image.registryUsername,
    registryPassword: image.registryPassword,
  };
  const secretRef = (name: string): { name: string; key: string } | undefined => {
    const v = raw(name);
    if (v === '') return undefined;
    const m = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\/([-._a-zA-Z0-9]+)$/.exec(v);
    if (!m) fail(name, `expected <secret name>/<key>, got "${v}"`);
    return { name: m![1], key: m![3] };
  };
  const strategy = oneOf('strategy', ['canary', 'basic'] as const);
  const canaryPercent = num('canary-percent');
  if (stage === 'rollout' && (canaryPercent < 1 || canaryPercent > 100)) fail('canary-percent', `must be between 1 and 100, got ${raw('canary-percent')}`);
  const nodeSelector: Record<string, string> = {};
  for (const pair of raw('node-selector').split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) fail('node-selector', `expected key=value pairs separated by commas, got "${pair}"`);
    nodeSelector[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  let tolerations: RolloutConfig['tolerations'] = [];
  if (raw('tolerations')) {
    let t: unknown;
    try {
      t = yaml.load(raw('tolerations'));
    } catch (e) {
      fail('tolerations', `is not YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (!Array.isArray(t) || !t.every((x) => typeof x === 'object' && x !== null)) fail('tolerations', 'expected a list of tolerations, e.g. [{key: gpu, operator: Exists, effect: NoSchedule}]');
    tolerations = t as RolloutConfig['tolerations'];
  }
  const rollout: RolloutConfig = {
    app: raw('app') || image.modelName,
    runtime,
    namespace: raw('namespace'),
    kubeconfig: source('kubeconfig')?.trim() ?? '',
    image: image.image,
    modelName: image.modelName,
    strategy,
    replicas: int('replicas', 1),
    canaryPercent,
    drainDelayS: int('drain-delay', 0),
    bakeTimeS: num('bake-time'),
    timeoutS: int('rollout-timeout', 1),
    verifyUrl: raw('verify-url'),
    verifyRequests: int('verify-requests', 0),
    maxLatencyMs: num('max-latency-ms'),
    reference: convert.reference,
    tolerance: convert.tolerance,
    apiKey: raw('api-key'),
    gpu: image.gpu,
    prometheus: raw('prometheus-url')
      ? { url: raw('prometheus-url'), samplesQuery: raw('prometheus-samples-query'), errorRateQuery: raw('prometheus-error-rate-query'), latencyQuery: raw('prometheus-latency-query'), minSamples: int('min-samples', 1), maxErrorRate: num('max-error-rate'), maxP99Ms: num('max-p99-ms') }
      : undefined,
    dryRun: parseBoolean('dry-run', raw('dry-run')),
    createNamespace: parseBoolean('create-namespace', raw('create-namespace')),
    lockTimeoutS: num('lock-timeout'),
    leaseDurationS: int('lease-duration', 1),
    manifest: raw('manifest'),
    patch: raw('patch'),
    nodeSelector,
    tolerations,
    imagePullSecrets: raw('image-pull-secrets').split(',').map((x) => x.trim()).filter(Boolean),
    pullSecret: parseBoolean('create-pull-secret', raw('create-pull-secret')) ? { username: image.registryUsername, password: image.registryPassword } : undefined,
    apiKeySecret: secretRef('api-key-secret'),
    modelKeySecret: secretRef('model-key-secret'),
    cpu: raw('cpu'),
    memory: raw('memory'),
  };
  if (stage === 'rollout' || stage === 'preview' || stage === 'pipeline') {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(rollout.app) || rollout.app.length > 50) fail(raw('app') ? 'app' : 'model-name', `the app name must be a DNS label of at most 50 characters (it names the Deployment and <app>-canary), got "${rollout.app}"`);
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(rollout.namespace) || rollout.namespace.length > 63) fail('namespace', `must be a DNS label, got "${rollout.namespace}"`);
    if (rollout.drainDelayS > MAX_DRAIN_DELAY_S) fail('drain-delay', `expected whole seconds from 0 to ${MAX_DRAIN_DELAY_S} (every pod termination waits that long), got "${raw('drain-delay')}"`);
    if (stage !== 'pipeline' && !/@sha256:[0-9a-f]{64}$/.test(rollout.image)) fail('image', `${stage} deploys the image by digest (repository@sha256:..., the image stage's "image" output), got "${rollout.image}"`);
    if (rollout.pullSecret && (!rollout.pullSecret.username || !rollout.pullSecret.password)) fail('create-pull-secret', 'needs registry-username and registry-password (the pull Secret is made from them)');
    if (rollout.apiKeySecret && !rollout.verifyUrl && rollout.reference) fail('verify-url', 'is required with api-key-secret: the API server\'s service proxy drops the Authorization header, so golden requests need a direct URL to the canary');
    if (rollout.prometheus && !/^https?:\/\//.test(rollout.prometheus.url)) fail('prometheus-url', `expected an http(s) URL, got "${rollout.prometheus.url}"`);
    if (rollout.verifyUrl && !/^https?:\/\//.test(rollout.verifyUrl)) fail('verify-url', `expected an http(s) URL, got "${rollout.verifyUrl}"`);
  }
  const prRaw = raw('pr-number');
  if (prRaw !== '' && !/^[1-9]\d*$/.test(prRaw)) fail('pr-number', `expected a pull request number, got "${prRaw}"`);
  let smokeReport: Record<string, string> = {};
  if (raw('smoke-report')) {
    try {
      smokeReport = JSON.parse(raw('smoke-report')) as Record<string, string>;
    } catch (e) {
      fail('smoke-report', `is not JSON: ${(e as Error).message}`);
    }
  }
  const githubToken = raw('github-token').startsWith('${{') ? '' : raw('github-token');
  const preview: PreviewConfig = { rollout, prNumber: prRaw ? Number(prRaw) : undefined, githubToken, previewUrl: raw('preview-url'), comment: parseBoolean('comment', raw('comment')), smokeReport };
  const cleanup: CleanupConfig = { app: rollout.app, kubeconfig: rollout.kubeconfig, prNumber: preview.prNumber, image: image.image, registryUsername: image.registryUsername, registryPassword: image.registryPassword, githubToken, comment: preview.comment };
  if (stage === 'cleanup' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(cleanup.app)) fail(raw('app') ? 'app' : 'model-name', `the app name must be a DNS label, got "${cleanup.app}"`);
  return { stage, convert, compile, image, smoke, rollout, preview, cleanup };
}
