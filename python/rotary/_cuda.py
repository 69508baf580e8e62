"""_cuda.py: torch CUDA tensors through librotary's CUDA backend: each RoPE's device ropes (one per device, made on
first use, freed with the RoPE), the current torch stream, and one rotary_cuda_apply / rotary_cuda_kv_write per call.

A call enqueues one kernel on torch.cuda.current_stream(device) and returns: no synchronization, allocation or copy
inside it, so it can be captured in a torch.cuda.CUDAGraph (the device rope must exist before the capture: a first
call outside it, or RoPE.prepare_cuda). Tensors, ids and index arrays must all live on one device (ValueError
otherwise; rotary never copies CPU positions to the device). Positions that live on the device are checked by the
kernel: a token whose position (or cache slot) is out of range is skipped whole and, when a flags tensor is given,
ROTARY_CUDA_FLAG_POSITION (1) or ROTARY_CUDA_FLAG_CACHE_INDEX (2) is ORed into it. A captured graph holds the
device rope's address: keep the RoPE alive as long as the graph (freeing it frees its device copies, after a
device synchronization)."""
import ctypes
import threading

from . import _core, _lib
from ._lib import lib

FLAG_POSITION = 1
FLAG_CACHE_INDEX = 2

_lock = threading.Lock()


def device_count():
    """CUDA devices librotary can use: 0 without a CUDA build, a driver or a device."""
    return int(lib.rotary_cuda_device_count()) if _lib.HAS_CUDA else 0


def _raise(status, what, device):
    if status == _lib.ERR_UNSUPPORTED:
        raise _core.RotaryDeviceError(status, f"{what}: unsupported: the loaded librotary was built without CUDA "
                                      "(ROTARY_CUDA=OFF or no nvcc at build time), or (rotary_cuda_kv_write) it "
                                      "predates the CUDA KV write")
    if status == _lib.ERR_DEVICE:
        raise _core.RotaryDeviceError(status, f"{what}: {_lib.status_string(status)} (cuda:{device}; librotary "
                                      f"sees {device_count()} CUDA device(s))")
    _core._raise(status, what)


def _torch():
    import torch
    return torch


def device_index(device):
    """A CUDA device index from an int, "cuda:1", a torch.device, or None (torch's current device)."""
    torch = _torch()
    if device is None:
        return torch.cuda.current_device()
    if isinstance(device, int) and not isinstance(device, bool):
        return device
    d = torch.device(device)
    if d.type != "cuda":
        raise ValueError(f"device: expected a CUDA device, got {d}")
    return torch.cuda.current_device() if d.index is None else d.index


def rope_on(r, device):
    """The address of r's rotary_cuda_rope on device (an int index), uploaded on first use."""
    ropes = r._cuda_ropes
    if ropes is not None:
        h = ropes.get(device)
        if h is not None:
            return h
    if not _lib.HAS_CUDA:
        raise _core.RotaryDeviceError(_lib.ERR_UNSUPPORTED, "rotary: the loaded librotary predates the CUDA backend "
                                      "(no rotary_cuda_apply); rebuild it with ROTARY_CUDA=ON")
    torch = _torch()
    if torch.cuda.is_initialized() and torch.cuda.is_current_stream_capturing():
        raise RuntimeError(f"rotary: this RoPE has no copy on cuda:{device} yet and one cannot be made while a CUDA "
                           f"graph is being captured (it allocates and copies): call rope.prepare_cuda({device}) or "
                           "run the call once before the capture")
    with _lock:
        if r._cuda_ropes is None:
            r._cuda_ropes = {}
        h = r._cuda_ropes.get(device)
        if h is None:
            out = ctypes.c_void_p()
            st = lib.rotary_cuda_rope_create(r._handle, device, ctypes.byref(out))
            if st != _lib.OK:
                _raise(st, "rotary_cuda_rope_create", device)
            h = r._cuda_ropes[device] = out.value
    return h


def memory_bytes(r):
    """{device: bytes} of r's device ropes."""
    return {d: int(lib.rotary_cuda_rope_memory_bytes(h)) for d, h in (r._cuda_ropes or {}).items()}


def check_flags(flags, device):
    """The address of a flags tensor: int32, on device, at least one element (the first is ORed into)."""
    torch = _torch()
    if flags is None:
        return 0
    if not isinstance(flags, torch.Tensor) or flags.dtype != torch.int32 or flags.device != device \
            or flags.numel() < 1:
        raise ValueError(f"flags: expected an int32 tensor of at least one element on {device} (the caller zeroes "
                         f"it), got {_describe(flags)}")
    return flags.data_ptr()


def _describe(x):
    torch = _torch()
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)} on {x.device}"
    return type(x).__name__


def _call(fn, what, r, device, desc_addr, flags_addr):
    """One call on the current torch stream of device, with device current (librotary launches there)."""
    torch = _torch()
    h = rope_on(r, device)
    if torch.cuda.current_device() != device:
        with torch.cuda.device(device):
            st = fn(h, desc_addr, torch.cuda.current_stream(device).cuda_stream, flags_addr)
    else:
        st = fn(h, desc_addr, torch.cuda.current_stream(device).cuda_stream, flags_addr)
    if st != _lib.OK:
        if st in (_lib.ERR_UNSUPPORTED, _lib.ERR_DEVICE):
            _raise(st, what, device)
        return st
    return _lib.OK


def apply(r, device, desc_addr, flags_addr):
    """rotary_cuda_apply with a packed rotary_apply_desc at desc_addr; returns the status (errors other than
    DEVICE and UNSUPPORTED are the caller's to describe)."""
    return _call(lib.rotary_cuda_apply, "rotary_cuda_apply", r, device, desc_addr, flags_addr)


# --- rotary_cuda_kv_write ------------------------------------------------------------------------------------
def _index(x, name, dtype, count, device):
    """The device address of an index tensor: the dtype asked for (int32 widened to int64 on the device; narrowing
    refused, it would need a range check on the host), count values (None: any), contiguous."""
    torch = _torch()
    if x is None:
        return None, 0
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a {dtype} tensor on {device}, got {type(x).__name__}")
    if x.device != device:
        raise ValueError(f"{name}: tensor is on {x.device}, the call's tensors on {device}: pass it on {device} "
                         "(rotary copies nothing inside a call, so that it can be captured in a CUDA graph)")
    if x.dtype != dtype:
        if x.dtype == torch.int32 and dtype == torch.int64:
            x = x.to(torch.int64)
        else:
            raise TypeError(f"{name}: expected {dtype}, got {x.dtype}")
    if count is not None and x.numel() != count:
        raise ValueError(f"{name}: {x.numel()} values, expected {count}")
    x = x.reshape(-1)
    if not x.is_contiguous():
        x = x.contiguous()
    return x, x.data_ptr()


def kv_write(r, q, k, v, k_cache, v_cache, q_out, positions, layout, cache_layout, cache_dtype_name, k_scale,
             v_scale, cos_sin=None, flags=None, **index):
    """One rotary_cuda_kv_write over CUDA tensors (rotary.kv_write's arguments; offsets already made ids)."""
    from . import _kv, _torchop
    torch = _torch()
    _core._check_layout(layout)
    device = k.device
    dims = _torchop._dims(layout)
    hd = r.head_dim
    d = _lib.KVWriteDesc()
    lib.rotary_kv_write_desc_init(ctypes.byref(d))
    gk = _torchop._geometry(k, "k", dims, hd, device)
    gv = _torchop._geometry(v, "v", dims, hd, device)
    if gv[:3] != gk[:3]:
        raise ValueError(f"v: (batch, seq_len, heads) {gv[:3]} differ from k's {gk[:3]}")
    for t, g in ((d.k, gk), (d.v, gv)):
        t.in_, t.out, t.dtype, t.n_heads = g[6], g[6], g[7], g[2]
        t.stride_batch, t.stride_seq, t.stride_head = g[3:6]
        t.out_stride_batch, t.out_stride_seq, t.out_stride_head = g[3:6]
    d.batch, d.seq_len = gk[0], gk[1]
    if q is not None:
        if q_out is not None and (tuple(q_out.shape) != tuple(q.shape) or q_out.dtype != q.dtype):
            raise ValueError(f"q_out: must have q's shape {tuple(q.shape)} and dtype {q.dtype}")
        gq = _torchop._geometry(q, "q", dims, hd, device)
        go = gq if q_out is None else _torchop._geometry(q_out, "q_out", dims, hd, device)
        if gq[:2] != gk[:2]:
            raise ValueError(f"q: (batch, seq_len) {gq[:2]} differ from k's {gk[:2]}")
        d.q.in_, d.q.out, d.q.dtype, d.q.n_heads = gq[6], go[6], gq[7], gq[2]
        d.q.stride_batch, d.q.stride_seq, d.q.stride_head = gq[3:6]
        d.q.out_stride_batch, d.q.out_stride_seq, d.q.out_stride_head = go[3:6]
    elif q_out is not None:
        raise ValueError("q_out: given without q")
    lay = _kv.CACHE_LAYOUTS.get(cache_layout)
    if lay is None:
        raise ValueError(f"cache layout must be 'NHD' or 'HND', got {cache_layout!r}")
    c = d.cache
    code = _kv.cache_dtype(k_cache, "k_cache", cache_dtype_name)
    for name, x in (("k_cache", k_cache), ("v_cache", v_cache)):
        if x.device != device:
            raise ValueError(f"{name}: tensor is on {x.device}, k on {device}: the tensors of one call must be on "
                             "one device")
    mk = _kv.cache_meta(k_cache, "k_cache", lay, hd, on_device=True)
    if _kv.cache_dtype(v_cache, "v_cache", cache_dtype_name) != code:
        raise TypeError("v_cache: its dtype differs from k_cache's")
    mv = _kv.cache_meta(v_cache, "v_cache", lay, hd, on_device=True)
    if mv != mk:
        raise ValueError(f"v_cache: (num_blocks, block_size, kv_heads, block_stride) {mv} differ from k_cache's {mk}")
    c.layout, c.dtype, c.k, c.v = lay, code, k_cache.data_ptr(), v_cache.data_ptr()
    c.num_blocks, c.block_size, c.block_stride = mk[0], mk[1], mk[3]
    c.k_scale, c.v_scale = float(k_scale), float(v_scale)
    if mk[2] != gk[2]:
        raise ValueError(f"k: {gk[2]} heads, the cache holds {mk[2]} kv heads")
    keep = []
    p = d.positions
    if cos_sin is not None:
        half = r.rotary_dim // 2
        rows = []
        for nm, a in zip(("cos", "sin"), cos_sin):
            if not isinstance(a, torch.Tensor) or a.dtype != torch.float32 or a.device != device:
                raise TypeError(f"{nm}: expected float32 rows on {device}, got {_describe(a)}")
            if a.dim() < 1 or a.shape[-1] != half or a.numel() != d.batch * d.seq_len * half:
                raise ValueError(f"{nm}: shape {tuple(a.shape)}, expected {d.batch * d.seq_len} rows of "
                                 f"rotary_dim/2 = {half} values")
            a = a.contiguous()
            keep.append(a)
            rows.append(a)
        p.mode = _lib.POS_COS_SIN
        p.cos = ctypes.cast(rows[0].data_ptr(), ctypes.POINTER(ctypes.c_float))
        p.sin = ctypes.cast(rows[1].data_ptr(), ctypes.POINTER(ctypes.c_float))
        p.row_stride = half
    elif positions is None or not isinstance(positions, torch.Tensor):
        p.mode = _lib.POS_OFFSET
        p.offset = _lib.c_int_arg(positions or 0, "positions: offset", _lib.INT64_MIN, _lib.INT64_MAX)
    else:
        mode, ids, n_streams, stream_stride = _torchop._ids(positions, d.batch, d.seq_len, layout, r.n_streams,
                                                            device)
        keep.append(ids)
        p.mode, p.ids, p.n_streams, p.stream_stride = mode, ids.data_ptr(), n_streams, stream_stride
    _fill_index(c, d.batch, d.seq_len, device, keep, **index)
    flags_addr = check_flags(flags, device)
    if d.batch == 0 or d.seq_len == 0:
        return  # no token (librotary refuses zero counts)
    st = _call(lib.rotary_cuda_kv_write, "rotary_cuda_kv_write", r, device.index, ctypes.addressof(d), flags_addr)
    if st != _lib.OK:
        _core._raise(st, "rotary_cuda_kv_write", _kv._detail(st, d, r))


def _fill_index(c, batch, seq_len, device, keep, lengths=None, slot_mapping=None, page_indptr=None,
                page_indices=None, last_page_len=None):
    """c.index and its device arrays from exactly one of slot_mapping, lengths, or the three page arrays."""
    torch = _torch()
    from . import _kv
    _kv.check_one_index(lengths, slot_mapping, page_indptr, page_indices, last_page_len)
    pages = (page_indptr, page_indices, last_page_len)
    if slot_mapping is not None:
        c.index = _lib.CACHE_SLOTS
        x, c.slot_mapping = _index(slot_mapping, "slot_mapping", torch.int64, batch * seq_len, device)
        keep.append(x)
    elif lengths is not None:
        c.index = _lib.CACHE_SEQUENCES
        x, c.lengths = _index(lengths, "lengths", torch.int64, batch, device)
        keep.append(x)
    else:
        if any(x is None for x in pages):
            raise ValueError("pages: page_indptr, page_indices and last_page_len are all needed")
        c.index = _lib.CACHE_PAGES
        x, c.page_indptr = _index(page_indptr, "page_indptr", torch.int32, batch + 1, device)
        keep.append(x)
        x, c.page_indices = _index(page_indices, "page_indices", torch.int32, None, device)
        if x.numel() == 0:  # never a NULL pointer (librotary reads page_indptr[batch] of them, on the device)
            x = x.new_zeros(1)
            c.page_indices = x.data_ptr()
        keep.append(x)
        x, c.last_page_len = _index(last_page_len, "last_page_len", torch.int32, batch, device)
        keep.append(x)
