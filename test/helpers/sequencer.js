// The order jest starts the test files in (jest.config.js testSequencer). Jest's own: the files that failed last
// time, then the slowest by the durations it recorded in its cache, else the largest files first. A fresh clone (CI)
// has no cache, and file size says little about the second tier: dist.tools.test.ts is small and takes minutes, the
// rollout files mostly wait on the cluster. The files listed here start first, longest first (seconds measured with
// scripts/test.sh's workers on the 2-CPU lab machine), so no long file starts last and runs alone at the end; the
// others follow in jest's order.
const path = require('path');
const Sequencer = require('@jest/test-sequencer').default;

const SECONDS = {
  'dist.tools.test.ts': 230,
  'autoscale-rollout.lab.test.ts': 180,
  'rollout.lab.test.ts': 150,
  'rollout-steps.lab.test.ts': 150,
  'image-smoke.lab.test.ts': 140,
  'image-gpu.lab.test.ts': 140,
  'workflows-act.lab.test.ts': 110,
  'github.lab.test.ts': 110,
  'registry-auth.lab.test.ts': 90,
  'rollout-prometheus.lab.test.ts': 85,
  'gpu-provider.tools.test.ts': 85,
  'rollout-post.lab.test.ts': 85,
  'rollout-triton.lab.test.ts': 80,
  'rollout-lease.lab.test.ts': 80,
  'rollout-rbac.lab.test.ts': 80,
  'node24-deprecation.lab.test.ts': 80,
  'rollout-rollback.lab.test.ts': 80,
  'rollout-basic.lab.test.ts': 75,
  'pack.tools.test.ts': 60,
  'image-triton.lab.test.ts': 60,
  'perf-analyzer.lab.test.ts': 60,
  'compose.lab.test.ts': 60,
};

class SlowestFirst extends Sequencer {
  async sort(tests) {
    const order = await super.sort(tests);
    const seconds = (t) => SECONDS[path.basename(t.path)] ?? -1;
    // (Array.prototype.sort is stable: the unlisted files keep jest's order)
    return [...order].sort((a, b) => seconds(b) - seconds(a));
  }
}

module.exports = SlowestFirst;
