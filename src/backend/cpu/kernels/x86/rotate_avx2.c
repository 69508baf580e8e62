/* x86/rotate_avx2.c: the x86 kernels built for AVX2 + FMA + F16C. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_f32_rotate_half__avx2 rotary_f32_rotate_interleaved__avx2 rotary_f16_rotate_half__avx2
 * rotary_f16_rotate_interleaved__avx2 rotary_bf16_rotate_half__avx2 rotary_bf16_rotate_interleaved__avx2
 * rotary_f32_rotate_half__avx2_nt rotary_f32_rotate_interleaved__avx2_nt rotary_f16_rotate_half__avx2_nt
 * rotary_f16_rotate_interleaved__avx2_nt rotary_bf16_rotate_half__avx2_nt
 * rotary_bf16_rotate_interleaved__avx2_nt */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "isa_avx2.h"
#include "rotate_instances.h"
#endif
