"""_streams.py: multi-stream positions (mRoPE, 2-D vision RoPE): the rotary_streams of a new rope from Hugging
Face's words (mrope_section, mrope_interleaved) or a map, and stream id arrays checked and laid out for librotary."""
import ctypes

import numpy as np

from . import _lib
from ._lib import lib

VISION_STYLES = {"qwen2_vl": "vision_2d", "pixtral": "vision_2d_pixtral"}


def _error(message):
    from ._core import RotaryError
    return RotaryError(_lib.ERR_STREAMS, message)


def _sizes(values, name):
    """A list of non-negative ints from a sequence (bool and float refused, as every size the package passes)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name}: expected a sequence of ints, got {type(values).__name__}")
    out = [_lib.c_int_arg(v, f"{name}[{i}]") for i, v in enumerate(values)]
    if len(out) > _lib.MAX_STREAMS:
        raise ValueError(f"{name}: {len(out)} streams, at most {_lib.MAX_STREAMS}")
    return out


def _map_array(values, half, keep):
    """The uint8 frequency-to-stream map (exactly rotary_dim/2 entries: librotary reads that many)."""
    a = np.asarray(values)
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        raise TypeError(f"streams.map: expected ints, got {a.dtype}")
    if a.shape != (half,):
        raise ValueError(f"streams.map: expected {half} entries (rotary_dim/2), got shape {a.shape}")
    if half and (a.min() < 0 or a.max() >= _lib.MAX_STREAMS):
        raise _error(f"streams.map: stream indices must be in [0, {_lib.MAX_STREAMS}), got [{a.min()}, {a.max()}]")
    m = np.ascontiguousarray(a, dtype=np.uint8)
    keep.append(m)
    return m


def fill(c, mrope_section, mrope_interleaved, streams, keep):
    """Sets c.streams (a rotary_config) from RoPE's arguments; returns True when the rope has several streams.
    streams: a list of rotary_dim/2 stream indices, or a dict mirroring rotary_streams (layout, n_streams,
    sections, map). librotary checks the rest (rotary_config_check names the field)."""
    if streams is not None and mrope_section is not None:
        raise ValueError("streams: give mrope_section= or streams=, not both")
    if streams is None and mrope_section is None:
        if mrope_interleaved:
            raise ValueError("mrope_interleaved=True needs mrope_section=")
        return False
    s = c.streams
    half = c.rotary_dim // 2
    if mrope_section is not None:
        sections = _sizes(mrope_section, "mrope_section")
        s.layout = _lib.STREAM_LAYOUTS["interleaved" if mrope_interleaved else "sections"]
        s.n_streams = len(sections)
        for i, v in enumerate(sections):
            s.sections[i] = v
    elif isinstance(streams, dict):
        _fill_dict(s, dict(streams), half, keep)
    else:
        m = _map_array(streams, half, keep)
        s.layout = _lib.STREAM_LAYOUTS["map"]
        s.n_streams = int(m.max()) + 1 if half else 0
        s.map = m.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
    if not _lib.HAS_STREAMS:
        raise _error("this librotary has no multi-stream positions (built before issue 12)")
    return True


def _fill_dict(s, d, half, keep):
    layout = d.pop("layout", "map")
    if layout not in _lib.STREAM_LAYOUTS:
        raise ValueError(f"streams.layout: {layout!r} is not one of {sorted(_lib.STREAM_LAYOUTS)}")
    s.layout = _lib.STREAM_LAYOUTS[layout]
    m = d.pop("map", None)
    if m is not None:
        m = _map_array(m, half, keep)
        s.map = m.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
    elif layout == "map":
        raise ValueError("streams: layout 'map' needs map= (rotary_dim/2 stream indices)")
    sections = _sizes(d.pop("sections", ()), "streams.sections")
    for i, v in enumerate(sections):
        s.sections[i] = v
    n = d.pop("n_streams", None)
    if n is None:
        n = len(sections) if sections else (int(m.max()) + 1 if m is not None and m.size else 0)
    s.n_streams = _lib.c_int_arg(n, "streams.n_streams")
    if d:
        raise ValueError(f"streams: unknown keys {sorted(d)} (layout, n_streams, sections, map)")


def rope_streams(handle, half):
    """(n_streams, stream map tuple) of a librotary rope; (1, zeros) for a library without streams."""
    if not _lib.HAS_STREAMS:
        return 1, (0,) * half
    n = int(lib.rotary_rope_streams(handle))
    m = np.zeros(half, dtype=np.uint8)
    st = lib.rotary_rope_stream_map(handle, m.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
    if st != _lib.OK:
        from ._core import _raise
        _raise(st, "rotary_rope_stream_map")
    return n, tuple(int(v) for v in m)


# --- positions ---------------------------------------------------------------------------------------------------
def is_stream_ids(ndim, layout):
    """Stream ids carry one more leading axis than one-id ids: [n_streams, batch, seq] ("bshd", "bhsd") or
    [n_streams, tokens] ("thd")."""
    return ndim == (2 if layout == "thd" else 3)


def _want(n, batch, seq, layout):
    return (n, seq) if layout == "thd" else (n, batch, seq)


def check_count(n, want_streams):
    if not 1 <= n <= _lib.MAX_STREAMS:
        raise _error(f"positions: {n} streams of ids, at most {_lib.MAX_STREAMS}")
    if want_streams is not None and n != want_streams:
        raise _error(f"positions: {n} streams of ids, the rope has {want_streams} "
                     f"({'one stream' if want_streams == 1 else 'rope.n_streams'})")


def numpy_ids(a, batch, seq, layout, want_streams):
    """(mode, C-ordered ids, n_streams, stream_stride) from an int32/int64 NumPy array of stream ids."""
    n = a.shape[0]
    check_count(n, want_streams)
    want = _want(n, batch, seq, layout)
    if a.shape != want:
        try:
            a = np.broadcast_to(a, want)
        except ValueError:
            raise ValueError(f"positions: stream ids of shape {a.shape} do not match {want} (n_streams, "
                             f"{'tokens' if layout == 'thd' else 'batch, seq_len'}) of layout {layout!r}") from None
    item = a.dtype.itemsize
    stride = 0
    if not a.flags.c_contiguous:
        s0 = a.strides[0]
        if a[0].flags.c_contiguous and s0 > 0 and s0 % item == 0 and s0 // item >= batch * seq:
            stride = s0 // item  # streams apart (a slice of a longer buffer): no copy
        else:
            a = np.ascontiguousarray(a)
    mode = _lib.POS_STREAMS_I64 if a.dtype == np.int64 else _lib.POS_STREAMS_I32
    return mode, a, n, stride


def cos_sin(rope, ids):
    """rotary_rope_cos_sin_streams: rows (tokens, rotary_dim/2) of ids [n_streams, ...] (int64)."""
    n = ids.shape[0]
    check_count(n, rope.n_streams)
    ids = np.ascontiguousarray(ids.reshape(n, -1), dtype=np.int64)
    tokens = ids.shape[1]
    half = rope.rotary_dim // 2
    cos = np.empty((tokens, half), dtype=np.float32)
    sin = np.empty((tokens, half), dtype=np.float32)
    fp = ctypes.POINTER(ctypes.c_float)
    st = lib.rotary_rope_cos_sin_streams(rope._handle, ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), tokens,
                                         tokens, cos.ctypes.data_as(fp), sin.ctypes.data_as(fp))
    if st != _lib.OK:
        from ._core import _raise
        _raise(st, "cos_sin", f"ids in [{ids.min()}, {ids.max()}], table of {rope.max_positions}"
               if ids.size else None)
    return cos, sin
