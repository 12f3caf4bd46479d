import { ErrorLocation } from './util/errors';

/** How stages talk to the outside: the CLI prints, the action uses @actions/core (groups, annotations). */
export interface Logger {
  // function-typed properties, not methods: no implementation uses `this`, so `log.info` may be passed on as a callback
  info: (message: string) => void;
  warning: (message: string, where?: ErrorLocation) => void;
  group: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
}

/** What every stage returns: its outputs (named as in action.yml), a markdown summary, and whether it passed. */
export interface StageResult {
  outputs: Record<string, string>;
  summary: string;
  ok: boolean;
  /** why the stage failed when ok is false (a gate, not an exception) */
  failure?: string;
}

export const consoleLogger = (stream: NodeJS.WritableStream = process.stderr): Logger => ({
  info: (m) => stream.write(m + '\n'),
  warning: (m) => stream.write(`warning: ${m}\n`),
  group: async (name, fn) => {
    stream.write(`== ${name}\n`);
    return fn();
  },
});
