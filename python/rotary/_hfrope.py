"""_hfrope.py: for rotary.hf, the rope(s) of a Hugging Face model and what each family's attention expects of them.

A family is described by what its modeling code does with cos/sin, read from transformers' modeling_*.py:
  pairing      "half" (rotate_half: dims i and i + rotary_dim/2) or "interleaved" (GLM: dims 2i and 2i + 1)
  partial      HF rotates only the leading rotary_dim = int(head_dim * partial_rotary_factor) dims of each head
               (q_rot / q_pass inside apply_rotary_pos_emb); False: HF's default rope ignores the factor, so a
               config that has one is refused rather than rotated differently
  sliced       the attention cuts q[..., :rotary_dim] itself before apply_rotary_pos_emb (StableLM): the rope
               handed to rotary then has head_dim = rotary_dim
  layered      one rope per layer type (Gemma 3: rotary_emb(x, position_ids, layer_type))
  streams      position_ids of shape [3, batch, seq] (Qwen2-VL mRoPE sections)
  fused_qkv    q and k are views of one projection whose heads interleave (GPT-NeoX: [..., heads, 3 * head_dim])
"""
import collections

import torch

from . import ops
from ._core import RoPE, hf_ropes

Family = collections.namedtuple("Family", "pairing partial sliced layered streams fused_qkv", defaults=(False,))
_PLAIN = Family("half", False, False, False, False)
FAMILIES = {
    "llama": _PLAIN, "mistral": _PLAIN, "qwen2": _PLAIN, "qwen3": _PLAIN, "gemma": _PLAIN, "gemma2": _PLAIN,
    "gemma3_text": Family("half", False, False, True, False),
    "phi3": Family("half", True, False, False, False),
    "gpt_neox": Family("half", True, False, False, False, True),
    "stablelm": Family("half", True, True, False, False),
    "glm": Family("interleaved", True, False, False, False),
    "glm4": Family("interleaved", True, False, False, False),
    "qwen2_vl_text": Family("half", False, False, False, True),
    "qwen2_5_vl_text": Family("half", False, False, False, True),
}
# What a user sees as the model type (the multimodal wrapper's) and the text config's model_type it stands for.
ALIASES = {"gemma3": "gemma3_text", "qwen2_vl": "qwen2_vl_text", "qwen2_5_vl": "qwen2_5_vl_text"}
SUPPORTED = tuple(sorted(set(FAMILIES) | set(ALIASES)))


def text_config(config):
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def family_of(config):
    model_type = getattr(text_config(config), "model_type", "")
    fam = FAMILIES.get(ALIASES.get(model_type, model_type))
    if fam is None:
        raise ValueError(f"rotary.hf.patch: model_type {model_type!r} is not supported (one of {SUPPORTED})")
    return model_type, fam


def _check(rope, model_type, fam, what=""):
    if rope.pairing != fam.pairing:
        raise ValueError(f"rotary.hf.patch: {model_type}{what}: the config gives {rope}, but this family's attention "
                         f"pairs dims {fam.pairing!r}")
    if not fam.partial and rope.rotary_dim != rope.head_dim:
        raise ValueError(f"rotary.hf.patch: {model_type}{what}: the config gives {rope} (partial rotary), but this "
                         "family's attention rotates the whole head")
    if fam.streams and rope.n_streams != 3:  # HF's rotary embedding always takes [3, batch, seq] ids
        raise ValueError(f"rotary.hf.patch: {model_type}{what}: the config gives {rope}, but this family's rotary "
                         "embedding turns 3 position streams (mrope_section)")


def _sliced_config(config, rotary_dim):
    """The config as a dict whose head is only the rotated part: what StableLM's attention hands
    apply_rotary_pos_emb (q[..., :rotary_dim]). Every scaling family computes its frequencies from
    int(head_dim * partial_rotary_factor), which is then head_dim itself. The factor is set to 1 rather than
    removed: librotary_hf gives a family its default factor when the config has none (StableLM's is 1/4)."""
    d = text_config(config).to_dict()
    d["head_dim"] = rotary_dim
    d.pop("rotary_pct", None)
    d["partial_rotary_factor"] = 1.0
    for holder in (d.get("rope_parameters"), d.get("rope_scaling")):
        if isinstance(holder, dict) and "partial_rotary_factor" in holder:
            holder["partial_rotary_factor"] = 1.0
    return d


def build_states(config, max_positions):
    """(family, {layer type or None: RopeState}) for a model config."""
    model_type, fam = family_of(config)
    text = text_config(config)
    layers = getattr(text, "num_hidden_layers", 1)
    if fam.layered:
        # one parse of the config by librotary_hf, a rope per layer type; HF's embedding holds one per type that
        # layer_types uses (rotary_emb(x, position_ids, layer_type)), each with its own dynamic_rope_update state
        ropes, _ = hf_ropes(config, max_positions)
        params = getattr(text, "rope_parameters", None) or {}
        states = {}
        for lt in sorted(set(getattr(text, "layer_types", None) or ())):
            if lt not in ropes:
                raise ValueError(f"rotary.hf.patch: {model_type}: no rope for layer type {lt!r} in the config "
                                 f"(it has {sorted(ropes)})")
            _check(ropes[lt], model_type, fam, f" ({lt})")
            kind = (params.get(lt) or {}).get("rope_type")  # this type's own (rope.hf names the config's)
            states[lt] = RopeState(ropes[lt], layers, kind)
        return fam, states
    rope = RoPE.from_hf_config(config, max_positions=max_positions)
    _check(rope, model_type, fam)
    if fam.sliced and rope.rotary_dim != rope.head_dim:
        rope = RoPE.from_hf_config(_sliced_config(config, rope.rotary_dim), max_positions=max_positions)
    return fam, {None: RopeState(rope, layers)}


class RopeState:
    """The rope of one model (or one layer type), for the current sequence length (dynamic NTK, LongRoPE), as HF's
    dynamic_rope_update chooses its inverse frequencies."""

    def __init__(self, rope, n_layers, kind=None):
        self.rope = rope
        self.current = rope
        self.kind = kind or rope.hf["rope_type"]
        self.n_layers = max(1, n_layers)
        self.original_max = rope.hf["max_position_embeddings"]          # HF: original_max_seq_len
        self.max_cached = self.original_max                             # HF: max_seq_len_cached
        self.longrope_original = rope.hf["original_max_position_embeddings"]
        # LongRoPE's long-factor rope exists up front: a traced forward picks it or the short one per call.
        self.long = rope.derive(self.longrope_original + 1) if self.kind == "longrope" else None
        for r in (self.rope, self.long):
            if r is not None:
                ops.rope_tensor(r)  # made now, so that a traced forward reads it instead of building it in the graph

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
