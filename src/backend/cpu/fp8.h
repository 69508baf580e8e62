/* fp8.h: scalar OCP FP8 E4M3 ("e4m3fn") encode and decode, the reference every conversion kernel matches. */
#ifndef ROTARY_FP8_H
#define ROTARY_FP8_H

#include <stdint.h>

#include "convert.h"

/* E4M3: sign, 4 exponent bits (bias 7), 3 mantissa bits; no infinities; S.1111.111 is NaN, so 0x7E (448) is the
 * largest finite value; exponent field 0 holds the subnormals m * 2^-9. */
#define ROTARY_FP8_MAX 448.0f
#define ROTARY_FP8_NAN 0x7Fu

/* q rounded to nearest even, saturated: |q| above 448 (Inf included) gives +-448, NaN gives 0x7F or 0xFF by its
 * sign, -0 gives 0x80. Integer steps the vector kernels repeat lane by lane. */
static inline uint8_t rotary_fp8_e4m3_from_f32(float q) {
  const uint32_t u = rotary_f32_bits(q);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7fffffffu;
  uint32_t o;
  if (a > 0x7f800000u) {
    o = ROTARY_FP8_NAN;
  } else if (a > 0x43e00000u) {
    o = 0x7eu; /* above 448 (Inf too) saturates */
  } else if (a < 0x3c800000u) {
    /* below 2^-6 (subnormal result, or 0x08 when it rounds up to 2^-6): 2^14 has a unit in the last place of 2^-9,
     * so the fp32 addition rounds |q| to a multiple of 2^-9, to nearest even, and the low bits hold the count */
    o = rotary_f32_bits(rotary_bits_f32(a) + 16384.0f) - 0x46800000u;
  } else {
    /* rebias the exponent (127 -> 7: minus 120 << 23) and round the 23-bit mantissa to 3 bits, ties to even */
    o = (a + 0x7ffffu + ((a >> 20) & 1u) - 0x3c000000u) >> 20;
  }
  return (uint8_t)(o | sign);
}

/* The value of one E4M3 code, exact in fp32; NaN codes give the quiet NaN 0x7FC00000 with their sign. */
static inline float rotary_fp8_e4m3_to_f32(uint8_t b) {
  const uint32_t sign = (uint32_t)(b & 0x80u) << 24;
  const uint32_t e = (b >> 3) & 0xfu, m = b & 7u;
  if (e == 0) return rotary_bits_f32(rotary_f32_bits((float)m * 0x1p-9f) | sign);
  if (e == 15 && m == 7) return rotary_bits_f32(sign | 0x7fc00000u);
  return rotary_bits_f32(sign | ((e + 120u) << 23) | (m << 20));
}

/* Whether x / scale may be computed as x * (1 / scale) with the same bits: scale a power of two whose reciprocal is
 * normal (x * 2^-k and x / 2^k are the same real number rounded once, subnormal results included). The vector
 * encoders multiply then, and divide otherwise. */
static inline int rotary_fp8_scale_inverts(float scale) {
  const uint32_t s = rotary_f32_bits(scale), e = (s >> 23) & 0xffu;
  return (s & 0x807fffffu) == 0 && e >= 1 && e <= 253;
}

/* The cache's rule: x / scale in fp32 (one rounding), then encoded. */
static inline uint8_t rotary_fp8_e4m3_encode(float x, float scale) { return rotary_fp8_e4m3_from_f32(x / scale); }

/* The cache's rule back: the code's value times scale in fp32 (one rounding); NaN codes stay the NaN above. */
static inline float rotary_fp8_e4m3_decode(uint8_t b, float scale) {
  const float v = rotary_fp8_e4m3_to_f32(b);
  return v != v ? v : v * scale;
}

/* f16 -> f32 as the vector conversions do it: rotary_f16_to_f32 with a signalling NaN quieted. */
static inline float rotary_f16_to_f32_quiet(uint16_t h) {
  const float f = rotary_f16_to_f32(h);
  return f != f ? rotary_bits_f32(rotary_f32_bits(f) | 0x00400000u) : f;
}

#endif /* ROTARY_FP8_H */
