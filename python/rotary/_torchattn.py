"""_torchattn.py: decode attention as a functional torch custom op, torch.ops.rotary.attention (returns out and lse,
writes nothing else), with a fake implementation so torch.compile(fullgraph=True) and torch.export trace it; and
rotary.attention / rotary.decode_step for torch tensors. The rope travels as its tensor (rotary.ops.rope_tensor)."""
import torch

from . import _attention, _core, _kv, _torchkv, _torchop

_library = torch.library.Library("rotary", "FRAGMENT")
_library.define(
    "attention(Tensor q, Tensor k_cache, Tensor v_cache, Tensor rope, str cache_layout, str cache_dtype, "
    "float k_scale, float v_scale, Tensor? lengths, Tensor? block_table, Tensor? page_indptr, Tensor? page_indices, "
    "Tensor? last_page_len, str rope_mode, float scale, float softcap, SymInt window, ScalarType? out_dtype, "
    "bool return_lse, str precision=\"f32\") -> (Tensor, Tensor)")
_ATTENTION = torch.ops.rotary.attention.default
_INPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _outputs(q, out_dtype, return_lse):
    """New out (q's shape, contiguous) and lse ([batch, tokens, heads] float32, or an empty tensor)."""
    out = q.new_empty(q.shape, dtype=out_dtype if out_dtype is not None else q.dtype)
    lse = q.new_empty(q.shape[:-1] if return_lse else (0,), dtype=torch.float32)
    return out, lse


def _index(lengths, block_table, page_indptr, page_indices, last_page_len):
    return dict(lengths=lengths, block_table=block_table, page_indptr=page_indptr, page_indices=page_indices,
                last_page_len=last_page_len)


def _attention_cpu(q, k_cache, v_cache, rope, cache_layout, cache_dtype, k_scale, v_scale, lengths, block_table,
                   page_indptr, page_indices, last_page_len, rope_mode, scale, softcap, window, out_dtype,
                   return_lse, precision="f32"):
    out, lse = _outputs(q, out_dtype, return_lse)
    _attention.attention(_torchop.rope_for(rope), q, out, lse if return_lse else None, k_cache, v_cache,
                         cache_layout, cache_dtype, k_scale, v_scale, rope_mode, scale or None, softcap, window,
                         precision, **_index(lengths, block_table, page_indptr, page_indices, last_page_len))
    return out, lse


_library.impl("attention", _attention_cpu, "CPU")


@torch.library.register_fake("rotary::attention", lib=_library)
def _attention_fake(q, k_cache, v_cache, rope, cache_layout, cache_dtype, k_scale, v_scale, lengths, block_table,
                    page_indptr, page_indices, last_page_len, rope_mode, scale, softcap, window, out_dtype,
                    return_lse, precision="f32"):
    """The checks that need no data, so a traced program fails where eager would; then the outputs' shapes."""
    _check_q(q, out_dtype)
    for name, x in (("k_cache", k_cache), ("v_cache", v_cache)):
        _torchkv._check_cache_fake(name, x, cache_dtype, cache_layout)
    _attention.rope_mode_code(rope_mode)
    _attention.precision_code(precision)
    return _outputs(q, out_dtype, return_lse)


def _check_q(q, out_dtype):
    if q.dtype not in _INPUT_DTYPES:
        raise TypeError(f"q: dtype {q.dtype} is not supported (torch.float32, torch.float16 or torch.bfloat16)")
    if out_dtype is not None and out_dtype not in _INPUT_DTYPES:
        raise TypeError(f"out_dtype: {out_dtype} is not one of torch.float32, torch.float16, torch.bfloat16")
    if q.dim() not in (3, 4):
        raise ValueError(f"q: expected [batch, tokens, heads, head_dim] or [batch, heads, head_dim] (one token), got "
                         f"shape {tuple(q.shape)}")


def _torch_dtype(out_dtype):
    if out_dtype is None or isinstance(out_dtype, torch.dtype):
        return out_dtype
    return getattr(torch, _attention.dtype_name(out_dtype))


def _no_grad_check(*xs):
    if torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in xs):
        raise RuntimeError("rotary attention: not differentiable (inference only); run it under torch.no_grad() or "
                           "torch.inference_mode(), or detach q")


def _check_tensors(**xs):
    for name, x in xs.items():
        if x is not None and not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor (the call has torch tensors; do not mix them with "
                            f"NumPy arrays), got {type(x).__name__}")


def _check_out(out, q, out_dtype):
    if out is None:
        return
    if tuple(out.shape) != tuple(q.shape):
        raise ValueError(f"out: shape {tuple(out.shape)}, expected q's {tuple(q.shape)}")
    if out_dtype is not None and out.dtype != out_dtype:
        raise TypeError(f"out: dtype {out.dtype} differs from out_dtype {out_dtype}")


def attention(r, q, cache, index, rope_mode, scale, softcap, window, out, out_dtype, return_lse, precision="f32"):
    """rotary.attention for torch tensors: torch.ops.rotary.attention (eager, plain tensors: its kernel, into out
    when given)."""
    _check_tensors(q=q, k_cache=cache.k, v_cache=cache.v, out=out)
    _no_grad_check(q)
    out_dtype = _torch_dtype(out_dtype)
    _check_out(out, q, out_dtype)
    if out is not None and out_dtype is None:
        out_dtype = out.dtype
    scale_c, softcap_c, window_c = _attention.scalars(scale, softcap, window)
    _attention.rope_mode_code(rope_mode)
    _attention.precision_code(precision)
    idx = {n: _torchkv._as_tensor(x, n, torch.int64 if n == "lengths" else torch.int32) for n, x in index.items()}
    if _torchkv._plain(q, cache.k, cache.v, out, *idx.values()):
        r = _torchkv._rope_object(r)
        _check_q(q, out_dtype)
        if out is None:
            out = q.new_empty(q.shape, dtype=out_dtype if out_dtype is not None else q.dtype)
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32) if return_lse else None
        _attention.attention(r, q, out, lse, cache.k, cache.v, cache.layout, cache.dtype, cache.k_scale,
                             cache.v_scale, rope_mode, scale, softcap, window, precision, **idx)
        return (out, lse) if return_lse else out
    res, lse = _ATTENTION(q, cache.k, cache.v, _torchkv._rope_tensor(r), cache.layout, cache.dtype, cache.k_scale,
                          cache.v_scale, idx["lengths"], idx["block_table"], idx["page_indptr"], idx["page_indices"],
                          idx["last_page_len"], rope_mode, scale_c, softcap_c, window_c, out_dtype, return_lse,
                          precision if precision is not None else "f32")
    if out is not None:
        out.copy_(res)
        res = out
    return (res, lse) if return_lse else res


def _after_lengths(batch, seq, block_size, index):
    """The lengths after the step as an int64 tensor (traceable), for default positions and the attention."""
    if index["lengths"] is not None:
        return index["lengths"].to(torch.int64) + seq
    if index["seq_lens"] is not None:
        return index["seq_lens"].to(torch.int64)
    indptr, last = index["page_indptr"], index["last_page_len"]
    if indptr is None or last is None:
        return None
    indptr = indptr.to(torch.int64)
    return (indptr[1:] - indptr[:-1] - 1) * block_size + last.to(torch.int64)


def decode_step(r, q, k, v, cache, positions, index, q_out, scale, softcap, window, out, out_dtype, return_lse):
    """rotary.decode_step for torch tensors: one rotary_decode_step call in eager mode (plain tensors); while a graph
    is traced, the same two operations as ops (kv_write_, then attention over the cache it wrote)."""
    _check_tensors(q=q, k=k, v=v, k_cache=cache.k, v_cache=cache.v, q_out=q_out, out=out)
    _no_grad_check(q, k, v)
    out_dtype = _torch_dtype(out_dtype)
    _check_out(out, q, out_dtype)
    if out is not None and out_dtype is None:
        out_dtype = out.dtype
    write_index, attn_index = _attention.decode_step_index(**index)
    _attention.scalars(scale, softcap, window)
    idx = {n: _torchkv._as_tensor(x, n, torch.int64 if n in ("lengths", "seq_lens", "slot_mapping") else torch.int32)
           for n, x in index.items()}
    if _torchkv._plain(q, k, v, cache.k, cache.v, q_out, out, *idx.values()):
        r = _torchkv._rope_object(r)
        _check_q(q, out_dtype)
        if q_out is None:
            q_out = q
        if out is None:
            out, lse = _outputs(q, out_dtype, return_lse)
        else:
            lse = q.new_empty(q.shape[:-1] if return_lse else (0,), dtype=torch.float32)
        _attention.decode_step(r, q, k, v, q_out, out, lse if return_lse else None, cache.k, cache.v, cache.layout,
                               cache.dtype, cache.k_scale, cache.v_scale, positions, scale, softcap, window, **idx)
        _torchkv._increment_version([cache.k, cache.v, q_out])
        return (out, lse) if return_lse else out
    if k.dim() != 4:
        raise ValueError(f"k: expected [batch, seq, kv_heads, head_dim], got shape {tuple(k.shape)}")
    batch, seq = k.shape[0], k.shape[1]
    block_size = _kv.cache_meta(cache.k, "k_cache", _kv.CACHE_LAYOUTS[cache.layout], on_device=True)[1]
    after = _after_lengths(batch, seq, block_size, idx)
    offsets = None
    if positions is None:
        offsets = torch.clamp(after - seq, min=0)
    write_kw = {n: idx[n] for n in write_index}
    q_rot = _torchkv.kv_write(r, q, k, v, cache, positions, offsets, None, "bshd", q_out, **write_kw)
    if attn_index is None:  # a cache per sequence: the lengths after the write
        attn_kw = {"lengths": after}
    elif "block_table" in attn_index:  # vLLM
        attn_kw = {"block_table": idx["block_table"], "lengths": idx["seq_lens"]}
    else:  # FlashInfer pages, the same arrays as the write's
        attn_kw = {n: idx[n] for n in attn_index}
    return attention(r, q_rot, cache, dict(_index(None, None, None, None, None), **attn_kw), "none", scale, softcap,
                     window, out, out_dtype, return_lse)
