#!/usr/bin/env bash
# The main job on a local default, with the committed bundle (dist/, no npm install needed):
#   convert  GoogLeNet (../shared/caffe-oracle; else the bundled LeNet) → ONNX, parity vs real Caffe, per layer
#   compile  ONNX Runtime offline optimization, parity again
#   image    serving image built and pushed with docker buildx to the lab registry 127.0.0.1:5000
#   smoke    the pushed image run by digest: golden requests, latency
#   rollout  canary on the lab's Kubernetes cluster (namespace modelship-demo): verified, then promoted
# The image, smoke and rollout steps need the lab (Docker engine, registry, Kubernetes): as root this script
# starts it (lab/up.sh, ~5 min on a fresh machine, seconds after); pass --no-lab to stop after compile.
#   scripts/demo.sh [--no-lab] [MODEL_DIR]   MODEL_DIR: deploy.prototxt, weights.caffemodel and reference outputs
set -euo pipefail
cd "$(dirname "$0")/.."
lab=1
if [ "${1:-}" = "--no-lab" ]; then lab=0; shift; fi
dir=${1:-}
if [ -z "$dir" ]; then
  if [ -f ../shared/caffe-oracle/models/bvlc_googlenet/weights.caffemodel ]; then dir=../shared/caffe-oracle/models/bvlc_googlenet
  else dir=test/fixtures/caffe/lenet; fi
fi
name=$(basename "$dir" | tr 'A-Z_.' 'a-z--')
out=out/$name
mkdir -p "$out"
ms() { node dist/index.js "$@"; }
get() { sed -n "s/^$1=//p" "$2"; }

echo "== convert $dir"
ms convert --prototxt "$dir/deploy.prototxt" --caffemodel "$dir/weights.caffemodel" --out "$out/model.onnx" \
  --reference "$dir" --per-layer | tee "$out/convert.out"
cat "$out/parity.md"
echo "== compile"
ms compile --model "$out/model.onnx" --reference "$dir" | tee "$out/compile.out"
[ "$lab" = 1 ] || exit 0

if [ "$(id -u)" = 0 ]; then bash lab/up.sh >/dev/null; fi
. /var/lib/modelship-lab/env.sh 2>/dev/null || { echo "the lab is not up: run 'lab/up.sh' as root, or use --no-lab" >&2; exit 1; }
echo "== image → ${LAB_REGISTRY}/modelship/$name"
# offline, the image carries the Node.js that runs this script (on a runner: the pinned official release, downloaded)
ms image --image "$LAB_REGISTRY/modelship/$name" --model "$(get artifact-path "$out/compile.out")" --model-name "$name" \
  --node-binary "$(command -v node)" --base-image "$LAB_BASE_IMAGE" --parity "$(get parity "$out/convert.out")" --compose-file "$out/docker-compose.yml" \
  --revision "$(git rev-parse HEAD 2>/dev/null || echo 0000000)" | tee "$out/image.out"
echo "== smoke $(get image "$out/image.out")"
ms smoke --image "$(get image "$out/image.out")" --model-name "$name" --reference "$dir" --requests 100 --concurrency 4 | tee "$out/smoke.out"
echo "== rollout → namespace modelship-demo (canary, then promote)"
ms rollout --image "$(get image "$out/image.out")" --model-name "$name" --app "$name" --namespace modelship-demo \
  --reference "$dir" --replicas 2 --bake-time 5 --cpu 200m --memory 512Mi --patch examples/lab-realnode.patch.yaml \
  | tee "$out/rollout.out" | grep -v '^rollout-report='
