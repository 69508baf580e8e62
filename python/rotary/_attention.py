"""_attention.py: decode attention (rotary_attention) and one decode step (rotary_decode_step) over NumPy arrays and
torch CPU tensors: rotary_attention_desc filled from them (never copied), the checks that need no C call, errors as
exceptions."""
import ctypes
import math

import numpy as np

from . import _core, _kv, _lib
from ._lib import lib

ROPE_MODES = {"none": _lib.ATTN_ROPE_NONE, "q": _lib.ATTN_ROPE_Q, "qk": _lib.ATTN_ROPE_QK}
# doubles at or below 2^-150 round to a float32 0 (librotary's "default"), at or above this to +inf
_F32_ZERO, _F32_INF = 2.0 ** -150, 3.4028235677973366e38
_DTYPE_NAMES = {"float32": _lib.F32, "float16": _lib.F16, "bfloat16": _lib.BF16}


def require():
    if not _lib.HAS_ATTENTION:
        raise RuntimeError("rotary: the loaded librotary has no decode attention (rotary_attention, "
                           "rotary_decode_step); rebuild it")


def rope_mode_code(mode):
    code = ROPE_MODES.get(mode if isinstance(mode, str) else None)
    if code is None:
        raise ValueError(f"rope_mode must be one of {tuple(ROPE_MODES)}: 'none' (q and cached keys used as given), "
                         f"'q' (q rotated by the call), 'qk' (q and the unrotated cached keys rotated), got {mode!r}")
    return code


def dtype_name(dtype):
    """'float32', 'float16' or 'bfloat16' for a name, a NumPy dtype or a torch dtype (None stays None)."""
    if dtype is None:
        return None
    key = str(dtype)
    key = key[6:] if key.startswith("torch.") else key
    key = {"f32": "float32", "f16": "float16", "half": "float16", "bf16": "bfloat16", "float": "float32"}.get(key, key)
    if key not in _DTYPE_NAMES:
        raise TypeError(f"out_dtype: {dtype!r} is not one of float32, float16, bfloat16")
    return key


def precision_code(precision):
    """rotary_attention_precision of "f32" (or None: the default) and "bf16"; ValueError for anything else."""
    codes = {None: _lib.ATTN_PRECISION_F32, "f32": _lib.ATTN_PRECISION_F32, "bf16": _lib.ATTN_PRECISION_BF16}
    if not isinstance(precision, (str, type(None))) or precision not in codes:
        raise ValueError(f"precision: expected \"f32\" or \"bf16\", got {precision!r}")
    return codes[precision]


def scalars(scale, softcap, window):
    """(scale, softcap, window) as librotary takes them: scale None -> 0 (1/sqrt(head_dim)), softcap None or 0 -> 0
    (none), window None or 0 -> 0 (none). A scale or softcap that is not finite and > 0 raises RotaryError
    (ROTARY_ERR_SCALE) here, before the C call, with the value in the message."""
    def check(value, name, zero_ok):
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: expected a float, got {type(value).__name__} ({value!r})")
        v = float(value)
        if v == 0.0 and zero_ok:
            return 0.0
        if not (math.isfinite(v) and _F32_ZERO < v < _F32_INF):  # librotary gets a float: not inf, not 0
            hint = " (None means 1/sqrt(head_dim))" if name == "scale" else " (None or 0 means no soft-capping)"
            raise _core.RotaryError(_lib.ERR_SCALE, f"rotary_attention: {_lib.status_string(_lib.ERR_SCALE)} "
                                    f"({name}={value!r}: must be finite and > 0 as a float32{hint})")
        return v
    w = 0 if window is None else _lib.c_int_arg(window, "window")
    return check(scale, "scale", False), check(softcap, "softcap", True), w


def _rows(x, name, head_dim, writable):
    """(batch, tokens, heads, 3 element strides, address, dtype code) of q or out: [batch, tokens, heads, head_dim],
    or [batch, heads, head_dim] for one token per sequence; the last dimension contiguous."""
    v = _core._View(x, name, writable=writable)
    nd = len(v.shape)
    if nd not in (3, 4):
        raise ValueError(f"{name}: expected [batch, tokens, heads, head_dim] or [batch, heads, head_dim] (one token), "
                         f"got shape {tuple(v.shape)}")
    if v.shape[-1] != head_dim:
        raise ValueError(f"{name}: last dimension is {v.shape[-1]}, the rope's head_dim is {head_dim}")
    if v.strides[-1] != 1 and 0 not in v.shape:
        raise ValueError(f"{name}: the last dimension must be contiguous (stride 1), got stride {v.strides[-1]}")
    s, st = v.shape, v.strides
    if nd == 3:
        return s[0], 1, s[1], st[0], 0, st[1], v.ptr, v.dtype
    return s[0], s[1], s[2], st[0], st[1], st[2], v.ptr, v.dtype


def _lse_check(lse, shape):
    """lse must be a writable C-contiguous float32 array or tensor of `shape` (batch, tokens, heads)."""
    if _core.is_torch(lse):
        t = _core._torch()
        ok = lse.dtype == t.float32 and lse.device.type == "cpu" and lse.is_contiguous() and not lse.is_neg()
        ptr = lse.data_ptr()
    elif isinstance(lse, np.ndarray):
        ok = lse.dtype == np.float32 and lse.flags.c_contiguous and lse.flags.writeable
        ptr = lse.ctypes.data
    else:
        raise TypeError(f"lse: expected a numpy.ndarray or a torch.Tensor, got {type(lse).__name__}")
    if not ok or int(np.prod(tuple(lse.shape))) != int(np.prod(shape)):
        raise ValueError(f"lse: expected a writable contiguous float32 array of {shape} values, got "
                         f"{lse.dtype} of shape {tuple(lse.shape)}")
    return ptr


def _index_ptr(a, name, np_dtype, count, keep):
    """The address of an index array's values as librotary reads them: a torch CPU tensor already of the type,
    contiguous and of `count` values is used in place (the decode-loop case, no copy); anything else goes through
    _kv.index_array (converted, checked, copied when needed)."""
    t = _core._torch()
    if t is not None and type(a) is t.Tensor and a.device.type == "cpu" and a.numel() == count and count \
            and a.dtype == (t.int64 if np_dtype is np.int64 else t.int32) and a.is_contiguous() and not a.is_neg() \
            and a.layout == t.strided:
        keep.append(a)
        return a.data_ptr()
    return _kv.index_array(a, name, np_dtype, count, keep).ctypes.data


def fill_index(d, batch, keep, lengths=None, block_table=None, page_indptr=None, page_indices=None,
               last_page_len=None):
    """d.cache.index and its arrays, d.block_table: page_indptr + page_indices + last_page_len (FlashInfer), or
    block_table + lengths (vLLM: block numbers per sequence, seq_lens), or lengths alone (block b is sequence b)."""
    c = d.cache
    pages = (page_indptr, page_indices, last_page_len)
    if any(x is not None for x in pages):
        if lengths is not None or block_table is not None:
            raise ValueError("give one cache index: lengths= (a cache per sequence), block_table= with lengths= "
                             "(vLLM), or page_indptr=, page_indices=, last_page_len= (FlashInfer); got pages and "
                             f"{'lengths' if lengths is not None else 'block_table'}")
        _kv.fill_index(c, batch, 1, keep, page_indptr=page_indptr, page_indices=page_indices,
                       last_page_len=last_page_len)
        return
    if lengths is None:
        raise ValueError("give one cache index: lengths= (a cache per sequence: block b is sequence b), "
                         "block_table= with lengths= (vLLM's block_tables and seq_lens), or page_indptr=, "
                         "page_indices=, last_page_len= (FlashInfer)" +
                         ("; block_table needs lengths= (vLLM's seq_lens)" if block_table is not None else ""))
    c.lengths = _index_ptr(lengths, "lengths", np.int64, batch, keep)
    if block_table is None:
        c.index = _lib.CACHE_SEQUENCES
        return
    c.index = _lib.CACHE_SLOTS
    shape = tuple(block_table.shape) if hasattr(block_table, "shape") else np.shape(block_table)
    if len(shape) != 2 or shape[0] != batch:
        raise ValueError(f"block_table: expected [batch, max_blocks] = [{batch}, n] block numbers, got shape {shape}")
    if shape[1] == 0:  # never a NULL pointer (librotary reports the short table as CACHE_INDEX)
        bt = np.zeros(1, dtype=np.int32)
        keep.append(bt)
        d.block_table = bt.ctypes.data
    else:
        d.block_table = _index_ptr(block_table, "block_table", np.int32, batch * shape[1], keep)
    d.block_table_stride = shape[1]


def fill(d, r, q, out, lse, k_cache, v_cache, cache_layout, cache_dtype, k_scale, v_scale, rope_mode, scale,
         softcap, window, keep, precision=None, **index):
    """A rotary_attention_desc (initialized) from arrays or tensors; returns (batch, tokens, q_heads)."""
    hd = r.head_dim
    gq = _rows(q, "q", hd, False)
    go = _rows(out, "out", hd, True)
    if go[:3] != gq[:3]:
        raise ValueError(f"out: (batch, tokens, heads) {go[:3]} differ from q's {gq[:3]}")
    batch, tokens, heads = gq[:3]
    d.batch, d.tokens, d.q_heads = batch, tokens, heads
    d.q, d.q_dtype = gq[6], gq[7]
    d.q_stride_batch, d.q_stride_token, d.q_stride_head = gq[3:6]
    d.out, d.out_dtype = go[6], go[7]
    d.out_stride_batch, d.out_stride_token, d.out_stride_head = go[3:6]
    if tokens == 1 and batch:  # 3-D (or one-token) rows: librotary reads no token stride; keep it non-zero
        d.q_stride_token = d.q_stride_token or heads * hd
        d.out_stride_token = d.out_stride_token or heads * hd
    if lse is not None:
        d.lse = _lse_check(lse, (batch, tokens, heads))
    d.kv_heads = _kv.fill_cache(d.cache, k_cache, v_cache, cache_layout, cache_dtype, hd, k_scale, v_scale)
    if d.kv_heads == 0 or heads % d.kv_heads:
        raise ValueError(f"q: {heads} heads is not a multiple of the cache's {d.kv_heads} kv heads (GQA groups)")
    d.rope_mode = rope_mode_code(rope_mode)
    d.precision = precision_code(precision)
    d.scale, d.softcap, d.window = scalars(scale, softcap, window)
    if tokens > _lib.ATTENTION_MAX_TOKENS:
        raise ValueError(f"q: {tokens} query tokens per sequence, at most {_lib.ATTENTION_MAX_TOKENS} "
                         "(ROTARY_ATTENTION_MAX_TOKENS; a longer prefill is not a decode step)")
    fill_index(d, batch, keep, **index)
    return batch, tokens, heads


def detail(st, d, r):
    """What to add to a rotary_attention error message."""
    c = d.cache
    if st == _lib.ERR_CACHE_INDEX:
        where = {_lib.CACHE_SEQUENCES: "lengths (block b is sequence b: 1 .. block_size rows, at least the query "
                                       "tokens)",
                 _lib.CACHE_SLOTS: "lengths / block_table (vLLM: seq_lens at least the query tokens, block numbers "
                                   "below num_blocks, block_table wide enough)",
                 _lib.CACHE_PAGES: "page_indptr/page_indices/last_page_len (FlashInfer)"}.get(c.index, "index")
        return (f"{where}; cache of {c.num_blocks} blocks of {c.block_size} rows, batch {d.batch}, {d.tokens} query "
                f"token(s) per sequence")
    if st == _lib.ERR_SCALE:
        return f"k_scale={c.k_scale!r}, v_scale={c.v_scale!r}, scale={d.scale!r}, softcap={d.softcap!r}"
    if st == _lib.ERR_POSITION:
        table = f"table of {r.max_positions} positions" if r.max_positions else "table-free rope"
        return f"rope_mode {d.rope_mode}: a sequence's rows reach past the rope's {table}"
    if st in (_lib.ERR_OVERLAP, _lib.ERR_STRIDE):
        return "out and lse must not overlap q, the caches, the index arrays or each other"
    return None


def attention(r, q, out, lse, k_cache, v_cache, cache_layout="NHD", cache_dtype="auto", k_scale=1.0, v_scale=1.0,
              rope_mode="none", scale=None, softcap=None, window=None, precision=None, **index):
    """One rotary_attention writing out (and lse when not None), both allocated by the caller."""
    require()
    d = _lib.AttentionDesc()
    lib.rotary_attention_desc_init(ctypes.byref(d))
    keep = []
    batch, tokens, heads = fill(d, r, q, out, lse, k_cache, v_cache, cache_layout, cache_dtype, k_scale, v_scale,
                                rope_mode, scale, softcap, window, keep, precision, **index)
    if batch == 0 or heads == 0:
        return  # nothing to attend (librotary refuses zero counts)
    st = lib.rotary_attention(_core._context_of(r), r._handle, ctypes.byref(d))
    if st != _lib.OK:
        _core._raise(st, "rotary_attention", detail(st, d, r))


def _fill_write(w, r, q, q_out, k, v, k_cache, v_cache, cache_layout, cache_dtype, k_scale, v_scale, positions,
                offsets, keep, **index):
    """A rotary_kv_write_desc (initialized) for the step's write: q (bshd) rotated into q_out (may be q), k and v
    [batch, seq, kv_heads, head_dim] written into the cache."""
    hd = r.head_dim
    gk = _kv._fill_input(w.k, k, "k", "bshd", hd)
    gv = _kv._fill_input(w.v, v, "v", "bshd", hd)
    if gv[:3] != gk[:3]:
        raise ValueError(f"v: (batch, seq_len, heads) {gv[:3]} differ from k's {gk[:3]}")
    w.batch, w.seq_len = gk[0], gk[1]
    gq = _core._fill_one(w.q, q, q_out, "q", "bshd", hd)
    if gq[:2] != gk[:2]:
        raise ValueError(f"q: (batch, seq_len) {gq[:2]} differ from k's {gk[:2]}")
    kv_heads = _kv.fill_cache(w.cache, k_cache, v_cache, cache_layout, cache_dtype, hd, k_scale, v_scale)
    if kv_heads != gk[2]:
        raise ValueError(f"k: {gk[2]} heads, the cache holds {kv_heads} kv heads")
    _kv.fill_positions(w.positions, positions, w.batch, w.seq_len, "bshd", keep, offsets, None, r.rotary_dim // 2,
                       r.n_streams)
    _kv.fill_index(w.cache, w.batch, w.seq_len, keep, **index)


def _as_numpy_ints(x, name):
    if x is None:
        return None
    if _core.is_torch(x):
        if x.device.type != "cpu":
            raise ValueError(f"{name}: tensor is on {x.device}; rotary runs on the CPU")
        x = x.detach().resolve_neg().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got {a.dtype}")
    return a.astype(np.int64).reshape(-1)


def step_lengths(batch, seq, block_size, lengths=None, seq_lens=None, page_indptr=None, last_page_len=None):
    """The rows each sequence holds after the step's write, as an int64 array (for the attention's lengths and the
    default positions L_b - seq + s)."""
    if lengths is not None:
        return _as_numpy_ints(lengths, "lengths") + seq
    if seq_lens is not None:
        return _as_numpy_ints(seq_lens, "seq_lens")
    indptr = _as_numpy_ints(page_indptr, "page_indptr")
    last = _as_numpy_ints(last_page_len, "last_page_len")
    if indptr is None or last is None or indptr.size != batch + 1 or last.size != batch:
        return None  # librotary reports the malformed table
    return (np.diff(indptr) - 1) * block_size + last


def decode_step_index(lengths, slot_mapping, block_table, seq_lens, page_indptr, page_indices, last_page_len):
    """(the write's index, the attention's index) of one decode step from decode_step's keywords."""
    pages = dict(page_indptr=page_indptr, page_indices=page_indices, last_page_len=last_page_len)
    vllm = (slot_mapping, block_table, seq_lens)
    kinds = [n for n, on in (("lengths", lengths is not None), ("slot_mapping/block_table/seq_lens",
                                                                  any(x is not None for x in vllm)),
                             ("page_indptr/page_indices/last_page_len",
                              any(x is not None for x in pages.values()))) if on]
    if len(kinds) != 1:
        raise ValueError("decode_step: give one cache index: lengths= (rows each sequence holds BEFORE the step; "
                         "block b is sequence b), slot_mapping= + block_table= + seq_lens= (vLLM; seq_lens after "
                         "the step), or page_indptr=, page_indices=, last_page_len= (FlashInfer, after the step); "
                         f"got {kinds or 'none'}")
    if lengths is not None:
        return dict(lengths=lengths), None  # the attention's lengths: lengths + seq (made by the caller)
    if any(x is not None for x in vllm):
        if any(x is None for x in vllm):
            raise ValueError("decode_step: vLLM's index needs slot_mapping= (where the new tokens go), block_table= "
                             "and seq_lens= (the lengths after the step)")
        return dict(slot_mapping=slot_mapping), dict(block_table=block_table, lengths=seq_lens)
    return pages, pages


def decode_step(r, q, k, v, q_out, out, lse, k_cache, v_cache, cache_layout, cache_dtype, k_scale, v_scale,
                positions, scale, softcap, window, lengths=None, slot_mapping=None, block_table=None, seq_lens=None,
                page_indptr=None, page_indices=None, last_page_len=None):
    """One rotary_decode_step: q rotated into q_out (q: in place), k and v written into the cache, then attention of
    the rotated q over the cache into out (and lse). positions None: each token at its row, L_b - seq + s."""
    require()
    write_index, attn_index = decode_step_index(lengths, slot_mapping, block_table, seq_lens, page_indptr,
                                                page_indices, last_page_len)
    keep = []
    w = _lib.KVWriteDesc()
    lib.rotary_kv_write_desc_init(ctypes.byref(w))
    shape = tuple(k.shape)
    if len(shape) != 4:
        raise ValueError(f"k: expected [batch, seq, kv_heads, head_dim], got shape {shape}")
    batch, seq = shape[0], shape[1]
    if cache_layout not in _kv.CACHE_LAYOUTS:
        raise ValueError(f"cache layout must be 'NHD' or 'HND', got {cache_layout!r}")
    block_size = _kv.cache_meta(k_cache, "k_cache", _kv.CACHE_LAYOUTS[cache_layout])[1]
    after = step_lengths(batch, seq, block_size, lengths, seq_lens, page_indptr, last_page_len)
    offsets = None
    if positions is None:
        if after is None:
            raise ValueError("decode_step: malformed page table (page_indptr: batch + 1 values, last_page_len: batch "
                             "values)")
        if after.size == batch:
            offsets = np.maximum(after - seq, 0)  # a length below seq is reported by librotary (CACHE_INDEX)
    _fill_write(w, r, q, q_out, k, v, k_cache, v_cache, cache_layout, cache_dtype, k_scale, v_scale, positions,
                offsets, keep, **write_index)
    d = _lib.AttentionDesc()
    lib.rotary_attention_desc_init(ctypes.byref(d))
    if attn_index is None:
        attn_index = dict(lengths=after)
    fill(d, r, q_out, out, lse, k_cache, v_cache, cache_layout, cache_dtype, k_scale, v_scale, "none", scale, softcap,
         window, keep, **attn_index)
    if batch == 0 or seq == 0 or d.q_heads == 0:
        return
    st = lib.rotary_decode_step(_core._context_of(r), r._handle, ctypes.byref(w), ctypes.byref(d))
    if st != _lib.OK:
        _core._raise(st, "rotary_decode_step", detail(st, d, r) or _kv._detail(st, w, r))
