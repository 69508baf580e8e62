"""test_attention.py: rotary.attention and rotary.decode_step (rotary_attention, rotary_decode_step) against
torch.nn.functional.scaled_dot_product_attention in float64, and against an explicit float64 softmax where SDPA has
no equivalent (logit soft-capping, the log-sum-exp).

The reference reads the cache's own values decoded to float64 (fp8: e4m3 value * scale), so the cache dtype's
rounding is not an error here; rope modes "q"/"qk" rotate q (and keys) with conftest.ref_rope at the rows' positions.
Masks: the query tokens are each sequence's LAST tokens, so the causal mask is aligned to the BOTTOM RIGHT (token t
of T at row i = L - T + t sees rows p <= i); SDPA's is_causal=True is aligned to the top left (query t sees keys
p <= t), which is only the same when T == L, so the reference passes an explicit boolean attn_mask.

Tolerance per query row r (mag_r = max over attended p of scale * sum_d |q_d k_pd|, the rotated q and keys in
the rope modes; vmax the largest |v|; u = 2^-24; D = head_dim):
  |out - ref| <= 2u * vmax * (1 + sqrt(D) * mag_r) + u_out * |ref|
  |lse - ref| <= 2u * (1 + |ref| + sqrt(D) * mag_r)
u_out: 0 (float32), 2^-11 (float16), 2^-8 (bfloat16). This is a typical-error bound, not a worst case: the errors
measured on the AVX2 and scalar kernels stay below 1/20 of it (out) and 1/7 (lse); the rigorous per-element bound
of the fp32 computation is checked by the C suite (tests/test_attention.c against tests/util/attn_oracle).
"""
import math
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import rotary  # noqa: E402
from rotary import _lib  # noqa: E402

from conftest import ref_rope  # noqa: E402

pytestmark = pytest.mark.skipif(not _lib.HAS_ATTENTION,
                                reason="the loaded librotary has no rotary_attention (built before issue 14)")

F8 = torch.float8_e4m3fn
U8 = torch.uint8  # fp8 bytes, vLLM's storage
UNIT = {torch.float32: 2.0 ** -24, torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8}


# --- caches ------------------------------------------------------------------------------------------------------
class Case:
    """A cache (KVCache) holding `lengths` rows per sequence, its index keywords, and the logical rows decoded to
    float64: K[b], V[b] of shape [L_b, kv_heads, head_dim]."""

    def __init__(self, index, layout, dtype, lengths, kv_heads, head_dim, block_size, gen, k_scale=0.5, v_scale=2.0,
                 fill=float("nan")):
        self.index, self.layout, self.dtype = index, layout, dtype
        self.lengths = [int(x) for x in lengths]
        batch = len(self.lengths)
        fp8 = dtype in (F8, U8)
        self.k_scale, self.v_scale = (k_scale, v_scale) if fp8 else (1.0, 1.0)
        store = F8 if fp8 else dtype
        if index == "seq":
            block_size = max(self.lengths) + 3
            num_blocks = batch + 1
            where = [[(b, p) for p in range(L)] for b, L in enumerate(self.lengths)]
            self.kwargs = dict(lengths=torch.tensor(self.lengths, dtype=torch.int64))
        else:
            need = [-(-L // block_size) for L in self.lengths]
            num_blocks = sum(need) + 2
            perm = torch.randperm(num_blocks, generator=gen).tolist()
            blocks, at = [], 0
            for n in need:
                blocks.append(perm[at:at + n])
                at += n
            where = [[(blocks[b][p // block_size], p % block_size) for p in range(L)]
                     for b, L in enumerate(self.lengths)]
            if index == "vllm":
                width = max(need) + 1
                table = torch.zeros(batch, width, dtype=torch.int32)  # vLLM pads with 0
                for b, bl in enumerate(blocks):
                    table[b, :len(bl)] = torch.tensor(bl, dtype=torch.int32)
                self.kwargs = dict(block_table=table, lengths=torch.tensor(self.lengths, dtype=torch.int32))
            else:
                indptr = [0]
                for n in need:
                    indptr.append(indptr[-1] + n)
                self.kwargs = dict(page_indptr=torch.tensor(indptr, dtype=torch.int32),
                                   page_indices=torch.tensor(sum(blocks, []), dtype=torch.int32),
                                   last_page_len=torch.tensor([L - (n - 1) * block_size for L, n in
                                                               zip(self.lengths, need)], dtype=torch.int32))
        self.block_size = block_size
        shape = ((num_blocks, block_size, kv_heads, head_dim) if layout == "NHD" else
                 (num_blocks, kv_heads, block_size, head_dim))
        self.k = torch.full(shape, fill, dtype=torch.float32).to(store)
        self.v = torch.full(shape, fill, dtype=torch.float32).to(store)
        self.K, self.V, self.where = [], [], where
        for b, L in enumerate(self.lengths):
            kr = (torch.randn(L, kv_heads, head_dim, generator=gen, dtype=torch.float64) / self.k_scale).to(store)
            vr = (torch.randn(L, kv_heads, head_dim, generator=gen, dtype=torch.float64) / self.v_scale).to(store)
            for p, (blk, row) in enumerate(where[b]):
                self.put(blk, row, kr[p], vr[p])
            self.K.append(kr.to(torch.float64) * self.k_scale)
            self.V.append(vr.to(torch.float64) * self.v_scale)
        if dtype == U8:
            self.k, self.v = self.k.view(U8), self.v.view(U8)
        self.cache = rotary.KVCache(self.k, self.v, layout=layout, dtype="fp8_e4m3" if fp8 else "auto",
                                    k_scale=self.k_scale, v_scale=self.v_scale)

    def put(self, blk, row, k_row, v_row):
        if self.layout == "NHD":
            self.k[blk, row], self.v[blk, row] = k_row, v_row
        else:
            self.k[blk, :, row], self.v[blk, :, row] = k_row, v_row

    def numpy(self):
        """The same cache over NumPy arrays (views of the tensors' memory; fp8 as uint8, bfloat16 via ml_dtypes)."""
        def arr(t):
            if t.dtype in (F8, U8):
                return t.view(U8).numpy()
            if t.dtype == torch.bfloat16:
                ml = pytest.importorskip("ml_dtypes")
                return t.view(torch.int16).numpy().view(ml.bfloat16)
            return t.numpy()
        fp8 = self.dtype in (F8, U8)
        return rotary.KVCache(arr(self.k), arr(self.v), layout=self.layout, dtype="fp8_e4m3" if fp8 else "auto",
                              k_scale=self.k_scale, v_scale=self.v_scale)


# --- references --------------------------------------------------------------------------------------------------
def rotate64(x, pos, rope):
    """x float64 [n, heads, D] rotated at positions pos [n] (conftest.ref_rope, the rope's own inv_freq)."""
    out, _ = ref_rope(x.numpy()[None], np.asarray(pos)[None], rope.inv_freq, rope.pairing, rope.rotary_dim,
                      rope.attention_scaling)
    return torch.from_numpy(out[0])


def masks(L, T, window):
    i = torch.arange(L - T, L)[:, None]
    p = torch.arange(L)[None, :]
    m = p <= i
    if window:
        m &= (i - p) < window
    return m


def reference(case, q, rope=None, rope_mode="none", scale=None, softcap=None, window=None, sdpa=True):
    """(out [B, T, Hq, D], lse [B, T, Hq], ds [B, T, Hq]) in float64; q [B, T, Hq, D] of the call's values."""
    B, T, Hq, D = q.shape
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    outs, lses, dss = [], [], []
    for b in range(B):
        L = case.lengths[b]
        qb = q[b].to(torch.float64)
        kb, vb = case.K[b], case.V[b]
        if rope_mode in ("q", "qk"):
            qb = rotate64(qb, range(L - T, L), rope)
        if rope_mode == "qk":
            kb = rotate64(kb, range(L), rope)
        G = Hq // kb.shape[1]
        kk, vv = kb.repeat_interleave(G, dim=1), vb.repeat_interleave(G, dim=1)
        m = masks(L, T, window)
        dots = torch.einsum("thd,lhd->htl", qb.abs(), kk.abs()) * scale
        mag = dots.masked_fill(~m, 0).amax(-1).transpose(0, 1)  # [T, Hq]
        ds = 2.0 ** -23 * math.sqrt(D) * mag
        s = torch.einsum("thd,lhd->htl", qb, kk) * scale
        if softcap:
            s = softcap * torch.tanh(s / softcap)
        s = s.masked_fill(~m, float("-inf"))
        lse = torch.logsumexp(s, -1).transpose(0, 1)
        if sdpa and not softcap:
            o = F.scaled_dot_product_attention(qb.transpose(0, 1)[None], kb.transpose(0, 1)[None],
                                               vb.transpose(0, 1)[None], attn_mask=m, scale=scale,
                                               enable_gqa=True)[0].transpose(0, 1)
        else:
            o = torch.einsum("htl,lhd->thd", torch.softmax(s, -1), vv)
        outs.append(o)
        lses.append(lse)
        dss.append(ds)
    return torch.stack(outs), torch.stack(lses), torch.stack(dss)


def vmax(case):
    return max(float(v.abs().max()) for v in case.V)


def check(got, lse, case, ref, what=""):
    out64, lse64, ds = ref
    vm = vmax(case)
    g = torch.as_tensor(np.asarray(got, dtype=np.float64)) if not isinstance(got, torch.Tensor) else \
        got.to(torch.float64)
    unit = 0.0 if g is None or got.dtype in (torch.float32, np.float32) else UNIT.get(got.dtype, 2.0 ** -8)
    tol = (2.0 ** -23 + ds[..., None]) * vm + unit * out64.abs()
    err = (g - out64).abs()
    assert torch.isfinite(g).all(), f"{what}: non-finite output"
    bad = err > tol
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {err.numel()} out of tolerance; worst excess "
                           f"{float((err - tol).max()):.3g}, max err {float(err.max()):.3g}")
    if lse is not None:
        le = (torch.as_tensor(np.asarray(lse, dtype=np.float64)) - lse64).abs()
        lt = ds + 2.0 ** -23 * (1 + lse64.abs())
        assert not (le > lt).any(), f"{what}: lse off by {float((le - lt).max()):.3g} beyond tolerance"


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(14)


ROPE = rotary.RoPE(64, max_positions=8192)


def make_q(gen, B, T, Hq, D=64, dtype=torch.float32):
    return torch.randn(B, T, Hq, D, generator=gen).to(dtype)


# --- against SDPA ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", ["seq", "vllm", "pages"])
@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, F8, U8],
                         ids=["f32", "f16", "bf16", "fp8", "fp8u8"])
def test_against_sdpa(index, layout, dtype, gen):
    g = torch.Generator().manual_seed(zlib.crc32(f"{index}/{layout}/{dtype}".encode()))
    group = [1, 4, 8][int(torch.randint(0, 3, (1,), generator=g))]
    kv_heads = 2 if group < 8 else 1
    T = int(torch.randint(1, 5, (1,), generator=g))
    lengths = [T + int(x) for x in torch.randint(0, 300, (3,), generator=g)]
    lengths[0] = T  # a sequence that holds only the new tokens
    case = Case(index, layout, dtype, lengths, kv_heads, 64, 16, g)
    q = make_q(g, 3, T, kv_heads * group)
    out, lse = rotary.attention(ROPE, q, case.cache, **case.kwargs, return_lse=True)
    assert out.dtype == q.dtype and out.shape == q.shape and lse.shape == q.shape[:-1] and lse.dtype == torch.float32
    check(out, lse, case, reference(case, q), f"{index}/{layout}/{dtype}")


@pytest.mark.parametrize("mode", ["none", "q", "qk"])
@pytest.mark.parametrize("pairing", ["half", "interleaved"])
@pytest.mark.parametrize("qdtype", [torch.float32, torch.bfloat16])
def test_rope_modes(mode, pairing, qdtype, gen):
    rope = rotary.RoPE(64, pairing=pairing, base=10000.0, max_positions=4096)
    case = Case("pages", "NHD", torch.bfloat16, [3, 200, 517], 2, 64, 16, gen)
    q = make_q(gen, 3, 3, 8, dtype=qdtype)
    out, lse = rotary.attention(rope, q, case.cache, **case.kwargs, rope_mode=mode, return_lse=True)
    check(out, lse, case, reference(case, q, rope, mode), f"rope {mode} {pairing} {qdtype}")


def test_qk_mode_is_rotated_cache_mode(gen):
    """rope_mode "qk" over unrotated keys agrees with "q" over the same keys rotated (fp32, no rounding between)."""
    case = Case("seq", "NHD", torch.float32, [40, 77], 2, 64, 0, gen)
    rot = Case("seq", "NHD", torch.float32, [40, 77], 2, 64, 0, torch.Generator().manual_seed(0))
    for b, L in enumerate(case.lengths):  # the same values, keys rotated at their rows in float64
        k = rotate64(case.K[b], range(L), ROPE)
        for p in range(L):
            rot.k[b, p] = k[p].to(torch.float32)
            rot.v[b, p] = case.V[b][p].to(torch.float32)
    q = make_q(gen, 2, 2, 8)
    a = rotary.attention(ROPE, q, case.cache, **case.kwargs, rope_mode="qk")
    b = rotary.attention(ROPE, q, rot.cache, **case.kwargs, rope_mode="q")
    assert torch.allclose(a, b, rtol=0, atol=2e-5)


@pytest.mark.parametrize("T", [1, 5, 16])
@pytest.mark.parametrize("window", [1, 7, 64])
def test_sliding_window(T, window, gen):
    case = Case("vllm", "HND", torch.float16, [T, T + 30, T + 300], 2, 64, 16, gen)
    q = make_q(gen, 3, T, 4)
    out, lse = rotary.attention(ROPE, q, case.cache, **case.kwargs, window=window, return_lse=True)
    check(out, lse, case, reference(case, q, window=window), f"window {window}, T {T}")


def test_rows_outside_the_window_are_not_read(gen):
    """One token, window w: rows below L - w are never attended; NaN there must not reach the output."""
    case = Case("seq", "NHD", torch.float32, [50, 90], 1, 64, 0, gen)
    for b, L in enumerate(case.lengths):
        for p in range(L - 8):
            case.put(b, p, torch.full((1, 64), float("nan")), torch.full((1, 64), float("nan")))
    q = make_q(gen, 2, 1, 4)
    out = rotary.attention(ROPE, q, case.cache, **case.kwargs, window=8)
    check(out, None, case, reference(case, q, window=8), "window with NaN outside")


@pytest.mark.parametrize("softcap", [None, 0.0, 5.0, 30.0])
@pytest.mark.parametrize("scale", [None, 0.3, 1.0])
def test_softcap_and_scale(softcap, scale, gen):
    case = Case("seq", "HND", torch.float32, [1, 60, 129], 2, 64, 0, gen)
    q = make_q(gen, 3, 1, 8) * 3  # logits large enough for the cap to bite
    out, lse = rotary.attention(ROPE, q, case.cache, **case.kwargs, scale=scale, softcap=softcap, return_lse=True)
    ref = reference(case, q, scale=scale, softcap=softcap, sdpa=False)
    check(out, lse, case, ref, f"softcap {softcap} scale {scale}")
    if not softcap:  # the explicit reference agrees with SDPA
        sd = reference(case, q, scale=scale)
        assert torch.allclose(ref[0], sd[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16, "bfloat16"])
def test_out_dtype(out_dtype, gen):
    case = Case("seq", "NHD", torch.bfloat16, [10, 33], 2, 64, 0, gen)
    q = make_q(gen, 2, 2, 4)
    out = rotary.attention(ROPE, q, case.cache, **case.kwargs, out_dtype=out_dtype)
    assert out.dtype == (getattr(torch, out_dtype) if isinstance(out_dtype, str) else out_dtype)
    check(out, None, case, reference(case, q), f"out {out_dtype}")


def test_long_context_mqa(gen):
    """Cached lengths up to 5000, MQA (one kv head), head_dim 128, 3 query tokens."""
    rope = rotary.RoPE(128, max_positions=8192)
    case = Case("pages", "HND", torch.bfloat16, [5000, 1234], 1, 128, 64, gen)
    q = torch.randn(2, 3, 8, 128, generator=gen)
    for mode in ("none", "qk"):
        out, lse = rotary.attention(rope, q, case.cache, **case.kwargs, rope_mode=mode, return_lse=True)
        check(out, lse, case, reference(case, q, rope, mode), f"long {mode}")


def test_three_dim_q_is_one_token(gen):
    case = Case("seq", "NHD", torch.float32, [5, 9], 2, 64, 0, gen)
    q = make_q(gen, 2, 1, 4)
    a = rotary.attention(ROPE, q[:, 0], case.cache, **case.kwargs)
    b = rotary.attention(ROPE, q, case.cache, **case.kwargs)
    assert a.shape == (2, 4, 64) and torch.equal(a, b[:, 0])


def test_strided_q_and_out(gen):
    """q a view of packed QKV rows, out a strided view: the same bits as contiguous ones."""
    case = Case("seq", "NHD", torch.float16, [20, 31], 2, 64, 0, gen)
    qkv = torch.randn(2, 2, (4 + 2 * 2) * 64, generator=gen)
    q = qkv[..., :4 * 64].unflatten(-1, (4, 64))
    big = torch.zeros(2, 2, 6, 64)
    rotary.attention(ROPE, q, case.cache, **case.kwargs, out=big[:, :, 1:5])
    want = rotary.attention(ROPE, q.contiguous(), case.cache, **case.kwargs)
    assert torch.equal(big[:, :, 1:5], want)
    assert (big[:, :, 0] == 0).all() and (big[:, :, 5] == 0).all()


# --- NumPy -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, U8], ids=["f32", "f16", "bf16", "fp8"])
def test_numpy_same_bits_as_torch(dtype, gen):
    case = Case("vllm", "NHD", dtype, [17, 40], 2, 64, 16, gen)
    q = make_q(gen, 2, 2, 8)
    want, want_lse = rotary.attention(ROPE, q, case.cache, **case.kwargs, return_lse=True, rope_mode="q")
    kw = {k: v.numpy() for k, v in case.kwargs.items()}
    out, lse = rotary.attention(ROPE, q.numpy(), case.numpy(), **kw, return_lse=True, rope_mode="q")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and lse.dtype == np.float32
    assert np.array_equal(out, want.numpy()) and np.array_equal(lse, want_lse.numpy())
    o16 = rotary.attention(ROPE, q.numpy(), case.numpy(), **kw, out_dtype="float16")
    assert o16.dtype == np.float16
    assert np.array_equal(o16, rotary.attention(ROPE, q, case.cache, **case.kwargs, out_dtype=torch.float16).numpy())


# --- determinism, torch.compile ------------------------------------------------------------------------------------
def test_bits_equal_across_thread_counts(gen):
    case = Case("pages", "NHD", torch.bfloat16, [3000, 100], 2, 64, 16, gen)
    q = make_q(gen, 2, 4, 8)
    before = rotary.get_num_threads()
    try:
        res = []
        for n in (1, 2, 3):
            rotary.set_num_threads(n)
            res.append(rotary.attention(ROPE, q, case.cache, **case.kwargs, return_lse=True))
    finally:
        rotary.set_num_threads(before)
    for o, lse in res[1:]:
        assert torch.equal(o, res[0][0]) and torch.equal(lse, res[0][1])


@pytest.mark.parametrize("index", ["seq", "vllm", "pages"])
def test_custom_op_under_torch_compile(index, gen):
    case = Case(index, "NHD", torch.bfloat16, [9, 70], 2, 64, 16, gen)
    q = make_q(gen, 2, 2, 8, dtype=torch.bfloat16)
    kw = case.kwargs
    cache = case.cache

    def step(q, *ix):
        d = dict(zip(kw, ix))
        out, lse = rotary.attention(ROPE, q, cache, **d, rope_mode="q", softcap=20.0, window=50, return_lse=True)
        return out * 1, lse

    eager = step(q, *kw.values())
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")(q, *kw.values())
    assert torch.equal(eager[0], compiled[0]) and torch.equal(eager[1], compiled[1])
    # the op itself, through the dispatcher, gives the same bits
    op = torch.ops.rotary.attention(q, cache.k, cache.v, rotary.ops.rope_tensor(ROPE), "NHD", "auto", 1.0, 1.0,
                                    kw.get("lengths"), kw.get("block_table"), kw.get("page_indptr"),
                                    kw.get("page_indices"), kw.get("last_page_len"), "q", 0.0, 20.0, 50, None, True)
    assert torch.equal(op[0], eager[0]) and torch.equal(op[1], eager[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, U8], ids=["f32", "bf16", "fp8"])
def test_precision_bf16(dtype, gen):
    """precision="bf16" reaches librotary (its results differ from "f32"'s), stays within bf16's rounding of them,
    and gives the same bits through NumPy, eager torch, the custom op under torch.compile and the op itself."""
    case = Case("vllm", "NHD", dtype, [17, 300], 2, 64, 16, gen)
    q = make_q(gen, 2, 2, 8)
    kw, cache = case.kwargs, case.cache
    f32 = rotary.attention(ROPE, q, cache, **kw, rope_mode="q")
    b16, lse = rotary.attention(ROPE, q, cache, **kw, rope_mode="q", precision="bf16", return_lse=True)
    assert not torch.equal(b16, f32)
    assert float((b16 - f32).abs().max()) <= 2.0 ** -5 * vmax(case)
    knp = {k: v.numpy() for k, v in kw.items()}
    npo = rotary.attention(ROPE, q.numpy(), case.numpy(), **knp, rope_mode="q", precision="bf16")
    assert np.array_equal(npo, b16.numpy())

    def step(q, *ix):
        return rotary.attention(ROPE, q, cache, **dict(zip(kw, ix)), rope_mode="q", precision="bf16") * 1

    assert torch.equal(torch.compile(step, fullgraph=True, backend="aot_eager")(q, *kw.values()), b16)
    op = torch.ops.rotary.attention(q, cache.k, cache.v, rotary.ops.rope_tensor(ROPE), "NHD", cache.dtype,
                                    cache.k_scale, cache.v_scale, kw.get("lengths"), kw.get("block_table"),
                                    kw.get("page_indptr"), kw.get("page_indices"), kw.get("last_page_len"), "q", 0.0,
                                    0.0, 0, None, True, "bf16")
    assert torch.equal(op[0], b16) and torch.equal(op[1], lse)
    for bad in ("fp16", "BF16", 1):
        with pytest.raises(ValueError):
            rotary.attention(ROPE, q, cache, **kw, precision=bad)
        with pytest.raises(ValueError):
            rotary.attention(ROPE, q.numpy(), case.numpy(), **knp, precision=bad)


def test_inductor_compile(gen):
    case = Case("seq", "HND", torch.float32, [12, 30], 2, 64, 0, gen)
    q = make_q(gen, 2, 1, 4)
    lengths = case.kwargs["lengths"]

    def f(q, lengths):
        return rotary.attention(ROPE, q + 0, case.cache, lengths=lengths) * 2

    assert torch.equal(torch.compile(f, fullgraph=True)(q, lengths), f(q, lengths))


def test_fake_tensor_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode():
        q = torch.empty(2, 3, 8, 64, dtype=torch.bfloat16)
        k = torch.empty(4, 16, 2, 64, dtype=torch.bfloat16)
        out, lse = torch.ops.rotary.attention(q, k, k.clone(), torch.empty(36, dtype=torch.float64), "NHD", "auto",
                                              1.0, 1.0, torch.empty(2, dtype=torch.int64), None, None, None, None,
                                              "none", 0.0, 0.0, 0, torch.float32, True)
        assert out.shape == q.shape and out.dtype == torch.float32 and lse.shape == (2, 3, 8)
        with pytest.raises(ValueError, match="rope_mode"):
            torch.ops.rotary.attention(q, k, k.clone(), torch.empty(36, dtype=torch.float64), "NHD", "auto", 1.0, 1.0,
                                       None, None, None, None, None, "rope", 0.0, 0.0, 0, None, False)


# --- decode_step -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", ["seq", "vllm", "pages"])
@pytest.mark.parametrize("api", ["torch", "numpy"])
def test_decode_step_is_kv_write_then_attention(index, api, gen):
    """decode_step gives the bits of kv_write then attention (rope_mode none), and q rotated as kv_write rotates it."""
    T, lengths = 2, [5, 40]
    before = [L - T for L in lengths]
    a = Case(index, "NHD", torch.bfloat16, lengths, 2, 64, 16, torch.Generator().manual_seed(3))
    b = Case(index, "NHD", torch.bfloat16, lengths, 2, 64, 16, torch.Generator().manual_seed(3))
    q = make_q(gen, 2, T, 8)
    k = torch.randn(2, T, 2, 64, generator=gen)
    v = torch.randn(2, T, 2, 64, generator=gen)
    if index == "seq":
        step_ix = dict(lengths=torch.tensor(before))
        write_ix = step_ix
    elif index == "vllm":
        slots = torch.tensor([[a.where[s][p][0] * 16 + a.where[s][p][1] for p in range(L - T, L)]
                              for s, L in enumerate(lengths)], dtype=torch.int64)
        step_ix = dict(slot_mapping=slots, block_table=a.kwargs["block_table"], seq_lens=a.kwargs["lengths"])
        write_ix = dict(slot_mapping=slots)
    else:
        step_ix = dict(a.kwargs)
        write_ix = step_ix
    q1 = q.clone()
    if api == "torch":
        out = rotary.decode_step(ROPE, q1, k, v, a.cache, **step_ix)
    else:
        np_ix = {n: x.numpy() for n, x in step_ix.items()}
        qn = q1.numpy()
        out = torch.from_numpy(rotary.decode_step(ROPE, qn, k.numpy(), v.numpy(), a.numpy(), **np_ix))
    q2 = q.clone()
    offsets = torch.tensor(before, dtype=torch.int64)
    rotary.kv_write(ROPE, q2, k, v, b.cache, offsets=offsets, **write_ix)
    want = rotary.attention(ROPE, q2, b.cache, **b.kwargs)
    assert torch.equal(q1, q2), "q rotated at its rows"
    assert torch.equal(a.k.view(torch.int16), b.k.view(torch.int16)) and torch.equal(a.v.view(torch.int16),
                                                                                       b.v.view(torch.int16))
    assert torch.equal(out, want)


def test_decode_step_under_torch_compile(gen):
    a = Case("seq", "NHD", torch.float32, [7, 20], 2, 64, 0, torch.Generator().manual_seed(5))
    b = Case("seq", "NHD", torch.float32, [7, 20], 2, 64, 0, torch.Generator().manual_seed(5))
    q = make_q(gen, 2, 1, 4)
    k, v = torch.randn(2, 1, 2, 64, generator=gen), torch.randn(2, 1, 2, 64, generator=gen)
    lengths = torch.tensor([6, 19])

    def step(cache, q, k, v, lengths):
        return rotary.decode_step(ROPE, q, k, v, cache, lengths=lengths, return_lse=True)

    qa, qb = q.clone(), q.clone()
    eager = step(a.cache, qa, k, v, lengths)
    comp = torch.compile(lambda *x: step(b.cache, *x), fullgraph=True, backend="aot_eager")(qb, k, v, lengths)
    assert torch.equal(eager[0], comp[0]) and torch.equal(eager[1], comp[1])
    assert torch.equal(qa, qb)
    assert torch.equal(a.k.view(torch.int32), b.k.view(torch.int32))  # (NaN past the rows written)
    assert torch.equal(a.v.view(torch.int32), b.v.view(torch.int32))


# --- non-finite values ---------------------------------------------------------------------------------------------
def test_nan_in_an_attended_key_makes_the_row_nan(gen):
    case = Case("seq", "NHD", torch.float32, [10, 10], 1, 64, 0, gen)
    case.put(0, 3, torch.full((1, 64), float("nan")), torch.zeros(1, 64))
    q = make_q(gen, 2, 1, 2)
    out = rotary.attention(ROPE, q, case.cache, **case.kwargs)
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()


# --- bad input: the library's errors, nothing written ----------------------------------------------------------------
def _sentinel_call(case, q, **kw):
    out = torch.full(q.shape, 7.0)
    try:
        rotary.attention(ROPE, q, case.cache, out=out, **kw)
    finally:
        assert (out == 7.0).all(), "out written on error"


def status(code):
    return lambda e: e.value.status == code


@pytest.mark.parametrize("what,kw,err,code", [
    ("length beyond the cache", dict(lengths=torch.tensor([5, 99])), rotary.RotaryError, _lib.ERR_CACHE_INDEX),
    ("length zero", dict(lengths=torch.tensor([0, 5])), rotary.RotaryError, _lib.ERR_CACHE_INDEX),
    ("length negative", dict(lengths=torch.tensor([-1, 5])), rotary.RotaryError, _lib.ERR_CACHE_INDEX),
    ("scale NaN", dict(scale=float("nan")), rotary.RotaryError, _lib.ERR_SCALE),
    ("scale negative", dict(scale=-1.0), rotary.RotaryError, _lib.ERR_SCALE),
    ("scale zero", dict(scale=0.0), rotary.RotaryError, _lib.ERR_SCALE),
    ("scale inf", dict(scale=float("inf")), rotary.RotaryError, _lib.ERR_SCALE),
    ("scale beyond fp32", dict(scale=1e39), rotary.RotaryError, _lib.ERR_SCALE),
    ("scale 0 in fp32", dict(scale=1e-50), rotary.RotaryError, _lib.ERR_SCALE),
    ("softcap negative", dict(softcap=-2.0), rotary.RotaryError, _lib.ERR_SCALE),
    ("rope mode", dict(rope_mode="neox"), ValueError, None),
    ("window negative", dict(window=-1), ValueError, None),
    ("no index", dict(lengths=None), ValueError, None),
    ("two indexes", dict(page_indptr=torch.tensor([0, 1, 2], dtype=torch.int32)), ValueError, None),
])
def test_bad_arguments(what, kw, err, code, gen):
    case = Case("seq", "NHD", torch.float32, [5, 9], 2, 64, 0, gen)
    q = make_q(gen, 2, 1, 4)
    args = dict(case.kwargs, **kw)
    if args.get("lengths") is None:
        args.pop("lengths")
    with pytest.raises(err) as e:
        _sentinel_call(case, q, **args)
    if code is not None:
        assert e.value.status == code, f"{what}: {e.value}"
    assert str(e.value), what


def test_lengths_below_the_query_tokens(gen):
    case = Case("seq", "NHD", torch.float32, [5, 9], 2, 64, 0, gen)
    q = make_q(gen, 2, 3, 4)
    with pytest.raises(rotary.RotaryError, match="lengths") as e:
        _sentinel_call(case, q, lengths=torch.tensor([2, 9]))
    assert e.value.status == _lib.ERR_CACHE_INDEX


def test_bad_tables(gen):
    v = Case("vllm", "NHD", torch.float32, [20, 33], 2, 64, 16, gen)
    q = make_q(gen, 2, 1, 4)
    table = v.kwargs["block_table"].clone()
    table[1, 0] = v.k.shape[0]  # a block past the cache
    with pytest.raises(rotary.RotaryError) as e:
        _sentinel_call(v, q, block_table=table, lengths=v.kwargs["lengths"])
    assert e.value.status == _lib.ERR_CACHE_INDEX
    with pytest.raises(rotary.RotaryError) as e:  # a table too narrow for the lengths
        _sentinel_call(v, q, block_table=v.kwargs["block_table"][:, :1].clone(), lengths=v.kwargs["lengths"])
    assert e.value.status == _lib.ERR_CACHE_INDEX
    p = Case("pages", "NHD", torch.float32, [20, 33], 2, 64, 16, gen)
    idx = p.kwargs["page_indices"].clone()
    idx[-1] = -1
    with pytest.raises(rotary.RotaryError) as e:
        _sentinel_call(p, q, **dict(p.kwargs, page_indices=idx))
    assert e.value.status == _lib.ERR_CACHE_INDEX
    last = p.kwargs["last_page_len"].clone()
    last[0] = 17  # above block_size
    with pytest.raises(rotary.RotaryError) as e:
        _sentinel_call(p, q, **dict(p.kwargs, last_page_len=last))
    assert e.value.status == _lib.ERR_CACHE_INDEX


def test_shape_and_type_errors(gen):
    case = Case("seq", "NHD", torch.float32, [5, 9], 2, 64, 0, gen)
    kw = case.kwargs
    with pytest.raises(ValueError, match="multiple"):
        rotary.attention(ROPE, make_q(gen, 2, 1, 3), case.cache, **kw)
    with pytest.raises(ValueError, match="at most 16"):
        rotary.attention(ROPE, make_q(gen, 2, 17, 4), case.cache, **kw)
    with pytest.raises(TypeError, match="dtype"):
        rotary.attention(ROPE, make_q(gen, 2, 1, 4).double(), case.cache, **kw)
    with pytest.raises(ValueError, match="head_dim"):
        rotary.attention(ROPE, torch.zeros(2, 1, 4, 32), case.cache, **kw)
    with pytest.raises(ValueError, match="head_dim"):
        rotary.attention(rotary.RoPE(32), torch.zeros(2, 1, 4, 32), case.cache, **kw)
    with pytest.raises(TypeError, match="KVCache"):
        rotary.attention(ROPE, make_q(gen, 2, 1, 4), case.k, **kw)
    with pytest.raises(ValueError, match="out"):
        rotary.attention(ROPE, make_q(gen, 2, 1, 4), case.cache, **kw, out=torch.empty(2, 1, 4, 63))
    q = make_q(gen, 2, 1, 4).requires_grad_()
    with pytest.raises(RuntimeError, match="differentiable"):
        rotary.attention(ROPE, q, case.cache, **kw)


def test_out_overlapping_q_is_refused(gen):
    case = Case("seq", "NHD", torch.float32, [5, 9], 2, 64, 0, gen)
    q = make_q(gen, 2, 1, 4)
    keep = q.clone()
    with pytest.raises(rotary.RotaryError) as e:
        rotary.attention(ROPE, q, case.cache, **case.kwargs, out=q)
    assert e.value.status == _lib.ERR_OVERLAP and torch.equal(q, keep)


def test_position_outside_the_rope_table(gen):
    rope = rotary.RoPE(64, max_positions=100)
    case = Case("seq", "NHD", torch.float32, [50, 120], 2, 64, 0, gen)
    q = make_q(gen, 2, 1, 4)
    rotary.attention(rope, q, case.cache, **case.kwargs)  # rope_mode none: no position read
    for mode in ("q", "qk"):
        with pytest.raises(rotary.RotaryError) as e:
            rotary.attention(rope, q, case.cache, **case.kwargs, rope_mode=mode)
        assert e.value.status == _lib.ERR_POSITION


def test_fp8_scale_must_be_positive(gen):
    case = Case("seq", "NHD", F8, [5, 9], 2, 64, 0, gen)
    bad = rotary.KVCache(case.k, case.v, dtype="fp8_e4m3", k_scale=0.0, v_scale=1.0)
    with pytest.raises(rotary.RotaryError) as e:
        rotary.attention(ROPE, make_q(gen, 2, 1, 4), bad, **case.kwargs)
    assert e.value.status == _lib.ERR_SCALE


def test_decode_step_options_and_errors(gen):
    """q_out, an int offset for positions and out=; a bad length raises with q, the caches and out unchanged."""
    a = Case("seq", "HND", torch.float16, [12, 30], 2, 64, 0, torch.Generator().manual_seed(7))
    b = Case("seq", "HND", torch.float16, [12, 30], 2, 64, 0, torch.Generator().manual_seed(7))
    q = make_q(gen, 2, 2, 4)
    k, v = torch.randn(2, 2, 2, 64, generator=gen), torch.randn(2, 2, 2, 64, generator=gen)
    before = torch.tensor([10, 28])
    q_out, out = torch.empty_like(q), torch.empty(2, 2, 4, 64, dtype=torch.bfloat16)
    keep_q = q.clone()
    got = rotary.decode_step(ROPE, q, k, v, a.cache, 100, lengths=before, q_out=q_out, out=out)
    assert got is out and torch.equal(q, keep_q)
    q2 = q.clone()
    rotary.kv_write(ROPE, q2, k, v, b.cache, 100, lengths=before)
    assert torch.equal(q_out, q2)
    assert torch.equal(out, rotary.attention(ROPE, q2, b.cache, lengths=before + 2, out_dtype=torch.bfloat16))
    snap = [x.clone() for x in (a.k, a.v, q, out)]
    with pytest.raises(rotary.RotaryError) as e:
        rotary.decode_step(ROPE, q, k, v, a.cache, lengths=torch.tensor([10, a.k.shape[2] - 1]), out=out)
    assert e.value.status == _lib.ERR_CACHE_INDEX
    for x, y in zip((a.k, a.v, q, out), snap):
        assert torch.equal(x.view(torch.int16), y.view(torch.int16)), "written on error"
    with pytest.raises(ValueError, match="one cache index"):
        rotary.decode_step(ROPE, q, k, v, a.cache, lengths=before, slot_mapping=torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="seq_lens"):
        rotary.decode_step(ROPE, q, k, v, a.cache, slot_mapping=torch.zeros(4, dtype=torch.int64))


def test_torch_export_round_trip(gen, tmp_path):
    case = Case("pages", "NHD", torch.bfloat16, [20, 45], 2, 64, 16, gen)
    cache, kw = case.cache, case.kwargs

    class Attend(torch.nn.Module):
        def forward(self, q, page_indptr, page_indices, last_page_len):
            return rotary.attention(ROPE, q, cache, page_indptr=page_indptr, page_indices=page_indices,
                                    last_page_len=last_page_len, rope_mode="qk", window=30)

    q = make_q(gen, 2, 3, 8)
    args = (q, kw["page_indptr"], kw["page_indices"], kw["last_page_len"])
    ep = torch.export.export(Attend(), args)
    assert any("rotary.attention" in str(n.target) for n in ep.graph.nodes)
    path = tmp_path / "attend.pt2"
    torch.export.save(ep, path)
    loaded = torch.export.load(path)
    assert torch.equal(loaded.module()(*args), Attend()(*args))


def test_out_argument_under_torch_compile(gen):
    case = Case("seq", "NHD", torch.float32, [8, 21], 2, 64, 0, gen)
    q = make_q(gen, 2, 2, 4)
    lengths = case.kwargs["lengths"]

    def f(q, out, lengths):
        return rotary.attention(ROPE, q, case.cache, lengths=lengths, out=out, window=5)

    want = f(q, torch.empty(2, 2, 4, 64, dtype=torch.bfloat16), lengths)
    out = torch.empty(2, 2, 4, 64, dtype=torch.bfloat16)
    got = torch.compile(f, fullgraph=True, backend="aot_eager")(q, out, lengths)
    assert torch.equal(out, want) and torch.equal(got, want)
