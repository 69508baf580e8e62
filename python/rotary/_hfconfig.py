"""_hfconfig.py: RoPE.from_hf_config through librotary_hf's config.json reader (no Python copy of its rules)."""
import ctypes
import json
import os

from . import _lib
from ._core import DEFAULT_MAX_POSITIONS, RotaryError, _raise


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


# The loader's name of each scaling family, for ropes past rope 0 (rotary_hf_config_rope_type names rope 0's, as the
# config spells it: "su" and Phi-3's "yarn" load as longrope, "mrope" as default plus streams).
_SCALING_NAMES = {0: "default", 1: "linear", 2: "dynamic", 3: "ntk", 4: "yarn", 5: "llama3", 6: "longrope"}


def _parse(config):
    """A rotary_hf_config handle (the caller destroys it) from a dict, a path or a transformers config."""
    hf = _lib.hf_lib
    if hf is None:  # every build has it: a broken install; say what the loader said
        raise ImportError(f"rotary: from_hf_config needs librotary_hf, which cannot be loaded: {_lib.hf_lib_error}")
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
    return handle


def _names(handle):
    """The rope names (layer types) of a parsed config, rope 0 first."""
    hf = _lib.hf_lib
    if not _lib.HAS_HF_LAYERS:
        return ["default"]
    return [hf.rotary_hf_config_rope_name(handle, i).decode() for i in range(hf.rotary_hf_config_rope_count(handle))]


def _layer_count(handle):
    return int(_lib.hf_lib.rotary_hf_config_layers(handle)) if _lib.HAS_HF_LAYERS else 0


def _rope_index(handle, layer, layer_type):
    """The index of the rope asked for: rope 0 by default, that of layer `layer` or of layer type `layer_type`."""
    if layer is not None and layer_type is not None:
        raise ValueError("from_hf_config: give layer= or layer_type=, not both")
    names = _names(handle)
    if layer_type is not None:
        if layer_type not in names:
            raise ValueError(f"from_hf_config: layer_type {layer_type!r} has no rope in this config (it has "
                             f"{names})")
        return names.index(layer_type)
    if layer is None:
        return 0
    layer = _lib.c_int_arg(layer, "from_hf_config: layer")
    if not _lib.HAS_HF_LAYERS:
        return 0
    index = ctypes.c_size_t()
    st = _lib.hf_lib.rotary_hf_config_layer_rope(handle, layer, ctypes.byref(index))
    if st != _lib.OK:
        _raise(st, "rotary_hf_config_layer_rope", f"layer {layer} of {_layer_count(handle)}")
    return int(index.value)


def _rope(cls, handle, index, max_positions):
    """RoPE number `index` of a parsed config, with its .hf dict."""
    hf = _lib.hf_lib
    ptr = hf.rotary_hf_config_rope_at(handle, index) if _lib.HAS_HF_LAYERS else hf.rotary_hf_config_rope(handle)
    if not ptr:
        raise RotaryError(_lib.ERR_LAYER, f"rotary_hf_config_rope_at: no rope {index}")
    cfg = ptr.contents
    table = hf.rotary_hf_config_max_positions(handle)
    info = {
        "model_type": hf.rotary_hf_config_model_type(handle).decode(),
        "rope_type": hf.rotary_hf_config_rope_type(handle).decode() if index == 0 else
        _SCALING_NAMES.get(cfg.scaling.type, "default"),
        "num_attention_heads": int(hf.rotary_hf_config_heads(handle)),
        "num_key_value_heads": int(hf.rotary_hf_config_kv_heads(handle)),
        "max_position_embeddings": int(table),
        "original_max_position_embeddings": int(cfg.scaling.original_max_position_embeddings),
        "scaling_max_position_embeddings": int(cfg.scaling.max_position_embeddings),
        "num_hidden_layers": _layer_count(handle),
        "layer_type": _names(handle)[index],
    }
    if max_positions is None:
        max_positions = table or DEFAULT_MAX_POSITIONS
    self = cls.__new__(cls)
    self._init_from_config(cfg, max_positions)  # rotary_rope_create copies every array it reads
    self.hf = info
    return self


def rope_from_hf_config(cls, config, max_positions, layer=None, layer_type=None):
    if max_positions is not None:
        max_positions = _lib.c_int_arg(max_positions, "max_positions")
    handle = _parse(config)
    try:
        return _rope(cls, handle, _rope_index(handle, layer, layer_type), max_positions)
    finally:
        _lib.hf_lib.rotary_hf_config_destroy(handle)


def hf_ropes(cls, config, max_positions=None):
    """({layer type: RoPE}, [layer type of each layer]) of a config, from one parse."""
    if max_positions is not None:
        max_positions = _lib.c_int_arg(max_positions, "max_positions")
    handle = _parse(config)
    try:
        names = _names(handle)
        ropes = {name: _rope(cls, handle, i, max_positions) for i, name in enumerate(names)}
        layers = []
        for layer in range(_layer_count(handle)):
            layers.append(names[_rope_index(handle, layer, None)])
        return ropes, layers
    finally:
        _lib.hf_lib.rotary_hf_config_destroy(handle)
