#!/usr/bin/env bash
# gpu-check.sh: the one run on a lent GPU machine (after scripts/gpu-prepare.sh here; carry .gpu and .whl): the GPU
# tests, compute-sanitizer on the error paths, the Python CUDA tests, `rotary bench --cuda` and the peer table.
# Logs and results go to $OUT (the device tool brings them back). Usage: scripts/gpu-check.sh [STAGE...] with
# stages tests, sanitizer, python, bench, variants, peers (default: all of them, in that order). variants: the
# bench for each build-time variant in .gpu/var (rotary-NAME), then the shipped one again, in one run.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
root=$PWD
export LD_LIBRARY_PATH=$root/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} PYTHONUNBUFFERED=1
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(tests sanitizer python bench variants peers)
summary=()
step() { # step NAME SECONDS COMMAND...: one timed step, its status kept for the summary
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  echo "=== $name"
  timeout "$limit" "$@"
  rc=$?
  echo "=== $name: rc=$rc ($((SECONDS - t0)) s)"
  summary+=("$(printf '%-28s rc=%-3s %4s s' "$name" "$rc" "$((SECONDS - t0))")")
}
pysite=""
if ls .whl/*.whl >/dev/null 2>&1; then # peers carried as wheels (Liger)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl &&
    pysite=/tmp/site
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
  step "rotary info" 30 .gpu/bin/rotary info
  for s in "${stages[@]}"; do
    case $s in
      tests)
        for t in .gpu/tests/test_*; do step "$(basename "$t")" 180 "$t"; done ;;
      sanitizer)
        for t in test_cuda_errors test_cuda_kv; do
          [ -x ".gpu/tests/$t" ] && ROTARY_TEST_QUICK=1 step "memcheck $t" 180 \
            compute-sanitizer --tool memcheck --error-exitcode 9 ".gpu/tests/$t"
        done ;;
      python)
        step "pytest test_cuda.py" 240 env ROTARY_LIBRARY_DIR="$root/.gpu/lib" \
          PYTHONPATH="$root/python${pysite:+:$pysite}" python3 -m pytest -q -x tests/python/test_cuda.py ;;
      bench)
        step "rotary bench --cuda" 180 .gpu/bin/rotary bench --cuda --json "$out/bench.json" ;;
      variants)
        for b in .gpu/var/rotary-* .gpu/bin/rotary; do
          [ -x "$b" ] && step "bench $(basename "$b")" 90 bash -c "'$b' bench --cuda --reps 100 | grep -E '^\\| [BsSd]|^decode: a graph'"
        done ;;
      peers)
        step "bench/gpu_table.py" 300 env ROTARY_LIBRARY_DIR="$root/.gpu/lib" \
          PYTHONPATH="$root/python${pysite:+:$pysite}" python3 bench/gpu_table.py --rotary .gpu/bin/rotary \
          --out "$out/table.md" ;;
      *) echo "unknown stage $s" ;;
    esac
  done
  echo
  echo "=== summary"
  printf '%s\n' "${summary[@]}"
} 2>&1 | tee "$out/gpu-check.log"
