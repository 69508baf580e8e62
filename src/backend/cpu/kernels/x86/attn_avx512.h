/* x86/attn_avx512.h: what the AVX-512 attention kernels share (16-element decoding, lane sums, masks). */
/* Included by attn_avx512.c (scores, values, exp) and attn_rot_avx512.c (scores rotating keys). The AVX2 header
 * comes first for what does not depend on the vector width (fp8 NaN codes and the f16 route's scale limit, the
 * 8-vector sum tree, 8-element decoding for half steps); its functions are AVX2 code, which AVX-512 functions may
 * inline. Then ROTARY_TARGET and INLINE name AVX-512 F/BW/VL for everything defined here. */
#ifndef ROTARY_ATTN_AVX512_H
#define ROTARY_ATTN_AVX512_H

#include "attn_avx2.h"

#undef ROTARY_TARGET
#undef INLINE
#define ROTARY_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline)) ROTARY_TARGET

/* 16 cache elements at p decoded to 16 floats, in order (dec16's rules in attn_avx2.h: fp8 through f16 bits,
 * times fp8_factor = scale * 2^8, exact and rounded once). */
INLINE __m512 dec16z(int dt, const unsigned char *p, __m512 fp8_factor) {
  if (dt == DT_F32) return _mm512_loadu_ps((const float *)(const void *)p);
  if (dt == DT_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
  if (dt == DT_BF16)
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p)), 16));
  const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
  const __m256i h = _mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16((short)0xbf80));
  return _mm512_mul_ps(_mm512_cvtph_ps(h), fp8_factor);
}

/* 16 elements (full) or the first 8 with zeros above (a half step: reads only those 8 elements). */
INLINE __m512 decn(int dt, const unsigned char *p, __m512 fp8_factor, int full) {
  if (full) return dec16z(dt, p, fp8_factor);
  return _mm512_zextps256_ps512(dec8(dt, p, _mm512_castps512_ps256(fp8_factor)));
}

/* The lanes of a 16- or 8-element step. */
static inline __mmask16 step_mask(int full) { return (__mmask16)(full ? 0xffffu : 0x00ffu); }

/* Lanes 8 .. 15 (AVX-512 F has no 8-float extract: it moves them as 4 doubles). */
INLINE __m256 upper8(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

/* The sums of 8 vectors of 16 lanes: each vector's two halves added lane by lane, then hsum8's tree. */
INLINE __m256 hsum8z(const __m512 v[8]) {
  __m256 h[8];
  for (int i = 0; i < 8; i++) h[i] = _mm256_add_ps(_mm512_castps512_ps256(v[i]), upper8(v[i]));
  return hsum8(h);
}

#endif /* ROTARY_ATTN_AVX512_H */
