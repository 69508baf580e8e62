"""test_streams_torch.py: multi-stream positions on torch tensors: the custom op against the NumPy path, stream ids
as slices of longer buffers, autograd (the backward is the inverse rotation), torch.compile(fullgraph=True), the
rope tensor of a multi-stream rope, kv_write with stream ids, errors; and cross-checks against transformers' own
code called on random tensors: Qwen2-VL's mRoPE sections (Qwen2VLRotaryEmbedding + apply_rotary_pos_emb), Qwen3-VL's
interleaved rule, the Qwen2-VL ViT (Qwen2VLVisionRotaryEmbedding + apply_rotary_pos_emb_vision) and Pixtral's
(PixtralVisionRotaryEmbedding).

Tolerance against transformers (HF_BOUND): HF rounds inv_freq and the angle id * inv_freq to fp32 (each a relative
2^-24, so the angle is off by up to |angle| * 2^-23) and takes fp32 cos/sin (2^-24); librotary's rows are the fp32
roundings of fp64 angles. Per element: |ours - HF| <= (|x_i| + |x_pair|) * (|angle| * 2^-22 + 2^-21), twice that
analysis, as the existing HF tests allow fp32 rounding of HF's inv_freq."""
import gc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import rotary  # noqa: E402
import rotary.ops  # noqa: E402
from rotary import _lib, _torchop  # noqa: E402


def rope_sections():
    return rotary.RoPE(64, base=1e6, max_positions=512, mrope_section=[8, 12, 12])


def image_ids(gen, n, shape, top=512):
    return torch.randint(0, top, (n,) + shape, generator=gen)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.mark.parametrize("layout, shape", [("bshd", (2, 7, 3, 64)), ("bhsd", (2, 3, 7, 64)), ("thd", (7, 3, 64))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_torch_equals_numpy(gen, layout, shape, dtype):
    rope = rope_sections()
    q = torch.randn(shape, generator=gen).to(dtype)
    k = torch.randn(shape, generator=gen).to(dtype)
    ids = image_ids(gen, 3, (7,) if layout == "thd" else (2, 7))
    oq, ok = rope.apply(q, k, positions=ids, layout=layout)
    nq, nk = rope.apply(q.numpy(), k.numpy(), positions=ids.numpy(), layout=layout)
    assert np.array_equal(oq.numpy(), nq) and np.array_equal(ok.numpy(), nk)
    # the op itself, int32 ids, and in place
    t = rotary.ops.rope_tensor(rope)
    o32, _ = torch.ops.rotary.rope(q, None, ids.to(torch.int32), 0, t, layout, False)
    assert torch.equal(o32, oq)
    qi = q.clone()
    rope.apply(qi, positions=ids, layout=layout, inplace=True)
    assert torch.equal(qi, oq)


def test_stream_slices_and_broadcast(gen):
    """vLLM keeps positions in a [3, max_tokens] buffer and passes [:, :n] (streams apart, no copy); Hugging Face
    vision ids are (tokens, 2) and go in as .T; [3, 1, seq] broadcasts over the batch."""
    rope = rope_sections()
    buf = image_ids(gen, 3, (64,))
    x = torch.randn(9, 2, 64, generator=gen)
    ref = rope.apply(x, positions=buf[:, :9].contiguous(), layout="thd")
    assert not buf[:, :9].is_contiguous()
    assert torch.equal(rope.apply(x, positions=buf[:, :9], layout="thd"), ref)
    assert torch.equal(rope.apply(x, positions=buf[:, :9].T.contiguous().T, layout="thd"), ref)
    xb = torch.randn(2, 9, 2, 64, generator=gen)
    one = buf[:, None, :9]
    assert torch.equal(rope.apply(xb, positions=one), rope.apply(xb, positions=one.expand(3, 2, 9).contiguous()))


def test_autograd_is_the_inverse(gen):
    rope = rotary.RoPE(64, max_positions=512, mrope_section=[16, 8, 8], mrope_interleaved=True)
    q = torch.randn(2, 5, 4, 64, generator=gen, requires_grad=True)
    k = torch.randn(2, 5, 2, 64, generator=gen, requires_grad=True)
    ids = image_ids(gen, 3, (2, 5))
    oq, ok = rope.apply(q, k, positions=ids)
    gq, gk = torch.randn_like(oq), torch.randn_like(ok)
    (oq * gq + 0).sum().add((ok * gk).sum()).backward()
    with torch.no_grad():
        want_q, want_k = rope.apply(gq, gk, positions=ids, inverse=True)
    assert torch.equal(q.grad, want_q) and torch.equal(k.grad, want_k)
    # the adjoint identity <R x, g> = <x, R^T g> in float64 (R^T = the inverse rotation)
    lhs = (oq.detach().double() * gq.double()).sum()
    rhs = (q.detach().double() * q.grad.double()).sum()
    assert abs(lhs - rhs) <= 1e-5 * (q.detach().abs() * gq.abs()).sum().double()


def test_compile_fullgraph(gen):
    rope = rope_sections()

    def f(q, k, ids):
        oq, ok = rope.apply(q, k, positions=ids, layout="bhsd")
        return oq * 2, ok

    q, k = torch.randn(1, 4, 6, 64, generator=gen), torch.randn(1, 2, 6, 64, generator=gen)
    ids = image_ids(gen, 3, (1, 6))
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    for a, b in zip(compiled(q, k, ids), f(q, k, ids)):
        assert torch.equal(a, b)
    qg = q.clone().requires_grad_()
    compiled(qg, k, ids)[0].sum().backward()
    with torch.no_grad():
        want = rope.apply(torch.full_like(q, 2.0), positions=ids, layout="bhsd", inverse=True)
    assert torch.equal(qg.grad, want)


def test_rope_tensor_carries_the_streams(gen):
    rope = rope_sections()
    t = rotary.ops.rope_tensor(rope)
    half = rope.rotary_dim // 2
    assert t.shape == (4 + 2 * half,) and t[2].item() == 0 + 2 * (3 - 1)
    assert np.array_equal(t[4 + half:].numpy(), rope.stream_map)
    assert rotary.ops.rope_tensor(rotary.RoPE(64)).shape == (4 + 32,)  # one stream: as before issue 12
    rebuilt = _torchop._build(t.numpy())  # what a program loaded in another process does
    assert rebuilt.n_streams == 3 and np.array_equal(rebuilt.stream_map, rope.stream_map)
    x, ids = torch.randn(3, 5, 2, 64, generator=gen), image_ids(gen, 3, (3, 5))
    assert torch.equal(rebuilt.apply(x, positions=ids), rope.apply(x, positions=ids))
    vis = rotary.RoPE.vision_2d(64, style="pixtral", max_positions=64)
    rv = _torchop._build(rotary.ops.rope_tensor(vis).numpy())
    xv, iv = torch.randn(8, 2, 64, generator=gen), image_ids(gen, 2, (8,), top=64)
    assert torch.equal(rv.apply(xv, positions=iv, layout="thd"), vis.apply(xv, positions=iv, layout="thd"))
    bad = t.clone()
    bad[-1] = 3.0  # a stream the rope does not have
    with pytest.raises(ValueError, match="stream map"):
        _torchop._build(bad.numpy())


def test_kv_write_with_stream_ids(gen):
    rope = rope_sections()
    q, k, v = (torch.randn(6, h, 64, generator=gen) for h in (4, 2, 2))
    ids = image_ids(gen, 3, (6,))
    cache = rotary.KVCache(torch.zeros(2, 4, 2, 64), torch.zeros(2, 4, 2, 64))
    slots = torch.tensor([0, 1, 2, 5, 6, 7])
    q_ref, k_ref = rope.apply(q, k, positions=ids, layout="thd")
    rotary.kv_write(rope, q, k, v, cache, ids, slot_mapping=slots, layout="thd")
    assert torch.equal(q, q_ref)
    assert torch.equal(cache.k.reshape(8, 2, 64)[slots], k_ref)
    assert torch.equal(cache.v.reshape(8, 2, 64)[slots], v)


def test_torch_errors(gen):
    rope = rope_sections()
    q = torch.randn(2, 5, 2, 64, generator=gen)
    q0 = q.clone()
    ids = image_ids(gen, 3, (2, 5))
    with pytest.raises(rotary.RotaryError, match="4 streams of ids, the rope has 3") as e:
        rope.apply(q, positions=torch.cat([ids, ids[:1]]), inplace=True)
    assert e.value.status == _lib.ERR_STREAMS
    with pytest.raises(ValueError, match="stream ids of shape"):
        rope.apply(q, positions=ids[:, :, :3], inplace=True)
    with pytest.raises(TypeError, match="int32 or int64"):
        rope.apply(q, positions=ids.float(), inplace=True)
    with pytest.raises(ValueError, match="do not match"):
        rope.apply(q, positions=ids[None], inplace=True)
    bad = ids.clone()
    bad[1, 0, 0] = 512
    with pytest.raises(rotary.RotaryError, match="ids in"):
        rope.apply(q, positions=bad, inplace=True)
    assert torch.equal(q, q0)
    with pytest.raises(rotary.RotaryError, match="the rope has 1"):
        rotary.RoPE(64).apply(q, positions=ids)


# --- transformers' own code ---------------------------------------------------------------------------------------
def hf_bound(x, angle, pairing_half=True):
    """HF_BOUND of the module docstring; x (..., d) float64, angle broadcastable to (..., d/2)."""
    half = x.shape[-1] // 2
    pair = np.abs(x[..., :half]) + np.abs(x[..., half:])
    b = pair * (np.abs(angle) * 2.0 ** -22 + 2.0 ** -21)
    return np.concatenate([b, b], axis=-1)


def angles(rope, ids):
    """(tokens..., half) float64 angles: id of each frequency's stream times its inverse frequency."""
    ids = np.asarray(ids, dtype=np.float64)
    return np.moveaxis(ids[rope.stream_map], 0, -1) * rope.inv_freq


def assert_hf_close(ours, theirs, bound, what):
    err = np.abs(ours.detach().double().numpy() - theirs.detach().double().numpy())
    assert np.all(err <= bound), f"{what}: worst {np.max(err - bound):.3g} over the bound"


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("transformers")


@pytest.mark.parametrize("interleaved", [False, True])
def test_hf_qwen_vl_text(gen, tf, interleaved):
    if interleaved:
        from transformers.models.qwen3_vl import modeling_qwen3_vl as m
        cfg = tf.Qwen3VLTextConfig(hidden_size=256, num_attention_heads=2, num_key_value_heads=1, head_dim=128,
                                   num_hidden_layers=2, rope_parameters={
                                       "rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                                       "mrope_interleaved": True})
        emb = m.Qwen3VLTextRotaryEmbedding(cfg)
    else:
        from transformers.models.qwen2_vl import modeling_qwen2_vl as m
        cfg = tf.Qwen2VLTextConfig(hidden_size=256, num_attention_heads=2, num_key_value_heads=1,
                                   num_hidden_layers=2, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24],
                                                                      "rope_theta": 1e6})
        emb = m.Qwen2VLRotaryEmbedding(cfg)
    rope = rotary.RoPE.from_hf_config(cfg, max_positions=2048)
    assert rope.n_streams == 3 and rope.head_dim == 128
    sections = cfg.rope_parameters["mrope_section"]
    explicit = rotary.RoPE(128, base=cfg.rope_parameters["rope_theta"], max_positions=2048, mrope_section=sections,
                           mrope_interleaved=interleaved)
    assert np.array_equal(rope.stream_map, explicit.stream_map)
    np.testing.assert_allclose(rope.inv_freq, emb.inv_freq.double().numpy(), rtol=2e-7, atol=0)
    q, k = torch.randn(2, 2, 11, 128, generator=gen), torch.randn(2, 1, 11, 128, generator=gen)
    ids = image_ids(gen, 3, (2, 11), top=2048)
    cos, sin = emb(q, ids)
    hq, hk = m.apply_rotary_pos_emb(q, k, cos, sin)
    oq, ok = rope.apply(q, k, positions=ids, layout="bhsd")
    ang = angles(rope, ids.numpy())[:, None]  # (batch, 1, seq, half)
    assert_hf_close(oq, hq, hf_bound(q.double().numpy(), ang), "q")
    assert_hf_close(ok, hk, hf_bound(k.double().numpy(), ang), "k")


@pytest.mark.parametrize("style", ["qwen2_vl", "pixtral"])
def test_hf_vision(gen, tf, style):
    n = 30
    hw = torch.stack(torch.meshgrid(torch.arange(5), torch.arange(6), indexing="ij"), -1).reshape(n, 2)
    hw = hw[torch.randperm(n, generator=gen)]  # HF's vision position_ids: (tokens, 2) rows of (h, w)
    if style == "qwen2_vl":
        from transformers.models.qwen2_vl import modeling_qwen2_vl as m
        emb = m.Qwen2VLVisionRotaryEmbedding(tf.Qwen2VLVisionConfig(embed_dim=160, num_heads=2))
        d = 80
        q, k = torch.randn(n, 2, d, generator=gen), torch.randn(n, 2, d, generator=gen)
        cos, sin = emb(q, hw)
        hq, hk = m.apply_rotary_pos_emb_vision(q, k, cos, sin)
        layout, ids = "thd", hw.T
    else:
        from transformers.models.pixtral import modeling_pixtral as m
        emb = m.PixtralVisionRotaryEmbedding(tf.PixtralVisionConfig(hidden_size=128, num_attention_heads=2,
                                                                    head_dim=64))
        d = 64
        q, k = torch.randn(1, 2, n, d, generator=gen), torch.randn(1, 2, n, d, generator=gen)
        cos, sin = emb(q, hw)
        hq, hk = m.apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=0)
        layout, ids = "bhsd", hw.T[:, None, :]
    rope = rotary.RoPE.vision_2d(d, base=10000.0, style=style, max_positions=64)
    oq, ok = rope.apply(q, k, positions=ids, layout=layout)
    ang = angles(rope, hw.T.numpy())  # (tokens, half)
    ang = ang[:, None] if layout == "thd" else ang[None, None]
    assert_hf_close(oq, hq, hf_bound(q.double().numpy(), ang), f"{style} q")
    assert_hf_close(ok, hk, hf_bound(k.double().numpy(), ang), f"{style} k")


def _export_program(path, gen):
    rope = rotary.RoPE(64, base=1e6, max_positions=512, mrope_section=[16, 8, 8], mrope_interleaved=True)

    class M(torch.nn.Module):
        def forward(self, q, k, ids):
            return rope.apply(q, k, positions=ids, layout="bhsd")

    q, k = torch.randn(1, 4, 6, 64, generator=gen), torch.randn(1, 2, 6, 64, generator=gen)
    ids = image_ids(gen, 3, (1, 6))
    want = M()(q, k, ids)
    torch.export.save(torch.export.export(M(), (q, k, ids), strict=False), path)
    return (q, k, ids), want, rotary.ops.rope_tensor(rope).numpy().tobytes()


def test_export_save_load(gen, tmp_path):
    """A program exported with a multi-stream rope carries its stream map in the rope tensor: saved, and loaded
    once the rope no longer exists, it rebuilds the rope from that tensor and gives the same bits."""
    args, want, key = _export_program(tmp_path / "m.pt2", gen)
    gc.collect()
    assert key not in _torchop._live  # the rope is gone: loading must rebuild it, stream map included
    loaded = torch.export.load(tmp_path / "m.pt2").module()
    for a, b in zip(loaded(*args), want):
        assert torch.equal(a, b)
    assert _torchop._live[key].n_streams == 3
