import { INPUTS, OUTPUTS, STAGES, STAGE_INCLUDES, Stage, inputUsedBy, readConfig } from '../config';
import { consoleLogger } from '../stage';
import { runStage } from '../run';
import { externalFailure, isModelshipError, ModelshipError } from '../util/errors';
import { VERSION } from '../version';
import { rbacMain } from './rbac';
import type { serveMain as ServeMain } from '../serve/main';
import type { storePush as StorePush, storePull as StorePull } from '../store';

const BOOLEAN_FLAGS = new Set(INPUTS.filter((i) => i.kind === 'boolean').map((i) => i.name));

export function usage(stage?: string): string {
  const known = stage !== undefined && (STAGES as readonly string[]).includes(stage);
  const inputs = INPUTS.filter((i) => i.name !== 'stage' && (!known || inputUsedBy(i, stage as Stage)));
  const lines = [
    `modelship ${VERSION} — ship a Caffe model to production`,
    '',
    `usage: modelship <stage> [--input value ...] [--json]`,
    `stages: ${STAGES.join(', ')}`,
    'runtime: modelship serve --model model.onnx [--name N] [--port 8000] ...  (the KServe v2 server inside the image)',
    'storage: modelship store push --artifact F --to dir:D|oci:REGISTRY/REPO  /  store pull --from LOCATION@sha256:... --out F',
    "rbac: modelship rbac --namespace NS [--stage rollout|preview] ...  (the deploy identity's least RBAC, as YAML; rbac --help)",
    '',
    'inputs (the same names as the action inputs):',
    ...inputs.map(
      (i) => `  --${i.name}${i.kind === 'boolean' ? '' : ' <value>'}`.padEnd(30) + `${i.description}${i.default ? ` (default: ${i.default})` : ''}`,
    ),
    '',
    'outputs are printed as name=value lines, or as one JSON object with --json:',
    ...OUTPUTS.filter((o) => !known || [stage as Stage, ...(STAGE_INCLUDES[stage as Stage] ?? [])].some((s) => o.stages.includes(s))).map(
      (o) => `  ${o.name}`.padEnd(30) + o.description,
    ),
    '',
    'example: modelship convert --prototxt deploy.prototxt --caffemodel weights.caffemodel --out model.onnx --reference ref/',
  ];
  return lines.join('\n') + '\n';
}

/** Parse `<stage> --flag value --bool --flag=value` into input values. */
export function parseArgs(argv: string[]): { values: Map<string, string>; json: boolean; help: boolean } {
  const values = new Map<string, string>();
  const known = new Set(INPUTS.map((i) => i.name));
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '--help' || a === '-h') help = true;
    else if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      if (!known.has(name)) throw new ModelshipError('input', `unknown flag --${name}; run "modelship --help" for the list`, { field: name });
      if (values.has(name)) throw new ModelshipError('input', `flag --${name} is given twice`, { field: name });
      if (eq >= 0) values.set(name, a.slice(eq + 1));
      else if (BOOLEAN_FLAGS.has(name) && (argv[i + 1] === undefined || argv[i + 1].startsWith('--') || !/^(true|false|yes|no|0|1|on|off)$/i.test(argv[i + 1])))
        values.set(name, 'true');
      else {
        const v = argv[++i];
        if (v === undefined) throw new ModelshipError('input', `flag --${name} needs a value`, { field: name });
        values.set(name, v);
      }
    } else if (!values.has('stage')) values.set('stage', a);
    else throw new ModelshipError('input', `unexpected argument "${a}"`);
  }
  return { values, json, help };
}

/** `modelship store push --artifact F --to dir:D|oci:R [--tag T] [--metadata F.json]` / `store pull --from L@sha256:.. --out F` */
async function storeMain(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const [verb, ...rest] = argv;
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    if (!rest[i].startsWith('--') || rest[i + 1] === undefined) throw new ModelshipError('input', `store: expected --flag value pairs, got "${rest[i]}"`);
    flags.set(rest[i].slice(2), rest[i + 1]);
  }
  const need = (k: string) =>
    flags.get(k) ??
    (() => {
      throw new ModelshipError('input', `store ${verb} needs --${k}`, { field: k });
    })();
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the store loads only for `modelship store`
  const { storePush, storePull } = require('../store') as { storePush: typeof StorePush; storePull: typeof StorePull };
  let r;
  if (verb === 'push') r = await storePush(need('artifact'), need('to'), { tag: flags.get('tag'), metadataFile: flags.get('metadata') });
  else if (verb === 'pull') r = await storePull(need('from'), need('out'));
  else throw new ModelshipError('input', `store: expected push or pull, got "${verb ?? ''}"`);
  out.write(JSON.stringify(r, null, 2) + '\n');
  return 0;
}

/** The CLI: same stages and inputs as the action; outputs on stdout, logs on stderr. Returns the exit code. */
export async function cli(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  try {
    if (argv[0] === '--version') {
      out.write(VERSION + '\n');
      return 0;
    }
    // the serving runtime and the store are required on use: `modelship convert` starts without them
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the serving runtime loads only for `modelship serve`
    if (argv[0] === 'serve') return await (require('../serve/main') as { serveMain: typeof ServeMain }).serveMain(argv.slice(1), out);
    if (argv[0] === 'store') return await storeMain(argv.slice(1), out);
    if (argv[0] === 'rbac') return rbacMain(argv.slice(1), out);
    const { values, json, help } = parseArgs(argv);
    if (help || values.size === 0) {
      out.write(usage(values.get('stage')));
      return help ? 0 : 2;
    }
    const cfg = readConfig((name) => values.get(name));
    const result = await runStage(cfg, consoleLogger(err));
    if (json) out.write(JSON.stringify(result.outputs, null, 2) + '\n');
    else for (const [k, v] of Object.entries(result.outputs)) out.write(`${k}=${v}\n`);
    if (!result.ok) {
      err.write(`error: ${result.failure}\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    if (isModelshipError(e)) {
      err.write(`error: ${e.message}\n`);
      return e.code === 'input' ? 2 : 1;
    }
    const failure = externalFailure(e);
    if (failure) {
      // another system failed (the GitHub API, the network): its failure, named, not a bug in modelship
      err.write(`error: ${failure.message}\n`);
      return 1;
    }
    err.write(`internal error (a bug in modelship): ${(e as Error).stack ?? String(e)}\n`);
    return 70;
  }
}
