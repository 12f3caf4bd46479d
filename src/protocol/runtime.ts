/**
 * The serving runtimes modelship deploys (the ports they answer on, how they drain), and the NVIDIA release that pairs
 * Triton with the TensorRT that builds its plans. Shared by compile (trtexec's image), image (the Triton base), smoke
 * and rollout (what the server speaks), the KServe client and the modelship server itself.
 */
export const RUNTIMES = ['modelship', 'triton'] as const;
export type Runtime = (typeof RUNTIMES)[number];

/**
 * NVIDIA's container release (yy.mm): `nvcr.io/nvidia/tritonserver:<release>-py3` serves, and
 * `nvcr.io/nvidia/tensorrt:<release>-py3` of the same release builds TensorRT plans for it (both ship the same
 * TensorRT). 24.10 is Triton 2.51.0 with TensorRT 10.5 — also the Triton that PyPI's nvidia-pytriton 0.7.0 ships,
 * which the lab runs.
 */
export const DEFAULT_TRITON_RELEASE = '24.10';

export const tritonImageFor = (release: string): string => `nvcr.io/nvidia/tritonserver:${release}-py3`;
export const tensorrtImageFor = (release: string): string => `nvcr.io/nvidia/tensorrt:${release}-py3`;

/**
 * The ports a serving image answers on, whatever its runtime: KServe v2 over HTTP and over gRPC, and a metrics-only listener (GET
 * /metrics without the API key). The image, smoke and the manifests all use these.
 */
export const SERVING_PORT = 8000;
/** KServe v2 over gRPC (inference.GRPCInferenceService), Triton's port for it */
export const GRPC_PORT = 8001;
export const METRICS_PORT = 8002;

/** How smoke and the rollout's golden requests reach a server (input `protocol`): KServe v2 over HTTP or over gRPC. */
export const PROTOCOLS = ['http', 'grpc'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/**
 * The gRPC target of a URL: `grpc://host:port` (plaintext HTTP/2, as both runtimes serve it), `grpcs://host:port`
 * (TLS, an ingress in front), or a bare `host:port`. Undefined when it is none of them.
 */
export function grpcTarget(url: string): { target: string; tls: boolean } | undefined {
  const m = /^(?:(grpcs?):\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})\/?$/.exec(url.trim());
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) return undefined;
  return { target: `${m[2]}:${m[3]}`, tls: m[1] === 'grpcs' };
}

/** the user NVIDIA's Triton images provide (triton-server): the image runs as it, and so do its pods */
export const TRITON_UID = 1000;

/**
 * After SIGTERM, seconds a server gives in-flight requests: modelship's MODELSHIP_DRAIN_TIMEOUT_S in the pods,
 * Triton's --exit-timeout-secs in its image's CMD. The rollout's grace period is built on it.
 */
export const SERVER_DRAIN_TIMEOUT_S = 20;
