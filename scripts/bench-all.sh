#!/usr/bin/env bash
# bench-all.sh: the rotary bench runs behind docs/performance.md (1 and 2 threads: f32/bf16 x both pairings, f16
# both pairings, bhsd, out of place, table-free, decode, a real config), each printed as one JSON object after a
# "### options" line; the whole set RUNS times (default 1), set after set, so that slow spells of a shared machine
# spread over every case. TORCH=PYTHON adds the default shape with a real torch row (rotary bench --torch=PYTHON;
# that Python must import torch). scripts/bench_summary.py turns the output into the table of docs/performance.md;
# scripts/plot_bench.py draws it (docs/bench.md).
# Usage: [RUNS=N] [TORCH=python3] scripts/bench-all.sh [build dir, default build]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}/tools/rotary
run() { echo "### $*"; "$B" bench "$@" --json 2>/dev/null; echo; }
for ((r = 0; r < ${RUNS:-1}; r++)); do
  for t in 1 2; do
    for dt in f32 bf16 f16; do for p in half interleaved; do run --threads $t --dtype $dt --pairing $p --reps 30; done; done
    run --threads $t --layout bhsd --reps 30
    run --threads $t --out-of-place --reps 30
    run --threads $t --table-free --reps 30
    run --threads $t --decode 64 --model llama3-8b --reps 400
    run --threads $t --config examples/configs/llama-3.1-8b.json --reps 30
    if [ -n "${TORCH:-}" ]; then run --threads $t --torch="$TORCH" --reps 30; fi
  done
done
