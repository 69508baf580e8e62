/* x86/fp8_avx2.h: the AVX2 fp8 e4m3 encoding steps shared by the conversion and rotate-to-fp8 kernels. */
#ifndef ROTARY_FP8_AVX2_H
#define ROTARY_FP8_AVX2_H

#include <stdint.h>

#include "fp8.h"
#include "isa_avx2.h"

/* Lane by lane the integer steps of rotary_fp8_e4m3_from_f32 (fp8.h). */

/* 8 floats (already divided by the scale) to 8 codes, one per 32-bit lane. */
ROTARY_TARGET static inline __m256i fp8_encode8(__m256 q) {
  const __m256i u = _mm256_castps_si256(q);
  const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
  /* normal results: rebias and round to 3 mantissa bits, ties to even (wraps below 2^-6: replaced below) */
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1));
  const __m256i nrm = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(0x7ffff - 0x3c000000)), odd), 20);
  /* above 448 (Inf and NaN too) nrm exceeds 0x7e: saturate; NaN lanes then add one, giving 0x7f */
  const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
  const __m256i big = _mm256_sub_epi32(_mm256_min_epu32(nrm, _mm256_set1_epi32(0x7e)), nan);
  /* below 2^-6: the fp32 addition of 2^14 rounds |q| to a multiple of 2^-9, the count in the low bits */
  const __m256i sub = _mm256_sub_epi32(
      _mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(16384.0f))),
      _mm256_set1_epi32(0x46800000));
  const __m256i tiny = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), a);
  return _mm256_or_si256(_mm256_blendv_epi8(big, sub, tiny), sign);
}

/* x / scale as the scalar code computes it (a multiply where rotary_fp8_scale_inverts allows it, fp8.h). */
typedef struct fp8_div {
  __m256 by;
  int mul;
} fp8_div;

ROTARY_TARGET static inline fp8_div fp8_div_init(float scale) {
  fp8_div d;
  d.mul = rotary_fp8_scale_inverts(scale);
  d.by = _mm256_set1_ps(d.mul ? 1.0f / scale : scale);
  return d;
}

/* The common case, 8 lanes with no NaN and |q| >= 2^-6: the magnitude's code (clamped to 448 first), no sign. */
ROTARY_TARGET static inline __m256i fp8_normal8(__m256i a) {
  const __m256i c = _mm256_min_epu32(a, _mm256_set1_epi32(0x43e00000));
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(c, 20), _mm256_set1_epi32(1));
  return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(c, _mm256_set1_epi32(0x7ffff - 0x3c000000)), odd), 20);
}

/* 32 codes in order from four vectors of 8 (one code per 32-bit lane, in 0 .. 0xff): the packs work within 128-bit
 * lanes, so 4-byte groups come out as r0 lo, r1 lo, r2 lo, r3 lo, r0 hi, ... and one permute restores the order. */
ROTARY_TARGET static inline __m256i fp8_pack32(__m256i r0, __m256i r1, __m256i r2, __m256i r3) {
  const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(r0, r1), _mm256_packs_epi32(r2, r3));
  return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 32 floats already divided: the fast path when no lane is NaN or below 2^-6 (tested for the four vectors at once:
 * their unsigned minimum and one unordered compare per two vectors); signs come from packing the float bits with
 * signed saturation (a negative word stays negative). Otherwise the full per-lane path. */
ROTARY_TARGET static inline __m256i fp8_encode32(__m256 q0, __m256 q1, __m256 q2, __m256 q3) {
  const __m256i abs = _mm256_set1_epi32(0x7fffffff);
  const __m256i u0 = _mm256_castps_si256(q0), u1 = _mm256_castps_si256(q1);
  const __m256i u2 = _mm256_castps_si256(q2), u3 = _mm256_castps_si256(q3);
  const __m256i a0 = _mm256_and_si256(u0, abs), a1 = _mm256_and_si256(u1, abs);
  const __m256i a2 = _mm256_and_si256(u2, abs), a3 = _mm256_and_si256(u3, abs);
  const __m256i lo = _mm256_min_epu32(_mm256_min_epu32(a0, a1), _mm256_min_epu32(a2, a3));
  const __m256 nan = _mm256_or_ps(_mm256_cmp_ps(q0, q1, _CMP_UNORD_Q), _mm256_cmp_ps(q2, q3, _CMP_UNORD_Q));
  const __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), lo), _mm256_castps_si256(nan));
  if (__builtin_expect(!_mm256_testz_si256(bad, bad), 0))
    return fp8_pack32(fp8_encode8(q0), fp8_encode8(q1), fp8_encode8(q2), fp8_encode8(q3));
  const __m256i mag = fp8_pack32(fp8_normal8(a0), fp8_normal8(a1), fp8_normal8(a2), fp8_normal8(a3));
  const __m256i sign = _mm256_packs_epi16(_mm256_packs_epi32(u0, u1), _mm256_packs_epi32(u2, u3));
  const __m256i sign_ordered = _mm256_permutevar8x32_epi32(sign, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  return _mm256_or_si256(mag, _mm256_and_si256(sign_ordered, _mm256_set1_epi8((char)0x80)));
}

#endif /* ROTARY_FP8_AVX2_H */
