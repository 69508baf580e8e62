#!/usr/bin/env bash
# test-python.sh: builds and installs the Python package `rotary` with `pip install .` into a fresh virtual
# environment (build-py/venv), with the pinned versions of its optional dependencies, then runs tests/python.
#   bash scripts/test-python.sh            create or reuse build-py/venv, reinstall rotary, run pytest
#   ROTARY_PY_VENV=dir PYTHON=python3.11   another venv folder / interpreter
# Extra arguments go to pytest (e.g. -k onnx). Needs network access to PyPI (torch pulls its CUDA wheels, ~2 GB).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ROTARY_PY_VENV:-$root/build-py/venv}"
python="${PYTHON:-python3}"
# The versions the suite was written and run with.
pins=(numpy==2.4.6 torch==2.15.0 transformers==5.24.0 onnx==1.23.2 onnxruntime==1.32.0 pytest==9.2.0)

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
  "$vpy" -m pip install -q "${pins[@]}"
  echo "${pins[*]}" > "$stamp"
fi
echo "test-python: pip install $root"
"$vpy" -m pip install -q --force-reinstall --no-deps "$root"
# The installed package is what the tests import: no source-tree path, no library override.
unset ROTARY_LIBRARY_DIR PYTHONPATH
cd "$root"
"$vpy" -c "import rotary, sys; print('rotary', rotary.version(), 'from', rotary.__file__); print(rotary.info())"
exec "$vpy" -m pytest -q -p no:cacheprovider tests/python "$@"
