/**
 * Writes src/protocol/grpc-service.json: the KServe v2 / Triton gRPC protocol (package `inference`:
 * GRPCInferenceService and the model configuration messages) as protobufjs JSON, taken from the descriptors NVIDIA
 * publishes in the tritonclient wheel on PyPI (tritonclient/grpc/service_pb2.py, model_config_pb2.py, generated
 * from Triton's grpc_service.proto and model_config.proto). The venv of the tests' Triton client holds that wheel
 * (test/requirements-triton-client.txt); test/grpc-proto.tools.test.ts checks the committed file against it.
 *
 *   tsx scripts/gen-grpc-proto.ts [python]   (default: .venv-triton-client/bin/python)
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DUMP_DESCRIPTORS, grpcServiceJson } from './grpc-proto';

const python = process.argv[2] ?? path.join(__dirname, '..', '.venv-triton-client/bin/python');
const out = path.join(__dirname, '..', 'src/protocol/grpc-service.json');
fs.writeFileSync(out, grpcServiceJson(execFileSync(python, ['-c', DUMP_DESCRIPTORS], { maxBuffer: 1 << 24 })));
console.log(`wrote ${path.relative(process.cwd(), out)}`);
