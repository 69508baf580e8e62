"""decode.py: decode attention over a KV cache with RoPE fused in (rotary_attention) and one whole decode step
(rotary_decode_step: rotate q, write k and v into the cache, attend) for NumPy arrays and torch CPU tensors. Torch
tensors go through the custom op torch.ops.rotary.attention (functional; torch.compile traces it). Semantics next
to torch.nn.functional.scaled_dot_product_attention: docs/integrations/attention.md."""
import numpy as np

from . import _attention, _core
from ._kv import KVCache

__all__ = ["attention", "decode_step", "ROPE_MODES", "MAX_TOKENS"]

ROPE_MODES = tuple(_attention.ROPE_MODES)
MAX_TOKENS = 16  # ROTARY_ATTENTION_MAX_TOKENS: query tokens per sequence in one call


def _check_cache(cache):
    if not isinstance(cache, KVCache):
        raise TypeError(f"cache: expected a rotary.KVCache, got {type(cache).__name__}")
    if cache.v is None:
        raise ValueError("cache: attention needs a value cache (KVCache(k, v, ...))")


def _numpy_dtype(name, like):
    if name == "bfloat16":
        if like is not None and like.dtype.name == "bfloat16":
            return like.dtype
        try:
            import ml_dtypes
        except ImportError:
            raise TypeError("out_dtype: bfloat16 NumPy arrays need ml_dtypes (pip install ml_dtypes)") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _numpy_out(q, out, out_dtype):
    want = _attention.dtype_name(out_dtype)
    if out is None:
        name = want or _attention.dtype_name(q.dtype.name)
        return np.empty(q.shape, dtype=_numpy_dtype(name, q))
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy.ndarray like q, got {type(out).__name__}")
    if want is not None and _attention.dtype_name(out.dtype.name) != want:
        raise TypeError(f"out: dtype {out.dtype} differs from out_dtype {out_dtype!r}")
    if out.shape != q.shape:
        raise ValueError(f"out: shape {out.shape}, expected q's {q.shape}")
    return out


def attention(rope, q, cache, *, lengths=None, block_table=None, page_indptr=None, page_indices=None,
              last_page_len=None, rope_mode="none", scale=None, softcap=None, window=None, out=None, out_dtype=None,
              return_lse=False, precision="f32"):
    """softmax(scale * q K^T) V over the rows each sequence holds in `cache` (rotary_attention); returns out, or
    (out, lse) with return_lse.

    q: [batch, tokens, q_heads, head_dim] (1 .. 16 query tokens per sequence: decode, speculative or chunked
    steps), or [batch, q_heads, head_dim] for one token; float32, float16 or bfloat16, any strides with a contiguous
    last dimension; q_heads a multiple of the cache's kv_heads (GQA, MQA). head_dim is the rope's. The query tokens
    are each sequence's LAST tokens: token t of sequence b sits at row i = L_b - tokens + t and attends to the rows
    p <= i (causal, aligned to the bottom right) and, with window=w, i - p < w (Hugging Face's sliding_window).
    cache: a rotary.KVCache (the one kv_write fills; float32, float16, bfloat16, fp8 e4m3 with k_scale/v_scale).
    Where sequence b's rows are (exactly one):
      lengths: batch ints: block b of the cache is sequence b, holding lengths[b] rows (after this step's write);
      block_table + lengths: vLLM's paged attention: block_table [batch, max_blocks] int32 block numbers, lengths
        vLLM's seq_lens; row p of sequence b is row p % block_size of block block_table[b, p // block_size];
      page_indptr, page_indices, last_page_len: FlashInfer's paged cache (as kv_write).
    rope_mode: "none" (q and cached keys used as given), "q" (q rotated at its position i by this call), "qk"
    (the cache holds UNROTATED keys: q and each key rotated at its row, FlashInfer's ROPE_LLAMA).
    scale: None for 1/sqrt(head_dim). softcap: None/0 or the Gemma 2 logit soft-cap (softcap * tanh(s / softcap)).
    window: None/0 or the sliding window in rows (FlashInfer's window_left + 1).
    out: an array or tensor for the result (q's shape), else a new one of out_dtype (default q's dtype).
    return_lse: also return lse [batch, tokens, q_heads] (float32): the natural log of sum exp(logits) per row,
    so that results over disjoint row sets can be merged.
    precision: "f32" (q and the softmax weights in fp32) or "bf16": q (after rotation and scale) and each weight
    rounded to bfloat16 before their products, as a bf16 model's attention on a GPU; the products are exact and
    summed in fp32 (AVX512-BF16 CPUs run bf16 caches on VDPBF16PS; docs/attention.md has the error bound).
    Accumulation in fp32, one rounding to out's dtype; bit-identical for every thread count. Not differentiable.
    Errors (nothing written): rotary.RotaryError (its .status the rotary_status) for what librotary refuses;
    TypeError / ValueError for arguments that are not what is described here.
    """
    _check_cache(cache)
    index = dict(lengths=lengths, block_table=block_table, page_indptr=page_indptr, page_indices=page_indices,
                 last_page_len=last_page_len)
    if _core.is_torch(q) or _core.is_torch(cache.k):
        from . import _torchattn
        return _torchattn.attention(rope, q, cache, index, rope_mode, scale, softcap, window, out, out_dtype,
                                    return_lse, precision)
    if not isinstance(q, np.ndarray):
        raise TypeError(f"q: expected a numpy.ndarray or a torch.Tensor, got {type(q).__name__}")
    out = _numpy_out(q, out, out_dtype)
    lse = np.empty(q.shape[:-1], dtype=np.float32) if return_lse else None
    _attention.attention(rope, q, out, lse, cache.k, cache.v, cache.layout, cache.dtype, cache.k_scale,
                         cache.v_scale, rope_mode, scale, softcap, window, precision, **index)
    return (out, lse) if return_lse else out


def decode_step(rope, q, k, v, cache, positions=None, *, lengths=None, slot_mapping=None, block_table=None,
                seq_lens=None, page_indptr=None, page_indices=None, last_page_len=None, q_out=None, scale=None,
                softcap=None, window=None, out=None, out_dtype=None, return_lse=False):
    """One decode step in one librotary call (rotary_decode_step): q rotated (in place, or into q_out), k rotated
    and written with v into `cache` (as kv_write), then attention of the rotated q over the cache (as attention,
    rope_mode "none"). Returns out, or (out, lse).

    q [batch, seq, q_heads, head_dim], k and v [batch, seq, kv_heads, head_dim] (seq <= 16 new tokens per
    sequence). The cache index, exactly one of:
      lengths: the rows each sequence holds BEFORE the step (kv_write's lengths; block b is sequence b);
      slot_mapping (where the new tokens go), block_table and seq_lens (the lengths AFTER the step): vLLM;
      page_indptr, page_indices, last_page_len (after the step, as kv_write): FlashInfer.
    positions: None rotates each new token at its row (L_b - seq + s, L_b the length after the step); else as
    kv_write (an int offset or ids). Other keywords as attention(). Everything is checked before anything is
    written; on error q, the caches and out are unchanged."""
    _check_cache(cache)
    index = dict(lengths=lengths, slot_mapping=slot_mapping, block_table=block_table, seq_lens=seq_lens,
                 page_indptr=page_indptr, page_indices=page_indices, last_page_len=last_page_len)
    if any(_core.is_torch(x) for x in (q, k, v, cache.k)):
        from . import _torchattn
        return _torchattn.decode_step(rope, q, k, v, cache, positions, index, q_out, scale, softcap, window, out,
                                      out_dtype, return_lse)
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name}: expected a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")
    if q_out is None:
        q_out = q
    elif not isinstance(q_out, np.ndarray) or q_out.shape != q.shape or q_out.dtype != q.dtype:
        raise ValueError(f"q_out: must be a numpy.ndarray of q's shape {q.shape} and dtype {q.dtype}")
    out = _numpy_out(q, out, out_dtype)
    lse = np.empty(q.shape[:-1], dtype=np.float32) if return_lse else None
    _attention.decode_step(rope, q, k, v, q_out, out, lse, cache.k, cache.v, cache.layout, cache.dtype,
                           cache.k_scale, cache.v_scale, positions, scale, softcap, window, **index)
    return (out, lse) if return_lse else out
