"""test_kv_torch.py: the KV-cache operations on torch CPU tensors (torch.ops.rotary.kv_write_ / kv_rerotate_):
values against the float64 reference of test_kv_ops for every index and cache dtype (fp8 as torch.uint8 and
torch.float8_e4m3fn), caches mutated in place (same storage, version bumped), errors leave them unchanged,
torch.compile(fullgraph=True) gives the eager bits, opcheck, and rotary.vllm.rotary_embedding_and_cache on
vLLM-shaped tensors against a small reference written from vLLM's documented semantics."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import rotary  # noqa: E402
import rotary.vllm  # noqa: E402
from rotary import _lib  # noqa: E402
from test_kv_ops import (BS, D, KH, NB, QH, ROT, SENTINEL, FP8, check_write, index_args)  # noqa: E402

CACHE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "fp8_e4m3": torch.uint8,
                "float8_e4m3fn": torch.float8_e4m3fn}


@pytest.fixture(scope="module")
def rope():
    return rotary.RoPE(D, rotary_dim=ROT, max_positions=64)


def t_cache(dtype, layout="NHD"):
    shape = (NB, BS, KH, D) if layout == "NHD" else (NB, KH, BS, D)
    td = CACHE_DTYPES[dtype]
    if td in (torch.uint8, torch.float8_e4m3fn):
        return torch.full(shape, SENTINEL, dtype=torch.uint8).view(td)
    return torch.full(shape, 0.3, dtype=td)


def t_inputs(seed, dtype=torch.float32, batch=2, seq=3):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, seq, QH, D, generator=g).to(dtype)
    k = (torch.randn(batch, seq, KH, D, generator=g) * 40).to(dtype)
    v = (torch.randn(batch, seq, KH, D, generator=g) * 3).to(dtype)
    return q, k, v


def np64(t):
    """A tensor as NumPy (fp8 as its bytes, others float64)."""
    if t.dtype in (torch.uint8, torch.float8_e4m3fn):
        return t.view(torch.uint8).numpy().copy()
    return t.to(torch.float64).numpy()


@pytest.mark.parametrize("index", ["slots", "sequences", "pages"])
@pytest.mark.parametrize("dtype", list(CACHE_DTYPES))
def test_torch_write_matches_reference(rope, index, dtype):
    layout = "HND" if dtype in ("bfloat16", "fp8_e4m3") else "NHD"
    rng = np.random.default_rng(hash((index, dtype)) % 2 ** 32)
    q, k, v = t_inputs(1, torch.bfloat16 if dtype == "float32" else torch.float32)
    ix = {n: torch.from_numpy(a) for n, a in index_args(index, 2, 3, rng).items()}
    ids = torch.from_numpy(rng.integers(0, 60, size=(2, 3)))
    kc, vc = t_cache(dtype, layout), t_cache(dtype, layout)
    kc0, vc0, q0 = np64(kc), np64(vc), np64(q)
    ptrs = (kc.data_ptr(), vc.data_ptr(), q.data_ptr())
    vers = (kc._version, vc._version, q._version)
    scales = (0.5, 0.125) if "8" in dtype else (1.0, 1.0)
    cache = rotary.KVCache(kc, vc, layout=layout, dtype="fp8_e4m3" if dtype == "fp8_e4m3" else "auto",
                           k_scale=scales[0], v_scale=scales[1])
    assert rotary.kv_write(rope, q, k, v, cache, positions=ids, **ix) is q
    assert (kc.data_ptr(), vc.data_ptr(), q.data_ptr()) == ptrs
    assert all(a > b for a, b in zip((kc._version, vc._version, q._version), vers))
    cdt = "fp8_e4m3" if "8" in dtype else dtype
    check_write(rope, q0, np64(k), np64(v), np64(q), kc0, vc0, np64(kc), np64(vc), ids.numpy(), index, layout, cdt,
                {n: a.numpy() for n, a in ix.items()}, *scales, what=f"torch {index} {dtype}",
                in_dtype="bfloat16" if q.dtype == torch.bfloat16 else "float32")


def test_torch_errors_leave_caches_unchanged(rope):
    q, k, v = t_inputs(2)
    kc, vc = t_cache("fp8_e4m3"), t_cache("fp8_e4m3")
    before = (kc.clone(), vc.clone(), q.clone())
    with pytest.raises(rotary.RotaryError, match=_lib.status_string(_lib.ERR_SCALE)) as e:
        rotary.kv_write(rope, q, k, v, rotary.KVCache(kc, vc, dtype="fp8", k_scale=0.0),
                        slot_mapping=torch.arange(6))
    assert e.value.status == _lib.ERR_SCALE
    with pytest.raises(rotary.RotaryError, match=_lib.status_string(_lib.ERR_CACHE_INDEX)):
        rotary.kv_write(rope, q, k, v, rotary.KVCache(kc, vc, dtype="fp8"),
                        slot_mapping=torch.tensor([0, 1, 2, 3, 4, 4]))
    for a, b in zip((kc, vc, q), before):
        assert torch.equal(a.view(torch.uint8) if a.dtype == torch.uint8 else a, b)
    with torch.inference_mode():
        ki = t_cache("float32")
    with pytest.raises(ValueError, match="inference tensor"):
        rotary.KVCache(ki, ki.clone())
    with pytest.raises(RuntimeError, match="not differentiable"):
        rotary.kv_write(rope, q.clone().requires_grad_(), k, v, rotary.KVCache(t_cache("float32"),
                                                                                t_cache("float32")),
                        slot_mapping=torch.arange(6))


def _step(rope, q, k, v, kc, vc, slots, pos):
    rotary.kv_write(rope, q, k, v, rotary.KVCache(kc, vc), positions=pos, slot_mapping=slots)
    return q * 1.0


def test_compile_fullgraph_matches_eager(rope):
    """torch.compile(fullgraph=True) of a function that writes a cache (and one that re-rotates it): the caches are
    mutated in place with the bits of the eager call."""
    torch._dynamo.reset()
    q, k, v = t_inputs(3, torch.bfloat16)
    slots = torch.tensor([[0, 5, -1], [9, 2, 11]])
    pos = torch.tensor([[3, 4, 5], [7, 8, 9]])
    kv = torch.full((NB, 2, BS, KH, D), 0.3, dtype=torch.bfloat16)  # combined: two mutated views of one buffer
    ke, ve = t_cache("bfloat16"), t_cache("bfloat16")
    qe = q.clone()
    out_e = _step(rope, qe, k, v, ke, ve, slots, pos)

    def step_combined(q, k, v, kv, slots, pos):
        rotary.kv_write(rope, q, k, v, rotary.KVCache.combined(kv), positions=pos, slot_mapping=slots)
        rotary.kv_rerotate(rope, rotary.KVCache(kv[:, 0]), 2, slots=slots.reshape(-1))
        return q * 1.0

    qc = q.clone()
    out_c = torch.compile(step_combined, fullgraph=True, backend="aot_eager")(qc, k, v, kv, slots, pos)
    rotary.kv_rerotate(rope, rotary.KVCache(ke), 2, slots=slots.reshape(-1))
    assert torch.equal(out_c, out_e) and torch.equal(qc, qe)
    assert torch.equal(kv[:, 0], ke) and torch.equal(kv[:, 1], ve)
    # Inductor, separate fp8 caches
    kc8, vc8 = t_cache("float8_e4m3fn"), t_cache("float8_e4m3fn")
    ke8, ve8 = t_cache("float8_e4m3fn"), t_cache("float8_e4m3fn")
    qi, qe2 = q.clone(), q.clone()
    _step(rope, qe2, k, v, ke8, ve8, slots, pos)
    torch.compile(_step, fullgraph=True)(rope, qi, k, v, kc8, vc8, slots, pos)
    assert torch.equal(qi, qe2)
    assert torch.equal(kc8.view(torch.uint8), ke8.view(torch.uint8))
    assert torch.equal(vc8.view(torch.uint8), ve8.view(torch.uint8))


def test_opcheck(rope):
    from rotary import ops
    q, k, v = t_inputs(4)
    args = (q, k, v, t_cache("float32"), t_cache("float32"), None, None, 2, None, None, ops.rope_tensor(rope),
            "bshd", "NHD", "auto", None, torch.arange(6), None, None, None, 1.0, 1.0)
    torch.library.opcheck(torch.ops.rotary.kv_write_.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
    torch.library.opcheck(torch.ops.rotary.kv_rerotate_.default,
                          (t_cache("float32"), None, 0, 8, 3, ops.rope_tensor(rope), "NHD", "auto", 1.0),
                          test_utils=("test_schema", "test_faketensor"))


# --- the vLLM-shaped helper -------------------------------------------------------------------------------------------
def vllm_reference(positions, query, key, value, key_cache, value_cache, slot_mapping, head_size, cos_sin_cache,
                   is_neox, kv_cache_dtype, k_scale, v_scale):
    """What vLLM's rotary_embedding + reshape_and_cache_flash do, written from their documentation in float64:
    query/key [T, heads * head_size] rotated by cos_sin_cache[positions] (cos half, sin half; NeoX pairs i and
    i + rot/2, GPT-J pairs 2i and 2i + 1), then key_cache[slot // block_size, slot % block_size] = key[token] for
    slot >= 0 (fp8: key / k_scale as e4m3). Returns (query, key_cache, value_cache) as float64 NumPy (caches
    decoded)."""
    T = query.shape[0]
    cs = cos_sin_cache.to(torch.float64)[positions]
    rot = cs.shape[1]
    cos, sin = cs[:, None, :rot // 2], cs[:, None, rot // 2:]

    def rotate(x):
        x = x.to(torch.float64).reshape(T, -1, head_size).clone()
        if is_neox:
            x1, x2 = x[..., :rot // 2].clone(), x[..., rot // 2:rot].clone()
            x[..., :rot // 2], x[..., rot // 2:rot] = x1 * cos - x2 * sin, x2 * cos + x1 * sin
        else:
            x1, x2 = x[..., 0:rot:2].clone(), x[..., 1:rot:2].clone()
            x[..., 0:rot:2], x[..., 1:rot:2] = x1 * cos - x2 * sin, x2 * cos + x1 * sin
        return x

    q, k = rotate(query), rotate(key)
    vv = value.to(torch.float64).reshape(T, -1, head_size)
    kc, vc = key_cache.to(torch.float64).clone(), value_cache.to(torch.float64).clone()
    if kv_cache_dtype != "auto":
        kc = torch.from_numpy(FP8[key_cache.view(torch.uint8).numpy()] * k_scale)
        vc = torch.from_numpy(FP8[value_cache.view(torch.uint8).numpy()] * v_scale)
    bs = key_cache.shape[1]
    for i, s in enumerate(slot_mapping.tolist()):
        if s >= 0:
            kc[s // bs, s % bs], vc[s // bs, s % bs] = k[i], vv[i]
    return q.numpy(), kc.numpy(), vc.numpy()


@pytest.mark.parametrize("kv_cache_dtype", ["auto", "fp8"])
@pytest.mark.parametrize("is_neox", [True, False])
def test_vllm_helper(kv_cache_dtype, is_neox):
    T, H, KVH, HS, NBL, BL = 7, 4, 2, 64, 5, 16
    rope = rotary.RoPE(HS, pairing="half" if is_neox else "interleaved", max_positions=512)
    cos, sin = rope.cos_sin(np.arange(512))
    cos_sin_cache = torch.from_numpy(np.concatenate([cos, sin], axis=1))  # vLLM's [max_position, rotary_dim]
    g = torch.Generator().manual_seed(5)
    qkv = torch.randn(T, (H + 2 * KVH) * HS, generator=g, dtype=torch.float32).to(torch.bfloat16)
    query, key, value = qkv.split([H * HS, KVH * HS, KVH * HS], dim=-1)  # views with the packed row stride
    positions = torch.tensor([0, 1, 2, 100, 101, 300, 301])
    slot_mapping = torch.tensor([3, 4, 17, -1, 40, 41])  # one padding slot; the last token has none at all
    cache_dtype = torch.uint8 if kv_cache_dtype == "fp8" else torch.bfloat16
    key_cache = torch.zeros(NBL, BL, KVH, HS, dtype=cache_dtype)
    value_cache = torch.zeros_like(key_cache)
    k_scale, v_scale = torch.tensor([0.05]), 0.02  # vLLM passes scale tensors; floats work too
    q0, key0, kc0, vc0 = query.clone(), key.clone(), key_cache.clone(), value_cache.clone()
    rotary.vllm.rotary_embedding_and_cache(positions, query, key, value, key_cache, value_cache, slot_mapping, HS,
                                           cos_sin_cache, is_neox, kv_cache_dtype, k_scale, v_scale)
    assert torch.equal(key, key0)  # key is read, not rotated in place (documented)
    qr, kr, vr = vllm_reference(positions, q0, key0, value, kc0, vc0, slot_mapping, HS, cos_sin_cache, is_neox,
                                kv_cache_dtype, 0.05, 0.02)
    got_q = query.to(torch.float64).numpy().reshape(T, H, HS)
    assert np.all(np.abs(got_q - qr) <= 2.0 ** -8 * np.abs(qr) * 1.001 + 1e-6)
    if kv_cache_dtype == "fp8":
        kd, vd = FP8[key_cache.numpy()] * 0.05, FP8[value_cache.numpy()] * 0.02
        ktol, vtol = 2.0 ** -4 * np.abs(kr) * 1.001 + 1e-6 + 2.0 ** -10 * 0.05, 2.0 ** -4 * np.abs(vr) + 2.0 ** -10 * 0.02
    else:
        kd, vd = key_cache.to(torch.float64).numpy(), value_cache.to(torch.float64).numpy()
        ktol, vtol = 2.0 ** -8 * np.abs(kr) * 1.001 + 1e-6, 0 * vr
    assert np.all(np.abs(kd - kr) <= ktol) and np.all(np.abs(vd - vr) <= vtol)
    # with the rope itself instead of a cos_sin_cache: the same bits (the cache above holds the rope's own cos/sin)
    query2, kc2, vc2 = q0.clone(), torch.zeros_like(kc0), torch.zeros_like(vc0)
    rotary.vllm.rotary_embedding_and_cache(positions, query2, key0, value, kc2, vc2, slot_mapping, HS, rope,
                                           is_neox, kv_cache_dtype, 0.05, 0.02)
    assert torch.equal(query2, query) and torch.equal(kc2, key_cache) and torch.equal(vc2, value_cache)


def test_vllm_helper_compiles():
    rope = rotary.RoPE(64, max_positions=128)
    cos, sin = rope.cos_sin(np.arange(128))
    csc = torch.from_numpy(np.concatenate([cos, sin], axis=1))
    query, key, value = torch.randn(5, 2 * 64), torch.randn(5, 64), torch.randn(5, 64)
    kc, vc = torch.zeros(4, 8, 1, 64), torch.zeros(4, 8, 1, 64)
    pos, slots = torch.arange(5), torch.tensor([0, 1, 2, 9, 31])

    def f(pos, q, k, v, kc, vc, slots):
        rotary.vllm.rotary_embedding_and_cache(pos, q, k, v, kc, vc, slots, 64, csc, True, "auto", 1.0, 1.0)
        return q + 0

    q1, kc1, vc1 = query.clone(), kc.clone(), vc.clone()
    f(pos, q1, key, value, kc1, vc1, slots)
    torch._dynamo.reset()
    q2 = query.clone()
    torch.compile(f, fullgraph=True, backend="aot_eager")(pos, q2, key, value, kc, vc, slots)
    assert torch.equal(q1, q2) and torch.equal(kc1, kc) and torch.equal(vc1, vc)


def test_packed_qkv_torch_eager_and_compiled(rope):
    """kv_write_qkv on a torch GEMM output: q rotated in place inside the buffer (a mutated view beside the k and v
    views it reads), eagerly and under torch.compile(fullgraph=True), with the bits of the separate form."""
    row = (QH + 2 * KH) * D
    g = torch.Generator().manual_seed(6)
    qkv = torch.randn(2, 3, row, generator=g)
    q, k, v = qkv[..., :QH * D].unflatten(-1, (QH, D)).clone(), qkv[..., QH * D:(QH + KH) * D].unflatten(
        -1, (KH, D)), qkv[..., (QH + KH) * D:].unflatten(-1, (KH, D))
    kc, vc = t_cache("float32"), t_cache("float32")
    slots = torch.tensor([[1, 2, 3], [7, 6, 5]])
    rotary.kv_write(rope, q, k, v, rotary.KVCache(kc, vc), positions=4, slot_mapping=slots)

    def f(qkv, kc, vc, slots):
        return rotary.kv_write_qkv(rope, qkv, rotary.KVCache(kc, vc), QH, positions=4, slot_mapping=slots) * 1

    for run in (f, torch.compile(f, fullgraph=True, backend="aot_eager")):
        buf, kc2, vc2 = qkv.clone(), t_cache("float32"), t_cache("float32")
        out = run(buf, kc2, vc2, slots)
        assert torch.equal(out, q) and torch.equal(buf[..., :QH * D].unflatten(-1, (QH, D)), q)
        assert torch.equal(buf[..., QH * D:], qkv[..., QH * D:])
        assert torch.equal(kc2, kc) and torch.equal(vc2, vc)
