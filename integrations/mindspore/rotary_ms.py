"""rotary_ms.py: librotary as a MindSpore AOT Custom op (CPU), MindSpore's composed RoPE, and a LLaMA attention Cell."""
import math
import os

import numpy as np
import mindspore as ms
from mindspore import nn, ops, Tensor

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))
LIB_NAME = "librotary_ms.so"


def find_library():
    """Path of the AOT op library: $ROTARY_MS_LIB, else the first build*/integrations/mindspore/ that has it."""
    env = os.environ.get("ROTARY_MS_LIB")
    if env:
        return os.path.abspath(env)
    for d in sorted(os.listdir(_ROOT)):
        path = os.path.join(_ROOT, d, "integrations", "mindspore", LIB_NAME)
        if d.startswith("build") and os.path.isfile(path):
            return path
    return None


def _same(q, k, offset, base):
    return q, k


def offset_tensor(offset):
    """The op's position operand: an int64 tensor of shape [1] (position of token s is offset + s)."""
    return offset if isinstance(offset, Tensor) else Tensor(np.array([offset], np.int64))


class RotaryRope(nn.Cell):
    """q [batch, seq, q_heads, head_dim], k [batch, seq, k_heads, head_dim] (fp32, fp16 or bf16), offset int64 [1]
    -> rotated (q, k): half pairing (rotate_half), one librotary call for both. Differentiable (inverse rotation)."""

    def __init__(self, base=10000.0, library=None):
        super().__init__()
        lib = library or find_library()
        if lib is None:
            raise FileNotFoundError(f"no {LIB_NAME}: build with -DROTARY_BUILD_MINDSPORE=ON or set ROTARY_MS_LIB")
        # The fp64 base travels as its bits in an int64 tensor: mixed precision casts float inputs, never integers.
        self.base = Tensor(np.array([base], np.float64).view(np.int64))
        inverse = ops.Custom(f"{lib}:RotaryRopeInverse", out_shape=_same, out_dtype=_same, func_type="aot")
        zeros = ops.ZerosLike()

        def bprop(q, k, offset, base_t, out, dout):
            dq, dk = inverse(dout[0], dout[1], offset, base_t)
            return dq, dk, zeros(offset), zeros(base_t)

        self.op = ops.Custom(f"{lib}:RotaryRope", out_shape=_same, out_dtype=_same, func_type="aot", bprop=bprop)

    def construct(self, q, k, offset):
        return self.op(q, k, offset, self.base)


def rotate_half(x):
    half = x.shape[-1] // 2
    return ops.cat((-x[..., half:], x[..., :half]), -1)


class ComposedRope(nn.Cell):
    """The same rotation from MindSpore's own ops, as Hugging Face LLaMA writes it: x * cos + rotate_half(x) * sin
    with cos/sin cast to the input dtype. Angles in fp32 as Hugging Face does, or in fp64 (angle_dtype=ms.float64)."""

    def __init__(self, head_dim, base=10000.0, angle_dtype=ms.float32):
        super().__init__()
        inv = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
        self.angle_dtype = angle_dtype
        self.inv_freq = Tensor(inv.astype(np.float64 if angle_dtype == ms.float64 else np.float32))

    def construct(self, q, k, offset):
        seq = q.shape[1]
        pos = (ops.arange(seq, dtype=ms.int64) + offset).astype(self.angle_dtype)
        freqs = ops.outer(pos, self.inv_freq)
        emb = ops.cat((freqs, freqs), -1).reshape(1, seq, 1, -1)
        cos, sin = ops.cos(emb).astype(q.dtype), ops.sin(emb).astype(q.dtype)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class LlamaAttention(nn.Cell):
    """LLaMA self-attention without a KV cache: q/k/v projections, RoPE ("composed" or "custom"; the attribute
    rope_impl may be switched between calls), causal softmax(q k^T / sqrt(head_dim)) v, output projection. GQA when
    n_kv_heads < n_heads."""

    def __init__(self, hidden, n_heads, n_kv_heads=None, base=10000.0, rope_impl="custom", library=None,
                 angle_dtype=ms.float32):
        super().__init__()
        self.n_heads, self.n_kv = n_heads, n_kv_heads or n_heads
        self.head_dim = hidden // n_heads
        self.wq = nn.Dense(hidden, n_heads * self.head_dim, has_bias=False)
        self.wk = nn.Dense(hidden, self.n_kv * self.head_dim, has_bias=False)
        self.wv = nn.Dense(hidden, self.n_kv * self.head_dim, has_bias=False)
        self.wo = nn.Dense(n_heads * self.head_dim, hidden, has_bias=False)
        self.composed = ComposedRope(self.head_dim, base, angle_dtype)
        lib = library or find_library()
        self.custom = RotaryRope(base, lib) if lib or rope_impl == "custom" else None
        self.rope_impl = rope_impl

    def construct(self, x, offset):
        b, s, _ = x.shape
        q = self.wq(x).reshape(b, s, self.n_heads, self.head_dim)
        k = self.wk(x).reshape(b, s, self.n_kv, self.head_dim)
        v = self.wv(x).reshape(b, s, self.n_kv, self.head_dim)
        if self.rope_impl == "custom":
            q, k = self.custom(q, k, offset)
        else:
            q, k = self.composed(q, k, offset)
        q, k, v = q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
        if self.n_kv != self.n_heads:
            rep = self.n_heads // self.n_kv
            k, v = ops.repeat_interleave(k, rep, 1), ops.repeat_interleave(v, rep, 1)
        scores = ops.matmul(q, k.swapaxes(-1, -2)) / math.sqrt(self.head_dim)
        mask = ops.triu(ops.full((s, s), -1e9 if scores.dtype == ms.float32 else -6e4, dtype=scores.dtype), 1)
        attn = ops.softmax(scores + mask, -1)
        out = ops.matmul(attn, v).transpose(0, 2, 1, 3).reshape(b, s, -1)
        return self.wo(out)
