import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { MODEL_CONFIG_PROTO, MODEL_CONFIG_PROTO_SOURCE } from '../src/formats/schema/model_config';
import { parseTritonConfig, tritonConfig } from '../src/image/triton-config';
import { tmpDir } from './helpers/caffe';
import { labDescribe } from './helpers/needs';
import { ModelConfig, RICH, SCHEMA, SEMANTIC, SEQUENCE, lenet, proto3Json, spec, ssdSpec, zooBranch } from './helpers/triton-config-cases';

// ---------------------------------------------------------------------------------------------------------------
// Independent oracle of the generated config.pbtxt and of our parser (test/triton-config.test.ts): Google's protobuf
// (Debian's protoc + python3-protobuf, under /usr/bin/python3) compiles the vendored schema and parses config text
// with google.protobuf.text_format into inference.ModelConfig.
// ---------------------------------------------------------------------------------------------------------------
const PY = '/usr/bin/python3';

// protoc and python3-protobuf: scripts/test.sh installs them (as root, with apt); without them the file is skipped,
// saying so (a failure under CI)
const describeOracle = labDescribe(['protoc']);

const ORACLE_PY = `
import json, sys
from google.protobuf import text_format, json_format
import model_config_pb2
out = []
for text in json.load(sys.stdin):
    m = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, m)
        out.append({"ok": True, "dict": json_format.MessageToDict(m, preserving_proto_field_name=True)})
    except text_format.ParseError as e:
        out.append({"ok": False, "error": str(e)})
print(json.dumps(out))
`;

type OracleResult = { ok: true; dict: Record<string, unknown> } | { ok: false; error: string };

let oracleDir: string | undefined;
function googleParse(texts: string[]): OracleResult[] {
  if (!oracleDir) {
    oracleDir = tmpDir('modelship-triton-oracle-');
    fs.writeFileSync(path.join(oracleDir, 'model_config.proto'), MODEL_CONFIG_PROTO);
    fs.writeFileSync(path.join(oracleDir, 'oracle.py'), ORACLE_PY);
    const c = spawnSync('protoc', [`-I${oracleDir}`, `--python_out=${oracleDir}`, path.join(oracleDir, 'model_config.proto')], { encoding: 'utf8' });
    if (c.status !== 0) throw new Error(`protoc refused the vendored schema:\n${c.stderr}`);
  }
  const r = spawnSync(PY, [path.join(oracleDir, 'oracle.py')], {
    input: JSON.stringify(texts),
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: oracleDir, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION: 'python' },
  });
  if (r.status !== 0) throw new Error(`oracle failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as OracleResult[];
}

afterAll(() => {
  if (oracleDir) fs.rmSync(oracleDir, { recursive: true, force: true });
});

describeOracle("agreement with Google's protobuf text-format parser", () => {
  test('protoc compiles the vendored schema, which names its source commit', () => {
    expect(MODEL_CONFIG_PROTO_SOURCE.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(googleParse(['name: "x"'])).toEqual([{ ok: true, dict: { name: 'x' } }]);
  });

  test('generated configs and hand-written ones read the same with both parsers', () => {
    const texts = [
      tritonConfig({
        name: 'lenet',
        platform: 'onnxruntime_onnx',
        maxBatchSize: 16,
        inputs: lenet.inputs,
        outputs: lenet.outputs,
        maxQueueDelayUs: 250,
        gpu: false,
      }),
      tritonConfig(spec({ name: 'googlenet', platform: 'tensorrt_plan', maxBatchSize: 32, maxQueueDelayUs: 5000 })),
      tritonConfig({
        name: 'zoo_branch',
        platform: 'onnxruntime_onnx',
        maxBatchSize: 4,
        inputs: zooBranch.inputs,
        outputs: zooBranch.outputs,
        maxQueueDelayUs: 0,
        gpu: true,
      }),
      tritonConfig(
        spec({
          name: 'nobatch',
          maxBatchSize: 0,
          inputs: [{ name: 'in "q"\\', shape: ['N', 3, 'H', 'W'], elemType: 7 }],
          outputs: [{ name: 'é', shape: [2], elemType: 9 }],
        }),
      ),
      RICH,
      SEQUENCE,
    ];
    const google = googleParse(texts);
    texts.forEach((text, i) => {
      const g = google[i];
      if (!g.ok) throw new Error(`Google's parser refused config #${i}: ${g.error}\n${text}`);
      const ours = parseTritonConfig(text, `config${i}.pbtxt`);
      expect(proto3Json(ours, ModelConfig())).toEqual(g.dict);
    });
    // a few fields of Google's reading, checked directly (not through our normalisation)
    const [lenetG, googG, zooG, nobatchG, richG, seqG] = google.map((g) => (g as { dict: Record<string, any> }).dict);
    expect(lenetG.input).toEqual([{ name: 'data', data_type: 'TYPE_FP32', dims: ['1', '28', '28'] }]);
    expect(lenetG.instance_group).toEqual([{ count: 1, kind: 'KIND_CPU' }]);
    expect(lenetG.dynamic_batching).toEqual({ max_queue_delay_microseconds: '250' });
    expect(googG.platform).toBe('tensorrt_plan');
    expect(googG.instance_group).toEqual([{ count: 1, kind: 'KIND_GPU' }]);
    expect(zooG.output.find((o: any) => o.name === 'total')).toEqual({ name: 'total', data_type: 'TYPE_FP32', dims: ['1'], reshape: {} });
    expect(nobatchG.input[0]).toEqual({ name: 'in "q"\\', data_type: 'TYPE_INT64', dims: ['-1', '3', '-1', '-1'] });
    expect(nobatchG.output[0]).toEqual({ name: 'é', data_type: 'TYPE_BOOL', dims: ['2'] });
    expect(nobatchG.dynamic_batching).toBeUndefined();
    expect(richG.name).toBe('ensemble');
    expect(richG.parameters).toEqual({ a: { string_value: '2' }, '': { string_value: 'keyless' } });
    expect(richG.dynamic_batching.priority_queue_policy).toEqual({ '1': { max_queue_size: 3 }, '2': { allow_timeout_override: true } });
    expect(seqG.sequence_batching.oldest).toEqual({ max_candidate_sequences: 4, preferred_batch_size: [2] });
  });

  test("a detection model's config reads the same with Google's parser: max_batch_size 0, full dims, no dynamic_batching", () => {
    const text = tritonConfig(ssdSpec({ gpu: true }));
    const [g] = googleParse([text]);
    if (!g.ok) throw new Error(`Google's parser refused the detection config: ${g.error}\n${text}`);
    expect(proto3Json(parseTritonConfig(text, 'ssd/config.pbtxt'), ModelConfig())).toEqual(g.dict);
    // (proto3 JSON leaves out max_batch_size 0, a default)
    expect(g.dict.max_batch_size).toBeUndefined();
    expect(g.dict.input).toEqual([{ name: 'data', data_type: 'TYPE_FP32', dims: ['-1', '3', '32', '32'] }]);
    expect(g.dict.output).toEqual([{ name: 'detection_out', data_type: 'TYPE_FP32', dims: ['1', '1', '-1', '7'] }]);
    expect(g.dict.dynamic_batching).toBeUndefined();
  });

  test("what our parser refuses as text format or schema, Google's parser refuses too", () => {
    const google = googleParse(SCHEMA.map((c) => c[1]));
    SCHEMA.forEach(([what], i) => {
      expect({ what, ok: google[i].ok }).toEqual({ what, ok: false });
    });
    // spot-check Google's reason for the two the brief names
    expect((google[0] as { error: string }).error).toMatch(/has no field named "max_batch"/);
    expect((google[2] as { error: string }).error).toMatch(/has no value named TYPE_FLOAT32/);
  });

  test("the semantic refusals are Triton's rules, not the schema's: Google's parser accepts those configs", () => {
    const google = googleParse(SEMANTIC.map((c) => c[1]));
    SEMANTIC.forEach(([what], i) => {
      expect({ what, ok: google[i].ok }).toEqual({ what, ok: true });
    });
  });
});
