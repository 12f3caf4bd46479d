import { Config } from './config';
import { Logger, StageResult } from './stage';

/* eslint-disable @typescript-eslint/no-require-imports -- a stage's modules load when it runs (below) */
/**
 * Dispatch a validated config to its stage. The action and the CLI both come through here. A stage's modules
 * are required when it runs (kept in the bundle's main file: required, not imported), so one stage does not
 * start up the others.
 */
export async function runStage(cfg: Config, log: Logger): Promise<StageResult> {
  switch (cfg.stage) {
    case 'convert':
      return (require('./convert') as typeof import('./convert')).runConvert(cfg.convert, log);
    case 'compile':
      return (require('./compile') as typeof import('./compile')).runCompile(cfg.compile, log);
    case 'image':
      return (require('./image') as typeof import('./image')).runImage(cfg.image, log);
    case 'sign':
      return (require('./sign') as typeof import('./sign')).runSign(cfg.sign, log);
    case 'smoke':
      return (require('./smoke') as typeof import('./smoke')).runSmoke(cfg.smoke, log);
    case 'rollout':
      // loaded on use: @kubernetes/client-node is large and ESM-only
      return (await import('./rollout')).runRollout(cfg.rollout, log);
    case 'preview':
      return (await import('./preview')).runPreview(cfg.preview, log);
    case 'cleanup':
      return (await import('./preview')).runCleanup(cfg.cleanup, log);
    case 'pipeline':
      return (await import('./pipeline')).runPipeline(cfg, log);
  }
}
/* eslint-enable @typescript-eslint/no-require-imports -- runStage ends here */
