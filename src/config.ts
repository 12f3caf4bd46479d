import { InputSource, InputSpec, OutputSpec, Reader, Stage, STAGES, fail, withInputsMap } from './inputs';
import { SHARED_INPUTS, SHARED_OUTPUTS, readSharedConfig } from './shared/inputs';
import { CONVERT_INPUTS, CONVERT_OUTPUTS, ConvertConfig, readConvertConfig } from './convert/inputs';
import { COMPILE_INPUTS, COMPILE_OUTPUTS, CompileConfig, readCompileConfig } from './compile/inputs';
import { IMAGE_INPUTS, IMAGE_OUTPUTS, ImageConfig, readImageConfig } from './image/inputs';
import { SIGN_INPUTS, SIGN_OUTPUTS, SignConfig, readSignConfig } from './sign/inputs';
import { SMOKE_INPUTS, SMOKE_OUTPUTS, SmokeConfig, readSmokeConfig } from './smoke/inputs';
import { ROLLOUT_INPUTS, ROLLOUT_OUTPUTS, RolloutConfig, readRolloutConfig } from './rollout/inputs';
import { PREVIEW_INPUTS, PREVIEW_OUTPUTS, PreviewConfig, CleanupConfig, readPreviewConfig } from './preview/inputs';

/**
 * The one surface shared by the action and the CLI: every action input is a CLI flag of the same name
 * (`--per-layer`), read once into a typed Config. Each stage declares its inputs and outputs beside it
 * (src/<stage>/inputs.ts; shared ones in src/shared/inputs.ts); here they are put together. action.yml and the
 * README tables are generated from INPUTS and OUTPUTS and checked against them by a test, so the three cannot drift.
 */

export { STAGES, STAGE_INCLUDES, inputUsedBy, parseBoolean } from './inputs';
export type { Stage, InputSpec, OutputSpec, InputSource } from './inputs';
export type { ConvertConfig, CompileConfig, ImageConfig, SignConfig, SmokeConfig, RolloutConfig, PreviewConfig, CleanupConfig };

export const INPUTS: InputSpec[] = [
  ...SHARED_INPUTS,
  ...CONVERT_INPUTS,
  ...COMPILE_INPUTS,
  ...IMAGE_INPUTS,
  ...SIGN_INPUTS,
  ...SMOKE_INPUTS,
  ...ROLLOUT_INPUTS,
  ...PREVIEW_INPUTS,
];
export const OUTPUTS: OutputSpec[] = [
  ...CONVERT_OUTPUTS,
  ...COMPILE_OUTPUTS,
  ...SHARED_OUTPUTS,
  ...IMAGE_OUTPUTS,
  ...SIGN_OUTPUTS,
  ...SMOKE_OUTPUTS,
  ...ROLLOUT_OUTPUTS,
  ...PREVIEW_OUTPUTS,
];

export interface Config {
  stage: Stage;
  convert: ConvertConfig;
  compile: CompileConfig;
  image: ImageConfig;
  sign: SignConfig;
  smoke: SmokeConfig;
  rollout: RolloutConfig;
  preview: PreviewConfig;
  cleanup: CleanupConfig;
}

/** Read and validate every input once, before any work. Unknown stage, missing or malformed values fail here. */
export function readConfig(given: InputSource): Config {
  const stageRaw = (given('stage') ?? '').trim();
  if (stageRaw === '') fail('stage', `is required: one of ${STAGES.join(', ')}`);
  if (!(STAGES as readonly string[]).includes(stageRaw)) fail('stage', `unknown stage "${stageRaw}"; expected one of ${STAGES.join(', ')}`);
  const stage = stageRaw as Stage;
  const source = withInputsMap(given, INPUTS, stage);
  const r = new Reader(source, INPUTS, stage);
  for (const s of INPUTS) {
    if (s.required?.includes(stage) && r.raw(s.name) === '') fail(s.name, `is required for stage ${stage}`);
  }
  const shared = readSharedConfig(r);
  const rollout = readRolloutConfig(r, shared);
  return {
    stage,
    convert: readConvertConfig(r, shared),
    compile: readCompileConfig(r, shared),
    image: readImageConfig(r, shared),
    sign: readSignConfig(r, shared),
    smoke: readSmokeConfig(r, shared),
    rollout,
    ...readPreviewConfig(r, shared, rollout),
  };
}
