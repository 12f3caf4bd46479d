import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DUMP_DESCRIPTORS, grpcServiceJson } from '../scripts/grpc-proto';
import { GRPC_SERVICE, inferenceService } from '../src/protocol/grpc';
import { REPO } from './helpers/caffe';
import { tritonClientPython } from './helpers/triton-lab';

// The gRPC protocol modelship serves and speaks (src/protocol/grpc-service.json) is what NVIDIA publishes in the
// tritonclient wheel (the venv .venv-triton-client): regenerated from the installed wheel's descriptors, it is the
// committed file, byte for byte. A stale or hand-edited file fails here; `tsx scripts/gen-grpc-proto.ts` rewrites it.

test("src/protocol/grpc-service.json is the tritonclient wheel's grpc_service.proto and model_config.proto", () => {
  const fds = execFileSync(tritonClientPython(), ['-c', DUMP_DESCRIPTORS], { maxBuffer: 1 << 24 });
  const committed = fs.readFileSync(path.join(REPO, 'src/protocol/grpc-service.json'), 'utf8');
  expect(grpcServiceJson(fds) === committed).toBe(true);
});

test('maps are map fields, as the .proto declares them (protobufjs keeps them as repeated entry messages)', () => {
  const json = fs.readFileSync(path.join(REPO, 'src/protocol/grpc-service.json'), 'utf8');
  expect(json).not.toMatch(/Entry"|map_entry/);
  const { definition } = inferenceService();
  const infer = definition.ModelInfer;
  expect(infer.path).toBe(`/${GRPC_SERVICE}/ModelInfer`);
  // a request's parameters go on the wire as the map's entries and come back as an object
  const msg = {
    model_name: 'm',
    parameters: { sequence_id: { int64_param: 7 } },
    outputs: [{ name: 'prob', parameters: { classification: { int64_param: 3 } } }],
  };
  const back = infer.requestDeserialize(infer.requestSerialize(msg));
  expect(back).toMatchObject({
    model_name: 'm',
    outputs: [{ name: 'prob', parameters: { classification: { int64_param: 3, parameter_choice: 'int64_param' } } }],
  });
  expect(back.parameters.sequence_id.int64_param).toBe(7);
});
