"""test_vllm_mrope.py: rotary.vllm.MRotaryEmbedding / mrotary_embedding against a float64 reference of vLLM's
MRotaryEmbedding.forward_native semantics written here (cos/sin rows per stream, then vLLM's section pick: contiguous
mrope_section chunks, or the interleaved T/H/W rule; NeoX or GPT-J pairs; the rotary_dim head prefix rotated, the
rest passed through). Tolerances: conftest.py's."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import rotary  # noqa: E402
from rotary import vllm  # noqa: E402
from conftest import EPS32, assert_close, tolerance  # noqa: E402


def vllm_reference(positions, x, head_size, rotary_dim, base, is_neox, sections, interleaved):
    """x: [tokens, heads * head_size] float64. Returns (out, fp32 bound)."""
    half = rotary_dim // 2
    inv = base ** (-np.arange(0, rotary_dim, 2, dtype=np.float64) / rotary_dim)
    pos = np.asarray(positions, dtype=np.float64)
    ang = pos[..., None] * inv  # [3, T, half] or [T, half]
    if pos.ndim == 2:
        if interleaved:
            ch = np.arange(half)
            pick = np.where((ch % 3 == 1) & (ch < 3 * sections[1]), 1, 0)
            pick = np.where((ch % 3 == 2) & (ch < 3 * sections[2]), 2, pick)
        else:
            pick = np.repeat(np.arange(len(sections)), sections)
        ang = ang[pick, :, np.arange(half)].T  # [T, half]
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    t = x.reshape(x.shape[0], -1, head_size)
    out, bound = t.copy(), np.zeros_like(t)
    if is_neox:
        a, b = t[..., :half], t[..., half:rotary_dim]
        out[..., :half], out[..., half:rotary_dim] = a * c - b * s, b * c + a * s
        bound[..., :half] = bound[..., half:rotary_dim] = np.abs(a * c) + np.abs(b * s) + np.abs(b * c) + np.abs(a * s)
    else:
        a, b = t[..., 0:rotary_dim:2], t[..., 1:rotary_dim:2]
        out[..., 0:rotary_dim:2], out[..., 1:rotary_dim:2] = a * c - b * s, b * c + a * s
        bound[..., 0:rotary_dim:2] = bound[..., 1:rotary_dim:2] = (np.abs(a * c) + np.abs(b * s) + np.abs(b * c)
                                                                   + np.abs(a * s))
    return out.reshape(x.shape), (4 * EPS32 * bound + 2.0 ** -126).reshape(x.shape)


CASES = {  # head_size, rotary_dim, base, is_neox, sections, interleaved
    "qwen2_vl": (128, 128, 1e6, True, [16, 24, 24], False),
    "qwen3_vl": (128, 128, 5e6, True, [24, 20, 20], True),
    "partial_gptj": (96, 64, 1e4, False, [8, 12, 12], False),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_forward_matches_vllm_semantics(case, dtype):
    hs, rd, base, neox, sections, inter = CASES[case]
    g = torch.Generator().manual_seed(7)
    emb = vllm.MRotaryEmbedding(hs, rd, 1024, base, neox, dtype, mrope_section=sections, mrope_interleaved=inter)
    assert emb.rope.max_positions == 4096 and emb.rope.n_streams == 3
    n = 13
    query = torch.randn(n, 4 * hs, generator=g).to(dtype)
    key = torch.randn(n, 2 * hs, generator=g).to(dtype)
    q0, k0 = query.clone(), key.clone()
    for positions in (torch.randint(0, 4096, (3, n), generator=g), torch.arange(n) + 4000):
        oq, ok = emb.forward(positions, query, key)
        assert oq.shape == query.shape and ok.shape == key.shape and oq.dtype == dtype
        assert torch.equal(query, q0) and torch.equal(key, k0)  # out of place, as forward_native
        name = str(dtype).split(".")[-1]
        for got, x in ((oq, q0), (ok, k0)):
            ref, b32 = vllm_reference(positions.numpy(), x.double().numpy(), hs, rd, base, neox, sections, inter)
            assert_close(got.double().numpy(), ref, tolerance(name, ref, b32), f"{case} {name} {positions.dim()}-D")
            if rd < hs:  # pass-through dims untouched
                t, t0 = got.reshape(n, -1, hs), x.reshape(n, -1, hs)
                assert torch.equal(t[..., rd:], t0[..., rd:])


def test_text_positions_equal_plain_rope():
    emb = vllm.MRotaryEmbedding(64, 64, 512, 1e4, True, torch.float32, mrope_section=[8, 12, 12])
    plain = rotary.RoPE(64, max_positions=2048)
    g = torch.Generator().manual_seed(3)
    query, key = torch.randn(9, 3 * 64, generator=g), torch.randn(9, 64, generator=g)
    pos = torch.randint(0, 2048, (9,), generator=g)
    oq, ok = emb(pos, query, key)
    pq, pk = plain.apply(query.view(9, 3, 64), key.view(9, 1, 64), positions=pos, layout="thd")
    assert torch.equal(oq, pq.reshape(9, -1)) and torch.equal(ok, pk.reshape(9, -1))
    assert torch.equal(emb(pos.expand(3, 9), query, key)[0], oq)  # equal streams: the same bits


def test_key_none_3d_and_in_place():
    rope = rotary.RoPE(64, max_positions=512, mrope_section=[16, 8, 8], mrope_interleaved=True)
    g = torch.Generator().manual_seed(5)
    query = torch.randn(6, 2, 64, generator=g)
    pos = torch.randint(0, 512, (3, 6), generator=g)
    oq, ok = vllm.mrotary_embedding(rope, pos, query)
    assert ok is None and oq.shape == (6, 2, 64)
    assert torch.equal(oq, rope.apply(query, positions=pos, layout="thd"))
    flat = query.reshape(6, 128).clone()
    rq, _ = vllm.mrotary_embedding(rope, pos, flat, inplace=True)
    assert rq is flat and torch.equal(flat, oq.reshape(6, 128))


def test_errors():
    with pytest.raises(ValueError, match="does not sum"):
        vllm.MRotaryEmbedding(64, 64, 512, 1e4, True, torch.float32, mrope_section=[8, 8, 8])
    plain = vllm.MRotaryEmbedding(64, 64, 512, 1e4, True, torch.float32)
    q = torch.randn(4, 64)
    with pytest.raises(ValueError, match="needs mrope_section"):
        plain(torch.zeros(3, 4, dtype=torch.int64), q, q)
    emb = vllm.MRotaryEmbedding(64, 64, 512, 1e4, True, torch.float32, mrope_section=[8, 12, 12])
    with pytest.raises(ValueError, match="num_tokens"):
        emb(torch.zeros(3, 1, 4, dtype=torch.int64), q, q)
    with pytest.raises(rotary.RotaryError, match="2 streams of ids, the rope has 3"):
        emb(torch.zeros(2, 4, dtype=torch.int64), q, q)
    with pytest.raises(rotary.RotaryError, match="ids in"):
        emb(torch.full((3, 4), 2048), q, q)
