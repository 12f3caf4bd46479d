import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import serviceJson from './grpc-service.json';

/**
 * The KServe v2 protocol's gRPC form: `inference.GRPCInferenceService` as Triton publishes it (grpc_service.proto and
 * model_config.proto, taken from the tritonclient wheel: scripts/gen-grpc-proto.ts), loaded with @grpc/proto-loader.
 * Messages are plain objects with the proto's own field names (snake_case), int64s as JS numbers, bytes as Buffers,
 * enums by name, oneofs named (`parameter_choice: 'string_param'`), and absent fields left out (no defaults filled).
 */
export const GRPC_LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, bytes: Buffer, defaults: false, oneofs: true };

/** The full name of the service, as in a gRPC path (`/inference.GRPCInferenceService/ModelInfer`). */
export const GRPC_SERVICE = 'inference.GRPCInferenceService';

let loaded: grpc.GrpcObject | undefined;

/** The protocol's package definition, loaded once. */
export function grpcPackage(): grpc.GrpcObject {
  loaded ??= grpc.loadPackageDefinition(protoLoader.fromJSON(serviceJson as Parameters<typeof protoLoader.fromJSON>[0], GRPC_LOADER_OPTIONS));
  return loaded;
}

/** The service's definition (for a server's addService) and its client constructor. */
export function inferenceService(): { definition: grpc.ServiceDefinition; Client: grpc.ServiceClientConstructor } {
  const ctor = (grpcPackage().inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  return { definition: ctor.service, Client: ctor };
}
