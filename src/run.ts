import { Config } from './config';
import { Logger, StageResult } from './stage';
import { runConvert } from './convert';
import { runCompile } from './compile';
import { runImage } from './image';
import { runSmoke } from './smoke';

/** Dispatch a validated config to its stage. The action and the CLI both come through here. */
export async function runStage(cfg: Config, log: Logger): Promise<StageResult> {
  switch (cfg.stage) {
    case 'convert':
      return runConvert(cfg.convert, log);
    case 'compile':
      return runCompile(cfg.compile, log);
    case 'image':
      return runImage(cfg.image, log);
    case 'smoke':
      return runSmoke(cfg.smoke, log);
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
