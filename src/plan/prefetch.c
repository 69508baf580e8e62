/* prefetch.c: the software prefetch distance of the SIMD kernels: ROTARY_PREFETCH, else a per-CPU default. */
#include "env_knob.h"
#include "kernels.h"
#include "prefetch.h"

int rotary_prefetch_bytes = 2048;

int rotary_prefetch_default(void) { return rotary_isa_supported(ROTARY_ISA_AVX512) ? 0 : 2048; }

void rotary_prefetch_init(void) {
  unsigned long long v = 0;
  switch (rotary_env_knob("ROTARY_PREFETCH", 65536, &v)) {
    case ROTARY_KNOB_OFF: rotary_prefetch_bytes = -1; break;
    case ROTARY_KNOB_VALUE: rotary_prefetch_bytes = (int)v; break;
    default: rotary_prefetch_bytes = rotary_prefetch_default(); break;
  }
}
