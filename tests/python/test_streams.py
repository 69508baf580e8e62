"""test_streams.py: multi-stream positions (mRoPE sections, interleaved, 2-D vision, random maps) on NumPy arrays
against a float64 reference written here (angle of frequency i from the id of its stream, cos/sin, rotation), the
1-D path when the streams agree, cos_sin rows of stream ids, per-layer ropes of a Hugging Face config, and errors.
Tolerances: conftest.py's (librotary's rows are the exact fp32 roundings of fp64 angles)."""
import numpy as np
import pytest

import rotary
from rotary import _lib
from conftest import EPS32, assert_close, tolerance

LAYOUT_SHAPES = {"bshd": (2, 9, 3, 64), "bhsd": (2, 3, 9, 64), "thd": (9, 3, 64)}


# --- the reference -----------------------------------------------------------------------------------------------
def ref_map(half, layout, sections=None):
    """The stream of each frequency, from the rules in Hugging Face's and vLLM's code (not librotary's)."""
    if layout == "sections":
        return np.repeat(np.arange(len(sections)), sections)
    if layout == "interleaved":  # Qwen3-VL: i % n == j > 0 and i < n * sections[j], else stream 0
        n = len(sections)
        m = np.zeros(half, dtype=np.int64)
        for j in range(1, n):
            idx = np.arange(j, n * sections[j], n)
            m[idx] = j
        return m
    return np.repeat([0, 1], [half // 2, half - half // 2])  # vision: rows then columns


def ref_inv_freq(head_dim, base, style=None):
    """float64 inverse frequencies: the text rope's base^(-2i/d); the vision ropes' per Hugging Face's ViTs."""
    half = head_dim // 2
    if style is None:
        return base ** (-2.0 * np.arange(half) / head_dim)
    q = np.arange(half // 2)
    row = base ** (-4.0 * q / head_dim)
    col = row if style == "qwen2_vl" else base ** (-(4.0 * q + 2) / head_dim)
    return np.concatenate([row, col])


def ref_streams(x, ids, inv_freq, stream_map, pairing, rotary_dim, scale=1.0, inverse=False):
    """x: float64 (batch, seq, heads, head_dim); ids: (n_streams, batch, seq). Returns (out, fp32 bound) as
    conftest.ref_rope."""
    half = rotary_dim // 2
    pos = np.asarray(ids, dtype=np.float64)[np.asarray(stream_map), :, :]  # (half, batch, seq)
    ang = np.moveaxis(pos, 0, -1) * np.asarray(inv_freq, dtype=np.float64)  # (batch, seq, half)
    c = (np.cos(ang) * scale)[:, :, None, :]
    s = (np.sin(ang) * scale)[:, :, None, :] * (-1.0 if inverse else 1.0)
    out = x.copy()
    xr = x[..., :rotary_dim]
    if pairing == "half":
        x0, x1 = xr[..., :half], xr[..., half:]
        out[..., :half], out[..., half:rotary_dim] = x0 * c - x1 * s, x1 * c + x0 * s
        b = np.abs(x0 * c) + np.abs(x1 * s)
        b2 = np.abs(x1 * c) + np.abs(x0 * s)
        bound = np.zeros_like(x)
        bound[..., :half], bound[..., half:rotary_dim] = b, b2
    else:
        x0, x1 = xr[..., 0::2], xr[..., 1::2]
        out[..., 0:rotary_dim:2], out[..., 1:rotary_dim:2] = x0 * c - x1 * s, x0 * s + x1 * c
        bound = np.zeros_like(x)
        bound[..., 0:rotary_dim:2] = np.abs(x0 * c) + np.abs(x1 * s)
        bound[..., 1:rotary_dim:2] = np.abs(x0 * s) + np.abs(x1 * c)
    return out, 4 * EPS32 * bound + 2.0 ** -126


def to_bshd(x, layout):
    return {"bshd": lambda: x, "bhsd": lambda: x.transpose(0, 2, 1, 3), "thd": lambda: x[None]}[layout]()


def ids_3d(ids, layout):
    """Stream ids as (n_streams, batch, seq) for the reference."""
    return np.asarray(ids)[:, None, :] if layout == "thd" else np.asarray(ids)


def check(rope, x, out, ids, layout="bshd", inverse=False, what=""):
    xb, ob = to_bshd(x, layout), to_bshd(out, layout)
    ref, b32 = ref_streams(xb.astype(np.float64), ids_3d(ids, layout), rope.inv_freq, rope.stream_map,
                           rope.pairing, rope.rotary_dim, rope.attention_scaling, inverse)
    assert_close(ob, ref, tolerance(np.dtype(x.dtype).name, ref, b32), what)
    if rope.rotary_dim < rope.head_dim:  # pass-through dims are bit-exact
        assert np.array_equal(ob[..., rope.rotary_dim:], xb[..., rope.rotary_dim:])


def make(rng, shape, dtype=np.float32):
    return (rng.standard_normal(shape) * 2).astype(dtype)


def image_ids(rng, n, shape, top=400):
    """Image-like ids: every stream different (text tokens would have them equal)."""
    return rng.integers(0, top, size=(n,) + shape).astype(np.int64)


def stream_shape(layout, x):
    return (x.shape[0],) if layout == "thd" else ((x.shape[0], x.shape[2]) if layout == "bhsd" else x.shape[:2])


# --- values --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["bshd", "bhsd", "thd"])
@pytest.mark.parametrize("pairing", ["half", "interleaved"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_sections(rng, layout, pairing, dtype):
    rope = rotary.RoPE(64, base=1e6, pairing=pairing, max_positions=512, mrope_section=[8, 12, 12])
    assert rope.n_streams == 3
    assert np.array_equal(rope.stream_map, ref_map(32, "sections", [8, 12, 12]))
    np.testing.assert_allclose(rope.inv_freq, ref_inv_freq(64, 1e6), rtol=1e-15, atol=0)
    x = make(rng, LAYOUT_SHAPES[layout], dtype)
    ids = image_ids(rng, 3, stream_shape(layout, x))
    out = rope.apply(x, positions=ids, layout=layout)
    check(rope, x, out, ids, layout, what=f"sections {layout} {pairing}")
    back = rope.apply(out, positions=ids.astype(np.int32), layout=layout, inverse=True)
    check(rope, out, back, ids, layout, inverse=True, what="inverse, int32 ids")


@pytest.mark.parametrize("sections", [[24, 20, 20], [12, 10, 10], [16, 8, 8]])
def test_interleaved(rng, sections):
    d = 2 * sum(sections)
    rope = rotary.RoPE(d, base=5e6, max_positions=512, mrope_section=sections, mrope_interleaved=True)
    assert rope.n_streams == 3
    assert np.array_equal(rope.stream_map, ref_map(d // 2, "interleaved", sections))
    q, k = make(rng, (2, 5, 4, d)), make(rng, (2, 5, 2, d))
    ids = image_ids(rng, 3, (2, 5))
    oq, ok = rope.apply(q, k, positions=ids)
    check(rope, q, oq, ids, what="interleaved q")
    check(rope, k, ok, ids, what="interleaved k (GQA)")


@pytest.mark.parametrize("style", ["qwen2_vl", "pixtral"])
@pytest.mark.parametrize("head_dim", [64, 80])
def test_vision_2d(rng, style, head_dim):
    rope = rotary.RoPE.vision_2d(head_dim, base=10000.0, style=style, max_positions=64)
    assert rope.n_streams == 2 and rope.pairing == "half"
    assert np.array_equal(rope.stream_map, ref_map(head_dim // 2, "vision"))
    np.testing.assert_allclose(rope.inv_freq, ref_inv_freq(head_dim, 10000.0, style), rtol=1e-15, atol=0)
    x = make(rng, (37, 4, head_dim))
    rows, cols = np.divmod(np.arange(37), 7)  # a 6x7 patch grid, cut short
    ids = np.stack([rows, cols])
    out = rope.apply(x, positions=ids, layout="thd")
    check(rope, x, out, ids, "thd", what=f"vision {style}")


@pytest.mark.parametrize("n", [2, 3, 4])
def test_random_maps(rng, n):
    for trial in range(3):
        d, rot = 96, 2 * int(rng.integers(8, 48))
        m = rng.integers(0, n, size=rot // 2)
        m[:n] = np.arange(n)  # every stream used: n_streams = n
        pairing = ("half", "interleaved")[trial % 2]
        rope = rotary.RoPE(d, rotary_dim=rot, pairing=pairing, max_positions=256,
                           streams=m if trial < 2 else {"layout": "map", "n_streams": n, "map": m.tolist()})
        assert rope.n_streams == n and np.array_equal(rope.stream_map, m)
        x = make(rng, (3, 4, 2, d))
        ids = image_ids(rng, n, (3, 4), top=256)
        check(rope, x, rope.apply(x, positions=ids), ids, what=f"map n={n} rot={rot} {pairing}")


def test_sections_as_dict_and_scaling(rng):
    """The dict form of rotary_streams; a scaling family applies to a multi-stream rope (frequency i is its i-th)."""
    scaling = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024}
    plain = rotary.RoPE(64, scaling=scaling, max_positions=600)
    rope = rotary.RoPE(64, scaling=scaling, max_positions=600,
                       streams={"layout": "sections", "sections": [8, 12, 12]})
    assert np.array_equal(rope.inv_freq, plain.inv_freq) and rope.attention_scaling == plain.attention_scaling
    x = make(rng, (1, 6, 2, 64))
    ids = image_ids(rng, 3, (1, 6), top=600)
    check(rope, x, rope.apply(x, positions=ids), ids, what="yarn sections")


# --- agreement with the 1-D path -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sections", "interleaved", "vision", "map"])
def test_equal_streams_is_the_1d_path(rng, kind):
    """Text tokens: streams that agree give the plain rope's bits, and so do 1-D ids / an offset on the
    multi-stream rope."""
    if kind == "vision":
        rope = rotary.RoPE.vision_2d(64, max_positions=300)
    elif kind == "map":
        rope = rotary.RoPE(64, max_positions=300, streams=rng.integers(0, 4, size=32))
    else:
        sections = [12, 10, 10] if kind == "interleaved" else [8, 12, 12]
        rope = rotary.RoPE(64, max_positions=300, mrope_section=sections, mrope_interleaved=kind == "interleaved")
    plain = rotary.RoPE(64, max_positions=300, inv_freq=rope.inv_freq)
    x = make(rng, (2, 7, 3, 64), np.float16)
    one = rng.integers(0, 300, size=(2, 7))
    ref = plain.apply(x, positions=one)
    same = np.broadcast_to(one, (rope.n_streams, 2, 7)).copy()
    assert np.array_equal(rope.apply(x, positions=same), ref)
    assert np.array_equal(rope.apply(x, positions=one), ref)  # one id per token: every stream has it
    assert np.array_equal(rope.apply(x, positions=17), plain.apply(x, positions=17))
    c, s = rope.cos_sin(same.reshape(rope.n_streams, -1))
    pc, ps = plain.cos_sin(one.reshape(-1))
    assert np.array_equal(c, pc) and np.array_equal(s, ps)


def test_ids_forms(rng):
    """int32 and int64, broadcast over the batch, a strided slice of a longer buffer (vLLM's positions[:, :n]),
    a non-contiguous transpose (Hugging Face's vision ids (tokens, 2).T): all the same bits."""
    rope = rotary.RoPE(64, max_positions=512, mrope_section=[8, 12, 12])
    x = make(rng, (2, 6, 2, 64))
    ids = image_ids(rng, 3, (1, 6))
    full = np.broadcast_to(ids, (3, 2, 6)).copy()
    ref = rope.apply(x, positions=full)
    assert np.array_equal(rope.apply(x, positions=ids), ref)
    assert np.array_equal(rope.apply(x, positions=full.astype(np.int32)), ref)
    assert np.array_equal(rope.apply(x, positions=full.tolist()), ref)
    t = make(rng, (6, 2, 64))
    buf = np.zeros((3, 50), dtype=np.int64)
    buf[:, :6] = ids[:, 0]
    tref = rope.apply(t, positions=np.ascontiguousarray(buf[:, :6]), layout="thd")
    assert np.array_equal(rope.apply(t, positions=buf[:, :6], layout="thd"), tref)
    assert np.array_equal(rope.apply(t, positions=np.ascontiguousarray(buf[:, :6].T).T, layout="thd"), tref)


def test_cos_sin_streams(rng):
    """cos_sin of stream ids: row i of token t is the 1-D row of stream_map[i]'s id (gathered, bit for bit), and
    the fp32 rounding of the fp64 cos/sin within one ulp."""
    rope = rotary.RoPE(128, base=1e6, max_positions=4096, mrope_section=[16, 24, 24])
    ids = image_ids(rng, 3, (11,), top=4096)
    c, s = rope.cos_sin(ids)
    assert c.shape == (11, 64) and c.dtype == np.float32
    m = rope.stream_map
    for j in range(3):
        cj, sj = rope.cos_sin(ids[j])  # 1-D ids on a multi-stream rope: every stream the same
        assert np.array_equal(c[:, m == j], cj[:, m == j]) and np.array_equal(s[:, m == j], sj[:, m == j])
    ang = ids[m].T.astype(np.float64) * rope.inv_freq
    for got, want in ((c, np.cos(ang)), (s, np.sin(ang))):
        assert np.all(np.abs(got - want) <= np.spacing(np.abs(want).astype(np.float32)))
    assert rope.cos_sin(ids.reshape(3, 1, 11))[0].shape == (11, 64)  # [n_streams, ...] flattened


# --- errors ---------------------------------------------------------------------------------------------------------
def test_stream_ids_errors(rng):
    rope = rotary.RoPE(64, max_positions=128, mrope_section=[8, 12, 12])
    x = make(rng, (2, 5, 2, 64))
    x0 = x.copy()
    ids = image_ids(rng, 3, (2, 5), top=128)
    with pytest.raises(rotary.RotaryError, match="2 streams of ids, the rope has 3") as e:
        rope.apply(x, positions=ids[:2], inplace=True)
    assert e.value.status == _lib.ERR_STREAMS
    with pytest.raises(rotary.RotaryError, match="the rope has 1"):
        rotary.RoPE(64).apply(x, positions=ids)
    with pytest.raises(ValueError, match="stream ids of shape"):
        rope.apply(x, positions=ids[:, :, :4], inplace=True)  # too short
    with pytest.raises(TypeError, match="int32 or int64"):
        rope.apply(x, positions=ids.astype(np.float64), inplace=True)
    with pytest.raises(TypeError, match="int32 or int64"):
        rope.apply(x, positions=ids.astype(np.int16), inplace=True)
    with pytest.raises(ValueError, match="do not match"):
        rope.apply(x, positions=ids[None], inplace=True)  # 4-D
    bad = ids.copy()
    bad[2, 1, 4] = 128  # one id of one stream past the table
    with pytest.raises(rotary.RotaryError, match="ids in") as e:
        rope.apply(x, positions=bad, inplace=True)
    assert e.value.status == _lib.ERR_POSITION
    assert np.array_equal(x, x0)  # nothing written
    with pytest.raises(rotary.RotaryError) as e:
        rope.cos_sin(ids[:2])
    assert e.value.status == _lib.ERR_STREAMS


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"mrope_section": [8, 12, 11]}, rotary.RotaryError, "streams.sections"),
    ({"mrope_section": [8, 12, 12, 0, 0]}, ValueError, "at most 4"),
    ({"mrope_section": [8.0, 12, 12]}, TypeError, "mrope_section"),
    ({"mrope_interleaved": True}, ValueError, "mrope_section"),
    ({"mrope_section": [8, 12, 12], "streams": [0] * 32}, ValueError, "not both"),
    ({"streams": [0, 1] * 15}, ValueError, "32 entries"),
    ({"streams": [0, 1, 2, 4] * 8}, rotary.RotaryError, "stream indices"),
    ({"streams": {"layout": "spiral"}}, ValueError, "streams.layout"),
    ({"streams": {"layout": "map"}}, ValueError, "needs map"),
    ({"streams": {"layout": "sections", "sections": [16, 16], "extra": 1}}, ValueError, "unknown keys"),
    ({"streams": {"layout": "map", "n_streams": 2, "map": [0, 1, 2, 0] * 8}}, rotary.RotaryError, "streams"),
])
def test_stream_config_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match) as e:
        rotary.RoPE(64, **kwargs)
    if exc is rotary.RotaryError:
        assert e.value.status == _lib.ERR_STREAMS


def test_vision_errors():
    with pytest.raises(ValueError, match="style"):
        rotary.RoPE.vision_2d(64, style="siglip")
    with pytest.raises(rotary.RotaryError, match="streams") as e:
        rotary.RoPE.vision_2d(66)  # rotary_dim not a multiple of 4
    assert e.value.status == _lib.ERR_STREAMS


# --- per-layer ropes of a Hugging Face config ----------------------------------------------------------------------
GEMMA3 = {"model_type": "gemma3_text", "hidden_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1,
          "head_dim": 32, "num_hidden_layers": 6, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
          "sliding_window_pattern": 3, "max_position_embeddings": 256,
          "layer_types": ["sliding_attention", "sliding_attention", "full_attention"] * 2}


def test_hf_ropes_per_layer_type():
    ropes, layers = rotary.hf_ropes(GEMMA3)
    assert set(ropes) == {"full_attention", "sliding_attention"}
    assert layers == GEMMA3["layer_types"]
    np.testing.assert_allclose(ropes["full_attention"].inv_freq, ref_inv_freq(32, 1e6), rtol=1e-15)
    np.testing.assert_allclose(ropes["sliding_attention"].inv_freq, ref_inv_freq(32, 1e4), rtol=1e-15)
    assert ropes["sliding_attention"].hf["layer_type"] == "sliding_attention"
    assert ropes["full_attention"].hf["num_hidden_layers"] == 6
    default = rotary.RoPE.from_hf_config(GEMMA3)
    assert default.hf["layer_type"] == "full_attention"
    for i, name in enumerate(GEMMA3["layer_types"]):
        r = rotary.RoPE.from_hf_config(GEMMA3, layer=i)
        assert r.hf["layer_type"] == name and np.array_equal(r.inv_freq, ropes[name].inv_freq)
    r = rotary.RoPE.from_hf_config(GEMMA3, layer_type="sliding_attention")
    assert np.array_equal(r.inv_freq, ropes["sliding_attention"].inv_freq)
    with pytest.raises(rotary.RotaryError) as e:
        rotary.RoPE.from_hf_config(GEMMA3, layer=6)
    assert e.value.status == _lib.ERR_LAYER
    with pytest.raises(ValueError, match="chunked_attention"):
        rotary.RoPE.from_hf_config(GEMMA3, layer_type="chunked_attention")
    with pytest.raises(ValueError, match="not both"):
        rotary.RoPE.from_hf_config(GEMMA3, layer=0, layer_type="full_attention")


def test_hf_single_rope_and_mrope_config():
    llama = {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 2, "num_hidden_layers": 3}
    ropes, layers = rotary.hf_ropes(llama)
    assert list(ropes) == ["default"] and layers == ["default"] * 3
    assert rotary.RoPE.from_hf_config(llama, layer=2).hf["layer_type"] == "default"
    qwen2_vl = {"model_type": "qwen2_vl", "hidden_size": 256, "num_attention_heads": 2, "num_hidden_layers": 2,
                "rope_theta": 1000000.0, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}}
    rope = rotary.RoPE.from_hf_config(qwen2_vl)
    assert rope.n_streams == 3 and np.array_equal(rope.stream_map, ref_map(64, "sections", [16, 24, 24]))


def test_derive_and_table_free(rng):
    """derive keeps the streams; a table-free multi-stream rope gives the table's bits, and takes any id."""
    rope = rotary.RoPE(64, max_positions=100, mrope_section=[8, 12, 12])
    grown = rope.derive(0, 1000)
    assert grown.n_streams == 3 and np.array_equal(grown.stream_map, rope.stream_map) and grown.max_positions == 1000
    free = rotary.RoPE(64, max_positions=0, mrope_section=[8, 12, 12])
    x = make(rng, (2, 5, 2, 64))
    ids = image_ids(rng, 3, (2, 5), top=100)
    ref = rope.apply(x, positions=ids)
    assert np.array_equal(grown.apply(x, positions=ids), ref) and np.array_equal(free.apply(x, positions=ids), ref)
    far = ids * 100003
    check(free, x, free.apply(x, positions=far), far, what="table-free, far ids")


def test_hf_rope_type_per_layer_type():
    """rope.hf["rope_type"] is each rope's own family, not the config's (a dynamic full-attention rope beside a
    default sliding one)."""
    cfg = {"model_type": "gemma3_text", "hidden_size": 64, "num_attention_heads": 2, "head_dim": 32,
           "num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"],
           "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                               "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}}}
    ropes, layers = rotary.hf_ropes(cfg)
    assert layers == ["sliding_attention", "full_attention"]
    assert ropes["sliding_attention"].hf["rope_type"] == "default"
    assert ropes["full_attention"].hf["rope_type"] == "linear"
    np.testing.assert_allclose(ropes["full_attention"].inv_freq, ref_inv_freq(32, 1e6) / 8, rtol=1e-15)
