import { fail, InputSpec, OutputSpec, Reader } from '../inputs';
import type { SharedConfig } from '../shared/inputs';
import type { Protocol, Runtime } from '../protocol/runtime';
import { parseExpectedDetections, ExpectedDetection } from '../protocol/detections';
import type { Preprocess } from '../protocol/preprocess';
import type { ImageVerification } from '../shared/verify-image';

/** The smoke stage's own inputs and outputs (image, model-name, gpu, keys, reference, tolerance are shared). */
export const SMOKE_INPUTS: InputSpec[] = [
  {
    name: 'sample-image',
    description:
      "smoke: a JPEG or PNG checked as a golden request (empty: skipped): a classifier's top-1 (expected-top1), a detection model's detections (expected-detections).",
    default: '',
    kind: 'path',
    stages: ['smoke'],
  },
  {
    name: 'expected-top1',
    description:
      'smoke: the class index the sample image must give as top-1 (the image is preprocessed by smoke itself, Caffe-style as the modelship server does, and sent as a tensor to /infer, so it works on either runtime).',
    default: '',
    kind: 'string',
    stages: ['smoke'],
  },
  {
    name: 'expected-detections',
    description:
      'smoke: a detection model\'s (SSD) detections in the sample image, a JSON list `[{"label": 1, "box": [xmin, ymin, xmax, ymax]}]` in pixels of the image. The server must find as many (score ≥ detection-threshold), each expected one matched one to one by a detection of the same label with IoU ≥ 0.5. modelship: through its /detect route; triton: preprocessed by smoke (the whole image resized to the input), sent to /infer and the detection table read back.',
    default: '',
    kind: 'string',
    stages: ['smoke'],
  },
  {
    name: 'detection-threshold',
    description: 'smoke: the score a detection needs to count, for expected-detections (0 to 1).',
    default: '0.5',
    kind: 'number',
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
];

export const SMOKE_OUTPUTS: OutputSpec[] = [
  { name: 'smoke', description: 'smoke: pass or fail.', stages: ['smoke'] },
  { name: 'latency-p50-ms', description: 'smoke: median request latency in ms (batch 1).', stages: ['smoke'] },
  { name: 'latency-p95-ms', description: 'smoke: 95th percentile latency in ms.', stages: ['smoke'] },
  { name: 'latency-p99-ms', description: 'smoke: 99th percentile latency in ms.', stages: ['smoke'] },
  { name: 'throughput-rps', description: 'smoke: requests per second at the given concurrency.', stages: ['smoke'] },
  { name: 'gpu-info', description: 'smoke: nvidia-smi in the container (name, driver, compute capability) when gpu is true.', stages: ['smoke'] },
];

export interface SmokeConfig {
  image: string;
  /** the runtime the image was built for; smoke checks it against what the server says (GET /v2) */
  runtime: Runtime;
  /** how the golden requests, readiness, metadata and latency travel: KServe v2 over HTTP or gRPC (input `protocol`) */
  protocol: Protocol;
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
  /** a detection model's expected detections in the sample image (pixels); undefined: none given */
  expectedDetections?: ExpectedDetection[];
  /** the score a detection needs (default 0.5) */
  detectionThreshold?: number;
  /** the sample image's preprocessing; undefined: the server's default */
  preprocess?: Preprocess;
  requests: number;
  concurrency: number;
  readyTimeoutS: number;
  registryUsername: string;
  registryPassword: string;
  /** verify the image (cosign) before it is pulled; undefined: verify off */
  verification?: ImageVerification;
}

export function readSmokeConfig(r: Reader, s: SharedConfig): SmokeConfig {
  if (r.raw('expected-top1') !== '' && !/^\d+$/.test(r.raw('expected-top1')))
    fail('expected-top1', `expected a class index (a whole number), got "${r.raw('expected-top1')}"`);
  let expectedDetections: ExpectedDetection[] | undefined;
  if (r.raw('expected-detections') !== '') {
    try {
      expectedDetections = parseExpectedDetections(r.raw('expected-detections'));
    } catch (e) {
      fail('expected-detections', (e as Error).message);
    }
    if (r.raw('sample-image') === '') fail('expected-detections', 'the detections are those of the sample image: give sample-image too');
    if (r.raw('expected-top1') !== '') fail('expected-detections', 'give expected-top1 (a classifier) or expected-detections (a detection model), not both');
  }
  const detectionThreshold = r.num('detection-threshold');
  if (detectionThreshold > 1) fail('detection-threshold', `expected a score from 0 to 1, got "${r.raw('detection-threshold')}"`);
  const preprocess = s.preprocess;
  return {
    image: s.image,
    runtime: s.runtime,
    protocol: s.protocol,
    modelName: s.modelName,
    reference: s.reference,
    tolerance: s.tolerance,
    gpu: s.gpu,
    apiKey: s.apiKey,
    modelKey: s.modelKey,
    sampleImage: r.raw('sample-image'),
    expectedTop1: r.raw('expected-top1'),
    expectedDetections,
    detectionThreshold,
    preprocess,
    requests: r.int('requests', 0),
    concurrency: r.int('concurrency', 1),
    readyTimeoutS: r.int('ready-timeout', 1),
    registryUsername: s.registryUsername,
    registryPassword: s.registryPassword,
    verification: s.verification,
  };
}
