import { parsePreprocess, Preprocess } from '../protocol/preprocess';
import { fail, InputSpec, OutputSpec, Reader, STAGES } from '../inputs';
import { DEFAULT_TRITON_RELEASE, GRPC_PORT, PROTOCOLS, Protocol, RUNTIMES, Runtime, tritonImageFor } from '../protocol/runtime';
import { SERVE_SETTINGS } from '../protocol/serve-settings';
import { COSIGN_CHECKSUMS, CosignSource, DEFAULT_COSIGN_VERSION } from './cosign';
import { GITHUB_OIDC_ISSUER, ImageVerification, POLICY_RULES, readCosignSource, readVerification } from './verify-image';
import { readSigning, SigningConfig } from './attest';

/** Inputs that several stages read (each stage's own inputs live beside it, in src/<stage>/inputs.ts). */
export const SHARED_INPUTS: InputSpec[] = [
  {
    name: 'stage',
    description: `Which stage to run: ${STAGES.join(' | ')}.`,
    default: '',
    kind: 'string',
    stages: 'all',
    required: [...STAGES],
  },
  {
    name: 'inputs',
    description:
      'all stages: more inputs as a YAML (or JSON) map of input name to value, e.g. "node-selector: {gpu: "true"}" (the reusable workflows pass their <stage>-inputs through it). Each key must be an input the stage reads and not a secret; its value stands where that input is not given or is its default; an input given both ways with different values fails.',
    default: '',
    kind: 'string',
    stages: 'all',
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
    name: 'tolerance',
    description:
      'convert, compile, smoke, rollout: the end-to-end parity gate: largest allowed max |Δ| between the model\'s and Caffe\'s outputs, scaled by max(1, max |reference|) (so absolute for probabilities); top-5 must also agree (reference near-ties within that limit may swap). The default has headroom over the float32 drift of every correct net measured (README "The parity gate").',
    default: '1e-3',
    kind: 'number',
    stages: ['convert', 'compile', 'smoke', 'rollout'],
  },
  {
    name: 'model',
    description: "compile: the ONNX model to compile (the convert stage's onnx-path); image: the model file to serve (an ONNX, e.g. compile's artifact-path).",
    default: 'model.onnx',
    kind: 'path',
    stages: ['compile', 'image'],
  },
  {
    name: 'runtime',
    description:
      "image, smoke, rollout, preview: the serving runtime: modelship (this project's KServe v2 server on ONNX Runtime) or triton (NVIDIA Triton Inference Server with a generated model repository; serves ONNX and TensorRT plans). smoke and rollout also learn it from the server itself (GET /v2).",
    default: 'modelship',
    kind: 'string',
    stages: ['image', 'smoke', 'rollout', 'preview'],
  },
  {
    name: 'protocol',
    description: `smoke, rollout: how the golden requests travel: http (KServe v2 over HTTP, port 8000) or grpc (KServe v2 over gRPC, inference.GRPCInferenceService on port ${GRPC_PORT}, on either runtime). smoke: readiness (ServerReady), the server's and the model's metadata, the reference batches, the sample image and the latency over gRPC; where the model runs is still read over HTTP. rollout: the canary's golden requests and the bake's, to verify-url given as grpc://host:port (grpcs:// for TLS): the API server's service proxy carries HTTP/1.1 only.`,
    default: 'http',
    kind: 'string',
    stages: ['smoke', 'rollout'],
  },
  {
    name: 'triton-release',
    description:
      "compile (tensorrt), image (triton): NVIDIA's container release yy.mm: Triton serves from nvcr.io/nvidia/tritonserver:<release>-py3 and trtexec runs in nvcr.io/nvidia/tensorrt:<release>-py3, so a plan is built by the TensorRT that serves it.",
    default: DEFAULT_TRITON_RELEASE,
    kind: 'string',
    stages: ['compile', 'image'],
  },
  {
    name: 'triton-image',
    description:
      "image (triton): the Triton server image to build FROM (a mirror, or repository@sha256:... to pin it); empty means nvcr.io/nvidia/tritonserver:<triton-release>-py3. The digest it resolves to is recorded in the image's labels and metadata. compile (tensorrt): recorded with the plan as the image it is built for.",
    default: '',
    kind: 'string',
    stages: ['compile', 'image'],
  },
  {
    name: 'batch-sizes',
    description:
      "compile (tensorrt): min,opt,max batch of the dynamic-batch optimization profile; image (triton): its max is the max_batch_size of an ONNX model (a plan's comes from its profile).",
    default: '1,8,32',
    kind: 'string',
    stages: ['compile', 'image'],
  },
  {
    name: 'image',
    description:
      "image: the image repository to push, without a tag (e.g. ghcr.io/org/googlenet); tags follow docker/metadata-action's rules. sign: the pushed image to sign and attest, by digest (repository@sha256:..., the image stage's image output); smoke, rollout, preview: the image to run, by digest (the image stage's image output); pipeline: the repository, as for image; cleanup: the repository whose pr-<N> tag is deleted (on ghcr.io the package version carrying only that tag, through the GitHub Packages API; elsewhere through the registry API).",
    default: '',
    kind: 'string',
    stages: ['image', 'sign', 'smoke', 'rollout', 'preview', 'cleanup', 'pipeline'],
    required: ['image', 'sign', 'smoke', 'rollout', 'preview', 'pipeline'],
  },
  {
    name: 'model-name',
    description: 'image, smoke, rollout: the name the model is served under (/v2/models/<model-name>); cleanup: the app name when app is not given.',
    default: 'model',
    kind: 'string',
    stages: ['image', 'smoke', 'rollout', 'cleanup'],
  },
  {
    name: 'gpu',
    description:
      "image: add ONNX Runtime's CUDA provider libraries (checked against the base image before the build), serve with the CUDA execution provider (strict: no CPU fallback) and reserve a GPU in the generated docker-compose.yml; smoke: run with --gpus all, report nvidia-smi and require the CUDA execution provider; rollout: request nvidia.com/gpu: 1 per pod, serve with CUDA and roll back a canary pod that serves on the CPU.",
    default: 'false',
    kind: 'boolean',
    stages: ['image', 'smoke', 'rollout'],
  },
  {
    name: 'registry-username',
    description:
      "image: registry user for docker login, to push (and pull a private base image); smoke: to pull a private image (empty: no login). The login lives in a DOCKER_CONFIG of the stage's own, removed when it ends. sign: cosign stores the signature and attestations beside the image with it; rollout, preview: with create-pull-secret, the pods' pull Secret is made from it; with verify, cosign reads the signatures with it; cleanup: to delete the pr-<N> tag (a registry other than ghcr.io).",
    default: '',
    kind: 'string',
    stages: ['image', 'sign', 'smoke', 'rollout', 'preview', 'cleanup'],
  },
  {
    name: 'registry-password',
    description:
      'image, smoke: registry password or token (masked; sent on stdin); sign: for cosign (masked; in a 0600 file of the private DOCKER_CONFIG, removed when the stage ends); rollout, preview: for create-pull-secret and verify; cleanup: for the tag deletion.',
    default: '',
    kind: 'string',
    stages: ['image', 'sign', 'smoke', 'rollout', 'preview', 'cleanup'],
    secret: true,
  },
  {
    name: 'preprocess',
    description: `image, smoke: the model's Caffe preprocessing of images, JSON with any of resize, channelOrder, mean, scale, e.g. \`{"mean": [104, 177, 123]}\` (OpenCV's face detector); empty: GoogLeNet's (resize 256, BGR, mean 104/117/123, scale 1). image (runtime modelship): written into the image as ${SERVE_SETTINGS.preprocess.env}, so /classify and /detect preprocess as the model needs wherever it runs; smoke: how it preprocesses the sample image where it does so itself (Triton), and given to a modelship container.`,
    default: '',
    kind: 'string',
    stages: ['image', 'smoke'],
  },
  {
    name: 'model-key',
    description: `image: the 32-byte model key (hex or base64) used by encrypt-model; smoke: given to the container as ${SERVE_SETTINGS.modelKey.env} (masked; never written into the image).`,
    default: '',
    kind: 'string',
    stages: ['image', 'smoke'],
    secret: true,
  },
  {
    name: 'api-key',
    description: `image: the serving API key; when set, the compose file passes ${SERVE_SETTINGS.apiKey.env} from the host environment; smoke: given to the container and sent as a bearer token (masked).`,
    default: '',
    kind: 'string',
    stages: ['image', 'smoke'],
    secret: true,
  },
  {
    name: 'verify',
    description:
      "smoke, rollout, preview: verify the image's cosign signature before it is pulled or deployed: off, key (signed with the private key of verify-key) or keyless (a Sigstore certificate of certificate-identity from certificate-oidc-issuer, e.g. the image stage's keyless signing in a workflow). The stage then runs the image by the digest it verified; a signature that does not verify (none, another key, another identity) or an attestation-policy that fails stops the stage before anything is pulled or deployed.",
    default: 'off',
    kind: 'string',
    stages: ['smoke', 'rollout'],
  },
  {
    name: 'verify-key',
    description: 'smoke, rollout, preview: verify: key: the cosign public key, PEM text or the path of a PEM file (cosign.pub).',
    default: '',
    kind: 'string',
    stages: ['smoke', 'rollout'],
  },
  {
    name: 'certificate-identity',
    description:
      "smoke, rollout, preview: verify: keyless: the signing certificate's identity that must match exactly; for a workflow's keyless signing, https://github.com/<owner>/<repo>/.github/workflows/<file>@<ref> of the workflow that built the image.",
    default: '',
    kind: 'string',
    stages: ['smoke', 'rollout'],
  },
  {
    name: 'certificate-oidc-issuer',
    description: "smoke, rollout, preview: verify: keyless: the OIDC issuer the signing certificate must name (GitHub Actions' by default).",
    default: GITHUB_OIDC_ISSUER,
    kind: 'string',
    stages: ['smoke', 'rollout'],
  },
  {
    name: 'certificate-roots',
    description:
      "smoke, rollout, preview: verify: keyless with a private CA: a PEM file of its root certificates (or a Sigstore trusted_root.json); empty: Sigstore's public roots (Fulcio). A private CA's roots carry no transparency log keys: use them with transparency-log false.",
    default: '',
    kind: 'path',
    stages: ['smoke', 'rollout'],
  },
  {
    name: 'transparency-log',
    description:
      "image, sign: record signatures and attestations in Sigstore's transparency log (Rekor); smoke, rollout, preview: require their log entries when verifying. false: neither (a private key or CA without Rekor; verification then skips the log and, keyless, the certificate's SCT).",
    default: 'true',
    kind: 'boolean',
    stages: ['image', 'sign', 'smoke', 'rollout'],
  },
  {
    name: 'attestation-policy',
    description: `smoke, rollout, preview: checks on the image's verified attestations, key=value comma-separated, e.g. parity=pass,model-sha256=<hex>,runtime=modelship (needs verify). Every attestation of the key's type must state the value: ${POLICY_RULES.map((r) => `${r.key} (${r.type}: ${r.describe})`).join('; ')}. An attestation that is missing, or signed by anyone but the verified signer, fails it.`,
    default: '',
    kind: 'string',
    stages: ['smoke', 'rollout'],
  },
  {
    name: 'cosign-version',
    description: `image, sign, smoke, rollout: the cosign release that signs and verifies, downloaded from its GitHub release (cosign-linux-amd64 / -arm64) into the tool cache and checked against its sha256 (pinned for ${Object.keys(COSIGN_CHECKSUMS).join(', ')}; another version needs cosign-sha256).`,
    default: DEFAULT_COSIGN_VERSION,
    kind: 'string',
    stages: ['image', 'sign', 'smoke', 'rollout'],
  },
  {
    name: 'cosign-mirror',
    description:
      "image, sign, smoke, rollout: a mirror of cosign's GitHub releases with the same layout (<mirror>/v<version>/cosign-linux-amd64); needs cosign-sha256.",
    default: '',
    kind: 'string',
    stages: ['image', 'sign', 'smoke', 'rollout'],
  },
  {
    name: 'cosign-sha256',
    description:
      "image, sign, smoke, rollout: the sha256 the cosign binary must have (its line of the release's cosign_checksums.txt); required with cosign-mirror or a cosign-version modelship has no checksum for.",
    default: '',
    kind: 'string',
    stages: ['image', 'sign', 'smoke', 'rollout'],
  },
  {
    name: 'ml-bom-file',
    description:
      "image: where to write the image's ML-BOM, a CycloneDX 1.6 JSON document: the model (a machine-learning-model component: its sha256, its lineage from the caffemodel and prototxt hashes through conversion and compile, the parity result, a model card), the base image by digest, Node.js, every bundled npm package, ONNX Runtime and the CUDA provider libraries with their hashes (Triton: its image and the config.pbtxt). Empty: ml-bom.cdx.json beside compose-file. sign: the ML-BOM to attest to the image (the image stage's ml-bom output: a CycloneDX JSON document of this digest); empty: none attested.",
    default: '',
    kind: 'path',
    stages: ['image', 'sign'],
  },
  {
    name: 'provenance-file',
    description:
      "image: where to write the build provenance, an in-toto statement with an SLSA provenance v1 predicate: the builder (the workflow run on GitHub, else the CLI), the inputs that shaped the image, the materials by digest (model, caffemodel, prototxt, base image, Node.js, provider package, the commit). Empty: provenance.intoto.json beside compose-file. sign: the provenance to attest to the image (the image stage's provenance output: an in-toto statement whose subject is this digest; its predicate is attested); empty: none attested.",
    default: '',
    kind: 'path',
    stages: ['image', 'sign'],
  },
  {
    name: 'sign',
    description:
      "image: sign the pushed digest with cosign and attach the ML-BOM and the provenance to it as signed attestations (cosign attest --type cyclonedx / slsaprovenance1): off; key (signing-key, a cosign private key, and signing-key-password); keyless (a Sigstore certificate for the workflow's GitHub OIDC token: the job needs permissions id-token: write). Smoke and rollout verify them with input verify. sign: the same for an image already pushed (image, by digest) and the documents the image stage wrote (ml-bom-file, provenance-file), in a job of its own (the one that holds id-token: write); off: nothing is signed (output signed false).",
    default: 'off',
    kind: 'string',
    stages: ['image', 'sign'],
  },
  {
    name: 'signing-key',
    description:
      'image, sign: sign: key: the cosign private key (cosign generate-key-pair), its PEM text (from a secret) or the path of the file; written only to a private temporary file while cosign runs.',
    default: '',
    kind: 'string',
    stages: ['image', 'sign'],
    secret: true,
  },
  {
    name: 'signing-key-password',
    description: "image, sign: sign: key: the private key's password (given to cosign in its environment only, never on its command line).",
    default: '',
    kind: 'string',
    stages: ['image', 'sign'],
    secret: true,
  },
];

/** Outputs that several stages set (each stage's own outputs live beside it, in src/<stage>/inputs.ts). */
export const SHARED_OUTPUTS: OutputSpec[] = [
  { name: 'image', description: 'image: the pushed image by digest (repository@sha256:...); sign: the image signed, by digest.', stages: ['image', 'sign'] },
  {
    name: 'signed',
    description: 'image, sign: true when the digest was signed and its documents (image: both; sign: those given) attested to it with cosign (input sign).',
    stages: ['image', 'sign'],
  },
];

export interface SharedConfig {
  reference?: string;
  tolerance: number;
  model: string;
  runtime: Runtime;
  /** how golden requests travel (smoke, rollout) */
  protocol: Protocol;
  tritonRelease: string;
  /** the Triton server image: triton-image, else nvcr.io/nvidia/tritonserver:<triton-release>-py3 */
  tritonImage: string;
  /** min / opt / max batch */
  batchSizes: [number, number, number];
  image: string;
  modelName: string;
  gpu: boolean;
  registryUsername: string;
  registryPassword: string;
  modelKey: string;
  apiKey: string;
  /** the model's image preprocessing (input `preprocess`); undefined: the server's default */
  preprocess?: Preprocess;
  /** signatures and attestations go to (image) and are looked up in (smoke, rollout) the transparency log */
  transparencyLog: boolean;
  /** where cosign comes from (image, sign, smoke, rollout) */
  cosign: CosignSource;
  /** how image and sign sign (inputs sign, signing-key, signing-key-password, transparency-log, cosign-*) */
  signing: SigningConfig;
  /** what smoke and rollout verify before they pull or deploy; undefined: verify off */
  verification?: ImageVerification;
}

/** `min,opt,max` with min ≤ opt ≤ max, all ≥ 1 */
export function parseBatches(text: string): [number, number, number] {
  const parts = text.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 1) || !(parts[0] <= parts[1] && parts[1] <= parts[2])) {
    fail('batch-sizes', `expected min,opt,max batch sizes with min ≤ opt ≤ max, got "${text}"`);
  }
  return parts as [number, number, number];
}

export function readSharedConfig(r: Reader): SharedConfig {
  const tritonRelease = r.raw('triton-release');
  if (!/^\d\d\.\d\d$/.test(tritonRelease))
    fail('triton-release', `expected NVIDIA's container release yy.mm (e.g. ${DEFAULT_TRITON_RELEASE}), got "${tritonRelease}"`);
  const s: SharedConfig = {
    reference: r.raw('reference') || undefined,
    tolerance: r.num('tolerance'),
    model: r.raw('model'),
    runtime: r.oneOf('runtime', RUNTIMES),
    protocol: r.oneOf('protocol', PROTOCOLS),
    tritonRelease,
    tritonImage: r.raw('triton-image') || tritonImageFor(tritonRelease),
    batchSizes: parseBatches(r.raw('batch-sizes')),
    image: r.raw('image'),
    modelName: r.raw('model-name'),
    gpu: r.bool('gpu'),
    registryUsername: r.raw('registry-username'),
    registryPassword: r.raw('registry-password'),
    modelKey: r.raw('model-key'),
    apiKey: r.raw('api-key'),
    preprocess: undefined,
    transparencyLog: r.bool('transparency-log'),
    cosign: readCosignSource(r),
    signing: readSigning(r),
    verification: readVerification(r),
  };
  if (['image', 'smoke', 'pipeline'].includes(r.stage) && r.raw('preprocess') !== '') {
    try {
      s.preprocess = parsePreprocess(r.raw('preprocess'));
    } catch (e) {
      fail('preprocess', (e as Error).message);
    }
  }
  if (!['convert', 'compile', 'sign', 'cleanup'].includes(r.stage) && !/^[a-z0-9][a-z0-9_-]*$/.test(s.modelName))
    fail('model-name', `must be lower-case letters, digits, '-' or '_', got "${s.modelName}"`);
  if (s.runtime === 'triton' && (r.uses('runtime') || r.stage === 'pipeline')) {
    // what only modelship's own server honours: Triton would serve without the key, or could not read the model
    for (const name of ['api-key', 'api-key-secret', 'model-key', 'model-key-secret']) {
      if (r.raw(name) !== '')
        fail(
          name,
          'is honoured by the modelship runtime only; Triton Inference Server has no API key or model decryption (runtime: triton). Put the endpoint behind an authenticating proxy or ingress instead',
        );
    }
    if (r.bool('encrypt-model'))
      fail('encrypt-model', 'is honoured by the modelship runtime only: Triton Inference Server cannot decrypt a model (runtime: triton)');
  }
  return s;
}
