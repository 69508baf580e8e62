"""conftest.py: the float64 reference the Python tests compare against, composed as Hugging Face writes RoPE
(x * cos + rotate_half(x) * sin) and, for interleaved pairs, as Meta's LLaMA; no code shared with librotary
except its fp64 inverse frequencies (tested against Hugging Face's own in test_hf.py).

Tolerances (elementwise, against this reference computed from the same input values):
  float32:  |out - ref| <= 4 * 2^-24 * (|x0 cos| + |x1 sin|) + 2^-126   (fp32 cos/sin rounded once, fmaf)
  float16:  |out - ref| <= 2^-11 * |ref| * 1.001 + 2^-24 + f32 term       (one rounding to fp16 after fp32 math)
  bfloat16: |out - ref| <= 2^-8 * |ref| * 1.001 + 2^-133 + f32 term       (one rounding to bf16)
"""
import numpy as np
import pytest

EPS32 = 2.0 ** -24


def ref_rope(x, pos, inv_freq, pairing="half", rotary_dim=None, scale=1.0, inverse=False):
    """x: float64 (batch, seq, heads, head_dim); pos: (batch, seq) positions. Returns (out, bound_f32) where
    bound_f32 is the fp32 tolerance above."""
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[-1]
    rot = rotary_dim or d
    half = rot // 2
    ang = np.asarray(pos, dtype=np.float64)[..., None] * np.asarray(inv_freq, dtype=np.float64)[None, None, :]
    c = (np.cos(ang) * scale)[:, :, None, :]
    s = (np.sin(ang) * scale)[:, :, None, :]
    if inverse:
        s = -s
    out = x.copy()
    bound = np.zeros_like(x)
    xr = x[..., :rot]
    if pairing == "half":
        cos_full = np.concatenate([c, c], axis=-1)
        sin_full = np.concatenate([s, s], axis=-1)
        rotate_half = np.concatenate([-xr[..., half:], xr[..., :half]], axis=-1)
        out[..., :rot] = xr * cos_full + rotate_half * sin_full
        bound[..., :rot] = np.abs(xr * cos_full) + np.abs(rotate_half * sin_full)
    else:
        x0, x1 = xr[..., 0::2], xr[..., 1::2]
        out[..., 0:rot:2] = x0 * c - x1 * s
        out[..., 1:rot:2] = x0 * s + x1 * c
        bound[..., 0:rot:2] = np.abs(x0 * c) + np.abs(x1 * s)
        bound[..., 1:rot:2] = np.abs(x0 * s) + np.abs(x1 * c)
    return out, 4 * EPS32 * bound + 2.0 ** -126


def tolerance(dtype_name, ref, bound32):
    if dtype_name == "float32":
        return bound32
    if dtype_name == "float16":
        return 2.0 ** -11 * np.abs(ref) * 1.001 + 2.0 ** -24 + bound32
    if dtype_name == "bfloat16":
        return 2.0 ** -8 * np.abs(ref) * 1.001 + 2.0 ** -133 + bound32
    raise ValueError(dtype_name)


def assert_close(out, ref, tol, what=""):
    out = np.asarray(out, dtype=np.float64)
    err = np.abs(out - ref)
    bad = err > tol
    if bad.any():
        i = np.unravel_index(np.argmax(err - tol), err.shape)
        pytest.fail(f"{what}: {bad.sum()} of {err.size} elements out of tolerance; worst at {i}: got {out[i]!r}, "
                    f"reference {ref[i]!r}, |diff| {err[i]:.3g} > tol {tol[i]:.3g}")


def to_bshd(x, layout):
    """A (batch, seq, heads, dim) view of an array in a layout ('thd': batch 1)."""
    if layout == "bshd":
        return x
    if layout == "bhsd":
        return x.transpose(0, 2, 1, 3)
    return x[None]


def positions_2d(positions, batch, seq):
    if positions is None:
        positions = 0
    if np.isscalar(positions):
        return np.broadcast_to(np.arange(seq) + positions, (batch, seq))
    return np.broadcast_to(np.asarray(positions), (batch, seq))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
