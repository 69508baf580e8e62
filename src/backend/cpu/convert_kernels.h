/* convert_kernels.h: the element conversion kernels (f16/bf16/fp8 <-> f32, f16/bf16 -> fp8) that the KV-cache write composes. */
#ifndef ROTARY_CONVERT_KERNELS_H
#define ROTARY_CONVERT_KERNELS_H

#include <stddef.h>

#include "kernels.h"
#include "rotary.h"

/*
 * Converts n elements from one dtype to another. Encoding to ROTARY_FP8_E4M3 stores round_e4m3(x / scale)
 * (x / scale computed in fp32, then rounded to nearest even, saturated to +-448 (Inf too), NaN kept as NaN with its
 * sign: 0x7F / 0xFF, -0 kept), decoding from fp8 gives e4m3_value * scale (fp32 multiply; an fp8 NaN gives the
 * quiet NaN 0x7FC00000 with its sign, whatever scale is); every other conversion ignores scale and is exact or
 * rounds once to nearest even like convert.h (rotary_f32_to_f16 / _bf16, NaN kept quiet, same bits as convert.h).
 * To f32: bf16 is a bit move (a signalling NaN stays signalling, as rotary_bf16_to_f32); f16 gives the bits of
 * rotary_f16_to_f32 except that a signalling NaN comes out quieted (0x00400000 set), as F16C and Arm convert it.
 * in and out may start at any byte address and do not overlap. scale is finite and > 0 (checked by the caller).
 * Every kernel of one pair gives the same bits for every input (fp8.h holds the scalar reference).
 */
typedef void (*rotary_convert_fn)(const void *in, void *out, size_t n, float scale);

typedef struct rotary_convert_kernel {
  const char *name; /* rotary_<from>_to_<to>_convert__<isa>, with _nt after it for nt */
  rotary_dtype from, to;
  rotary_isa isa;
  rotary_convert_fn fn;
  int nt; /* the output's whole 64-byte lines written with non-temporal stores, left unfenced (kernels.h:
             rotary_stream_fence); chosen only by rotary_convert_select_nt */
} rotary_convert_kernel;

/* One declaration per kernel of the list. */
#define ROTARY_CONVERT(from, FROM, to, TO, isa, ISA) \
  void rotary_##from##_to_##to##_convert__##isa(const void *in, void *out, size_t n, float scale);
#define ROTARY_CONVERT_NT(from, FROM, to, TO, isa, ISA) \
  void rotary_##from##_to_##to##_convert__##isa##_nt(const void *in, void *out, size_t n, float scale);
#include "convert_list.h"
#undef ROTARY_CONVERT
#undef ROTARY_CONVERT_NT

/* Every compiled conversion kernel, usable on this CPU or not (tests run each one that is). */
extern const rotary_convert_kernel rotary_convert_list[];
extern const size_t rotary_convert_count;

/* The best enabled (rotary_isa_enabled) kernel converting from -> to; NULL if none (f32 -> f32 has none: memcpy). */
const rotary_convert_kernel *rotary_convert_select(rotary_dtype from, rotary_dtype to);

/* The non-temporal-store variant of the kernel rotary_convert_select picks, or NULL when it has none. */
const rotary_convert_kernel *rotary_convert_select_nt(rotary_dtype from, rotary_dtype to);

#endif /* ROTARY_CONVERT_KERNELS_H */
