#!/usr/bin/env bash
# bench-all.sh: the rotary bench runs behind docs/performance.md (1 and 2 threads: f32/bf16 x both pairings, f16
# both pairings, bhsd, out of place, table-free, decode, a real config), each printed as one JSON object after a
# "### options" line; the whole set RUNS times (default 1), set after set, so that slow spells of a shared machine
# spread over every case. TORCH=PYTHON adds the default shape with a real torch row (rotary bench --torch=PYTHON;
# that Python must import torch). scripts/bench_summary.py turns the output into the table of docs/performance.md;
# scripts/plot_bench.py draws it (docs/bench.md).
# STREAMS=1 adds the multi-stream runs (rotary bench --streams text|image: Qwen2-VL-7B and Qwen3-VL-8B text shapes,
# bf16, 4096-token prefill and 64 x 1 decode, table and table-free, each against the same call with 1-D ids);
# STREAMS=only runs just those.
# Usage: [RUNS=N] [TORCH=python3] [STREAMS=1|only] scripts/bench-all.sh [build dir, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}/tools/rotary
run() { echo "### $*"; "$B" bench "$@" --json 2>/dev/null; echo; }
streams() { # streams THREADS
  for m in qwen2-vl-7b qwen3-vl-8b; do
    for pattern in text image; do
      run --streams $pattern --model $m --dtype bf16 --tokens 4096 --table-free --threads "$1" --reps 30
      run --streams $pattern --model $m --dtype bf16 --decode 64 --table-free --threads "$1" --reps 400
    done
  done
}
for ((r = 0; r < ${RUNS:-1}; r++)); do
  for t in 1 2; do
    if [ "${STREAMS:-}" = only ]; then streams $t; continue; fi
    if [ -n "${STREAMS:-}" ]; then streams $t; fi
    for dt in f32 bf16 f16; do for p in half interleaved; do run --threads $t --dtype $dt --pairing $p --reps 30; done; done
    run --threads $t --layout bhsd --reps 30
    run --threads $t --out-of-place --reps 30
    run --threads $t --table-free --reps 30
    run --threads $t --decode 64 --model llama3-8b --reps 400
    run --threads $t --config examples/configs/llama-3.1-8b.json --reps 30
    if [ -n "${TORCH:-}" ]; then run --threads $t --torch="$TORCH" --reps 30; fi
  done
done
