#!/usr/bin/env bash
# tune-compare.sh: the defaults against a tuning file on scripts/bench-all.sh's cases (issue 13's "default vs tuned"
# table). RUNS sets (default 5) of bench-all.sh with COMPARE_TUNING=FILE: every case runs with the defaults and with
# ROTARY_TUNING_FILE=FILE back to back, alternating which goes first; rope runs take --fused-only (the baselines
# do not depend on the settings). The raw output goes to OUT (default tune-compare-<date>.txt), then
# scripts/bench_summary.py --compare prints per row the default and tuned medians of % of stream with their ranges
# and the tuned / default time ratio, flagging rows where tuned is slower beyond the default's spread (exit status
# 1 when one is).
# ROWS=quick (the default here) runs bench-all.sh's reduced set (10 cases, 20 runs: 35 s a set on the shared 2-core
# development VM at load 6; RUNS=5: 4.6 minutes); ROWS=all runs the whole set.
# BENCH_ARGS adds options to every run (after the case's own: "--reps 5" shortens every case).
# Usage: [RUNS=5] [ROWS=quick|all] [OUT=file] [BENCH_ARGS=...] scripts/tune-compare.sh TUNING_FILE
#        [build dir (default build) or the rotary binary]
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '2,14s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
file=$(realpath "$1")
build=$(realpath "${2:-build}")
cd "$(dirname "$0")/.."
B="$build/tools/rotary"
if [ -f "$build" ] && [ -x "$build" ]; then B=$build; fi # the rotary binary itself
# The file must load (the bench says why when it does not), and no setting's own variable may blur the comparison.
"$B" bench --tuning "$file" --tokens 2 --heads 1 --head-dim 2 --reps 1 --threads 1 --fused-only > /dev/null
for v in ROTARY_PREFETCH ROTARY_STREAM_STORES ROTARY_THREAD_BYTES ROTARY_TASKS_PER_THREAD ROTARY_HEAD_GROUP; do
  if [ -n "${!v:-}" ]; then echo "tune-compare.sh: $v is set: it would override both sides; unset it" >&2; exit 2; fi
done
out=${OUT:-tune-compare-$(date -u +%Y%m%d-%H%M%S).txt}
echo "tune-compare.sh: ${RUNS:-5} sets of ROWS=${ROWS:-quick}, raw output in $out; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
RUNS=${RUNS:-5} ROWS=${ROWS:-quick} COMPARE_TUNING="$file" BENCH_ARGS="--fused-only ${BENCH_ARGS:-}" TORCH= STREAMS= \
  scripts/bench-all.sh "$build" > "$out"
echo "tune-compare.sh: done; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "tuning file: $file"
python3 scripts/bench_summary.py --compare "$out"
