"""test_mindspore.py: the librotary AOT Custom op vs MindSpore's composed RoPE ops, alone and in LLaMA attention."""
import os
import sys

import numpy as np
import pytest

ms = pytest.importorskip("mindspore")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "integrations", "mindspore"))
import rotary_ms  # noqa: E402
from mindspore import Tensor, ops  # noqa: E402

ms.set_device("CPU")
LIB = rotary_ms.find_library()
pytestmark = pytest.mark.skipif(LIB is None, reason="librotary_ms.so not built (-DROTARY_BUILD_MINDSPORE=ON)")

# Max abs difference allowed vs the composed ops with fp64 angles, for standard-normal inputs (|x| < ~5). fp32: a few
# ulps. fp16/bf16: both outputs are rounded to the dtype, but the composed path also rounds cos, sin and each
# product to it: 2 ulps of values in [2, 4). Against Hugging Face's fp32 angles a position-dependent bound applies.
TOL = {"float32": 2e-6, "float16": 4e-3, "bfloat16": 6.25e-2}


def _inputs(dtype, batch=2, seq=7, q_heads=8, k_heads=2, head_dim=64, seed=0):
    rng = np.random.default_rng(seed)
    q = Tensor(rng.standard_normal((batch, seq, q_heads, head_dim)).astype(np.float32)).astype(getattr(ms, dtype))
    k = Tensor(rng.standard_normal((batch, seq, k_heads, head_dim)).astype(np.float32)).astype(getattr(ms, dtype))
    return q, k


def _maxdiff(a, b):
    return float(np.abs(a.astype(ms.float32).asnumpy() - b.astype(ms.float32).asnumpy()).max())


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("offset", [0, 37, 1000])
@pytest.mark.parametrize("head_dim,base", [(64, 10000.0), (128, 500000.0)])
def test_custom_op_matches_composed(dtype, offset, head_dim, base):
    q, k = _inputs(dtype, head_dim=head_dim, seed=offset)
    off = rotary_ms.offset_tensor(offset)
    qc, kc = rotary_ms.RotaryRope(base, LIB)(q, k, off)
    qr, kr = rotary_ms.ComposedRope(head_dim, base, ms.float64)(q, k, off)
    qh, kh = rotary_ms.ComposedRope(head_dim, base)(q, k, off)  # fp32 angles, as Hugging Face
    assert qc.dtype == q.dtype and qc.shape == q.shape and kc.shape == k.shape
    diff = max(_maxdiff(qc, qr), _maxdiff(kc, kr))
    diff_hf = max(_maxdiff(qc, qh), _maxdiff(kc, kh))
    print(f"{dtype} head_dim={head_dim} offset={offset}: max abs diff vs composed ops {diff:.3g} "
          f"(fp64 angles), {diff_hf:.3g} (fp32 angles)")
    assert diff <= TOL[dtype]
    # fp32 angle pos * inv_freq is off by up to ~2^-23 of itself; the output by that times |x0| + |x1|.
    xmax = max(float(np.abs(t.astype(ms.float32).asnumpy()).max()) for t in (q, k))
    assert diff_hf <= TOL[dtype] + 2 * xmax * (offset + q.shape[1]) * 2.0**-23


def test_custom_op_gradient_matches_composed():
    q, k = _inputs("float32")
    off = rotary_ms.offset_tensor(5)
    wq, wk = _inputs("float32", seed=1)

    def loss(rope):
        return lambda a, b: (rope(a, b, off)[0] * wq).sum() + (rope(a, b, off)[1] * wk).sum()

    gc = ms.grad(loss(rotary_ms.RotaryRope(10000.0, LIB)), grad_position=(0, 1))(q, k)
    gr = ms.grad(loss(rotary_ms.ComposedRope(64, angle_dtype=ms.float64)), grad_position=(0, 1))(q, k)
    diff = max(_maxdiff(gc[0], gr[0]), _maxdiff(gc[1], gr[1]))
    print(f"gradient float32: max abs diff {diff:.3g}")
    assert diff <= TOL["float32"]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("n_kv", [8, 2])
def test_attention_cell_paths_agree(dtype, n_kv):
    ms.set_seed(1)
    cell = rotary_ms.LlamaAttention(hidden=512, n_heads=8, n_kv_heads=n_kv, library=LIB, angle_dtype=ms.float64)
    if dtype != "float32":
        cell.to_float(getattr(ms, dtype))
    x = Tensor(np.random.default_rng(2).standard_normal((2, 9, 512)).astype(np.float32)).astype(getattr(ms, dtype))
    off = rotary_ms.offset_tensor(11)
    cell.rope_impl = "custom"
    out_c = cell(x, off)
    cell.rope_impl = "composed"
    out_r = cell(x, off)
    scale = float(np.abs(out_r.astype(ms.float32).asnumpy()).max())
    diff = _maxdiff(out_c, out_r)
    print(f"attention {dtype} n_kv={n_kv}: max abs diff {diff:.3g} (outputs up to {scale:.3g})")
    assert out_c.shape == x.shape and out_c.dtype == x.dtype
    assert diff <= (1e-5 if dtype == "float32" else 4e-3) * max(scale, 1.0)


def test_custom_op_rejects_bad_input():
    q, k = _inputs("float32")
    with pytest.raises(RuntimeError):
        qo, _ = rotary_ms.RotaryRope(10000.0, LIB)(q, k, rotary_ms.offset_tensor(-1))
        qo.asnumpy()


def test_attention_cell_graph_mode():
    ms.set_seed(1)
    x = Tensor(np.random.default_rng(3).standard_normal((1, 6, 256)).astype(np.float32))
    off = rotary_ms.offset_tensor(4)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        custom = rotary_ms.LlamaAttention(256, 4, 2, library=LIB, angle_dtype=ms.float64)
        composed = rotary_ms.LlamaAttention(256, 4, 2, rope_impl="composed", library=LIB, angle_dtype=ms.float64)
        ms.load_param_into_net(composed, {p.name: p for p in custom.get_parameters()})
        diff = _maxdiff(custom(x, off), composed(x, off))
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    print(f"attention float32 graph mode: max abs diff {diff:.3g}")
    assert diff <= 1e-5
