/* prefetch.c: the per-CPU default software prefetch distance of the SIMD kernels (setting prefetch_bytes). */
#include "kernels.h"
#include "prefetch.h"

int rotary_prefetch_default(void) { return rotary_isa_supported(ROTARY_ISA_AVX512) ? 0 : 2048; }
