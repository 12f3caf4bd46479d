import * as yaml from 'js-yaml';
import { ModelshipError } from './util/errors';

/**
 * How inputs are declared and read, for every stage. Each stage declares its own inputs and outputs beside it
 * (`src/<stage>/inputs.ts`), inputs that several stages read live in `src/shared/inputs.ts`, and `src/config.ts`
 * puts them together: action.yml, the CLI flags and the README tables are generated from that one list.
 */

export const STAGES = ['convert', 'compile', 'image', 'sign', 'smoke', 'rollout', 'preview', 'cleanup', 'pipeline'] as const;
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

/** The input that carries more inputs as a YAML map: how a reusable workflow passes what it does not name. */
export const INPUTS_MAP = 'inputs';

/**
 * The source with input `inputs` (a YAML or JSON map of input name → value) applied: a key must be an input the
 * stage reads and not a secret (secrets come through `with:` from secrets, where the runner masks them); its value
 * stands where the input itself is not given or is its default. An input given both ways, with different values,
 * fails naming both, as does a malformed map.
 */
export function withInputsMap(source: InputSource, specs: InputSpec[], stage: Stage): InputSource {
  const text = source(INPUTS_MAP) ?? '';
  if (text.trim() === '') return source;
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (e) {
    const mark = (e as yaml.YAMLException).mark;
    return fail(
      INPUTS_MAP,
      `is not YAML${mark ? ` (line ${mark.line + 1}, column ${mark.column + 1})` : ''}: ${(e as yaml.YAMLException).reason ?? (e as Error).message}`,
    );
  }
  if (doc === null || doc === undefined) return source;
  if (typeof doc !== 'object' || Array.isArray(doc))
    return fail(INPUTS_MAP, `expected a map of input names to values, got ${JSON.stringify(doc).slice(0, 80)}`);
  const byName = new Map(specs.map((i) => [i.name, i]));
  const extra = new Map<string, string>();
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    const spec = byName.get(name);
    const where = `${INPUTS_MAP}.${name}`;
    if (!spec || name === 'stage' || name === INPUTS_MAP)
      fail(INPUTS_MAP, `"${name}" is not an input of modelship${name === 'stage' || name === INPUTS_MAP ? ' that can be given here' : ''}`);
    if (!inputUsedBy(spec, stage)) fail(INPUTS_MAP, `"${name}" is not read by stage ${stage} (it is an input of ${(spec.stages as Stage[]).join(', ')})`);
    if (spec.secret) fail(INPUTS_MAP, `"${name}" is a secret: pass it in with: from a secret, where the runner masks it, not in ${INPUTS_MAP}`);
    const v =
      typeof value === 'string'
        ? value
        : typeof value === 'number' || typeof value === 'boolean'
          ? String(value)
          : value === null || value === undefined
            ? ''
            : JSON.stringify(value);
    const given = (source(name) ?? '').trim();
    if (given !== '' && given !== spec.default && given !== v.trim()) fail(name, `given as "${given}" and in ${where} as "${v}": give it once`);
    extra.set(name, v);
  }
  return (name) => {
    const v = extra.get(name);
    if (v === undefined) return source(name);
    const given = source(name);
    return given === undefined || given.trim() === '' || given.trim() === byName.get(name)!.default ? v : given;
  };
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
    return { name: m[1], key: m[3] };
  }

  /** does the running stage read this input (directly or through a stage it runs)? */
  uses(name: string): boolean {
    return inputUsedBy(this.specs.get(name)!, this.stage);
  }
}
