"""onnx.py: ONNX RotaryEmbedding (opset 23) semantics on librotary, for NumPy arrays.

The caller's cos/sin rows are used as given (ROTARY_POSITIONS_COS_SIN); with position_ids the rows are first
gathered from the caches in NumPy (a copy of batch * seq * rotary_dim/2 values per cache, never of X).
"""
import functools

import numpy as np

from . import _lib
from ._core import RoPE

__all__ = ["rotary_embedding"]


@functools.lru_cache(maxsize=64)
def _rope(head_dim, rotary_dim, interleaved):
    # Table-free: with caller cos/sin rows the rope only carries the geometry (head_dim, rotary_dim, pairing).
    return RoPE(head_dim, rotary_dim=rotary_dim, pairing="interleaved" if interleaved else "half", max_positions=0)


def _as_f32_rows(cache, name):
    cache = np.asarray(cache)
    if cache.dtype.kind != "f":
        raise TypeError(f"{name}: expected floating point values, got {cache.dtype}")
    return np.ascontiguousarray(cache, dtype=np.float32)  # f16/bf16 caches widen exactly


def rotary_embedding(X, cos_cache, sin_cache, position_ids=None, interleaved=0, num_heads=0,
                     rotary_embedding_dim=0):
    """ONNX RotaryEmbedding-23: X is (batch, num_heads, seq, head_size) or (batch, seq, hidden) with num_heads;
    cos_cache/sin_cache are (max_position, rotary_dim/2) with position_ids (batch, seq), else (batch, seq,
    rotary_dim/2); rotary_embedding_dim 0 means head_size; interleaved pairs (2i, 2i+1), else (i, i + rot/2).
    Returns a new array of X's shape and dtype (float32, float16 or ml_dtypes bfloat16). Math in fp32."""
    X = np.asarray(X)
    if not isinstance(interleaved, (bool, np.bool_)):
        interleaved = _lib.c_int_arg(interleaved, "interleaved", 0, 1)
    num_heads = _lib.c_int_arg(num_heads, "num_heads")
    rotary_embedding_dim = _lib.c_int_arg(rotary_embedding_dim, "rotary_embedding_dim")
    if X.ndim == 4:
        batch, heads, seq, head_size = X.shape
        view, layout = X, "bhsd"
    elif X.ndim == 3:
        if not num_heads:
            raise ValueError("num_heads: required (> 0) for a 3-D input (batch, seq, hidden)")
        batch, seq, hidden = X.shape
        if hidden % num_heads:
            raise ValueError(f"num_heads: hidden size {hidden} is not a multiple of num_heads {num_heads}")
        head_size = hidden // num_heads
        view, layout = X.reshape(batch, seq, num_heads, head_size), "bshd"
    else:
        raise ValueError(f"X: expected a 3-D or 4-D input, got shape {X.shape}")
    rot = rotary_embedding_dim or head_size
    if rot > head_size or rot % 2:
        raise ValueError(f"rotary_embedding_dim: {rot} must be even and at most head_size {head_size}")
    cos = _as_f32_rows(cos_cache, "cos_cache")
    sin = _as_f32_rows(sin_cache, "sin_cache")
    if position_ids is not None:
        ids = np.asarray(position_ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"position_ids: expected integers, got {ids.dtype}")
        if ids.shape != (batch, seq):
            raise ValueError(f"position_ids: shape {ids.shape}, expected (batch, seq) = {(batch, seq)}")
        if cos.ndim != 2 or sin.shape != cos.shape:
            raise ValueError(f"cos_cache/sin_cache: with position_ids expected (max_position, rotary_dim/2) each, "
                             f"got {cos.shape} and {sin.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= cos.shape[0]):
            raise ValueError(f"position_ids: values in [{ids.min()}, {ids.max()}] outside the caches' "
                             f"{cos.shape[0]} rows")
        cos, sin = cos[ids], sin[ids]
    elif cos.shape != (batch, seq, cos.shape[-1] if cos.ndim else 0) or sin.shape != cos.shape:
        raise ValueError(f"cos_cache/sin_cache: without position_ids expected (batch, seq, rotary_dim/2) = "
                         f"{(batch, seq, rot // 2)} each, got {cos.shape} and {sin.shape}")
    if cos.shape[-1] != rot // 2:
        raise ValueError(f"cos_cache/sin_cache: last dimension {cos.shape[-1]} does not match rotary_dim/2 = "
                         f"{rot // 2}")
    out = _rope(head_size, rot, bool(interleaved)).apply_cos_sin(view, cos, sin, layout=layout)
    return out.reshape(X.shape)
