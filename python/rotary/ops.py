"""ops.py: PyTorch custom ops over librotary: torch.ops.rotary.rope (autograd: the backward is the inverse rotation)
and torch.ops.rotary.rope_ (in place), both with fake implementations so torch.compile can trace them."""
from typing import Optional

import numpy as np
import torch

from . import _core

Tensor = torch.Tensor
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@torch.library.custom_op("rotary::rope", mutates_args=())
def rope(q: Tensor, k: Optional[Tensor], ids: Optional[Tensor], offset: int, handle: int, layout: str,
         inverse: bool) -> tuple[Tensor, Tensor]:
    """q' and k' (an empty tensor when k is None) rotated out of place; outputs keep the inputs' memory order.
    ids: int32/int64 position ids, batch * seq_len values in token order, or None for offset, offset + 1, ..."""
    r = _core.rope_by_id(handle)
    q_out = torch.empty_like(q)
    k_out = torch.empty_like(k) if k is not None else q.new_empty(0)
    r._apply_arrays(q, q_out, k, k_out if k is not None else None, ids if ids is not None else offset, layout,
                    inverse)
    return q_out, k_out


@rope.register_fake
def _rope_fake(q, k, ids, offset, handle, layout, inverse):
    return torch.empty_like(q), (torch.empty_like(k) if k is not None else q.new_empty(0))


def _rope_setup_context(ctx, inputs, output):
    q, k, ids, offset, handle, layout, inverse = inputs
    ctx.has_k = k is not None
    ctx.offset, ctx.handle, ctx.layout, ctx.inverse = offset, handle, layout, inverse
    ctx.save_for_backward(ids)


def _last_dim_contiguous(g):
    return g if g.stride(-1) == 1 else g.contiguous()


def _rope_backward(ctx, grad_q, grad_k):
    # A rotation's transpose is the rotation by the opposite angle: d(loss)/dx = R(-theta) d(loss)/dx'.
    (ids,) = ctx.saved_tensors
    gk = _last_dim_contiguous(grad_k) if ctx.has_k else None
    gq, gk = torch.ops.rotary.rope(_last_dim_contiguous(grad_q), gk, ids, ctx.offset, ctx.handle, ctx.layout,
                                   not ctx.inverse)
    return gq, (gk if ctx.has_k else None), None, None, None, None, None


rope.register_autograd(_rope_backward, setup_context=_rope_setup_context)


@torch.library.custom_op("rotary::rope_", mutates_args=("q", "k"))
def rope_(q: Tensor, k: Optional[Tensor], ids: Optional[Tensor], offset: int, handle: int, layout: str,
          inverse: bool) -> None:
    """In place: q and k are rotated in their own memory (no autograd)."""
    _core.rope_by_id(handle)._apply_arrays(q, q, k, k, ids if ids is not None else offset, layout, inverse)


@rope_.register_fake
def _rope_inplace_fake(q, k, ids, offset, handle, layout, inverse):
    return None


def _check(x, name, layout, head_dim):
    """Shape, dtype and device checks that work on fake tensors too (no data pointer)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor like q, got {type(x).__name__}")
    if x.dtype not in _DTYPES:
        raise TypeError(f"{name}: dtype {x.dtype} is not supported (torch.float32, torch.float16 or torch.bfloat16)")
    if x.device.type not in ("cpu", "meta"):
        raise ValueError(f"{name}: tensor is on {x.device}; rotary runs on the CPU (move it with .cpu())")
    if x.layout != torch.strided:
        raise TypeError(f"{name}: {x.layout} tensors are not supported (dense strided tensors only)")
    nd = 3 if layout == "thd" else 4
    if x.dim() != nd:
        raise ValueError(f"{name}: layout {layout!r} needs a {nd}-D tensor, got shape {tuple(x.shape)}")
    if x.shape[-1] != head_dim:
        raise ValueError(f"{name}: last dimension is {x.shape[-1]}, the rope's head_dim is {head_dim}")
    if x.stride(-1) != 1 and x.numel():
        raise ValueError(f"{name}: the last dimension must be contiguous (stride 1), got stride {x.stride(-1)}; "
                         "rotary never copies: pass a tensor whose head_dim elements are adjacent (x.contiguous())")
    s = x.shape
    return (s[0], s[1]) if layout == "bshd" else (s[0], s[2]) if layout == "bhsd" else (1, s[0])


def _positions(positions, batch, seq_len, layout):
    """(ids tensor or None, offset)."""
    off = _core._offset(positions, "tensor")
    if off is not None:
        return None, off
    if isinstance(positions, (np.ndarray, list, tuple, range)):
        positions = torch.as_tensor(np.asarray(positions))
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"positions: expected None, an int offset or an int32/int64 tensor of ids, "
                        f"got {type(positions).__name__}")
    _core._check_torch_ids(positions)
    want = (seq_len,) if layout == "thd" else (batch, seq_len)
    if tuple(positions.shape) != want:
        try:
            positions = positions.expand(want)
        except RuntimeError:
            raise ValueError(f"positions: ids of shape {tuple(positions.shape)} do not match {want} "
                             f"(batch, seq_len) of layout {layout!r}") from None
    return positions.contiguous(), None


def apply(r, q, k, positions, layout, inplace, inverse):
    """RoPE.apply for torch tensors (see there)."""
    hd = r.head_dim
    gq = _check(q, "q", layout, hd)
    if k is not None:
        gk = _check(k, "k", layout, hd)
        if gk != gq:
            raise ValueError(f"k: (batch, seq_len) {gk} differ from q's {gq}")
    ids, offset = _positions(positions, gq[0], gq[1], layout)
    offset = 0 if offset is None else offset
    if inplace:
        if torch.is_grad_enabled() and (q.requires_grad or (k is not None and k.requires_grad)):
            raise ValueError("inplace=True on tensors that require grad: use inplace=False for autograd "
                             "(or run under torch.no_grad())")
        torch.ops.rotary.rope_(q, k, ids, offset, r.id, layout, bool(inverse))
        return q if k is None else (q, k)
    q_out, k_out = torch.ops.rotary.rope(q, k, ids, offset, r.id, layout, bool(inverse))
    return q_out if k is None else (q_out, k_out)
