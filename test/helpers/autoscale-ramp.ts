import { apiRequest } from './kube';

/**
 * What an autoscaled stable Deployment does under a load ramp, watched once a second through the API server (no
 * kubectl process): its spec.replicas (the HPA's count), its stable pods and when each became Ready, and how many
 * inference requests each pod has answered, read from its own /metrics (modelship_requests_total{route="infer"})
 * through the pod proxy: the server does not say which pod answered a request, its counters do. Shared by
 * test/autoscale-rollout.lab.test.ts and bench/autoscale.ts.
 */

export interface PodSeen {
  name: string;
  /** seconds from the watch's start when it was first seen, Ready, and had answered an inference request */
  seenS: number;
  readyS?: number;
  servingS?: number;
  /** inference requests it answered (its counter, last read) */
  served: number;
  /** it existed when the watch started */
  initial: boolean;
}

export interface RampWatch {
  /** seconds since the watch started */
  now(): number;
  /** spec.replicas over time: [seconds, replicas] at each change */
  replicas: [number, number][];
  pods: Map<string, PodSeen>;
  /** the last spec.replicas read */
  current(): number;
  /** the pods Ready now, and the number of those that answered requests */
  readyNow(): number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The inference requests a pod answered, from its /metrics (port 8002) through the pod proxy; undefined when unreadable. */
export async function podServed(ns: string, pod: string): Promise<number | undefined> {
  const r = await apiRequest(`/api/v1/namespaces/${ns}/pods/${pod}:8002/proxy/metrics`).catch(() => undefined);
  if (!r || r.status !== 200) return undefined;
  let n = 0;
  for (const m of r.body.toString().matchAll(/^modelship_requests_total\{([^}]*)\} (\S+)$/gm)) if (/route="infer"/.test(m[1])) n += Number(m[2]);
  return n;
}

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  status: { conditions?: { type: string; status: string }[] };
}

/** Watch Deployment `app` in `ns` and its stable pods (label track=stable) once a second until stop(). */
export function watchRamp(ns: string, app: string): RampWatch {
  const t0 = Date.now();
  const now = () => (Date.now() - t0) / 1000;
  const replicas: [number, number][] = [];
  const pods = new Map<string, PodSeen>();
  let ready = 0;
  let stopped = false;
  let first = true;
  const selector = encodeURIComponent(`app.kubernetes.io/name=${app},track=stable`);
  const tick = async () => {
    const d = await apiRequest(`/apis/apps/v1/namespaces/${ns}/deployments/${app}`).catch(() => undefined);
    if (d?.status === 200) {
      const n = (JSON.parse(d.body.toString()) as { spec: { replicas?: number } }).spec.replicas ?? 1;
      if (replicas.at(-1)?.[1] !== n) replicas.push([now(), n]);
    }
    const l = await apiRequest(`/api/v1/namespaces/${ns}/pods?labelSelector=${selector}`).catch(() => undefined);
    if (l?.status !== 200) return;
    const items = (JSON.parse(l.body.toString()) as { items: PodJson[] }).items.filter((p) => !p.metadata.deletionTimestamp);
    ready = 0;
    await Promise.all(
      items.map(async (p) => {
        const name = p.metadata.name;
        const seen = pods.get(name) ?? { name, seenS: now(), served: 0, initial: first };
        pods.set(name, seen);
        const isReady = (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
        if (!isReady) return;
        ready++;
        seen.readyS ??= now();
        const served = await podServed(ns, name);
        if (served === undefined) return;
        seen.served = served;
        if (served > 0) seen.servingS ??= now();
      }),
    );
    first = false;
  };
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      await tick().catch(() => undefined);
      await sleep(Math.max(100, 1000 - (Date.now() - started)));
    }
  })();
  return {
    now,
    replicas,
    pods,
    current: () => replicas.at(-1)?.[1] ?? 0,
    readyNow: () => ready,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** The figures of a ramp: seconds from the load's start (the watch's start) to each thing. */
export interface RampFigures {
  /** spec.replicas first above `from` */
  scaledS?: number;
  /** the most replicas it reached */
  peak: number;
  /** every pod added by the scale-out Ready; answering inference requests */
  addedReadyS?: number;
  addedServingS?: number;
  /** the pods the scale-out added, and their first answers, each */
  added: PodSeen[];
}

export function rampFigures(w: RampWatch, from: number, until = Infinity): RampFigures {
  const scaled = w.replicas.find(([t, n]) => t <= until && n > from);
  const added = [...w.pods.values()].filter((p) => !p.initial && p.seenS <= until);
  const all = (k: 'readyS' | 'servingS') => (added.length && added.every((p) => p[k] !== undefined) ? Math.max(...added.map((p) => p[k]!)) : undefined);
  return {
    scaledS: scaled?.[0],
    peak: Math.max(0, ...w.replicas.filter(([t]) => t <= until).map(([, n]) => n)),
    addedReadyS: all('readyS'),
    addedServingS: all('servingS'),
    added,
  };
}
