"""test_py_unaligned.py: element-unaligned arrays (np.frombuffer views 1, 2 or 3 bytes into a buffer) are passed to
librotary as they are and give the same bits as aligned copies: q, k, out= and in place, f32/f16/bf16, both pairings,
under the default kernels and the scalar ones (issue 10, defect 13, Python side). Unaligned position ids and cos/sin
rows are copied to aligned memory by the package first.

On x86 unaligned scalar loads happen to work, so these comparisons pass even where the C kernels dereference an
unaligned float * (undefined behaviour); the C side's fix shows under UBSan: run this file against a build
configured with -DROTARY_SANITIZE=alignment (the scalar tails reported "load of misaligned address" before it).
Run as a script (python test_py_unaligned.py) it checks everything once and exits non-zero on a difference."""
import os
import subprocess
import sys

import numpy as np

try:
    import ml_dtypes
    DTYPES = [np.float32, np.float16, ml_dtypes.bfloat16]
except ImportError:  # bfloat16 NumPy arrays need ml_dtypes
    DTYPES = [np.float32, np.float16]

import rotary

OFFSETS = (1, 2, 3)
SHAPE = (2, 5, 3, 70)  # (batch, seq, heads, head_dim); rotary_dim 66: vector bodies and scalar tails


def unaligned(x, offset):
    """A writable copy of x that starts offset bytes past an aligned address."""
    buf = bytearray(x.nbytes + 64)
    base = np.frombuffer(buf, np.uint8)
    start = (-base.ctypes.data) % 64 + offset
    view = np.frombuffer(buf, dtype=x.dtype, count=x.size, offset=start).reshape(x.shape)
    view[...] = x
    assert view.ctypes.data % 64 == offset
    return view


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                                                 np.ascontiguousarray(b).view(np.uint8))


def cases():
    """(name, bool) for every unaligned call against its aligned twin."""
    rng = np.random.default_rng(13)
    for dt in DTYPES:
        name = np.dtype(dt).name
        for pairing in ("half", "interleaved"):
            rope = rotary.RoPE(70, rotary_dim=66, pairing=pairing, max_positions=64)
            q = (rng.standard_normal(SHAPE) * 3).astype(dt)
            k = (rng.standard_normal(SHAPE[:2] + (1, 70)) * 3).astype(dt)
            rq, rk = rope.apply(q, k, positions=9)
            for off in OFFSETS:
                tag = f"{name} {pairing} offset {off}"
                uq, uk = unaligned(q, off), unaligned(k, (off + 1) % 4)
                oq, ok = rope.apply(uq, uk, positions=9)
                yield f"{tag}: out of place", same_bits(oq, rq) and same_bits(ok, rk)
                dq, dk = unaligned(np.zeros_like(q), off), unaligned(np.zeros_like(k), 3 - off % 3)
                rope.apply(q, k, positions=9, out=(dq, dk))
                yield f"{tag}: aligned input, unaligned out=", same_bits(dq, rq) and same_bits(dk, rk)
                rope.apply(uq, uk, positions=9, inplace=True)
                yield f"{tag}: in place", same_bits(uq, rq) and same_bits(uk, rk)
                bhsd = rope.apply(unaligned(q.transpose(0, 2, 1, 3).copy(), off), positions=9, layout="bhsd")
                yield f"{tag}: bhsd", same_bits(bhsd.transpose(0, 2, 1, 3), rq)
    yield from aux_cases(rng)


def aux_cases(rng):
    rope = rotary.RoPE(70, rotary_dim=66, max_positions=64)
    q = rng.standard_normal(SHAPE).astype(np.float32)
    ids = rng.integers(0, 64, SHAPE[:2]).astype(np.int64)
    ref = rope.apply(q, positions=ids)
    for off in OFFSETS:
        yield f"int64 ids offset {off}", same_bits(rope.apply(q, positions=unaligned(ids, off)), ref)
        yield f"int32 ids offset {off}", same_bits(rope.apply(q, positions=unaligned(ids.astype(np.int32), off)),
                                                   ref)
        cos, sin = (a.reshape(SHAPE[0], SHAPE[1], 33) for a in rope.cos_sin(ids.reshape(-1)))
        got = rope.apply_cos_sin(q, unaligned(cos, off), unaligned(sin, 4 - off))
        want = rope.apply_cos_sin(q, np.ascontiguousarray(cos), np.ascontiguousarray(sin))
        yield f"cos/sin rows offset {off}", same_bits(got, want)


def test_unaligned_same_bits():
    bad = [name for name, ok in cases() if not ok]
    assert not bad, f"{len(bad)} unaligned calls differ from aligned: {bad}"


def test_scalar_kernels():
    """The same comparisons with every kernel capped to the scalar ISA (a fresh process: the cap is read once)."""
    env = dict(os.environ, ROTARY_ISA="scalar")
    p = subprocess.run([sys.executable, os.path.abspath(__file__)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "scalar" in p.stdout


if __name__ == "__main__":
    results = list(cases())
    bad = [name for name, ok in results if not ok]
    print(f"{len(results) - len(bad)} of {len(results)} unaligned calls match; kernels {rotary.info()['kernels']}")
    for name in bad:
        print("DIFFERS:", name)
    sys.exit(1 if bad else 0)
