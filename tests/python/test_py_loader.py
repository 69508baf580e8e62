"""test_py_loader.py: when librotary_hf cannot be loaded, from_hf_config reports the dynamic loader's own error (a
missing dependency, a corrupt file) instead of "librotary_hf is not installed" (issue 10, a self-contained package);
the rest of the package keeps working. Each case runs in a fresh process over a folder holding a copy of librotary."""
import ctypes
import os
import shutil
import subprocess
import sys

import pytest

from rotary import _lib

CHILD = r"""
import numpy as np
import rotary
assert rotary.RoPE(8).apply(np.ones((1, 1, 1, 8), np.float32)).shape == (1, 1, 1, 8)
try:
    rotary.RoPE.from_hf_config({"hidden_size": 64, "num_attention_heads": 1})
except ImportError as e:
    print("ImportError:", e)
"""


def run_with(folder):
    env = dict(os.environ, ROTARY_LIBRARY_DIR=str(folder))
    p = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture
def folder(tmp_path):
    shutil.copy(_lib._lib_path, tmp_path / os.path.basename(_lib._lib_path))
    return tmp_path


def loader_error(path):
    try:
        ctypes.CDLL(str(path))
    except OSError as e:
        return str(e)
    pytest.fail(f"{path} loaded")


def test_corrupt_file(folder):
    hf = folder / ("librotary_hf" + _lib._EXT)
    hf.write_bytes(b"not a shared library\n" * 10)
    out = run_with(folder)
    assert "ImportError: rotary: from_hf_config needs librotary_hf" in out
    assert str(hf) in out and loader_error(hf) in out, out
    assert "not installed" not in out


def test_missing_dependency(folder):
    """The case the issue saw (libcjson1 absent): a librotary_hf whose DT_NEEDED library is gone."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or sys.platform != "linux":
        pytest.skip("needs a C compiler on Linux to build the stand-in library")
    dep = folder / "librotary_gone_dep.so"
    hf = folder / "librotary_hf.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(dep), "-x", "c", "-"], input="int gone(void){return 1;}",
                   text=True, check=True)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(hf), "-x", "c", "-", f"-L{folder}", "-lrotary_gone_dep"],
                   input="int gone(void); int f(void){return gone();}", text=True, check=True)
    dep.unlink()
    out = run_with(folder)
    assert "librotary_gone_dep.so: cannot open shared object file" in out, out
    assert loader_error(hf) in out


def test_not_found(folder):
    out = run_with(folder)
    assert "librotary_hf" in out and "not found (looked in" in out and str(folder) in out, out


def test_loaded_here():
    """In this session's install it loads, from librotary's folder."""
    assert _lib.hf_lib is not None, _lib.hf_lib_error
    assert os.path.dirname(_lib.hf_lib._name) == os.path.dirname(_lib._lib_path)
