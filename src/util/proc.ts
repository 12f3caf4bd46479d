import { spawn } from 'child_process';
import { ModelshipError } from './errors';

export interface ProcResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command (no shell), capture its output; a missing binary is a clear error. */
export function runProcess(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; onLine?: (line: string) => void } = {},
): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    const lines = (chunk: string) => {
      if (!opts.onLine) return;
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop()!;
      parts.forEach(opts.onLine);
    };
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      lines(c.toString());
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      lines(c.toString());
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new ModelshipError('io', e.code === 'ENOENT' ? `${cmd} is not installed or not on PATH` : `cannot run ${cmd}: ${e.message}`)),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}
