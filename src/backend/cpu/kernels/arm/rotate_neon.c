/* arm/rotate_neon.c: the SIMD kernels built for aarch64 NEON. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_f32_rotate_half__neon rotary_f32_rotate_interleaved__neon rotary_f16_rotate_half__neon
 * rotary_f16_rotate_interleaved__neon rotary_bf16_rotate_half__neon rotary_bf16_rotate_interleaved__neon */
#if defined(__aarch64__)
#include "isa_neon.h"
#include "rotate_instances.h"
#endif
