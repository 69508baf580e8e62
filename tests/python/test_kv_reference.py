"""test_kv_reference.py: rotary_kv_write on vLLM-shaped and FlashInfer-shaped inputs against small PyTorch references
written from their documentation (vLLM's reshape_and_cache_flash, FlashInfer's append_paged_kv_cache and
get_batch_indices_positions), through ctypes on the librotary the rotary package loads (and through the package's
rotary.vllm helper).

What the references encode (from the projects' documented semantics, no code taken):
  vLLM   reshape_and_cache_flash(key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype, k_scale, v_scale):
         key/value [num_tokens, num_kv_heads, head_size], caches [num_blocks, block_size, num_kv_heads, head_size];
         token t with slot = slot_mapping[t] >= 0 goes to key_cache[slot // block_size, slot % block_size]; a
         negative slot (padding) writes nothing; "fp8_e4m3" stores value / scale as e4m3 (saturated to +-448).
         rotary_embedding(positions, query, key, head_size, cos_sin_cache, is_neox) rotates q and k in place first.
  FlashInfer append_paged_kv_cache(append_key, append_value, batch_indices, positions, paged_kv_cache, kv_indices,
         kv_indptr, kv_last_page_len, kv_layout): request b owns pages kv_indices[kv_indptr[b]:kv_indptr[b+1]];
         kv_last_page_len is counted after the append, so its length is L = (pages - 1) * page_size + last; the
         appended entries take positions L - n .. L - 1 (get_batch_indices_positions: "the rightmost column
         index of each row"); entry at position p goes to page kv_indices[kv_indptr[b] + p // page_size], row
         p % page_size; NHD pages are [page_size, num_kv_heads, head_dim], HND [num_kv_heads, page_size,
         head_dim]; one 5-D tensor [max_num_pages, 2, ...] holds k at [:, 0] and v at [:, 1].
Placement and skipping are checked exactly (every other cache element keeps its sentinel bits); v is checked bit
for bit (one conversion); rotated q and k against an fp64 rotation within 1 ulp of their dtype (fp8: one code).
"""
import ctypes
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

_HERE = os.path.dirname(os.path.abspath(__file__))
F32, F16, BF16, FP8 = 0, 1, 2, 3
SEQUENCES, SLOTS, PAGES = 0, 1, 2
NHD, HND = 0, 1
POS_OFFSETS, POS_IDS_I64 = 1, 3
DTYPES = {torch.float32: F32, torch.float16: F16, torch.bfloat16: BF16, torch.float8_e4m3fn: FP8}


class Scaling(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("factor", ctypes.c_double), ("original_max_position_embeddings", ctypes.c_size_t),
                ("max_position_embeddings", ctypes.c_size_t), ("attention_factor", ctypes.c_double),
                ("beta_fast", ctypes.c_double), ("beta_slow", ctypes.c_double), ("mscale", ctypes.c_double),
                ("mscale_all_dim", ctypes.c_double), ("truncate", ctypes.c_int), ("low_freq_factor", ctypes.c_double),
                ("high_freq_factor", ctypes.c_double), ("short_factor", ctypes.c_void_p),
                ("long_factor", ctypes.c_void_p)]


class Streams(ctypes.Structure):
    _fields_ = [("layout", ctypes.c_int), ("n_streams", ctypes.c_size_t), ("sections", ctypes.c_size_t * 4),
                ("map", ctypes.c_void_p)]


class Config(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("head_dim", ctypes.c_size_t), ("rotary_dim", ctypes.c_size_t),
                ("pairing", ctypes.c_int), ("base", ctypes.c_double), ("inv_freq", ctypes.c_void_p),
                ("attention_scaling", ctypes.c_double), ("scaling", Scaling), ("seq_len", ctypes.c_size_t),
                ("streams", Streams)]


class Positions(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("offset", ctypes.c_int64), ("offsets", ctypes.c_void_p),
                ("ids", ctypes.c_void_p), ("cos", ctypes.c_void_p), ("sin", ctypes.c_void_p),
                ("row_stride", ctypes.c_size_t), ("n_streams", ctypes.c_size_t), ("stream_stride", ctypes.c_size_t)]


class Tensor(ctypes.Structure):
    _fields_ = [("in_", ctypes.c_void_p), ("out", ctypes.c_void_p), ("dtype", ctypes.c_int), ("n_heads", ctypes.c_size_t),
                ("stride_batch", ctypes.c_ssize_t), ("stride_seq", ctypes.c_ssize_t), ("stride_head", ctypes.c_ssize_t),
                ("out_stride_batch", ctypes.c_ssize_t), ("out_stride_seq", ctypes.c_ssize_t),
                ("out_stride_head", ctypes.c_ssize_t)]


class KvCache(ctypes.Structure):
    _fields_ = [("index", ctypes.c_int), ("layout", ctypes.c_int), ("dtype", ctypes.c_int), ("k", ctypes.c_void_p),
                ("v", ctypes.c_void_p), ("num_blocks", ctypes.c_size_t), ("block_size", ctypes.c_size_t),
                ("block_stride", ctypes.c_size_t), ("lengths", ctypes.c_void_p), ("slot_mapping", ctypes.c_void_p),
                ("page_indptr", ctypes.c_void_p), ("page_indices", ctypes.c_void_p), ("last_page_len", ctypes.c_void_p),
                ("k_scale", ctypes.c_float), ("v_scale", ctypes.c_float)]


class KvWriteDesc(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("batch", ctypes.c_size_t), ("seq_len", ctypes.c_size_t),
                ("positions", Positions), ("q", Tensor), ("k", Tensor), ("v", Tensor), ("cache", KvCache)]


def _library_path():
    """The librotary the rotary package loads (an installed wheel's, or ROTARY_LIBRARY_DIR's), else the build folder
    named by ROTARY_LIBRARY_DIR or python/rotary/ of this source tree."""
    try:
        from rotary import _lib as rotary_lib
        return rotary_lib._lib_path
    except ImportError:
        pass
    for d in [os.environ.get("ROTARY_LIBRARY_DIR"), os.path.join(_HERE, "..", "..", "python", "rotary")]:
        if d and os.path.exists(os.path.join(d, "librotary.so")):
            return os.path.join(d, "librotary.so")
    raise RuntimeError("librotary.so not found: set ROTARY_LIBRARY_DIR to a CMake build's src folder")


def _load():
    lib = ctypes.CDLL(_library_path())
    lib.rotary_rope_create.argtypes = [ctypes.POINTER(Config), ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
    lib.rotary_rope_destroy.argtypes = [ctypes.c_void_p]
    lib.rotary_config_init.argtypes = [ctypes.POINTER(Config), ctypes.c_size_t]
    lib.rotary_rope_inv_freq.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.rotary_kv_write_desc_init.argtypes = [ctypes.POINTER(KvWriteDesc)]
    lib.rotary_kv_write.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(KvWriteDesc)]
    lib.rotary_status_string.restype = ctypes.c_char_p
    # The mirrors above must match the library's structs: each init writes struct_size = sizeof, here into a
    # buffer larger than any of them, so that a stale mirror fails this check instead of overrunning memory.
    for init, mirror in ((lambda b: lib.rotary_config_init(ctypes.cast(b, ctypes.POINTER(Config)), 2), Config),
                         (lambda b: lib.rotary_kv_write_desc_init(ctypes.cast(b, ctypes.POINTER(KvWriteDesc))),
                          KvWriteDesc)):
        buf = ctypes.create_string_buffer(8192)
        init(buf)
        size = ctypes.c_size_t.from_buffer(buf).value
        assert size == ctypes.sizeof(mirror), f"{mirror.__name__}: the library's struct is {size} bytes, " \
            f"this mirror {ctypes.sizeof(mirror)}: update the mirror"
    return lib


LIB = _load()


class Rope:
    def __init__(self, head_dim, neox=True, max_positions=4096):
        cfg = Config()
        LIB.rotary_config_init(ctypes.byref(cfg), head_dim)
        cfg.pairing = 0 if neox else 1
        self.handle = ctypes.c_void_p()
        assert LIB.rotary_rope_create(ctypes.byref(cfg), max_positions, ctypes.byref(self.handle)) == 0
        inv = np.zeros(head_dim // 2, dtype=np.float64)
        assert LIB.rotary_rope_inv_freq(self.handle, inv.ctypes.data) == 0
        self.inv_freq, self.neox, self.head_dim = inv, neox, head_dim

    def __del__(self):
        LIB.rotary_rope_destroy(self.handle)

    def reference(self, x, positions):
        """x [tokens, heads, head_dim] rotated in float64 (vLLM's rotary_embedding: neox halves or GPT-J pairs)."""
        x = x.to(torch.float64)
        ang = torch.as_tensor(positions, dtype=torch.float64)[:, None] * torch.as_tensor(self.inv_freq)[None, :]
        c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        h = self.head_dim // 2
        x0, x1 = (x[..., :h], x[..., h:]) if self.neox else (x[..., 0::2], x[..., 1::2])
        y0, y1 = x0 * c - x1 * s, x0 * s + x1 * c
        return torch.cat([y0, y1], -1) if self.neox else torch.stack([y0, y1], -1).flatten(-2)


def tensor_view(t, data, heads, seq):
    """A rotary_tensor over a [batch * seq, heads, head_dim] (any token stride) torch tensor, read as [batch, seq]."""
    d = Tensor()
    d.in_ = d.out = data.data_ptr() if data is not None else None
    d.dtype = DTYPES[t]
    d.n_heads = heads
    if data is not None:
        st = data.stride()
        d.stride_seq, d.stride_head = st[0], st[1]
        d.stride_batch = st[0] * seq
        d.out_stride_batch, d.out_stride_seq, d.out_stride_head = d.stride_batch, d.stride_seq, d.stride_head
    return d


def kv_write(rope, batch, seq, q, k, v, cache, positions_mode, positions):
    desc = KvWriteDesc()
    LIB.rotary_kv_write_desc_init(ctypes.byref(desc))
    desc.batch, desc.seq_len = batch, seq
    pos = np.ascontiguousarray(positions, dtype=np.int64)
    desc.positions.mode = positions_mode
    if positions_mode == POS_IDS_I64:
        desc.positions.ids = pos.ctypes.data
    else:
        desc.positions.offsets = pos.ctypes.data
    desc.q = tensor_view(q.dtype, q, q.shape[1], seq) if q is not None else Tensor()
    desc.k = tensor_view(k.dtype, k, k.shape[1], seq)
    desc.v = tensor_view(v.dtype, v, v.shape[1], seq)
    desc.cache = cache
    st = LIB.rotary_kv_write(None, rope.handle, ctypes.byref(desc))
    assert st == 0, LIB.rotary_status_string(st).decode()


def to_cache(x, dtype, scale):
    """What a cache holds for fp32 values x: one rounding; fp8: x / scale in fp32, saturated to +-448 (vLLM's
    fp8_e4m3 cache saturates; torch's own cast would give NaN above 448), NaN kept."""
    x = x.to(torch.float32)
    if dtype == torch.float8_e4m3fn:
        q = x / torch.tensor(scale, dtype=torch.float32)
        return torch.where(torch.isnan(q), q, q.clamp(-448.0, 448.0)).to(dtype)
    return x.to(dtype)


def close_in_dtype(got, want64, dtype, scale=1.0):
    """got (cache dtype) within one step of dtype of the fp64 value (fp8: one code of want64 / scale)."""
    g = got.to(torch.float64) * (scale if dtype == torch.float8_e4m3fn else 1.0)
    w = want64.to(torch.float64)
    if dtype == torch.float32:
        tol = 4 * 2.0 ** -24 * w.abs().clamp_min(1e-30) + 1e-35
    elif dtype == torch.float8_e4m3fn:
        a = (w / scale).abs().clamp(2.0 ** -6, 448.0)
        tol = (2.0 ** (torch.floor(torch.log2(a)) - 3)) * scale + 1e-12
    else:
        bits = 10 if dtype == torch.float16 else 7
        a = w.abs().clamp_min(2.0 ** -14 if dtype == torch.float16 else 2.0 ** -126)
        tol = 2.0 ** (torch.floor(torch.log2(a)) - bits)
    return bool(((g - w).abs() <= tol * 1.0001).all())


def sentinel(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randint(0, 255, (int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size(),), generator=g,
                        dtype=torch.uint8)
    return raw.view(dtype).reshape(shape).clone()


def bits(t):
    return t.contiguous().view(torch.uint8)


def check_rows(got_rows, ref_rows, dtype, scale, src_rows):
    """Rotated rows (cache dtype) against fp64 reference rows: one step of dtype plus the fp32 math's share."""
    g = got_rows.to(torch.float64) * (scale if dtype == torch.float8_e4m3fn else 1.0)
    w = ref_rows.to(torch.float64)
    mag = src_rows.to(torch.float64).abs().amax(dim=-1, keepdim=True) * 2
    if dtype == torch.float8_e4m3fn:
        w = w.clamp(-448.0 * scale, 448.0 * scale)
        a = (w / scale).abs().clamp(2.0 ** -6, 448.0)
        step = 2.0 ** (torch.floor(torch.log2(a)) - 3) * scale
    elif dtype == torch.float32:
        step = torch.zeros_like(w)
    else:
        mant, tiny = (10, 2.0 ** -14) if dtype == torch.float16 else (7, 2.0 ** -126)
        step = 2.0 ** (torch.floor(torch.log2(w.abs().clamp_min(tiny))) - mant)
    tol = step + 4 * 2.0 ** -24 * mag + 1e-30
    bad = (g - w).abs() > tol
    assert not bool(bad.any()), f"{int(bad.sum())} values off: got {g[bad][:4].tolist()} want {w[bad][:4].tolist()}"


def make_cache(index, layout, dtype, k, v, num_blocks, block_size, block_stride=0, k_scale=1.0, v_scale=1.0):
    c = KvCache()
    c.index, c.layout, c.dtype = index, layout, DTYPES[dtype]
    c.k, c.v = k, v
    c.num_blocks, c.block_size, c.block_stride = num_blocks, block_size, block_stride
    c.k_scale, c.v_scale = k_scale, v_scale
    return c


@pytest.mark.parametrize("neox", [True, False])
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("cache_dtype", ["same", torch.float32, torch.float8_e4m3fn])
def test_vllm_rotary_embedding_then_reshape_and_cache_flash(neox, in_dtype, cache_dtype):
    cache_dtype = in_dtype if cache_dtype == "same" else cache_dtype
    T, H, KVH, D, bs, nb = 13, 8, 2, 64, 16, 5
    k_scale, v_scale = 0.03, 0.004  # v_scale small enough that some values saturate at 448
    g = torch.Generator().manual_seed(11)
    qkv = (torch.randn(T, (H + 2 * KVH) * D, generator=g) * 2).to(in_dtype)  # one GEMM's output rows
    query, key, value = qkv.split([H * D, KVH * D, KVH * D], dim=-1)
    q_in, k_in, v_in = query.clone(), key.clone(), value.clone()
    positions = torch.randint(0, 4000, (T,), generator=g)
    slot_mapping = torch.randperm(nb * bs, generator=g)[:T]
    slot_mapping[3] = -1  # vLLM's padding tokens
    slot_mapping[9] = -1
    key_cache, value_cache = sentinel((nb, bs, KVH, D), cache_dtype, 1), sentinel((nb, bs, KVH, D), cache_dtype, 2)
    kc0, vc0 = key_cache.clone(), value_cache.clone()
    rope = Rope(D, neox)
    sm = slot_mapping.numpy().astype(np.int64)
    cache = make_cache(SLOTS, NHD, cache_dtype, key_cache.data_ptr(), value_cache.data_ptr(), nb, bs,
                       k_scale=k_scale, v_scale=v_scale)
    cache.slot_mapping = sm.ctypes.data
    kv_write(rope, 1, T, query.view(T, H, D), key.view(T, KVH, D), value.view(T, KVH, D), cache, POS_IDS_I64,
             positions.numpy())
    # reference: rotary_embedding in place on query and key, then reshape_and_cache_flash
    q_ref = rope.reference(q_in.view(T, H, D), positions)
    k_ref = rope.reference(k_in.view(T, KVH, D), positions)
    check_rows(query.view(T, H, D), q_ref, in_dtype, 1.0, q_in.view(T, H, D))
    assert torch.equal(bits(key), bits(k_in)) and torch.equal(bits(value), bits(v_in)), "k or v input changed"
    written = torch.zeros(nb, bs, dtype=torch.bool)
    for t in range(T):
        slot = int(slot_mapping[t])
        if slot < 0:
            continue
        blk, off = divmod(slot, bs)
        written[blk, off] = True
        check_rows(key_cache[blk, off], k_ref[t], cache_dtype, k_scale, k_in.view(T, KVH, D)[t])
        want_v = to_cache(v_in.view(T, KVH, D)[t], cache_dtype, v_scale)
        assert torch.equal(bits(value_cache[blk, off]), bits(want_v)), f"token {t}: v not stored exactly"
    assert torch.equal(bits(key_cache[~written]), bits(kc0[~written])), "a key slot no token maps to changed"
    assert torch.equal(bits(value_cache[~written]), bits(vc0[~written])), "a value slot no token maps to changed"
    if cache_dtype == torch.float8_e4m3fn:  # the scale really saturates some values
        assert bool((value_cache[written].to(torch.float32).abs() == 448.0).any())


def flashinfer_positions(kv_indptr, kv_last_page_len, page_size, n):
    """get_batch_indices_positions for equal append lengths n: the last n positions of each request."""
    batch_indices, positions = [], []
    for b in range(len(kv_last_page_len)):
        length = (kv_indptr[b + 1] - kv_indptr[b] - 1) * page_size + kv_last_page_len[b]
        for i in range(n):
            batch_indices.append(b)
            positions.append(length - n + i)
    return batch_indices, positions


@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("combined", [False, True])
@pytest.mark.parametrize("append", [1, 3])
@pytest.mark.parametrize("dtype,cache_dtype", [(torch.bfloat16, torch.bfloat16), (torch.float32, torch.float16),
                                               (torch.float16, torch.float8_e4m3fn)])
def test_flashinfer_append_paged_kv_cache(layout, combined, append, dtype, cache_dtype):
    B, H, KVH, D, ps, P = 3, 8, 4, 32, 4, 12
    g = torch.Generator().manual_seed(5 + append)
    before = [5, 0, 9]
    after = [x + append for x in before]
    pages = [(x + ps - 1) // ps for x in after]
    kv_indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
    kv_indices = torch.randperm(P, generator=g)[: kv_indptr[-1]].numpy().astype(np.int32)
    kv_last_page_len = np.array([x - (n - 1) * ps for x, n in zip(after, pages)], dtype=np.int32)
    n_tok = B * append
    q = (torch.randn(n_tok, H, D, generator=g) * 3).to(dtype)
    append_key = (torch.randn(n_tok, KVH, D, generator=g) * 3).to(dtype)
    append_value = (torch.randn(n_tok, KVH, D, generator=g) * 3).to(dtype)
    q_in, k_in = q.clone(), append_key.clone()
    page_shape = (ps, KVH, D) if layout == "NHD" else (KVH, ps, D)
    if combined:
        paged = sentinel((P, 2) + page_shape, cache_dtype, 3)
        k_cache, v_cache = paged[:, 0], paged[:, 1]
        stride = 2 * ps * KVH * D
    else:
        k_cache, v_cache = sentinel((P,) + page_shape, cache_dtype, 4), sentinel((P,) + page_shape, cache_dtype, 5)
        stride = 0
    kc0, vc0 = k_cache.clone(), v_cache.clone()
    k_scale = v_scale = 0.02
    cache = make_cache(PAGES, NHD if layout == "NHD" else HND, cache_dtype, k_cache.data_ptr(), v_cache.data_ptr(), P,
                       ps, stride, k_scale, v_scale)
    cache.page_indptr, cache.page_indices = kv_indptr.ctypes.data, kv_indices.ctypes.data
    cache.last_page_len = kv_last_page_len.ctypes.data
    batch_indices, positions = flashinfer_positions(kv_indptr, kv_last_page_len, ps, append)
    offsets = [after[b] - append for b in range(B)]  # RoPE positions of each request's first new token
    kv_write(Rope(D), B, append, q, append_key, append_value, cache, POS_OFFSETS, offsets)
    rope = Rope(D)
    check_rows(q, rope.reference(q_in, positions), dtype, 1.0, q_in)
    k_ref = rope.reference(k_in, positions)
    written = torch.zeros(P, ps, dtype=torch.bool)
    for j in range(n_tok):
        b, p = batch_indices[j], positions[j]
        page, row = int(kv_indices[kv_indptr[b] + p // ps]), p % ps
        written[page, row] = True
        krow = k_cache[page, row] if layout == "NHD" else k_cache[page, :, row]
        vrow = v_cache[page, row] if layout == "NHD" else v_cache[page, :, row]
        check_rows(krow, k_ref[j], cache_dtype, k_scale, k_in[j])
        assert torch.equal(bits(vrow), bits(to_cache(append_value[j], cache_dtype, v_scale))), f"entry {j}: v"
    for c, c0 in ((k_cache, kc0), (v_cache, vc0)):
        if layout == "HND":
            c, c0 = c.transpose(1, 2), c0.transpose(1, 2)
        assert torch.equal(bits(c[~written]), bits(c0[~written])), "a cache row no entry maps to changed"


@pytest.mark.parametrize("layout", [NHD, HND])
def test_contiguous_per_sequence_cache(layout):
    """A static cache [batch, capacity, kv_heads, D] (NHD) or [batch, kv_heads, capacity, D] (HND, Hugging Face's
    StaticCache): token (b, s) lands at row lengths[b] + s of sequence b."""
    B, S, KVH, D, cap = 2, 3, 2, 16, 10
    g = torch.Generator().manual_seed(9)
    k = torch.randn(B * S, KVH, D, generator=g)
    v = torch.randn(B * S, KVH, D, generator=g)
    shape = (B, cap, KVH, D) if layout == NHD else (B, KVH, cap, D)
    kc, vc = sentinel(shape, torch.float32, 6), sentinel(shape, torch.float32, 7)
    kc0, vc0 = kc.clone(), vc.clone()
    lengths = np.array([4, 7], dtype=np.int64)
    cache = make_cache(SEQUENCES, layout, torch.float32, kc.data_ptr(), vc.data_ptr(), B, cap)
    cache.lengths = lengths.ctypes.data
    rope = Rope(D)
    pos = [int(lengths[b]) + s for b in range(B) for s in range(S)]
    kv_write(rope, B, S, None, k, v, cache, POS_OFFSETS, lengths)
    k_ref = rope.reference(k, pos)
    if layout == HND:
        kc, vc, kc0, vc0 = (t.transpose(1, 2) for t in (kc, vc, kc0, vc0))
    written = torch.zeros(B, cap, dtype=torch.bool)
    for b in range(B):
        for s in range(S):
            row = int(lengths[b]) + s
            written[b, row] = True
            check_rows(kc[b, row], k_ref[b * S + s], torch.float32, 1.0, k[b * S + s])
            assert torch.equal(bits(vc[b, row]), bits(v[b * S + s]))
    assert torch.equal(bits(kc[~written]), bits(kc0[~written])) and torch.equal(bits(vc[~written]), bits(vc0[~written]))


@pytest.mark.parametrize("neox", [True, False])
@pytest.mark.parametrize("in_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kv_cache_dtype", ["auto", "fp8_e4m3"])
def test_vllm_helper_of_the_python_package(neox, in_dtype, kv_cache_dtype):
    """rotary.vllm.rotary_embedding_and_cache (the python package's vLLM-shaped helper) against the same reference:
    vLLM's cos_sin_cache [max_position, rotary_dim] (cos half, then sin half), query rotated in place, key read
    only (the helper's documented difference), a slot_mapping shorter than num_tokens (vLLM's padded batch)."""
    rotary_vllm = pytest.importorskip("rotary.vllm")  # the package (installed, or from source: PYTHONPATH=python)

    T, H, KVH, D, bs, nb, max_pos = 11, 4, 2, 32, 16, 3, 512
    g = torch.Generator().manual_seed(21)
    inv = 1.0 / (10000.0 ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    ang = torch.arange(max_pos, dtype=torch.float64)[:, None] * inv[None, :]
    cos_sin_cache = torch.cat([torch.cos(ang), torch.sin(ang)], -1).to(torch.float32)  # as vLLM builds it
    query = (torch.randn(T, H * D, generator=g) * 2).to(in_dtype)
    key = (torch.randn(T, KVH * D, generator=g) * 2).to(in_dtype)
    value = (torch.randn(T, KVH * D, generator=g) * 2).to(in_dtype)
    q_in, k_in = query.clone(), key.clone()
    positions = torch.randint(0, max_pos, (T,), generator=g)
    slot_mapping = torch.randperm(nb * bs, generator=g)[: T - 2]  # the last 2 tokens are padding
    slot_mapping[1] = -1
    cache_dtype = in_dtype if kv_cache_dtype == "auto" else torch.float8_e4m3fn
    key_cache, value_cache = sentinel((nb, bs, KVH, D), cache_dtype, 8), sentinel((nb, bs, KVH, D), cache_dtype, 9)
    kc0, vc0 = key_cache.clone(), value_cache.clone()
    k_scale, v_scale = 0.05, 0.01
    rotary_vllm.rotary_embedding_and_cache(positions, query, key, value, key_cache, value_cache, slot_mapping, D,
                                          cos_sin_cache, neox, kv_cache_dtype, k_scale, v_scale)

    def rotate(x):  # vLLM's rotary_embedding with the cache's fp32 rows, in fp64
        x = x.view(T, -1, D).to(torch.float64)
        c, s = (cos_sin_cache[positions].to(torch.float64)[:, None, : D // 2],
                cos_sin_cache[positions].to(torch.float64)[:, None, D // 2:])
        x0, x1 = (x[..., : D // 2], x[..., D // 2:]) if neox else (x[..., 0::2], x[..., 1::2])
        y0, y1 = x0 * c - x1 * s, x0 * s + x1 * c
        return torch.cat([y0, y1], -1) if neox else torch.stack([y0, y1], -1).flatten(-2)

    check_rows(query.view(T, H, D), rotate(q_in), in_dtype, 1.0, q_in.view(T, H, D))
    assert torch.equal(bits(key), bits(k_in)), "key was changed (documented: read only)"
    k_ref = rotate(k_in)
    written = torch.zeros(nb, bs, dtype=torch.bool)
    for t in range(T - 2):
        slot = int(slot_mapping[t])
        if slot < 0:
            continue
        blk, off = divmod(slot, bs)
        written[blk, off] = True
        check_rows(key_cache[blk, off], k_ref[t], cache_dtype, k_scale, k_in.view(T, KVH, D)[t])
        assert torch.equal(bits(value_cache[blk, off]), bits(to_cache(value.view(T, KVH, D)[t], cache_dtype, v_scale)))
    assert torch.equal(bits(key_cache[~written]), bits(kc0[~written]))
    assert torch.equal(bits(value_cache[~written]), bits(vc0[~written]))
