"""_torchop.py: the plumbing under rotary's torch ops: the rope as a tensor of its parameters (the op's only
state, so exported programs carry it), librotary ropes found from that tensor (by identity, else rebuilt and cached
by content), and one rotary_apply call per op call from descriptor bytes packed in one step."""
import ctypes
import struct
import threading
import weakref
from collections import OrderedDict

import numpy as np
import torch
from torch.utils._python_dispatch import _disable_current_modes

from . import _core, _lib, _streams
from ._lib import lib

# --- the rope tensor -----------------------------------------------------------------------------------------
# float64, 1-D: [head_dim, max_positions, code, attention_scaling, inv_freq[0..d/2)], then for a multi-stream rope
# its stream map (d/2 values); code = pairing (0 half, 1 interleaved) + 2 * (n_streams - 1), so that a one-stream
# rope's tensor is the same as before streams existed. Every value a call's result depends on; integers are exact in
# fp64 (max_positions <= 2^53 in librotary).
HEADER = 4
_PAIRING_CODES = {"half": _lib.PAIRING_HALF, "interleaved": _lib.PAIRING_INTERLEAVED}
_PAIRING_NAMES = {v: k for k, v in _PAIRING_CODES.items()}


def values_of(head_dim, max_positions, pairing, attention_scaling, inv_freq, n_streams, stream_map):
    """The rope tensor's values from a rope's parameters (no librotary call: traceable)."""
    code = _PAIRING_CODES[pairing] + 2 * (n_streams - 1)
    tail = tuple(float(v) for v in stream_map) if n_streams > 1 else ()
    return (float(head_dim), float(max_positions), float(code), float(attention_scaling), *inv_freq, *tail)


def rope_values(r):
    """The rope tensor's values for a RoPE (reads librotary: not traceable)."""
    return values_of(r.head_dim, r.max_positions, r.pairing, r.attention_scaling, r.inv_freq.tolist(), r.n_streams,
                     r.stream_map.tolist())


def rope_tensor(r):
    """A new rope tensor for r, registered so that calls with it use r itself (no second table)."""
    values = np.array(rope_values(r), dtype=np.float64)
    # a real, normal tensor even under torch.export's tracing or in inference mode (a program's constant)
    with torch._C.DisableTorchFunction(), _disable_current_modes(), torch.inference_mode(False):
        t = torch.from_numpy(values)
    _remember(t, weakref.ref(r))
    with _lock:
        _live[values.tobytes()] = r
    return t


# --- ropes from rope tensors ---------------------------------------------------------------------------------
_lock = threading.Lock()
_by_tensor = {}                       # id(tensor) -> (weakref to it, its _version, () -> RoPE or None)
_live = weakref.WeakValueDictionary()  # content bytes -> a RoPE alive elsewhere (user ropes, built ropes in use)
_recent = OrderedDict()               # content bytes -> RoPE built here; the last _RECENT kept alive
_RECENT = 8


def _remember(t, getter):
    key = id(t)

    def forget(ref, key=key):
        entry = _by_tensor.get(key)
        if entry is not None and entry[0] is ref:
            del _by_tensor[key]

    with _lock:
        _by_tensor[key] = (weakref.ref(t, forget), _version(t), getter)


def _version(t):
    """Its version counter; None for an inference tensor, which has none (changed only in inference mode)."""
    return None if t.is_inference() else t._version


def rope_for(t):
    """The RoPE a rope tensor stands for. Fast for a tensor seen before and not modified since."""
    entry = _by_tensor.get(id(t))
    if entry is not None and entry[0]() is t and entry[1] == _version(t):
        r = entry[2]()
        if r is not None:
            return r
    return _rope_by_content(t)


def _rope_by_content(t):
    given = t
    if isinstance(t, torch.Tensor) and t.is_cuda:  # a compiler moved the graph's constant: read it back (a sync)
        t = t.cpu()
    if not isinstance(t, torch.Tensor) or t.dtype != torch.float64 or t.dim() != 1 or t.device.type != "cpu" \
            or t.numel() <= HEADER:
        raise ValueError("rope: expected a float64 CPU tensor [head_dim, max_positions, pairing, "
                         "attention_scaling, inv_freq...] (rotary.ops.rope_tensor(rope)), got "
                         f"{_describe(t)}")
    values = t.detach().contiguous().numpy()
    key = values.tobytes()
    with _lock:
        r = _live.get(key)
        if r is None:
            r = _recent.get(key)
    if r is None:
        r = _build(values)
        with _lock:
            r = _live.setdefault(key, r)
            _recent[key] = r
            _recent.move_to_end(key)
            while len(_recent) > _RECENT:
                _recent.popitem(last=False)
    # A tensor made in a graph (or loaded with a program) keeps its rope while it lives.
    _remember(given, lambda r=r: r)
    return r


def _describe(t):
    if not isinstance(t, torch.Tensor):
        return type(t).__name__
    return f"{t.dtype} tensor of shape {tuple(t.shape)} on {t.device}"


def _build(values):
    head_dim, max_positions, code, scaling = values[:HEADER]
    for name, v in (("head_dim", head_dim), ("max_positions", max_positions), ("pairing", code)):
        if not (np.isfinite(v) and v == int(v) and 0 <= v < 2.0 ** 53):
            raise ValueError(f"rope: {name} {v!r} is not a non-negative integer")
    pairing, n_streams = int(code) % 2, int(code) // 2 + 1
    if n_streams > _lib.MAX_STREAMS:
        raise ValueError(f"rope: code {int(code)} is not a pairing (0 half, 1 interleaved) + 2 * (n_streams - 1) "
                         f"with at most {_lib.MAX_STREAMS} streams")
    rest = values[HEADER:]
    streams = None
    if n_streams > 1:
        if rest.size % 2:
            raise ValueError(f"rope: pairing code {int(code)} (pairing + 2 * (n_streams - 1)) means {n_streams} "
                             f"streams: inv_freq and a stream map of equal lengths, got {rest.size} values after "
                             "the header")
        inv_freq, stream_map = rest[:rest.size // 2], rest[rest.size // 2:]
        if not np.all((stream_map >= 0) & (stream_map < n_streams) & (stream_map == np.floor(stream_map))):
            raise ValueError(f"rope: the stream map holds values that are not streams 0..{n_streams - 1}")
        streams = {"layout": "map", "n_streams": n_streams, "map": stream_map.astype(np.int64)}
    else:
        inv_freq = rest
    return _core.RoPE(int(head_dim), rotary_dim=2 * inv_freq.size, pairing=_PAIRING_NAMES[pairing],
                      max_positions=int(max_positions), attention_scaling=float(scaling), inv_freq=inv_freq,
                      streams=streams)


def cached_count():
    """Ropes built from rope tensors and kept (tests)."""
    return len(_recent)


# --- one rotary_apply call -----------------------------------------------------------------------------------
def _desc_format(fields):
    fmt = ""
    for _, ctype in fields:
        if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
            fmt += _desc_format(ctype._fields_)
        else:
            fmt += {ctypes.c_size_t: "N", ctypes.c_ssize_t: "n", ctypes.c_int: "i", ctypes.c_int64: "q",
                    ctypes.c_void_p: "P"}.get(ctype, "P")  # the rest are pointers
    return fmt


# rotary_apply_desc flattened: struct_size, batch, seq_len, positions (mode, offset, offsets, ids, cos, sin,
# row_stride, n_streams, stream_stride), direction, q and k (in, out, dtype, n_heads, 3 input strides, 3 output
# strides).
_DESC = struct.Struct("@" + _desc_format(_lib.ApplyDesc._fields_))


def _check_desc_layout():
    """Native struct packing must give the ctypes (C) layout, field by field."""
    n = len(_DESC.format) - 1
    values = list(range(1, n + 1))
    buf = ctypes.create_string_buffer(_DESC.size)
    _DESC.pack_into(buf, 0, *values)
    d = _lib.ApplyDesc.from_buffer(buf)
    got = [d.struct_size, d.batch, d.seq_len, d.positions.mode, d.positions.offset]
    got += [ctypes.cast(getattr(d.positions, f), ctypes.c_void_p).value or 0 for f in ("offsets",)]
    got += [d.positions.ids]
    got += [ctypes.cast(getattr(d.positions, f), ctypes.c_void_p).value or 0 for f in ("cos", "sin")]
    got += [d.positions.row_stride, d.positions.n_streams, d.positions.stream_stride, d.direction]
    for t in (d.q, d.k):
        got += [t.in_, t.out, t.dtype, t.n_heads, t.stride_batch, t.stride_seq, t.stride_head,
                t.out_stride_batch, t.out_stride_seq, t.out_stride_head]
    if _DESC.size != ctypes.sizeof(_lib.ApplyDesc) or got != values:
        raise ImportError("rotary.ops: the packed rotary_apply_desc does not match the ctypes layout")


_check_desc_layout()
_STRUCT_SIZE = ctypes.sizeof(_lib.ApplyDesc)
_apply = lib._FuncPtr(("rotary_apply", lib))  # its own prototype: (context, rope, desc address)
_apply.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_apply.restype = ctypes.c_int
_tls = threading.local()

_DTYPES = {torch.float32: (_lib.F32, 4), torch.float16: (_lib.F16, 2), torch.bfloat16: (_lib.BF16, 2)}  # code, size
# rank, then the batch, seq and heads dimensions (-1: none), then the name
_LAYOUTS = {"bshd": (4, 0, 1, 2, "bshd"), "bhsd": (4, 0, 2, 1, "bhsd"), "thd": (3, -1, 0, 1, "thd")}
_STRIDED = torch.strided
_NO_TENSOR = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def _buffer():
    """This thread's descriptor bytes and their address (librotary reads them while the GIL is released)."""
    slot = getattr(_tls, "slot", None)
    if slot is None:
        buf = ctypes.create_string_buffer(_DESC.size)
        slot = _tls.slot = (buf, ctypes.addressof(buf))
    return slot


def _geometry(x, name, dims, head_dim, device=None):
    """(batch, seq_len, heads, stride_batch, stride_seq, stride_head, address, dtype code) of a tensor; on the CPU,
    or on `device` (a CUDA torch.device: the call's) when given."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    code = _DTYPES.get(x.dtype)
    if code is None:
        raise TypeError(f"{name}: dtype {x.dtype} is not supported (torch.float32, torch.float16 or torch.bfloat16)")
    if device is None:
        if not x.is_cpu:
            if x.is_cuda:
                raise ValueError(f"{name}: tensor is on {x.device}, q on cpu: the tensors of one call must be on one "
                                 "device")
            raise ValueError(f"{name}: tensor is on {x.device}; rotary runs on the CPU and on CUDA devices (move it "
                             "with .cpu())")
    elif x.device != device:
        raise ValueError(f"{name}: tensor is on {x.device}, the call's tensors on {device}: the tensors of one call "
                         "must be on one device")
    if x.layout is not _STRIDED:
        raise TypeError(f"{name}: {x.layout} tensors are not supported (dense strided tensors only)")
    shape = x.shape
    if len(shape) != dims[0]:
        raise ValueError(f"{name}: layout {dims[4]!r} needs a {dims[0]}-D tensor, got shape {tuple(shape)}")
    if shape[-1] != head_dim:
        raise ValueError(f"{name}: last dimension is {shape[-1]}, the rope's head_dim is {head_dim}")
    st = x.stride()
    if st[-1] != 1 and x.numel():
        raise ValueError(f"{name}: the last dimension must be contiguous (stride 1), got stride {st[-1]}; rotary "
                         "never copies: pass a tensor whose head_dim elements are adjacent (x.contiguous())")
    if x.is_neg():
        raise ValueError(f"{name}: a lazily negated view (its memory holds -x); call .resolve_neg() first")
    ptr = x.data_ptr()  # any byte address: librotary moves unaligned elements with memcpy
    b, s, h = dims[1], dims[2], dims[3]
    if b < 0:
        return 1, shape[s], shape[h], 0, st[s], st[h], ptr, code[0]
    return shape[b], shape[s], shape[h], st[b], st[s], st[h], ptr, code[0]


def _dims(layout):
    dims = _LAYOUTS.get(layout)
    if dims is None:
        raise ValueError(f"layout must be one of {tuple(_LAYOUTS)}, got {layout!r}")
    return dims


def _out(x, g, dims):
    """A new tensor for x's result (x's memory order) and its (address, 3 strides)."""
    o = torch.empty_like(x)
    st = o.stride()
    if dims[1] < 0:
        return o, (o.data_ptr(), 0, st[dims[2]], st[dims[3]])
    return o, (o.data_ptr(), st[dims[1]], st[dims[2]], st[dims[3]])


def rotate(r, q, k, ids, offset, layout, inverse, inplace, flags=None):
    """Rotates q (and k unless None) by RoPE r, in place or into new tensors; returns (q', k' or None). Checks
    everything a C call cannot: types, devices, shapes against the rope, a contiguous head_dim, negated views,
    ids; librotary checks the rest (strides, overlaps, positions) before it writes anything. CUDA tensors:
    rotary_cuda_apply on the current stream of q's device (_cuda.py), flags an int32 tensor there or None."""
    dims = _dims(layout)
    hd = r.head_dim
    device = q.device if isinstance(q, torch.Tensor) and q.is_cuda else None
    if device is None and flags is not None:
        raise ValueError("flags: only for CUDA tensors (on the CPU a position out of range raises)")
    gq = _geometry(q, "q", dims, hd, device)
    if k is not None:
        gk = _geometry(k, "k", dims, hd, device)
        if gk[:2] != gq[:2]:
            raise ValueError(f"k: (batch, seq_len) {gk[:2]} differ from q's {gq[:2]}")
    batch, seq = gq[0], gq[1]
    n_streams = stream_stride = 0
    if ids is None:
        mode, ids_ptr = _lib.POS_OFFSET, 0
    else:
        mode, ids, n_streams, stream_stride = _ids(ids, batch, seq, layout, r.n_streams, device)
        ids_ptr = ids.data_ptr()
    if inplace:
        q_out, oq = q, (gq[6], gq[3], gq[4], gq[5])
        k_out = k
        if k is not None:
            ok = (gk[6], gk[3], gk[4], gk[5])
    else:
        q_out, oq = _out(q, gq, dims)
        k_out = None
        if k is not None:
            k_out, ok = _out(k, gk, dims)
    if batch == 0 or seq == 0 or gq[2] == 0:
        return q_out, k_out  # nothing to rotate (librotary refuses zero counts)
    if k is None or gk[2] == 0:
        kt = _NO_TENSOR  # q alone
    else:
        kt = (gk[6], ok[0], gk[7], gk[2], gk[3], gk[4], gk[5], ok[1], ok[2], ok[3])
    buf, addr = _buffer()
    try:
        _DESC.pack_into(buf, 0, _STRUCT_SIZE, batch, seq, mode, offset, 0, ids_ptr, 0, 0, 0, n_streams, stream_stride,
                        _lib.INVERSE if inverse else _lib.FORWARD,
                        gq[6], oq[0], gq[7], gq[2], gq[3], gq[4], gq[5], oq[1], oq[2], oq[3], *kt)
    except struct.error:
        raise ValueError(f"positions: offset {offset!r} is not an int64") from None
    if device is not None:
        from . import _cuda
        st = _cuda.apply(r, device.index, addr, _cuda.check_flags(flags, device))
    else:
        st = _apply(_core._context_of(r), r._handle, addr)
    if st != _lib.OK:
        _core._raise(st, "rotary_apply", _detail(st, r, mode, offset, seq, ids))
    return q_out, k_out


def _ids(ids, batch, seq, layout, n_streams, device=None):
    """(mode, ids of shape (batch, seq_len) or (seq_len,) for "thd", contiguous, 0, 0); ids broadcastable to it
    ((1, seq_len), (seq_len,)) are expanded and copied. Stream ids (one more leading axis): (mode, ids, their
    count, stream_stride), n_streams of them (the rope's). device: the call's CUDA device (ids must be there)."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"positions: expected an int32/int64 tensor of ids, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"positions: ids must be int32 or int64, got {ids.dtype}")
    if device is None:
        if not ids.is_cpu or ids.layout is not _STRIDED:
            raise ValueError(f"positions: ids must be a dense CPU tensor, got {ids.layout} on {ids.device}")
    elif ids.device != device or ids.layout is not _STRIDED:
        raise ValueError(f"positions: ids are a {ids.layout} tensor on {ids.device}, q on {device}: pass dense ids on "
                         f"{device} (rotary never copies them inside a call, so that it can be captured in a CUDA "
                         "graph)")
    if ids.dim() == (2 if layout == "thd" else 3):  # _streams.is_stream_ids, inlined (decode calls)
        return _stream_ids(ids, batch, seq, layout, n_streams)
    mode = _lib.POS_IDS_I64 if ids.dtype == torch.int64 else _lib.POS_IDS_I32
    want = (seq,) if layout == "thd" else (batch, seq)
    if ids.shape != want:
        try:
            ids = ids.expand(want)
        except RuntimeError:
            raise ValueError(f"positions: ids of shape {tuple(ids.shape)} do not match {want} (batch, seq_len) "
                             f"of layout {layout!r}") from None
    if not ids.is_contiguous() or ids.is_neg():
        ids = ids.contiguous().resolve_neg()
    return mode, ids, 0, 0


def _stream_ids(ids, batch, seq, layout, n_streams):
    n = ids.shape[0]
    if n != n_streams:  # the rope's count is always a valid one
        _streams.check_count(n, n_streams)
    want = (n, seq) if layout == "thd" else (n, batch, seq)
    if ids.shape != want:
        try:
            ids = ids.expand(want)
        except RuntimeError:
            raise ValueError(f"positions: stream ids of shape {tuple(ids.shape)} do not match {want} (n_streams, "
                             f"{'tokens' if layout == 'thd' else 'batch, seq_len'}) of layout {layout!r}") from None
    mode = _lib.POS_STREAMS_I64 if ids.dtype == torch.int64 else _lib.POS_STREAMS_I32
    if ids.is_neg():
        ids = ids.resolve_neg()
    if ids.is_contiguous():
        return mode, ids, n, 0
    s0 = ids.stride(0)
    if ids[0].is_contiguous() and s0 >= batch * seq:
        return mode, ids, n, s0  # streams apart in a longer buffer (a slice of vLLM's positions): no copy
    return mode, ids.contiguous(), n, 0


def _detail(st, r, mode, offset, seq, ids):
    if st == _lib.ERR_POSITION:
        table = f"table of {r.max_positions} positions" if r.max_positions else "table-free rope"
        if mode == _lib.POS_OFFSET:
            return f"positions {offset}..{offset + seq - 1}, {table}"
        return f"ids in [{int(ids.min())}, {int(ids.max())}], {table}"
    if st in (_lib.ERR_OVERLAP, _lib.ERR_STRIDE):
        return "outputs must not overlap each other or an input other than their own (in place)"
    if st == _lib.ERR_STREAMS:
        return f"stream ids for a rope of {r.n_streams} stream(s)"
    return None
