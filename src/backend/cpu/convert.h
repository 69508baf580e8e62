/* convert.h: exact f16/bf16 <-> f32 conversions (round to nearest even) and the pair formula shared by the kernels. */
#ifndef ROTARY_CONVERT_H
#define ROTARY_CONVERT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t rotary_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float rotary_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline float rotary_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    /* zero or subnormal: mant * 2^-24 is exact in fp32 */
    float v = (float)mant * 0x1p-24f;
    return rotary_bits_f32(rotary_f32_bits(v) | sign);
  }
  if (exp == 31) return rotary_bits_f32(sign | 0x7f800000u | (mant << 13));
  return rotary_bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Rounds to nearest even like the F16C instruction VCVTPS2PH with imm 0: NaNs stay NaN, quieted, keeping the top
 * payload bits; overflow gives infinity; subnormal results are rounded, never flushed. */
static inline uint16_t rotary_f32_to_f16(float f) {
  uint32_t u = rotary_f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  uint32_t o;
  if (a >= 0x7f800000u) {
    o = a > 0x7f800000u ? 0x7e00u | ((a >> 13) & 0x3ffu) : 0x7c00u;
  } else if (a >= 0x477ff000u) {
    o = 0x7c00u; /* 65520 and above round to infinity */
  } else if (a < 0x38800000u) {
    /* below 2^-14: adding 0.5 aligns the 10 result bits at the bottom of the significand, and the fp32 addition
     * itself rounds to nearest even */
    float v = rotary_bits_f32(a) + 0.5f;
    o = rotary_f32_bits(v) - 0x3f000000u;
  } else {
    uint32_t odd = (a >> 13) & 1u;
    o = (a + 0xc8000fffu + odd) >> 13; /* rebias the exponent by -112 and round */
  }
  return (uint16_t)(o | sign);
}

static inline float rotary_bf16_to_f32(uint16_t h) { return rotary_bits_f32((uint32_t)h << 16); }

/* Rounds to nearest even; NaNs stay NaN (quiet bit set) whatever their low payload bits. */
static inline uint16_t rotary_f32_to_bf16(float f) {
  uint32_t u = rotary_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* The NaN a rotated pair's output is when it is NaN, the same on every ISA whatever the hardware propagates (x86
 * returns an operand's NaN by operand position and a negative default NaN; Arm prefers signalling NaNs and has a
 * positive default NaN; fmsub forms and a separate negation disagree on the sign): x0 quieted when x0 is NaN, else
 * x1 quieted when x1 is NaN, else the positive default NaN (inf * 0, inf - inf, or a NaN cos/sin row). */
static inline float rotary_pair_nan(float x0, float x1) {
  const uint32_t a = rotary_f32_bits(x0), b = rotary_f32_bits(x1);
  if ((a & 0x7fffffffu) > 0x7f800000u) return rotary_bits_f32(a | 0x00400000u);
  if ((b & 0x7fffffffu) > 0x7f800000u) return rotary_bits_f32(b | 0x00400000u);
  return rotary_bits_f32(0x7fc00000u);
}

/* One pair: y0 = fmaf(x0, c, -(x1 * s)), y1 = fmaf(x0, s, x1 * c), a NaN output replaced by rotary_pair_nan. The
 * formula every kernel computes, lane by lane. */
static inline __attribute__((always_inline)) void rotary_rotate_pair(float x0, float x1, float c, float s, float *y0,
                                                                     float *y1) {
  float a = fmaf(x0, c, -(x1 * s)), b = fmaf(x0, s, x1 * c);
  if (__builtin_expect(a != a || b != b, 0)) {
    const float nan = rotary_pair_nan(x0, x1);
    if (a != a) a = nan;
    if (b != b) b = nan;
  }
  *y0 = a;
  *y1 = b;
}

#endif /* ROTARY_CONVERT_H */
