/* stream.c: the output size from which out-of-place calls store non-temporally: ROTARY_STREAM_STORES, else 16 MiB. */
#include <stdint.h>

#include "env_knob.h"
#include "stream.h"

size_t rotary_stream_default(void) { return (size_t)16 << 20; }

size_t rotary_stream_from_env(void) {
  unsigned long long v = 0;
  switch (rotary_env_knob("ROTARY_STREAM_STORES", SIZE_MAX, &v)) {
    case ROTARY_KNOB_OFF: return SIZE_MAX;
    case ROTARY_KNOB_VALUE: return (size_t)v;
    default: return rotary_stream_default();
  }
}
