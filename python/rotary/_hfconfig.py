"""_hfconfig.py: RoPE.from_hf_config through librotary_hf's config.json reader (no Python copy of its rules)."""
import ctypes
import json
import os

from . import _lib
from ._core import DEFAULT_MAX_POSITIONS, _raise


def _json_text(config):
    """JSON text of a dict or a transformers PretrainedConfig, or None for a path (read by the C library)."""
    if isinstance(config, dict):
        return json.dumps(config)
    if hasattr(config, "to_dict") and callable(config.to_dict):
        if hasattr(config, "get_text_config"):
            config = config.get_text_config()
        return json.dumps(config.to_dict(), default=str)
    if isinstance(config, (str, os.PathLike)):
        return None
    raise TypeError(f"config: expected a dict, a path to config.json (or its folder) or a transformers config, "
                    f"got {type(config).__name__}")


def rope_from_hf_config(cls, config, max_positions):
    hf = _lib.hf_lib
    if hf is None:  # every build has it: a broken install; say what the loader said
        raise ImportError(f"rotary: from_hf_config needs librotary_hf, which cannot be loaded: {_lib.hf_lib_error}")
    if max_positions is not None:
        max_positions = _lib.c_int_arg(max_positions, "max_positions")
    text = _json_text(config)
    handle = ctypes.c_void_p()
    err = ctypes.create_string_buffer(512)
    if text is None:
        path = os.fspath(config)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        st = hf.rotary_hf_config_load(path.encode(), ctypes.byref(handle), err, len(err))
        what = f"rotary_hf_config_load({path})"
    else:
        data = text.encode()
        st = hf.rotary_hf_config_parse(data, len(data), ctypes.byref(handle), err, len(err))
        what = "rotary_hf_config_parse"
    if st != _lib.OK:
        if st == _lib.ERR_IO:
            raise FileNotFoundError(f"{what}: {_lib.status_string(st)}: {err.value.decode()}")
        _raise(st, what, err.value.decode() or None)
    try:
        cfg = hf.rotary_hf_config_rope(handle).contents
        table = hf.rotary_hf_config_max_positions(handle)
        info = {
            "model_type": hf.rotary_hf_config_model_type(handle).decode(),
            "rope_type": hf.rotary_hf_config_rope_type(handle).decode(),
            "num_attention_heads": int(hf.rotary_hf_config_heads(handle)),
            "num_key_value_heads": int(hf.rotary_hf_config_kv_heads(handle)),
            "max_position_embeddings": int(table),
            "original_max_position_embeddings": int(cfg.scaling.original_max_position_embeddings),
            "scaling_max_position_embeddings": int(cfg.scaling.max_position_embeddings),
        }
        if max_positions is None:
            max_positions = table or DEFAULT_MAX_POSITIONS
        self = cls.__new__(cls)
        self._init_from_config(cfg, max_positions)  # rotary_rope_create copies every array it reads
        self.hf = info
        return self
    finally:
        hf.rotary_hf_config_destroy(handle)
