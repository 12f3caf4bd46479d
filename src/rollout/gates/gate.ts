import type { Kube } from '../kube';
import type { PodView } from '../health';
import type { GoldenRequest, GoldenTarget } from '../../shared/golden';
import type { OpenWindow } from '../analysis/window';

/**
 * A gate: one check of a release before it is promoted (its pods Ready, on the GPU, the golden requests, the bake
 * window, the canary's metrics). A strategy's step runs a list of gates in order (gates/verify.ts), each a step of
 * the timeline; the first that fails ends the verification, and the run rolls back. A gate only reads and measures:
 * what it finds it returns (GateResult), what is wrong it throws (GateFailure from health.ts, with its evidence).
 *
 * The report has three gates, the outputs gate-pods, gate-golden and gate-prometheus (GateName); several checks can
 * count under one: the pods gate is its pods Ready, on the GPU, and still healthy at the end of the bake window.
 */
export type GateName = 'pods' | 'golden' | 'prometheus' | 'analysis';

/** What a step verifies: the canary beside the stable, or (strategy basic) the stable updated in place. */
export interface Release {
  track: 'canary' | 'stable';
  /** the Deployment that runs it */
  deployment: string;
  /** the Service its golden requests go to */
  service: string;
  /** the labels of its pods (the bake watches them) */
  podSelector: Record<string, string>;
}

/** What the gates before found, for the ones after: the release's Ready pods, the golden request the bake repeats. */
export interface Findings {
  pods: PodView[];
  goldenRequest?: GoldenRequest;
  /** the analysis window opened before the bake (gates/comparison.ts), judged after it */
  analysis?: { window: OpenWindow; opened: number; source: string };
}

/** Known before a gate's verdict, and kept in the report when the gate then fails. */
export interface Observation {
  /** the gate's evidence so far (the golden comparison table) */
  evidence?: string[];
  /** latency p95 of the golden requests in ms (output verify-latency-p95-ms) */
  latencyP95Ms?: number;
}

/** What a gate runs with: the cluster, the release, the time left, what the gates before found. */
export interface GateContext {
  readonly kube: Kube;
  readonly namespace: string;
  readonly release: Release;
  /** aborted at rollout-timeout or on a cancellation: a gate that waits stops at once */
  readonly signal: AbortSignal;
  /** ms left before rollout-timeout */
  remainingMs(): number;
  /** a progress line for the log (a Deployment's rollout) */
  progress(line: string): void;
  /**
   * where golden requests to `service` go: verify-url, else the Service through the API server's service proxy;
   * with protocol grpc, a gRPC client of verify-url
   */
  transport(service: string): GoldenTarget;
  readonly found: Findings;
  observed(observation: Observation): void;
}

/** A gate's verdict when it did not throw. */
export interface GateResult {
  /** its gate passes with this check (the last check of that gate); else the gate's result stays as it is */
  passes?: boolean;
  /** the gate's detail from now on (unchanged when absent) */
  detail?: string;
  /** the gate's evidence from now on (unchanged when absent) */
  evidence?: string[];
  /** for the gates after it */
  found?: Partial<Findings>;
}

export interface Gate {
  /** the gate of the report it counts under */
  readonly gate: GateName;
  /** its step in the timeline and the log */
  readonly name: string;
  /** runs without a step of its own: a bake of 0 s, which takes no time and only concludes the pods gate */
  readonly silent?: boolean;
  run(ctx: GateContext): Promise<GateResult>;
}
