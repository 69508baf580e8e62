"""test_numpy.py: RoPE.apply and cos_sin on NumPy arrays against the float64 reference; strides, GQA, positions,
errors (the exception type and its message)."""
import numpy as np
import pytest

np = pytest.importorskip("numpy")
import rotary  # noqa: E402
from conftest import assert_close, positions_2d, ref_rope, to_bshd, tolerance  # noqa: E402

DTYPES = [np.float32, np.float16]


def make(rng, shape, dtype):
    return (rng.standard_normal(shape) * 2).astype(dtype)


def check(rope, q, out, positions, layout="bshd", inverse=False, what=""):
    qb, ob = to_bshd(q, layout), to_bshd(out, layout)
    pos = positions_2d(positions, qb.shape[0], qb.shape[1])
    ref, b32 = ref_rope(qb.astype(np.float64), pos, rope.inv_freq, rope.pairing, rope.rotary_dim,
                        rope.attention_scaling, inverse)
    assert_close(ob, ref, tolerance(np.dtype(q.dtype).name, ref, b32), what)
    if rope.rotary_dim < rope.head_dim:  # pass-through dims are bit-exact
        assert np.array_equal(ob[..., rope.rotary_dim:].view(np.uint8), qb[..., rope.rotary_dim:].view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pairing", ["half", "interleaved"])
@pytest.mark.parametrize("layout", ["bshd", "bhsd", "thd"])
def test_values_out_of_place(rng, dtype, pairing, layout):
    rope = rotary.RoPE(64, pairing=pairing, max_positions=512)
    shape = {"bshd": (2, 7, 3, 64), "bhsd": (2, 3, 7, 64), "thd": (7, 3, 64)}[layout]
    q = make(rng, shape, dtype)
    q0 = q.copy()
    out = rope.apply(q, positions=100, layout=layout)
    assert out is not q and out.dtype == q.dtype and out.shape == q.shape
    assert np.array_equal(q, q0)  # input untouched
    check(rope, q, out, 100, layout, what=f"{dtype.__name__} {pairing} {layout}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pairing", ["half", "interleaved"])
def test_in_place_gqa_inverse(rng, dtype, pairing):
    rope = rotary.RoPE(128, pairing=pairing, base=500000.0, max_positions=4096)
    q, k = make(rng, (2, 5, 8, 128), dtype), make(rng, (2, 5, 2, 128), dtype)
    q0, k0 = q.copy(), k.copy()
    rq, rk = rope.apply(q, k, positions=4000, inplace=True)
    assert rq is q and rk is k
    check(rope, q0, q, 4000, what="q in place")
    check(rope, k0, k, 4000, what="k in place (GQA)")
    back_q, back_k = rope.apply(q, k, positions=4000, inverse=True)
    check(rope, q, back_q, 4000, inverse=True, what="inverse")
    if dtype == np.float32:
        assert np.abs(back_q - q0).max() < 1e-5 * np.abs(q0).max()
        assert np.abs(back_k - k0).max() < 1e-5 * np.abs(k0).max()


@pytest.mark.parametrize("pairing", ["half", "interleaved"])
@pytest.mark.parametrize("rotary_dim", [2, 16, 32, 62])
def test_partial_rotary(rng, pairing, rotary_dim):
    rope = rotary.RoPE(64, rotary_dim=rotary_dim, pairing=pairing, max_positions=64)
    assert rope.rotary_dim == rotary_dim and rope.inv_freq.shape == (rotary_dim // 2,)
    q = make(rng, (1, 9, 2, 64), np.float32)
    check(rope, q, rope.apply(q, positions=3), 3, what=f"rotary_dim {rotary_dim}")


def test_packed_qkv_views_in_place(rng):
    """q and k are head slices of one packed QKV buffer; v must stay untouched."""
    hq, hk, d = 8, 2, 64
    rope = rotary.RoPE(d, max_positions=128)
    buf = make(rng, (2, 6, hq + 2 * hk, d), np.float32)
    orig = buf.copy()
    q, k = buf[:, :, :hq], buf[:, :, hq:hq + hk]
    assert not q.flags.c_contiguous
    rope.apply(q, k, positions=10, inplace=True)
    check(rope, orig[:, :, :hq], q, 10, what="q slice")
    check(rope, orig[:, :, hq:hq + hk], k, 10, what="k slice")
    assert np.array_equal(buf[:, :, hq + hk:], orig[:, :, hq + hk:])


def test_transposed_and_strided_views(rng):
    rope = rotary.RoPE(32, max_positions=64)
    base = make(rng, (3, 8, 4, 32), np.float32)
    # bhsd view of bshd memory, out of place
    v = base.transpose(0, 2, 1, 3)
    check(rope, v, rope.apply(v, layout="bhsd", positions=5), 5, "bhsd", what="transposed view")
    # every other token, reversed batch (negative stride), pointer offset by one element
    flat = make(rng, (1 + 3 * 8 * 4 * 32,), np.float32)
    odd = flat[1:].reshape(3, 8, 4, 32)[::-1, ::2]
    check(rope, odd, rope.apply(odd, positions=2), 2, what="negative and step strides, misaligned")
    want = odd.copy()
    rope.apply(odd, positions=2, inplace=True)
    assert np.array_equal(odd, rope.apply(want, positions=2))


def test_ids_positions(rng):
    rope = rotary.RoPE(64, max_positions=1000)
    q, k = make(rng, (2, 5, 4, 64), np.float32), make(rng, (2, 5, 1, 64), np.float32)
    ids = rng.integers(0, 1000, (2, 5))
    for arr in (ids.astype(np.int64), ids.astype(np.int32)):
        oq, ok = rope.apply(q, k, positions=arr)
        check(rope, q, oq, ids, what=f"ids {arr.dtype}")
        check(rope, k, ok, ids, what=f"ids {arr.dtype} k")
    # (seq,) and (1, seq) ids broadcast over the batch; a list works too
    row = ids[0]
    for p in (row, row[None], list(row)):
        check(rope, q, rope.apply(q, positions=p), np.broadcast_to(row, (2, 5)), what="broadcast ids")
    # thd: one id per token
    t = make(rng, (5, 4, 64), np.float32)
    check(rope, t, rope.apply(t, positions=row, layout="thd"), row[None], "thd", what="thd ids")


def test_cos_sin(rng):
    rope = rotary.RoPE(16, max_positions=50, attention_scaling=0.5)
    cos, sin = rope.cos_sin([0, 7, 49])
    assert cos.shape == (3, 8) and cos.dtype == np.float32
    ang = np.array([0, 7, 49], dtype=np.float64)[:, None] * rope.inv_freq[None]
    assert np.abs(cos - 0.5 * np.cos(ang)).max() <= 2 ** -25
    assert np.abs(sin - 0.5 * np.sin(ang)).max() <= 2 ** -25
    assert np.array_equal(rope.cos_sin(7)[0][0], cos[1])
    with pytest.raises(ValueError, match="position"):
        rope.cos_sin([50])
    # table-free rope: same bits, any position
    free = rotary.RoPE(16, max_positions=0, attention_scaling=0.5)
    assert np.array_equal(free.cos_sin([0, 7, 49])[0], cos)
    assert free.cos_sin([10 ** 12])[0].shape == (1, 8)


def test_scaling_dict_and_properties():
    rope = rotary.RoPE(64, base=10000.0, scaling={"rope_type": "linear", "factor": 4.0}, max_positions=16)
    plain = rotary.RoPE(64, max_positions=16)
    assert np.allclose(rope.inv_freq, plain.inv_freq / 4.0, rtol=1e-15, atol=0)
    assert (rope.head_dim, rope.rotary_dim, rope.pairing, rope.max_positions) == (64, 64, "half", 16)
    assert rope.memory_bytes > 16 * 64 * 4
    inv = np.linspace(1.0, 0.01, 32)
    custom = rotary.RoPE(64, inv_freq=inv, max_positions=4)
    assert np.array_equal(custom.inv_freq, inv)
    yarn = rotary.RoPE(64, scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024})
    assert yarn.attention_scaling > 1.0
    assert "RoPE(head_dim=64" in repr(yarn)


def test_empty_tensor_is_a_no_op():
    rope = rotary.RoPE(8, max_positions=4)
    q = np.zeros((0, 3, 2, 8), np.float32)
    assert rope.apply(q).shape == q.shape


def test_threads():
    n = rotary.get_num_threads()
    assert n >= 1
    rotary.set_num_threads(1)
    assert rotary.get_num_threads() == 1
    rotary.set_num_threads(n)
    assert "kernels" in rotary.info()


# --- bad input: the right exception, a message naming the problem, nothing written ------------------------------

def test_bad_config():
    with pytest.raises(ValueError, match="head_dim"):
        rotary.RoPE(63)
    with pytest.raises(ValueError, match="rotary_dim"):
        rotary.RoPE(64, rotary_dim=66)
    with pytest.raises(ValueError, match="rotary_dim"):
        rotary.RoPE(64, rotary_dim=5)
    with pytest.raises(ValueError, match="pairing"):
        rotary.RoPE(64, pairing="neox")
    with pytest.raises(ValueError, match="base"):
        rotary.RoPE(64, base=-1.0)
    with pytest.raises(ValueError, match="scaling.factor"):
        rotary.RoPE(64, scaling={"rope_type": "linear"})
    with pytest.raises(ValueError, match="unknown rope_type"):
        rotary.RoPE(64, scaling={"rope_type": "banana"})
    with pytest.raises(TypeError, match="head_dim"):
        rotary.RoPE(64.0)
    with pytest.raises(ValueError, match="inv_freq"):
        rotary.RoPE(64, inv_freq=[1.0, 2.0])
    err = None
    try:
        rotary.RoPE(0)
    except rotary.RotaryError as e:
        err = e
    assert err is not None and err.status == 2  # ROTARY_ERR_HEAD_DIM


def test_bad_inputs(rng):
    rope = rotary.RoPE(64, max_positions=100)
    q = make(rng, (1, 4, 2, 64), np.float32)
    k = make(rng, (1, 4, 1, 64), np.float32)
    q0, k0 = q.copy(), k.copy()
    with pytest.raises(TypeError, match="float64"):
        rope.apply(q.astype(np.float64))
    with pytest.raises(TypeError, match="int32"):
        rope.apply(q.astype(np.int32))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        rope.apply(q.tolist())
    with pytest.raises(ValueError, match="head_dim is 64"):
        rope.apply(make(rng, (1, 4, 2, 32), np.float32))
    with pytest.raises(ValueError, match="4-D"):
        rope.apply(q[0])
    with pytest.raises(ValueError, match="differ from q"):
        rope.apply(q, make(rng, (1, 5, 1, 64), np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        rope.apply(np.asfortranarray(q))
    with pytest.raises(ValueError, match="contiguous"):
        rope.apply(make(rng, (1, 4, 2, 128), np.float32)[..., ::2])
    with pytest.raises(ValueError, match="layout"):
        rope.apply(q, layout="sbhd")
    with pytest.raises(ValueError, match=r"position.*97\.\.100.*table of 100"):
        rope.apply(q, k, positions=97, inplace=True)
    with pytest.raises(ValueError, match="position"):
        rope.apply(q, k, positions=-1, inplace=True)
    with pytest.raises(ValueError, match=r"ids in \[0, 100\]"):
        rope.apply(q, k, positions=np.array([[0, 1, 2, 100]]), inplace=True)
    with pytest.raises(TypeError, match="int32 or int64"):
        rope.apply(q, positions=np.arange(4.0))
    with pytest.raises(ValueError, match="do not match"):
        rope.apply(q, positions=np.arange(5))
    with pytest.raises(TypeError, match="bool"):
        rope.apply(q, positions=True)
    with pytest.raises(ValueError, match="overlap"):
        rope.apply(q, q, inplace=True)  # q and k outputs are the same memory
    ro = q.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        rope.apply(ro, inplace=True)
    with pytest.raises(ValueError, match="out"):
        rope.apply(q, out=np.empty((1, 4, 2, 32), np.float32))
    assert np.array_equal(q, q0) and np.array_equal(k, k0)  # failed calls wrote nothing


def test_out_argument(rng):
    rope = rotary.RoPE(64, max_positions=100)
    q, k = make(rng, (1, 4, 2, 64), np.float32), make(rng, (1, 4, 1, 64), np.float32)
    oq, ok = np.empty_like(q), np.empty_like(k)
    rq, rk = rope.apply(q, k, positions=3, out=(oq, ok))
    assert rq is oq and rk is ok
    check(rope, q, oq, 3, what="out=")
    with pytest.raises(ValueError, match="overlap"):
        rope.apply(q, k, positions=3, out=(oq, oq[:, :, :1]))


def test_one_side_without_heads(rng):
    """A k (or q) with zero heads leaves the other tensor's rotation intact (q_out was left unwritten before)."""
    rope = rotary.RoPE(64, max_positions=100)
    q = make(rng, (1, 3, 2, 64), np.float32)
    empty = np.zeros((1, 3, 0, 64), np.float32)
    q_out, k_out = rope.apply(q, empty, positions=5)
    check(rope, q, q_out, 5, what="q beside a k without heads")
    assert k_out.shape == empty.shape
    k = make(rng, (1, 3, 2, 64), np.float32)
    _, k_out = rope.apply(empty, k, positions=5)
    check(rope, k, k_out, 5, what="k beside a q without heads")
