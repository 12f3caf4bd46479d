#!/usr/bin/env bash
# The main job on a local default: convert a Caffe model to ONNX with the bundled action code (dist/, no
# install needed) and prove it against real Caffe's outputs at batch 1 and 2 and layer by layer.
#   scripts/demo.sh                 # GoogLeNet from ../shared/caffe-oracle when present, else the bundled LeNet
#   scripts/demo.sh DIR             # any dir with deploy.prototxt, weights.caffemodel and reference outputs
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-}
if [ -z "$dir" ]; then
  if [ -f ../shared/caffe-oracle/models/bvlc_googlenet/weights.caffemodel ]; then dir=../shared/caffe-oracle/models/bvlc_googlenet
  else dir=test/fixtures/caffe/lenet; fi
fi
name=$(basename "$dir")
mkdir -p out
set -x
node dist/index.js convert --prototxt "$dir/deploy.prototxt" --caffemodel "$dir/weights.caffemodel" \
  --out "out/$name/model.onnx" --reference "$dir" --per-layer
set +x
cat "out/$name/parity.md"
