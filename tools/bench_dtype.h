/* bench_dtype.h: f16/bf16 <-> f32 conversions for the benchmark's baselines, branch-free so plain loops vectorize. */
#ifndef ROTARY_BENCH_DTYPE_H
#define ROTARY_BENCH_DTYPE_H

#include <stdint.h>
#include <string.h>

/* The library's own conversions (src/backend/cpu/convert.h) branch per element; these compute every case and select, which a
 * compiler turns into vector blends, so the composed baseline is not slowed by scalar conversions. Same results
 * (round to nearest even, NaN stays NaN), except that an f16 NaN loses its payload. */

static inline uint32_t bench_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float bench_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* cond ? a : b with a mask, not a branch: written as a ?: GCC may move the float operation that computes one
 * side into a branch and then, as floating point may trap, not vectorize the loop. */
static inline uint32_t bench_select(int cond, uint32_t a, uint32_t b) {
  const uint32_t m = 0u - (uint32_t)(cond != 0);
  return (a & m) | (b & ~m);
}

static inline float bench_f16_to_f32(uint16_t h) {
  const uint32_t em = (uint32_t)(h & 0x7fffu) << 13; /* exponent and mantissa at their fp32 places */
  const uint32_t exp = em & 0x0f800000u;
  const uint32_t normal = em + (112u << 23);          /* rebias 15 -> 127 */
  const uint32_t special = normal + (112u << 23);     /* inf and NaN: exponent 255 */
  /* zero and subnormals: 2^-14 * (1 + m/1024) - 2^-14 = m * 2^-24, exact */
  const uint32_t sub = bench_bits(bench_float(normal + (1u << 23)) - 0x1p-14f);
  const uint32_t r = bench_select(exp == 0x0f800000u, special, bench_select(exp == 0, sub, normal));
  return bench_float(r | (uint32_t)(h & 0x8000u) << 16);
}

static inline uint16_t bench_f32_to_f16(float f) {
  const uint32_t u = bench_bits(f), sign = u & 0x80000000u, a = u ^ sign;
  const uint32_t big = a > 0x7f800000u ? 0x7e00u : 0x7c00u;               /* NaN, or infinity / overflow */
  const uint32_t sub = bench_bits(bench_float(a) + 0.5f) - 0x3f000000u;    /* below 2^-14: the add rounds */
  const uint32_t normal = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13; /* rebias and round */
  const uint32_t r = bench_select(a >= 0x47800000u, big, bench_select(a < 0x38800000u, sub, normal));
  return (uint16_t)(r | sign >> 16);
}

static inline float bench_bf16_to_f32(uint16_t h) { return bench_float((uint32_t)h << 16); }

static inline uint16_t bench_f32_to_bf16(float f) {
  const uint32_t u = bench_bits(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
}

#endif /* ROTARY_BENCH_DTYPE_H */
