// `modelship serve` in a process of its own, run from source (the tests measure its RSS and send it signals):
//   node --require tsx/cjs test/helpers/serve-main.ts --model m.onnx [serve flags]
import { serveMain } from '../../src/serve/main';

serveMain(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`[modelship serve] ${e.message}\n`);
    process.exit(1);
  },
);
