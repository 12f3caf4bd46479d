import { Config } from '../config';
import { Logger, StageResult } from '../stage';
import { runConvert } from '../convert';
import { runCompile } from '../compile';
import { runImage } from '../image';
import { runSmoke } from '../smoke';

/**
 * The whole main job in one step: convert → compile → image → smoke → rollout, each stage's outputs wired into the
 * next (the ONNX into compile, the artifact and the parity result into image, the pushed digest into smoke and
 * rollout). Stops at the first stage that fails; the outputs and the summary hold every stage that ran.
 */
export async function runPipeline(cfg: Config, log: Logger): Promise<StageResult> {
  const outputs: Record<string, string> = {};
  const summaries: string[] = [];
  const step = async (name: string, fn: () => Promise<StageResult>): Promise<StageResult> => {
    const r = await log.group(`modelship ${name}`, fn);
    Object.assign(outputs, r.outputs);
    summaries.push(r.summary);
    return r;
  };
  const done = (r: StageResult, stage: string): StageResult => ({
    outputs,
    summary: summaries.join('\n'),
    ok: r.ok,
    failure: r.ok ? undefined : `${stage}: ${r.failure}`,
  });

  const convert = await step('convert', () => runConvert(cfg.convert, log));
  if (!convert.ok) return done(convert, 'convert');
  const compile = await step('compile', () => runCompile({ ...cfg.compile, model: convert.outputs['onnx-path'] }, log));
  if (!compile.ok) return done(compile, 'compile');
  const image = await step('image', () => runImage({ ...cfg.image, model: compile.outputs['artifact-path'], parity: convert.outputs.parity }, log));
  if (!image.ok) return done(image, 'image');
  const smoke = await step('smoke', () => runSmoke({ ...cfg.smoke, image: image.outputs.image }, log));
  if (!smoke.ok) return done(smoke, 'smoke');
  const { runRollout } = await import('../rollout');
  const rollout = await step('rollout', () => runRollout({ ...cfg.rollout, image: image.outputs.image }, log));
  return done(rollout, 'rollout');
}
