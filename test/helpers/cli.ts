import { Writable } from 'stream';
import { cli } from '../../src/cli';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void) {
    this.text += chunk.toString();
    cb();
  }
}

/** Run the CLI in-process, capturing stdout (outputs) and stderr (logs, errors). */
export async function runCli(args: string[]) {
  const out = new Capture();
  const err = new Capture();
  const code = await cli(args, out, err);
  return { code, stdout: out.text, stderr: err.text, json: () => JSON.parse(out.text) };
}
