import type { Kube } from './kube';
import { GateFailure, PodView } from './health';

/**
 * With gpu: true, every new pod must compute on the GPU: a pod that holds an nvidia.com/gpu and serves on the CPU
 * (an image without the CUDA provider, a patch that allows cuda,cpu) is a failed canary, named. The provider is
 * read from each pod's model metadata through the API server's pod proxy (`parameters.execution_provider`); the
 * proxy drops Authorization headers, so behind an API key it is read from the server's start-up log line instead.
 */
export async function checkPodProviders(kube: Kube, namespace: string, pods: PodView[], modelName: string, port: number): Promise<string[]> {
  const evidence: string[] = [];
  const onCpu: string[] = [];
  for (const pod of pods) {
    const { provider, detail } = await podProvider(kube, namespace, pod.name, modelName, port);
    evidence.push(`pod ${pod.name}: execution provider ${provider}${detail ? ` (${detail})` : ''}`);
    if (provider !== 'cuda') onCpu.push(`${pod.name} serves on ${provider}${detail ? `: ${detail}` : ''}`);
  }
  if (onCpu.length) throw new GateFailure(`gpu is true but ${onCpu.length} of ${pods.length} pod(s) do not serve on the CUDA execution provider: ${onCpu.join('; ')}`, evidence);
  return evidence;
}

async function podProvider(kube: Kube, namespace: string, pod: string, modelName: string, port: number): Promise<{ provider: string; detail?: string }> {
  const r = await kube.podProxy(namespace, pod, port)(`/v2/models/${modelName}`, { timeoutMs: 10_000 }).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message), headers: {} }));
  if (r.status === 200) {
    const p = (JSON.parse(r.body.toString()) as { parameters?: { execution_provider?: string; provider_fallback?: string } }).parameters ?? {};
    return { provider: p.execution_provider ?? 'unknown', detail: p.provider_fallback };
  }
  // behind an API key: the server's own log says where the model was loaded
  const log = await kube.podLog(namespace, pod);
  const loaded = / loaded from .* on (cuda|cpu) with /.exec(log);
  if (loaded) return { provider: loaded[1], detail: /CUDA execution provider unavailable: ([^\n]*)/.exec(log)?.[1] };
  return { provider: 'unknown', detail: `model metadata answered HTTP ${r.status} and the log names no provider` };
}
