import * as protobuf from 'protobufjs';
import * as descriptor from 'protobufjs/ext/descriptor';

/**
 * Python that writes, on stdout, a FileDescriptorSet of the gRPC protocol's two files as the installed tritonclient
 * wheel declares them (model_config.proto, then grpc_service.proto, which imports it).
 */
export const DUMP_DESCRIPTORS = `
import sys
from google.protobuf import descriptor_pb2
from tritonclient.grpc import model_config_pb2, service_pb2
fds = descriptor_pb2.FileDescriptorSet()
for m in (model_config_pb2, service_pb2):
    m.DESCRIPTOR.CopyToProto(fds.file.add())
sys.stdout.buffer.write(fds.SerializeToString())
`;

/** The protobufjs JSON of a FileDescriptorSet (what @grpc/proto-loader's fromJSON loads), as the committed file reads. */
export function grpcServiceJson(fds: Uint8Array): string {
  const set = descriptor.FileDescriptorSet.decode(fds);
  const root = (protobuf.Root as unknown as { fromDescriptor(d: unknown): protobuf.Root }).fromDescriptor(set);
  return `${JSON.stringify(root.toJSON({ keepComments: false }), null, 1)}\n`;
}
