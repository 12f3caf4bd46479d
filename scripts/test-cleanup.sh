#!/usr/bin/env bash
# What earlier test runs left on this machine, removed once it is older than a few hours (a run going on beside this
# one keeps its own): the images the tests built and pulled into the engine (repositories the tests name:
# modelship-test/, modelship-bench/, the act workflows' acme/models/, and those of the temporary registries the
# registry tests start on other 127.0.0.1 ports), the engine's build cache older than a day or beyond 8 GB, the image stage's build
# contexts (`$TMPDIR/modelship-build/`, which the stage itself keeps for a day) and the tests' own temporary
# directories. A CI machine that keeps its disk between runs otherwise fills it: a run leaves 5-10 GB. The lab's base
# images (local/...), the lab registry's contents and every cache the tests reuse (.tools, .venv-*, .whl*) stay.
#   bash scripts/test-cleanup.sh [hours]      (default 3; scripts/test.sh runs it before the tests)
set -uo pipefail
hours=${1:-3}
cutoff=$(($(date +%s) - hours * 3600))
tmp=${TMPDIR:-/tmp}
freed_before=$(df -k --output=avail "$tmp" | tail -1)

if docker info >/dev/null 2>&1; then
  docker images --format '{{.Repository}}:{{.Tag}}|{{.ID}}|{{.CreatedAt}}' |
    while IFS='|' read -r ref id created; do
      case "$ref" in
        */modelship-test/* | */modelship-bench/* | 127.0.0.1:5000/acme/models/* | 127.0.0.1:5000/acme/models:*) ;;
        127.0.0.1:5000/*) continue ;;
        127.0.0.1:*/*) ;;
        *) continue ;;
      esac
      t=$(date -d "${created% UTC}" +%s 2>/dev/null) || continue
      # by name (an image also tagged elsewhere keeps its other names); an untagged one by its ID, if nothing else uses it
      [ "$t" -lt "$cutoff" ] && { [ "${ref%:<none>}" = "$ref" ] && echo "$ref" || echo "$id"; }
    done |
    xargs -r -n 50 docker image rm >/dev/null 2>&1
  # BuildKit's cache: a day of it, and at most 8 GB (it grows by several GB a run: each run's test images are new)
  docker builder prune -f --filter until=24h >/dev/null 2>&1
  docker builder prune -f --keep-storage 8GB >/dev/null 2>&1
fi
for d in "$tmp"/modelship-build/*/ "$tmp"/modelship-run-*/ "$tmp"/bench-*/; do
  [ -d "$d" ] || continue
  used="$d/.used"
  [ -e "$used" ] || used="$d"
  [ "$(stat -c %Y "$used")" -lt "$cutoff" ] && rm -rf "$d"
done
freed_after=$(df -k --output=avail "$tmp" | tail -1)
echo "scripts/test-cleanup.sh: removed what test runs left more than ${hours} h ago: $(((freed_after - freed_before) / 1024)) MiB freed, $((freed_after / 1024 / 1024)) GiB free"
