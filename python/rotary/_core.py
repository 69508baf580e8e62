"""_core.py: the RoPE object: frequencies and table in librotary, apply() over NumPy arrays and PyTorch tensors."""
import ctypes
import itertools
import os
import threading
import warnings
import weakref

import numpy as np

from . import _lib, _streams
from ._lib import lib

_PAIRINGS = {"half": _lib.PAIRING_HALF, "interleaved": _lib.PAIRING_INTERLEAVED}
_PAIRING_NAMES = {v: k for k, v in _PAIRINGS.items()}
DEFAULT_MAX_POSITIONS = 8192


class RotaryError(ValueError):
    """A call into librotary returned an error status; .status holds the rotary_status value."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class RotaryTypeError(RotaryError, TypeError):
    """ROTARY_ERR_DTYPE: an element type librotary does not take."""


class RotaryTuningError(RotaryError):
    """ROTARY_ERR_TUNING (a setting value out of range; a tuning file that is malformed, stale or foreign) and the
    errors of reading or writing a tuning file (ROTARY_ERR_IO); the message names the file and the field."""


class RotaryDeviceError(RotaryError, RuntimeError):
    """ROTARY_ERR_DEVICE (no usable CUDA device, a pointer the device cannot address, a call on another device than
    the rope's, a CUDA runtime call or launch that failed) and ROTARY_ERR_UNSUPPORTED from a CUDA call (a librotary
    built without CUDA); the message names the device."""


def _raise(status, what, detail=None):
    msg = f"{what}: {_lib.status_string(status)}"
    if detail:
        msg += f" ({detail})"
    if status == _lib.ERR_OUT_OF_MEMORY:
        raise MemoryError(msg)
    if status == _lib.ERR_DTYPE:
        raise RotaryTypeError(status, msg)
    if status == _lib.ERR_TUNING:
        raise RotaryTuningError(status, msg)
    if status == _lib.ERR_DEVICE:
        raise RotaryDeviceError(status, msg)
    raise RotaryError(status, msg)


# One worker pool for the process (librotary serializes calls on a context; results do not depend on the count).
# A forked child never touches the parent's context: its workers do not exist in the child and its lock may be
# held by a thread that was inside rotary_apply at the fork, so destroying or using it there hangs. The child
# drops it (a small leak, once per fork) and creates its own on first use, with the thread count asked for and
# the settings the parent's had set, loaded or tuned (_ctx_replay). RoPEs with their own tuning keep their
# contexts in _rope_contexts (_tuning.RopeContext), dropped in a child the same way.
_ctx = None
_ctx_threads = None  # the count set_num_threads asked for; None: ROTARY_NUM_THREADS or the online CPUs
_ctx_lock = threading.Lock()
_ctx_replay = {}   # setting index -> (value, source name) of the settings set, loaded or tuned on the process context
_ctx_sources = {}  # setting index -> source name the parent gave a value that a forked child replayed (source "set")
_rope_contexts = weakref.WeakSet()
_env_warned = []   # non-empty once the ROTARY_TUNING_FILE warning was given (once per process tree)


def _threads_from_env():
    text = os.environ.get("ROTARY_NUM_THREADS", "").strip() or "0"
    if not text.lstrip("+-").isdigit():
        raise ValueError(f"ROTARY_NUM_THREADS: expected an int, got {text!r}")
    return _lib.c_int_arg(int(text), "ROTARY_NUM_THREADS")


def _threads_asked():
    """The thread count contexts are created with: set_num_threads's, else ROTARY_NUM_THREADS or 0 (online CPUs)."""
    return _threads_from_env() if _ctx_threads is None else _ctx_threads


def _context():
    global _ctx
    if _ctx is None:
        with _ctx_lock:
            if _ctx is None:
                handle = ctypes.c_void_p()
                n = _threads_asked()
                st = lib.rotary_context_create(n, ctypes.byref(handle))
                if st != _lib.OK:
                    _raise(st, "rotary_context_create", f"threads={n}")
                for index, (value, source) in _ctx_replay.items():  # a forked child: the parent's settings
                    if lib.rotary_context_set_setting(handle, index, value) == _lib.OK:
                        _ctx_sources[index] = source
                _ctx = handle
        _warn_tuning_env()
    return _ctx


def _context_of(rope):
    """The context a rope's calls run on: its own when made with tuning=, else the process context."""
    t = rope._tuning
    return _context() if t is None else t.handle()


def _warn_tuning_env():
    """Warns once per process when ROTARY_TUNING_FILE named a file that did not load (librotary never prints)."""
    if _env_warned or not _lib.HAS_TUNING:
        return
    _env_warned.append(True)
    message = ctypes.create_string_buffer(1024)
    st = lib.rotary_tuning_env_status(message, len(message))
    if st != _lib.OK:
        warnings.warn(f"rotary: ROTARY_TUNING_FILE ignored as a whole (none of its settings are in force): "
                      f"{message.value.decode(errors='replace') or _lib.status_string(st)}", RuntimeWarning,
                      stacklevel=3)


def _forget_context_in_child():
    global _ctx, _ctx_lock
    _ctx = None
    _ctx_lock = threading.Lock()  # a parent thread may have held it at the fork
    for c in list(_rope_contexts):
        c.forget_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_context_in_child)


def set_num_threads(n):
    """Threads every call uses (0: the online CPUs). The default is ROTARY_NUM_THREADS or the online CPUs."""
    global _ctx_threads
    n = _lib.c_int_arg(n, "set_num_threads: n")
    st = lib.rotary_context_set_threads(_context(), n)
    if st != _lib.OK:
        _raise(st, "rotary_context_set_threads", f"n={n}")
    _ctx_threads = n
    for c in list(_rope_contexts):  # RoPEs with their own tuning use the same count
        c.set_threads(n)


def get_num_threads():
    return int(lib.rotary_context_threads(_context()))


# Arrays and positions live in _arrays.py; re-exported here, where the torch, KV and vLLM modules reach them.
from ._arrays import (LAYOUTS, _check_layout, _check_torch_ids, _dtype_code, _fill_one,  # noqa: E402,F401
                      _fill_positions, _fill_qk, _geometry, _ids_array, _offset, _torch, _torch_ops, _View,
                      is_torch)


def _scaling_struct(scaling, keep):
    """A rotary_scaling from a dict with Hugging Face's names (rope_type or type, factor, ...)."""
    s = _lib.Scaling()
    s.truncate = 1
    if scaling is None:
        return s
    if not isinstance(scaling, dict):
        raise TypeError("scaling: expected a dict with Hugging Face's rope_scaling names, got "
                        f"{type(scaling).__name__}")
    d = dict(scaling)
    kind = d.pop("rope_type", None) or d.pop("type", None) or "default"
    d.pop("type", None)
    d.pop("rope_theta", None)  # transformers 5 keeps rope_theta in rope_parameters; base= carries it here
    if kind not in _lib.SCALING_TYPES:
        raise ValueError(f"scaling: unknown rope_type {kind!r} (one of {sorted(_lib.SCALING_TYPES)})")
    s.type = _lib.SCALING_TYPES[kind]
    for key, value in d.items():
        if key in ("short_factor", "long_factor"):
            arr = np.ascontiguousarray(value, dtype=np.float64)
            keep.append(arr)
            setattr(s, key, arr.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        elif key == "truncate":
            s.truncate = 1 if value else 0
        elif key in ("original_max_position_embeddings", "max_position_embeddings"):
            setattr(s, key, _lib.c_int_arg(value, f"scaling.{key}"))
        elif key in dict(_lib.Scaling._fields_):
            setattr(s, key, float(value))
        else:
            raise ValueError(f"scaling: unknown parameter {key!r}")
    return s


_handles = weakref.WeakValueDictionary()
_next_handle = itertools.count(1)


class RoPE:
    """Rotary Position Embedding: frequencies and an fp32 cos/sin table held by librotary (rotary_rope).

    RoPE(head_dim, rotary_dim=None, base=10000.0, pairing="half", scaling=None, max_positions=8192,
         attention_scaling=1.0, inv_freq=None, seq_len=0, *, mrope_section=None, mrope_interleaved=False,
         streams=None, tuning=None)

    head_dim: elements per head (even). rotary_dim: leading dims that rotate (default head_dim; the rest pass
    through unchanged). pairing: "half" (dims i and i + rotary_dim/2: Hugging Face LLaMA, Qwen, Mistral, GPT-NeoX)
    or "interleaved" (dims 2i and 2i + 1: Meta's LLaMA, GPT-J). scaling: a dict with Hugging Face's rope_scaling
    names, e.g. {"rope_type": "llama3", "factor": 8.0, ...}. max_positions: size of the cos/sin table; positions at
    or past it raise; 0 computes cos/sin per token instead, for any position. inv_freq: rotary_dim/2 caller inverse
    frequencies that replace base and scaling. seq_len: current sequence length for "dynamic" and "longrope".

    Multi-stream positions (each token carries n_streams ids; frequency i turns by the id of stream_map[i]):
    mrope_section: Hugging Face's mrope_section, frequencies per stream summing to rotary_dim/2, e.g. [16, 24, 24]
    (Qwen2-VL, Qwen2.5-VL: contiguous sections; with mrope_interleaved=True Qwen3-VL's interleaved rule).
    streams: any other split: rotary_dim/2 stream indices (a map), or a dict like rotary_streams {"layout":
    "sections" | "interleaved" | "vision_2d" | "vision_2d_pixtral" | "map", "n_streams", "sections", "map"}.
    RoPE.vision_2d makes the 2-D (row, column) rope of a vision encoder. Stream ids go to apply() with one more
    leading axis than 1-D ids: [n_streams, batch, seq] ("bshd", "bhsd") or [n_streams, tokens] ("thd").

    tuning: the settings this rope's calls run with (speed only: results are the same bits under every setting).
    None: the process context's (rotary.settings()). Otherwise the rope gets its own context (same thread count,
    the process defaults) with: "auto" the tuning file at rotary.tuning_path() when there is one; a path: that
    tuning file (rotary.RotaryTuningError naming the file and the field when it does not load); a dict {setting
    name: value} (rotary.set_setting's names and values). rope.settings() shows them.
    """

    _tuning = None  # a _tuning.RopeContext when made with tuning=; None: calls run on the process context
    _cuda_ropes = None  # {device index: rotary_cuda_rope address}, made on first use (_cuda.py), freed with the rope

    def __init__(self, head_dim, rotary_dim=None, base=10000.0, pairing="half", scaling=None,
                 max_positions=DEFAULT_MAX_POSITIONS, attention_scaling=1.0, inv_freq=None, seq_len=0, *,
                 mrope_section=None, mrope_interleaved=False, streams=None, tuning=None):
        if pairing not in _PAIRINGS:
            raise ValueError(f"pairing must be 'half' or 'interleaved', got {pairing!r}")
        head_dim = _lib.c_int_arg(head_dim, "head_dim")
        max_positions = _lib.c_int_arg(max_positions, "max_positions")
        seq_len = _lib.c_int_arg(seq_len, "seq_len")
        keep = []
        c = _lib.Config()
        lib.rotary_config_init(ctypes.byref(c), head_dim)
        if rotary_dim is not None:
            c.rotary_dim = _lib.c_int_arg(rotary_dim, "rotary_dim")
        c.pairing = _PAIRINGS[pairing]
        c.base = float(base)
        c.attention_scaling = float(attention_scaling)
        c.scaling = _scaling_struct(scaling, keep)
        c.seq_len = seq_len
        if inv_freq is not None:
            f = np.ascontiguousarray(inv_freq, dtype=np.float64)
            if f.shape != (c.rotary_dim // 2,):
                raise ValueError(f"inv_freq: expected {c.rotary_dim // 2} values (rotary_dim/2), got shape {f.shape}")
            keep.append(f)
            c.inv_freq = f.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        _streams.fill(c, mrope_section, mrope_interleaved, streams, keep)
        tuning_ctx = _tuning_context(tuning)  # before the rope: a bad tuning argument raises with nothing made
        self._init_from_config(c, max_positions)
        self._tuning = tuning_ctx
        self.hf = None

    @classmethod
    def vision_2d(cls, head_dim, base=10000.0, style="qwen2_vl", max_positions=DEFAULT_MAX_POSITIONS,
                  pairing="half"):
        """The 2-D rope of a vision encoder's patch tokens: 2 streams, (row, column) ids per token, e.g.
        rope.apply(q, k, positions=ids, layout="thd") with ids of shape [2, tokens]. style "qwen2_vl" (Qwen2-VL,
        Qwen2.5-VL, Qwen3-VL ViT: frequency i < rotary_dim/4 turns by the row at base^(-4i/head_dim), frequency
        rotary_dim/4 + i by the column at the same frequency) or "pixtral" (the column at base^(-(4i+2)/head_dim)).
        Hugging Face's vision position_ids (tokens, 2) are ids.T. head_dim: a multiple of 4."""
        if style not in _streams.VISION_STYLES:
            raise ValueError(f"style must be one of {sorted(_streams.VISION_STYLES)}, got {style!r}")
        return cls(head_dim, base=base, pairing=pairing, max_positions=max_positions,
                   streams={"layout": _streams.VISION_STYLES[style], "n_streams": 2})

    @classmethod
    def _from_handle(cls, handle, hf=None, tuning=None):
        self = cls.__new__(cls)
        self._handle = handle
        self._register()
        self._tuning = tuning
        self.hf = hf
        return self

    def _init_from_config(self, c, max_positions):
        field = ctypes.c_char_p()
        st = lib.rotary_config_check(ctypes.byref(c), ctypes.byref(field))
        if st != _lib.OK:
            _raise(st, "RoPE", f"field {field.value.decode()}" if field.value else None)
        handle = ctypes.c_void_p()
        st = lib.rotary_rope_create(ctypes.byref(c), max_positions, ctypes.byref(handle))
        if st != _lib.OK:
            _raise(st, "rotary_rope_create", f"max_positions={max_positions}")
        self._handle = handle
        self._register()

    def _register(self):
        self.id = next(_next_handle)
        _handles[self.id] = self
        # The rope is immutable: its geometry is read once, so that torch.compile can trace apply() (no ctypes).
        h = self._handle
        self._head_dim = int(lib.rotary_rope_head_dim(h))
        self._rotary_dim = int(lib.rotary_rope_rotary_dim(h))
        self._max_positions = int(lib.rotary_rope_max_positions(h))
        self._pairing = _PAIRING_NAMES[lib.rotary_rope_pairing(h)]
        # What rotary.ops.rope_tensor needs, kept so that Dynamo never calls librotary while tracing.
        self._attention_scaling = float(lib.rotary_rope_attention_scaling(h))
        inv = np.empty(self._rotary_dim // 2, dtype=np.float64)
        lib.rotary_rope_inv_freq(h, inv.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        self._inv_freq = tuple(inv.tolist())
        self._n_streams, self._stream_map = _streams.rope_streams(h, self._rotary_dim // 2)

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h is not None and lib is not None:
            ropes, self._cuda_ropes = self._cuda_ropes, None
            for d in (ropes or {}).values():  # the device ropes read the host rope: freed first (_cuda.py)
                lib.rotary_cuda_rope_destroy(d)
            lib.rotary_rope_destroy(h)
            self._handle = None

    # --- Hugging Face config.json -------------------------------------------------------------------------
    @classmethod
    def from_hf_config(cls, config, max_positions=None, *, layer=None, layer_type=None, tuning=None):
        """A RoPE from a Hugging Face config: a dict, a path to config.json (or its folder), or a transformers
        PretrainedConfig. librotary_hf parses it (rotary_hf_config_parse): rope_theta, head_dim,
        partial_rotary_factor, rope_scaling / rope_parameters, mRoPE sections and the rest, with transformers'
        semantics. max_positions defaults to the config's max_position_embeddings. A config with a rope per layer
        type (Gemma 3, transformers 5 layer_types): the full-attention rope by default, layer=i the rope of layer
        i, layer_type="sliding_attention" that type's (rotary.hf_ropes gives them all). rope.hf is a dict of what
        the config said (model_type, rope_type, heads, num_hidden_layers, layer_type: this rope's type). tuning:
        as RoPE's."""
        from . import _hfconfig
        tuning_ctx = _tuning_context(tuning)
        rope = _hfconfig.rope_from_hf_config(cls, config, max_positions, layer, layer_type)
        rope._tuning = tuning_ctx
        return rope

    def derive(self, seq_len, max_positions=None):
        """The same rope for another current sequence length (dynamic NTK, LongRoPE) and/or table size
        (rotary_rope_derive: unchanged rows are copied). It shares this rope's tuning (its context)."""
        seq_len = _lib.c_int_arg(seq_len, "derive: seq_len")
        max_positions = self.max_positions if max_positions is None else \
            _lib.c_int_arg(max_positions, "derive: max_positions")
        handle = ctypes.c_void_p()
        st = lib.rotary_rope_derive(self._handle, seq_len, max_positions, ctypes.byref(handle))
        if st != _lib.OK:
            _raise(st, "rotary_rope_derive", f"seq_len={seq_len}, max_positions={max_positions}")
        return RoPE._from_handle(handle, self.hf, self._tuning)

    # --- properties ---------------------------------------------------------------------------------------
    @property
    def head_dim(self):
        return self._head_dim

    @property
    def rotary_dim(self):
        return self._rotary_dim

    @property
    def max_positions(self):
        """Rows of the cos/sin table; 0 for a table-free rope."""
        return self._max_positions

    @property
    def pairing(self):
        return self._pairing

    @property
    def n_streams(self):
        """Position ids per token: 1 for a plain rope, else the streams of its map (2 for vision_2d)."""
        return self._n_streams

    @property
    def stream_map(self):
        """The stream each of the rotary_dim/2 frequencies turns by (uint8; all 0 for a plain rope)."""
        return np.array(self._stream_map, dtype=np.uint8)

    @property
    def seq_len(self):
        return int(lib.rotary_rope_seq_len(self._handle))

    @property
    def attention_scaling(self):
        return float(lib.rotary_rope_attention_scaling(self._handle))

    @property
    def memory_bytes(self):
        return int(lib.rotary_rope_memory_bytes(self._handle))

    def prepare_cuda(self, device=None):
        """Uploads the rope to a CUDA device now (device: an index, "cuda:1" or a torch.device; None: the current
        one) and returns the device bytes it holds there. Without it the copy is made by the first call with
        tensors on that device; do it (or one call) before capturing a CUDA graph, which cannot allocate."""
        from . import _cuda
        return int(lib.rotary_cuda_rope_memory_bytes(_cuda.rope_on(self, _cuda.device_index(device))))

    @property
    def cuda_memory_bytes(self):
        """{device index: bytes} the rope holds on CUDA devices (its copies made so far)."""
        from . import _cuda
        return _cuda.memory_bytes(self)

    def settings(self):
        """The settings this rope's calls run with, as rotary.settings() gives them: its own context's when it was
        made with tuning=, else the process context's."""
        from . import _tuning
        return _tuning.read_settings(self._tuning)

    @property
    def inv_freq(self):
        """The rotary_dim/2 inverse frequencies (float64)."""
        out = np.empty(self.rotary_dim // 2, dtype=np.float64)
        st = lib.rotary_rope_inv_freq(self._handle, out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        if st != _lib.OK:
            _raise(st, "rotary_rope_inv_freq")
        return out

    def __repr__(self):
        streams = f", n_streams={self.n_streams}" if self.n_streams > 1 else ""
        return (f"RoPE(head_dim={self.head_dim}, rotary_dim={self.rotary_dim}, pairing={self.pairing!r}, "
                f"max_positions={self.max_positions}, seq_len={self.seq_len}{streams})")

    # --- cos/sin ------------------------------------------------------------------------------------------
    def cos_sin(self, positions):
        """cos and sin rows (float32, shape (n, rotary_dim/2), attention scaling included) of positions: an int,
        a sequence or an int array/tensor. These are the exact values apply() uses. Returns NumPy arrays, or
        torch tensors when positions is a tensor. For a multi-stream rope, ids with two or more dimensions are
        [n_streams, ...] (the streams first; rows for every token of the rest, flattened,
        rotary_rope_cos_sin_streams); fewer dimensions give every stream the same id."""
        as_torch = is_torch(positions)
        if as_torch:
            positions = positions.cpu().numpy()
        if self.n_streams > 1 and np.ndim(positions) >= 2:
            ids = np.asarray(positions)
            if ids.dtype == np.bool_ or ids.dtype.kind not in "iu":
                raise TypeError(f"positions: expected integers, got {ids.dtype}")
            if ids.dtype.kind == "u" and ids.size and ids.max() >= (1 << 63):
                raise ValueError("positions: a value does not fit in int64")
            cos, sin = _streams.cos_sin(self, ids)
            if as_torch:
                t = _torch()
                return t.from_numpy(cos), t.from_numpy(sin)
            return cos, sin
        if isinstance(positions, (int, np.integer)) and not isinstance(positions, (bool, np.bool_)):
            positions = _lib.c_int_arg(positions, "positions", _lib.INT64_MIN, _lib.INT64_MAX)
        pos = np.atleast_1d(np.asarray(positions))
        if pos.dtype.kind not in "iu":
            raise TypeError(f"positions: expected integers, got {pos.dtype}")
        if pos.dtype.kind == "u" and pos.size and pos.max() >= (1 << 63):
            raise ValueError("positions: a value does not fit in int64")
        pos = np.require(pos.astype(np.int64, copy=False).reshape(-1), requirements=("C", "A"))
        half = self.rotary_dim // 2
        cos = np.empty((pos.size, half), dtype=np.float32)
        sin = np.empty((pos.size, half), dtype=np.float32)
        fp = ctypes.POINTER(ctypes.c_float)
        st = lib.rotary_rope_cos_sin(self._handle, pos.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), pos.size,
                                     cos.ctypes.data_as(fp), sin.ctypes.data_as(fp))
        if st != _lib.OK:
            _raise(st, "cos_sin", f"positions in [{pos.min()}, {pos.max()}], table of {self.max_positions}"
                   if pos.size else None)
        if as_torch:
            t = _torch()
            return t.from_numpy(cos), t.from_numpy(sin)
        return cos, sin

    # --- apply --------------------------------------------------------------------------------------------
    def apply(self, q, k=None, positions=None, layout="bshd", inplace=False, inverse=False, out=None, *,
              flags=None):
        """Rotates q (and k) by the angles of their positions.

        q, k: NumPy arrays or PyTorch CPU tensors of float32, float16 or bfloat16, any strides as long as the last
        dimension (head_dim) is contiguous; k may have fewer heads (GQA) and another dtype. layout: "bshd"
        (batch, seq, heads, head_dim), "bhsd" (batch, heads, seq, head_dim) or "thd" (tokens, heads, head_dim).
        positions: None (0, 1, ...), an int offset (offset, offset + 1, ...), or int32/int64 ids per token
        ((batch, seq) like Hugging Face's position_ids, (1, seq) or (seq,) broadcast over the batch); for a
        multi-stream rope, stream ids [n_streams, batch, seq] (Hugging Face's mRoPE position_ids; [n_streams, 1,
        seq] broadcasts) or [n_streams, tokens] for "thd" (vLLM's), n_streams == rope.n_streams; one-id positions
        give every stream the same id.
        inplace: rotate q and k in their own memory and return them; otherwise new arrays are returned (same
        memory order as the inputs). inverse: rotate by the opposite angles (the backward pass).
        out (NumPy only): caller arrays for the results, q_out or (q_out, k_out), same shapes and dtypes as q and
        k, any strides with a contiguous last dimension; they must not overlap the inputs. Memory written (out=,
        or q and k in place) must be writable: read-only arrays raise ValueError. Unaligned NumPy views work.
        Returns q' or (q', k'). Torch tensors go through the custom op torch.ops.rotary (autograd, torch.compile).

        CUDA tensors (librotary built with CUDA): the same call runs rotary_cuda_apply on
        torch.cuda.current_stream(q.device), with the same bits as on the CPU and no host synchronization, so it can
        be captured in a torch.cuda.CUDAGraph (the rope's device copy is made by its first call on a device, or by
        prepare_cuda; never during a capture). q, k and id tensors must be on one device: ids on the CPU raise
        ValueError (they are never copied to the device inside the call; move them first). Ids that live on the
        device are checked by the kernel, not the host: a token whose position is outside the table is skipped (its
        rows are left unwritten, out of place: uninitialized) and, when flags is given, 1
        (ROTARY_CUDA_FLAG_POSITION) is ORed into flags[0]. flags: None, or an int32 tensor on q's device that the
        caller zeroes and reads when it likes; eager calls only (CUDA graph capture included; not under autograd,
        torch.compile or a NumPy call). Errors: rotary.RotaryDeviceError (a RuntimeError) for a device problem or a
        librotary built without CUDA.
        """
        _check_layout(layout)
        if is_torch(q) or is_torch(k):
            if out is not None:
                raise TypeError("out: only for NumPy arrays (torch tensors go through the custom op)")
            if flags is not None:
                return _torch_ops().apply(self, q, k, positions, layout, inplace, inverse, flags)
            return _torch_ops().apply(self, q, k, positions, layout, inplace, inverse)
        if flags is not None:
            raise TypeError("flags: only for torch CUDA tensors")
        if not isinstance(q, np.ndarray):
            raise TypeError(f"q: expected a numpy.ndarray or a torch.Tensor, got {type(q).__name__}")
        if k is not None and not isinstance(k, np.ndarray):
            raise TypeError(f"k: expected a numpy.ndarray like q, got {type(k).__name__}")
        if out is not None:
            if inplace:
                raise ValueError("out: not allowed with inplace=True")
            q_out, k_out = (out, None) if k is None else tuple(out) if isinstance(out, (tuple, list)) else (out, None)
            for nm, o, x in (("q_out", q_out, q), ("k_out", k_out, k)):
                if x is None:
                    continue
                if not isinstance(o, np.ndarray) or o.shape != x.shape or o.dtype != x.dtype:
                    raise ValueError(f"out: {nm} must be a numpy.ndarray of shape {x.shape} and dtype {x.dtype}")
        elif inplace:
            q_out, k_out = q, k
        else:
            q_out = np.empty_like(q)
            k_out = None if k is None else np.empty_like(k)
        self._apply_arrays(q, q_out, k, k_out, positions, layout, inverse)
        return q_out if k is None else (q_out, k_out)

    def _apply_arrays(self, q, q_out, k, k_out, positions, layout, inverse):
        """The one call into rotary_apply; q_out/k_out may be q/k (in place). Arrays or tensors."""
        d = _lib.ApplyDesc()
        lib.rotary_apply_desc_init(ctypes.byref(d))
        _fill_qk(d, q, q_out, k, k_out, layout, self.head_dim)
        keep = []
        _fill_positions(d.positions, positions, d.batch, d.seq_len, layout, keep, self.n_streams)
        d.direction = _lib.INVERSE if inverse else _lib.FORWARD
        if d.batch == 0 or d.seq_len == 0 or (d.q.n_heads == 0 and d.k.n_heads == 0):
            return  # nothing to rotate (librotary refuses zero counts; an empty tensor is a no-op here)
        if d.q.n_heads == 0:  # librotary requires q: a k with heads beside a q without any goes in its place
            d.q, d.k = _lib.Tensor.from_buffer_copy(d.k), _lib.Tensor()
        st = lib.rotary_apply(_context_of(self), self._handle, ctypes.byref(d))
        if st != _lib.OK:
            _raise(st, "rotary_apply", self._apply_detail(st, d, positions))

    def _apply_detail(self, st, d, positions):
        if st == _lib.ERR_POSITION:
            table = f"table of {self.max_positions} positions" if self.max_positions else "table-free rope"
            if d.positions.mode == _lib.POS_OFFSET:
                return f"positions {d.positions.offset}..{d.positions.offset + d.seq_len - 1}, {table}"
            a = np.asarray(positions.numpy() if is_torch(positions) else positions)
            return f"ids in [{a.min()}, {a.max()}], {table}"
        if st in (_lib.ERR_OVERLAP, _lib.ERR_STRIDE):
            return "outputs must not overlap each other or an input other than their own (in place)"
        if st == _lib.ERR_STREAMS:
            return f"{d.positions.n_streams or 1} streams of ids, the rope has {self.n_streams}"
        return None

    def apply_cos_sin(self, q, cos, sin, k=None, layout="bshd", inplace=False, inverse=False):
        """Rotates with caller-supplied fp32 cos/sin rows (ROTARY_POSITIONS_COS_SIN): cos and sin of shape
        (batch, seq, rotary_dim/2) (or (tokens, rotary_dim/2) for "thd"), C-contiguous float32 NumPy arrays.
        The rope's attention scaling is not applied (ONNX RotaryEmbedding semantics). NumPy only."""
        _check_layout(layout)
        q_out = q if inplace else np.empty_like(q)
        k_out = k if (inplace or k is None) else np.empty_like(k)
        d = _lib.ApplyDesc()
        lib.rotary_apply_desc_init(ctypes.byref(d))
        _fill_qk(d, q, q_out, k, k_out, layout, self.head_dim)
        half = self.rotary_dim // 2
        want = (d.seq_len, half) if layout == "thd" else (d.batch, d.seq_len, half)
        rows = []
        for nm, arr in (("cos", cos), ("sin", sin)):
            if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
                raise TypeError(f"{nm}: expected a float32 numpy.ndarray")
            if arr.shape != want:
                raise ValueError(f"{nm}: shape {arr.shape}, expected {want} (rotary_dim/2 = {half})")
            if not arr.flags.c_contiguous:
                raise ValueError(f"{nm}: must be C-contiguous")
            rows.append(arr)  # rotary_apply reads rows at any byte address
        fp = ctypes.POINTER(ctypes.c_float)
        d.positions.mode = _lib.POS_COS_SIN
        d.positions.cos = rows[0].ctypes.data_as(fp)
        d.positions.sin = rows[1].ctypes.data_as(fp)
        d.positions.row_stride = half
        d.direction = _lib.INVERSE if inverse else _lib.FORWARD
        if q.size and (k is None or k.size):
            st = lib.rotary_apply(_context_of(self), self._handle, ctypes.byref(d))
            if st != _lib.OK:
                _raise(st, "rotary_apply", self._apply_detail(st, d, None))
        return q_out if k is None else (q_out, k_out)


def hf_ropes(config, max_positions=None, *, tuning=None):
    """Every rope of a Hugging Face config from one parse: (ropes, layer_types), ropes a dict {layer type: RoPE}
    ("default" for a model whose layers share one rope; "full_attention", "sliding_attention", ... otherwise) and
    layer_types the type of each layer (num_hidden_layers entries; [] when the config gives no layer count), so
    that ropes[layer_types[i]] is layer i's rope. config, max_positions and tuning as RoPE.from_hf_config (the
    ropes of one call share one context)."""
    from . import _hfconfig
    tuning_ctx = _tuning_context(tuning)
    ropes, layers = _hfconfig.hf_ropes(RoPE, config, max_positions)
    for rope in ropes.values():
        rope._tuning = tuning_ctx
    return ropes, layers


def _tuning_context(tuning):
    """None for tuning=None (the process context), else a new _tuning.RopeContext loaded or set from it."""
    if tuning is None:
        return None
    from . import _tuning
    return _tuning.RopeContext(tuning)


def rope_by_id(handle):
    r = _handles.get(handle)
    if r is None:
        raise ValueError(f"rotary: RoPE #{handle} no longer exists")
    return r


def version():
    return lib.rotary_version_string().decode()


def info():
    """CPU features, the kernel each dtype and pairing runs, the threads and (a librotary with them) the settings
    of the process context (rotary.settings()) and the CPU model tuning files are keyed by."""
    names = {}
    for dn, dc in (("f32", _lib.F32), ("f16", _lib.F16), ("bf16", _lib.BF16)):
        for pn, pc in _PAIRINGS.items():
            names[f"{dn}/{pn}"] = lib.rotary_kernel_name(dc, pc).decode()
    out = {"version": version(), "cpu_features": lib.rotary_cpu_features().decode(), "kernels": names,
           "threads": get_num_threads()}
    if _lib.HAS_TUNING:
        from . import _tuning
        out["cpu_model"] = lib.rotary_cpu_model().decode(errors="replace")
        out["settings"] = _tuning.read_settings(None)
    return out

