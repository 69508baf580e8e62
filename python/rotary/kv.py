"""kv.py: the KV-cache operations of librotary for NumPy arrays and torch CPU (and, kv_write, CUDA) tensors: kv_write
(rotate q, write rotated k and unrotated v into a cache in one pass), kv_write_qkv (the same from one packed QKV
buffer) and kv_rerotate (turn cached keys by a position delta). Caches are written in place; see
docs/integrations/kv_cache.md. Torch tensors go through the custom ops torch.ops.rotary.kv_write_ and kv_rerotate_
(torch.compile traces them)."""
import numpy as np

from . import _core, _kv
from ._kv import KVCache

__all__ = ["KVCache", "kv_write", "kv_write_qkv", "kv_rerotate"]


def _any_torch(*xs):
    return any(_core.is_torch(x) for x in xs)


def _check_cache(cache):
    if not isinstance(cache, KVCache):
        raise TypeError(f"cache: expected a rotary.KVCache, got {type(cache).__name__}")
    if cache.v is None:
        raise ValueError("cache: kv_write needs a value cache (KVCache(k, v, ...))")


def kv_write(rope, q, k, v, cache, positions=None, *, slot_mapping=None, lengths=None, page_indptr=None,
             page_indices=None, last_page_len=None, offsets=None, cos_sin=None, layout="bshd", q_out=None,
             flags=None):
    """Rotates q, writes rotated k and unrotated v into `cache` (a KVCache), in one pass (rotary_kv_write).

    q, k, v: NumPy arrays or torch CPU tensors (float32, float16, bfloat16; each its own dtype) in `layout`
    ("bshd", "bhsd" or "thd", as RoPE.apply), the last dimension contiguous; k and v have the cache's kv_heads
    heads, q any number (GQA), or q is None. q is rotated in place, or into q_out (q's shape and dtype). k and v are
    only read. The cache (any of the four dtypes; fp8 stores value / scale) is written in place.

    Where each token (b, s) goes: exactly one of
      slot_mapping: batch * seq_len int64 slots (vLLM): slot = block * block_size + row; negative skips the token
        (its q is still rotated);
      lengths: batch int64 values, a per-sequence cache (block b is sequence b): row lengths[b] + s;
      page_indptr, page_indices, last_page_len (FlashInfer, int32): sequence b's pages are page_indices[
        page_indptr[b]:page_indptr[b + 1]], its last page holding last_page_len[b] rows once written; its seq_len new
        tokens are its last rows.
    Positions (the rotation is forward): None (0, 1, ...), an int offset, int ids ((batch, seq_len) or
    broadcastable) as RoPE.apply, or offsets= (batch values: offsets[b] + s), or cos_sin=(cos, sin) float32 rows
    (batch * seq_len rows of rotary_dim/2; the rope's attention scaling is not applied).

    Everything is checked before anything is written: an error (rotary.RotaryError, its .status the rotary_status)
    leaves q and both caches unchanged. Returns q_out, or q (rotated in place), or None without q.

    CUDA tensors (every tensor, index and position tensor on one device; CPU ones raise ValueError, never copied):
    rotary_cuda_kv_write on torch.cuda.current_stream, no host synchronization (CUDA graphs). Index and position
    values living on the device are checked by the kernel: a token whose position, slot, page or row is out of
    range is skipped whole (nothing of it written) and, when flags is given (an int32 tensor on the device, zeroed
    by the caller; eager calls only), 1 (position) or 2 (cache index) is ORed into flags[0]. int32 slot_mapping or
    lengths are widened on the device; page arrays must be int32.
    """
    _check_cache(cache)
    index = dict(slot_mapping=slot_mapping, lengths=lengths, page_indptr=page_indptr, page_indices=page_indices,
                 last_page_len=last_page_len)
    if _any_torch(q, k, v, cache.k, cache.v):
        return _core._torch_ops().kv_write(rope, q, k, v, cache, positions, offsets, cos_sin, layout, q_out,
                                           flags=flags, **index)
    if flags is not None:
        raise TypeError("flags: only for torch CUDA tensors")
    for name, x in (("k", k), ("v", v)):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}: expected a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")
    _kv.write(rope, q, k, v, cache.k, cache.v, q_out, positions, layout, cache.layout, cache.dtype, cache.k_scale,
              cache.v_scale, offsets, cos_sin, **index)
    return q_out if q_out is not None else q


def split_qkv(qkv, q_heads, kv_heads, head_dim):
    """Views q, k, v of a packed QKV buffer [batch, seq, row] or [tokens, row]: each row q_heads heads, then kv_heads
    heads of k, then kv_heads of v, head_dim elements each (row may be longer: a row stride). No copy."""
    shape = tuple(qkv.shape)
    need = (q_heads + 2 * kv_heads) * head_dim
    if len(shape) not in (2, 3) or shape[-1] < need:
        raise ValueError(f"qkv: expected [batch, seq, row] or [tokens, row] with row >= (q_heads + 2 * kv_heads) * "
                         f"head_dim = {need}, got shape {shape}")
    lead = shape[:-1]
    a, b = q_heads * head_dim, (q_heads + kv_heads) * head_dim
    parts = (qkv[..., :a], qkv[..., a:b], qkv[..., b:need])
    heads = (q_heads, kv_heads, kv_heads)
    if _core.is_torch(qkv):
        return tuple(p.unflatten(-1, (h, head_dim)) for p, h in zip(parts, heads))
    out = []
    for p, h in zip(parts, heads):
        view = p.view()
        view.shape = lead + (h, head_dim)  # raises rather than copy
        out.append(view)
    return tuple(out)


def kv_write_qkv(rope, qkv, cache, q_heads, positions=None, *, q_out=None, **kwargs):
    """kv_write from one packed QKV buffer, the output of one GEMM (rotary_kv_write_desc_set_qkv's form): qkv is
    [batch, seq, row] or [tokens, row], each row q_heads heads of q, then the cache's kv_heads heads of k, then
    kv_heads of v (head_dim each; the row may be longer). q is rotated in place in qkv, or into q_out ([batch, seq,
    q_heads, head_dim] or [tokens, q_heads, head_dim]). Other keywords as kv_write. Returns q (a view of qkv) or
    q_out."""
    _check_cache(cache)
    q, k, v = split_qkv(qkv, q_heads, cache.kv_heads, rope.head_dim)
    layout = "thd" if len(tuple(qkv.shape)) == 2 else "bshd"
    if q_heads == 0:
        q = None
    return kv_write(rope, q, k, v, cache, positions, layout=layout, q_out=q_out, **kwargs)


def kv_rerotate(rope, cache, delta, slots=None, first=0, count=None):
    """Turns the keys already in cache.k by delta positions, in place (rotary_kv_rerotate): StreamingLLM's eviction
    with attention sinks, llama.cpp's context shift. The rope's frequencies, not its attention scaling (the keys
    carry it). Which rows: slots (int64 slot numbers, block * block_size + row; negative ones skipped; none listed
    twice) or the range first .. first + count - 1 (count None: to the end of the cache). fp8 caches are decoded
    with k_scale and encoded again. Errors leave the cache unchanged."""
    if not isinstance(cache, KVCache):
        raise TypeError(f"cache: expected a rotary.KVCache, got {type(cache).__name__}")
    if _core.is_torch(cache.k):
        _core._torch_ops().kv_rerotate(rope, cache, delta, slots, first, count)
        return
    _kv.rerotate(rope, cache.k, delta, slots, first, count, cache.layout, cache.dtype, cache.k_scale)
