import * as protobuf from 'protobufjs';

/**
 * A vendored .proto schema as a protobufjs root, parsed and resolved on first use and kept for the process (field
 * names as in the .proto: keepCase). One loader for every schema in src/formats/schema/. The root is the same object
 * on every call: the convert stage's plugins add their messages to Caffe's.
 */
export function lazyProtoRoot(proto: string): () => protobuf.Root {
  let root: protobuf.Root | undefined;
  return () => {
    if (!root) {
      root = protobuf.parse(proto, { keepCase: true }).root;
      root.resolveAll();
    }
    return root;
  };
}
