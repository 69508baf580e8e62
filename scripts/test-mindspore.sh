#!/usr/bin/env bash
# test-mindspore.sh: venv with MindSpore (CPU) + pytest, build the AOT Custom op, run its C and Python tests.
# Usage: scripts/test-mindspore.sh [--deps-only]   (env: ROTARY_MS_VENV, default build-ms/venv; MINDSPORE_VERSION,
# default 2.10.0; --deps-only: only the venv, which test.sh installs in the background while the C stages run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${ROTARY_MS_VENV:-$root/build-ms/venv}
jobs=$(nproc 2>/dev/null || echo 2)
deps_only=0
[ "${1:-}" = "--deps-only" ] && deps_only=1

t0=$SECONDS
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# numpy < 2: with numpy 2.x MindSpore 2.10.0 logs "Numpy init failed" and its first pyboost op in a fresh process
# can fail with "numpy.core.multiarray failed to import".
reqs=("mindspore==${MINDSPORE_VERSION:-2.10.0}" "numpy<2" pytest)
stamp=$venv/.rotary-test-reqs
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${reqs[*]}" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check "${reqs[@]}"
  echo "${reqs[*]}" >"$stamp"
fi
version=$("$venv/bin/python" -c 'import mindspore; print(mindspore.__version__)' 2>/dev/null | tail -n1)
echo "test-mindspore: venv with MindSpore $version ready in $((SECONDS - t0)) s"
[ $deps_only = 1 ] && exit 0

t0=$SECONDS
cmake -S . -B build-ms -DCMAKE_BUILD_TYPE=Release -DROTARY_BUILD_TESTS=OFF -DROTARY_BUILD_TOOLS=OFF \
  -DROTARY_BUILD_MINDSPORE=ON -DROTARY_WERROR=ON -DROTARY_CUDA=OFF >/dev/null
cmake --build build-ms -j"$jobs" >/dev/null
(cd build-ms && ctest --output-on-failure -R mindspore)
echo "test-mindspore: built and C-tested in $((SECONDS - t0)) s"

# The op's tests, and the MindSpore snippets of docs/integrations/mindspore.md and integrations/mindspore/README.md
# (tests/python/test_docs.py skips the other pages here: this venv has no rotary package).
ROTARY_MS_LIB=$root/build-ms/integrations/mindspore/librotary_ms.so "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/python/test_mindspore.py tests/python/test_docs.py -k 'mindspore or test_every_page'

