"""_arrays.py: NumPy arrays and PyTorch CPU tensors described for librotary (address, shape, element strides,
dtype; never copied), and the rotary_positions of a call (an offset, ids, or stream ids)."""
import sys

import numpy as np

from . import _lib, _streams

LAYOUTS = ("bshd", "bhsd", "thd")


def _torch():
    return sys.modules.get("torch")


_ops_module = []


def _torch_ops():
    """rotary.ops, imported once (RoPE.apply on torch tensors goes through it on every call)."""
    if not _ops_module:
        from . import ops
        _ops_module.append(ops)
    return _ops_module[0]


def is_torch(x):
    t = _torch()
    return t is not None and isinstance(x, t.Tensor)


def _dtype_code(x, name):
    if isinstance(x, np.ndarray):
        dt = x.dtype
        if dt == np.float32:
            return _lib.F32
        if dt == np.float16:
            return _lib.F16
        if dt.name == "bfloat16":  # ml_dtypes' bfloat16, when the caller uses it
            return _lib.BF16
        raise TypeError(f"{name}: dtype {dt} is not supported (float32, float16 or bfloat16)")
    t = _torch()
    m = {t.float32: _lib.F32, t.float16: _lib.F16, t.bfloat16: _lib.BF16}
    if x.dtype not in m:
        raise TypeError(f"{name}: dtype {x.dtype} is not supported (torch.float32, torch.float16 or torch.bfloat16)")
    return m[x.dtype]


class _View:
    """Address, shape and element strides of one array; writable=True for memory rotary will write."""
    __slots__ = ("ptr", "shape", "strides", "dtype")

    def __init__(self, x, name, writable=False):
        if isinstance(x, np.ndarray):
            self.dtype = _dtype_code(x, name)
            item = x.dtype.itemsize
            if any(s % item for s in x.strides):
                raise ValueError(f"{name}: strides {x.strides} bytes are not whole elements of {item} bytes")
            if writable and not x.flags.writeable:
                # NumPy clears the flag for read-only views, np.frombuffer of bytes, read-only mmaps and memmaps
                raise ValueError(f"{name}: the array is read-only (flags.writeable is False) and would be written")
            self.ptr = x.ctypes.data
            self.shape = x.shape
            self.strides = tuple(s // item for s in x.strides)
        elif is_torch(x):
            if x.device.type != "cpu":
                raise ValueError(f"{name}: tensor is on {x.device}; rotary runs on the CPU (move it with .cpu())")
            if x.layout != _torch().strided:
                raise TypeError(f"{name}: {x.layout} tensors are not supported (dense strided tensors only)")
            self.dtype = _dtype_code(x, name)
            if x.is_neg():
                raise ValueError(f"{name}: a lazily negated view (its memory holds -x); call .resolve_neg() first")
            if writable and x.is_inference() and not _torch().is_inference_mode_enabled():
                raise ValueError(f"{name}: an inference tensor is read-only outside torch.inference_mode() and "
                                 "would be written; clone it first")
            self.ptr = x.data_ptr()
            self.shape = tuple(x.shape)
            self.strides = tuple(x.stride())
        else:
            raise TypeError(f"{name}: expected a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")


def _geometry(v, layout, name, head_dim):
    """(batch, seq_len, heads, stride_batch, stride_seq, stride_head) of a view in a layout."""
    nd = 3 if layout == "thd" else 4
    if len(v.shape) != nd:
        raise ValueError(f"{name}: layout {layout!r} needs a {nd}-D tensor, got shape {v.shape}")
    if v.shape[-1] != head_dim:
        raise ValueError(f"{name}: last dimension is {v.shape[-1]}, the rope's head_dim is {head_dim}")
    if v.strides[-1] != 1 and 0 not in v.shape:
        raise ValueError(f"{name}: the last dimension must be contiguous (stride 1), got stride {v.strides[-1]}; "
                         "rotary never copies: pass a tensor whose head_dim elements are adjacent "
                         "(x.contiguous() / np.ascontiguousarray(x))")
    s = v.shape
    st = v.strides
    if layout == "bshd":
        return s[0], s[1], s[2], st[0], st[1], st[2]
    if layout == "bhsd":
        return s[0], s[2], s[1], st[0], st[2], st[1]
    return 1, s[0], s[1], 0, st[0], st[1]


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def _fill_one(t, x, x_out, name, layout, head_dim):
    """One rotary_tensor from an input and its output (x_out is x: in place); the output must be writable."""
    vx = _View(x, name, writable=x_out is x)
    gx = _geometry(vx, layout, name, head_dim)
    vo, go = vx, gx
    if x_out is not x:
        vo = _View(x_out, name + "_out", writable=True)
        go = _geometry(vo, layout, name + "_out", head_dim)
    t.in_, t.out, t.dtype, t.n_heads = vx.ptr, vo.ptr, vx.dtype, gx[2]
    t.stride_batch, t.stride_seq, t.stride_head = gx[3:]
    t.out_stride_batch, t.out_stride_seq, t.out_stride_head = go[3:]
    return gx


def _fill_qk(d, q, q_out, k, k_out, layout, head_dim):
    """d.batch, d.seq_len, d.q and d.k from arrays or tensors (k None: q only). Checks everything it reads and
    that every output can be written (read-only arrays, inference tensors) before any C call."""
    gq = _fill_one(d.q, q, q_out, "q", layout, head_dim)
    d.batch, d.seq_len = gq[0], gq[1]
    if k is not None:
        gk = _geometry(_View(k, "k"), layout, "k", head_dim)
        if gk[:2] != gq[:2]:
            what = "tokens" if layout == "thd" else "(batch, seq_len)"
            raise ValueError(f"k: {what} {gk[1] if layout == 'thd' else gk[:2]} differ from q's "
                             f"{gq[1] if layout == 'thd' else gq[:2]}")
        _fill_one(d.k, k, k_out, "k", layout, head_dim)


def _ids_array(ids, batch, seq_len, layout):
    """int32/int64 ids as a C-contiguous NumPy array of batch * seq_len values (a small copy only when needed)."""
    a = np.asarray(ids)
    if a.dtype not in (np.int32, np.int64):
        raise TypeError(f"positions: ids must be int32 or int64, got {a.dtype}")
    want = (seq_len,) if layout == "thd" else (batch, seq_len)
    if a.shape != want:
        try:
            a = np.broadcast_to(a, want)
        except ValueError:
            raise ValueError(f"positions: ids of shape {a.shape} do not match {want} (batch, seq_len) "
                             f"of layout {layout!r}") from None
    return np.require(a, requirements="C")  # copies only a broadcast or strided array (rotary_apply reads any address)


def _offset(positions, kind):
    """The int64 offset that None (0) or an int stands for; None when positions is an id array (kind names it)."""
    if positions is None:
        return 0
    if isinstance(positions, (bool, np.bool_)):
        raise TypeError(f"positions: expected None, an int offset or an int32/int64 {kind} of ids, got a bool")
    if isinstance(positions, (int, np.integer)):
        return _lib.c_int_arg(positions, "positions: offset", _lib.INT64_MIN, _lib.INT64_MAX)
    return None


def _check_torch_ids(positions):
    """A torch id tensor must be int32 or int64 and on the CPU."""
    t = _torch()
    if positions.dtype not in (t.int32, t.int64):
        raise TypeError(f"positions: ids must be int32 or int64, got {positions.dtype}")
    if positions.device.type != "cpu":
        raise ValueError(f"positions: ids are on {positions.device}; rotary runs on the CPU")


def _fill_positions(p, positions, batch, seq_len, layout, keep, n_streams=None):
    """Fills a rotary_positions from None, an int offset or an int id array (one more leading axis: stream ids,
    as many as n_streams, the rope's, when given); keep holds arrays alive."""
    off = _offset(positions, "array")
    if off is not None:
        p.mode = _lib.POS_OFFSET
        p.offset = off
        return
    if is_torch(positions):
        _check_torch_ids(positions)
        positions = positions.numpy()
    elif not isinstance(positions, (np.ndarray, list, tuple, range)):
        raise TypeError(f"positions: expected None, an int offset or an int32/int64 array of ids, "
                        f"got {type(positions).__name__}")
    a = np.asarray(positions)
    if _streams.is_stream_ids(a.ndim, layout):
        if a.dtype not in (np.int32, np.int64):
            raise TypeError(f"positions: stream ids must be int32 or int64, got {a.dtype}")
        p.mode, a, p.n_streams, p.stream_stride = _streams.numpy_ids(a, batch, seq_len, layout, n_streams)
    else:
        a = _ids_array(a, batch, seq_len, layout)
        p.mode = _lib.POS_IDS_I64 if a.dtype == np.int64 else _lib.POS_IDS_I32
    keep.append(a)
    p.ids = a.ctypes.data
