"""ops.py: PyTorch custom ops over librotary: torch.ops.rotary.rope (autograd: the backward is the inverse rotation)
and torch.ops.rotary.rope_ (in place), with fake implementations so torch.compile and torch.export trace them.

The ops take the rope as a tensor of its parameters (rope_tensor(r): float64 [head_dim, max_positions, pairing,
attention_scaling, inv_freq..., a multi-stream rope's stream map]), never a handle: a program exported with them,
saved and loaded in another process rebuilds the same librotary rope from that tensor (cached by content) and gives
the same bits. `import rotary` registers the ops whenever torch is imported."""
import numpy as np
import torch

from . import _core, _torchop

# torch.library.Library and plain kernels rather than torch.library.custom_op: the same registrations with a far
# smaller cost per eager call (custom_op's Python wrappers took most of the 75 us it cost at decode size).
_library = torch.library.Library("rotary", "DEF")
_library.define("rope(Tensor q, Tensor? k, Tensor? ids, SymInt offset, Tensor rope, str layout, bool inverse) "
                "-> (Tensor, Tensor)")
_library.define("rope_(Tensor(a!) q, Tensor(b!)? k, Tensor? ids, SymInt offset, Tensor rope, str layout, "
                "bool inverse) -> ()")
_ROPE = torch.ops.rotary.rope.default
_ROPE_ = torch.ops.rotary.rope_.default
_AFTER_AUTOGRAD = torch._C._after_autograd_keyset
_CPU = torch._C.DispatchKey.CPU
_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_increment_version = torch._C._increment_version


# --- kernels ---------------------------------------------------------------------------------------------------
def _rope_cpu(q, k, ids, offset, rope, layout, inverse):
    """q' and k' (an empty tensor when k is None) rotated out of place; outputs keep the inputs' memory order.
    ids: int32/int64 position ids of shape (batch, seq_len) ((seq_len,) for "thd") or broadcastable to it, stream
    ids of a multi-stream rope [n_streams, batch, seq_len] ([n_streams, tokens] for "thd"), or None for offset,
    offset + 1, ..."""
    q_out, k_out = _torchop.rotate(_torchop.rope_for(rope), q, k, ids, offset, layout, inverse, False)
    return q_out, (k_out if k_out is not None else q.new_empty(0))


def _rope_inplace_cpu(q, k, ids, offset, rope, layout, inverse):
    """In place: q and k are rotated in their own memory (no autograd)."""
    _rotate_inplace(_torchop.rope_for(rope), q, k, ids, offset, layout, inverse)


def _rotate_inplace(r, q, k, ids, offset, layout, inverse, flags=None):
    if (q.is_inference() or (k is not None and k.is_inference())) and not torch.is_inference_mode_enabled():
        name = "q" if q.is_inference() else "k"
        raise ValueError(f"{name}: an inference tensor is read-only outside torch.inference_mode() and would be "
                         "written; clone it first")
    _torchop.rotate(r, q, k, ids, offset, layout, inverse, True, flags)
    # librotary wrote through the data pointers: tell autograd the tensors changed (what ADInplaceOrView does;
    # torch.autograd.graph.increment_version without its wrapper)
    _increment_version((q,) if k is None else (q, k))


_library.impl("rope", _rope_cpu, "CPU")
_library.impl("rope_", _rope_inplace_cpu, "CPU")
# CUDA tensors: the same kernels (rotate dispatches on q's device to rotary_cuda_apply on the current stream)
_library.impl("rope", _rope_cpu, "CUDA")
_library.impl("rope_", _rope_inplace_cpu, "CUDA")


@torch.library.register_fake("rotary::rope", lib=_library)
def _rope_fake(q, k, ids, offset, rope, layout, inverse):
    _check_fake(q, k, ids, layout)
    return torch.empty_like(q), (torch.empty_like(k) if k is not None else q.new_empty(0))


@torch.library.register_fake("rotary::rope_", lib=_library)
def _rope_inplace_fake(q, k, ids, offset, rope, layout, inverse):
    _check_fake(q, k, ids, layout)
    return None


def _check_fake(q, k, ids, layout):
    """The shape checks that need no data, so that a traced program fails where eager would."""
    _torchop._dims(layout)
    for name, x in (("q", q), ("k", k)):
        if x is not None and x.dtype not in _DTYPES:
            raise TypeError(f"{name}: dtype {x.dtype} is not supported (torch.float32, torch.float16 or "
                            "torch.bfloat16)")
    if ids is not None and ids.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"positions: ids must be int32 or int64, got {ids.dtype}")
    for name, x in (("k", k), ("positions: ids", ids)):
        if x is not None and x.device != q.device and (q.is_cuda or x.is_cuda):
            raise ValueError(f"{name}: tensor is on {x.device}, q on {q.device}: the tensors of one call must be on "
                             "one device")
    if ids is not None and ids.dim() > (2 if layout == "thd" else 3):
        raise ValueError(f"positions: ids of {ids.dim()} dimensions for layout {layout!r} (at most "
                         f"{'[n_streams, tokens]' if layout == 'thd' else '[n_streams, batch, seq_len]'})")


# --- autograd --------------------------------------------------------------------------------------------------
class _RopeFunction(torch.autograd.Function):
    """Out-of-place rotation whose backward is the inverse rotation: d(loss)/dx = R(-theta) d(loss)/dx'."""

    @staticmethod
    def forward(ctx, q, k, ids, offset, rope, layout, inverse):
        ctx.has_k = k is not None
        ctx.offset, ctx.layout, ctx.inverse = offset, layout, inverse
        ctx.save_for_backward(ids, rope)
        q_out, k_out = _ROPE(q, k, ids, offset, rope, layout, inverse)
        if not ctx.has_k:
            ctx.mark_non_differentiable(k_out)
        return q_out, k_out

    @staticmethod
    def backward(ctx, grad_q, grad_k):
        ids, rope = ctx.saved_tensors
        gk = _last_dim_contiguous(grad_k) if ctx.has_k else None
        gq, gk = _ROPE(_last_dim_contiguous(grad_q), gk, ids, ctx.offset, rope, ctx.layout, not ctx.inverse)
        return gq, (gk if ctx.has_k else None), None, None, None, None, None


def _last_dim_contiguous(g):
    return g if g.stride(-1) == 1 else g.contiguous()


def _rope_autograd(keyset, q, k, ids, offset, rope, layout, inverse):
    if torch.is_grad_enabled() and (q.requires_grad or (k is not None and k.requires_grad)):
        return _RopeFunction.apply(q, k, ids, offset, rope, layout, inverse)
    below = keyset & _AFTER_AUTOGRAD
    if below.highestPriorityTypeId() == _CPU:  # plain CPU tensors: the kernel itself, no second dispatch
        return _rope_cpu(q, k, ids, offset, rope, layout, inverse)
    with torch._C._AutoDispatchBelowAutograd():
        return _ROPE.redispatch(below, q, k, ids, offset, rope, layout, inverse)


def _rope_inplace_autograd(keyset, q, k, ids, offset, rope, layout, inverse):
    if torch.is_grad_enabled() and (q.requires_grad or (k is not None and k.requires_grad)):
        raise RuntimeError("rotary::rope_: in place on a tensor that requires grad is not differentiable; use "
                           "rotary::rope (inplace=False) or torch.no_grad()")
    below = keyset & _AFTER_AUTOGRAD
    if below.highestPriorityTypeId() == _CPU:
        return _rope_inplace_cpu(q, k, ids, offset, rope, layout, inverse)
    with torch._C._AutoDispatchBelowAutograd():
        return _ROPE_.redispatch(below, q, k, ids, offset, rope, layout, inverse)


_library.impl("rope", _rope_autograd, "Autograd", with_keyset=True)
_library.impl("rope_", _rope_inplace_autograd, "Autograd", with_keyset=True)


# --- rope tensors ----------------------------------------------------------------------------------------------
@torch.compiler.assume_constant_result
def _rope_values_by_id(rope_id):
    return _torchop.rope_values(_core.rope_by_id(rope_id))


def _traced_values(r):
    """rope_values(r) without a librotary call, for a graph being traced: from the values the RoPE read once when
    it was made (_inv_freq, _attention_scaling), else by its id (a constant only while the id is)."""
    inv = getattr(r, "_inv_freq", None)
    if inv is None:
        return _rope_values_by_id(r.id)
    return _torchop.values_of(r._head_dim, r._max_positions, r._pairing, r._attention_scaling, inv,
                              r._n_streams, r._stream_map)


def rope_tensor(r):
    """The tensor that stands for RoPE r in the ops (float64 [head_dim, max_positions, pairing, attention_scaling,
    inv_freq...]); made once per rope. In a graph that Dynamo traces before any eager call it is made in the graph
    (a constant there)."""
    t = getattr(r, "_torch_rope", None)
    if t is None:
        if torch.compiler.is_dynamo_compiling():
            return torch.tensor(_traced_values(r), dtype=torch.float64)
        t = r._torch_rope = _torchop.rope_tensor(r)  # a real tensor, also under export's fake tracing
    return t


# --- RoPE.apply for tensors ------------------------------------------------------------------------------------
def _plain_eager(q, k):
    """True when nothing traces, transforms or records this call and q, k are plain tensors: the op's kernel may
    then run without the dispatcher (what an eager call through torch.ops would end up doing, minus its cost)."""
    return (not torch.compiler.is_compiling() and type(q) is torch.Tensor and (k is None or type(k) is torch.Tensor)
            and not _dispatch_modes() and not _function_modes() and _jit_tracing() is None
            and _functorch_level() is None and not _profiling())


_dispatch_modes = torch._C._len_torch_dispatch_stack
_function_modes = torch._C._is_torch_function_mode_enabled
_jit_tracing = torch._C._get_tracing_state
_functorch_level = torch._C._functorch.peek_interpreter_stack
_profiling = torch._C._autograd._profiler_enabled


def apply(r, q, k, positions, layout, inplace, inverse, flags=None):
    """RoPE.apply for torch tensors (see there): torch.ops.rotary.rope or rope_ (eager: their kernel). flags (CUDA,
    eager only): an int32 device tensor the kernel ORs ROTARY_CUDA_FLAG_* into."""
    if flags is not None:
        return _apply_flags(r, q, k, positions, layout, inplace, inverse, flags)
    return _apply(r, None, q, k, positions, layout, inplace, inverse)


def _apply_flags(r, q, k, positions, layout, inplace, inverse, flags):
    """An eager call with a device flags tensor: the kernel directly (the ops' schemas carry no flags)."""
    if not isinstance(q, torch.Tensor) or not q.is_cuda:
        raise ValueError("flags: only for CUDA tensors (on the CPU a position out of range raises)")
    if torch.is_grad_enabled() and (q.requires_grad or (k is not None and k.requires_grad)):
        raise ValueError("flags: not with tensors that require grad (run under torch.no_grad())")
    if not _plain_eager(q, k):
        raise ValueError("flags: eager calls only (CUDA graph capture included), not while torch.compile, "
                         "torch.export or a dispatch mode traces the call")
    if isinstance(positions, torch.Tensor):
        ids, offset = positions, 0
    else:
        ids, offset = _positions(positions)
    if getattr(r, "_torch_rope", None) is None:
        rope_tensor(r)
    if inplace:
        _rotate_inplace(r, q, k, ids, offset, layout, bool(inverse), flags)
        return q if k is None else (q, k)
    q_out, k_out = _torchop.rotate(r, q, k, ids, offset, layout, bool(inverse), False, flags)
    return q_out if k is None else (q_out, k_out)


def apply_tensor(rope, q, k, positions, layout, inplace, inverse):
    """apply() with the rope given as its tensor (rope_tensor), which may be computed in a traced graph."""
    return _apply(None, rope, q, k, positions, layout, inplace, inverse)


def _apply(r, rope, q, k, positions, layout, inplace, inverse):
    if not isinstance(q, torch.Tensor):
        raise TypeError(f"q: expected a torch.Tensor, got {type(q).__name__}")
    if k is not None and not isinstance(k, torch.Tensor):
        raise TypeError(f"k: expected a torch.Tensor like q, got {type(k).__name__}")
    if isinstance(positions, torch.Tensor):
        ids, offset = positions, 0
    else:
        ids, offset = _positions(positions)
    grad = torch.is_grad_enabled() and (q.requires_grad or (k is not None and k.requires_grad))
    inverse = bool(inverse)
    if inplace and grad:
        raise ValueError("inplace=True on tensors that require grad: use inplace=False for autograd "
                         "(or run under torch.no_grad())")
    if not grad and _plain_eager(q, k):
        if r is None:
            r = _torchop.rope_for(rope)
        elif getattr(r, "_torch_rope", None) is None:
            rope_tensor(r)  # made once, so that a graph traced later reads it (Dynamo cannot call librotary)
        if inplace:
            _rotate_inplace(r, q, k, ids, offset, layout, inverse)
            return q if k is None else (q, k)
        q_out, k_out = _torchop.rotate(r, q, k, ids, offset, layout, inverse, False)
        return q_out if k is None else (q_out, k_out)
    if rope is None:
        rope = rope_tensor(r)
    if inplace:
        _ROPE_(q, k, ids, offset, rope, layout, inverse)
        return q if k is None else (q, k)
    q_out, k_out = _ROPE(q, k, ids, offset, rope, layout, inverse)
    return q_out if k is None else (q_out, k_out)


def _positions(positions):
    """(ids tensor or None, offset) from None, an int offset or ids as a NumPy array or sequence."""
    off = _core._offset(positions, "tensor")
    if off is not None:
        return None, off
    if isinstance(positions, (np.ndarray, list, tuple, range)):
        ids = torch.as_tensor(np.asarray(positions))
        _core._check_torch_ids(ids)
        return ids, 0
    raise TypeError(f"positions: expected None, an int offset or an int32/int64 tensor of ids, "
                    f"got {type(positions).__name__}")


# --- the KV-cache ops (torch.ops.rotary.kv_write_, kv_rerotate_): rotary.kv_write / kv_rerotate with tensors ------
from ._torchkv import kv_rerotate, kv_write  # noqa: E402,F401

# --- decode attention (torch.ops.rotary.attention): rotary.attention / decode_step with tensors ---------------------
from . import _torchattn  # noqa: E402,F401
