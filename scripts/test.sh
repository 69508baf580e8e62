#!/usr/bin/env bash
# test.sh: every test: release build (warnings as errors), dispatch capped to each ISA, ASan+UBSan, TSan (also with
# the scalar kernels), valgrind, install check, rotary as a CMake subproject, the Doxygen API reference, a libFuzzer
# run per fuzz target, the aarch64 (NEON) build under qemu-user, the Python package (a wheel checked by auditwheel,
# in a venv with torch, transformers, onnx, onnxruntime) and the MindSpore Custom op (a venv with MindSpore).
# ROTARY_SKIP_ARM=1 and ROTARY_SKIP_PYTHON=1 leave out the stages that need those downloads.
# Time on a 2-core machine (landing must stay under 20 minutes): the release stage runs every sweep in full; the
# slow tools (valgrind, qemu, TSan) and the repeated runs (ISA caps) run the quick sizes (ROTARY_TEST_QUICK=1: fewer
# sizes and positions, every kernel variant and code path); the Python and MindSpore venvs are installed in the
# background (network and disk) while the C stages use the cores, and pytest runs on every core (pytest-xdist).
# Usage: scripts/test.sh [--quick]
#   --quick: installs only cmake, a C compiler, cmocka and MPFR, and runs the release suite in its quick sizes
#            (ROTARY_TEST_QUICK=1: the 2^20-position sweeps sampled); about a minute from a clean build.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ $quick = 1 ]; then deps=(--quick); else deps=(); fi
bash scripts/install-deps.sh "${deps[@]}" || { echo "test.sh: could not install dependencies"; exit 1; }

passed=0 failed=0 failed_names=()
stage() { # stage NAME COMMAND...: runs one stage, counts it
  local name=$1; shift
  echo; echo "=== $name"
  local t0=$SECONDS
  if "$@"; then passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"
  else failed=$((failed + 1)); failed_names+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)"; fi
}

build() { # build DIR CMAKE_ARGS...
  local dir=$1; shift
  cmake -S . -B "$dir" -DROTARY_WERROR=ON "$@" >/dev/null && cmake --build "$dir" -j"$jobs" >/dev/null
}

release() { # quick mode: ROTARY_TEST_QUICK=1 (the tests' reduced sizes). The CUDA backend is compiled where nvcc is
  # (ROTARY_CUDA=AUTO; every CPU test runs, the GPU tests report "skipped" without a device); the other stages
  # build without it (ROTARY_CUDA=OFF: the rotary_cuda_* functions return ROTARY_ERR_UNSUPPORTED, which
  # test_cuda_api checks). Without a GPU (nvidia-smi lists none) the kernels are only compile-checked, for one
  # architecture (sm_80) instead of the default three (the kernels have no per-architecture code): about 26 s less.
  # CUDAARCHS (CMake's variable for the list) overrides both.
  local cuda_archs=()
  [ -n "${CUDAARCHS:-}" ] || nvidia-smi -L 2>/dev/null | grep -q '^GPU' ||
    cuda_archs=(-DCMAKE_CUDA_ARCHITECTURES=80-real)
  build build-test -DCMAKE_BUILD_TYPE=Release "${cuda_archs[@]}" &&
    echo "CUDA backend: $(grep -q 'ROTARY_CUDA_BUILT:INTERNAL=ON' build-test/CMakeCache.txt && echo built ||
      echo 'not built') (nvcc: $(command -v nvcc || echo none))" &&
    (cd build-test && if [ $quick = 1 ]; then export ROTARY_TEST_QUICK=1; fi && ctest --output-on-failure -j"$jobs")
}

isa_caps() { # the dispatcher with features disabled in turn: every public-API test on each lower ISA, in the quick
  # sizes (the release stage ran the full sizes on the best ISA; test_kernels runs every kernel variant directly)
  local rc=0 isa
  export ROTARY_TEST_QUICK=1
  for isa in scalar avx2 avx512; do
    echo "ROTARY_ISA=$isa: $(ROTARY_ISA=$isa build-test/tools/rotary info | grep 'f32  half')"
    (cd build-test && ROTARY_ISA=$isa ctest --output-on-failure -j"$jobs" \
      -R 'apply|threads|errors|fuzz|fork|unaligned|example|kv|convert|streams|settings|attn|attention') || rc=1
  done
  for isa in avx2 avx512; do # every out-of-place call through the non-temporal-store kernels
    echo "ROTARY_STREAM_STORES=0 ROTARY_ISA=$isa: $(ROTARY_STREAM_STORES=0 ROTARY_ISA=$isa build-test/tools/rotary info |
      grep -A1 'non-temporal' | tail -1)"
    (cd build-test && ROTARY_STREAM_STORES=0 ROTARY_ISA=$isa ctest --output-on-failure -j"$jobs" \
      -R 'apply|threads|errors|fuzz|fork|unaligned|kv|streams|attention') || rc=1
  done
  for pf in off 4096; do # the software-prefetch knob changes timing only
    echo "ROTARY_PREFETCH=$pf: $(ROTARY_PREFETCH=$pf build-test/tools/rotary info | grep prefetch)"
    (cd build-test && ROTARY_PREFETCH=$pf ctest --output-on-failure -j"$jobs" -R 'apply|kernels|streams') || rc=1
  done
  unset ROTARY_TEST_QUICK
  return $rc
}

aarch64() { # cross-compiled NEON build, every test under qemu-user (quick sizes: emulation is slow)
  [ "$(uname -m)" = x86_64 ] || { echo "not an x86-64 host: skipped"; return 0; }
  build build-aarch64 -DCMAKE_BUILD_TYPE=Release -DROTARY_CUDA=OFF -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" &&
    qemu-aarch64 build-aarch64/tools/rotary info &&
    (cd build-aarch64 && ROTARY_TEST_QUICK=1 ctest --output-on-failure -j"$jobs")
}

asan() { # the whole suite; the pure numeric sweeps (family: every position below 2^20; table: 200000 positions;
  # sincos; kernels: a third head count; attention kernels: every row/key/head-dim combination and a dense exp
  # sweep), run in full by the release stage, in their quick sizes, which take the same code paths. Built at -O1:
  # gcc's ASan + UBSan build of the SIMD kernel files is the stage's longest part (attn_avx2.c 64-80 s at -O2, 36 s
  # at -O1); on a quiet machine the stage took 170 s at -O1 (build 95 s, tests 74 s; the tests 55 s at -O2)
  local sweeps='family_accuracy|test_table|test_sincos|test_kernels|test_attn_kernels'
  build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" \
    -DROTARY_CUDA=OFF -DROTARY_SANITIZE=address,undefined &&
    (cd build-asan && export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 &&
       ctest --output-on-failure -j"$jobs" -E "$sweeps" &&
       ROTARY_TEST_QUICK=1 ctest --output-on-failure -j"$jobs" -R "$sweeps")
}

tsan() { # tsan [ISA]: the thread tests under ThreadSanitizer, with dispatch capped to ISA when given, in the quick
  # sizes (the quick shapes still split over several threads); with the scalar kernels, where TSan sees every access,
  # test_threads (the pool's stress test: 200 rounds instead of 20, 1024 threads) also in full, on one core beside
  # the quick run (it is one process that ctest would run alone). cli_tune_compare (a smoke test of the tuning
  # scripts' plumbing over benchmark runs: 38 s under TSan with the scalar kernels, 16 s with the dispatched ones)
  # runs in the first pass only: its threads and plumbing are the same in both, and the scalar kernels it would run
  # are the ones the other tests of the scalar pass drive through the same pool. test_attn_kernels (the kernels called
  # directly, on one thread: nothing for TSan to see) is left out; test_attention and test_attn_execute run them on
  # contexts of 1 to 3 threads.
  local isa=${1:-} tests='threads|apply|fork|example|kv|streams|settings|tune|attention|attn' full_pid=""
  local skip='^test_attn_kernels$'
  [ -z "$isa" ] || skip='^(cli_tune_compare|test_attn_kernels)$'
  build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROTARY_CUDA=OFF -DROTARY_SANITIZE=thread &&
    (cd build-tsan && if [ -n "$isa" ]; then export ROTARY_ISA=$isa; fi && export TSAN_OPTIONS=halt_on_error=1 &&
      if [ "$isa" = scalar ]; then tests/test_threads >test_threads_full.log 2>&1 & full_pid=$!; fi
      ROTARY_TEST_QUICK=1 ctest --output-on-failure -j"$jobs" -R "$tests" -E "$skip"; rc=$?
      if [ -n "$full_pid" ]; then
        if wait "$full_pid"; then echo "test_threads in full sizes: ok"
        else tail -n 60 test_threads_full.log; echo "test_threads in full sizes: FAILED"; rc=1; fi
      fi
      exit $rc)
}

memcheck_one() { # memcheck_one PROGRAM: one test program under valgrind, in the quick mode, with its time
  local t0=$SECONDS
  if ROTARY_TEST_QUICK=1 valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    "$1" >/dev/null; then echo "valgrind $1: ok ($((SECONDS - t0)) s)"
  else echo "valgrind $1: FAILED ($((SECONDS - t0)) s)"; return 1; fi
}
export -f memcheck_one

memcheck() { # valgrind on every test program of the release build, one per core at a time, the slowest first (12-26 s
  # each on one core; the rest under 9 s);
  # the fuzz corpus replays are left to the ASan + UBSan stage, which runs them with the sanitizers the fuzzers were
  # built with
  local t s progs=() slow=(table apply hf_golden streams_apply scaling streams kernels kv_write settings_bits
    attn_kernels convert kv_rerotate attn_execute)
  for s in "${slow[@]}"; do [ -x "build-test/tests/test_$s" ] && progs+=("build-test/tests/test_$s"); done
  for t in build-test/tests/test_* build-test/examples/readme_example; do
    case $t in */test_fuzz_*_replay) continue ;; esac
    for s in "${slow[@]}"; do [ "$t" = "build-test/tests/test_$s" ] && continue 2; done
    [ -x "$t" ] && progs+=("$t")
  done
  printf '%s\n' "${progs[@]}" | xargs -P "$jobs" -I{} bash -c 'memcheck_one "$1"' _ {}
}

install_check() { # install, then build a consumer through pkg-config and through find_package
  local prefix tmp
  tmp=$(mktemp -d) prefix=$tmp/prefix
  cmake --install build-test --prefix "$prefix" >/dev/null || return 1
  local libdir
  libdir=$(dirname "$(find "$prefix" -name rotary.pc | head -n1)")/..
  PKG_CONFIG_PATH=$libdir/pkgconfig cc -o "$tmp/pc" examples/example.c \
    $(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags --libs rotary) -lm || return 1
  LD_LIBRARY_PATH=$libdir "$tmp/pc" >/dev/null || return 1
  mkdir -p "$tmp/consumer"
  cp examples/example.c "$tmp/consumer/"
  cat >"$tmp/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(rotary 0.1 REQUIRED)
add_executable(shared_example example.c)
target_link_libraries(shared_example PRIVATE rotary::rotary m)
add_executable(static_example example.c)
target_link_libraries(static_example PRIVATE rotary::rotary_static)
CM
  cat >"$tmp/consumer/hf.c" <<'C'
#include <rotary.h>
#include <stdio.h>
int main(int argc, char **argv) { /* reads a config.json through the installed librotary_hf */
  rotary_hf_config *h = NULL;
  char err[256];
  if (argc < 2 || rotary_hf_config_load(argv[1], &h, err, sizeof err) != ROTARY_OK) return printf("%s\n", err), 1;
  rotary_rope *r = NULL;
  const int ok = rotary_rope_create(rotary_hf_config_rope(h), 16, &r) == ROTARY_OK;
  rotary_rope_destroy(r);
  rotary_hf_config_destroy(h);
  return !ok;
}
C
  cat >>"$tmp/consumer/CMakeLists.txt" <<'CM'
add_executable(hf_example hf.c)
target_link_libraries(hf_example PRIVATE rotary::rotary_hf)
CM
  PKG_CONFIG_PATH=$libdir/pkgconfig cc -o "$tmp/pc_hf" "$tmp/consumer/hf.c" \
    $(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags --libs rotary-hf) || return 1
  LD_LIBRARY_PATH=$libdir "$tmp/pc_hf" examples/configs/llama-3.1-8b.json || return 1
  cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
    cmake --build "$tmp/consumer/build" >/dev/null &&
    LD_LIBRARY_PATH=$libdir "$tmp/consumer/build/shared_example" >/dev/null &&
    "$tmp/consumer/build/static_example" >/dev/null &&
    LD_LIBRARY_PATH=$libdir "$tmp/consumer/build/hf_example" examples/configs/phi-3-mini-128k-instruct.json &&
    "$prefix/bin/rotary" info >/dev/null || return 1
  rm -rf "$tmp"
}

subproject() { # rotary under a consumer's add_subdirectory(): tests and tool off by default, cmocka not needed
  local tmp rc=0
  tmp=$(mktemp -d)
  mkdir -p "$tmp/consumer" "$tmp/no-pkg-config"
  cp examples/example.c "$tmp/consumer/"
  cat >"$tmp/consumer/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.18)
project(consumer C)
add_subdirectory("$root" rotary)
add_executable(example example.c)
target_link_libraries(example PRIVATE rotary::rotary_static m)
CM
  # An empty pkg-config search path hides cmocka (and MPFR), as on a machine without them.
  PKG_CONFIG_LIBDIR=$tmp/no-pkg-config PKG_CONFIG_PATH='' cmake -S "$tmp/consumer" -B "$tmp/build" -DROTARY_CUDA=OFF \
    >"$tmp/log" 2>&1 ||
    { cat "$tmp/log"; echo "subproject: configure failed"; return 1; }
  grep -qx 'ROTARY_BUILD_TESTS:BOOL=OFF' "$tmp/build/CMakeCache.txt" &&
    grep -qx 'ROTARY_BUILD_TOOLS:BOOL=OFF' "$tmp/build/CMakeCache.txt" ||
    { echo "subproject: tests or tool default to ON"; rc=1; }
  if cmake --build "$tmp/build" --target help | grep -E '(test_|readme_example|rotary_cli)'; then
    echo "subproject: test or tool targets exist"; rc=1
  fi
  (cd "$tmp/build" && ctest -N | grep -q 'Total Tests: 0') || { echo "subproject: tests registered"; rc=1; }
  cmake --build "$tmp/build" -j"$jobs" >/dev/null && "$tmp/build/example" >/dev/null || rc=1
  rm -rf "$tmp"
  return $rc
}

api_reference() { # the Doxygen reference of include/rotary.h builds with no warning (WARN_AS_ERROR)
  rm -rf build-docs && mkdir -p build-docs && doxygen docs/api/Doxyfile && test -s build-docs/html/rotary_8h.html &&
    echo "build-docs/html/index.html: $(find build-docs/html -name '*.html' | wc -l) pages"
}

fuzz_cflags=(-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -ffp-contract=off -D_GNU_SOURCE -Iinclude
  $(find src -type d | sed 's/^/-I/') -Ithird_party/cjson -Ithird_party/cjson/cjson -DCJSON_HIDE_SYMBOLS)

fuzz_cc() { # fuzz_cc FILE: one object of the fuzz library, with FUZZ_CFLAGS (fuzz_cflags, exported as one string). The
  # SIMD kernel files (kernels/x86, kernels/arm) get ASan without UBSan (attn_avx2.c: 83 s of CPU with both, 42 s
  # with ASan alone; the five largest x86 files were about 60% of the library's time); every kernel variant runs
  # under gcc's UBSan in the ASan + UBSan stage, and the fuzzers' kernel calls keep ASan and coverage. The AVX-512
  # files, where the CPU has no AVX-512F (their kernels are never dispatched to), get no sanitizer at all. The whole
  # library: about 90 s of CPU.
  local f=$1 flags=() x
  for x in $FUZZ_CFLAGS; do
    case $f:$x in
      src/backend/cpu/kernels/x86/*avx512*:-fsanitize=*) grep -qw avx512f /proc/cpuinfo || continue ;;
    esac
    case $f:$x in
      src/backend/cpu/kernels/x86/*:-fsanitize=address,undefined | src/backend/cpu/kernels/arm/*:-fsanitize=address,undefined)
        x=-fsanitize=address ;;
    esac
    flags+=("$x")
  done
  case $f in
    src/backend/cpu/kernels/x86/*avx512*) grep -qw avx512f /proc/cpuinfo || { clang "${flags[@]}" -c "$f" \
      -o "build-fuzz/obj/$(echo "$f" | tr / _).o"; return; } ;;
  esac
  clang "${flags[@]}" -fsanitize=fuzzer-no-link -c "$f" -o "build-fuzz/obj/$(echo "$f" | tr / _).o"
}
export -f fuzz_cc

fuzz_lib() { # librotary, librotary_hf and the bundled cJSON compiled once with the fuzzers' instrumentation (fuzz_cc),
  # the x86 kernel files first, the longest (attn_avx2.c: about 40 s; the rest compile beside it), then the
  # others, the largest first
  rm -rf build-fuzz/obj && mkdir -p build-fuzz/obj &&
    { ls -S src/backend/cpu/kernels/x86/*.c
      find src -name '*.c' -not -path 'src/backend/cuda/*' -not -path 'src/backend/cpu/kernels/x86/*' -print0 |
        xargs -0 ls -S
      echo third_party/cjson/cJSON.c; } |
    FUZZ_CFLAGS="${fuzz_cflags[*]}" xargs -P"$jobs" -I{} bash -c 'fuzz_cc "$1"' _ {} &&
    ar rcs build-fuzz/librotary_fuzz.a build-fuzz/obj/*.o
}

fuzz_one() { # fuzz_one NAME: tests/fuzz/NAME.c with libFuzzer + ASan + UBSan, run over a copy of its corpus
  local name=$1 work=build-fuzz/corpus_${1#fuzz_} corpus=tests/fuzz/corpus_${1#fuzz_} opts=()
  [ "$name" = fuzz_apply ] && corpus=tests/fuzz/corpus opts+=(-max_len=1024)
  [ -f "tests/fuzz/$name.dict" ] && opts+=(-dict="tests/fuzz/$name.dict")
  rm -rf "$work" && mkdir -p "$work" && { [ ! -d "$corpus" ] || cp -r "$corpus"/. "$work"/; } &&
    clang "${fuzz_cflags[@]}" -fsanitize=fuzzer "tests/fuzz/$name.c" build-fuzz/librotary_fuzz.a -lm -lpthread \
      -o "build-fuzz/$name" || { echo "$name: build failed"; return 1; }
  "build-fuzz/$name" -max_total_time="${ROTARY_FUZZ_SECONDS:-10}" "${opts[@]}" -artifact_prefix="build-fuzz/$name-" \
    -print_final_stats=1 "$work" >"build-fuzz/$name.log" 2>&1 || { tail -n 40 "build-fuzz/$name.log"; return 1; }
  echo "$name: $(grep -E 'stat::number_of_executed_units' "build-fuzz/$name.log")," \
    "$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "build-fuzz/$name.log" | tail -n1), corpus $(ls "$work" | wc -l)"
}

fuzz() { # every tests/fuzz/fuzz_*.c target, ROTARY_FUZZ_SECONDS each (10), one per core at a time (each fuzzer is
  # one process); ctest replays the corpora in every build
  local rc=0 src i j names=() pids=()
  mkdir -p build-fuzz && fuzz_lib || { echo "fuzz: library build failed"; return 1; }
  for src in tests/fuzz/fuzz_*.c; do names+=("$(basename "$src" .c)"); done
  for ((i = 0; i < ${#names[@]}; i += jobs)); do
    pids=()
    for ((j = i; j < i + jobs && j < ${#names[@]}; j++)); do
      fuzz_one "${names[j]}" >"build-fuzz/${names[j]}.summary" 2>&1 &
      pids+=($!)
    done
    for ((j = 0; j < ${#pids[@]}; j++)); do
      wait "${pids[j]}" || rc=1
      cat "build-fuzz/${names[i + j]}.summary"
    done
  done
  return $rc
}

venvs_pid=""
venvs() { # the Python and MindSpore venvs, installed in the background (mostly download and unpacking, ~3.5 min);
  # the Python pins include pytest-xdist, with which the Python stage runs pytest on every core (-n): 170 s on one
  mkdir -p build-py build-ms
  bash scripts/test-python.sh --deps-only >build-py/deps.log 2>&1
  echo $? >build-py/deps.rc
  bash scripts/test-mindspore.sh --deps-only >build-ms/deps.log 2>&1
  echo $? >build-ms/deps.rc
}

with_venv() { # with_venv DIR SCRIPT [ARG...]: waits for the background venvs, shows DIR's install log, then runs
  # SCRIPT with the ARGs
  local dir=$1 script=$2
  shift 2
  if [ -n "$venvs_pid" ]; then
    local t0=$SECONDS
    wait "$venvs_pid"
    venvs_pid=""
    echo "(waited $((SECONDS - t0)) s for the background venv installs)"
  fi
  [ -f "$dir/deps.log" ] && cat "$dir/deps.log"
  if [ -f "$dir/deps.rc" ] && [ "$(cat "$dir/deps.rc")" != 0 ]; then echo "$dir: venv install failed"; return 1; fi
  bash "$script" "$@"
}

if [ $quick = 1 ]; then
  stage "release build and ctest (quick sizes)" release
else
  if [ "${ROTARY_SKIP_PYTHON:-0}" != 1 ]; then
    rm -f build-py/deps.rc build-ms/deps.rc
    venvs &
    venvs_pid=$!
  fi
  stage "release build and ctest" release
  stage "dispatch capped by ROTARY_ISA, prefetch knob" isa_caps
  stage "AddressSanitizer + UndefinedBehaviorSanitizer" asan
  stage "ThreadSanitizer" tsan
  stage "ThreadSanitizer, scalar kernels (ROTARY_ISA=scalar: TSan cannot see through the SIMD kernels)" tsan scalar
  stage "valgrind memcheck" memcheck
  stage "install, pkg-config and find_package consumers" install_check
  stage "add_subdirectory consumer without cmocka (tests and tool off)" subproject
  stage "API reference: Doxygen, warnings as errors" api_reference
  stage "libFuzzer runs, every fuzz target" fuzz
  [ "${ROTARY_SKIP_ARM:-0}" = 1 ] || stage "aarch64 NEON build under qemu-user" aarch64
  if [ "${ROTARY_SKIP_PYTHON:-0}" != 1 ]; then
    stage "Python package: pip install ., pytest (NumPy, torch, Hugging Face, ONNX)" \
      with_venv build-py scripts/test-python.sh -n "$jobs"
    stage "MindSpore Custom op (venv with MindSpore)" with_venv build-ms scripts/test-mindspore.sh
  fi
fi
echo
[ $failed -eq 0 ] || echo "failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed"
[ $failed -eq 0 ]
