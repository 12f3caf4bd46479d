#!/usr/bin/env bash
# The GPU path end to end, on a real GPU machine: Docker with the NVIDIA container toolkit, an NVIDIA driver ≥ 580
# (CUDA 13), and internet access (NuGet for the CUDA provider, nodejs.org for Node.js, Docker Hub for nvidia/cuda and
# registry:2, nvcr.io for NVIDIA's TensorRT and Triton images). It needs no npm install: it runs the committed bundle
# dist/index.js.
#
#   scripts/gpu-check.sh [--triton | --only-triton] [MODEL_DIR]     # default ../shared/caffe-oracle/models/bvlc_googlenet
#
# MODEL_DIR holds deploy.prototxt, weights.caffemodel and the reference of real Caffe (input_b<N>.npy,
# output_b<N>__prob.npy). REGISTRY=host:port pushes there instead of a throwaway registry:2 on 127.0.0.1:5000.
# Steps: convert (parity against Caffe) → compile for the CUDA provider → image with gpu: true (CUDA provider from
# NuGet, verified; base image checked) → smoke with --gpus all (provider must be cuda, golden requests, latency)
# → the server run once more by hand: /v2/models says cuda and nvidia-smi on the host lists the server's process.
#
# --triton adds, after those steps, the Triton/TensorRT path (--only-triton runs it alone; its driver minimum is the
# Triton release's, e.g. 560 for 24.10): compile --target tensorrt (trtexec in nvcr.io/nvidia/tensorrt:<release>-py3,
# pinned by digest; the plan's metadata records its TensorRT and the Triton image it is for) → image --runtime triton
# with the plan (its TensorRT checked against the Triton image's) → smoke --runtime triton --gpu (golden requests
# through Triton's TensorRT backend) → the image stage must refuse the plan for a Triton of another release.
# Environment: TRITON_RELEASE (default: the CLI's triton-release), TENSORRT_IMAGE, TRITON_IMAGE (mirrors, or
# repository@sha256:...), CALIBRATION_CACHE (an INT8 calibration cache: builds with --int8), BATCH_SIZES (min,opt,max,
# default 1,8,32), TRITON_TOLERANCE (smoke's parity tolerance for the plan, default 1e-4: float32 without TF32),
# TRITON_MISMATCH_RELEASE (a release whose TensorRT differs, default 24.08; empty skips that check).
set -euo pipefail
cd "$(dirname "$0")/.."
ort=1 triton=0
case "${1:-}" in
  --triton) triton=1; shift ;;
  --only-triton) triton=1 ort=0; shift ;;
esac
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
[ "$ort" = 0 ] || [ "${driver%%.*}" -ge 580 ] || fail "NVIDIA driver $driver is older than 580, the minimum for CUDA 13 (ONNX Runtime's CUDA provider); --only-triton runs the Triton path alone"
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
if [ "$ort" = 1 ]; then
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
docker rm -f "$c" >/dev/null 2>&1 || true
fi

if [ "$triton" = 1 ]; then
  # the flags are named like the action's inputs; empty environment variables leave the CLI's defaults
  release=(${TRITON_RELEASE:+--triton-release "$TRITON_RELEASE"})
  trt=("${release[@]}" ${TENSORRT_IMAGE:+--tensorrt-image "$TENSORRT_IMAGE"} ${TRITON_IMAGE:+--triton-image "$TRITON_IMAGE"})
  serving=("${release[@]}" ${TRITON_IMAGE:+--triton-image "$TRITON_IMAGE"})
  int8=(${CALIBRATION_CACHE:+--int8 --calibration-cache "$CALIBRATION_CACHE"})
  mkdir -p "$out/triton"
  [ -f "$out/model.onnx" ] || {
    echo "== convert $dir"
    ms convert --prototxt "$dir/deploy.prototxt" --caffemodel "$dir/weights.caffemodel" --out "$out/model.onnx" --reference "$dir" | tee "$out/convert.out"
  }
  cp "$out/model.onnx" "$out/triton/model.onnx"
  echo "== compile --target tensorrt (trtexec in the TensorRT image, pinned by digest)"
  ms compile --model "$out/triton/model.onnx" --target tensorrt --artifact "$out/triton/model.plan" \
    --batch-sizes "${BATCH_SIZES:-1,8,32}" "${trt[@]}" "${int8[@]}" | tee "$out/compile-tensorrt.out"
  plan="$(get artifact-path "$out/compile-tensorrt.out")"
  [ -s "$plan" ] || fail "compile --target tensorrt wrote no plan"
  node -e 'const m = require(process.argv[1]); console.log(JSON.stringify(m.tensorrt, null, 2)); if (!/@sha256:[0-9a-f]{64}$/.test(m.tensorrt.tensorrtImage)) process.exit(1)' "$(realpath "$plan").json" \
    || fail "the plan's metadata does not record the TensorRT image by digest"
  echo "== image --runtime triton → $registry/modelship/$name-triton"
  # a plan runs on a GPU only: the image stage wants gpu: true with it
  ms image --runtime triton --gpu --image "$registry/modelship/$name-triton" --model "$plan" --model-name "$name" "${serving[@]}" \
    --parity "$(get parity "$out/convert.out")" --compose-file "$out/triton/docker-compose.yml" \
    --revision "$(git rev-parse HEAD 2>/dev/null || echo 0000000)" | tee "$out/image-triton.out"
  timage="$(get image "$out/image-triton.out")"
  [ -n "$timage" ] || fail "image --runtime triton reported no image"
  echo "== smoke --runtime triton --gpu $timage"
  ms smoke --runtime triton --gpu --image "$timage" --model-name "$name" --reference "$dir" --tolerance "${TRITON_TOLERANCE:-1e-4}" \
    --requests 200 --concurrency 4 | tee "$out/smoke-triton.out"
  [ "$(get smoke "$out/smoke-triton.out")" = pass ] || fail "smoke --runtime triton did not pass"
  for k in latency-p50-ms latency-p95-ms latency-p99-ms throughput-rps gpu-info; do echo "triton $k=$(get "$k" "$out/smoke-triton.out")"; done
  mismatch="${TRITON_MISMATCH_RELEASE-24.08}"
  if [ -n "$mismatch" ] && [ "$mismatch" != "${TRITON_RELEASE:-}" ] && [ -z "${TRITON_IMAGE:-}" ]; then
    echo "== image --runtime triton --triton-release $mismatch must refuse the plan (another TensorRT)"
    if ms image --runtime triton --gpu --image "$registry/modelship/$name-triton" --model "$plan" --model-name "$name" \
      --triton-release "$mismatch" --push false --compose-file "$out/triton/mismatch-compose.yml" >"$out/image-mismatch.out" 2>&1; then
      cat "$out/image-mismatch.out" >&2; fail "the image stage accepted a plan for Triton $mismatch"
    fi
    grep -q "refusing the TensorRT plan" "$out/image-mismatch.out" || { cat "$out/image-mismatch.out" >&2; fail "the image stage failed for another reason than the TensorRT mismatch"; }
    grep "refusing the TensorRT plan" "$out/image-mismatch.out"
  fi
fi
echo "gpu-check: PASS"
