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

interface JsonNamespace {
  nested?: Record<string, JsonNamespace>;
  fields?: Record<string, { rule?: string; type: string; keyType?: string; id: number }>;
  options?: Record<string, unknown>;
}

/**
 * The protobufjs JSON of a FileDescriptorSet (what @grpc/proto-loader's fromJSON loads), as the committed file reads.
 * protobufjs's fromDescriptor keeps a `map<K, V>` field as the descriptor has it, a repeated `XEntry` message
 * (`map_entry` option): the same bytes on the wire, but a list of {key, value} in the code. Each is made a map field
 * again, as the .proto declares it, so parameters and settings read and write as objects.
 */
export function grpcServiceJson(fds: Uint8Array): string {
  const set = descriptor.FileDescriptorSet.decode(fds);
  const root = (protobuf.Root as unknown as { fromDescriptor(d: unknown): protobuf.Root }).fromDescriptor(set);
  const json = root.toJSON({ keepComments: false }) as JsonNamespace;
  // every map-entry message, by its full name
  const entries = new Map<string, { parent: JsonNamespace; name: string; entry: JsonNamespace }>();
  const collect = (ns: JsonNamespace, prefix: string) => {
    for (const [name, child] of Object.entries(ns.nested ?? {})) {
      const f = child.fields ?? {};
      const isEntry = name.endsWith('Entry') && Object.keys(f).join() === 'key,value' && f.key.id === 1 && f.value.id === 2;
      if (child.options?.map_entry && isEntry) entries.set(`${prefix}.${name}`, { parent: ns, name, entry: child });
      // (protobufjs 7 also marks some messages that merely enclose a map entry as map_entry: not so in the .proto)
      else if (child.options?.map_entry) {
        delete child.options.map_entry;
        if (Object.keys(child.options).length === 0) delete child.options;
      }
      collect(child, `${prefix}.${name}`);
    }
  };
  collect(json, '');
  const remap = (ns: JsonNamespace) => {
    for (const [name, field] of Object.entries(ns.fields ?? {})) {
      const e = entries.get(field.type);
      if (!e) continue;
      const { key, value } = e.entry.fields!;
      ns.fields![name] = { keyType: key.type, type: value.type, id: field.id };
    }
    for (const child of Object.values(ns.nested ?? {})) remap(child);
  };
  remap(json);
  for (const { parent, name } of entries.values()) delete parent.nested![name];
  return `${JSON.stringify(json, null, 1)}\n`;
}
