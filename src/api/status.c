/* status.c: the text of each status code and the library's version. */
#include "rotary.h"

const char *rotary_status_string(rotary_status status) {
  switch (status) {
    case ROTARY_OK: return "success";
    case ROTARY_ERR_NULL_POINTER: return "a required pointer argument is NULL";
    case ROTARY_ERR_HEAD_DIM: return "head_dim is zero, odd or above ROTARY_MAX_HEAD_DIM";
    case ROTARY_ERR_ROTARY_DIM: return "rotary_dim is odd, zero or greater than head_dim";
    case ROTARY_ERR_DTYPE: return "unknown dtype";
    case ROTARY_ERR_PAIRING: return "unknown pairing";
    case ROTARY_ERR_FREQUENCY: return "base, an inverse frequency or attention_scaling is not finite and positive";
    case ROTARY_ERR_POSITION: return "a position is negative or outside the table";
    case ROTARY_ERR_OVERFLOW: return "a size, offset or position computation overflows";
    case ROTARY_ERR_STRIDE: return "strides would write an output element twice, or the layout is unknown";
    case ROTARY_ERR_OVERLAP: return "buffers overlap partially";
    case ROTARY_ERR_OUT_OF_MEMORY: return "out of memory";
    case ROTARY_ERR_THREAD: return "a thread could not be created";
    case ROTARY_ERR_INVALID_ARGUMENT: return "invalid argument";
    case ROTARY_ERR_SCALING: return "a frequency-scaling parameter is missing, out of range or contradictory";
    case ROTARY_ERR_CONFIG: return "the model config is malformed or asks for something unsupported";
    case ROTARY_ERR_IO: return "a file could not be read";
    case ROTARY_ERR_UNSUPPORTED: return "the library was built without this feature";
    case ROTARY_ERR_CACHE_INDEX:
      return "a cache slot, block or page is outside the cache, written twice, or a page table is inconsistent";
    case ROTARY_ERR_SCALE:
      return "an fp8 scale is zero, negative, NaN or infinite, or an attention scale or soft cap is negative, NaN or "
             "infinite";
    case ROTARY_ERR_STREAMS:
      return "a multi-stream layout does not cover the frequencies, or a call's stream count is not the rope's";
    case ROTARY_ERR_LAYER: return "a layer index is beyond the model's layers, or its layer type has no rope";
    case ROTARY_ERR_TUNING:
      return "a setting value is out of range, or a tuning file is malformed, holds an unknown or out-of-range "
             "setting, or was written for another CPU model or library version";
    case ROTARY_ERR_DEVICE:
      return "CUDA: no usable device, a pointer the device cannot address, another device than the rope's, or a "
             "CUDA call failed";
  }
  return "unknown status";
}

const char *rotary_version_string(void) { return ROTARY_VERSION_STRING; }
