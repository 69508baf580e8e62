"""_tuning.py: the settings of a context (rotary.settings, set_setting, reset_settings), tuning files (load_tuning,
save_tuning, tuning_path), rotary.tune over rotary_context_tune, and the own context of a RoPE(tuning=...)."""
import ctypes
import json
import math
import os
import threading
import time

import numpy as np

from . import _core, _lib
from ._lib import lib

_MESSAGE_BYTES = 1024


def _require():
    if not _lib.HAS_TUNING:
        raise _core.RotaryError(_lib.ERR_UNSUPPORTED, "rotary: the loaded librotary predates settings and tuning "
                                f"files (issue 13): {_lib._lib_path}")


def _names():
    _require()
    return [lib.rotary_setting_name(i).decode() for i in range(_lib.SETTING_COUNT)]


def _index(name, what):
    names = _names()
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"{what}: unknown setting {name!r} (one of {names})")
    return names.index(name)


def _range(index):
    lo, hi = ctypes.c_int64(), ctypes.c_int64()
    st = lib.rotary_setting_range(index, ctypes.byref(lo), ctypes.byref(hi))
    if st != _lib.OK:
        _core._raise(st, "rotary_setting_range")
    return int(lo.value), int(hi.value)


def _value(name, index, value, what):
    """value as the int64 librotary takes: "off" is -1 where the setting has an off value; a value out of the
    setting's range raises RotaryTuningError (ROTARY_ERR_TUNING), as librotary would."""
    lo, hi = _range(index)
    if isinstance(value, str) and value.strip().lower() == "off" and lo == -1:
        return -1
    v = _lib.c_int_arg(value, f"{what}: {name}", _lib.INT64_MIN, _lib.INT64_MAX)
    if not lo <= v <= hi:
        raise _core.RotaryTuningError(_lib.ERR_TUNING, f"{what}: {name}: {v} is outside {lo} .. {hi}"
                                      + (" (-1: off)" if lo == -1 else ""))
    return v


def _get(handle, index):
    """(value, source name) of one setting of a context handle (None: the process defaults)."""
    value, source = ctypes.c_int64(), ctypes.c_int()
    st = lib.rotary_context_get_setting(handle, index, ctypes.byref(value), ctypes.byref(source))
    if st != _lib.OK:
        _core._raise(st, "rotary_context_get_setting")
    return int(value.value), lib.rotary_setting_source_name(source.value).decode()


def _read(handle, sources=None):
    """{name: {"value", "source", "env", "default", "range"}} of a context handle; sources: names that replace
    source "set" (values a forked child replayed from its parent)."""
    out = {}
    for i, name in enumerate(_names()):
        value, source = _get(handle, i)
        if sources and source == "set" and i in sources:
            source = sources[i]
        default = ctypes.c_int64()
        st = lib.rotary_setting_default(i, ctypes.byref(default))
        if st != _lib.OK:
            _core._raise(st, "rotary_setting_default")
        out[name] = {"value": value, "source": source, "env": lib.rotary_setting_env(i).decode(),
                     "default": int(default.value), "range": _range(i)}
    return out


def read_settings(rope_ctx):
    """The settings of a RopeContext, or of the process context for None."""
    if rope_ctx is None:
        return settings()
    _require()
    with rope_ctx.lock:
        return _read(rope_ctx.handle())


def _remember_process_settings():
    """Keeps what the process context has set, loaded or tuned, for a forked child to replay (_core._context)."""
    replay = {}
    for i in range(_lib.SETTING_COUNT):
        value, source = _get(_core._context(), i)
        if source == "set":
            source = _core._ctx_sources.get(i, "set")
        if source not in ("default", "environment"):
            replay[i] = (value, source)
    _core._ctx_replay = replay


def settings():
    """The settings of the process context (the calls of every RoPE made without tuning=): {name: {"value": the
    value in force (-1: off), "source": "default" | "file" | "environment" | "set" | "tuned", "env": its
    environment variable, "default": the library's default for this CPU, "range": (min, max) inclusive}}.
    Settings change speed only: every output bit is the same under every value in range."""
    _require()
    return _read(_core._context(), _core._ctx_sources)


def set_setting(name, value):
    """Sets one setting of the process context (source "set"; it wins over the environment). value: an int in the
    setting's range (settings()[name]["range"]), or "off" (-1) where the range starts at -1. An unknown name
    raises ValueError, a value out of range RotaryTuningError; nothing changes on error."""
    index = _index(name, "set_setting")
    v = _value(name, index, value, "set_setting")
    st = lib.rotary_context_set_setting(_core._context(), index, v)
    if st != _lib.OK:
        _core._raise(st, "set_setting", f"{name}={v}")
    _core._ctx_sources.pop(index, None)
    _remember_process_settings()


def reset_settings():
    """Puts every setting of the process context back to the process defaults (the library's, then
    ROTARY_TUNING_FILE's, then each setting's environment variable)."""
    _require()
    st = lib.rotary_context_reset_settings(_core._context())
    if st != _lib.OK:
        _core._raise(st, "reset_settings")
    _core._ctx_sources.clear()
    _remember_process_settings()


def tuning_path():
    """This CPU's and library version's default tuning file: $XDG_CACHE_HOME/rotary/tuning-<cpu>-<version>.json
    (else under $HOME/.cache). It may not exist."""
    _require()
    buf = ctypes.create_string_buffer(4096)
    st = lib.rotary_tuning_default_path(buf, len(buf))
    if st != _lib.OK:
        _core._raise(st, "tuning_path", "neither XDG_CACHE_HOME nor HOME is set" if st == _lib.ERR_IO else None)
    return os.fsdecode(buf.value)


def _resolve(path, what):
    """A path as str; for "auto" tuning_path(), or None when no file is there."""
    if isinstance(path, str) and path == "auto":
        try:
            p = tuning_path()
        except _core.RotaryError:
            return None
        return p if os.path.exists(p) else None
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: expected a path or 'auto', got {type(path).__name__}")
    return os.fsdecode(path)


def _tuning_error(st, what, message):
    if st == _lib.ERR_OUT_OF_MEMORY:
        raise MemoryError(f"{what}: {message or _lib.status_string(st)}")
    raise _core.RotaryTuningError(st, f"{what}: {message or _lib.status_string(st)}")


def _load(handle, path, what):
    """Loads a tuning file (a path, or "auto") into a context handle; the path loaded, or None ("auto", no file)."""
    p = _resolve(path, what)
    if p is None:
        return None
    err = ctypes.create_string_buffer(_MESSAGE_BYTES)
    st = lib.rotary_context_load_tuning(handle, os.fsencode(p), err, len(err))
    if st != _lib.OK:
        _tuning_error(st, what, err.value.decode(errors="replace"))
    return p


def load_tuning(path):
    """Loads a tuning file into the process context: the settings it names get its values (source "file"), the
    others keep theirs. path: a file, or "auto" for tuning_path() (no file there: nothing happens). Returns the
    path loaded (None: "auto" found none). A file that does not load (missing, malformed, another CPU or library
    version, a value out of range) raises RotaryTuningError naming the file and the field; nothing changes."""
    _require()
    p = _load(_core._context(), path, "load_tuning")
    if p is not None:
        for i in range(_lib.SETTING_COUNT):
            if _get(_core._context(), i)[1] == "file":
                _core._ctx_sources.pop(i, None)
        _remember_process_settings()
    return p


def _notes_text(notes):
    if notes is None:
        return None
    text = notes if isinstance(notes, str) else json.dumps(notes, default=str)
    return text.encode()


def _save(handle, path, notes, what):
    if path is None:
        path = tuning_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
    elif not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what}: path: expected a path or None, got {type(path).__name__}")
    p = os.fsdecode(path)
    err = ctypes.create_string_buffer(_MESSAGE_BYTES)
    st = lib.rotary_context_save_tuning(handle, os.fsencode(p), _notes_text(notes), err, len(err))
    if st != _lib.OK:
        _tuning_error(st, what, err.value.decode(errors="replace"))
    return p


def save_tuning(path=None, notes=None):
    """Writes the process context's settings that were set, loaded or tuned (not the defaults or the
    environment's) to a tuning file for this CPU and library version, atomically. path None: tuning_path(),
    creating its folder. notes: a dict (or JSON object text) kept in the file as "notes". Returns the path."""
    _require()
    return _save(_core._context(), path, notes, "save_tuning")


# --- RoPE(tuning=...) -----------------------------------------------------------------------------------------
class RopeContext:
    """The own librotary context of RoPEs made with tuning= (a rope and the ropes derived from it): created with
    the process context's thread count, loaded or set from the spec, destroyed with the last rope using it. A
    forked child drops the parent's context (its workers do not exist there) and makes its own on first use, from
    the same spec (the parent's values when the file no longer loads)."""

    def __init__(self, tuning):
        _require()
        self._spec = self._check(tuning)
        self.lock = threading.RLock()
        self._threads = _core._threads_asked()
        self._values = {}
        self._handle = None
        self._handle = self._create(False)
        _core._rope_contexts.add(self)

    @staticmethod
    def _check(tuning):
        """The spec checked before any context exists: ("file", path or "auto") or ("set", {index: value})."""
        if isinstance(tuning, dict):
            values = {}
            for name, value in tuning.items():
                index = _index(name, "tuning")
                values[index] = _value(name, index, value, "tuning")
            return "set", values
        if isinstance(tuning, (str, bytes, os.PathLike)):
            return "file", tuning if isinstance(tuning, str) and tuning == "auto" else os.fsdecode(tuning)
        raise TypeError(f"tuning: expected None, 'auto', a path or a dict {{setting: value}}, got "
                        f"{type(tuning).__name__}")

    def _create(self, in_child):
        handle = ctypes.c_void_p()
        st = lib.rotary_context_create(self._threads, ctypes.byref(handle))
        if st != _lib.OK:
            _core._raise(st, "rotary_context_create", f"threads={self._threads}")
        try:
            self._apply_spec(handle, in_child)
        except BaseException:
            lib.rotary_context_destroy(handle)
            raise
        _core._warn_tuning_env()
        return handle

    def _apply_spec(self, handle, in_child):
        kind, arg = self._spec
        if kind == "file":
            try:
                _load(handle, arg, f"RoPE(tuning={arg!r})")
            except _core.RotaryError:
                if not in_child:
                    raise
                values = self._values  # the file changed since the parent loaded it: the parent's values
            else:
                values = {}
        else:
            values = arg
        for index, value in values.items():
            st = lib.rotary_context_set_setting(handle, index, value)
            if st != _lib.OK:
                _core._raise(st, "tuning", f"{_names()[index]}={value}")
        if not in_child:
            self._values = {i: _get(handle, i)[0] for i in range(_lib.SETTING_COUNT)}

    def handle(self):
        h = self._handle
        if h is None:
            with self.lock:
                if self._handle is None:
                    self._handle = self._create(True)
                h = self._handle
        return h

    def set_threads(self, n):
        with self.lock:
            self._threads = n
            if self._handle is not None:
                st = lib.rotary_context_set_threads(self._handle, n)
                if st != _lib.OK:
                    _core._raise(st, "rotary_context_set_threads", f"n={n}")

    def forget_in_child(self):
        self._handle = None  # the parent's context: never used nor destroyed here (a small leak per fork)
        self.lock = threading.RLock()

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h is not None and lib is not None:
            lib.rotary_context_destroy(h)
            self._handle = None


# --- rotary.tune ----------------------------------------------------------------------------------------------
_DTYPES = {"bf16": _lib.BF16, "bfloat16": _lib.BF16, "f16": _lib.F16, "float16": _lib.F16, "fp16": _lib.F16,
           "f32": _lib.F32, "float32": _lib.F32, "fp32": _lib.F32}


def _rope_of(rope_or_config, tokens):
    if isinstance(rope_or_config, _core.RoPE):
        return rope_or_config
    rope = _core.RoPE.from_hf_config(rope_or_config)
    if rope.max_positions and rope.max_positions < tokens:
        rope = _core.RoPE.from_hf_config(rope_or_config, max_positions=tokens)
    return rope


def _heads(rope, heads, kv_heads):
    hf = rope.hf or {}
    if heads is None:
        heads = hf.get("num_attention_heads") or 32
        if kv_heads is None:
            kv_heads = hf.get("num_key_value_heads") or (8 if not hf else heads)
    elif kv_heads is None:
        kv_heads = heads
    heads = _lib.c_int_arg(heads, "tune: heads", 1)
    return heads, _lib.c_int_arg(kv_heads, "tune: kv_heads")


def _scratch(shape, dtype, block):
    """(input, output) NumPy arrays of a shape for a dtype code (bf16 in float16 arrays, the desc says bf16),
    the input filled with normal numbers (no NaN, no denormals: nothing that changes a kernel's speed)."""
    n = int(np.prod(shape))
    if dtype == _lib.F32:
        x = np.resize(block, n).reshape(shape)
    elif dtype == _lib.F16:
        x = np.resize(block.astype(np.float16), n).reshape(shape)
    else:
        bits = (block.view(np.uint32) >> 16).astype(np.uint16)
        x = np.resize(bits, n).reshape(shape).view(np.float16)
    return x, np.empty_like(x)


def _desc(rope, q_shape, k_shape, dtype, positions, keep, block):
    d = _lib.ApplyDesc()
    lib.rotary_apply_desc_init(ctypes.byref(d))
    q, q_out = _scratch(q_shape, dtype, block)
    k, k_out = _scratch(k_shape, dtype, block) if k_shape[2] else (None, None)
    keep += [q, q_out, k, k_out]
    _core._fill_qk(d, q, q_out, k, k_out, "bshd", rope.head_dim)
    d.q.dtype = dtype
    if k is not None:
        d.k.dtype = dtype
    _core._fill_positions(d.positions, positions, d.batch, d.seq_len, "bshd", keep, rope.n_streams)
    return d


def _descs(rope, heads, kv_heads, tokens, decode, dtype, keep):
    """The prefill (1 x tokens, positions 0 ..) and decode (decode sequences of one token at random positions
    below the table) calls, out of place, bshd."""
    rng = np.random.default_rng(0)
    block = rng.standard_normal(4093).astype(np.float32)  # odd length: rows do not repeat in step
    hd = rope.head_dim
    descs, shapes = [], []
    if tokens:
        if rope.max_positions and tokens > rope.max_positions:
            raise ValueError(f"tune: tokens={tokens} exceed the rope's table of {rope.max_positions} positions")
        descs.append(_desc(rope, (1, tokens, heads, hd), (1, tokens, kv_heads, hd), dtype, 0, keep, block))
        shapes.append({"name": "prefill", "batch": 1, "seq_len": tokens})
    if decode:
        below = rope.max_positions or max(tokens, 4096)
        ids = rng.integers(0, below, size=(decode, 1), dtype=np.int64)
        descs.append(_desc(rope, (decode, 1, heads, hd), (decode, 1, kv_heads, hd), dtype, ids, keep, block))
        shapes.append({"name": "decode", "batch": decode, "seq_len": 1})
    if not descs:
        raise ValueError("tune: tokens and decode are both 0: nothing to time")
    return descs, shapes


def _options(seconds, min_gain, rounds, names):
    o = _lib.TuneOptions()
    lib.rotary_tune_options_init(ctypes.byref(o))
    seconds, min_gain = float(seconds), float(min_gain)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"tune: seconds must be finite and > 0, got {seconds!r}")
    if not (math.isfinite(min_gain) and 0 <= min_gain < 1):
        raise ValueError(f"tune: min_gain must be in [0, 1), got {min_gain!r}")
    o.seconds, o.min_gain = seconds, min_gain
    o.rounds = _lib.c_int_arg(rounds, "tune: rounds", 3)
    if names is not None:
        if isinstance(names, str):
            names = [names]
        mask = 0
        for name in names:
            mask |= 1 << _index(name, "tune: settings")
        if not mask:
            raise ValueError("tune: settings is empty (None: every setting)")
        o.settings_mask = mask
    return o


def tune(rope_or_config, *, heads=None, kv_heads=None, tokens=4096, decode=64, dtype="bf16", threads=None,
         seconds=10.0, min_gain=0.03, rounds=7, settings=None, save=False):
    """Measures the settings on this machine (rotary_context_tune) for a model's prefill and decode calls and
    leaves the winners in force on the context the rope's calls run on (the process context, or the rope's own
    when it was made with tuning=).

    rope_or_config: a RoPE, or a Hugging Face config (dict, path, transformers config; RoPE.from_hf_config, its
    table widened to tokens when shorter). heads, kv_heads: q and k heads (default: the config's, else 32 and 8;
    kv_heads 0: q only). tokens: the prefill's length (one sequence at positions 0 ..; 0 leaves it out); decode:
    sequences of one token each at random positions below the table (0 leaves it out). dtype: "bf16", "f16" or
    "f32". Calls run out of place on scratch buffers, bshd. threads: tune with this many threads (restored after;
    None: the context's). seconds: the whole search's budget; min_gain: a candidate is kept only when the total
    median falls by more than this fraction and no call's median rises by more; rounds: timed rounds per
    candidate (>= 3); settings: names to search (None: all). save: False, True (tuning_path()) or a path: writes
    the tuning file with what was measured as notes.

    Returns {"before": {name: value}, "after": {name: value}, "before_seconds", "after_seconds" (the calls'
    total median time under each, measured side by side at the end), "candidates" (values timed), "out_of_time",
    "seconds" (the wall time tune took), "shapes", "threads", "dtype", "path" (the file written, or None)}."""
    _require()
    if dtype not in _DTYPES:
        raise ValueError(f"tune: dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    tokens = _lib.c_int_arg(tokens, "tune: tokens")
    decode = _lib.c_int_arg(decode, "tune: decode")
    options = _options(seconds, min_gain, rounds, settings)
    rope = _rope_of(rope_or_config, tokens)
    heads, kv_heads = _heads(rope, heads, kv_heads)
    keep = []
    descs, shapes = _descs(rope, heads, kv_heads, tokens, decode, _DTYPES[dtype], keep)
    arr = (_lib.ApplyDesc * len(descs))(*descs)
    own = rope._tuning
    handle = _core._context_of(rope)
    old_threads = int(lib.rotary_context_threads(handle))
    if threads is not None:
        threads = _lib.c_int_arg(threads, "tune: threads")
        st = lib.rotary_context_set_threads(handle, threads)
        if st != _lib.OK:
            _core._raise(st, "rotary_context_set_threads", f"n={threads}")
    report = _lib.TuneReport()
    start = time.perf_counter()
    try:
        used_threads = int(lib.rotary_context_threads(handle))
        st = lib.rotary_context_tune(handle, rope._handle, arr, len(descs), ctypes.byref(options),
                                     ctypes.byref(report))
    finally:
        if threads is not None:
            lib.rotary_context_set_threads(handle, old_threads)
    elapsed = time.perf_counter() - start
    if st != _lib.OK:
        _core._raise(st, "rotary_context_tune", f"{heads} heads, {kv_heads} kv heads, prefill {tokens} tokens, "
                     f"decode {decode} x 1, {dtype}; {rope!r}")
    if own is None:
        _remember_process_settings()
    names = _names()
    out = {"before": {n: int(report.before[i]) for i, n in enumerate(names)},
           "after": {n: int(report.after[i]) for i, n in enumerate(names)},
           "before_seconds": float(report.before_seconds), "after_seconds": float(report.after_seconds),
           "candidates": int(report.candidates), "out_of_time": bool(report.out_of_time), "seconds": elapsed,
           "shapes": shapes, "threads": used_threads, "dtype": dtype, "path": None}
    if save is not False and save is not None:
        notes = {"measured_by": "rotary.tune (Python)", "model": (rope.hf or {}).get("model_type") or repr(rope),
                 "heads": heads, "kv_heads": kv_heads, "head_dim": rope.head_dim, "rotary_dim": rope.rotary_dim,
                 "max_positions": rope.max_positions, **{k: out[k] for k in ("shapes", "threads", "dtype",
                                                                             "before", "after", "before_seconds",
                                                                             "after_seconds", "candidates",
                                                                             "out_of_time")},
                 "budget_seconds": options.seconds, "min_gain": options.min_gain, "rounds": options.rounds}
        out["path"] = _save(handle, None if save is True else save, notes, "tune: save")
    return out
