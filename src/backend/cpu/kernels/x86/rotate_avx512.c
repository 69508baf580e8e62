/* x86/rotate_avx512.c: the x86 kernels built for AVX-512 F/BW/VL. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_f32_rotate_half__avx512 rotary_f32_rotate_interleaved__avx512 rotary_f16_rotate_half__avx512
 * rotary_f16_rotate_interleaved__avx512 rotary_bf16_rotate_half__avx512 rotary_bf16_rotate_interleaved__avx512
 * rotary_f32_rotate_half__avx512_nt rotary_f32_rotate_interleaved__avx512_nt rotary_f16_rotate_half__avx512_nt
 * rotary_f16_rotate_interleaved__avx512_nt rotary_bf16_rotate_half__avx512_nt
 * rotary_bf16_rotate_interleaved__avx512_nt */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "isa_avx512.h"
#include "rotate_instances.h"
#endif
