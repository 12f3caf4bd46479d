import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './helpers/caffe';
import { ensureToolCacheEnv } from '../src/util/toolcache';

// Where the tool cache lives outside GitHub (the GPU provider libraries and Node.js are cached there:
// test/gpu-provider.tools.test.ts, test/node-binary.tools.test.ts).
describe('ensureToolCacheEnv', () => {
  test('outside GitHub: the tool cache and temp directory default under ~/.cache/modelship (or XDG_CACHE_HOME)', () => {
    const home = tmpDir('modelship-home-');
    try {
      const env: NodeJS.ProcessEnv = { HOME: home };
      expect(ensureToolCacheEnv(env)).toEqual({ toolCache: path.join(home, '.cache/modelship/tool-cache'), temp: path.join(home, '.cache/modelship/tmp') });
      expect(env).toEqual({
        HOME: home,
        RUNNER_TOOL_CACHE: path.join(home, '.cache/modelship/tool-cache'),
        RUNNER_TEMP: path.join(home, '.cache/modelship/tmp'),
      });
      expect(fs.statSync(env.RUNNER_TOOL_CACHE!).isDirectory() && fs.statSync(env.RUNNER_TEMP!).isDirectory()).toBe(true);

      const xdg = { HOME: home, XDG_CACHE_HOME: path.join(home, 'xdg') };
      expect(ensureToolCacheEnv(xdg).toolCache).toBe(path.join(home, 'xdg/modelship/tool-cache'));
      // a relative XDG_CACHE_HOME is ignored, as the spec says; one variable set keeps its value
      const partial: NodeJS.ProcessEnv = { HOME: home, XDG_CACHE_HOME: 'rel', RUNNER_TEMP: '/runner/temp' };
      expect(ensureToolCacheEnv(partial)).toEqual({ toolCache: path.join(home, '.cache/modelship/tool-cache'), temp: '/runner/temp' });
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('on a runner: RUNNER_TOOL_CACHE and RUNNER_TEMP are left as they are, nothing is created', () => {
    const home = tmpDir('modelship-home-');
    try {
      const env: NodeJS.ProcessEnv = { HOME: home, RUNNER_TOOL_CACHE: '/opt/hostedtoolcache', RUNNER_TEMP: '/home/runner/work/_temp' };
      expect(ensureToolCacheEnv(env)).toEqual({ toolCache: '/opt/hostedtoolcache', temp: '/home/runner/work/_temp' });
      expect(env.RUNNER_TOOL_CACHE).toBe('/opt/hostedtoolcache');
      expect(fs.readdirSync(home)).toEqual([]);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
