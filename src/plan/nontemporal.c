/* nontemporal.c: the output size from which out-of-place calls store non-temporally (ROTARY_STREAM_STORES, 16 MiB). */
#include <stdint.h>

#include "env_knob.h"
#include "nontemporal.h"

size_t rotary_nt_default(void) { return (size_t)16 << 20; }

size_t rotary_nt_from_env(void) {
  unsigned long long v = 0;
  switch (rotary_env_knob("ROTARY_STREAM_STORES", SIZE_MAX, &v)) {
    case ROTARY_KNOB_OFF: return SIZE_MAX;
    case ROTARY_KNOB_VALUE: return (size_t)v;
    default: return rotary_nt_default();
  }
}
