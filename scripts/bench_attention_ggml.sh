#!/usr/bin/env bash
# bench_attention_ggml.sh: times ggml's CPU flash_attn_ext (what llama.cpp runs for attention on the CPU) on issue
# 14's decode shapes, llama3-8b heads (32 q heads, 8 kv heads, head_dim 128, 1 query token per sequence): 64
# sequences x 4096 cached tokens and 1 x 32768, K/V cache in f16 (llama.cpp's default), bf16 and q8_0, at 1 and 2
# threads. A manual side-by-side for scripts/bench_attention_* figures; CI never runs it.
# GGML_SRC: a ggml or llama.cpp source tree (required; without it the script says so and exits 0). Its CPU backend is
# built (Release, GGML_NATIVE=ON, no GPU or BLAS backend, static) into GGML_BUILD (default
# ${TMPDIR:-/tmp}/ggml-cpu-build-<checksum of GGML_SRC's path>) unless already built there, then
# scripts/bench_attention_ggml.c is compiled against it (ggml's public API: ggml_flash_attn_ext with an f16 mask,
# ggml_graph_plan/ggml_graph_compute with a ggml threadpool, as llama.cpp calls it).
# RUNS (default 7): timed runs per case after one warm-up; the table gives the median and the minimum.
# SHAPES (default "64x4096 1x32768"), TYPES (default "f16 bf16 q8_0"), THREADS (default "1 2"), JOBS (build -j,
# default 2), CASE_TIMEOUT (seconds per case, default 900), GGML_COMMIT (printed when GGML_SRC is not a git tree).
# Output: a markdown table: shape (sequences x cached tokens), kv type, threads, median and min ms, cache GB/s (K+V
# bytes read once / median time), the max |error| of two output rows against an fp64 reference over the stored
# cache (a layout check), and "other cpu": the cores' worth of CPU time other processes took during the timed runs
# (from /proc/stat; above ~0.1 the machine was shared and the times are suspect). A case that does not fit in
# MemAvailable or in CASE_TIMEOUT gets a row saying so.
# Usage: GGML_SRC=/path/to/ggml-or-llama.cpp [GGML_BUILD=dir] [RUNS=7] scripts/bench_attention_ggml.sh
set -euo pipefail
if [ -z "${GGML_SRC:-}" ]; then
  echo "bench_attention_ggml.sh: set GGML_SRC to a ggml or llama.cpp source tree to time its CPU flash_attn_ext; skipped"
  exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
src=$(realpath "$GGML_SRC")
if [ -f "$src/include/ggml.h" ] && [ -f "$src/CMakeLists.txt" ]; then
  gsrc=$src                # ggml itself
elif [ -f "$src/ggml/include/ggml.h" ]; then
  gsrc=$src/ggml           # llama.cpp (ggml builds standalone from its ggml/ folder)
else
  echo "bench_attention_ggml.sh: no include/ggml.h or ggml/include/ggml.h under $src" >&2
  exit 2
fi
build=${GGML_BUILD:-${TMPDIR:-/tmp}/ggml-cpu-build-$(printf '%s' "$src" | cksum | cut -d' ' -f1)}
jobs=${JOBS:-2}
if [ ! -f "$build/CMakeCache.txt" ]; then
  echo "bench_attention_ggml.sh: configuring ggml's CPU backend in $build" >&2
  cmake -S "$gsrc" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_BLAS=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF \
    -DGGML_OPENCL=OFF -DGGML_BUILD_TESTS=OFF -DGGML_BUILD_EXAMPLES=OFF > "$build.cmake.log" 2>&1 ||
    { echo "bench_attention_ggml.sh: cmake configure failed, see $build.cmake.log" >&2; exit 1; }
fi
cmake --build "$build" --target ggml-cpu ggml-base -j"$jobs" > "$build.build.log" 2>&1 ||
  { echo "bench_attention_ggml.sh: ggml build failed, see $build.build.log" >&2; exit 1; }
lib_cpu=$(find "$build" -name 'libggml-cpu.a' | head -n1)
lib_base=$(find "$build" -name 'libggml-base.a' | head -n1)
if [ -z "$lib_cpu" ] || [ -z "$lib_base" ]; then
  echo "bench_attention_ggml.sh: libggml-cpu.a / libggml-base.a not found under $build" >&2
  exit 1
fi
omp=""  # ggml-cpu built with OpenMP (its default) needs the OpenMP runtime at link time
if grep -aqE 'GOMP_|__kmpc_' "$lib_cpu"; then omp=-fopenmp; fi
bin=$build/bench_attention_ggml
cc -std=c11 -O2 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -I"$gsrc/include" "$here/bench_attention_ggml.c" -o "$bin" \
  "$lib_cpu" "$lib_base" -lstdc++ -lm $omp -lpthread

commit=${GGML_COMMIT:-$(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "ggml $commit ($gsrc), built in $build ($( [ -n "$omp" ] && echo OpenMP || echo ggml threads ))"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; runs per case ${RUNS:-7}; load average before: $(loadavg)"
echo
echo "| shape | kv type | threads | median ms | min ms | cache GB/s | max err | other cpu |"
echo "|---|---|---|---|---|---|---|---|"
for shape in ${SHAPES:-64x4096 1x32768}; do
  seqs=${shape%x*} kv=${shape#*x}
  for type in ${TYPES:-f16 bf16 q8_0}; do
    case $type in f16|bf16) bpe=2 ;; q8_0) bpe=1.0625 ;; *) echo "unknown type $type" >&2; exit 2 ;; esac
    need_mb=$(awk -v s="$seqs" -v k="$kv" -v b="$bpe" 'BEGIN { printf "%d", 2 * s * k * 8 * 128 * b / 1048576 + 64 }')
    avail_mb=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
    for t in ${THREADS:-1 2}; do
      if [ "$need_mb" -gt $((avail_mb * 8 / 10)) ]; then
        echo "| $seqs x $kv | $type | $t | not run: needs ${need_mb} MB, ${avail_mb} MB available | | | | |"
        continue
      fi
      rc=0
      row=$(timeout "${CASE_TIMEOUT:-900}" "$bin" "$seqs" "$kv" "$type" "$t" "${RUNS:-7}") || rc=$?
      if [ $rc -eq 124 ]; then
        echo "| $seqs x $kv | $type | $t | not run: over CASE_TIMEOUT=${CASE_TIMEOUT:-900} s | | | | |"
      elif [ $rc -ne 0 ]; then
        echo "| $seqs x $kv | $type | $t | failed (exit $rc) | | | | |"
      else
        echo "$row"
      fi
    done
  done
done
echo
echo "load average after: $(loadavg)"
