#!/usr/bin/env bash
# bench-all.sh: the rotary bench runs behind docs/performance.md (1 and 2 threads: f32/bf16 x both pairings, f16
# both pairings, bhsd, out of place, q and k as views into packed QKV rows (llama3-8b, bf16), table-free, decode, a
# real config), each printed as one JSON object after a
# "### options" line; the whole set RUNS times (default 1), set after set, so that slow spells of a shared machine
# spread over every case. TORCH=PYTHON adds the default shape with a real torch row (rotary bench --torch=PYTHON;
# that Python must import torch). scripts/bench_summary.py turns the output into the table of docs/performance.md;
# scripts/plot_bench.py draws it (docs/bench.md).
# STREAMS=1 adds the multi-stream runs (rotary bench --streams text|image: Qwen2-VL-7B and Qwen3-VL-8B text shapes,
# bf16, 4096-token prefill and 64 x 1 decode, table and table-free, each against the same call with 1-D ids);
# STREAMS=only runs just those.
# ROWS=quick runs a reduced set for a shared machine (per thread count: f16 both pairings, bhsd, table-free (its
# run has the f32 fused row too), decode 64 x 1). BENCH_ARGS adds options to every rope run (e.g. --fused-only).
# COMPARE_TUNING=FILE runs every case twice, with the defaults ("### [default] options", ROTARY_TUNING_FILE unset)
# and with the tuning file ("### [tuned] options", ROTARY_TUNING_FILE=FILE), back to back, which goes first
# alternating from case to case and from set to set (scripts/tune-compare.sh).
# Usage: [RUNS=N] [ROWS=all|quick] [TORCH=python3] [STREAMS=1|only] [BENCH_ARGS=...] [COMPARE_TUNING=FILE]
#        scripts/bench-all.sh [build dir (default build) or the rotary binary]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}/tools/rotary
if [ -f "${1:-}" ] && [ -x "${1:-}" ]; then B=$1; fi # the rotary binary itself
read -r -a EXTRA <<< "${BENCH_ARGS:-}"
CASE=0 # cases run so far: which side goes first under COMPARE_TUNING
one() { # one SIDE ARGS...: a run with the defaults (SIDE default) or the tuning file (SIDE tuned)
  local side=$1
  shift
  local err rc=0
  err=$(mktemp)
  echo "### ${side:+[$side] }$*"
  if [ "$side" = tuned ]; then ROTARY_TUNING_FILE="$COMPARE_TUNING" "$B" bench "$@" --json 2> "$err" || rc=$?
  elif [ -n "$side" ]; then env -u ROTARY_TUNING_FILE "$B" bench "$@" --json 2> "$err" || rc=$?
  else "$B" bench "$@" --json 2> "$err" || rc=$?; fi
  if [ "$rc" != 0 ]; then
    echo "bench-all.sh: rotary bench $* failed (exit $rc): $(cat "$err")" >&2
    rm -f "$err"
    exit "$rc"
  fi
  rm -f "$err"
  echo
}
run() {
  if [ -z "${COMPARE_TUNING:-}" ]; then one "" "$@"; return; fi
  if (( (CASE + r) % 2 )); then one tuned "$@"; one default "$@"; else one default "$@"; one tuned "$@"; fi
  CASE=$((CASE + 1))
}
rope() { run "$@" ${EXTRA[@]+"${EXTRA[@]}"}; }
streams() { # streams THREADS
  for m in qwen2-vl-7b qwen3-vl-8b; do
    for pattern in text image; do
      run --streams $pattern --model $m --dtype bf16 --tokens 4096 --table-free --threads "$1" --reps 30
      run --streams $pattern --model $m --dtype bf16 --decode 64 --table-free --threads "$1" --reps 400
    done
  done
}
for ((r = 0; r < ${RUNS:-1}; r++)); do
  CASE=0
  for t in 1 2; do
    if [ "${STREAMS:-}" = only ]; then streams $t; continue; fi
    if [ -n "${STREAMS:-}" ]; then streams $t; fi
    if [ "${ROWS:-all}" = quick ]; then
      for p in half interleaved; do rope --threads $t --dtype f16 --pairing $p --reps 30; done
      rope --threads $t --layout bhsd --reps 30
      rope --threads $t --table-free --reps 30
      rope --threads $t --decode 64 --model llama3-8b --reps 400
      continue
    fi
    for dt in f32 bf16 f16; do for p in half interleaved; do rope --threads $t --dtype $dt --pairing $p --reps 30; done; done
    rope --threads $t --layout bhsd --reps 30
    rope --threads $t --out-of-place --reps 30
    rope --threads $t --qkv --model llama3-8b --dtype bf16 --reps 30
    rope --threads $t --table-free --reps 30
    rope --threads $t --decode 64 --model llama3-8b --reps 400
    rope --threads $t --config examples/configs/llama-3.1-8b.json --reps 30
    if [ -n "${TORCH:-}" ]; then rope --threads $t --torch="$TORCH" --reps 30; fi
  done
done
