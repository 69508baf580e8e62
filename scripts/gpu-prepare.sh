#!/usr/bin/env bash
# gpu-prepare.sh: builds here (nvcc, no GPU needed) what scripts/gpu-check.sh runs on a lent GPU machine, into .gpu/
# (git-ignored; pass it to the device tool as a carried path): the rotary tool, the shared libraries with the CUDA
# runtime and cmocka beside them, and the GPU test programs. sm_90a only (H100/H200), to keep the carry small.
# Usage: scripts/gpu-prepare.sh [CUDA_ARCHITECTURES]   (default 90a-real)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-90a-real}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DROTARY_CUDA=ON -DROTARY_WERROR=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" >/dev/null
cmake --build build-gpu -j"$(nproc)" >/dev/null
rm -rf .gpu && mkdir -p .gpu/bin .gpu/lib .gpu/tests
cp build-gpu/tools/rotary .gpu/bin/
cp -P build-gpu/src/librotary.so* build-gpu/src/librotary_hf.so* .gpu/lib/
cudart=$(sed -n 's/^CUDA_cudart_LIBRARY:FILEPATH=//p' build-gpu/CMakeCache.txt)
cp -L "$cudart".[0-9]* .gpu/lib/
for l in libcmocka.so.0 libmpfr.so.6 libgmp.so.10; do # the tests' libraries, in case that machine lacks them
  cp -L "$(ldconfig -p | awk -v l="$l" '$1 == l {print $NF; exit}')" ".gpu/lib/$l"
done
for t in build-gpu/tests/cuda/test_cuda_*; do [ -x "$t" ] && [ -f "$t" ] && cp "$t" .gpu/tests/; done
cp build-gpu/tests/test_cuda_api .gpu/tests/
echo "gpu-prepare: $(ls .gpu/tests | wc -l) test programs, $(du -sh .gpu | cut -f1) in .gpu/"
