/* generic/rotate_scalar.c: the portable kernels for f32, f16 and bf16: the fallback on every CPU. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_f32_rotate_half__scalar rotary_f32_rotate_interleaved__scalar rotary_f16_rotate_half__scalar
 * rotary_f16_rotate_interleaved__scalar rotary_bf16_rotate_half__scalar rotary_bf16_rotate_interleaved__scalar */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "convert.h"
#include "kernels.h"

#define ROTARY_T float
#define ROTARY_LOAD(v) (v)
#define ROTARY_STORE(f) (f)
#define ROTARY_FN(pairing) rotary_f32_rotate_##pairing##__scalar
#include "rotate_scalar_template.h"

#define ROTARY_T uint16_t
#define ROTARY_LOAD(v) rotary_f16_to_f32(v)
#define ROTARY_STORE(f) rotary_f32_to_f16(f)
#define ROTARY_FN(pairing) rotary_f16_rotate_##pairing##__scalar
#include "rotate_scalar_template.h"

#define ROTARY_T uint16_t
#define ROTARY_LOAD(v) rotary_bf16_to_f32(v)
#define ROTARY_STORE(f) rotary_f32_to_bf16(f)
#define ROTARY_FN(pairing) rotary_bf16_rotate_##pairing##__scalar
#include "rotate_scalar_template.h"
