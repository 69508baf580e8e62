"""rotary: Rotary Position Embedding (RoPE) for q and k on the CPU, a thin ctypes binding over librotary.

    import rotary
    rope = rotary.RoPE(head_dim=128)                      # LLaMA: base 10000, "half" pairing, 8192-position table
    q, k = rope.apply(q, k, positions=past_len)           # NumPy arrays or torch CPU tensors, (batch, seq, heads, dim)

KV cache (one pass: rotate q, write rotated k and v into a cache in place): rotary.KVCache, rotary.kv_write,
rotary.kv_write_qkv, rotary.kv_rerotate; rotary.vllm mirrors vLLM's rotary_embedding + reshape_and_cache_flash.
Decode attention over such a cache, RoPE fused in: rotary.attention (1-16 query tokens per sequence, GQA, windows,
soft-capping, lse) and rotary.decode_step (rotate, write and attend in one call).

Multi-stream positions (mRoPE, 2-D vision): RoPE(..., mrope_section=[16, 24, 24]), RoPE.vision_2d(...), ids of
shape [n_streams, batch, seq]; per-layer ropes of a Hugging Face config: rotary.hf_ropes(config).

Settings (speed only, never results) and tuning files: rotary.settings(), rotary.set_setting(name, value),
rotary.tune(rope_or_config, ...) measures them on this machine, rotary.save_tuning() / rotary.load_tuning(path),
RoPE(..., tuning="auto" | path | {name: value}) for a rope with its own settings.

Submodules: rotary.ops (torch custom ops), rotary.hf (Hugging Face patch), rotary.onnx (ONNX RotaryEmbedding).
"""
from ._core import (DEFAULT_MAX_POSITIONS, LAYOUTS, RoPE, RotaryDeviceError, RotaryError, RotaryTuningError,
                    RotaryTypeError,
                    get_num_threads, hf_ropes, info, set_num_threads, version)
from ._tuning import load_tuning, reset_settings, save_tuning, set_setting, settings, tune, tuning_path  # noqa: E402

from .kv import KVCache, kv_rerotate, kv_write, kv_write_qkv  # noqa: E402
from .decode import attention, decode_step  # noqa: E402
from . import _torchhook  # noqa: E402

_torchhook.install()  # registers torch.ops.rotary.* as soon as torch is imported (torch.export.load needs them)

__version__ = "0.2.0"
__all__ = ["RoPE", "RotaryError", "RotaryTypeError", "LAYOUTS", "DEFAULT_MAX_POSITIONS", "set_num_threads",
           "get_num_threads", "info", "version", "hf_ropes", "KVCache", "kv_write", "kv_write_qkv", "kv_rerotate",
           "RotaryTuningError", "settings", "set_setting", "reset_settings", "load_tuning", "save_tuning",
           "tuning_path", "tune", "RotaryDeviceError", "attention", "decode_step"]
