#!/usr/bin/env bash
# The GPU path end to end, on a real GPU machine: Docker with the NVIDIA container toolkit, an NVIDIA driver ≥ 580
# (CUDA 13), and internet access (NuGet for the CUDA provider, nodejs.org for Node.js, Docker Hub for nvidia/cuda and
# registry:2). It needs no npm install: it runs the committed bundle dist/index.js.
#
#   scripts/gpu-check.sh [MODEL_DIR]     # default ../shared/caffe-oracle/models/bvlc_googlenet
#
# MODEL_DIR holds deploy.prototxt, weights.caffemodel and the reference of real Caffe (input_b<N>.npy,
# output_b<N>__prob.npy). REGISTRY=host:port pushes there instead of a throwaway registry:2 on 127.0.0.1:5000.
# Steps: convert (parity against Caffe) → compile for the CUDA provider → image with gpu: true (CUDA provider from
# NuGet, verified; base image checked) → smoke with --gpus all (provider must be cuda, golden requests, latency)
# → the server run once more by hand: /v2/models says cuda and nvidia-smi on the host lists the server's process.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-../shared/caffe-oracle/models/bvlc_googlenet}"
name="$(basename "$dir" | tr '[:upper:]_.' '[:lower:]--')"
out="out/gpu-check/$name"
mkdir -p "$out"
ms() { node dist/index.js "$@"; }
get() { sed -n "s/^$1=//p" "$2" | head -1; }
fail() { echo "gpu-check: FAIL: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: this needs a machine with an NVIDIA driver"
echo "== host GPU"
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader
driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
[ "${driver%%.*}" -ge 580 ] || fail "NVIDIA driver $driver is older than 580, the minimum for CUDA 13 (ONNX Runtime's CUDA provider)"
docker info --format '{{json .Runtimes}}' | grep -q nvidia || echo "warning: docker lists no nvidia runtime; --gpus needs the NVIDIA container toolkit" >&2

registry="${REGISTRY:-}"
if [ -z "$registry" ]; then
  registry=127.0.0.1:5000
  docker rm -f modelship-gpu-check-registry >/dev/null 2>&1 || true
  docker run -d --name modelship-gpu-check-registry -p 127.0.0.1:5000:5000 registry:2 >/dev/null
  trap 'docker rm -f modelship-gpu-check-registry >/dev/null 2>&1 || true' EXIT
fi

echo "== convert $dir"
ms convert --prototxt "$dir/deploy.prototxt" --caffemodel "$dir/weights.caffemodel" --out "$out/model.onnx" --reference "$dir" | tee "$out/convert.out"
echo "== compile for the CUDA execution provider"
ms compile --model "$out/model.onnx" --execution-provider cuda --reference "$dir" | tee "$out/compile.out"
echo "== image (gpu: true) → $registry/modelship/$name"
ms image --image "$registry/modelship/$name" --model "$(get artifact-path "$out/compile.out")" --model-name "$name" --gpu \
  --parity "$(get parity "$out/convert.out")" --compose-file "$out/docker-compose.yml" \
  --revision "$(git rev-parse HEAD 2>/dev/null || echo 0000000)" | tee "$out/image.out"
image="$(get image "$out/image.out")"
echo "== smoke --gpu $image"
ms smoke --image "$image" --model-name "$name" --gpu --reference "$dir" --requests 200 --concurrency 4 | tee "$out/smoke.out"
[ "$(get smoke "$out/smoke.out")" = pass ] || fail "smoke did not pass"

echo "== the server on the GPU, by hand"
c=modelship-gpu-check
docker rm -f "$c" >/dev/null 2>&1 || true
docker run -d --name "$c" --gpus all -p 127.0.0.1::8000 "$image" >/dev/null
trap 'docker rm -f '"$c"' >/dev/null 2>&1 || true; docker rm -f modelship-gpu-check-registry >/dev/null 2>&1 || true' EXIT
port="$(docker port "$c" 8000/tcp | head -1 | sed 's/.*://')"
for _ in $(seq 1 240); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.5; done
meta="$(curl -sf "http://127.0.0.1:$port/v2/models/$name")" || { docker logs "$c" >&2; fail "the server did not become ready"; }
echo "$meta"
echo "$meta" | grep -q '"execution_provider":"cuda"' || fail "the server does not run on the CUDA execution provider"
pid="$(docker inspect -f '{{.State.Pid}}' "$c")"
nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader | tee "$out/nvidia-smi.txt"
grep -q "^$pid," "$out/nvidia-smi.txt" || fail "nvidia-smi does not list the server's process (pid $pid)"
echo "== latency (smoke: 200 requests at concurrency 4)"
for k in latency-p50-ms latency-p95-ms latency-p99-ms throughput-rps gpu-info; do echo "$k=$(get "$k" "$out/smoke.out")"; done
echo "gpu-check: PASS"
