import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ModelshipError } from './errors';
import { runProcess } from './proc';

/**
 * Registry credentials for the length of one stage, never in the user's Docker config. `docker login` writes to
 * `$DOCKER_CONFIG/config.json` (default `~/.docker`), which on a self-hosted runner outlives the job, so the login
 * goes to a private DOCKER_CONFIG under RUNNER_TEMP (else the system temp directory) instead, and that directory is
 * removed when the stage ends. The user's own config is carried over so nothing else changes: its config.json is
 * copied (other registries' auths, proxies, credential helpers), and the buildx builders and CLI plugins are linked
 * (`docker buildx` keeps its builder instances in `$DOCKER_CONFIG/buildx`).
 */
export interface DockerSession {
  /** the environment every docker command of the stage runs with */
  env: NodeJS.ProcessEnv;
}

/** The user's Docker config directory, as the docker CLI finds it. */
export function userDockerConfig(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker');
}

/**
 * The user's config.json for the session, less what would send this login elsewhere: a `credsStore` (the default
 * credential helper would keep the password in the OS keychain after the job) and a `credHelpers` entry for this
 * registry. Everything else (other registries' auths and helpers, proxies) is kept. A missing or unreadable file is {}.
 */
function sessionConfig(file: string, registry: string): Record<string, unknown> {
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
  delete config.credsStore;
  const helpers = config.credHelpers as Record<string, string> | undefined;
  if (helpers) delete helpers[registry];
  return config;
}

/**
 * Log docker in to `registry` through a temporary DOCKER_CONFIG (when `username` is given; without it the session is
 * the environment as it is). The password goes on stdin and never appears in an error. `close()` removes the
 * directory, credentials and all: call it in a finally.
 */
export async function openRegistrySession(
  registry: string,
  username: string,
  password: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<DockerSession & { close(): void }> {
  if (!username) return { env, close: () => undefined };
  if (!password) throw new ModelshipError('input', 'input "registry-username" needs "registry-password"', { field: 'registry-password' });
  const session = privateDockerConfig(registry, env, (config) => config);
  try {
    const login = await runProcess('docker', ['login', registry, '--username', username, '--password-stdin'], { input: password, env: session.env });
    if (login.code !== 0) throw new ModelshipError('io', `docker login ${registry} failed: ${login.stderr.split(password).join('***').trim()}`);
    return session;
  } catch (e) {
    session.close();
    throw e;
  }
}

/**
 * A DOCKER_CONFIG of the stage's own: a 0700 directory in RUNNER_TEMP (or the system's), its config.json (0600) the
 * user's with `registry`'s login left out and then `edit`ed, the user's buildx, cli-plugins and contexts linked in.
 * Removed again if making it fails; else `close()` removes it.
 */
function privateDockerConfig(
  registry: string,
  env: NodeJS.ProcessEnv,
  edit: (config: Record<string, unknown>) => Record<string, unknown>,
): DockerSession & { close(): void } {
  const user = userDockerConfig(env);
  const dir = fs.mkdtempSync(path.join(env.RUNNER_TEMP || os.tmpdir(), 'modelship-docker-config-'));
  const close = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    fs.chmodSync(dir, 0o700);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(edit(sessionConfig(path.join(user, 'config.json'), registry)), null, 2), { mode: 0o600 });
    for (const sub of ['buildx', 'cli-plugins', 'contexts']) {
      if (fs.existsSync(path.join(user, sub))) fs.symlinkSync(path.join(user, sub), path.join(dir, sub));
    }
    return { env: { ...env, DOCKER_CONFIG: dir }, close };
  } catch (e) {
    close();
    throw e;
  }
}

/** The key of a registry in config.json's `auths`: Docker Hub's is its legacy URL, as docker login writes it. */
export function authsKey(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'https://index.docker.io/v1/' : registry;
}

/**
 * Registry credentials for tools that read a Docker config themselves (cosign, through go-containerregistry) where no
 * docker CLI may be installed (a rollout runner): the same private DOCKER_CONFIG as openRegistrySession, the user's
 * config carried over, but the login written into its config.json directly (the password in a 0600 file of a 0700
 * directory, never in an argv). Without `username` it is the environment as it is. `close()` removes the directory.
 */
export function openAuthConfig(registry: string, username: string, password: string, env: NodeJS.ProcessEnv = process.env): DockerSession & { close(): void } {
  if (!username) return { env, close: () => undefined };
  if (!password) throw new ModelshipError('input', 'input "registry-username" needs "registry-password"', { field: 'registry-password' });
  return privateDockerConfig(registry, env, (config) => ({
    ...config,
    auths: { ...((config.auths ?? {}) as Record<string, unknown>), [authsKey(registry)]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } },
  }));
}
