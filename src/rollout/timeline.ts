/** One step of a deploy as the report shows it: when it started (seconds into the deploy), how long it took, how it ended. */
export interface TimelineEntry {
  step: string;
  atS: number;
  seconds: number;
  result: 'ok' | 'fail';
  /** the first line of the error, for a step that failed */
  detail?: string;
}

/**
 * The deploy's timeline: every step is logged as it starts (`[12.3 s] canary pods Ready`) and recorded as it ends, so
 * the summary's table and Gantt chart and rollout-report's `timeline` show what took how long and where it failed.
 */
export class Timeline {
  private readonly startedAt = Date.now();
  private readonly recorded: TimelineEntry[] = [];

  constructor(private readonly log: (line: string) => void) {}

  get entries(): readonly TimelineEntry[] {
    return this.recorded;
  }

  secondsSinceStart(): number {
    return (Date.now() - this.startedAt) / 1000;
  }

  async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    const atS = (started - this.startedAt) / 1000;
    this.log(`[${atS.toFixed(1)} s] ${name}`);
    try {
      const result = await fn();
      this.recorded.push({ step: name, atS, seconds: (Date.now() - started) / 1000, result: 'ok' });
      return result;
    } catch (e) {
      this.recorded.push({
        step: name,
        atS,
        seconds: (Date.now() - started) / 1000,
        result: 'fail',
        detail: (e instanceof Error ? e.message : String(e)).split('\n')[0],
      });
      throw e;
    }
  }
}
