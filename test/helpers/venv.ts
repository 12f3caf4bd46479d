import { execFileSync } from 'child_process';
import * as path from 'path';
import { REPO } from './caffe';

/**
 * A Python venv of pinned wheels from PyPI for tests that use Python tools as independent oracles and peers
 * (`.venv-<name>/` at the repository root, from `test/requirements-<name>.txt`; scripts/test.sh makes them ahead of
 * jest, this makes or refreshes one when it is missing or its requirements changed). Returns its python.
 */
export function pythonVenv(name: string, importCheck: string): string {
  const venv = path.join(REPO, `.venv-${name}`);
  const req = path.join(REPO, `test/requirements-${name}.txt`);
  const py = path.join(venv, 'bin/python');
  const script = `
set -e
mkdir -p "${path.join(REPO, '.tmp')}"
exec 9>"${path.join(REPO, `.tmp/venv-${name}.lock`)}"; flock 9
if [ -x "${py}" ] && cmp -s "${req}" "${venv}/requirements.txt" && "${py}" -c '${importCheck}' 2>/dev/null; then exit 0; fi
rm -rf "${venv}"
python3 -m venv "${venv}"
"${py}" -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r "${req}"
cp "${req}" "${venv}/requirements.txt"`;
  execFileSync('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  return py;
}
