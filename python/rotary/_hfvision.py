"""_hfvision.py: for rotary.hf, the 2-D rope of the Qwen2-VL / Qwen2.5-VL vision tower (patch tokens rotated by
their (row, column) ids).

How transformers 5 does it (modeling_qwen2_vl.py, modeling_qwen2_5_vl.py): the vision model makes position_ids of
shape (tokens, 2) (row, column per patch, get_vision_position_ids), its rotary_pos_emb (a *VisionRotaryEmbedding with
inv_freq of head_dim/4 entries) turns them into cos/sin of (tokens, head_dim): the row's angles for frequencies
< head_dim/4, the column's for the next head_dim/4, both halves repeated (half pairing over the whole head); every
VisionAttention calls its module's apply_rotary_pos_emb_vision(q, k, cos, sin) on q, k of (tokens, heads, head_dim),
in float32. Qwen2.5-VL first reorders cos and sin for its window attention (permute_input_for_window_attn).

librotary's "vision_2d" rope (RoPE.vision_2d, style "qwen2_vl") is that split; the ids go to it as [2, tokens] stream
ids with layout "thd". Patching works at the same points as for the language model: the embedding returns the ids
(in RotaryPositions), apply_rotary_pos_emb_vision is wrapped to rotate with them, and the window reordering is
applied to the ids instead of to cos/sin.
"""
import sys

from ._core import RoPE

_FIRST_TABLE = 256  # rows (patches along a side) of the first table; it grows when an image has more


class VisionState:
    """The vision rope, its table grown to the largest row or column id seen (HF computes any)."""

    def __init__(self, module):
        params = getattr(module.config, "rope_parameters", None) or {}
        head_dim = 4 * module.inv_freq.numel()  # HF: inv_freq over head_dim // 2 dims, step 2
        self.rope = RoPE.vision_2d(head_dim, base=float(params.get("rope_theta", 10000.0)), style="qwen2_vl",
                                   max_positions=_FIRST_TABLE)

    def update(self, ids):
        need = int(ids.max()) + 1 if ids.numel() else 0
        if need > self.rope.max_positions:
            self.rope = self.rope.derive(self.rope.seq_len, max(need, 2 * self.rope.max_positions))
        return self.rope


def patch_tower(model, inplace, positions_cls):
    """Patches every Qwen2-VL-style vision rotary embedding in model; returns how many."""
    found = 0
    for module in model.modules():
        emb = getattr(module, "rotary_pos_emb", None)
        if emb is None or not type(emb).__name__.endswith("VisionRotaryEmbedding") or not hasattr(emb, "inv_freq"):
            continue
        modeling = sys.modules[type(emb).__module__]
        if not hasattr(modeling, "apply_rotary_pos_emb_vision"):
            continue
        _install_dispatch(modeling, positions_cls)
        _patch_embedding(emb, VisionState(emb), inplace, positions_cls)
        if hasattr(module, "permute_input_for_window_attn"):
            _patch_window_permute(module, positions_cls)
        found += 1
    return found


def _patch_embedding(module, state, inplace, positions_cls):
    def forward(x, position_ids):
        ids = position_ids.t()  # HF's (tokens, 2) -> stream ids [2, tokens]
        return (positions_cls(state.update(ids), ids, inplace, layout="thd"),) * 2

    module.forward = forward
    module._rotary_patched = True


def _patch_window_permute(module, positions_cls):
    """Qwen2.5-VL reorders cos/sin rows for window attention: the same reordering of the ids."""
    unpatch_module(module)  # patched again: wrap HF's method, not our wrapper
    original = module.permute_input_for_window_attn

    def permute_input_for_window_attn(input_tensor, window_index, seq_len):
        if isinstance(input_tensor, positions_cls):
            p = input_tensor
            ids = original(p.position_ids.t(), window_index, seq_len=seq_len).t()
            return positions_cls(p.rope, ids, p.inplace, layout=p.layout)
        return original(input_tensor, window_index, seq_len=seq_len)

    module.permute_input_for_window_attn = permute_input_for_window_attn
    module._rotary_window_patched = True


def unpatch_module(module):
    if getattr(module, "_rotary_window_patched", False):
        del module.permute_input_for_window_attn
        del module._rotary_window_patched


def _install_dispatch(modeling, positions_cls):
    """Wraps modeling.apply_rotary_pos_emb_vision once; the wrapper defers to HF unless given RotaryPositions."""
    original = modeling.apply_rotary_pos_emb_vision
    if getattr(original, "_rotary_original", None) is not None:
        return

    def apply_rotary_pos_emb_vision(q, k, cos, sin, *args, **kwargs):
        if isinstance(cos, positions_cls):
            return cos.apply(q, k)
        return original(q, k, cos, sin, *args, **kwargs)

    apply_rotary_pos_emb_vision.__doc__ = original.__doc__
    apply_rotary_pos_emb_vision._rotary_original = original
    modeling.apply_rotary_pos_emb_vision = apply_rotary_pos_emb_vision
