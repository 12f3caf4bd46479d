// The real @actions/tool-cache inside Jest (jest.config.js maps the module here). It is ESM-only ("exports" has just
// an "import" condition), which Jest's CommonJS module system cannot load, so Node's own require (require(esm),
// Node >= 20.19) loads the real module by its file path. Jest gives each test file a copy of process.env while the
// natively loaded module reads Node's own: during each call the test's RUNNER_TOOL_CACHE / RUNNER_TEMP are put
// there. Nothing else changes: downloads, extraction and the cache layout are tool-cache's own.
const path = require('path');
// (Jest's `module` and `process` stand in for Node's; process.getBuiltinModule reaches the real ones)
const nodeProcess = process.getBuiltinModule('process');
const nodeRequire = process.getBuiltinModule('module').createRequire(__filename);
const real = nodeRequire(path.join(__dirname, '../../node_modules/@actions/tool-cache/lib/tool-cache.js'));

// its ::debug:: lines go to Node's own stdout (on a runner they are the step's debug log): dropped in tests
const write = nodeProcess.stdout.write;
if (!write.modelshipBridged) {
  const filtered = function (chunk, ...rest) {
    return typeof chunk === 'string' && chunk.startsWith('::debug::') ? true : write.call(this, chunk, ...rest);
  };
  filtered.modelshipBridged = true;
  nodeProcess.stdout.write = filtered;
}

const KEYS = ['RUNNER_TEMP', 'RUNNER_TOOL_CACHE'];
const set = (values) => {
  for (const k of KEYS) {
    if (values[k] === undefined) delete nodeProcess.env[k];
    else nodeProcess.env[k] = values[k];
  }
};
// Jest runs test files one after another in one process and builds each file's process.env from Node's: a test's
// temporary RUNNER_* must not outlive the call, or the next file inherits directories that are gone. So each call
// sees the test's values, and Node's own are put back when it settles.
const withTestEnv =
  (fn) =>
  (...args) => {
    const saved = Object.fromEntries(KEYS.map((k) => [k, nodeProcess.env[k]]));
    set(process.env);
    let r;
    try {
      r = fn(...args);
    } catch (e) {
      set(saved);
      throw e;
    }
    if (r && typeof r.then === 'function') return r.finally(() => set(saved));
    set(saved);
    return r;
  };
for (const [name, value] of Object.entries(real)) {
  const isClass = typeof value === 'function' && /^class\b/.test(Function.prototype.toString.call(value));
  module.exports[name] = typeof value === 'function' && !isClass ? withTestEnv(value) : value;
}
module.exports.__esModule = true;
