"""hf.py: makes Hugging Face transformers models apply their attention RoPE with rotary: Llama, Mistral, Qwen2,
Qwen3, Gemma, Gemma 2, Gemma 3 (text), Phi-3, GPT-NeoX, StableLM, GLM / GLM-4, Qwen2-VL and Qwen2.5-VL (the
language model's mRoPE and the vision tower's 2-D rope, _hfvision.py).

How a transformers 5 model applies RoPE: the model's rotary embedding module (model.model.rotary_emb) turns the
position_ids into cos/sin once per forward (Gemma 3: once per layer type; Qwen2-VL: from [3, batch, seq] ids, one
stream per mRoPE section), every decoder layer passes that pair to its attention, and the attention calls its
modeling module's apply_rotary_pos_emb(q, k, cos, sin) on q and k of shape (batch, heads, seq, head_dim) (StableLM
first cuts q[..., :rotary_dim]; GPT-NeoX, Phi-3 and GLM cut it inside apply_rotary_pos_emb by cos's width).

patch(model) works at those two points and nowhere else:
  - the model's rotary embedding module returns, instead of cos/sin tensors, a small object carrying HF's own
    position_ids and the rope to use (a RoPE built from the model config by librotary_hf, so rope_theta, head_dim,
    partial_rotary_factor, rope_scaling / rope_parameters are the model's; dynamic NTK and LongRoPE follow the
    sequence length the way HF's dynamic_rope_update does, through rotary_rope_derive);
  - the modeling module's apply_rotary_pos_emb is wrapped once: given that object it rotates q and k with rotary
    (ids per token, one call for q and k, GQA head counts, partial rotary and GLM's interleaved pairs natively),
    otherwise it calls HF's function unchanged, so models that were not patched behave exactly as before.
q and k are rotated in place when no gradient is needed (they are the fresh outputs of q_proj/k_proj), out of place
through the autograd custom op otherwise. A model on a CUDA device is rotated by librotary's CUDA backend (q, k and
HF's position_ids all on that device; the rope state reads the largest position once per forward, as HF's dynamic
update does, which synchronizes the host). unpatch(model) restores HF's rotary embedding. _hfrope.py holds what
each family expects (pairing, partial rotary, per-layer ropes, position streams) and the rope state.
"""
import sys

import torch

from . import _hfvision, ops
from ._hfrope import SUPPORTED, build_states  # noqa: F401  (SUPPORTED: the model types patch takes)


class RotaryPositions:
    """Stands in for HF's (cos, sin) pair: the rope (a RoPE, or its tensor chosen in a traced graph) and the
    position_ids of this forward ([batch, seq], or [3, batch, seq] for mRoPE). split: rotate q and k in place by
    two calls, for attentions whose q and k heads interleave in one buffer (GPT-NeoX's per-head fused QKV), which
    librotary's overlap check, per token, cannot tell apart from overlapping memory. layout: "thd" for a vision
    tower's patch tokens (q, k of (tokens, heads, head_dim), ids [2, tokens]); None: from unsqueeze_dim."""
    __slots__ = ("rope", "position_ids", "inplace", "split", "layout")

    def __init__(self, rope, position_ids, inplace, split=False, layout=None):
        self.rope = rope
        self.position_ids = position_ids
        self.inplace = inplace
        self.split = split
        self.layout = layout

    def apply(self, q, k, unsqueeze_dim=1):
        layout = self.layout or {1: "bhsd", 2: "bshd"}.get(unsqueeze_dim)
        if layout is None:
            raise ValueError(f"rotary.hf: unsqueeze_dim={unsqueeze_dim} is not supported (1: bhsd, 2: bshd)")
        grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
        inplace = self.inplace and not grad
        if isinstance(self.rope, torch.Tensor):
            rope, apply = self.rope, ops.apply_tensor
        else:
            rope, apply = self.rope, ops.apply
        if inplace and self.split:
            return (apply(rope, q, None, self.position_ids, layout, True, False),
                    apply(rope, k, None, self.position_ids, layout, True, False))
        return apply(rope, q, k, self.position_ids, layout, inplace, False)


def _install_dispatch(modeling):
    """Wraps modeling.apply_rotary_pos_emb once; the wrapper defers to HF unless given RotaryPositions."""
    original = modeling.apply_rotary_pos_emb
    if getattr(original, "_rotary_original", None) is not None:
        return

    def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1, *args, **kwargs):
        if isinstance(cos, RotaryPositions):
            return cos.apply(q, k, unsqueeze_dim)
        return original(q, k, cos, sin, unsqueeze_dim, *args, **kwargs)

    apply_rotary_pos_emb.__doc__ = original.__doc__
    apply_rotary_pos_emb._rotary_original = original
    modeling.apply_rotary_pos_emb = apply_rotary_pos_emb


def patch(model, inplace=True, max_positions=None, vision=True):
    """Makes a model of one of the SUPPORTED types (any head: CausalLM, bare model, the multimodal wrapper of Gemma 3
    and Qwen2-VL, ...) use rotary for its language model's attention RoPE. Returns the model. The rope comes from
    the model's config (RoPE.from_hf_config; Gemma 3: one per layer type); max_positions sizes its table (default:
    max_position_embeddings). inplace: rotate q and k in their own memory when no gradient is needed (default).
    Calling patch twice re-patches with the new arguments. A config whose rope differs from what the family's
    attention computes (pairing, partial rotary) raises ValueError. vision: also the vision tower's 2-D rope
    (Qwen2-VL, Qwen2.5-VL; see _hfvision.py)."""
    fam, states = build_states(model.config, max_positions)
    split = fam.fused_qkv
    found = 0
    for module in model.modules():
        name = type(module).__name__
        if "Vision" in name:  # a multimodal model's vision tower: below
            continue
        if name.endswith("RotaryEmbedding") and hasattr(module, "inv_freq") or _is_layered_embedding(module, states):
            _patch_embedding(module, states, inplace, split)
            found += 1
        elif name.endswith("Attention"):
            modeling = sys.modules[type(module).__module__]
            if hasattr(modeling, "apply_rotary_pos_emb"):
                _install_dispatch(modeling)
    if not found:
        raise ValueError("rotary.hf.patch: no rotary embedding module found in the model")
    if vision and fam.streams:
        _hfvision.patch_tower(model, inplace, RotaryPositions)
    model._rotary_state = states
    return model


def _is_layered_embedding(module, states):
    """Gemma 3's rotary embedding keeps one inv_freq per layer type ({layer_type}_inv_freq) and none plain."""
    return (None not in states and type(module).__name__.endswith("RotaryEmbedding")
            and all(hasattr(module, f"{lt}_inv_freq") for lt in states))


def _patch_embedding(module, states, inplace, split):
    def forward(x, position_ids, layer_type=None):
        state = states.get(layer_type)
        if state is None:
            raise ValueError(f"rotary.hf: no rope for layer type {layer_type!r} (the config has "
                             f"{sorted(k for k in states if k is not None) or 'one rope'})")
        return (RotaryPositions(state.update(position_ids), position_ids, inplace, split),) * 2

    module.forward = forward
    module._rotary_patched = True


def unpatch(model):
    """Restores HF's own rotary embedding (cos/sin tensors) in every rotary embedding module of the model."""
    for module in model.modules():
        if getattr(module, "_rotary_patched", False):
            del module.forward
            del module._rotary_patched
        _hfvision.unpatch_module(module)
    if hasattr(model, "_rotary_state"):
        del model._rotary_state
    return model


def is_patched(model):
    return any(getattr(m, "_rotary_patched", False) for m in model.modules())
