"""test_kv_ops.py: rotary.kv_write / kv_write_qkv / kv_rerotate on NumPy arrays against a float64 reference (the
rotation of conftest.ref_rope with the rope's own fp64 inverse frequencies; where each token lands computed here
from the documented slot, sequence and page semantics), in place on caches of every dtype (fp8 as uint8 bytes,
decoded here from the OCP E4M3 definition), rows no token writes untouched, errors raised with the status text and
nothing written, and the ctypes structs against the C compiler's layout. The helpers are shared with
test_kv_torch.py."""
import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

import rotary
from rotary import _lib
from conftest import EPS32, assert_close, positions_2d, ref_rope, tolerance

try:
    import ml_dtypes  # bfloat16 and float8_e4m3fn NumPy arrays
except ImportError:  # pragma: no cover
    ml_dtypes = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
D, ROT, QH, KH = 32, 24, 4, 2  # head_dim, rotary_dim (8 pass-through dims), q heads, kv heads (GQA)
NB, BS = 6, 4                  # cache blocks, rows per block
SENTINEL = 0x35                # every cache byte before a call: rows nobody writes must keep it


# --- reference -----------------------------------------------------------------------------------------------------
def fp8_table():
    """The 256 OCP E4M3 values (bias 7, no infinities, S.1111.111 NaN), from the spec."""
    out = np.empty(256)
    for b in range(256):
        s, e, m = b >> 7, (b >> 3) & 15, b & 7
        if e == 15 and m == 7:
            v = np.nan
        elif e == 0:
            v = m * 2.0 ** -9
        else:
            v = (1 + m / 8) * 2.0 ** (e - 7)
        out[b] = -v if s else v
    return out


FP8 = fp8_table()


def decode(cache_bytes_or_values, dtype, scale):
    """A cache's values as float64 (fp8: the byte's E4M3 value times scale)."""
    a = np.asarray(cache_bytes_or_values)
    if dtype == "fp8_e4m3":
        return FP8[a.view(np.uint8)] * scale
    return a.astype(np.float64)


def cache_tolerance(dtype, ref, b32, scale):
    """Elementwise tolerance of one rounding to the cache dtype after fp32 math (b32: the fp32 term)."""
    if dtype == "fp8_e4m3":  # 3 mantissa bits: half an ulp is 2^-4 relative; subnormal steps 2^-9 * scale
        return 2.0 ** -4 * np.abs(ref) * 1.001 + 2.0 ** -10 * scale + b32
    return tolerance(dtype, ref, b32)


def destinations(index, batch, seq, block_size, **ix):
    """(b, s, block, row) for every token that is cached, from the documented semantics of each index."""
    out = []
    for b in range(batch):
        for s in range(seq):
            if index == "slots":
                slot = int(np.asarray(ix["slot_mapping"]).reshape(-1)[b * seq + s])
                if slot < 0:
                    continue
                out.append((b, s, slot // block_size, slot % block_size))
            elif index == "sequences":
                out.append((b, s, b, int(ix["lengths"][b]) + s))
            else:
                lo, hi = ix["page_indptr"][b], ix["page_indptr"][b + 1]
                length = (hi - lo - 1) * block_size + ix["last_page_len"][b]
                p = length - seq + s
                out.append((b, s, int(ix["page_indices"][lo + p // block_size]), p % block_size))
    return out


def index_args(index, batch, seq, rng):
    """Index arrays for a cache of NB blocks of BS rows: random distinct slots with a skipped one, sequence
    lengths, or a page table with its last page partly filled."""
    if index == "slots":
        slots = rng.choice(NB * BS, size=batch * seq, replace=False).astype(np.int64)
        slots[1] = -1  # padding: not cached, q still rotated
        return {"slot_mapping": slots.reshape(batch, seq)}
    if index == "sequences":
        return {"lengths": rng.integers(0, BS - seq + 1, size=batch).astype(np.int64)}
    pages = rng.permutation(NB).astype(np.int32)  # batch 2: sequence 0 owns 2 pages, sequence 1 owns 3
    return {"page_indptr": np.array([0, 2, 5], np.int32), "page_indices": pages[:5],
            "last_page_len": np.array([seq, BS], np.int32)}


def cache_view(cache_arr, layout, block, row):
    """[kv_heads, head_dim] of one cache row."""
    return cache_arr[block, row] if layout == "NHD" else cache_arr[block, :, row]


def check_write(rope, q0, k, v, q_res, kc0, vc0, kc, vc, positions, index, layout, dtype, ix, k_scale=1.0,
                v_scale=1.0, what="", in_dtype=None):
    """q_res against the reference rotation; every cached token's k and v against the reference; every other byte of
    the caches unchanged. Arrays are NumPy float64-convertible ([batch, seq, heads, dim] for q, k, v)."""
    batch, seq = k.shape[:2]
    pos = positions_2d(positions, batch, seq)
    if in_dtype is None:
        in_dtype = {np.dtype(np.float32): "float32", np.dtype(np.float16): "float16"}.get(np.asarray(k).dtype,
                                                                                          "bfloat16")
    if q0 is not None:
        ref, b32 = ref_rope(np.asarray(q0, np.float64), pos, rope.inv_freq, rope.pairing, rope.rotary_dim,
                            rope.attention_scaling)
        assert_close(np.asarray(q_res, np.float64), ref, tolerance(in_dtype, ref, b32), f"{what} q")
    kref, kb32 = ref_rope(np.asarray(k, np.float64), pos, rope.inv_freq, rope.pairing, rope.rotary_dim,
                          rope.attention_scaling)
    vref = np.asarray(v, np.float64)
    written_k = np.zeros(kc.shape[:3], bool)
    kdec, vdec = decode(kc, dtype, k_scale), decode(vc, dtype, v_scale)
    for b, s, blk, row in destinations(index, batch, seq, BS, **ix):
        for name, dec, ref, b32, scale in (("k", kdec, kref, kb32, k_scale), ("v", vdec, vref, 0 * vref, v_scale)):
            r = ref[b, s]
            if dtype == "fp8_e4m3":
                r = np.clip(r, -448 * scale, 448 * scale)
            got = cache_view(dec, layout, blk, row)
            assert_close(got, r, cache_tolerance(dtype, r, b32[b, s], scale), f"{what} {name} token {(b, s)}")
        if layout == "NHD":
            written_k[blk, row] = True
        else:
            written_k[blk, :, row] = True
    for name, now, before in (("k", kc, kc0), ("v", vc, vc0)):
        nb = np.asarray(now).view(np.uint8).reshape(written_k.shape + (-1,))
        bb = np.asarray(before).view(np.uint8).reshape(written_k.shape + (-1,))
        assert np.array_equal(nb[~written_k], bb[~written_k]), f"{what}: {name} cache rows nobody writes changed"


NP_CACHE_DTYPES = {"float32": np.float32, "float16": np.float16, "fp8_e4m3": np.uint8}
if ml_dtypes is not None:
    NP_CACHE_DTYPES["bfloat16"] = ml_dtypes.bfloat16


def np_cache(dtype, layout, rng=None):
    shape = (NB, BS, KH, D) if layout == "NHD" else (NB, KH, BS, D)
    a = np.full(shape, SENTINEL, dtype=np.uint8) if dtype == "fp8_e4m3" else \
        np.full(shape, 0.3, dtype=NP_CACHE_DTYPES[dtype])
    return a


@pytest.fixture(scope="module")
def ropes():
    return {"half": rotary.RoPE(D, rotary_dim=ROT, max_positions=64),
            "interleaved": rotary.RoPE(D, rotary_dim=ROT, pairing="interleaved", max_positions=0, base=500.0)}


def inputs(rng, batch=2, seq=3, dtype=np.float32):
    q = rng.standard_normal((batch, seq, QH, D)).astype(dtype)
    k = (rng.standard_normal((batch, seq, KH, D)) * 40).astype(dtype)  # beyond 448 sometimes: fp8 saturates
    v = (rng.standard_normal((batch, seq, KH, D)) * 3).astype(dtype)
    return q, k, v


# --- values ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", ["slots", "sequences", "pages"])
@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("dtype", list(NP_CACHE_DTYPES))
def test_numpy_write_matches_reference(ropes, index, layout, dtype):
    rng = np.random.default_rng(hash((index, layout, dtype)) % 2 ** 32)
    rope = ropes["half" if dtype != "float16" else "interleaved"]
    q, k, v = inputs(rng)
    ix = index_args(index, 2, 3, rng)
    ids = rng.integers(0, 60, size=(2, 3))
    kc, vc = np_cache(dtype, layout), np_cache(dtype, layout)
    kc0, vc0 = kc.copy(), vc.copy()
    scales = (0.5, 0.125) if dtype == "fp8_e4m3" else (1.0, 1.0)
    cache = rotary.KVCache(kc, vc, layout=layout, dtype=dtype, k_scale=scales[0], v_scale=scales[1])
    q0 = q.copy()
    out = rotary.kv_write(rope, q, k, v, cache, positions=ids, **ix)
    assert out is q
    check_write(rope, q0, k, v, q, kc0, vc0, kc, vc, ids, index, layout, dtype, ix, *scales,
                what=f"{index} {layout} {dtype}")


@pytest.mark.parametrize("in_dtype", [np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes else []))
def test_numpy_half_inputs_into_f32_cache(ropes, in_dtype):
    """f16/bf16 projections into an f32 cache (any input dtype to any cache dtype), positions as offsets."""
    rng = np.random.default_rng(3)
    rope = ropes["half"]
    q, k, v = inputs(rng, dtype=in_dtype)
    kc, vc = np_cache("float32", "NHD"), np_cache("float32", "NHD")
    kc0, vc0 = kc.copy(), vc.copy()
    ix = {"lengths": np.array([0, 1])}
    q0 = q.copy()
    rotary.kv_write(rope, q, k, v, rotary.KVCache(kc, vc), offsets=[5, 9], **ix)
    pos = np.array([[5, 6, 7], [9, 10, 11]])
    check_write(rope, q0, k, v, q, kc0, vc0, kc, vc, pos, "sequences", "NHD", "float32", ix, what="half inputs")


def test_q_out_q_none_and_layouts(ropes):
    rope = ropes["half"]
    rng = np.random.default_rng(4)
    q, k, v = inputs(rng)
    ix = {"slot_mapping": np.array([[3, 4, 5], [6, 7, 8]])}
    kc, vc = np_cache("float32", "NHD"), np_cache("float32", "NHD")
    q0 = q.copy()
    q_out = np.empty_like(q)
    assert rotary.kv_write(rope, q, k, v, rotary.KVCache(kc, vc), positions=2, q_out=q_out, **ix) is q_out
    assert np.array_equal(q, q0)  # q_out given: q is read only
    assert np.array_equal(q_out, rope.apply(q0, positions=2))
    # without q: the same cache contents; bhsd views of the inputs: the same again
    kc2, vc2 = np_cache("float32", "NHD"), np_cache("float32", "NHD")
    assert rotary.kv_write(rope, None, k, v, rotary.KVCache(kc2, vc2), positions=2, **ix) is None
    kc3, vc3 = np_cache("float32", "NHD"), np_cache("float32", "NHD")
    kt, vt = np.ascontiguousarray(k.transpose(0, 2, 1, 3)), np.ascontiguousarray(v.transpose(0, 2, 1, 3))
    rotary.kv_write(rope, None, kt, vt, rotary.KVCache(kc3, vc3), positions=2, layout="bhsd", **ix)
    for a, b in ((kc, kc2), (vc, vc2), (kc, kc3), (vc, vc3)):
        assert np.array_equal(a, b)


def test_packed_qkv_matches_separate(ropes):
    """kv_write_qkv on one GEMM output with a padded row (row stride > (q + 2 kv) heads), in place in the buffer,
    gives the bits of the separate form; "thd" ([tokens, row]) too."""
    rope = ropes["half"]
    rng = np.random.default_rng(5)
    row = (QH + 2 * KH) * D
    qkv = rng.standard_normal((2, 3, row + 8)).astype(np.float32)
    orig = qkv.copy()
    ix = {"slot_mapping": np.arange(6).reshape(2, 3) * 3}
    kc, vc = np_cache("bfloat16" if ml_dtypes else "float16", "NHD"), np_cache("bfloat16" if ml_dtypes else
                                                                               "float16", "NHD")
    q = rotary.kv_write_qkv(rope, qkv, rotary.KVCache(kc, vc), QH, positions=7, **ix)
    assert np.shares_memory(q, qkv) and q.shape == (2, 3, QH, D)
    assert np.array_equal(qkv[..., QH * D:], orig[..., QH * D:])  # k, v and the padding are not written
    q2, k2, v2 = (orig[..., :QH * D].reshape(2, 3, QH, D).copy(), orig[..., QH * D:(QH + KH) * D].reshape(2, 3, KH, D),
                  orig[..., (QH + KH) * D:row].reshape(2, 3, KH, D))
    kc2, vc2 = np.full_like(kc, 0.3), np.full_like(vc, 0.3)
    rotary.kv_write(rope, q2, k2, v2, rotary.KVCache(kc2, vc2), positions=7, **ix)
    assert np.array_equal(q, q2) and np.array_equal(kc, kc2) and np.array_equal(vc, vc2)
    # tokens form, with q into q_out
    flat = orig.reshape(6, row + 8).copy()
    q_out = np.empty((6, QH, D), np.float32)
    kc3, vc3 = np.full_like(kc, 0.3), np.full_like(vc, 0.3)
    rotary.kv_write_qkv(rope, flat, rotary.KVCache(kc3, vc3), QH, positions=np.tile(np.arange(7, 10), 2),
                        q_out=q_out, slot_mapping=ix["slot_mapping"])
    assert np.array_equal(flat, orig.reshape(6, row + 8))
    assert np.array_equal(q_out, q2.reshape(6, QH, D)) and np.array_equal(kc3, kc2) and np.array_equal(vc3, vc2)


def test_combined_cache_and_fp8_ml_dtypes(ropes):
    """One [num_blocks, 2, block_size, kv_heads, head_dim] buffer (k in [:, 0], v in [:, 1]); an fp8 cache as
    ml_dtypes.float8_e4m3fn needs no dtype= and holds the bytes of the uint8 form."""
    rope = ropes["half"]
    rng = np.random.default_rng(6)
    q, k, v = inputs(rng)
    ix = {"slot_mapping": np.array([[0, 5, 9], [13, 2, 22]])}
    kv = np.full((NB, 2, BS, KH, D), 0.3, np.float32)
    rotary.kv_write(rope, q.copy(), k, v, rotary.KVCache.combined(kv), positions=1, **ix)
    kc, vc = np_cache("float32", "NHD"), np_cache("float32", "NHD")
    rotary.kv_write(rope, q.copy(), k, v, rotary.KVCache(kc, vc), positions=1, **ix)
    assert np.array_equal(kv[:, 0], kc) and np.array_equal(kv[:, 1], vc)
    if ml_dtypes is None:
        return
    u8k, u8v = np_cache("fp8_e4m3", "NHD"), np_cache("fp8_e4m3", "NHD")
    rotary.kv_write(rope, q.copy(), k, v, rotary.KVCache(u8k, u8v, dtype="fp8", k_scale=0.25), positions=1, **ix)
    fk, fv = u8k.copy(), u8v.copy()
    fk[:], fv[:] = SENTINEL, SENTINEL
    fk, fv = fk.view(ml_dtypes.float8_e4m3fn), fv.view(ml_dtypes.float8_e4m3fn)
    rotary.kv_write(rope, q.copy(), k, v, rotary.KVCache(fk, fv, k_scale=0.25), positions=1, **ix)
    assert np.array_equal(fk.view(np.uint8), u8k) and np.array_equal(fv.view(np.uint8), u8v)


# --- errors: raised with the status text, nothing written ------------------------------------------------------------
def _bad_cases():
    s = {"slot_mapping": np.array([[0, 1, 2], [3, 4, 5]])}
    return {
        "slot outside the cache": (dict(s, slot_mapping=np.array([[0, 1, 2], [3, 4, NB * BS]])), {}, 18),
        "two tokens one slot": (dict(s, slot_mapping=np.array([[0, 1, 2], [3, 4, 0]])), {}, 18),
        "sequence overflows": ({"lengths": np.array([0, BS - 2])}, {}, 18),
        "negative length": ({"lengths": np.array([-1, 0])}, {}, 18),
        "indptr not from 0": ({"page_indptr": np.array([1, 2, 3], np.int32), "page_indices": np.arange(3),
                               "last_page_len": np.array([3, 3])}, {}, 18),
        "page outside the cache": ({"page_indptr": np.array([0, 1, 2]), "page_indices": np.array([0, NB]),
                                    "last_page_len": np.array([3, 3])}, {}, 18),
        "last_page_len 0": ({"page_indptr": np.array([0, 1, 2]), "page_indices": np.array([0, 1]),
                             "last_page_len": np.array([0, 3])}, {}, 18),
        "page table: fewer rows than seq_len": ({"page_indptr": np.array([0, 1, 2]), "page_indices": np.array([0, 1]),
                                                 "last_page_len": np.array([2, 3])}, {}, 18),
        "page table: indptr decreasing": ({"page_indptr": np.array([0, 2, 1]), "page_indices": np.array([0, 1]),
                                           "last_page_len": np.array([3, 3])}, {}, 18),
        "page table: two sequences one page": ({"page_indptr": np.array([0, 1, 2]), "page_indices": np.array([1, 1]),
                                                "last_page_len": np.array([3, 3])}, {}, 18),
        "negative page": ({"page_indptr": np.array([0, 1, 2]), "page_indices": np.array([0, -1]),
                           "last_page_len": np.array([3, 3])}, {}, 18),
        "more sequences than blocks": ({"lengths": np.zeros(2, np.int64)}, {"blocks": 1}, 18),
        "fp8 scale 0": (s, {"dtype": "fp8_e4m3", "k_scale": 0.0}, 19),
        "fp8 scale NaN": (s, {"dtype": "fp8_e4m3", "v_scale": float("nan")}, 19),
        "fp8 scale negative": (s, {"dtype": "fp8_e4m3", "k_scale": -1.0}, 19),
        "fp8 scale inf": (s, {"dtype": "fp8_e4m3", "v_scale": float("inf")}, 19),
        "position past the table": (s, {"positions": 64}, 7),
    }


@pytest.mark.parametrize("case", list(_bad_cases()))
def test_errors_raise_and_write_nothing(ropes, case):
    ix, kw, status = _bad_cases()[case]
    kw = dict(kw)
    rope = ropes["half"]
    rng = np.random.default_rng(7)
    q, k, v = inputs(rng)
    dtype = kw.pop("dtype", "float32")
    positions = kw.pop("positions", 3)
    blocks = kw.pop("blocks", NB)
    kc, vc = np_cache(dtype, "NHD")[:blocks].copy(), np_cache(dtype, "NHD")[:blocks].copy()
    kc0, vc0, q0 = kc.copy(), vc.copy(), q.copy()
    with pytest.raises(rotary.RotaryError) as e:
        rotary.kv_write(rope, q, k, v, rotary.KVCache(kc, vc, dtype=dtype, **kw), positions=positions, **ix)
    assert e.value.status == status
    assert _lib.status_string(status) in str(e.value) and "rotary_kv_write" in str(e.value)
    assert np.array_equal(kc, kc0) and np.array_equal(vc, vc0) and np.array_equal(q, q0)


def test_overlaps_refused(ropes):
    """A cache that overlaps an input, q's output or the other cache: OVERLAP, nothing written."""
    rope = ropes["half"]
    q, k, v = inputs(np.random.default_rng(11))
    big = np.full((2, NB, BS, KH, D), 0.3, np.float32)
    kc, vc = big[0], big[1]
    ix = {"slot_mapping": np.arange(6) + 12}
    cases = {"k cache is v cache": (q, k, v, kc, kc, None),
             "k input inside the k cache": (q, kc[:2, :3], v, kc, vc, None),
             "v input inside the v cache": (q, k, vc[:2, :3], kc, vc, None),
             "q_out inside the v cache": (q, k, v, kc, vc, vc.reshape(-1)[:q.size].reshape(q.shape))}
    for name, (qq, kk, vv, a, b, q_out) in cases.items():
        before, q0 = big.copy(), qq.copy()
        assert q_out is None or np.shares_memory(q_out, big)
        with pytest.raises(rotary.RotaryError) as e:
            rotary.kv_write(rope, qq, kk, vv, rotary.KVCache(a, b), positions=1, q_out=q_out, **ix)
        assert e.value.status == _lib.ERR_OVERLAP, name
        assert np.array_equal(big, before) and np.array_equal(qq, q0), name


def test_fp8_special_values_and_block_sizes(ropes):
    """fp8 bytes bit-exact for NaN (kept), saturation (+-448: 0x7E / 0xFE), the halfway case below the smallest
    subnormal (to even: 0), -0 (0x80), the smallest subnormal; block sizes 1 and 128; tokens ("thd") with int32
    ids."""
    rope = ropes["half"]
    x = np.zeros((1, KH, D), np.float32)
    x[0, 0, :6] = [np.nan, 1e6, -1e6, 2.0 ** -10, -0.0, 2.0 ** -9]
    for bs in (1, 128):
        kc = np.zeros((3, bs, KH, D), np.uint8)
        vc = kc.copy()
        rotary.kv_write(rope, None, x, x, rotary.KVCache(kc, vc, dtype="fp8_e4m3"), positions=np.array([0], np.int32),
                        slot_mapping=[3 * bs - 1], layout="thd")
        row = vc.reshape(-1, KH, D)[3 * bs - 1, 0, :6]
        assert [int(b) for b in row] == [0x7F, 0x7E, 0xFE, 0x00, 0x80, 0x01], (bs, [hex(b) for b in row])
        assert not vc.reshape(-1, KH, D)[:3 * bs - 1].any() and not kc.reshape(-1, KH, D)[:3 * bs - 1].any()
        assert np.isnan(FP8[kc.reshape(-1, KH, D)[3 * bs - 1, 0, 0]])  # k's NaN pair stays NaN


def test_python_side_refusals(ropes):
    """What the package refuses before any C call: read-only caches, uint8 without an fp8 dtype, a cache of the
    wrong head count or head_dim, a non-dense block, no index or two, e5m2."""
    rope = ropes["half"]
    rng = np.random.default_rng(8)
    q, k, v = inputs(rng)
    s = {"slot_mapping": np.arange(6)}
    kc, vc = np_cache("float32", "NHD"), np_cache("float32", "NHD")
    ro = kc.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        rotary.KVCache(ro, vc)
    with pytest.raises(TypeError, match="fp8_e4m3"):
        rotary.KVCache(np_cache("fp8_e4m3", "NHD"), np_cache("fp8_e4m3", "NHD"))
    with pytest.raises(ValueError, match="e5m2"):
        rotary.KVCache(np_cache("fp8_e4m3", "NHD"), np_cache("fp8_e4m3", "NHD"), dtype="fp8_e5m2")
    with pytest.raises(ValueError, match="dense"):
        rotary.KVCache(np.zeros((NB, BS, KH, 2 * D), np.float32)[..., ::2], vc)
    cache = rotary.KVCache(kc, vc)
    with pytest.raises(ValueError, match="exactly one cache index"):
        rotary.kv_write(rope, q, k, v, cache)
    with pytest.raises(ValueError, match="exactly one cache index"):
        rotary.kv_write(rope, q, k, v, cache, lengths=[0, 0], **s)
    with pytest.raises(ValueError, match="kv heads"):
        rotary.kv_write(rope, q, q, q, cache, **s)
    with pytest.raises(ValueError, match="head_dim"):
        rotary.kv_write(rope, None, k, v, rotary.KVCache(kc[..., :16].copy(), vc[..., :16].copy()), **s)
    with pytest.raises(ValueError, match="page_indices"):  # fewer page indices than page_indptr[batch] names
        rotary.kv_write(rope, q, k, v, cache, page_indptr=[0, 2, 4], page_indices=[0, 1, 2], last_page_len=[3, 3])
    rows = np.zeros((6, ROT // 2 - 1), np.float32)  # cos/sin rows shorter than rotary_dim/2
    with pytest.raises(ValueError, match="rotary_dim/2"):
        rotary.kv_write(rope, q, k, v, cache, cos_sin=(rows, rows), **s)
    with pytest.raises(TypeError, match="integers"):
        rotary.kv_write(rope, q, k, v, cache, slot_mapping=np.arange(6.0))
    with pytest.raises(ValueError, match="does not fit"):
        rotary.kv_write(rope, q, k, v, cache, page_indptr=[0, 2 ** 31, 2 ** 31], page_indices=[0],
                        last_page_len=[3, 3])
    assert np.all(kc == np.float32(0.3)) and np.all(vc == np.float32(0.3))


def test_cos_sin_rows(ropes):
    """Caller cos/sin rows (what vLLM's cos_sin_cache holds): the rope's own rows give the bits of positions=."""
    rope = ropes["half"]
    q, k, v = inputs(np.random.default_rng(13))
    ids = np.array([[3, 9, 4], [0, 60, 2]])
    cos, sin = rope.cos_sin(ids.reshape(-1))
    caches = []
    for kw in ({"positions": ids}, {"cos_sin": (cos, sin)}):
        kc, vc = np_cache("float32", "NHD"), np_cache("float32", "NHD")
        qq = q.copy()
        rotary.kv_write(rope, qq, k, v, rotary.KVCache(kc, vc), slot_mapping=np.arange(6), **kw)
        caches.append((qq, kc, vc))
    for a, b in zip(*caches):
        assert np.array_equal(a, b)


# --- re-rotation ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["NHD", "HND"])
def test_rerotate(ropes, layout):
    """Keys written at positions p, turned by delta over a slot list (a negative slot skipped) or a range, match the
    reference at p + delta; rows not named are untouched; d1 then d2 agrees with d1 + d2."""
    rope = ropes["half"]
    rng = np.random.default_rng(9)
    q, k, v = inputs(rng)
    k = k / 40
    slots = np.array([[1, 2, 3], [8, 9, 10]])
    kc, vc = np_cache("float32", layout), np_cache("float32", layout)
    cache = rotary.KVCache(kc, vc, layout=layout)
    rotary.kv_write(rope, None, k, v, cache, positions=4, slot_mapping=slots)
    before = kc.copy()
    rotary.kv_rerotate(rope, cache, 5, slots=[1, 2, 3, -1, 8, 9, 10])
    _check_rerotated(rope, k, kc, before, slots, 9, layout, "list")
    kc2, vc2 = np_cache("float32", layout), np_cache("float32", layout)
    c2 = rotary.KVCache(kc2, vc2, layout=layout)
    rotary.kv_write(rope, None, k, v, c2, positions=4, slot_mapping=slots)
    rotary.kv_rerotate(rope, c2, 2, first=1, count=3)
    rotary.kv_rerotate(rope, c2, 3, first=1, count=3)
    rotary.kv_rerotate(rope, c2, 5, first=8, count=3)
    _check_rerotated(rope, k, kc2, before, slots, 9, layout, "range, 2 + 3", eps_factor=2)
    with pytest.raises(rotary.RotaryError) as e:
        rotary.kv_rerotate(rope, c2, 1, slots=[1, 1])
    assert e.value.status == _lib.ERR_CACHE_INDEX
    with pytest.raises(rotary.RotaryError) as e:
        rotary.kv_rerotate(rope, c2, 1, first=NB * BS - 1, count=2)
    assert e.value.status == _lib.ERR_CACHE_INDEX


def _check_rerotated(rope, k, kc, before, slots, pos, layout, what, eps_factor=1):
    ref, b32 = ref_rope(k.astype(np.float64), positions_2d(pos, *slots.shape), rope.inv_freq, rope.pairing,
                        rope.rotary_dim, rope.attention_scaling)
    named = np.zeros(kc.shape[:3], bool)
    for (b, s), slot in np.ndenumerate(slots):
        blk, row = divmod(int(slot), BS)
        # two roundings (write, re-rotate) of fp32 values of norm |k|: a few eps of the pair
        tol = 4 * eps_factor * b32[b, s] + 8 * EPS32 * np.abs(k[b, s]).max()
        assert_close(cache_view(kc, layout, blk, row), ref[b, s], tol, f"rerotate {what} {(b, s)}")
        if layout == "NHD":
            named[blk, row] = True
        else:
            named[blk, :, row] = True
    assert np.array_equal(kc[~named], before[~named]), f"rerotate {what}: other rows changed"


def test_rerotate_fp8_roundtrip(ropes):
    """An fp8 cache turned by +d then -d comes back within the fp8 rounding of its values."""
    rope = ropes["half"]
    rng = np.random.default_rng(10)
    kc = rng.integers(0, 0x70, size=(NB, BS, KH, D)).astype(np.uint8)  # finite values, both signs below
    kc[..., ::3] |= 0x80
    orig = kc.copy()
    cache = rotary.KVCache(kc, None, dtype="fp8_e4m3", k_scale=2.0)
    rotary.kv_rerotate(rope, cache, 11)
    assert not np.array_equal(kc, orig)
    rotary.kv_rerotate(rope, cache, -11)
    a, b = FP8[kc] * 2, FP8[orig] * 2
    # each element moves by at most two fp8 roundings of its pair's norm (the first one turned back)
    half = ROT // 2
    norm = np.sqrt(b[..., :half] ** 2 + b[..., half:ROT] ** 2)
    tol = np.concatenate([norm, norm], axis=-1) * 2.0 ** -4 * (np.sqrt(2) + 1) * 1.01 + 2 * 2.0 ** -9 * 2
    assert np.all(np.abs(a - b)[..., :ROT] <= tol)
    assert np.array_equal(kc[..., ROT:], orig[..., ROT:])  # the pass-through dims keep their bytes


# --- the ctypes structs against the C compiler ---------------------------------------------------------------------
C_LAYOUT = r"""
#include <stddef.h>
#include <stdio.h>
#include "rotary.h"
#define F(T, f) printf(#T " " #f " %zu\n", offsetof(T, f));
int main(void) {
  printf("rotary_kv_cache sizeof %zu\nrotary_kv_write_desc sizeof %zu\nrotary_kv_rerotate_desc sizeof %zu\n",
         sizeof(rotary_kv_cache), sizeof(rotary_kv_write_desc), sizeof(rotary_kv_rerotate_desc));
  %FIELDS%
  return 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_struct_layout_matches_c(tmp_path):
    """sizeof and every field offset of rotary_kv_cache, rotary_kv_write_desc and rotary_kv_rerotate_desc as the C
    compiler lays them out, against the ctypes mirrors."""
    structs = {"rotary_kv_cache": _lib.KVCache, "rotary_kv_write_desc": _lib.KVWriteDesc,
               "rotary_kv_rerotate_desc": _lib.KVRerotateDesc}
    fields = "".join(f"F({c}, {f})" for c, py in structs.items() for f, _ in py._fields_)
    src = tmp_path / "layout.c"
    src.write_text(C_LAYOUT.replace("%FIELDS%", fields))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-std=c11", "-I", os.path.join(ROOT, "include"), str(src), "-o", str(exe)], check=True)
    got = dict(((a, b), int(c)) for a, b, c in (ln.split() for ln in subprocess.check_output([str(exe)], text=True)
                                                .splitlines()))
    for c, py in structs.items():
        assert got[(c, "sizeof")] == ctypes.sizeof(py), c
        for f, _ in py._fields_:
            assert got[(c, f)] == getattr(py, f).offset, f"{c}.{f}"


def test_rerotate_without_attention_scaling():
    """Keys written by a rope with attention scaling 1.5 carry it; turning them by 7 gives the keys written at the
    later positions (the scaling is not applied twice)."""
    rope = rotary.RoPE(D, max_positions=64, attention_scaling=1.5)
    k = np.random.default_rng(12).standard_normal((1, 4, KH, D)).astype(np.float32)
    kc = np_cache("float32", "NHD")
    cache = rotary.KVCache(kc, np_cache("float32", "NHD"))
    rotary.kv_write(rope, None, k, k, cache, positions=3, slot_mapping=[0, 1, 2, 3])
    rotary.kv_rerotate(rope, cache, 7, first=0, count=4)
    ref, b32 = ref_rope(k.astype(np.float64), positions_2d(10, 1, 4), rope.inv_freq, scale=1.5)
    assert_close(kc[0], ref[0], 8 * b32[0] + 8 * EPS32 * np.abs(ref).max(), "rerotate, attention scaling 1.5")


def _unaligned(shape, dtype):
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.zeros(n + 1, np.uint8)[1:].view(dtype).reshape(shape)


def test_unaligned_arrays(ropes):
    """q, k, v and both caches one byte off their element alignment (NumPy views can be): the bits of aligned
    copies (librotary's convert and rotate kernels move elements at any byte address)."""
    rope = ropes["half"]
    q, k, v = inputs(np.random.default_rng(14))
    ix = {"slot_mapping": np.array([[0, 5, 9], [2, 17, 23]])}
    ua = [_unaligned(x.shape, x.dtype) for x in (q, k, v)]
    for dst, src in zip(ua, (q, k, v)):
        dst[:] = src
    kc, vc = _unaligned((NB, BS, KH, D), np.float16), _unaligned((NB, BS, KH, D), np.float16)
    assert not (kc.flags.aligned or ua[0].flags.aligned)
    rotary.kv_write(rope, ua[0], ua[1], ua[2], rotary.KVCache(kc, vc), positions=3, **ix)
    kc2, vc2 = np.zeros((NB, BS, KH, D), np.float16), np.zeros((NB, BS, KH, D), np.float16)
    q2 = q.copy()
    rotary.kv_write(rope, q2, k, v, rotary.KVCache(kc2, vc2), positions=3, **ix)
    assert np.array_equal(ua[0], q2) and np.array_equal(kc, kc2) and np.array_equal(vc, vc2)
    rotary.kv_rerotate(rope, rotary.KVCache(kc), 4, slots=ix["slot_mapping"].reshape(-1))
    rotary.kv_rerotate(rope, rotary.KVCache(kc2), 4, slots=ix["slot_mapping"].reshape(-1))
    assert np.array_equal(kc, kc2)
