"""_kv.py: the KV-cache write (rotary_kv_write) and re-rotation (rotary_kv_rerotate) over NumPy arrays and torch CPU
tensors: cache descriptions (KVCache), descriptor filling, checks that need no C call, errors as exceptions."""
import ctypes

import numpy as np

from . import _core, _lib
from ._lib import lib

CACHE_LAYOUTS = {"NHD": _lib.CACHE_NHD, "HND": _lib.CACHE_HND}
# cache dtype names: ours, vLLM's kv_cache_dtype ("auto" takes the array's own dtype; "fp8" is e4m3 there)
_DTYPE_NAMES = {"auto": None, "float32": _lib.F32, "f32": _lib.F32, "float16": _lib.F16, "f16": _lib.F16,
                "half": _lib.F16, "bfloat16": _lib.BF16, "bf16": _lib.BF16, "fp8": _lib.FP8_E4M3,
                "fp8_e4m3": _lib.FP8_E4M3, "fp8_e4m3fn": _lib.FP8_E4M3}
DTYPE_CODE_NAMES = {_lib.F32: "float32", _lib.F16: "float16", _lib.BF16: "bfloat16", _lib.FP8_E4M3: "fp8_e4m3"}
_INDEX_ARGS = ("lengths", "slot_mapping", "page_indptr", "page_indices", "last_page_len")


def _require_kv():
    if not _lib.HAS_KV:
        raise RuntimeError("rotary: the loaded librotary has no KV-cache functions (rotary_kv_write); rebuild it")


def dtype_code_of_name(dtype):
    """The rotary_dtype for a cache dtype name; None for "auto" (the array's own dtype)."""
    if dtype is None:
        return None
    key = str(dtype).lower()
    if key.startswith("torch."):
        key = key[6:]
    if key not in _DTYPE_NAMES:
        hint = " (fp8 e5m2 caches are not supported)" if "e5m2" in key else ""
        raise ValueError(f"cache dtype {dtype!r} is not one of {sorted(_DTYPE_NAMES)}{hint}")
    return _DTYPE_NAMES[key]


def _array_dtype_code(x):
    """(rotary_dtype or None for raw bytes (uint8), element size) of a cache array or tensor."""
    if isinstance(x, np.ndarray):
        name = x.dtype.name
    else:
        name = str(x.dtype)[6:]  # torch.float32 -> float32
    code = {"float32": _lib.F32, "float16": _lib.F16, "bfloat16": _lib.BF16, "float8_e4m3fn": _lib.FP8_E4M3,
            "uint8": None}.get(name, -1)
    return code, name


def cache_dtype(x, name, dtype):
    """The rotary_dtype of a cache array given the dtype asked for (None/"auto": the array's own). uint8 arrays
    hold fp8 bytes (NumPy has no fp8; vLLM stores fp8 caches as torch.uint8) and need dtype="fp8_e4m3"."""
    want = dtype_code_of_name(dtype)
    code, dn = _array_dtype_code(x)
    if code == -1:
        raise TypeError(f"{name}: dtype {dn} cannot hold a KV cache (float32, float16, bfloat16, float8_e4m3fn, "
                        "or uint8 with dtype='fp8_e4m3')")
    if code is None:
        if want != _lib.FP8_E4M3:
            raise TypeError(f"{name}: a uint8 cache holds fp8 e4m3 bytes: pass dtype='fp8_e4m3' "
                            "(kv_cache_dtype='fp8' for the vLLM helper)")
        return want
    if want is not None and want != code:
        raise TypeError(f"{name}: dtype {dn} does not match the cache dtype {dtype!r} asked for")
    return code


def _array_meta(x, name, writable, on_device=False):
    """(shape, element strides) of a NumPy array or a torch CPU tensor (no data pointer: fake tensors pass),
    checking that memory written can be written. on_device: CUDA tensors pass too (a KVCache, the CUDA path)."""
    if isinstance(x, np.ndarray):
        item = x.dtype.itemsize
        if any(s % item for s in x.strides):
            raise ValueError(f"{name}: strides {x.strides} bytes are not whole elements of {item} bytes")
        if writable and not x.flags.writeable:
            raise ValueError(f"{name}: the array is read-only (flags.writeable is False) and would be written")
        return x.shape, tuple(s // item for s in x.strides)
    if _core.is_torch(x):
        t = _core._torch()
        if x.device.type not in (("cpu", "meta", "cuda") if on_device else ("cpu", "meta")):
            raise ValueError(f"{name}: tensor is on {x.device}; rotary runs on the CPU (move it with .cpu())")
        if x.layout != t.strided:
            raise TypeError(f"{name}: {x.layout} tensors are not supported (dense strided tensors only)")
        if writable and not t.compiler.is_compiling() and x.is_inference() and not t.is_inference_mode_enabled():
            # (while Dynamo traces, the op's kernel checks it when the graph runs)
            raise ValueError(f"{name}: an inference tensor is read-only outside torch.inference_mode() and would "
                             "be written; clone it first")
        return tuple(x.shape), tuple(x.stride())
    raise TypeError(f"{name}: expected a numpy.ndarray or a torch.Tensor, got {type(x).__name__}")


def cache_meta(x, name, layout, head_dim=None, on_device=False):
    """(num_blocks, block_size, kv_heads, block_stride) of a cache array: 4-D, [num_blocks, block_size, kv_heads,
    head_dim] (NHD) or [num_blocks, kv_heads, block_size, head_dim] (HND), each block dense (C order); blocks any
    whole number of elements apart (a combined [num_blocks, 2, ...] buffer's halves). on_device: CUDA tensors
    pass (only the CUDA path reads them)."""
    shape, st = _array_meta(x, name, True, on_device)
    if len(shape) != 4:
        raise ValueError(f"{name}: a cache is 4-D ([num_blocks, block_size, kv_heads, head_dim] for NHD, "
                         f"[num_blocks, kv_heads, block_size, head_dim] for HND), got shape {tuple(shape)}")
    if head_dim is not None and shape[3] != head_dim:
        raise ValueError(f"{name}: last dimension is {shape[3]}, the rope's head_dim is {head_dim}")
    nb, d1, d2, hd = shape
    dense = (d1 * d2 * hd, d2 * hd, hd, 1)  # a C-order block; dimensions of size 1 may carry any stride
    for i in (1, 2, 3):
        if shape[i] > 1 and st[i] != dense[i]:
            raise ValueError(f"{name}: each block must be dense (C order within [{d1}, {d2}, {hd}]); got strides "
                             f"{tuple(st)} elements")
    block_stride = 0
    if nb > 1:
        if st[0] < dense[0]:
            raise ValueError(f"{name}: blocks {st[0]} elements apart overlap (a block holds {dense[0]})")
        block_stride = st[0]
    if layout == _lib.CACHE_NHD:
        return nb, d1, d2, block_stride
    return nb, d2, d1, block_stride


def cache_geometry(x, name, layout, head_dim=None):
    """(address, num_blocks, block_size, kv_heads, block_stride) of a cache array (see cache_meta)."""
    meta = cache_meta(x, name, layout, head_dim)
    return (x.ctypes.data if isinstance(x, np.ndarray) else x.data_ptr()), *meta


class KVCache:
    """A key cache and a value cache of one layer, written in place by kv_write and re-rotated by kv_rerotate.

    KVCache(k, v=None, layout="NHD", dtype="auto", k_scale=1.0, v_scale=1.0)

    k, v: NumPy arrays or torch CPU tensors, 4-D: [num_blocks, block_size, kv_heads, head_dim] ("NHD": vLLM's flash
    layout, FlashInfer NHD, a per-sequence cache [batch, capacity, kv_heads, head_dim]) or [num_blocks, kv_heads,
    block_size, head_dim] ("HND": FlashInfer HND, [batch, kv_heads, capacity, head_dim]). Each block dense; blocks
    any distance apart, the same for k and v (KVCache.combined takes one [num_blocks, 2, ...] buffer). v may be None
    for a cache only re-rotated (keys only). dtype: "auto" (the arrays' own: float32, float16, bfloat16,
    float8_e4m3fn) or "fp8_e4m3" for uint8 arrays holding fp8 bytes. k_scale, v_scale: fp8 only, finite and > 0:
    stored = value / scale. CUDA tensors (k and v on one device) are taken by kv_write (rotary_cuda_kv_write), not
    by kv_rerotate (no CUDA version).
    """

    def __init__(self, k, v=None, layout="NHD", dtype="auto", k_scale=1.0, v_scale=1.0):
        if layout not in CACHE_LAYOUTS:
            raise ValueError(f"layout must be 'NHD' or 'HND', got {layout!r}")
        self.k, self.v, self.layout = k, v, layout
        self.dtype_code = cache_dtype(k, "k_cache", dtype)
        self.dtype = DTYPE_CODE_NAMES[self.dtype_code]
        self.k_scale, self.v_scale = float(k_scale), float(v_scale)
        g = cache_meta(k, "k_cache", CACHE_LAYOUTS[layout], on_device=True)
        self.num_blocks, self.block_size, self.kv_heads, _ = g
        self.head_dim = tuple(k.shape)[3]
        if v is not None:
            if cache_dtype(v, "v_cache", dtype) != self.dtype_code or tuple(v.shape) != tuple(k.shape):
                raise ValueError(f"v_cache: shape {tuple(v.shape)} and dtype must equal k_cache's "
                                 f"{tuple(k.shape)}")
            if cache_meta(v, "v_cache", CACHE_LAYOUTS[layout], on_device=True)[3] != g[3]:
                raise ValueError("v_cache: its blocks must be as far apart as k_cache's (one block_stride)")

    @classmethod
    def combined(cls, kv, layout="NHD", dtype="auto", k_scale=1.0, v_scale=1.0):
        """One [num_blocks, 2, ...] buffer: keys in [:, 0], values in [:, 1] (each NHD or HND)."""
        if len(tuple(kv.shape)) != 5 or kv.shape[1] != 2:
            raise ValueError(f"kv: a combined cache is [num_blocks, 2, ...] (5-D), got shape {tuple(kv.shape)}")
        return cls(kv[:, 0], kv[:, 1], layout, dtype, k_scale, v_scale)

    @property
    def slots(self):
        """num_blocks * block_size: the slots a slot number may name."""
        return self.num_blocks * self.block_size

    def __repr__(self):
        return (f"KVCache(num_blocks={self.num_blocks}, block_size={self.block_size}, kv_heads={self.kv_heads}, "
                f"head_dim={self.head_dim}, layout={self.layout!r}, dtype={self.dtype!r})")


def fill_cache(c, k_cache, v_cache, layout, dtype, head_dim, k_scale, v_scale):
    """c (rotary_kv_cache) from the cache arrays; returns kv_heads. v_cache None: keys only."""
    lay = CACHE_LAYOUTS.get(layout)
    if lay is None:
        raise ValueError(f"cache layout must be 'NHD' or 'HND', got {layout!r}")
    code = cache_dtype(k_cache, "k_cache", dtype)
    gk = cache_geometry(k_cache, "k_cache", lay, head_dim)
    c.layout, c.dtype, c.k = lay, code, gk[0]
    c.num_blocks, c.block_size, c.block_stride = gk[1], gk[2], gk[4]
    if v_cache is not None:
        if cache_dtype(v_cache, "v_cache", dtype) != code:
            raise TypeError("v_cache: its dtype differs from k_cache's")
        gv = cache_geometry(v_cache, "v_cache", lay, head_dim)
        if gv[1:] != gk[1:]:
            raise ValueError(f"v_cache: (num_blocks, block_size, kv_heads, block_stride) {gv[1:]} differ from "
                             f"k_cache's {gk[1:]}")
        c.v = gv[0]
    c.k_scale, c.v_scale = float(k_scale), float(v_scale)
    return gk[3]


def index_array(a, name, np_dtype, count, keep):
    """A C-contiguous, aligned int64/int32 copy or view of an index array of `count` values (any shape)."""
    if _core.is_torch(a):
        if a.device.type != "cpu":
            raise ValueError(f"{name}: tensor is on {a.device}; rotary runs on the CPU")
        a = a.detach().resolve_neg().numpy()
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got {arr.dtype}")
    if count is not None and arr.size != count:
        raise ValueError(f"{name}: {arr.size} values, expected {count}")
    if arr.dtype != np_dtype:
        info = np.iinfo(np_dtype)
        if arr.size and (int(arr.min()) < info.min or int(arr.max()) > info.max):
            raise ValueError(f"{name}: a value does not fit in {np.dtype(np_dtype).name}")
        arr = arr.astype(np_dtype)
    arr = np.require(arr.reshape(-1), requirements=("C", "A"))
    keep.append(arr)
    return arr


def check_one_index(lengths, slot_mapping, page_indptr, page_indices, last_page_len):
    """ValueError unless exactly one cache index is given (the CPU and CUDA paths both check it first)."""
    pages = (page_indptr, page_indices, last_page_len)
    given = [n for n, x in (("slot_mapping", slot_mapping), ("lengths", lengths)) if x is not None]
    if any(x is not None for x in pages):
        given.append("page_indptr/page_indices/last_page_len")
    if len(given) != 1:
        raise ValueError("give exactly one cache index: slot_mapping= (vLLM slots), lengths= (one cache row "
                         "range per sequence) or page_indptr=, page_indices=, last_page_len= (FlashInfer pages); "
                         f"got {given or 'none'}")


def fill_index(c, batch, seq_len, keep, lengths=None, slot_mapping=None, page_indptr=None, page_indices=None,
               last_page_len=None):
    """c.index and its arrays from exactly one of: slot_mapping (vLLM), lengths (per-sequence cache), or
    page_indptr + page_indices + last_page_len (FlashInfer)."""
    check_one_index(lengths, slot_mapping, page_indptr, page_indices, last_page_len)
    pages = (page_indptr, page_indices, last_page_len)
    if slot_mapping is not None:
        c.index = _lib.CACHE_SLOTS
        c.slot_mapping = index_array(slot_mapping, "slot_mapping", np.int64, batch * seq_len, keep).ctypes.data
    elif lengths is not None:
        c.index = _lib.CACHE_SEQUENCES
        c.lengths = index_array(lengths, "lengths", np.int64, batch, keep).ctypes.data
    else:
        if any(x is None for x in pages):
            raise ValueError("pages: page_indptr, page_indices and last_page_len are all needed")
        c.index = _lib.CACHE_PAGES
        indptr = index_array(page_indptr, "page_indptr", np.int32, batch + 1, keep)
        c.page_indptr = indptr.ctypes.data
        # librotary reads page_indptr[batch] indices: at least one value is kept so the pointer is never NULL
        idx = index_array(page_indices, "page_indices", np.int32, None, keep)
        if indptr[-1] > idx.size:  # librotary reads page_indptr[batch] of them: never past the array
            raise ValueError(f"page_indices: {idx.size} values, page_indptr[batch] = {indptr[-1]} are used")
        if idx.size == 0:
            idx = np.zeros(1, dtype=np.int32)
            keep.append(idx)
        c.page_indices = idx.ctypes.data
        c.last_page_len = index_array(last_page_len, "last_page_len", np.int32, batch, keep).ctypes.data


def _fill_input(t, x, name, layout, head_dim):
    """A read-only input tensor (k, v): in and out the same (librotary ignores out)."""
    vx = _core._View(x, name)
    g = _core._geometry(vx, layout, name, head_dim)
    t.in_, t.out, t.dtype, t.n_heads = vx.ptr, vx.ptr, vx.dtype, g[2]
    t.stride_batch, t.stride_seq, t.stride_head = g[3:]
    t.out_stride_batch, t.out_stride_seq, t.out_stride_head = g[3:]
    return g


def fill_positions(p, positions, batch, seq_len, layout, keep, offsets=None, cos_sin=None, half=None,
                   n_streams=None):
    """rotary_positions from None / an int offset / ids (as RoPE.apply; stream ids for a rope of n_streams), or
    per-sequence offsets, or caller cos and sin rows ((cos, sin), float32, batch * seq_len rows of half =
    rotary_dim/2 values)."""
    if offsets is not None or cos_sin is not None:
        if positions is not None or (offsets is not None and cos_sin is not None):
            raise ValueError("positions: give one of positions=, offsets= or cos_sin=")
    if offsets is not None:
        p.mode = _lib.POS_OFFSETS
        p.offsets = ctypes.cast(index_array(offsets, "offsets", np.int64, batch, keep).ctypes.data,
                                ctypes.POINTER(ctypes.c_int64))
        return
    if cos_sin is not None:
        rows = []
        for nm, a in zip(("cos", "sin"), cos_sin):
            a = a.detach().numpy() if _core.is_torch(a) else np.asarray(a)
            if a.dtype != np.float32:
                raise TypeError(f"{nm}: expected float32 rows, got {a.dtype}")
            if a.ndim < 1 or a.shape[-1] != half or a.size != batch * seq_len * half:
                raise ValueError(f"{nm}: shape {a.shape}, expected {batch * seq_len} rows of rotary_dim/2 = {half} "
                                 "values")
            a = np.require(a, requirements=("C", "A"))
            keep.append(a)
            rows.append(a)
        if rows[0].shape != rows[1].shape:
            raise ValueError(f"cos_sin: cos {rows[0].shape} and sin {rows[1].shape} differ")
        fp = ctypes.POINTER(ctypes.c_float)
        p.mode = _lib.POS_COS_SIN
        p.cos, p.sin = rows[0].ctypes.data_as(fp), rows[1].ctypes.data_as(fp)
        p.row_stride = rows[0].shape[-1]
        return
    _core._fill_positions(p, positions, batch, seq_len, layout, keep, n_streams)


def write(r, q, k, v, k_cache, v_cache, q_out=None, positions=None, layout="bshd", cache_layout="NHD",
          cache_dtype_name="auto", k_scale=1.0, v_scale=1.0, offsets=None, cos_sin=None, **index):
    """One rotary_kv_write: rotates q (in place, or into q_out; q None: no q), writes rotated k and v into the
    caches at the places the index (slot_mapping, lengths or page arrays) names. Arrays or torch tensors."""
    _require_kv()
    _core._check_layout(layout)
    hd = r.head_dim
    d = _lib.KVWriteDesc()
    lib.rotary_kv_write_desc_init(ctypes.byref(d))
    gk = _fill_input(d.k, k, "k", layout, hd)
    gv = _fill_input(d.v, v, "v", layout, hd)
    d.batch, d.seq_len = gk[0], gk[1]
    if gv[:3] != gk[:3]:
        raise ValueError(f"v: (batch, seq_len, heads) {gv[:3]} differ from k's {gk[:3]}")
    if q is not None:
        if q_out is not None and (tuple(q_out.shape) != tuple(q.shape) or q_out.dtype != q.dtype):
            raise ValueError(f"q_out: must have q's shape {tuple(q.shape)} and dtype {q.dtype}")
        gq = _core._fill_one(d.q, q, q if q_out is None else q_out, "q", layout, hd)
        if gq[:2] != gk[:2]:
            raise ValueError(f"q: (batch, seq_len) {gq[:2]} differ from k's {gk[:2]}")
    elif q_out is not None:
        raise ValueError("q_out: given without q")
    kv_heads = fill_cache(d.cache, k_cache, v_cache, cache_layout, cache_dtype_name, hd, k_scale, v_scale)
    if kv_heads != gk[2]:
        raise ValueError(f"k: {gk[2]} heads, the cache holds {kv_heads} kv heads")
    keep = []
    fill_positions(d.positions, positions, d.batch, d.seq_len, layout, keep, offsets, cos_sin, r.rotary_dim // 2,
                   r.n_streams)
    fill_index(d.cache, d.batch, d.seq_len, keep, **index)
    if d.batch == 0 or d.seq_len == 0:
        return  # no token (librotary refuses zero counts)
    st = lib.rotary_kv_write(_core._context_of(r), r._handle, ctypes.byref(d))
    if st != _lib.OK:
        _core._raise(st, "rotary_kv_write", _detail(st, d, r))


def _detail(st, d, r):
    c = d.cache
    if st == _lib.ERR_CACHE_INDEX:
        what = {_lib.CACHE_SLOTS: "slot_mapping", _lib.CACHE_SEQUENCES: "lengths",
                _lib.CACHE_PAGES: "page_indptr/page_indices/last_page_len"}.get(c.index, "slots")
        return (f"{what} against a cache of {c.num_blocks} blocks of {c.block_size} rows, batch {d.batch}, "
                f"seq_len {d.seq_len}")
    if st == _lib.ERR_SCALE:
        return f"k_scale={c.k_scale!r}, v_scale={c.v_scale!r}"
    if st == _lib.ERR_POSITION:
        table = f"table of {r.max_positions} positions" if r.max_positions else "table-free rope"
        return table
    if st in (_lib.ERR_OVERLAP, _lib.ERR_STRIDE):
        return "a cache must not overlap an input, q's output or the other cache"
    return None


def rerotate(r, k_cache, delta, slots=None, first=0, count=None, cache_layout="NHD", cache_dtype_name="auto",
             k_scale=1.0):
    """One rotary_kv_rerotate: the keys of the slots (an int array, negative ones skipped) or of slots first ..
    first + count - 1 (count None: to the cache's end) turned by delta positions."""
    _require_kv()
    d = _lib.KVRerotateDesc()
    lib.rotary_kv_rerotate_desc_init(ctypes.byref(d))
    d.kv_heads = fill_cache(d.cache, k_cache, None, cache_layout, cache_dtype_name, r.head_dim, k_scale, 1.0)
    d.delta = _lib.c_int_arg(delta, "delta", _lib.INT64_MIN, _lib.INT64_MAX)
    keep = []
    if slots is not None:
        if count is not None or first:
            raise ValueError("slots: give slots= or first=/count=, not both")
        a = index_array(slots, "slots", np.int64, None, keep)
        d.slots, d.n_slots = a.ctypes.data, a.size
    else:
        total = d.cache.num_blocks * d.cache.block_size
        d.first_slot = _lib.c_int_arg(first, "first")
        d.n_slots = total - min(d.first_slot, total) if count is None else _lib.c_int_arg(count, "count")
    if d.n_slots == 0 or d.kv_heads == 0:
        return
    st = lib.rotary_kv_rerotate(_core._context_of(r), r._handle, ctypes.byref(d))
    if st != _lib.OK:
        c = d.cache
        detail = None
        if st == _lib.ERR_CACHE_INDEX:
            detail = f"slots against a cache of {c.num_blocks} blocks of {c.block_size} rows"
        elif st == _lib.ERR_SCALE:
            detail = f"k_scale={c.k_scale!r}"
        elif st == _lib.ERR_POSITION:
            detail = f"delta={d.delta}"
        _core._raise(st, "rotary_kv_rerotate", detail)
