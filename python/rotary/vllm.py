"""vllm.py: vLLM's two calls after the QKV projection, rotary_embedding(positions, query, key, head_size,
cos_sin_cache, is_neox) and reshape_and_cache_flash(key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype,
k_scale, v_scale), as one librotary pass over torch CPU tensors (torch.ops.rotary.kv_write_).

MRotaryEmbedding / mrotary_embedding: vLLM's MRotaryEmbedding.forward (multimodal mRoPE: positions [3, num_tokens],
contiguous mrope_section or Qwen3-VL's interleaved rule; [num_tokens] positions for text) with librotary's exact
cos/sin rows.

Differences from the pair, on purpose: `key` is read, not rotated in place (vLLM's rotary_embedding rotates it in
place; the rotated keys go only to key_cache here, which is what vLLM's attention backends read after
reshape_and_cache_flash). A caller that reads `key` afterwards rotates it itself (rope.apply(key, ...)).
k_scale and v_scale are Python floats or one-element tensors (read with float(), so pass floats under
torch.compile(fullgraph=True)). fp8 caches are e4m3 ("fp8", "fp8_e4m3"), stored = value / scale, as vLLM's.
"""
import torch

from . import _core, _torchop
from ._kv import KVCache
from .kv import kv_write

__all__ = ["rotary_embedding_and_cache", "MRotaryEmbedding", "mrotary_embedding"]

_KV_CACHE_DTYPES = {"auto": "auto", "fp8": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3"}
_geometry_ropes = {}  # (head_size, rotary_dim, is_neox) -> a rope tensor for caller cos/sin rows


def _geometry_rope(head_size, rotary_dim, is_neox):
    """A rope tensor with only the geometry (head_size, rotary_dim, pairing): with caller cos/sin rows librotary
    uses none of its frequencies (placeholder ones) nor a table."""
    key = (head_size, rotary_dim, bool(is_neox))
    t = _geometry_ropes.get(key)
    if t is None:
        pairing = _torchop._PAIRING_CODES["half" if is_neox else "interleaved"]
        t = torch.tensor([float(head_size), 0.0, float(pairing), 1.0] + [1.0] * (rotary_dim // 2),
                         dtype=torch.float64)
        if not torch.compiler.is_compiling():
            _geometry_ropes[key] = t
    return t


def _scale(x, name):
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise ValueError(f"{name}: expected one value, got shape {tuple(x.shape)}")
        return float(x.reshape(()))
    return float(x)


def rotary_embedding_and_cache(positions, query, key, value, key_cache, value_cache, slot_mapping, head_size,
                               cos_sin_cache, is_neox, kv_cache_dtype="auto", k_scale=1.0, v_scale=1.0):
    """Rotates query in place and writes rotated key and unrotated value into vLLM's flash-layout caches.

    positions: [num_tokens] int64. query: [num_tokens, num_heads * head_size] (or [num_tokens, num_heads,
    head_size]), rotated in place. key, value: [num_tokens, num_kv_heads * head_size] (or 3-D), read only.
    key_cache, value_cache: [num_blocks, block_size, num_kv_heads, head_size] (float32, float16, bfloat16; fp8 as
    torch.uint8 or torch.float8_e4m3fn), written in place. slot_mapping: int64 slots (block * block_size + row),
    negative skips a token; shorter than num_tokens means the tokens past it are padding (not cached; their query
    is still rotated), as vLLM sizes it. cos_sin_cache: vLLM's [max_position, rotary_dim] tensor (cos half, then
    sin half; any float dtype, used as float32), or a rotary.RoPE (exact cos/sin from librotary; head_size and
    is_neox must agree with it). kv_cache_dtype: "auto" (the caches' dtype), "fp8" or "fp8_e4m3".
    Returns None, as vLLM's ops. Errors (rotary.RotaryError) leave query and the caches unchanged.
    """
    if kv_cache_dtype not in _KV_CACHE_DTYPES:
        raise ValueError(f"kv_cache_dtype: {kv_cache_dtype!r} is not supported ('auto', 'fp8', 'fp8_e4m3'; "
                         "fp8_e5m2 caches are not)")
    n = query.shape[0]
    q = query.unflatten(-1, (-1, head_size)) if query.dim() == 2 else query
    k = key.unflatten(-1, (-1, head_size)) if key.dim() == 2 else key
    v = value.unflatten(-1, (-1, head_size)) if value.dim() == 2 else value
    if slot_mapping.shape[0] < n:  # padded tokens: rotated, never cached
        slot_mapping = torch.cat([slot_mapping.to(torch.int64),
                                  slot_mapping.new_full((n - slot_mapping.shape[0],), -1, dtype=torch.int64)])
    cache = KVCache(key_cache, value_cache, "NHD", _KV_CACHE_DTYPES[kv_cache_dtype], _scale(k_scale, "k_scale"),
                    _scale(v_scale, "v_scale"))
    if isinstance(cos_sin_cache, _core.RoPE):
        rope = cos_sin_cache
        if rope.head_dim != head_size or (rope.pairing == "half") != bool(is_neox):
            raise ValueError(f"cos_sin_cache: the RoPE (head_dim {rope.head_dim}, pairing {rope.pairing!r}) does not "
                             f"match head_size {head_size}, is_neox {is_neox}")
        kv_write(rope, q, k, v, cache, positions.reshape(-1), slot_mapping=slot_mapping, layout="thd")
        return None
    half = cos_sin_cache.shape[-1] // 2
    rows = cos_sin_cache.index_select(0, positions.reshape(-1).to(torch.int64))
    cos = rows[:, :half].to(torch.float32).contiguous()
    sin = rows[:, half:].to(torch.float32).contiguous()
    rope = _geometry_rope(head_size, 2 * half, is_neox)
    kv_write(rope, q, k, v, cache, slot_mapping=slot_mapping, cos_sin=(cos, sin), layout="thd")
    return None


# --- mRoPE -------------------------------------------------------------------------------------------------------
def mrotary_embedding(rope, positions, query, key=None, inplace=False):
    """vLLM's MRotaryEmbedding.forward_native with a rotary.RoPE: returns (query', key') (key' None when key is).

    rope: a RoPE with the model's streams (RoPE(head_size, rotary_dim, base, pairing, mrope_section=...,
    mrope_interleaved=...)). positions: int32/int64 [num_tokens] (text: every stream the same) or
    [n_streams, num_tokens] (T/H/W). query: [num_tokens, num_heads * head_size] (or [num_tokens, num_heads,
    head_size]); key likewise with its kv heads. Out of place as forward_native (new tensors, the inputs' shapes),
    or in place (inplace=True, as vLLM's CUDA kernel). Autograd and torch.compile as rotary.ops."""
    from . import ops
    hd = rope.head_dim
    q = query.unflatten(-1, (-1, hd)) if query.dim() == 2 else query
    k = None if key is None else (key.unflatten(-1, (-1, hd)) if key.dim() == 2 else key)
    if positions.dim() not in (1, 2):
        raise ValueError(f"positions: expected [num_tokens] or [n_streams, num_tokens], got shape "
                         f"{tuple(positions.shape)}")
    out = ops.apply(rope, q, k, positions, "thd", inplace, False)
    q_out, k_out = (out, None) if k is None else out
    if inplace:
        return query, key
    return q_out.reshape(query.shape), (None if key is None else k_out.reshape(key.shape))


class MRotaryEmbedding:
    """vLLM's MRotaryEmbedding(head_size, rotary_dim, max_position_embeddings, base, is_neox_style, dtype,
    mrope_section, mrope_interleaved) over librotary; forward(positions, query, key) as its forward_native.

    The table holds max_position_embeddings * 4 positions, as vLLM's cache (Qwen2.5-VL video ids run past the
    text length). dtype is accepted and unused: librotary computes in fp32 from exact rows and rounds once to the
    query's dtype. scaling: an optional Hugging Face rope_scaling dict (vLLM's YaRN parameters as
    {"rope_type": "yarn", "factor": ..., ...})."""

    def __init__(self, head_size, rotary_dim, max_position_embeddings, base, is_neox_style, dtype=None,
                 mrope_section=None, mrope_interleaved=False, scaling=None):
        if mrope_section is not None and sum(mrope_section) != rotary_dim // 2:
            raise ValueError(f"mrope_section: {list(mrope_section)} does not sum to rotary_dim // 2 = "
                             f"{rotary_dim // 2}")
        self.head_size, self.rotary_dim = head_size, rotary_dim
        self.is_neox_style = bool(is_neox_style)
        self.mrope_section = None if mrope_section is None else list(mrope_section)
        self.mrope_interleaved = bool(mrope_interleaved)
        self.rope = _core.RoPE(head_size, rotary_dim=rotary_dim, base=base,
                               pairing="half" if is_neox_style else "interleaved", scaling=scaling,
                               max_positions=4 * max_position_embeddings, mrope_section=mrope_section,
                               mrope_interleaved=self.mrope_interleaved)

    def forward(self, positions, query, key=None):
        if positions.dim() == 2 and self.mrope_section is None:
            raise ValueError("positions: [n_streams, num_tokens] needs mrope_section")
        return mrotary_embedding(self.rope, positions, query, key)

    __call__ = forward
    forward_native = forward
