"""hf.py: makes Hugging Face transformers models (Llama, Qwen2, Mistral) apply their attention RoPE with rotary.

How a transformers 5 model applies RoPE: the model's rotary embedding module (model.model.rotary_emb) turns the
position_ids into cos/sin once per forward, every decoder layer passes that pair to its attention, and the attention
calls its modeling module's apply_rotary_pos_emb(q, k, cos, sin) on q and k of shape (batch, heads, seq, head_dim).

patch(model) works at those two points and nowhere else:
  - the model's rotary embedding module returns, instead of cos/sin tensors, a small object carrying HF's own
    position_ids and the rope to use (a RoPE built from the model config by librotary_hf, so rope_theta, head_dim,
    rope_scaling / rope_parameters are the model's; dynamic NTK and LongRoPE follow the sequence length the way
    HF's dynamic_rope_update does, through rotary_rope_derive);
  - the modeling module's apply_rotary_pos_emb is wrapped once: given that object it rotates q and k with rotary
    (ids per token, one call for q and k, GQA head counts), otherwise it calls HF's function unchanged, so models
    that were not patched behave exactly as before.
q and k are rotated in place when no gradient is needed (they are the fresh outputs of q_proj/k_proj), out of place
through the autograd custom op otherwise. unpatch(model) restores HF's rotary embedding.
"""
import sys

import torch

from . import ops
from ._core import RoPE

SUPPORTED = ("llama", "qwen2", "mistral")


class RotaryPositions:
    """Stands in for HF's (cos, sin) pair: the rope (a RoPE, or its tensor chosen in a traced graph) and the
    position_ids of this forward."""
    __slots__ = ("rope", "position_ids", "inplace")

    def __init__(self, rope, position_ids, inplace):
        self.rope = rope
        self.position_ids = position_ids
        self.inplace = inplace

    def apply(self, q, k, unsqueeze_dim=1):
        layout = {1: "bhsd", 2: "bshd"}.get(unsqueeze_dim)
        if layout is None:
            raise ValueError(f"rotary.hf: unsqueeze_dim={unsqueeze_dim} is not supported (1: bhsd, 2: bshd)")
        grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
        inplace = self.inplace and not grad
        if isinstance(self.rope, torch.Tensor):
            return ops.apply_tensor(self.rope, q, k, self.position_ids, layout, inplace, False)
        return ops.apply(self.rope, q, k, self.position_ids, layout, inplace, False)


class _RopeState:
    """The rope of one model, for the current sequence length (dynamic NTK, LongRoPE), as HF's
    dynamic_rope_update chooses its inverse frequencies."""

    def __init__(self, rope, n_layers):
        self.rope = rope
        self.current = rope
        self.kind = rope.hf["rope_type"]
        self.n_layers = max(1, n_layers)
        self.original_max = rope.hf["max_position_embeddings"]          # HF: original_max_seq_len
        self.max_cached = self.original_max                             # HF: max_seq_len_cached
        self.longrope_original = rope.hf["original_max_position_embeddings"]
        # LongRoPE's long-factor rope exists up front: a traced forward picks it or the short one per call.
        self.long = rope.derive(self.longrope_original + 1) if self.kind == "longrope" else None

    def update(self, position_ids):
        """The rope for this forward. Eager: HF's choice, from the largest position (a data-dependent read).
        Traced (torch.compile, torch.export): no Python branch on position values, so the forward traces without
        a graph break; the tables keep their size and librotary checks the positions when the graph runs."""
        if torch.compiler.is_compiling():
            if self.kind == "longrope":  # HF's own traceable choice: long factors past the original length
                longer = position_ids.max() + 1 > self.longrope_original
                return torch.where(longer, ops.rope_tensor(self.long), ops.rope_tensor(self.rope))
            if "dynamic" not in self.kind:
                return self.rope
            # dynamic NTK: frequencies recomputed per length, by data-dependent control flow as in HF itself
        seq_len = int(position_ids.max()) + 1 if position_ids.numel() else 0
        if "dynamic" not in self.kind and self.kind != "longrope":
            # HF computes cos/sin for any position: past the table, grow it (derive copies the rows it has).
            if self.rope.max_positions and seq_len > self.rope.max_positions:
                self.rope = self.rope.derive(self.rope.seq_len, max(seq_len, 2 * self.rope.max_positions))
            return self.rope
        if "dynamic" in self.kind:
            if seq_len > self.max_cached:  # growth: frequencies for this length
                # A table of seq_len rows is worth it when this forward rotates more tokens over all layers than
                # the table has rows; for a decode step the table-free rope computes the few rows it needs.
                tokens = position_ids.numel() * self.n_layers
                self.current = self.rope.derive(seq_len, seq_len if tokens >= seq_len else 0)
                self.max_cached = seq_len
            if seq_len < self.original_max and self.max_cached > self.original_max:  # back to the original scale
                self.current = self.rope
                self.max_cached = self.original_max
            return self.current
        if seq_len > self.longrope_original:  # LongRoPE: the long factors past the original length
            if seq_len > self.long.max_positions:
                self.long = self.long.derive(self.longrope_original + 1, seq_len)
            return self.long
        return self.rope


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


def patch(model, inplace=True, max_positions=None):
    """Makes a Llama, Qwen2 or Mistral model (any head: CausalLM, bare model, ...) use rotary for its attention
    RoPE. Returns the model. The rope comes from the model's config (RoPE.from_hf_config); max_positions sizes its
    table (default: max_position_embeddings). inplace: rotate q and k in their own memory when no gradient is
    needed (default). Calling patch twice re-patches with the new arguments."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    model_type = getattr(config, "model_type", "")
    if model_type not in SUPPORTED:
        raise ValueError(f"rotary.hf.patch: model_type {model_type!r} is not supported (one of {SUPPORTED})")
    rope = RoPE.from_hf_config(config, max_positions=max_positions)
    if rope.pairing != "half" or rope.rotary_dim != rope.head_dim:
        raise ValueError(f"rotary.hf.patch: {model_type} with {rope} is not the half-pairing full-rotary RoPE "
                         "these models' attention expects")
    state = _RopeState(rope, getattr(config, "num_hidden_layers", 1))
    for r in (state.rope, state.long):
        if r is not None:
            ops.rope_tensor(r)  # made now, so that a traced forward reads it instead of building it in the graph
    found = 0
    for module in model.modules():
        name = type(module).__name__
        if name.endswith("RotaryEmbedding") and hasattr(module, "inv_freq"):
            _patch_embedding(module, state, inplace)
            found += 1
        elif name.endswith("Attention"):
            modeling = sys.modules[type(module).__module__]
            if hasattr(modeling, "apply_rotary_pos_emb"):
                _install_dispatch(modeling)
    if not found:
        raise ValueError("rotary.hf.patch: no rotary embedding module found in the model")
    model._rotary_state = state
    return model


def _patch_embedding(module, state, inplace):
    def forward(x, position_ids, layer_type=None):
        if layer_type is not None:
            raise ValueError("rotary.hf: per-layer-type rope parameters are not supported")
        return (RotaryPositions(state.update(position_ids), position_ids, inplace),) * 2

    module.forward = forward
    module._rotary_patched = True


def unpatch(model):
    """Restores HF's own rotary embedding (cos/sin tensors) in every rotary embedding module of the model."""
    for module in model.modules():
        if getattr(module, "_rotary_patched", False):
            del module.forward
            del module._rotary_patched
    if hasattr(model, "_rotary_state"):
        del model._rotary_state
    return model


def is_patched(model):
    return any(getattr(m, "_rotary_patched", False) for m in model.modules())
