/* prefetch.c: the software prefetch distance of the SIMD kernels: ROTARY_PREFETCH, else a per-CPU default. */
#include "env_knob.h"
#include "kernels.h"
#include "prefetch.h"

int rotary_prefetch_default(void) { return rotary_isa_supported(ROTARY_ISA_AVX512) ? 0 : 2048; }

int rotary_prefetch_from_env(void) {
  unsigned long long v = 0;
  switch (rotary_env_knob("ROTARY_PREFETCH", 65536, &v)) {
    case ROTARY_KNOB_OFF: return -1;
    case ROTARY_KNOB_VALUE: return (int)v;
    default: return rotary_prefetch_default();
  }
}
