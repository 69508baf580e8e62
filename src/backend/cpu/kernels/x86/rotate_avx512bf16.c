/* x86/rotate_avx512bf16.c: the bf16 kernels built for AVX-512 with AVX512-BF16 (f32 and f16 gain nothing). */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_bf16_rotate_half__avx512bf16 rotary_bf16_rotate_interleaved__avx512bf16
 * rotary_bf16_rotate_half__avx512bf16_nt rotary_bf16_rotate_interleaved__avx512bf16_nt */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "isa_avx512bf16.h"
#define RT_ONLY_BF16 1
#include "rotate_instances.h"
#undef RT_ONLY_BF16
#endif
