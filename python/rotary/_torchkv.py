"""_torchkv.py: the KV-cache operations as torch custom ops, torch.ops.rotary.kv_write_ and kv_rerotate_, mutating
the caches (and q) in place, with fake implementations so torch.compile(fullgraph=True) and torch.export trace them.
The rope travels as its tensor (rotary.ops.rope_tensor), as in rotary::rope."""
import torch

from . import _core, _kv, _torchop

_library = torch.library.Library("rotary", "FRAGMENT")
_library.define(
    "kv_write_(Tensor(a!)? q, Tensor k, Tensor v, Tensor(b!) k_cache, Tensor(c!) v_cache, Tensor(d!)? q_out, "
    "Tensor? ids, SymInt offset, Tensor? cos, Tensor? sin, Tensor rope, str layout, str cache_layout, "
    "str cache_dtype, Tensor? lengths, Tensor? slot_mapping, Tensor? page_indptr, Tensor? page_indices, "
    "Tensor? last_page_len, float k_scale, float v_scale) -> ()")
_library.define(
    "kv_rerotate_(Tensor(a!) k_cache, Tensor? slots, SymInt first, SymInt count, SymInt delta, Tensor rope, "
    "str cache_layout, str cache_dtype, float k_scale) -> ()")
_KV_WRITE = torch.ops.rotary.kv_write_.default
_KV_REROTATE = torch.ops.rotary.kv_rerotate_.default
_INPUT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_CACHE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.uint8)
_increment_version = torch._C._increment_version


# --- kernels ---------------------------------------------------------------------------------------------------
def _write(r, q, k, v, k_cache, v_cache, q_out, ids, offset, cos, sin, layout, cache_layout, cache_dtype,
           lengths, slot_mapping, page_indptr, page_indices, last_page_len, k_scale, v_scale, flags=None):
    positions = None if cos is not None else (ids if ids is not None else offset)
    if isinstance(k, torch.Tensor) and k.is_cuda:  # rotary_cuda_kv_write on the current stream (_cuda.py)
        from . import _cuda
        _cuda.kv_write(r, q, k, v, k_cache, v_cache, q_out, positions, layout, cache_layout, cache_dtype, k_scale,
                       v_scale, cos_sin=None if cos is None else (cos, sin), flags=flags, lengths=lengths,
                       slot_mapping=slot_mapping, page_indptr=page_indptr, page_indices=page_indices,
                       last_page_len=last_page_len)
    elif flags is not None:
        raise ValueError("flags: only for CUDA tensors (on the CPU a position or slot out of range raises)")
    else:
        _kv.write(r, q, k, v, k_cache, v_cache, q_out, positions, layout, cache_layout, cache_dtype, k_scale, v_scale,
                  cos_sin=None if cos is None else (cos, sin), lengths=lengths, slot_mapping=slot_mapping,
                  page_indptr=page_indptr, page_indices=page_indices, last_page_len=last_page_len)
    # librotary wrote through the data pointers: tell autograd and functionalization the tensors changed
    changed = [k_cache, v_cache] + [x for x in (q_out if q_out is not None else q,) if x is not None]
    _increment_version(changed)


def _kv_write_cpu(q, k, v, k_cache, v_cache, q_out, ids, offset, cos, sin, rope, *rest):
    _write(_torchop.rope_for(rope), q, k, v, k_cache, v_cache, q_out, ids, offset, cos, sin, *rest)


def _rerotate(r, k_cache, slots, first, count, delta, cache_layout, cache_dtype, k_scale):
    if isinstance(k_cache, torch.Tensor) and k_cache.is_cuda:
        raise NotImplementedError("rotary kv_rerotate: CUDA caches are not supported (librotary has no CUDA "
                                  "re-rotation); re-rotate a CPU copy of the cache")
    _kv.rerotate(r, k_cache, delta, slots, 0 if slots is not None else first,
                 None if (slots is not None or count < 0) else count, cache_layout, cache_dtype, k_scale)
    _increment_version([k_cache])


def _kv_rerotate_cpu(k_cache, slots, first, count, delta, rope, cache_layout, cache_dtype, k_scale):
    _rerotate(_torchop.rope_for(rope), k_cache, slots, first, count, delta, cache_layout, cache_dtype, k_scale)


_library.impl("kv_write_", _kv_write_cpu, "CPU")
_library.impl("kv_rerotate_", _kv_rerotate_cpu, "CPU")
# CUDA tensors: the same kernels (_write dispatches on k's device to rotary_cuda_kv_write on the current stream)
_library.impl("kv_write_", _kv_write_cpu, "CUDA")
_library.impl("kv_rerotate_", _kv_rerotate_cpu, "CUDA")


# --- fake implementations: the checks that need no data, so a traced program fails where eager would -----------
def _check_cache_fake(name, x, cache_dtype, cache_layout):
    if x.dtype not in _CACHE_DTYPES:
        raise TypeError(f"{name}: dtype {x.dtype} cannot hold a KV cache")
    _kv.cache_dtype(x, name, cache_dtype)
    if cache_layout not in _kv.CACHE_LAYOUTS:
        raise ValueError(f"cache layout must be 'NHD' or 'HND', got {cache_layout!r}")
    _kv.cache_meta(x, name, _kv.CACHE_LAYOUTS[cache_layout], on_device=True)


@torch.library.register_fake("rotary::kv_write_", lib=_library)
def _kv_write_fake(q, k, v, k_cache, v_cache, q_out, ids, offset, cos, sin, rope, layout, cache_layout,
                   cache_dtype, *rest):
    _core._check_layout(layout)
    for name, x in (("q", q), ("k", k), ("v", v), ("q_out", q_out)):
        if x is not None and x.dtype not in _INPUT_DTYPES:
            raise TypeError(f"{name}: dtype {x.dtype} is not supported (torch.float32, torch.float16 or "
                            "torch.bfloat16)")
    _check_cache_fake("k_cache", k_cache, cache_dtype, cache_layout)
    _check_cache_fake("v_cache", v_cache, cache_dtype, cache_layout)
    if ids is not None and ids.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"positions: ids must be int32 or int64, got {ids.dtype}")
    return None


@torch.library.register_fake("rotary::kv_rerotate_", lib=_library)
def _kv_rerotate_fake(k_cache, slots, first, count, delta, rope, cache_layout, cache_dtype, k_scale):
    _check_cache_fake("k_cache", k_cache, cache_dtype, cache_layout)
    return None


# --- the Python entry points (rotary.kv_write / kv_rerotate with torch tensors) ---------------------------------
def _plain(*xs):
    """True when nothing traces, transforms or records this call and every tensor is a plain tensor: the op's
    kernel then runs without the dispatcher (what an eager call through torch.ops would end up doing)."""
    from . import ops
    return (not torch.compiler.is_compiling() and all(x is None or type(x) is torch.Tensor for x in xs)
            and not ops._dispatch_modes() and not ops._function_modes() and ops._jit_tracing() is None
            and ops._functorch_level() is None and not ops._profiling())


def _no_grad_check(*xs):
    if torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in xs):
        raise RuntimeError("rotary kv_write: writes in place and is not differentiable; run it under "
                           "torch.no_grad() or torch.inference_mode(), or detach q, k and v")


def _as_tensor(x, name, dtype):
    if x is None or isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(x, dtype=dtype)


def _ids_from(positions, offsets, batch, seq):
    """(ids tensor or None, int offset) for the op."""
    if offsets is not None:
        offsets = _as_tensor(offsets, "offsets", torch.int64)
        return offsets.reshape(-1, 1).to(torch.int64) + torch.arange(seq, dtype=torch.int64,
                                                                     device=offsets.device), 0
    if isinstance(positions, torch.Tensor):
        return positions, 0
    off = _core._offset(positions, "tensor")
    if off is not None:
        return None, off
    return torch.as_tensor(positions), 0


def kv_write(r, q, k, v, cache, positions, offsets, cos_sin, layout, q_out, slot_mapping=None, lengths=None,
             page_indptr=None, page_indices=None, last_page_len=None, flags=None):
    """rotary.kv_write for torch tensors: torch.ops.rotary.kv_write_ (eager, plain tensors: its kernel). flags
    (CUDA, eager only): an int32 device tensor the kernel ORs ROTARY_CUDA_FLAG_* into."""
    for name, x in (("q", q), ("k", k), ("v", v), ("q_out", q_out), ("k_cache", cache.k), ("v_cache", cache.v)):
        if x is not None and not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor like the others, got {type(x).__name__}")
    _no_grad_check(q, k, v)
    _core._check_layout(layout)
    if layout == "thd":
        batch, seq = 1, k.shape[0]
    else:
        batch, seq = k.shape[0], k.shape[2 if layout == "bhsd" else 1]
    cos = sin = None
    if cos_sin is not None:
        if positions is not None or offsets is not None:
            raise ValueError("positions: give one of positions=, offsets= or cos_sin=")
        cos, sin = cos_sin
        ids, offset = None, 0
    else:
        if offsets is not None and positions is not None:
            raise ValueError("positions: give one of positions=, offsets= or cos_sin=")
        ids, offset = _ids_from(positions, offsets, batch, seq)
    index = [_as_tensor(x, n, t) for x, n, t in ((lengths, "lengths", torch.int64),
                                                  (slot_mapping, "slot_mapping", torch.int64),
                                                  (page_indptr, "page_indptr", torch.int32),
                                                  (page_indices, "page_indices", torch.int32),
                                                  (last_page_len, "last_page_len", torch.int32))]
    args = (q, k, v, cache.k, cache.v, q_out, ids, offset, cos, sin)
    tail = (layout, cache.layout, cache.dtype, *index, cache.k_scale, cache.v_scale)
    if _plain(q, k, v, cache.k, cache.v, q_out):
        _write(_rope_object(r), *args, *tail, flags)
    elif flags is not None:
        raise ValueError("flags: eager calls only (CUDA graph capture included), not while torch.compile, "
                         "torch.export or a dispatch mode traces the call")
    else:
        _KV_WRITE(*args, _rope_tensor(r), *tail)
    return q_out if q_out is not None else q


def _rope_object(r):
    """The RoPE for a RoPE or a rope tensor, in eager mode."""
    if isinstance(r, torch.Tensor):
        return _torchop.rope_for(r)
    if getattr(r, "_torch_rope", None) is None:
        from . import ops
        ops.rope_tensor(r)  # made once, so that a graph traced later reads it (Dynamo cannot call librotary)
    return r


def _rope_tensor(r):
    if isinstance(r, torch.Tensor):
        return r
    from . import ops
    return ops.rope_tensor(r)


def kv_rerotate(r, cache, delta, slots, first, count):
    """rotary.kv_rerotate for torch tensors: torch.ops.rotary.kv_rerotate_."""
    slots = _as_tensor(slots, "slots", torch.int64)
    count = -1 if count is None else count
    if _plain(cache.k, slots):
        _rerotate(_rope_object(r), cache.k, slots, first, count, delta, cache.layout, cache.dtype, cache.k_scale)
        return
    _KV_REROTATE(cache.k, slots, first, count, delta, _rope_tensor(r), cache.layout, cache.dtype, cache.k_scale)
