import { startServer } from './server';
import { readSettings, ServeOptions } from './options';
import { ModelshipError } from '../util/errors';
import { METRICS_PORT } from '../protocol/runtime';
import { serveSettings, serveUsage } from '../protocol/serve-settings';

/**
 * `modelship serve`: the serving runtime inside the image. Configured by flags or, in a container, by the
 * environment (flags win): every setting, its flag, variable, default and meaning, is a row of SERVE_SETTINGS
 * (protocol/serve-settings.ts), and `modelship serve --help` prints them all.
 */
export function serveOptions(argv: string[], env: NodeJS.ProcessEnv, log: (l: string) => void): ServeOptions {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ModelshipError('input', `unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    if (eq > 0) flags.set(arg.slice(2, eq), arg.slice(eq + 1));
    else {
      const value = argv[++i];
      if (value === undefined) throw new ModelshipError('input', `flag ${arg} needs a value`);
      flags.set(arg.slice(2), value);
    }
  }
  const known = new Set(serveSettings().flatMap(([, s]) => (s.flag ? [s.flag, ...(s.aliases ?? [])] : [])));
  for (const k of flags.keys()) if (!known.has(k)) throw new ModelshipError('input', `unknown serve flag --${k}`, { field: k });
  // the flag, else its first alias given
  const given = (s: { flag?: string; aliases?: readonly string[] }) =>
    s.flag ? [s.flag, ...(s.aliases ?? [])].map((f) => flags.get(f)).find((v) => v !== undefined) : undefined;
  return readSettings(given, env, log);
}

/** The metrics-only listener of `modelship serve` (Triton's metrics port); `--metrics-port off` has none. */
export const DEFAULT_METRICS_PORT = METRICS_PORT;

export const SERVE_USAGE = serveUsage();

/** Run the server until SIGTERM/SIGINT, then drain and exit 0. `--help` prints the flags. */
export async function serveMain(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(SERVE_USAGE);
    return 0;
  }
  const log = (l: string) => process.stderr.write(`[modelship serve] ${l}\n`);
  const opts = serveOptions(argv, process.env, log);
  const srv = await startServer(opts);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log(`${sig} received`);
      void srv.drain().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
