"""_lib.py: loads librotary (and librotary_hf when present) and mirrors include/rotary.h's structs in ctypes."""
import ctypes
import operator
import os
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))

# Status codes, pinned in rotary.h.
OK = 0
ERR_NULL_POINTER = 1
ERR_HEAD_DIM = 2
ERR_ROTARY_DIM = 3
ERR_DTYPE = 4
ERR_PAIRING = 5
ERR_FREQUENCY = 6
ERR_POSITION = 7
ERR_OVERFLOW = 8
ERR_STRIDE = 9
ERR_OVERLAP = 10
ERR_OUT_OF_MEMORY = 11
ERR_THREAD = 12
ERR_INVALID_ARGUMENT = 13
ERR_SCALING = 14
ERR_CONFIG = 15
ERR_IO = 16
ERR_UNSUPPORTED = 17
ERR_CACHE_INDEX = 18
ERR_SCALE = 19
ERR_STREAMS = 20
ERR_LAYER = 21
ERR_TUNING = 22
ERR_DEVICE = 23

F32, F16, BF16, FP8_E4M3 = 0, 1, 2, 3
CACHE_SEQUENCES, CACHE_SLOTS, CACHE_PAGES = 0, 1, 2
CACHE_NHD, CACHE_HND = 0, 1
PAIRING_HALF, PAIRING_INTERLEAVED = 0, 1
FORWARD, INVERSE = 0, 1
POS_OFFSET, POS_OFFSETS, POS_IDS_I32, POS_IDS_I64, POS_COS_SIN = 0, 1, 2, 3, 4
POS_STREAMS_I32, POS_STREAMS_I64 = 5, 6
MAX_STREAMS = 4
STREAM_LAYOUTS = {"none": 0, "sections": 1, "interleaved": 2, "vision_2d": 3, "vision_2d_pixtral": 4, "map": 5}

SCALING_TYPES = {"default": 0, "none": 0, "linear": 1, "dynamic": 2, "ntk": 3, "yarn": 4, "llama3": 5,
                 "longrope": 6, "su": 6}


SIZE_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_size_t))) - 1
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def c_int_arg(value, name, lo=0, hi=SIZE_MAX):
    """value as a Python int in [lo, hi] (default: a size_t), checked before ctypes could wrap it modulo 2^64.

    Takes int, NumPy integers and anything else with __index__ (a 0-d integer tensor); refuses bool (True is
    not a size), float (64.0 included: no silent truncation) and strings with TypeError, and a value outside
    [lo, hi] with ValueError. Every integer the package passes to librotary goes through here."""
    if isinstance(value, (bool, np.bool_)) or str(getattr(value, "dtype", "")) in ("bool", "torch.bool"):
        raise TypeError(f"{name}: expected an int, got a bool ({value!r})")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} ({value!r})") from None
    if not lo <= v <= hi:
        raise ValueError(f"{name}: {v} is outside [{lo}, {hi}]")
    return v


class Scaling(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("factor", ctypes.c_double),
        ("original_max_position_embeddings", ctypes.c_size_t),
        ("max_position_embeddings", ctypes.c_size_t),
        ("attention_factor", ctypes.c_double),
        ("beta_fast", ctypes.c_double),
        ("beta_slow", ctypes.c_double),
        ("mscale", ctypes.c_double),
        ("mscale_all_dim", ctypes.c_double),
        ("truncate", ctypes.c_int),
        ("low_freq_factor", ctypes.c_double),
        ("high_freq_factor", ctypes.c_double),
        ("short_factor", ctypes.POINTER(ctypes.c_double)),
        ("long_factor", ctypes.POINTER(ctypes.c_double)),
    ]


class Streams(ctypes.Structure):
    """rotary_streams: which position stream each frequency turns by."""
    _fields_ = [
        ("layout", ctypes.c_int),
        ("n_streams", ctypes.c_size_t),
        ("sections", ctypes.c_size_t * 4),
        ("map", ctypes.POINTER(ctypes.c_uint8)),
    ]


class Config(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("head_dim", ctypes.c_size_t),
        ("rotary_dim", ctypes.c_size_t),
        ("pairing", ctypes.c_int),
        ("base", ctypes.c_double),
        ("inv_freq", ctypes.POINTER(ctypes.c_double)),
        ("attention_scaling", ctypes.c_double),
        ("scaling", Scaling),
        ("seq_len", ctypes.c_size_t),
        ("streams", Streams),
    ]


class Positions(ctypes.Structure):
    _fields_ = [
        ("mode", ctypes.c_int),
        ("offset", ctypes.c_int64),
        ("offsets", ctypes.POINTER(ctypes.c_int64)),
        ("ids", ctypes.c_void_p),
        ("cos", ctypes.POINTER(ctypes.c_float)),
        ("sin", ctypes.POINTER(ctypes.c_float)),
        ("row_stride", ctypes.c_size_t),
        ("n_streams", ctypes.c_size_t),
        ("stream_stride", ctypes.c_size_t),
    ]


class Tensor(ctypes.Structure):
    _fields_ = [
        ("in_", ctypes.c_void_p),
        ("out", ctypes.c_void_p),
        ("dtype", ctypes.c_int),
        ("n_heads", ctypes.c_size_t),
        ("stride_batch", ctypes.c_ssize_t),
        ("stride_seq", ctypes.c_ssize_t),
        ("stride_head", ctypes.c_ssize_t),
        ("out_stride_batch", ctypes.c_ssize_t),
        ("out_stride_seq", ctypes.c_ssize_t),
        ("out_stride_head", ctypes.c_ssize_t),
    ]


class ApplyDesc(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("batch", ctypes.c_size_t),
        ("seq_len", ctypes.c_size_t),
        ("positions", Positions),
        ("direction", ctypes.c_int),
        ("q", Tensor),
        ("k", Tensor),
    ]


class KVCache(ctypes.Structure):
    """rotary_kv_cache."""
    _fields_ = [
        ("index", ctypes.c_int),
        ("layout", ctypes.c_int),
        ("dtype", ctypes.c_int),
        ("k", ctypes.c_void_p),
        ("v", ctypes.c_void_p),
        ("num_blocks", ctypes.c_size_t),
        ("block_size", ctypes.c_size_t),
        ("block_stride", ctypes.c_size_t),
        ("lengths", ctypes.c_void_p),        # const int64_t *
        ("slot_mapping", ctypes.c_void_p),   # const int64_t *
        ("page_indptr", ctypes.c_void_p),    # const int32_t *
        ("page_indices", ctypes.c_void_p),   # const int32_t *
        ("last_page_len", ctypes.c_void_p),  # const int32_t *
        ("k_scale", ctypes.c_float),
        ("v_scale", ctypes.c_float),
    ]


class KVWriteDesc(ctypes.Structure):
    """rotary_kv_write_desc."""
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("batch", ctypes.c_size_t),
        ("seq_len", ctypes.c_size_t),
        ("positions", Positions),
        ("q", Tensor),
        ("k", Tensor),
        ("v", Tensor),
        ("cache", KVCache),
    ]


class KVRerotateDesc(ctypes.Structure):
    """rotary_kv_rerotate_desc."""
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("cache", KVCache),
        ("kv_heads", ctypes.c_size_t),
        ("first_slot", ctypes.c_size_t),
        ("n_slots", ctypes.c_size_t),
        ("slots", ctypes.c_void_p),  # const int64_t *
        ("delta", ctypes.c_int64),
    ]


class AttentionDesc(ctypes.Structure):
    """rotary_attention_desc (decode attention over a KV cache, issue 14)."""
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("batch", ctypes.c_size_t),
        ("tokens", ctypes.c_size_t),
        ("q_heads", ctypes.c_size_t),
        ("kv_heads", ctypes.c_size_t),
        ("q", ctypes.c_void_p),
        ("q_dtype", ctypes.c_int),
        ("q_stride_batch", ctypes.c_ssize_t),
        ("q_stride_token", ctypes.c_ssize_t),
        ("q_stride_head", ctypes.c_ssize_t),
        ("out", ctypes.c_void_p),
        ("out_dtype", ctypes.c_int),
        ("out_stride_batch", ctypes.c_ssize_t),
        ("out_stride_token", ctypes.c_ssize_t),
        ("out_stride_head", ctypes.c_ssize_t),
        ("lse", ctypes.c_void_p),            # float *
        ("cache", KVCache),
        ("block_table", ctypes.c_void_p),    # const int32_t *
        ("block_table_stride", ctypes.c_size_t),
        ("rope_mode", ctypes.c_int),
        ("scale", ctypes.c_float),
        ("softcap", ctypes.c_float),
        ("window", ctypes.c_size_t),
        ("precision", ctypes.c_int),         # rotary_attention_precision: 0 F32, 1 BF16
    ]


ATTN_ROPE_NONE, ATTN_ROPE_Q, ATTN_ROPE_QK = 0, 1, 2
ATTN_PRECISION_F32, ATTN_PRECISION_BF16 = 0, 1  # rotary_attention_precision
ATTENTION_MAX_TOKENS = 16  # ROTARY_ATTENTION_MAX_TOKENS


SETTING_COUNT = 5  # ROTARY_SETTING_COUNT: the settings are 0 .. 4 (rotary_setting_name gives their names)
SOURCE_DEFAULT, SOURCE_FILE, SOURCE_ENV, SOURCE_SET, SOURCE_TUNED = 0, 1, 2, 3, 4


class TuneOptions(ctypes.Structure):
    """rotary_tune_options."""
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("seconds", ctypes.c_double),
        ("min_gain", ctypes.c_double),
        ("settings_mask", ctypes.c_uint),
        ("rounds", ctypes.c_size_t),
    ]


class TuneReport(ctypes.Structure):
    """rotary_tune_report."""
    _fields_ = [
        ("before", ctypes.c_int64 * SETTING_COUNT),
        ("after", ctypes.c_int64 * SETTING_COUNT),
        ("before_seconds", ctypes.c_double),
        ("after_seconds", ctypes.c_double),
        ("candidates", ctypes.c_size_t),
        ("out_of_time", ctypes.c_int),
    ]


def _library_dirs():
    env = os.environ.get("ROTARY_LIBRARY_DIR")
    return ([env] if env else []) + [_HERE]


_EXT = ".dylib" if sys.platform == "darwin" else ".dll" if os.name == "nt" else ".so"


def _load(name, dirs):
    """(library, path, None), or (None, None, why) where why keeps the loader's own words (a missing
    dependency, a corrupt file, a wrong ELF class) or lists where the file was looked for."""
    errors = []
    for d in dirs:
        path = os.path.join(d, name + _EXT)
        if os.path.exists(path):
            try:
                return ctypes.CDLL(path), path, None
            except OSError as e:
                errors.append(str(e) if path in str(e) else f"{path}: {e}")
    return None, None, "; ".join(errors) or f"not found (looked in {', '.join(dirs)})"


lib, _lib_path, _why = _load("librotary", _library_dirs())
if lib is None:
    raise ImportError(f"rotary: cannot load librotary: {_why}; install the package with `pip install .` or set "
                      "ROTARY_LIBRARY_DIR to a CMake build folder holding the shared library")
# librotary_hf (the config.json reader, cJSON built in) is part of every build and is taken from librotary's own
# folder, never mixed from another. When it cannot be loaded, only RoPE.from_hf_config fails, with
# hf_lib_error: the loader's message. RTLD_GLOBAL is not needed: it finds librotary through its $ORIGIN run path.
hf_lib, _, hf_lib_error = _load("librotary_hf", [os.path.dirname(_lib_path)])

_P = ctypes.POINTER
_sz = ctypes.c_size_t
_i64p = _P(ctypes.c_int64)
_fp = _P(ctypes.c_float)

lib.rotary_status_string.restype = ctypes.c_char_p
lib.rotary_status_string.argtypes = [ctypes.c_int]
lib.rotary_version_string.restype = ctypes.c_char_p
lib.rotary_version_string.argtypes = []
lib.rotary_config_init.restype = None
lib.rotary_config_init.argtypes = [_P(Config), _sz]
lib.rotary_config_check.restype = ctypes.c_int
lib.rotary_config_check.argtypes = [_P(Config), _P(ctypes.c_char_p)]
lib.rotary_rope_create.restype = ctypes.c_int
lib.rotary_rope_create.argtypes = [_P(Config), _sz, _P(ctypes.c_void_p)]
lib.rotary_rope_destroy.restype = None
lib.rotary_rope_destroy.argtypes = [ctypes.c_void_p]
lib.rotary_rope_derive.restype = ctypes.c_int
lib.rotary_rope_derive.argtypes = [ctypes.c_void_p, _sz, _sz, _P(ctypes.c_void_p)]
lib.rotary_rope_memory_bytes.restype = _sz
lib.rotary_rope_memory_bytes.argtypes = [ctypes.c_void_p]
for _f in ("head_dim", "rotary_dim", "max_positions", "seq_len"):
    getattr(lib, "rotary_rope_" + _f).restype = _sz
    getattr(lib, "rotary_rope_" + _f).argtypes = [ctypes.c_void_p]
lib.rotary_rope_pairing.restype = ctypes.c_int
lib.rotary_rope_pairing.argtypes = [ctypes.c_void_p]
lib.rotary_rope_attention_scaling.restype = ctypes.c_double
lib.rotary_rope_attention_scaling.argtypes = [ctypes.c_void_p]
lib.rotary_rope_inv_freq.restype = ctypes.c_int
lib.rotary_rope_inv_freq.argtypes = [ctypes.c_void_p, _P(ctypes.c_double)]
lib.rotary_rope_cos_sin.restype = ctypes.c_int
lib.rotary_rope_cos_sin.argtypes = [ctypes.c_void_p, _i64p, _sz, _fp, _fp]
# Multi-stream positions (issue 12). A librotary that predates them still loads: every rope then has one stream.
HAS_STREAMS = all(hasattr(lib, f) for f in ("rotary_rope_streams", "rotary_rope_stream_map",
                                            "rotary_rope_cos_sin_streams"))
if HAS_STREAMS:
    lib.rotary_rope_streams.restype = _sz
    lib.rotary_rope_streams.argtypes = [ctypes.c_void_p]
    lib.rotary_rope_stream_map.restype = ctypes.c_int
    lib.rotary_rope_stream_map.argtypes = [ctypes.c_void_p, _P(ctypes.c_uint8)]
    lib.rotary_rope_cos_sin_streams.restype = ctypes.c_int
    lib.rotary_rope_cos_sin_streams.argtypes = [ctypes.c_void_p, _i64p, _sz, _sz, _fp, _fp]
lib.rotary_context_create.restype = ctypes.c_int
lib.rotary_context_create.argtypes = [_sz, _P(ctypes.c_void_p)]
lib.rotary_context_destroy.restype = None
lib.rotary_context_destroy.argtypes = [ctypes.c_void_p]
lib.rotary_context_set_threads.restype = ctypes.c_int
lib.rotary_context_set_threads.argtypes = [ctypes.c_void_p, _sz]
lib.rotary_context_threads.restype = _sz
lib.rotary_context_threads.argtypes = [ctypes.c_void_p]
lib.rotary_cpu_count.restype = _sz
lib.rotary_cpu_count.argtypes = []
lib.rotary_apply_desc_init.restype = None
lib.rotary_apply_desc_init.argtypes = [_P(ApplyDesc)]
lib.rotary_apply.restype = ctypes.c_int
lib.rotary_apply.argtypes = [ctypes.c_void_p, ctypes.c_void_p, _P(ApplyDesc)]
lib.rotary_cpu_features.restype = ctypes.c_char_p
lib.rotary_cpu_features.argtypes = []
lib.rotary_kernel_name.restype = ctypes.c_char_p
lib.rotary_kernel_name.argtypes = [ctypes.c_int, ctypes.c_int]

# The KV-cache entry points (issue 11). A librotary that predates them still loads: the KV functions then raise.
HAS_KV = all(hasattr(lib, f) for f in ("rotary_kv_write_desc_init", "rotary_kv_write_desc_set_qkv",
                                       "rotary_kv_write", "rotary_kv_rerotate_desc_init", "rotary_kv_rerotate"))
if HAS_KV:
    lib.rotary_kv_write_desc_init.restype = None
    lib.rotary_kv_write_desc_init.argtypes = [_P(KVWriteDesc)]
    lib.rotary_kv_write_desc_set_qkv.restype = ctypes.c_int
    lib.rotary_kv_write_desc_set_qkv.argtypes = [_P(KVWriteDesc), ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                                 _sz, _sz, _sz, _sz]
    lib.rotary_kv_write.restype = ctypes.c_int
    lib.rotary_kv_write.argtypes = [ctypes.c_void_p, ctypes.c_void_p, _P(KVWriteDesc)]
    lib.rotary_kv_rerotate_desc_init.restype = None
    lib.rotary_kv_rerotate_desc_init.argtypes = [_P(KVRerotateDesc)]
    lib.rotary_kv_rerotate.restype = ctypes.c_int
    lib.rotary_kv_rerotate.argtypes = [ctypes.c_void_p, ctypes.c_void_p, _P(KVRerotateDesc)]

# Decode attention (issue 14). A librotary that predates it still loads: rotary.attention then raises.
HAS_ATTENTION = HAS_KV and all(hasattr(lib, f) for f in ("rotary_attention_desc_init", "rotary_attention",
                                                         "rotary_decode_step"))
if HAS_ATTENTION:
    lib.rotary_attention_desc_init.restype = None
    lib.rotary_attention_desc_init.argtypes = [_P(AttentionDesc)]
    lib.rotary_attention.restype = ctypes.c_int
    lib.rotary_attention.argtypes = [ctypes.c_void_p, ctypes.c_void_p, _P(AttentionDesc)]
    lib.rotary_decode_step.restype = ctypes.c_int
    lib.rotary_decode_step.argtypes = [ctypes.c_void_p, ctypes.c_void_p, _P(KVWriteDesc), _P(AttentionDesc)]

# Settings, tuning files and rotary_context_tune (issue 13). A librotary that predates them still loads: the
# settings functions then raise, and RoPE(tuning=...) too.
HAS_TUNING = all(hasattr(lib, f) for f in (
    "rotary_setting_name", "rotary_setting_env", "rotary_setting_source_name", "rotary_setting_range",
    "rotary_setting_default", "rotary_context_get_setting", "rotary_context_set_setting",
    "rotary_context_reset_settings", "rotary_context_load_tuning", "rotary_context_save_tuning",
    "rotary_tuning_env_status", "rotary_tuning_default_path", "rotary_cpu_model", "rotary_tune_options_init",
    "rotary_context_tune"))
if HAS_TUNING:
    for _f in ("rotary_setting_name", "rotary_setting_env", "rotary_setting_source_name"):
        getattr(lib, _f).restype = ctypes.c_char_p
        getattr(lib, _f).argtypes = [ctypes.c_int]
    lib.rotary_setting_range.restype = ctypes.c_int
    lib.rotary_setting_range.argtypes = [ctypes.c_int, _i64p, _i64p]
    lib.rotary_setting_default.restype = ctypes.c_int
    lib.rotary_setting_default.argtypes = [ctypes.c_int, _i64p]
    lib.rotary_context_get_setting.restype = ctypes.c_int
    lib.rotary_context_get_setting.argtypes = [ctypes.c_void_p, ctypes.c_int, _i64p, _P(ctypes.c_int)]
    lib.rotary_context_set_setting.restype = ctypes.c_int
    lib.rotary_context_set_setting.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64]
    lib.rotary_context_reset_settings.restype = ctypes.c_int
    lib.rotary_context_reset_settings.argtypes = [ctypes.c_void_p]
    lib.rotary_context_load_tuning.restype = ctypes.c_int
    lib.rotary_context_load_tuning.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, _sz]
    lib.rotary_context_save_tuning.restype = ctypes.c_int
    lib.rotary_context_save_tuning.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                               _sz]
    lib.rotary_tuning_env_status.restype = ctypes.c_int
    lib.rotary_tuning_env_status.argtypes = [ctypes.c_char_p, _sz]
    lib.rotary_tuning_default_path.restype = ctypes.c_int
    lib.rotary_tuning_default_path.argtypes = [ctypes.c_char_p, _sz]
    lib.rotary_cpu_model.restype = ctypes.c_char_p
    lib.rotary_cpu_model.argtypes = []
    lib.rotary_tune_options_init.restype = None
    lib.rotary_tune_options_init.argtypes = [_P(TuneOptions)]
    lib.rotary_context_tune.restype = ctypes.c_int
    lib.rotary_context_tune.argtypes = [ctypes.c_void_p, ctypes.c_void_p, _P(ApplyDesc), _sz, _P(TuneOptions),
                                        _P(TuneReport)]

# The CUDA backend (issue 15): present in every librotary that has the functions (a build without CUDA returns
# ROTARY_ERR_UNSUPPORTED from them, device count 0). Pointers are device addresses; desc is passed by address.
HAS_CUDA = all(hasattr(lib, "rotary_cuda_" + f) for f in (
    "device_count", "rope_create", "rope_destroy", "rope_memory_bytes", "rope_device", "apply", "kv_write"))
if HAS_CUDA:
    lib.rotary_cuda_device_count.restype = ctypes.c_int
    lib.rotary_cuda_device_count.argtypes = []
    lib.rotary_cuda_rope_create.restype = ctypes.c_int
    lib.rotary_cuda_rope_create.argtypes = [ctypes.c_void_p, ctypes.c_int, _P(ctypes.c_void_p)]
    lib.rotary_cuda_rope_destroy.restype = None
    lib.rotary_cuda_rope_destroy.argtypes = [ctypes.c_void_p]
    lib.rotary_cuda_rope_memory_bytes.restype = _sz
    lib.rotary_cuda_rope_memory_bytes.argtypes = [ctypes.c_void_p]
    lib.rotary_cuda_rope_device.restype = ctypes.c_int
    lib.rotary_cuda_rope_device.argtypes = [ctypes.c_void_p]
    # (rope, desc address, cudaStream_t, int32_t *flags): addresses as plain integers, no ctypes objects per call
    lib.rotary_cuda_apply.restype = ctypes.c_int
    lib.rotary_cuda_apply.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.rotary_cuda_kv_write.restype = ctypes.c_int
    lib.rotary_cuda_kv_write.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]

if hf_lib is not None:
    hf_lib.rotary_hf_config_parse.restype = ctypes.c_int
    hf_lib.rotary_hf_config_parse.argtypes = [ctypes.c_char_p, _sz, _P(ctypes.c_void_p), ctypes.c_char_p, _sz]
    hf_lib.rotary_hf_config_load.restype = ctypes.c_int
    hf_lib.rotary_hf_config_load.argtypes = [ctypes.c_char_p, _P(ctypes.c_void_p), ctypes.c_char_p, _sz]
    hf_lib.rotary_hf_config_destroy.restype = None
    hf_lib.rotary_hf_config_destroy.argtypes = [ctypes.c_void_p]
    hf_lib.rotary_hf_config_rope.restype = _P(Config)
    hf_lib.rotary_hf_config_rope.argtypes = [ctypes.c_void_p]
    for _f in ("heads", "kv_heads", "max_positions"):
        getattr(hf_lib, "rotary_hf_config_" + _f).restype = _sz
        getattr(hf_lib, "rotary_hf_config_" + _f).argtypes = [ctypes.c_void_p]
    for _f in ("rope_type", "model_type"):
        getattr(hf_lib, "rotary_hf_config_" + _f).restype = ctypes.c_char_p
        getattr(hf_lib, "rotary_hf_config_" + _f).argtypes = [ctypes.c_void_p]

# Per-layer ropes of a config (issue 12); an older librotary_hf has one rope per config.
HAS_HF_LAYERS = hf_lib is not None and all(
    hasattr(hf_lib, "rotary_hf_config_" + f) for f in ("layers", "rope_count", "rope_at", "rope_name", "layer_rope"))
if HAS_HF_LAYERS:
    for _f in ("layers", "rope_count"):
        getattr(hf_lib, "rotary_hf_config_" + _f).restype = _sz
        getattr(hf_lib, "rotary_hf_config_" + _f).argtypes = [ctypes.c_void_p]
    hf_lib.rotary_hf_config_rope_at.restype = _P(Config)
    hf_lib.rotary_hf_config_rope_at.argtypes = [ctypes.c_void_p, _sz]
    hf_lib.rotary_hf_config_rope_name.restype = ctypes.c_char_p
    hf_lib.rotary_hf_config_rope_name.argtypes = [ctypes.c_void_p, _sz]
    hf_lib.rotary_hf_config_layer_rope.restype = ctypes.c_int
    hf_lib.rotary_hf_config_layer_rope.argtypes = [ctypes.c_void_p, _sz, _P(_sz)]


def _check_layout():
    """The structs above must have the C sizes: the init functions write sizeof into struct_size."""
    c = Config()
    lib.rotary_config_init(ctypes.byref(c), 8)
    d = ApplyDesc()
    lib.rotary_apply_desc_init(ctypes.byref(d))
    if c.struct_size != ctypes.sizeof(Config) or d.struct_size != ctypes.sizeof(ApplyDesc):
        raise ImportError(f"rotary: struct layout mismatch with the loaded library (rotary_config {c.struct_size} "
                          f"bytes, binding {ctypes.sizeof(Config)}; rotary_apply_desc {d.struct_size}, binding "
                          f"{ctypes.sizeof(ApplyDesc)})")
    if c.head_dim != 8 or c.rotary_dim != 8 or c.base != 10000.0 or c.attention_scaling != 1.0 \
            or c.scaling.truncate != 1 or c.seq_len != 0 or d.batch != 1 or d.seq_len != 1:
        raise ImportError("rotary: rotary_config_init / rotary_apply_desc_init defaults do not read back through "
                          "the binding's struct layout")




def _check_kv_layout():
    """Likewise for the KV descriptors (their init functions write sizeof into struct_size)."""
    w = KVWriteDesc()
    lib.rotary_kv_write_desc_init(ctypes.byref(w))
    r = KVRerotateDesc()
    lib.rotary_kv_rerotate_desc_init(ctypes.byref(r))
    if w.struct_size != ctypes.sizeof(KVWriteDesc) or r.struct_size != ctypes.sizeof(KVRerotateDesc):
        raise ImportError(f"rotary: struct layout mismatch with the loaded library (rotary_kv_write_desc "
                          f"{w.struct_size} bytes, binding {ctypes.sizeof(KVWriteDesc)}; rotary_kv_rerotate_desc "
                          f"{r.struct_size}, binding {ctypes.sizeof(KVRerotateDesc)})")
    if w.batch != 1 or w.seq_len != 1 or w.positions.mode != POS_OFFSET or w.cache.k is not None:
        raise ImportError("rotary: rotary_kv_write_desc_init defaults do not read back through the binding's "
                          "struct layout")


def _check_tune_layout():
    """rotary_tune_options_init writes sizeof into struct_size and the documented defaults."""
    o = TuneOptions()
    lib.rotary_tune_options_init(ctypes.byref(o))
    if o.struct_size != ctypes.sizeof(TuneOptions) or o.seconds != 10.0 or o.min_gain != 0.03 or o.rounds != 7 \
            or o.settings_mask != 0:
        raise ImportError(f"rotary: struct layout mismatch with the loaded library (rotary_tune_options "
                          f"{o.struct_size} bytes, binding {ctypes.sizeof(TuneOptions)}, or its defaults)")


def _check_attention_layout():
    """rotary_attention_desc_init writes sizeof into struct_size and batch = tokens = 1."""
    a = AttentionDesc()
    lib.rotary_attention_desc_init(ctypes.byref(a))
    if a.struct_size != ctypes.sizeof(AttentionDesc) or a.batch != 1 or a.tokens != 1 or a.window != 0 \
            or a.scale != 0.0 or a.cache.k is not None:
        raise ImportError(f"rotary: struct layout mismatch with the loaded library (rotary_attention_desc "
                          f"{a.struct_size} bytes, binding {ctypes.sizeof(AttentionDesc)}, or its defaults)")


_check_layout()
if HAS_TUNING:
    _check_tune_layout()
if HAS_KV:
    _check_kv_layout()
if HAS_ATTENTION:
    _check_attention_layout()


def status_string(status):
    return lib.rotary_status_string(status).decode()
