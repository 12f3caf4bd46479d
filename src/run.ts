import { Config } from './config';
import { Logger, StageResult } from './stage';
import { runConvert } from './convert';

/** Dispatch a validated config to its stage. The action and the CLI both come through here. */
export async function runStage(cfg: Config, log: Logger): Promise<StageResult> {
  switch (cfg.stage) {
    case 'convert':
      return runConvert(cfg.convert, log);
  }
}
