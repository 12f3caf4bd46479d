/**
 * Module stand-ins the unit tests of the preview and cleanup stages share, for jest.mock factories:
 *   jest.mock('@actions/github', () => require('./helpers/mocks').actionsGithub(), { virtual: true });
 *   jest.mock('../src/rollout/kube', () => require('./helpers/mocks').kubeModule);
 * (a factory may only require, not close over imports; a test that imports mockKube gets the same instance).
 */
import * as path from 'path';

/** @actions/github itself, loaded by Node's own require (jest's resolver does not follow its package exports). */
export function actionsGithub(): unknown {
  const nodeRequire = process.getBuiltinModule('module').createRequire(__filename);
  return nodeRequire(path.join(__dirname, '../../node_modules/@actions/github/lib/github.js'));
}

/** The cluster side of runCleanup: namespaces modelship created, recorded when removed. */
export const mockKube = { removed: [] as string[], namespaces: new Set<string>() };

export const kubeModule = {
  Kube: {
    load: () => ({
      // the stage's preflight (rollout/permissions.ts): every permission granted
      canI: async () => true,
      get: async (_v: string, _k: string, _ns: string | undefined, name: string) =>
        mockKube.namespaces.has(name)
          ? { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'modelship' } } }
          : undefined,
      remove: async (_v: string, _k: string, _ns: string, name: string) => {
        mockKube.removed.push(name);
        return mockKube.namespaces.delete(name);
      },
    }),
  },
};
