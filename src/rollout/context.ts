import type { Logger } from '../stage';
import { GoldenTarget, httpTransport } from '../shared/golden';
import { KServeGrpcClient } from '../protocol/kserve-grpc-client';
import type { Protocol } from '../protocol/runtime';
import type { Kube } from './kube';
import { GateLedger, GateRecord } from './gates/ledger';
import { Timeline } from './timeline';

/**
 * What a deploy's strategy and gates run with: the cluster, the log, the timeline, the gates' records, and the one
 * abort signal that a cancellation (SIGINT/SIGTERM from the runner) or the rollout-timeout fires. Every failure path
 * (a gate, a timeout, an exception, a cancellation) ends in the strategy's roll back.
 */
export interface RolloutRun {
  readonly kube: Kube;
  readonly namespace: string;
  readonly log: Logger;
  readonly gates: GateLedger;
  readonly signal: AbortSignal;
  /** rollout-timeout in ms: also how long the stable's own rollout may take after a promotion */
  readonly timeoutMs: number;
  /** a step of the timeline (logged as it starts) */
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** start the rollout-timeout: from the first apply to the decision */
  startDeadline(): void;
  /** the decision is made: the rollout-timeout no longer applies */
  stopDeadline(): void;
  /** ms left before rollout-timeout */
  remainingMs(): number;
  /**
   * where golden requests to `service` go: verify-url, else the Service through the API server's service proxy;
   * with protocol grpc, a gRPC client of verify-url (one connection for the run)
   */
  transport(service: string): GoldenTarget;
  /** latency p95 of the golden requests in ms, once measured */
  latencyP95Ms?: number;
}

export interface RunSettings {
  timeoutS: number;
  /** verify-url ('' for the service proxy; grpc://host:port with protocol grpc) */
  verifyUrl: string;
  /** how golden requests travel (input `protocol`; http when absent) */
  protocol?: Protocol;
}

export class DeployRun implements RolloutRun {
  readonly timeline: Timeline;
  readonly gates: GateLedger;
  readonly timeoutMs: number;
  latencyP95Ms?: number;
  private readonly controller = new AbortController();
  private readonly onSignal = (sig: NodeJS.Signals) => this.controller.abort(`cancelled (${sig})`);
  private deadline?: { startedAt: number; timer: NodeJS.Timeout };
  private grpcClient?: KServeGrpcClient;

  constructor(
    readonly kube: Kube,
    readonly namespace: string,
    readonly log: Logger,
    private readonly settings: RunSettings,
    gates: readonly GateRecord[],
  ) {
    this.timeline = new Timeline((line) => log.info(line));
    this.gates = new GateLedger(gates);
    this.timeoutMs = settings.timeoutS * 1000;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** From here until close(), SIGINT and SIGTERM (the runner cancelling the job) abort the run, which then rolls back. */
  listenForCancellation(): void {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.timeline.step(name, fn);
  }

  startDeadline(): void {
    const startedAt = Date.now();
    this.deadline = {
      startedAt,
      timer: setTimeout(() => this.controller.abort(`timeout: no decision within rollout-timeout ${this.settings.timeoutS} s`), this.timeoutMs),
    };
  }

  stopDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline.timer);
  }

  remainingMs(): number {
    return Math.max(0, this.timeoutMs - (this.deadline ? Date.now() - this.deadline.startedAt : 0));
  }

  transport(service: string): GoldenTarget {
    // gRPC cannot go through the API server's service proxy (HTTP/1.1): the inputs require verify-url with it
    if (this.settings.protocol === 'grpc') return (this.grpcClient ??= new KServeGrpcClient(this.settings.verifyUrl));
    return this.settings.verifyUrl ? httpTransport(this.settings.verifyUrl) : this.kube.serviceProxy(this.namespace, service, 'http');
  }

  /** The deploy is over: no deadline, no signal handlers. */
  close(): void {
    this.stopDeadline();
    this.grpcClient?.close();
    this.grpcClient = undefined;
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
  }
}
