// The architecture of src/, as rules: `npm run lint:deps` (run by scripts/test.sh, hence .ci/run) fails on any import
// that breaks them. README's "How it is built" shows the same map; test/layers.test.ts keeps the two in step.
//
// Layers, bottom to top. A module may import its own layer and the layers below it, never one above. Type-only
// imports count (tsPreCompilationDeps): a layer's types are part of what it depends on.
const LAYERS = [
  {
    // Plain helpers that know nothing of models or stages: errors, files, processes, HTTP, ELF and the dynamic
    // loader's listing, .npy arrays, ONNX Runtime's loader, the tool cache, Docker's registry login.
    name: 'util',
    path: '^src/util/',
  },
  {
    // File formats: the vendored Caffe, ONNX and Triton model_config schemas (src/formats/schema/), the one lazy
    // proto-root loader (proto.ts), the protobuf text format (prototxt, config.pbtxt) and what an ONNX file declares
    // (onnxinfo.ts).
    name: 'formats',
    path: '^src/formats/',
  },
  {
    // The serving protocol, shared by the server and its clients: the KServe v2 codec and classification extension,
    // the KServe client (transport, which runtime answers, where the model runs, sample images through /infer or
    // /detect), detection tables, pixels into tensors and their preprocessing, model encryption at rest, the two
    // serving runtimes and their ports, and the modelship server's settings (flags, environment, defaults: read by
    // serve/, named by the image, smoke and rollout stages that configure it).
    name: 'protocol',
    path: '^src/protocol/',
  },
  {
    // What every stage is written against: how inputs are declared and read (inputs.ts), the Stage result and
    // Logger (stage.ts), modelship's version (version.ts).
    name: 'contracts',
    path: '^src/(inputs|stage|version)\\.ts$',
  },
  {
    // What several stages use, below all of them: inputs read by more than one stage, the Caffe reference directory,
    // output comparison and the end-to-end parity gate (convert, compile), golden requests (smoke, rollout), the
    // OCI registry client (image, smoke, rollout, preview, store), TensorRT versions and plan checks (compile, image),
    // cosign and the one sign-and-attest sequence (attest.ts: image, sign; verify-image.ts: smoke, rollout).
    name: 'shared',
    path: '^src/shared/',
  },
  {
    // The stages, each a room of its own (see no-cross-stage), and serve, the model server shipped in the images.
    name: 'stages',
    path: '^src/(convert|compile|image|sign|smoke|rollout|preview|store|serve)/',
  },
  {
    // What puts stages together: config.ts (every stage's inputs into one Config), run.ts (a stage by name),
    // pipeline/ (five stages in a row), docs.ts (action.yml and the README tables from the inputs).
    name: 'composition',
    path: '^src/((config|run|docs)\\.ts$|pipeline/)',
  },
  {
    // The front doors: the action (action/), the CLI (cli/), and index.ts, which picks one (or a serving worker).
    name: 'entry',
    path: '^src/(index\\.ts$|action/|cli/)',
  },
];

const STAGES = '(convert|compile|image|sign|smoke|rollout|preview|store|serve)';
const LAYERED = LAYERS.map((l) => l.path).join('|');

const noUpward = LAYERS.slice(0, -1).map((layer, i) => {
  const below = LAYERS.slice(0, i + 1).map((l) => l.name);
  const above = LAYERS.slice(i + 1).map((l) => l.path);
  return {
    name: `no-upward-from-${layer.name}`,
    comment: `${layer.name} may import only ${below.join(', ')}: what is shared lives below its users`,
    severity: 'error',
    from: { path: layer.path },
    to: { path: above.join('|') },
  };
});

module.exports = {
  forbidden: [
    ...noUpward,
    {
      name: 'in-a-layer',
      comment: 'Every module of src/ is in one of the layers above: a new folder or top-level file is given its place in LAYERS first.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/', pathNot: LAYERED },
    },
    {
      name: 'in-a-layer-importer',
      comment: 'Every module of src/ is in one of the layers above (this one imports and is in none).',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERED },
      to: {},
    },
    {
      name: 'no-cross-stage',
      comment:
        "A stage does not import another stage's modules: what two stages need moves down (to shared/, protocol/, formats/ or util/), and composing stages is the job of run.ts and pipeline/. The one exception is preview-composes-rollout.",
      severity: 'error',
      from: { path: `^src/${STAGES}/`, pathNot: '^src/preview/' },
      to: { path: `^src/${STAGES}/`, pathNot: '^src/$1/' },
    },
    {
      name: 'preview-composes-rollout',
      comment:
        'A preview is a rollout into a per-PR namespace, and its cleanup removes one: preview/ runs the rollout stage and reads its inputs, and shares its Kubernetes client (kube.ts) and permission checks (permissions.ts). Those four modules are all of rollout/ it may import; no other stage.',
      severity: 'error',
      from: { path: '^src/preview/' },
      to: { path: `^src/${STAGES}/`, pathNot: '^src/(preview/|rollout/(index|inputs|kube|permissions)\\.ts$)' },
    },
    {
      name: 'serve-speaks-only-the-protocol',
      comment:
        'serve/ is the model server inside the images: it imports the protocol, formats, util and the contracts, nothing that is only there for the stages (shared/).',
      severity: 'error',
      from: { path: '^src/serve/' },
      to: { path: '^src/shared/' },
    },
    {
      name: 'no-circular',
      comment:
        "No import cycles: a cycle has no bottom, so it cannot be layered, and the order modules load in starts to matter. A cycle closed by an `import type` is erased by the compiler and allowed (a module that takes another's class as a parameter type, while that one calls it).",
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports and that imports nothing is dead code, or forgotten.',
      severity: 'error',
      from: { orphan: true, path: '^src/' },
      to: {},
    },
    {
      name: 'src-not-to-tests',
      comment: 'The product does not reach into the tests, benchmarks or scripts.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts|tools|lab)/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to no file (or no installed package).',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'not-to-dev-dep',
      comment:
        "src/ is bundled into dist/ and shipped: it imports only packages in package.json's dependencies (type-only imports of @types/* packages excepted).",
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'], pathNot: 'node_modules/@types/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['main', 'types', 'typings'],
    },
  },
};
