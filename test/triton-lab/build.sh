#!/usr/bin/env bash
# Build and push the lab's Triton Inference Server image: the REAL tritonserver 2.51.0 (NVIDIA release 24.10) out of
# PyPI's nvidia-pytriton wheel, laid out like nvcr.io/nvidia/tritonserver:24.10-py3, serving `onnxruntime_onnx`
# models through onnx_model.py (see README.md). Prints the pushed reference (hash-tagged) as the last stdout line.
#
#   test/triton-lab/build.sh               fetch what is missing, build + push unless the registry has the hash tag
#   test/triton-lab/build.sh --fetch-only  only fill .whl-triton/ (scripts/test.sh, on the host, with network)
#
# What comes from where (nothing is fetched inside the build: it runs with `--network none`):
#   FROM local/python3:bookworm          the lab's base (Debian bookworm + python3 3.11.2, lab/lib/docker.sh)
#   .whl-triton/*.whl                    `pip download --only-binary` on the host, pinned in test/requirements-triton.txt:
#     nvidia_pytriton-0.7.0 (PyPI)       only its Triton build is used: pytriton/tritonserver/{bin/tritonserver,
#                                        backends/python, python_backend_stubs/3.11, caches/local} and the shared
#                                        libraries in nvidia_pytriton.libs/ (-> /opt/tritonserver/lib; the 3.13 libpython
#                                        is left out, only the 3.13 stub needs it). The pytriton Python package is not
#                                        installed.
#     numpy 1.26.4, onnxruntime 1.19.2   unpacked into /usr/local/lib/python3.11/dist-packages (the image's Python, which
#                                        the python backend stub embeds); onnxruntime 1.19.2 is what Triton 24.10's own
#                                        ONNX Runtime backend is built on
#   .whl-triton/debs/libpython3.11_*.deb Debian's libpython3.11 (the stub links libpython3.11.so.1.0; the base image has
#                                        only the stdlib), `apt-get download` on the host of exactly the version of the
#                                        image's libpython3.11-stdlib, installed with dpkg -i
#   test/triton-lab/tritonserver         the entry wrapper (/opt/tritonserver/bin/tritonserver)
#   test/triton-lab/onnx_model.py        the adapter the wrapper puts beside 1/model.onnx as 1/model.py
#
# Idempotent: the tag carries a hash of every input (these files, the wheels' and the .deb's sha256, the base image
# id); when the registry already has it, nothing is built. Concurrent callers serialise on a lock.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ -f /var/lib/modelship-lab/env.sh ] && . /var/lib/modelship-lab/env.sh
REGISTRY="${LAB_REGISTRY:-127.0.0.1:5000}"
BASE="${LAB_PYTHON_IMAGE:-local/python3:bookworm}"
REPO_NAME="$REGISTRY/local/tritonserver"
TAG=24.10-pytriton
CACHE="${TRITON_LAB_CACHE:-$ROOT/.whl-triton}"
REQ="$ROOT/test/requirements-triton.txt"
log() { echo "[triton-lab] $*" >&2; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

# --- 1. wheels (host, network) ---
if ! cmp -s "$REQ" "$CACHE/requirements-triton.txt" || ! (cd "$CACHE" && sha256sum -c --quiet SHA256SUMS 2>/dev/null); then
  log "downloading the wheels of $(basename "$REQ") into $CACHE"
  rm -f "$CACHE"/*.whl "$CACHE/SHA256SUMS" "$CACHE/requirements-triton.txt"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --dest "$CACHE" \
    --platform manylinux_2_35_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    --python-version 3.11 --implementation cp -r "$REQ"
  (cd "$CACHE" && sha256sum *.whl > SHA256SUMS) && cp "$REQ" "$CACHE/requirements-triton.txt"
fi

# --- 2. libpython3.11, the version of the base image's stdlib (host apt, network) ---
docker image inspect "$BASE" >/dev/null 2>&1 || { log "base image $BASE missing: start the lab (lab/up.sh docker)"; exit 1; }
PYVER="$(docker run --rm --network none "$BASE" dpkg-query -W -f='${Version}' libpython3.11-stdlib)"
DEB_DIR="$CACHE/debs"
DEB="$DEB_DIR/libpython3.11_${PYVER}_amd64.deb"
if [ ! -s "$DEB" ]; then
  log "apt-get download libpython3.11=$PYVER into $DEB_DIR"
  rm -rf "$DEB_DIR" && mkdir -p "$DEB_DIR"
  get() { (cd "$DEB_DIR" && apt-get download -q -o APT::Sandbox::User=root "libpython3.11=$PYVER" >&2); }
  get || { [ "$(id -u)" = 0 ] && apt-get update -qq >&2 && get; } || {
    log "libpython3.11=$PYVER is not in the host's apt sources: run apt-get update, or rebuild the lab's python3 image"; exit 1; }
fi
[ "${1:-}" = --fetch-only ] && { log "fetched: $(ls "$CACHE"/*.whl "$DEB" | xargs -n1 basename | tr '\n' ' ')"; exit 0; }

# --- 3. the tag: a hash of every input ---
BASE_ID="$(docker image inspect -f '{{.Id}}' "$BASE")"
HASH="$( { sha256sum "$HERE/Dockerfile" "$HERE/build.sh" "$HERE/tritonserver" "$HERE/onnx_model.py" | cut -d' ' -f1
           cat "$CACHE/SHA256SUMS"; sha256sum "$DEB" | cut -d' ' -f1; echo "$BASE_ID"; } | sha256sum | cut -c1-16)"
REF="$REPO_NAME:$TAG-$HASH"
ACCEPT='application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.index.v1+json'
manifest_digest() { curl -sfI -H "Accept: $ACCEPT" "http://$REGISTRY/v2/local/tritonserver/manifests/$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'; }

if [ -n "$(manifest_digest "$TAG-$HASH")" ]; then
  log "registry has $REF: nothing to build"
else
  # --- 4. stage the context: the wheels unpacked on the host (unzip keeps the modes) ---
  t0=$(date +%s)
  CTX="$(mktemp -d "${TMPDIR:-/tmp}/triton-lab-ctx.XXXXXX")"
  trap 'rm -rf "$CTX"' EXIT
  x="$CTX/x"; mkdir -p "$x" "$CTX/opt/tritonserver/bin" "$CTX/opt/tritonserver/backends/python" "$CTX/opt/tritonserver/caches" "$CTX/site-packages" "$CTX/debs"
  unzip -q "$CACHE"/nvidia_pytriton-*.whl 'pytriton/tritonserver/*' 'nvidia_pytriton.libs/*' 'nvidia_pytriton-*.dist-info/*' -d "$x"
  T="$x/pytriton/tritonserver"
  cp -a "$T/bin/tritonserver" "$CTX/opt/tritonserver/bin/tritonserver-2.51.0"
  cp -a "$T/backends/python/." "$CTX/opt/tritonserver/backends/python/"
  cp -a "$T/python_backend_stubs/3.11/triton_python_backend_stub" "$CTX/opt/tritonserver/backends/python/"
  cp -a "$T/caches/local" "$CTX/opt/tritonserver/caches/"
  mv "$x/nvidia_pytriton.libs" "$CTX/opt/tritonserver/lib"
  rm -f "$CTX"/opt/tritonserver/lib/libpython3-*.13.so*
  cp "$x"/nvidia_pytriton-*.dist-info/licenses/LICENSE "$CTX/opt/tritonserver/LICENSE.nvidia-pytriton" 2>/dev/null || true
  chmod 0755 "$CTX/opt/tritonserver/bin/tritonserver-2.51.0" "$CTX/opt/tritonserver/backends/python/triton_python_backend_stub"
  chmod -R a+rX "$CTX/opt"
  rm -rf "$x"
  for w in "$CACHE"/*.whl; do
    case "$(basename "$w")" in nvidia_pytriton-*) ;; *) unzip -q -o "$w" -d "$CTX/site-packages" ;; esac
  done
  chmod -R a+rX "$CTX/site-packages"
  cp "$DEB" "$CTX/debs/"
  cp "$HERE/Dockerfile" "$CTX/"
  install -m 0755 "$HERE/tritonserver" "$CTX/opt/tritonserver/bin/tritonserver"
  install -D -m 0644 "$HERE/onnx_model.py" "$CTX/opt/tritonserver/modelship/onnx_model.py"
  log "building $REF (context $(du -sh "$CTX" | cut -f1), staged in $(( $(date +%s) - t0 )) s)"
  if docker buildx version >/dev/null 2>&1; then
    docker buildx build --network none --load -t "$REF" -t "$REPO_NAME:$TAG" --build-arg "BASE=$BASE" --label "org.modelship.triton-lab.inputs=$HASH" "$CTX" >&2
  else
    docker build --network none -t "$REF" -t "$REPO_NAME:$TAG" --build-arg "BASE=$BASE" --label "org.modelship.triton-lab.inputs=$HASH" "$CTX" >&2
  fi
  docker push -q "$REF" >&2
  log "built and pushed $REF in $(( $(date +%s) - t0 )) s ($(docker image inspect -f '{{.Size}}' "$REF" | awk '{printf "%.0f MB", $1/1e6}'))"
fi

# the moving tag follows the hash tag (a manifest PUT; the hash tag may have been built by another checkout)
want="$(manifest_digest "$TAG-$HASH")"
if [ "$(manifest_digest "$TAG")" != "$want" ]; then
  ctype="$(curl -sfI -H "Accept: $ACCEPT" "http://$REGISTRY/v2/local/tritonserver/manifests/$TAG-$HASH" | tr -d '\r' | awk -F': ' 'tolower($1)=="content-type"{print $2}')"
  curl -sf -H "Accept: $ACCEPT" "http://$REGISTRY/v2/local/tritonserver/manifests/$TAG-$HASH" \
    | curl -sf -X PUT -H "Content-Type: $ctype" --data-binary @- "http://$REGISTRY/v2/local/tritonserver/manifests/$TAG" >/dev/null
  log "$REPO_NAME:$TAG -> $want"
fi
echo "$REF"
