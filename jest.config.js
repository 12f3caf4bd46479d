/**
 * Two tiers (README, "Tests"), told apart by the file name, as three jest projects over test/:
 * - unit: test/<name>.test.ts. No lab, no Docker, no network, nothing downloaded or built beforehand:
 *   `npm run test:unit` (jest --selectProjects unit), or `npx jest test/<name>.test.ts` on a fresh clone after
 *   `npm ci`. Its global setup only makes the run's temporary directory.
 * - the second tier, what scripts/test.sh prepares:
 *   - tools: test/<name>.tools.test.ts, no lab but something downloaded or built: Node 24 in .tools/, the GPU wheels
 *     in .whl/, a Python venv from PyPI, protoc, the bundle rebuilt with ncc, npm pack and install;
 *   - lab: test/<name>.lab.test.ts, the lab (lab/up.sh: Docker engine, registry, Kubernetes, Prometheus), and maybe
 *     tools too. Its global setup also fills the tool cache with the pinned Node.js release the images carry.
 *   A file whose lab part or tool is missing is skipped saying which and how to get it; under CI=true that is a
 *   failure (test/helpers/needs.ts).
 * `npm test` (scripts/test.sh, = .ci/run) installs and starts all of it and runs every project: the unit tier first,
 * alone, then tools and lab together with 4 workers (the lab files mostly wait on the cluster; files that share
 * cluster state take turns through locks, test/helpers/shared.ts). Jest's own default is a worker per CPU less one, a
 * single one on the 2-CPU lab machine: `npx jest --selectProjects lab` runs the files one at a time there; add
 * --maxWorkers=4 to run them as scripts/test.sh does.
 */
const shared = {
  testEnvironment: '<rootDir>/test/helpers/environment.js',
  roots: ['<rootDir>/test'],
  // ESM-only, loaded natively through a bridge (see the file)
  moduleNameMapper: { '^@actions/tool-cache$': '<rootDir>/test/helpers/tool-cache-bridge.js' },
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      { tsconfig: { isolatedModules: true, module: 'commonjs', moduleResolution: 'node', target: 'ES2022', esModuleInterop: true, resolveJsonModule: true } },
    ],
  },
  // removes the run's temporary directories
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.(lab|tools)\\.test\\.ts$'],
      // the run's temporary directory, nothing else
      globalSetup: '<rootDir>/test/helpers/run-tmp.ts',
    },
    {
      ...shared,
      displayName: 'tools',
      testMatch: ['**/*.tools.test.ts'],
      globalSetup: '<rootDir>/test/helpers/run-tmp.ts',
    },
    {
      ...shared,
      displayName: 'lab',
      testMatch: ['**/*.lab.test.ts'],
      // the run's temporary directory, and the tool cache filled with the pinned Node.js release that images carry (as a runner's would be)
      globalSetup: '<rootDir>/test/helpers/global-setup.ts',
    },
  ],
  testTimeout: 120000,
  // the slow second-tier files first, whatever the jest cache knows (a fresh clone knows nothing)
  testSequencer: '<rootDir>/test/helpers/sequencer.js',
};
