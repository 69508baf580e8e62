/* stream.c: the output size from which out-of-place calls store non-temporally: ROTARY_STREAM_STORES, else 16 MiB. */
#include <stdint.h>

#include "env_knob.h"
#include "stream.h"

size_t rotary_stream_min_bytes = SIZE_MAX;

size_t rotary_stream_default(void) { return (size_t)16 << 20; }

void rotary_stream_init(void) {
  unsigned long long v = 0;
  switch (rotary_env_knob("ROTARY_STREAM_STORES", SIZE_MAX, &v)) {
    case ROTARY_KNOB_OFF: rotary_stream_min_bytes = SIZE_MAX; break;
    case ROTARY_KNOB_VALUE: rotary_stream_min_bytes = (size_t)v; break;
    default: rotary_stream_min_bytes = rotary_stream_default(); break;
  }
}
