import type { Kube } from '../kube';
import { GateFailure, PodView } from '../health';
import { detectServer, modelPlacement } from '../../protocol/kserve-client';
import { SERVING_PORT } from '../../protocol/runtime';
import type { Gate } from './gate';

/**
 * With gpu: true, every new pod must compute on the GPU: a pod that holds an nvidia.com/gpu and serves on the CPU
 * (an image without the CUDA provider, a patch that allows cuda,cpu, a Triton config with a KIND_CPU instance group)
 * is a failed canary, named. Each pod is asked through the API server's pod proxy what it is (GET /v2) and where the
 * model runs (modelship: `parameters.execution_provider` of the model metadata; Triton: the instance groups of its
 * model configuration). The proxy drops Authorization headers, so behind modelship's API key the provider is read
 * from the server's start-up log line instead.
 */
export function gpuProviderGate(name: string, modelName: string): Gate {
  return {
    gate: 'pods',
    name,
    run: async (ctx) => ({ evidence: await checkPodProviders(ctx.kube, ctx.namespace, ctx.found.pods, modelName, SERVING_PORT) }),
  };
}

/** Where each pod computes, as evidence lines; fails naming every pod that does not serve on the GPU. */
export async function checkPodProviders(kube: Kube, namespace: string, pods: PodView[], modelName: string, port: number): Promise<string[]> {
  const evidence: string[] = [];
  const onCpu: string[] = [];
  for (const pod of pods) {
    const { provider, detail } = await podProvider(kube, namespace, pod.name, modelName, port);
    evidence.push(`pod ${pod.name}: ${provider}${detail ? ` (${detail})` : ''}`);
    if (provider !== 'cuda') onCpu.push(`${pod.name} serves on ${provider}${detail ? `: ${detail}` : ''}`);
  }
  if (onCpu.length)
    throw new GateFailure(`gpu is true but ${onCpu.length} of ${pods.length} pod(s) do not serve the model on the GPU: ${onCpu.join('; ')}`, evidence);
  return evidence;
}

async function podProvider(kube: Kube, namespace: string, pod: string, modelName: string, port: number): Promise<{ provider: string; detail?: string }> {
  const t = kube.podProxy(namespace, pod, port);
  const server = await detectServer(t).catch(() => undefined);
  if (server) {
    const p = await modelPlacement(t, server, modelName).catch((e: Error) => ({ device: 'unknown' as const, detail: e.message }));
    if (p.device !== 'unknown' || server.runtime === 'triton') return { provider: p.device, detail: `${server.name}: ${p.detail}` };
  }
  // behind an API key: the server's own log says where the model was loaded
  const log = await kube.podLog(namespace, pod);
  const loaded = / loaded from .* on (cuda|cpu) with /.exec(log);
  if (loaded) return { provider: loaded[1], detail: /CUDA execution provider unavailable: ([^\n]*)/.exec(log)?.[1] };
  return { provider: 'unknown', detail: `the server's metadata could not be read and its log names no provider` };
}
