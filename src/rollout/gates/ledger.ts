import { GateFailure } from '../health';
import type { GateName, GateResult } from './gate';

/** One gate of the report (outputs gate-<name>, the summary's Gates table, rollout-report's `gates`). */
export interface GateRecord {
  gate: GateName;
  result: 'pass' | 'fail' | 'skipped';
  detail: string;
  evidence: string[];
  /** the time its checks took, together */
  seconds: number;
}

/**
 * The gates' records of a run, in report order: every gate starts `skipped` (with why, when it cannot run: no
 * reference, no prometheus-url) and changes only as its checks end. Records are replaced, never changed in place, so
 * what `records` handed out stays as it was.
 */
export class GateLedger {
  private rows: readonly GateRecord[];

  constructor(initial: readonly GateRecord[]) {
    this.rows = initial.map((r) => ({ ...r, evidence: [...r.evidence] }));
  }

  get records(): readonly GateRecord[] {
    return this.rows;
  }

  record(gate: GateName): GateRecord {
    const r = this.rows.find((x) => x.gate === gate);
    if (!r) throw new Error(`no gate "${gate}" in this run's report`);
    return r;
  }

  /** the gates that passed, in report order */
  passed(): GateName[] {
    return this.rows.filter((r) => r.result === 'pass').map((r) => r.gate);
  }

  /** the gate that failed, if one did */
  failed(): GateRecord | undefined {
    return this.rows.find((r) => r.result === 'fail');
  }

  /** A check of `gate` ended without a failure after `seconds`; `observed`: the evidence it reported on the way. */
  checkPassed(gate: GateName, seconds: number, result: GateResult, observed?: string[]): void {
    const evidence = result.evidence ?? observed;
    this.replace(gate, (r) => ({
      ...r,
      result: result.passes ? 'pass' : r.result,
      detail: result.detail ?? r.detail,
      evidence: evidence ?? r.evidence,
      seconds: r.seconds + seconds,
    }));
  }

  /**
   * A later step (a stepped canary's) checks `gate` again: a gate that passed no longer counts as passed, with
   * `detail`, until that step's checks pass it again; its time so far stays. So a run reports a gate as passed only
   * when it passed at every step that checks it.
   */
  reopen(gate: GateName, detail: string): void {
    if (this.record(gate).result === 'pass') this.replace(gate, (r) => ({ ...r, result: 'skipped', detail }));
  }

  /** A check of `gate` failed with `error` after `seconds`: the gate fails, with the failure's evidence (or what it reported). */
  checkFailed(gate: GateName, seconds: number, error: unknown, observed?: string[]): void {
    this.replace(gate, (r) => ({
      ...r,
      result: 'fail',
      detail: error instanceof Error ? error.message : String(error),
      evidence: error instanceof GateFailure ? error.evidence : (observed ?? r.evidence),
      seconds: r.seconds + seconds,
    }));
  }

  private replace(gate: GateName, change: (r: GateRecord) => GateRecord): void {
    this.record(gate);
    this.rows = this.rows.map((r) => (r.gate === gate ? change(r) : r));
  }
}
