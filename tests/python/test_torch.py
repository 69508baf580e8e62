"""test_torch.py: PyTorch CPU tensors (f32, f16, bf16) through the custom ops: values, no copies, strided views,
autograd (the backward is the inverse rotation), torch.library.opcheck, torch.compile."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import rotary  # noqa: E402
import rotary.ops  # noqa: E402
from conftest import assert_close, positions_2d, ref_rope, to_bshd, tolerance  # noqa: E402

DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def as64(t):
    return t.detach().to(torch.float64).numpy()


def check(rope, q, out, positions, layout="bshd", inverse=False, what=""):
    qb, ob = to_bshd(as64(q), layout), to_bshd(as64(out), layout)
    pos = positions if not torch.is_tensor(positions) else positions.numpy()
    pos = positions_2d(pos, qb.shape[0], qb.shape[1])
    ref, b32 = ref_rope(qb, pos, rope.inv_freq, rope.pairing, rope.rotary_dim, rope.attention_scaling, inverse)
    assert_close(ob, ref, tolerance(DTYPES[q.dtype], ref, b32), what)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("pairing", ["half", "interleaved"])
@pytest.mark.parametrize("layout", ["bshd", "bhsd", "thd"])
def test_values_every_dtype(dtype, pairing, layout):
    torch.manual_seed(0)
    rope = rotary.RoPE(96, rotary_dim=64, pairing=pairing, max_positions=300)
    shape = {"bshd": (2, 5, 4, 96), "bhsd": (2, 4, 5, 96), "thd": (5, 4, 96)}[layout]
    kshape = {"bshd": (2, 5, 2, 96), "bhsd": (2, 2, 5, 96), "thd": (5, 2, 96)}[layout]
    q, k = torch.randn(shape).to(dtype), torch.randn(kshape).to(dtype)
    ids = torch.randint(0, 300, (5,) if layout == "thd" else (2, 5))
    oq, ok = rope.apply(q, k, positions=ids, layout=layout)
    assert oq.dtype == dtype and oq.shape == q.shape and ok.shape == k.shape
    pos = ids[None] if layout == "thd" else ids
    check(rope, q, oq, pos, layout, what=f"q {dtype} {pairing} {layout}")
    check(rope, k, ok, pos, layout, what=f"k {dtype} {pairing} {layout}")
    assert torch.equal(oq[..., 64:], q[..., 64:])  # pass-through part


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_in_place_no_copy_strided_views(dtype):
    """q and k as head slices of a packed QKV tensor, seen as bhsd (HF's transposed views): rotated in place."""
    torch.manual_seed(1)
    hq, hk, d = 8, 2, 64
    rope = rotary.RoPE(d, max_positions=64)
    qkv = torch.randn(2, 7, hq + 2 * hk, d).to(dtype)
    orig = qkv.clone()
    q = qkv[:, :, :hq].transpose(1, 2)
    k = qkv[:, :, hq:hq + hk].transpose(1, 2)
    ptr = q.data_ptr()
    rq, rk = rope.apply(q, k, positions=9, layout="bhsd", inplace=True)
    assert rq is q and rk is k and q.data_ptr() == ptr
    check(rope, orig[:, :, :hq].transpose(1, 2), q, 9, "bhsd", what="q view")
    check(rope, orig[:, :, hq:hq + hk].transpose(1, 2), k, 9, "bhsd", what="k view")
    assert torch.equal(qkv[:, :, hq + hk:], orig[:, :, hq + hk:])  # v untouched
    # out of place from the same views: outputs are new tensors, inputs untouched
    oq = rope.apply(q, positions=9, layout="bhsd")
    assert oq.data_ptr() != q.data_ptr()


def test_numpy_ids_and_offsets():
    rope = rotary.RoPE(32, max_positions=100)
    q = torch.randn(3, 4, 2, 32)
    for pos in (None, 17, np.arange(4, dtype=np.int32), torch.arange(4, dtype=torch.int32)[None], [5, 6, 7, 9]):
        out = rope.apply(q, positions=pos)
        p = 0 if pos is None else pos if isinstance(pos, int) else np.asarray(pos).reshape(-1)
        check(rope, q, out, p, what=f"positions {pos!r}")
    cos, sin = rope.cos_sin(torch.tensor([1, 2]))
    assert torch.is_tensor(cos) and cos.shape == (2, 16)


@pytest.mark.parametrize("pairing", ["half", "interleaved"])
def test_autograd_backward_is_inverse_rotation(pairing):
    torch.manual_seed(2)
    rope = rotary.RoPE(64, rotary_dim=48, pairing=pairing, max_positions=512)
    q = torch.randn(2, 6, 4, 64, requires_grad=True)
    k = torch.randn(2, 6, 2, 64, requires_grad=True)
    ids = torch.randint(0, 512, (2, 6))
    oq, ok = rope.apply(q, k, positions=ids)
    gq, gk = torch.randn_like(oq), torch.randn_like(ok)
    (oq * gq).sum().add_((ok * gk).sum()).backward()
    # d(loss)/dx = R(theta)^T g = R(-theta) g: the reference's inverse rotation of the incoming gradient
    check(rope, gq, q.grad, ids, inverse=True, what="dq")
    check(rope, gk, k.grad, ids, inverse=True, what="dk")
    # and the same gradient as autograd through HF's composed formula in float64
    if pairing == "half":
        q64 = q.detach().double().requires_grad_()
        ang = ids[..., None].double() * torch.from_numpy(rope.inv_freq)
        cos = torch.cat([ang.cos(), ang.cos()], -1)[:, :, None]
        sin = torch.cat([ang.sin(), ang.sin()], -1)[:, :, None]
        x = q64[..., :48]
        rot = torch.cat([-x[..., 24:], x[..., :24]], -1)
        out = torch.cat([x * cos + rot * sin, q64[..., 48:]], -1)
        (out * gq.double()).sum().backward()
        assert (q.grad.double() - q64.grad).abs().max() < 1e-5


def test_autograd_q_only_and_unused_k():
    rope = rotary.RoPE(16, max_positions=32)
    q = torch.randn(1, 3, 2, 16, requires_grad=True)
    k = torch.randn(1, 3, 1, 16, requires_grad=True)
    oq, ok = rope.apply(q, k, positions=4)
    oq.sum().backward()  # k's output unused: its gradient is zero
    assert torch.equal(k.grad, torch.zeros_like(k))
    q2 = torch.randn(1, 3, 2, 16, requires_grad=True)
    rope.apply(q2, positions=4).pow(2).sum().backward()  # norm-preserving: grad = 2 q2 rotated back
    assert (q2.grad - 2 * q2.detach()).abs().max() < 1e-5


def test_inverse_round_trip_bf16_f16():
    rope = rotary.RoPE(128, max_positions=4096)
    for dtype in (torch.float16, torch.bfloat16):
        q = torch.randn(1, 16, 4, 128).to(dtype)
        back = rope.apply(rope.apply(q, positions=4000), positions=4000, inverse=True)
        assert (back.float() - q.float()).abs().max() <= 4 * torch.finfo(dtype).eps * q.float().abs().max()


def test_opcheck():
    rope = rotary.RoPE(32, max_positions=64)
    q, k = torch.randn(2, 3, 4, 32), torch.randn(2, 3, 2, 32)
    ids = torch.randint(0, 64, (2, 3))
    rt = rotary.ops.rope_tensor(rope)
    for args in [(q, k, ids, 0, rt, "bshd", False), (q.transpose(1, 2), None, None, 5, rt, "bhsd", True),
                 (q.requires_grad_(), k, ids, 0, rt, "bshd", False)]:
        torch.library.opcheck(torch.ops.rotary.rope.default, args)
    q2 = torch.randn(2, 3, 4, 32)
    torch.library.opcheck(torch.ops.rotary.rope_.default, (q2, k.detach().clone(), ids, 0, rt, "bshd", False))


def test_torch_compile():
    pytest.importorskip("torch._inductor")
    torch._dynamo.reset()
    rope = rotary.RoPE(64, max_positions=256)

    def block(q, k, ids):
        q, k = rope.apply(q, k, positions=ids, layout="bhsd")
        return torch.softmax(q @ k.transpose(-1, -2) * 0.125, dim=-1).sum(-1) * 2

    compiled = torch.compile(block, fullgraph=True)
    q = torch.randn(1, 4, 10, 64, requires_grad=True)
    k = torch.randn(1, 4, 10, 64, requires_grad=True)
    ids = torch.arange(10)[None] + 30
    got = compiled(q, k, ids)
    want = block(q, k, ids)
    assert torch.allclose(got, want, atol=1e-5)
    got.sum().backward()
    gq = q.grad.clone()
    q.grad = None
    want.sum().backward()
    assert torch.allclose(gq, q.grad, atol=1e-5)

    def inplace(q, k):
        rope.apply(q, k, positions=3, inplace=True)
        return q * 1

    with torch.no_grad():
        a, b = torch.randn(1, 5, 2, 64), torch.randn(1, 5, 2, 64)
        a2, b2 = a.clone(), b.clone()
        out = torch.compile(inplace, fullgraph=True)(a, b)
        inplace(a2, b2)
        assert torch.equal(out, a2) and torch.equal(a, a2) and torch.equal(b, b2)


def test_bad_inputs():
    rope = rotary.RoPE(64, max_positions=100)
    q = torch.randn(1, 4, 2, 64)
    with pytest.raises(TypeError, match="float64"):
        rope.apply(q.double())
    with pytest.raises(TypeError, match="int64"):
        rope.apply(q.long())
    with pytest.raises(TypeError, match="torch.Tensor"):
        rope.apply(q, q.numpy())
    with pytest.raises(ValueError, match="contiguous"):
        rope.apply(torch.randn(1, 4, 2, 128)[..., ::2])
    with pytest.raises(ValueError, match="contiguous"):
        rope.apply(torch.randn(1, 4, 64, 2).transpose(-1, -2))
    with pytest.raises(ValueError, match="head_dim is 64"):
        rope.apply(torch.randn(1, 4, 2, 66))
    with pytest.raises(ValueError, match="differ"):
        rope.apply(q, torch.randn(2, 4, 2, 64))
    with pytest.raises(ValueError, match="position"):
        rope.apply(q, positions=97)
    with pytest.raises(ValueError, match="position"):
        rope.apply(q, positions=torch.tensor([[0, 1, 2, 100]]))
    with pytest.raises(TypeError, match="int32 or int64"):
        rope.apply(q, positions=torch.arange(4.0))
    with pytest.raises(ValueError, match="requires? grad"):
        rope.apply(q.clone().requires_grad_(), inplace=True)
    with pytest.raises(ValueError, match="overlap"):
        rope.apply(q, q, inplace=True)
    with pytest.raises(TypeError, match="out"):
        rope.apply(q, out=q)
    q0 = q.clone()
    with pytest.raises(ValueError):
        rope.apply(q, positions=99, inplace=True)
    assert torch.equal(q, q0)


def test_eager_path_is_the_op():
    """RoPE.apply runs the ops' kernel directly in plain eager mode: the same bits as torch.ops.rotary.*, the
    version counter bumped in place, and the op itself (not the shortcut) whenever a mode watches the call."""
    from torch.utils._python_dispatch import TorchDispatchMode
    torch.manual_seed(3)
    rope = rotary.RoPE(64, max_positions=64)
    rt = rotary.ops.rope_tensor(rope)
    q, k = torch.randn(2, 3, 4, 64), torch.randn(2, 3, 2, 64)
    ids = torch.randint(0, 64, (2, 3))
    oq, ok = rope.apply(q, k, positions=ids)
    rq, rk = torch.ops.rotary.rope(q, k, ids, 0, rt, "bshd", False)
    assert torch.equal(oq, rq) and torch.equal(ok, rk)
    q2, k2 = q.clone(), k.clone()
    v = q2._version
    rope.apply(q2, k2, positions=ids, inplace=True)
    assert torch.equal(q2, oq) and torch.equal(k2, ok) and q2._version > v

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    with Record() as rec:
        again = rope.apply(q, k, positions=ids)
        rope.apply(q.clone(), positions=1, inplace=True)
    assert "rotary.rope.default" in rec.ops and "rotary.rope_.default" in rec.ops
    assert torch.equal(again[0], oq)
    with torch.profiler.profile() as prof:
        rope.apply(q, k, positions=ids)
    assert any("rotary::rope" in e.name for e in prof.events())


@pytest.mark.parametrize("eager_first", [
    True,
    pytest.param(False, marks=pytest.mark.xfail(
        not hasattr(rotary.RoPE(8), "_inv_freq"), strict=True,
        reason="Dynamo cannot call librotary: a RoPE never used eagerly needs its inv_freq read when made"))])
def test_compile_two_ropes_as_arguments(eager_first):
    """One compiled function called with two ropes: each call uses its own rope (the rope tensor is an input of
    the graph, guarded), never the other's."""
    torch._dynamo.reset()
    r1, r2 = rotary.RoPE(64, max_positions=64), rotary.RoPE(64, base=500.0, max_positions=64)
    q = torch.randn(1, 4, 2, 64)
    want1 = rotary.RoPE(64, max_positions=64).apply(q, positions=3)
    want2 = rotary.RoPE(64, base=500.0, max_positions=64).apply(q, positions=3)
    if eager_first:
        assert torch.equal(r1.apply(q, positions=3), want1) and torch.equal(r2.apply(q, positions=3), want2)
    assert not torch.equal(want1, want2)
    fn = torch.compile(lambda r, x: r.apply(x, positions=3) * 1, fullgraph=True, backend="aot_eager")
    for _ in range(2):
        assert torch.equal(fn(r1, q), want1) and torch.equal(fn(r2, q), want2)
    torch._dynamo.reset()


def test_inference_mode_and_special_tensors():
    """Inference mode (rope tensors made there stay usable), inference tensors written outside it refused, lazily
    negated views refused, a k without heads leaves q rotated, unaligned tensors rotated in place."""
    rope = rotary.RoPE(64, max_positions=64)
    with torch.inference_mode():
        q = torch.randn(1, 3, 2, 64)
        want = rope.apply(q.clone(), positions=2)
        assert torch.equal(rope.apply(q, positions=2, inplace=True), want)
        rt = torch.tensor(rotary.ops.rope_tensor(rope).tolist(), dtype=torch.float64)  # an inference tensor
        assert torch.equal(torch.ops.rotary.rope(want, None, None, 0, rt, "bshd", False)[0],
                           rope.apply(want, positions=0))
    with pytest.raises(ValueError, match="inference tensor"):
        rope.apply(q, positions=2, inplace=True)
    x = torch.randn(1, 3, 2, 64)
    with pytest.raises(ValueError, match="negated"):
        rope.apply(x._neg_view(), positions=1)
    oq, ok = rope.apply(x, torch.randn(1, 3, 0, 64), positions=1)
    assert torch.equal(oq, rope.apply(x, positions=1)) and ok.shape == (1, 3, 0, 64)
    # a tensor at an odd byte address is rotated where it is (librotary takes any address)
    buf = bytearray(x.numel() * 4 + 1)
    odd = torch.frombuffer(buf, dtype=torch.float32, offset=1, count=x.numel()).view(x.shape)
    odd.copy_(x)
    assert odd.data_ptr() % 4 and torch.equal(rope.apply(odd, positions=1), oq)
    rope.apply(odd, positions=1, inplace=True)
    assert torch.equal(odd, oq)
