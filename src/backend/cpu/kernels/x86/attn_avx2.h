/* x86/attn_avx2.h: what the AVX2 attention kernels share (element decoding, lane sums, fp8 NaN codes). */
/* Included by attn_avx2.c (scores, values, exp) and attn_rot_avx2.c (scores rotating keys), two translation units
 * so that their builds (long under the sanitizers) run side by side. */
#ifndef ROTARY_ATTN_AVX2_H
#define ROTARY_ATTN_AVX2_H

#include <float.h>
#include <stdint.h>
#include <string.h>

#include "attn_common.h"
#include "attn_kernels.h"
#include "convert.h"
#include "fp8.h"
#include "isa_avx2.h"

#define INLINE static inline __attribute__((always_inline)) ROTARY_TARGET


/* 8 cache elements at p decoded to 8 floats, in order (dec16's rules). */
INLINE __m256 dec8(int dt, const unsigned char *p, __m256 fp8_factor) {
  if (dt == DT_F32) return _mm256_loadu_ps((const float *)(const void *)p);
  if (dt == DT_F16) return rv_load_f16(p);
  if (dt == DT_BF16) return rv_load_bf16((const uint16_t *)(const void *)p);
  const __m128i w = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)p));
  const __m128i h = _mm_and_si128(_mm_slli_epi16(w, 7), _mm_set1_epi16((short)0xbf80));
  return _mm256_mul_ps(_mm256_cvtph_ps(h), fp8_factor);
}

/*
 * 16 cache elements at p decoded to two vectors of 8 floats, in order. fp8 goes through f16: a code's sign and
 * 7 magnitude bits shifted into f16 bits (sign << 15 | magnitude << 7) are the f16 number value * 2^-8, exact
 * (exponent field 0 lands on f16 subnormals, which F16C converts exactly, whatever MXCSR's DAZ); one multiply by
 * fp8_factor = scale * 2^8 (exact: checked finite by the caller) then gives value * scale rounded once, the bits of
 * rotary_fp8_e4m3_decode. NaN codes (S.1111.111) come out finite: the fp8 kernels find them apart (fp8_fix_*).
 */
INLINE void dec16(int dt, const unsigned char *p, __m256 fp8_factor, __m256 *lo, __m256 *hi) {
  if (dt == DT_F32) {
    *lo = _mm256_loadu_ps((const float *)(const void *)p);
    *hi = _mm256_loadu_ps((const float *)(const void *)(p + 32));
  } else if (dt == DT_F16) {
    *lo = rv_load_f16(p);
    *hi = rv_load_f16(p + 16);
  } else if (dt == DT_BF16) {
    *lo = rv_load_bf16((const uint16_t *)(const void *)p);
    *hi = rv_load_bf16((const uint16_t *)(const void *)(p + 16));
  } else {
    const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
    const __m256i h = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16((short)0xbf80));
    *lo = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), fp8_factor);
    *hi = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), fp8_factor);
  }
}

/* Lane masks for the first t of 16 lanes (maskload / maskstore). */
INLINE void tail_masks(size_t t, __m256i *m0, __m256i *m1) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  *m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)t), idx);
  *m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)t - 8), idx);
}

/* The sums of 8 vectors, lane i of the result holding the sum of v[i] (a fixed tree: 3 rounds of pairwise adds). */
INLINE __m256 hsum8(const __m256 v[8]) {
  const __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* The sum of a vector's 8 lanes by a fixed tree: the two halves, then pairs, then the last two. */
INLINE float lane_sum8(__m256 a) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(h2, _mm_movehdup_ps(h2)));
}

/* Staging: with more than 4 rows, f16 and fp8 rows are decoded once into this many floats and every row block
 * reads them as f32 (the decoded values are the same numbers, so the results are the same bits). */
#define STAGE_FLOATS 4096

/* ---- fp8: NaN codes, and scales too large for the f16 route ---- */

/* Nonzero when one of the n rows of m codes (byte stride pb) holds a NaN code (S.1111.111): the rows' compares
 * are or-ed together and tested once. */
INLINE int fp8_any_nan(const unsigned char *p, ptrdiff_t pb, size_t n, size_t m) {
  const __m256i top = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi8(-1);
  const size_t m32 = m & ~(size_t)31;
  __m256i hit = _mm256_setzero_si256();
  int any = 0;
  for (size_t j = 0; j < n; j++) {
    const unsigned char *row = p + (ptrdiff_t)j * pb;
    for (size_t i = 0; i < m32; i += 32) {
      const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(row + i));
      hit = _mm256_or_si256(hit, _mm256_cmpeq_epi8(_mm256_or_si256(b, top), ones));
    }
    for (size_t i = m32; i < m; i++) any |= (row[i] & 0x7f) == 0x7f;
  }
  return any | !_mm256_testz_si256(hit, hit);
}

/* The scalar rule where the f16 route cannot hold it: scale * 2^8 not finite. */
static inline int fp8_factor_ok(float scale) { return scale * 256.0f <= FLT_MAX; }

/* A key holding a NaN code gives NaN logits in every row (q . key is NaN whatever q is). */
__attribute__((noinline, cold, unused)) ROTARY_TARGET static void fp8_fix_scores(size_t rows, size_t hd,
                                                                                  const unsigned char *k, ptrdiff_t kb,
                                                                                  size_t n, float *s, size_t ss) {
  for (size_t j = 0; j < n; j++)
    if (fp8_any_nan(k + (ptrdiff_t)j * kb, 0, 1, hd))
      for (size_t r = 0; r < rows; r++) s[r * ss + j] = rotary_bits_f32(0x7fc00000u);
}

/* A NaN code at (j, d) makes o[r][d] NaN in every row (p * NaN is NaN whatever p is). */
__attribute__((noinline, cold, unused)) static void fp8_fix_values(size_t rows, size_t hd, const unsigned char *v,
                                                                   ptrdiff_t vb, size_t n, float *o) {
  for (size_t j = 0; j < n; j++)
    for (size_t d = 0; d < hd; d++)
      if ((v[(ptrdiff_t)j * vb + (ptrdiff_t)d] & 0x7f) == 0x7f)
        for (size_t r = 0; r < rows; r++) o[r * hd + d] = rotary_bits_f32(0x7fc00000u);
}

#endif /* ROTARY_ATTN_AVX2_H */
