#!/usr/bin/env bash
# The main job on a local default, with the committed bundle (dist/, no npm install needed):
#   convert  GoogLeNet (../shared/caffe-oracle; else the bundled LeNet) → ONNX, parity vs real Caffe, per layer
#   compile  ONNX Runtime offline optimization, parity again
#   image    serving image built and pushed with docker buildx to the lab registry 127.0.0.1:5000
#   smoke    the pushed image run by digest: golden requests, latency
#   rollout  canary on the lab's Kubernetes cluster (namespace modelship-demo): verified, then promoted
# The image, smoke and rollout steps need the lab (Docker engine, registry, Kubernetes): as root this script
# starts it (lab/up.sh, ~5 min on a fresh machine, seconds after); pass --no-lab to stop after compile.
#   scripts/demo.sh [--no-lab] [MODEL_DIR | face]
#     MODEL_DIR: deploy.prototxt, weights.caffemodel and reference outputs
#     face: the second worked example, object detection: OpenCV's face detector (SSD, res10_300x300) with seeded
#           weights and reference inputs (test/fixtures/ssd/res10_300x300; scripts/ssd-reference.py makes them, in
#           .venv-opencv), its OpenCV reference outputs, and smoke's sample image with the detections OpenCV finds in it
#           (examples/face-detector/); the server preprocesses as the net was trained (MODELSHIP_PREPROCESS)
# MODELSHIP_DIST=DIR runs (and ships in the image) the bundle DIR/index.js instead of dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
lab=1
if [ "${1:-}" = "--no-lab" ]; then lab=0; shift; fi
dir=${1:-}
face=0
if [ "$dir" = face ]; then face=1; dir=test/fixtures/ssd/res10_300x300; fi
if [ -z "$dir" ]; then
  if [ -f ../shared/caffe-oracle/models/bvlc_googlenet/weights.caffemodel ]; then dir=../shared/caffe-oracle/models/bvlc_googlenet
  else dir=test/fixtures/caffe/lenet; fi
fi
name=$(basename "$dir" | tr 'A-Z_.' 'a-z--')
out=out/$name
mkdir -p "$out"
bundle=${MODELSHIP_DIST:-dist}
ms() { node "$bundle/index.js" "$@"; }
get() { sed -n "s/^$1=//p" "$2"; }

weights=$dir/weights.caffemodel
smoke_args=()
image_args=()
rollout_patch=examples/lab-realnode.patch.yaml
if [ "$face" = 1 ]; then
  # the face detector's weights are seeded, not committed: made from the fixture's recipe (numpy, in .venv-opencv)
  py=.venv-opencv/bin/python
  if [ ! -x "$py" ]; then
    echo "== .venv-opencv (numpy, OpenCV: test/requirements-opencv.txt)"
    python3 -m venv .venv-opencv && "$py" -m pip install --quiet --only-binary=:all: -r test/requirements-opencv.txt
    cp test/requirements-opencv.txt .venv-opencv/requirements.txt
  fi
  weights=$out/weights.caffemodel
  "$py" scripts/ssd-reference.py weights "$dir" "$weights"
  # the reference: OpenCV's outputs (committed) and the inputs they were computed from (made from the seed)
  rm -rf "$out/reference" && cp -r "$dir" "$out/reference"
  "$py" scripts/ssd-reference.py inputs "$dir" "$out/reference"
  dir=$out/reference
  # the image carries the face detector's preprocessing (OpenCV's face detector sample: the whole image to 300x300,
  # BGR, mean 104/177/123), so its /detect answers as the net was trained, in smoke and in the rollout alike
  image_args=(--preprocess '{"mean": [104, 177, 123]}')
  # the sample image through /detect must give the detections OpenCV finds in it (pixels of the image, score ≥ 0.5)
  smoke_args=(--sample-image examples/face-detector/sample.png --expected-detections "$(cat examples/face-detector/expected-detections.json)"
    --detection-threshold 0.5)
fi

echo "== convert $dir"
ms convert --prototxt "$dir/deploy.prototxt" --caffemodel "$weights" --out "$out/model.onnx" \
  --reference "$dir" $([ "$face" = 1 ] || echo --per-layer) | tee "$out/convert.out"
cat "$out/parity.md"
echo "== compile"
ms compile --model "$out/model.onnx" --reference "$dir" | tee "$out/compile.out"
[ "$lab" = 1 ] || exit 0

if [ "$(id -u)" = 0 ]; then bash lab/up.sh >/dev/null; fi
. /var/lib/modelship-lab/env.sh 2>/dev/null || { echo "the lab is not up: run 'lab/up.sh' as root, or use --no-lab" >&2; exit 1; }
echo "== image → ${LAB_REGISTRY}/modelship/$name"
# offline, the image carries the Node.js that runs this script (on a runner: the pinned official release, downloaded)
MODELSHIP_DIST=$bundle ms image --image "$LAB_REGISTRY/modelship/$name" --model "$(get artifact-path "$out/compile.out")" --model-name "$name" \
  --node-binary "$(command -v node)" --base-image "$LAB_BASE_IMAGE" --parity "$(get parity "$out/convert.out")" --compose-file "$out/docker-compose.yml" \
  --revision "$(git rev-parse HEAD 2>/dev/null || echo 0000000)" ${image_args[@]+"${image_args[@]}"} | tee "$out/image.out"
echo "== smoke $(get image "$out/image.out")"
ms smoke --image "$(get image "$out/image.out")" --model-name "$name" --reference "$dir" --requests 100 --concurrency 4 \
  ${smoke_args[@]+"${smoke_args[@]}"} | tee "$out/smoke.out"
echo "== rollout → namespace modelship-demo (canary, then promote)"
ms rollout --image "$(get image "$out/image.out")" --model-name "$name" --app "$name" --namespace modelship-demo \
  --reference "$dir" --replicas 2 --bake-time 5 --cpu 200m --memory 512Mi --patch "$rollout_patch" \
  | tee "$out/rollout.out" | grep -v '^rollout-report='
