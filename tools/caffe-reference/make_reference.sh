#!/bin/bash
# Regenerate parity reference data with REAL Caffe (Debian 11 "bullseye" python3-caffe, CPU_ONLY).
# Debian 12 has no Caffe package and python3-caffe needs python3 < 3.10, so this builds a bullseye chroot
# (debootstrap, from Debian's mirror only) and runs make_reference.py inside it.
#
# usage (as root): tools/caffe-reference/make_reference.sh DIR [DIR ...]
#   each DIR holds a deploy.prototxt (V1 or V2); the script writes weights.caffemodel (seeded, unless one is
#   already there and --keep-weights is given), input_b1.npy, input_b2.npy, output_b<N>__<blob>.npy, blobs_b1/
#   and summary.json — the layout `modelship convert --reference DIR` reads.
# The chroot (~1.1 GB, ~70 s the first time) is kept in $CHROOT (default /opt/bullseye-caffe).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CHROOT=${CHROOT:-/opt/bullseye-caffe}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "make_reference.sh: run as root (debootstrap, chroot, mount)" >&2; exit 2; }
[ $# -gt 0 ] || { echo "usage: $0 [--keep-weights] DIR [DIR ...]" >&2; exit 2; }

if [ ! -x "$CHROOT/usr/bin/python3" ] || ! chroot "$CHROOT" /usr/bin/python3 -c 'import caffe' 2>/dev/null; then
  command -v debootstrap >/dev/null || { apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap; }
  [ -e "$CHROOT/etc/debian_version" ] || debootstrap --variant=minbase bullseye "$CHROOT" "$MIRROR"
  chroot "$CHROOT" /bin/bash -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-caffe caffe'
fi

# bind-mount every target directory (and this script) at the same path inside the chroot
args=() mounts=()
cleanup() { for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
bind() { mkdir -p "$CHROOT$1"; mountpoint -q "$CHROOT$1" || { mount --bind "$1" "$CHROOT$1"; mounts+=("$CHROOT$1"); }; }
bind "$HERE"
for a in "$@"; do
  if [ -d "$a" ]; then d=$(cd "$a" && pwd); bind "$d"; args+=("$d"); else args+=("$a"); fi
done
chroot "$CHROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root GLOG_minloglevel=2 \
  /usr/bin/python3 "$HERE/make_reference.py" "${args[@]}"
