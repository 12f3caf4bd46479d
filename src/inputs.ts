import { ModelshipError } from './util/errors';

/**
 * How inputs are declared and read, for every stage. Each stage declares its own inputs and outputs beside it
 * (`src/<stage>/inputs.ts`), inputs that several stages read live in `src/shared/inputs.ts`, and `src/config.ts`
 * puts them together: action.yml, the CLI flags and the README tables are generated from that one list.
 */

export const STAGES = ['convert', 'compile', 'image', 'smoke', 'rollout', 'preview', 'cleanup', 'pipeline'] as const;
export type Stage = (typeof STAGES)[number];

/** The stages whose inputs a stage also reads: the pipeline runs five, a preview is a rollout. */
export const STAGE_INCLUDES: Partial<Record<Stage, Stage[]>> = { pipeline: ['convert', 'compile', 'image', 'smoke', 'rollout'], preview: ['rollout'] };

export interface InputSpec {
  name: string;
  description: string;
  /** default as action.yml states it ('' when there is none) */
  default: string;
  kind: 'string' | 'path' | 'boolean' | 'number';
  /** stages that use it; `required` lists those where it must be given */
  stages: Stage[] | 'all';
  required?: Stage[];
  secret?: boolean;
}

export interface OutputSpec {
  name: string;
  description: string;
  stages: Stage[];
}

/** Does `stage` read input `i` (directly, or through a stage it runs)? */
export function inputUsedBy(i: InputSpec, stage: Stage): boolean {
  if (i.stages === 'all') return true;
  return [stage, ...(STAGE_INCLUDES[stage] ?? [])].some((s) => (i.stages as Stage[]).includes(s));
}

/** Where raw input values come from: the action's INPUT_* environment or the CLI's flags. */
export type InputSource = (name: string) => string | undefined;

/** A bad input: the error names it. */
export function fail(input: string, message: string): never {
  throw new ModelshipError('input', `input "${input}": ${message}`, { field: input });
}

export function parseBoolean(name: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off', ''].includes(v)) return false;
  return fail(name, `expected true or false, got "${raw}"`);
}

/** Typed access to the raw inputs, defaults applied; every malformed value fails naming its input. */
export class Reader {
  private readonly specs: Map<string, InputSpec>;

  constructor(
    private readonly source: InputSource,
    specs: InputSpec[],
    readonly stage: Stage,
  ) {
    this.specs = new Map(specs.map((i) => [i.name, i]));
  }

  /** the value, trimmed, or the input's default when it is not given */
  raw(name: string): string {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`internal: no input named "${name}"`);
    const v = this.source(name);
    return (v === undefined || v.trim() === '' ? spec.default : v).trim();
  }

  /** the value exactly as given (undefined when not given): for values whose whitespace matters */
  given(name: string): string | undefined {
    return this.source(name);
  }

  num(name: string): number {
    const v = this.raw(name);
    const n = Number(v);
    if (v === '' || !Number.isFinite(n) || n < 0) fail(name, `expected a non-negative number, got "${v}"`);
    return n;
  }

  int(name: string, min: number): number {
    const n = this.num(name);
    if (!Number.isInteger(n) || n < min) fail(name, `expected an integer ≥ ${min}, got "${this.raw(name)}"`);
    return n;
  }

  bool(name: string): boolean {
    return parseBoolean(name, this.raw(name));
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T {
    const v = this.raw(name);
    if (!(values as readonly string[]).includes(v)) fail(name, `expected one of ${values.join(', ')}, got "${v}"`);
    return v as T;
  }

  /** a Kubernetes Secret reference `<secret name>/<key>` */
  secretRef(name: string): { name: string; key: string } | undefined {
    const v = this.raw(name);
    if (v === '') return undefined;
    const m = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\/([-._a-zA-Z0-9]+)$/.exec(v);
    if (!m) fail(name, `expected <secret name>/<key>, got "${v}"`);
    return { name: m![1], key: m![3] };
  }

  /** does the running stage read this input (directly or through a stage it runs)? */
  uses(name: string): boolean {
    return inputUsedBy(this.specs.get(name)!, this.stage);
  }
}
