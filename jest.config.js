/** @type {import('jest').Config} */
module.exports = {
  // fills the tool cache with the pinned Node.js release that images carry (as a runner's would be)
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  // removes the run's temporary directories
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  testEnvironment: '<rootDir>/test/helpers/environment.js',
  roots: ['<rootDir>/test'],
  // ESM-only, loaded natively through a bridge (see the file)
  moduleNameMapper: { '^@actions/tool-cache$': '<rootDir>/test/helpers/tool-cache-bridge.js' },
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { isolatedModules: true, module: 'commonjs', moduleResolution: 'node', target: 'ES2022', esModuleInterop: true, resolveJsonModule: true } }],
  },
  testTimeout: 120000,
};
