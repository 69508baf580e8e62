/* x86/rotate_fp8_avx2.c: the rotate-to-fp8 kernels for AVX2 + FMA + F16C: 16 pairs a step, encoded in registers. */
/* Defines rotary_<dtype>_rotate_<pairing>_to_fp8__avx2 for f32, f16 and bf16, half and interleaved (the RF8_ENTRY
 * lines at the end name each one in full). Pairs past the last whole step go one at a time through the scalar step
 * (rotary_rotate_pair_to_fp8), the elements past rotary_dim through the AVX2 encoders. */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "convert_kernels.h"
#include "fp8_avx2.h"
#include "pair_nan_fix.h"
#include "rotate_fp8_kernels.h"

/* 8 elements from element i of a row, as floats (exact; F16C quiets a signalling NaN, which encodes as any NaN). */
ROTARY_TARGET static inline __m256 rf8_load8(const char *row, size_t i, const rotary_dtype from) {
  if (from == ROTARY_F32) return _mm256_loadu_ps((const float *)(const void *)row + i);
  if (from == ROTARY_F16) return rv_load_f16((const uint16_t *)(const void *)row + i);
  return rv_load_bf16((const uint16_t *)(const void *)row + i);
}

/* 8 pairs rotated by their cos/sin lanes (y0 = fma(x0, c, -(x1 * s)), y1 = fma(x0, s, x1 * c)), then divided by the
 * scale as the encoders divide. */
ROTARY_TARGET static inline void rf8_rotate8(__m256 x0, __m256 x1, const float *cos, const float *sin, fp8_div d,
                                            __m256 *q0, __m256 *q1) {
  const __m256 c = _mm256_loadu_ps(cos), s = _mm256_loadu_ps(sin);
  __m256 y0 = _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)), y1 = _mm256_fmadd_ps(x0, s, _mm256_mul_ps(x1, c));
  const __m256 nan = _mm256_cmp_ps(y0, y1, _CMP_UNORD_Q);
  if (__builtin_expect(!_mm256_testz_ps(nan, nan), 0)) {
    y0 = rv_pair_nan_fix(x0, x1, y0);
    y1 = rv_pair_nan_fix(x0, x1, y1);
  }
  *q0 = d.mul ? _mm256_mul_ps(y0, d.by) : _mm256_div_ps(y0, d.by);
  *q1 = d.mul ? _mm256_mul_ps(y1, d.by) : _mm256_div_ps(y1, d.by);
}

/* Elements [rotary_dim, head_dim) of a row encoded as they are. */
ROTARY_TARGET static inline void rf8_rest(const char *x, unsigned char *y, size_t rotary_dim, size_t head_dim,
                                         float scale, const rotary_dtype from) {
  if (rotary_dim == head_dim) return;
  const char *src = x + rotary_dim * (from == ROTARY_F32 ? 4 : 2);
  const size_t n = head_dim - rotary_dim;
  if (from == ROTARY_F32) rotary_f32_to_fp8_convert__avx2(src, y + rotary_dim, n, scale);
  else if (from == ROTARY_F16) rotary_f16_to_fp8_convert__avx2(src, y + rotary_dim, n, scale);
  else rotary_bf16_to_fp8_convert__avx2(src, y + rotary_dim, n, scale);
}

/* Half pairing: pairs (j, j + half), 16 a step: the 16 first codes and the 16 second ones come out of one
 * fp8_encode32 call (fp8_avx2.h) as its two halves. */
__attribute__((always_inline)) ROTARY_TARGET static inline void rf8_half(const void *in, ptrdiff_t in_stride,
                                                                         unsigned char *out, ptrdiff_t out_stride,
                                                                         size_t n_heads, size_t head_dim,
                                                                         size_t rotary_dim, const float *cos,
                                                                         const float *sin, float scale,
                                                                         const rotary_dtype from) {
  const size_t esize = from == ROTARY_F32 ? 4 : 2, half = rotary_dim / 2;
  const fp8_div d = fp8_div_init(scale);
  for (size_t h = 0; h < n_heads; h++) {
    const char *x = (const char *)in + (ptrdiff_t)h * in_stride * (ptrdiff_t)esize;
    unsigned char *y = out + (ptrdiff_t)h * out_stride;
    size_t j = 0;
    for (; j + 16 <= half; j += 16) {
      __m256 a0, a1, b0, b1;
      rf8_rotate8(rf8_load8(x, j, from), rf8_load8(x, half + j, from), cos + j, sin + j, d, &a0, &b0);
      rf8_rotate8(rf8_load8(x, j + 8, from), rf8_load8(x, half + j + 8, from), cos + j + 8, sin + j + 8, d, &a1, &b1);
      const __m256i codes = fp8_encode32(a0, a1, b0, b1);
      _mm_storeu_si128((__m128i *)(void *)(y + j), _mm256_castsi256_si128(codes));
      _mm_storeu_si128((__m128i *)(void *)(y + half + j), _mm256_extracti128_si256(codes, 1));
    }
    for (; j < half; j++) rotary_rotate_pair_to_fp8(x, y, j, half + j, cos[j], sin[j], scale, from);
    rf8_rest(x, y, rotary_dim, head_dim, scale, from);
  }
}

/* 8 interleaved pairs from element 2j split into their first (x0) and second (x1) elements, in pair order: a bf16
 * pair is one 32-bit word; others take two vectors of 4 pairs, a shuffle and a permute each. */
ROTARY_TARGET static inline void rf8_split8(const char *x, size_t j, const rotary_dtype from, __m256 *x0, __m256 *x1) {
  if (from == ROTARY_BF16) {
    const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)(x + 4 * j));
    *x0 = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    *x1 = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int)0xffff0000u)));
    return;
  }
  const __m256 lo = rf8_load8(x, 2 * j, from), hi = rf8_load8(x, 2 * j + 8, from);
  /* the shuffles give pairs 0 1 4 5 | 2 3 6 7; the permute of 64-bit pieces puts them in order */
  *x0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xd8));
  *x1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xdd)), 0xd8));
}

/* Interleaved pairing: pairs (2j, 2j + 1), 16 a step; fp8_encode32 gives the 16 first codes, then the 16 second
 * ones, and byte unpacks interleave them. */
__attribute__((always_inline)) ROTARY_TARGET static inline void rf8_interleaved(const void *in, ptrdiff_t in_stride,
                                                                                unsigned char *out,
                                                                                ptrdiff_t out_stride, size_t n_heads,
                                                                                size_t head_dim, size_t rotary_dim,
                                                                                const float *cos, const float *sin,
                                                                                float scale, const rotary_dtype from) {
  const size_t esize = from == ROTARY_F32 ? 4 : 2, half = rotary_dim / 2;
  const fp8_div d = fp8_div_init(scale);
  for (size_t h = 0; h < n_heads; h++) {
    const char *x = (const char *)in + (ptrdiff_t)h * in_stride * (ptrdiff_t)esize;
    unsigned char *y = out + (ptrdiff_t)h * out_stride;
    size_t j = 0;
    for (; j + 16 <= half; j += 16) {
      __m256 x0, x1, a0, a1, b0, b1;
      rf8_split8(x, j, from, &x0, &x1);
      rf8_rotate8(x0, x1, cos + j, sin + j, d, &a0, &b0);
      rf8_split8(x, j + 8, from, &x0, &x1);
      rf8_rotate8(x0, x1, cos + j + 8, sin + j + 8, d, &a1, &b1);
      const __m256i codes = fp8_encode32(a0, a1, b0, b1);
      const __m128i first = _mm256_castsi256_si128(codes), second = _mm256_extracti128_si256(codes, 1);
      _mm_storeu_si128((__m128i *)(void *)(y + 2 * j), _mm_unpacklo_epi8(first, second));
      _mm_storeu_si128((__m128i *)(void *)(y + 2 * j + 16), _mm_unpackhi_epi8(first, second));
    }
    for (; j < half; j++) rotary_rotate_pair_to_fp8(x, y, 2 * j, 2 * j + 1, cos[j], sin[j], scale, from);
    rf8_rest(x, y, rotary_dim, head_dim, scale, from);
  }
}

#define RF8_ENTRY(name, pairing, FROM)                                                                              \
  void name(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim, \
            size_t rotary_dim, const float *cos, const float *sin, float scale) ROTARY_TARGET;                     \
  void name(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim, \
            size_t rotary_dim, const float *cos, const float *sin, float scale) {                                  \
    rf8_##pairing(in, in_stride, out, out_stride, n_heads, head_dim, rotary_dim, cos, sin, scale, FROM);           \
  }
RF8_ENTRY(rotary_f32_rotate_half_to_fp8__avx2, half, ROTARY_F32)
RF8_ENTRY(rotary_f32_rotate_interleaved_to_fp8__avx2, interleaved, ROTARY_F32)
RF8_ENTRY(rotary_f16_rotate_half_to_fp8__avx2, half, ROTARY_F16)
RF8_ENTRY(rotary_f16_rotate_interleaved_to_fp8__avx2, interleaved, ROTARY_F16)
RF8_ENTRY(rotary_bf16_rotate_half_to_fp8__avx2, half, ROTARY_BF16)
RF8_ENTRY(rotary_bf16_rotate_interleaved_to_fp8__avx2, interleaved, ROTARY_BF16)
#endif
