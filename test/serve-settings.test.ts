// The server's settings, defined once (src/protocol/serve-settings.ts): its flags, environment, defaults and --help.
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './helpers/caffe';
import { SERVE_SETTINGS, ServeSetting, SettingValue, serveSettings, serveUsage } from '../src/protocol/serve-settings';
import { GOOGLENET_PREPROCESS } from '../src/protocol/pixels';
import { GRPC_PORT, METRICS_PORT, SERVER_DRAIN_TIMEOUT_S, SERVING_PORT } from '../src/protocol/runtime';
import { DEFAULT_SERVE, ServeOptions } from '../src/serve/options';
import { SERVE_USAGE, serveOptions } from '../src/serve/main';

const labelsFile = path.join(tmpDir('serve-settings-'), 'labels.txt');
fs.writeFileSync(labelsFile, 'cat\n dog \n\n');
const HEX_KEY = 'ab'.repeat(32);

/** For each kind of setting: a value to give, and what the server's option then holds. */
const SAMPLES: Record<SettingValue, [string, (s: ServeSetting) => unknown]> = {
  text: ['given-text', () => 'given-text'],
  integer: ['3', () => 3],
  seconds: ['3', () => 3000],
  boolean: ['off', () => false],
  bytes: ['2Mi', () => 2 * 2 ** 20],
  fraction: ['0.25', () => 0.25],
  'port-or-off': ['9102', () => 9102],
  provider: ['cuda,cpu', () => ({ requested: 'cuda,cpu', wanted: 'cuda', fallback: true })],
  'labels-file': [labelsFile, () => ['cat', 'dog']],
  'preprocess-json': ['{"mean":[104,177,123]}', () => ({ ...GOOGLENET_PREPROCESS, mean: [104, 177, 123] })],
  'address-list': ['10.0.0.0/8, ::1,', () => ['10.0.0.0/8', '::1']],
  'api-key': ['s3cret', () => 's3cret'],
  'model-key': [HEX_KEY, () => Buffer.from(HEX_KEY, 'hex')],
};

const noLog = () => undefined;

describe('serve settings, defined once', () => {
  const all = serveSettings();

  test('names are unique: flags (and aliases), environment variables, options', () => {
    const flags = all.flatMap(([, s]) => (s.flag ? [s.flag, ...(s.aliases ?? [])] : []));
    const envs = all.flatMap(([, s]) => [s.env, ...(s.fileEnv ? [s.fileEnv] : [])]);
    const options = all.map(([, s]) => s.option);
    expect(new Set(flags).size).toBe(flags.length);
    expect(new Set(envs).size).toBe(envs.length);
    expect(new Set(options).size).toBe(options.length);
    // modelship's own variables are MODELSHIP_*; PORT and HOST are the conventional ones
    for (const env of envs) expect(env).toMatch(/^(MODELSHIP_[A-Z_]+|PORT|HOST)$/);
  });

  const withFlag = (kinds?: SettingValue[]) =>
    serveSettings().flatMap(([, s]) => (s.flag && (!kinds || kinds.includes(s.value)) ? [[s.flag, s] as const] : []));

  test.each(withFlag())('--%s is read from its flag (and aliases) and from its environment variable', (flag, s) => {
    const [given, expected] = SAMPLES[s.value];
    const base = flag === 'model' ? [] : ['--model', 'm.onnx'];
    const fromFlag = serveOptions([...base, `--${s.flag}`, given], {}, noLog);
    expect(fromFlag[s.option as keyof ServeOptions]).toEqual(expected(s));
    const fromEnv = serveOptions(base, { [s.env]: given }, noLog);
    expect(fromEnv[s.option as keyof ServeOptions]).toEqual(expected(s));
    for (const alias of s.aliases ?? []) expect(serveOptions([...base, `--${alias}`, given], {}, noLog)[s.option as keyof ServeOptions]).toEqual(expected(s));
  });

  test.each(
    serveSettings()
      .filter(([, s]) => !s.flag)
      .map(([, s]) => [s.env, s] as const),
  )('%s is read from the environment only', (_, s) => {
    const [given, expected] = SAMPLES[s.value];
    expect(serveOptions(['--model', 'm.onnx'], { [s.env]: given }, noLog)[s.option as keyof ServeOptions]).toEqual(expected(s));
  });

  test('secrets may come from a file the *_FILE variable names', () => {
    const dir = tmpDir('serve-secrets-');
    fs.writeFileSync(path.join(dir, 'api'), 's3cret\n');
    fs.writeFileSync(path.join(dir, 'key'), HEX_KEY);
    const o = serveOptions(
      ['--model', 'm.onnx'],
      { [SERVE_SETTINGS.apiKey.fileEnv]: path.join(dir, 'api'), [SERVE_SETTINGS.modelKey.fileEnv]: path.join(dir, 'key') },
      noLog,
    );
    expect(o.apiKey).toBe('s3cret');
    expect(o.modelKey).toEqual(Buffer.from(HEX_KEY, 'hex'));
  });

  test('a flag wins over its environment variable; an empty variable is unset', () => {
    expect(serveOptions(['--model', 'm.onnx', '--max-batch-size', '4'], { MODELSHIP_MAX_BATCH_SIZE: '16' }, noLog).maxBatchSize).toBe(4);
    expect(serveOptions(['--model', 'm.onnx'], { MODELSHIP_MAX_BATCH_SIZE: '' }, noLog).maxBatchSize).toBe(8);
    expect(serveOptions(['--model', 'm.onnx', '--model-name', 'a', '--name', 'b'], {}, noLog).modelName).toBe('a');
  });

  test.each(withFlag(['integer', 'seconds', 'boolean', 'bytes', 'fraction', 'port-or-off', 'provider', 'address-list']))(
    'a bad --%s is refused naming its flag and variable',
    (flag, s) => {
      expect(() => serveOptions(['--model', 'm.onnx', `--${flag}`, 'lots'], {}, noLog)).toThrow(`--${flag} / ${s.env} must be`);
    },
  );

  test('the model is required; unknown flags and bare arguments are refused', () => {
    expect(() => serveOptions([], {}, noLog)).toThrow('serve needs --model or MODELSHIP_MODEL');
    expect(() => serveOptions(['--model', ''], {}, noLog)).toThrow('serve needs --model or MODELSHIP_MODEL');
    expect(() => serveOptions(['--model', 'm.onnx', '--threads', '2'], {}, noLog)).toThrow('unknown serve flag --threads');
    expect(() => serveOptions(['m.onnx'], {}, noLog)).toThrow('unexpected argument "m.onnx"');
    expect(() => serveOptions(['--model'], {}, noLog)).toThrow('flag --model needs a value');
  });

  test('--help lists every setting: its flag (and aliases), variable, default and help line', () => {
    expect(SERVE_USAGE).toBe(serveUsage());
    for (const [, s] of all) {
      if (s.flag) expect(SERVE_USAGE).toContain(`--${s.flag}`);
      for (const alias of s.aliases ?? []) expect(SERVE_USAGE).toContain(`--${alias}`);
      expect(SERVE_USAGE).toContain(s.env);
      if (s.fileEnv) expect(SERVE_USAGE).toContain(s.fileEnv);
      if (s.default !== undefined) expect(SERVE_USAGE).toContain(`(default ${s.default})`);
      expect(SERVE_USAGE).toContain(s.help);
    }
  });

  test('the defaults: what the server ran with before they were a table', () => {
    const cli = serveOptions(['--model', 'm.onnx'], {}, noLog);
    const expected = {
      modelName: 'model',
      modelVersion: '1',
      host: '0.0.0.0',
      port: SERVING_PORT,
      maxBatchSize: 8,
      maxQueueDelayMs: 2,
      idleFlush: true,
      provider: { requested: 'cpu', wanted: 'cpu', fallback: false },
      intraOpThreads: 0,
      maxBodyBytes: 64 * 2 ** 20,
      maxInflightBytes: 0,
      headerTimeoutMs: 10_000,
      bodyTimeoutMs: 60_000,
      authFailureLimit: 10,
      trustedProxies: [],
      decodeThreads: 1,
      preprocess: GOOGLENET_PREPROCESS,
      topK: 5,
      detectionThreshold: 0.5,
      drainDelayMs: 0,
      drainTimeoutMs: SERVER_DRAIN_TIMEOUT_S * 1000,
    };
    expect(DEFAULT_SERVE).toEqual(expected);
    // the CLI opens the metrics-only and the gRPC listeners by default; startServer from DEFAULT_SERVE only when asked
    expect(cli).toEqual({
      ...expected,
      modelPath: 'm.onnx',
      metricsPort: METRICS_PORT,
      grpcPort: GRPC_PORT,
      apiKey: undefined,
      modelKey: undefined,
      labels: undefined,
      log: noLog,
    });
    expect(serveOptions(['--model', 'm.onnx', '--metrics-port', 'off'], {}, noLog).metricsPort).toBeUndefined();
    expect(serveOptions(['--model', 'm.onnx', '--grpc-port', 'off'], {}, noLog).grpcPort).toBeUndefined();
    expect(serveOptions(['--model', 'm.onnx'], { MODELSHIP_GRPC_PORT: '9001' }, noLog).grpcPort).toBe(9001);
  });
});
