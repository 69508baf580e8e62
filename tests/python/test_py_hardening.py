"""test_py_hardening.py: writes into read-only memory are refused before any C call (issue 10, defect 3), and every
integer the package passes to librotary is range-checked instead of wrapping modulo 2^64 through ctypes (defect 4)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import rotary
from rotary import _lib

SHAPE = (1, 3, 2, 8)  # (batch, seq, heads, head_dim)
SIZE_MAX = 2 ** 64 - 1


@pytest.fixture
def rope():
    return rotary.RoPE(8, max_positions=16)


def rows(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((1, 3, 4), dtype=np.float32), rng.random((1, 3, 4), dtype=np.float32)


def data(seed=1):
    return np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float32)


# --- defect 3: read-only memory ----------------------------------------------------------------------------------

def read_only_array():
    a = data()
    a.flags.writeable = False
    return a


CALLS = {  # every path that writes into caller memory, given the read-only array x and a writable one w
    "apply inplace q": lambda r, x, w: r.apply(x, inplace=True),
    "apply inplace k": lambda r, x, w: r.apply(w, x, inplace=True),
    "apply out=q_out": lambda r, x, w: r.apply(w, out=x),
    "apply out=(q_out, k_out)": lambda r, x, w: r.apply(w, w.copy(), out=(np.empty_like(w), x)),
    "apply_cos_sin inplace q": lambda r, x, w: r.apply_cos_sin(x, *rows(), inplace=True),
    "apply_cos_sin inplace k": lambda r, x, w: r.apply_cos_sin(w, *rows(), k=x, inplace=True),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_read_only_ndarray(rope, call):
    x, w = read_only_array(), data(2)
    x0, w0 = x.copy(), w.copy()
    with pytest.raises(ValueError, match="read-only"):
        CALLS[call](rope, x, w)
    assert np.array_equal(x, x0) and np.array_equal(w, w0)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_frombuffer_bytes(rope, call):
    """np.frombuffer over an immutable bytes object: before the fix apply_cos_sin(inplace=True) mutated it."""
    blob = data().tobytes()
    before = bytes(bytearray(blob))
    x = np.frombuffer(blob, dtype=np.float32).reshape(SHAPE)
    with pytest.raises(ValueError, match="read-only"):
        CALLS[call](rope, x, data(2))
    assert blob == before


MMAP_CHILD = r"""
import mmap, sys
import numpy as np
import rotary
path, call = sys.argv[1], sys.argv[2]
r = rotary.RoPE(8, max_positions=16)
cos = np.full((1, 3, 4), 0.5, np.float32)
with open(path, "rb") as f:
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    x = np.frombuffer(mm, dtype=np.float32).reshape(1, 3, 2, 8)
    if call == "memmap":
        x = np.memmap(path, dtype=np.float32, mode="r", shape=(1, 3, 2, 8))
    try:
        if call == "apply_cos_sin":
            r.apply_cos_sin(x, cos, cos, inplace=True)
        else:
            r.apply(x, inplace=True)
    except ValueError as e:
        print("refused:", e)
        sys.exit(0)
    sys.exit(3)
"""


@pytest.mark.parametrize("call", ["apply_cos_sin", "apply", "memmap"])
def test_read_only_mmap(tmp_path, call):
    """A read-only mapping of a file: before the fix apply_cos_sin(inplace=True) died with SIGSEGV. In a child
    process, so that a crash fails this test and not the whole session."""
    path = tmp_path / "x.bin"
    path.write_bytes(data().tobytes())
    before = path.read_bytes()
    p = subprocess.run([sys.executable, "-c", MMAP_CHILD, str(path), call], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and "read-only" in p.stdout, (p.returncode, p.stdout, p.stderr)
    assert path.read_bytes() == before


def test_read_only_input_is_fine(rope):
    """Only outputs must be writable: a read-only input rotated out of place (or into out=) works."""
    x = read_only_array()
    out = rope.apply(x, positions=2)
    assert np.array_equal(out, rope.apply(data(), positions=2))
    o = np.empty_like(x)
    rope.apply(x, positions=2, out=o)
    assert np.array_equal(o, out)
    c, s = rows()
    c.flags.writeable = s.flags.writeable = False
    rope.apply_cos_sin(x, c, s)


def test_torch_inference_tensor(rope):
    """An inference tensor may not be updated in place outside torch.inference_mode() (torch's own rule)."""
    torch = pytest.importorskip("torch")
    with torch.inference_mode():
        t = torch.from_numpy(data())
    t0 = t.clone()
    with pytest.raises((ValueError, RuntimeError), match="(?i)inference"):
        rope.apply(t, positions=1, inplace=True)
    assert torch.equal(t, t0)
    with torch.inference_mode():
        rope.apply(t, positions=1, inplace=True)  # allowed there
    assert not torch.equal(t, t0)


# --- defect 4: integers range-checked before ctypes --------------------------------------------------------------

def test_listed_wraps_refused(rope):
    """The four cases the issue lists; each silently wrapped before the fix."""
    with pytest.raises(ValueError, match="head_dim"):
        rotary.RoPE(2 ** 64 + 64)  # was head_dim 64
    with pytest.raises(ValueError, match="max_positions"):
        rotary.RoPE(64, max_positions=2 ** 64)  # was 0: a table-free rope
    with pytest.raises(ValueError, match="original_max_position_embeddings"):
        rotary.RoPE(64, scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": -1})
    with pytest.raises(ValueError, match="seq_len"):
        rope.derive(-1)  # was seq_len 2^64 - 1


def yarn(key):
    return lambda v: rotary.RoPE(64, scaling={"rope_type": "yarn", "factor": 4.0, key: v})


def from_hf(v):
    if _lib.hf_lib is None:
        pytest.skip(f"librotary_hf: {_lib.hf_lib_error}")
    return rotary.RoPE.from_hf_config({"hidden_size": 64, "num_attention_heads": 1}, max_positions=v)


def onnx(key):
    from rotary.onnx import rotary_embedding
    x = np.zeros((1, 2, 3, 8), np.float32)
    c = np.zeros((1, 3, 4), np.float32)
    return lambda v: rotary_embedding(x, c, c, **{key: v})


R = rotary.RoPE(8, max_positions=16)
SIZE_PARAMS = {  # every size_t parameter of the public Python API: a call taking the value under test
    "RoPE head_dim": lambda v: rotary.RoPE(v),
    "RoPE rotary_dim": lambda v: rotary.RoPE(64, rotary_dim=v),
    "RoPE max_positions": lambda v: rotary.RoPE(64, max_positions=v),
    "RoPE seq_len": lambda v: rotary.RoPE(64, seq_len=v),
    "scaling original_max_position_embeddings": yarn("original_max_position_embeddings"),
    "scaling max_position_embeddings": yarn("max_position_embeddings"),
    "derive seq_len": lambda v: R.derive(v),
    "derive max_positions": lambda v: R.derive(0, max_positions=v),
    "from_hf_config max_positions": from_hf,
    "set_num_threads": lambda v: rotary.set_num_threads(v),
    "onnx num_heads": lambda v: onnx("num_heads")(v),
    "onnx rotary_embedding_dim": lambda v: onnx("rotary_embedding_dim")(v),
}
INT64_PARAMS = {  # int64 positions
    "apply positions offset": lambda v: R.apply(np.zeros((1, 1, 1, 8), np.float32), positions=v),
    "apply_torch positions offset": lambda v: R.apply(pytest.importorskip("torch").zeros(1, 1, 1, 8), positions=v),
    "cos_sin position": lambda v: R.cos_sin(v),
}


@pytest.mark.parametrize("value", [-1, -(2 ** 63), 2 ** 64, 2 ** 64 + 64, 2 ** 100])
@pytest.mark.parametrize("param", sorted(SIZE_PARAMS))
def test_size_out_of_range(param, value):
    threads = rotary.get_num_threads()
    with pytest.raises(ValueError, match=rf"{value} is outside \[0, {SIZE_MAX}\]"):
        SIZE_PARAMS[param](value)
    assert rotary.get_num_threads() == threads


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 64.0, np.float32(8), "64", None, 1j])
@pytest.mark.parametrize("param", sorted(SIZE_PARAMS))
def test_size_wrong_type(param, value):
    if value is None and param in ("RoPE rotary_dim", "derive max_positions", "from_hf_config max_positions"):
        return  # None there means the default (head_dim, the rope's table, the config's)
    with pytest.raises(TypeError, match="expected an int"):
        SIZE_PARAMS[param](value)


@pytest.mark.parametrize("value", [2 ** 63, -(2 ** 63) - 1, 2 ** 64 + 5])
@pytest.mark.parametrize("param", sorted(INT64_PARAMS))
def test_int64_out_of_range(param, value):
    with pytest.raises(ValueError, match=rf"{value} is outside \[-{2 ** 63}, {2 ** 63 - 1}\]"):
        INT64_PARAMS[param](value)


@pytest.mark.parametrize("param", sorted(INT64_PARAMS))
def test_int64_bool_refused(param):
    with pytest.raises(TypeError, match="bool"):
        INT64_PARAMS[param](True)


def test_numpy_integers_accepted():
    r = rotary.RoPE(np.int64(64), rotary_dim=np.uint16(32), max_positions=np.int32(100), seq_len=np.uint64(7))
    assert (r.head_dim, r.rotary_dim, r.max_positions, r.seq_len) == (64, 32, 100, 7)
    d = r.derive(np.int8(9), max_positions=np.uint32(50))
    assert (d.seq_len, d.max_positions) == (9, 50)
    x = np.ones((1, 2, 1, 64), np.float32)
    assert np.array_equal(r.apply(x, positions=np.int16(3)), r.apply(x, positions=3))
    assert np.array_equal(r.cos_sin(np.uint8(5))[0], r.cos_sin(5)[0])
    threads = rotary.get_num_threads()
    rotary.set_num_threads(np.int64(1))
    assert rotary.get_num_threads() == 1
    rotary.set_num_threads(threads)


def test_onnx_interleaved():
    from rotary.onnx import rotary_embedding
    x = np.ones((1, 1, 2, 8), np.float32)
    c = np.ones((1, 2, 4), np.float32)
    assert np.array_equal(rotary_embedding(x, c, c, interleaved=True), rotary_embedding(x, c, c, interleaved=1))
    for bad in (2, -1, 2 ** 64 + 1):
        with pytest.raises(ValueError, match="interleaved"):
            rotary_embedding(x, c, c, interleaved=bad)
    with pytest.raises(TypeError, match="interleaved"):
        rotary_embedding(x, c, c, interleaved=1.0)


def test_helper_bounds():
    """c_int_arg, the one helper: inclusive bounds, __index__ objects, the name in the message."""
    assert _lib.c_int_arg(SIZE_MAX, "n") == SIZE_MAX and _lib.c_int_arg(0, "n") == 0
    assert _lib.c_int_arg(-(2 ** 63), "o", _lib.INT64_MIN, _lib.INT64_MAX) == -(2 ** 63)
    assert type(_lib.c_int_arg(np.uint64(SIZE_MAX), "n")) is int
    with pytest.raises(ValueError, match=r"^n: 18446744073709551616 is outside"):
        _lib.c_int_arg(SIZE_MAX + 1, "n")
    torch = sys.modules.get("torch")
    if torch is not None:
        assert _lib.c_int_arg(torch.tensor(5), "n") == 5
        with pytest.raises(TypeError, match="bool"):
            _lib.c_int_arg(torch.tensor(True), "n")


@pytest.mark.parametrize("env", ["-1", str(2 ** 64 + 2), "two"])
def test_num_threads_env(env):
    code = "import rotary\ntry:\n    rotary.get_num_threads()\nexcept ValueError as e:\n    print('refused:', e)\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, ROTARY_NUM_THREADS=env))
    assert p.returncode == 0 and "refused: ROTARY_NUM_THREADS" in p.stdout, (p.stdout, p.stderr)

