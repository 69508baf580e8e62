/* x86/rotate_fp8_avx512.c: the rotate-to-fp8 kernels for AVX-512 F/BW/VL: 16 pairs a step, encoded in registers. */
/* Defines rotary_<dtype>_rotate_<pairing>_to_fp8__avx512 and rotary_<dtype>_rotate_<pairing>_to_fp8__avx512_nt for
 * f32, f16 and bf16, half and interleaved (the RF8_ENTRY lines at the end name each one in full). */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>

#include "fp8_avx512.h"
#include "pair_nan_fix.h"
#include "rotate_fp8_kernels.h"

/* The first n lanes (n <= 16). */
static inline __mmask16 rf8_lanes(size_t n) { return (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u); }

/* 16 pairs (lanes under m: pairs past it read nothing and give zeros) rotated by their cos/sin lanes: the rotation
 * kernels' y0 = fma(x0, c, -(x1 * s)), y1 = fma(x0, s, x1 * c), then divided by the scale (fp8_divide16). */
ROTARY_TARGET static inline void rf8_rotate16(__m512 x0, __m512 x1, const float *cos, const float *sin, __mmask16 m,
                                             __m512 by, const int mul, __m512 *q0, __m512 *q1) {
  const __m512 c = _mm512_maskz_loadu_ps(m, cos), s = _mm512_maskz_loadu_ps(m, sin);
  __m512 y0 = _mm512_fmsub_ps(x0, c, _mm512_mul_ps(x1, s)), y1 = _mm512_fmadd_ps(x0, s, _mm512_mul_ps(x1, c));
  if (__builtin_expect(_mm512_cmp_ps_mask(y0, y1, _CMP_UNORD_Q) != 0, 0)) {
    y0 = rv_pair_nan_fix(x0, x1, y0);
    y1 = rv_pair_nan_fix(x0, x1, y1);
  }
  *q0 = fp8_divide16(y0, by, mul);
  *q1 = fp8_divide16(y1, by, mul);
}

/* Half pairing: pairs (j, j + half) of every head, 16 at a time; the rest of the row encoded as it is. */
__attribute__((always_inline)) ROTARY_TARGET static inline void rf8_half(const void *in, ptrdiff_t in_stride,
                                                                         unsigned char *out, ptrdiff_t out_stride,
                                                                         size_t n_heads, size_t head_dim,
                                                                         size_t rotary_dim, const float *cos,
                                                                         const float *sin, __m512 by, const int from,
                                                                         const int mul, const int nt) {
  const size_t esize = from == FROM_F32 ? 4 : 2, half = rotary_dim / 2;
  for (size_t h = 0; h < n_heads; h++) {
    const char *x = (const char *)in + (ptrdiff_t)h * in_stride * (ptrdiff_t)esize;
    unsigned char *y = out + (ptrdiff_t)h * out_stride;
    size_t j = 0;
    /* nt: four steps fill a whole line in each half of the row where both start on a line */
    for (; nt && j + 64 <= half && ((uintptr_t)(y + j) & 63) == 0 && ((uintptr_t)(y + half + j) & 63) == 0; j += 64) {
      __m512i a[4], b[4];
      for (int g = 0; g < 4; g++) {
        const size_t k = j + 16 * (size_t)g;
        __m512 q0, q1;
        rf8_rotate16(fp8_load16(x, k, 0xffff, from), fp8_load16(x, half + k, 0xffff, from), cos + k, sin + k, 0xffff,
                     by, mul, &q0, &q1);
        a[g] = fp8_codes16(q0), b[g] = fp8_codes16(q1);
      }
      _mm512_stream_si512((void *)(y + j), fp8_line64(a[0], a[1], a[2], a[3]));
      _mm512_stream_si512((void *)(y + half + j), fp8_line64(b[0], b[1], b[2], b[3]));
    }
    if (nt && half == 32 && ((uintptr_t)y & 63) == 0) { /* head_dim 64: the rotated row is one line, two steps */
      __m512 q0, q1, q2, q3;
      rf8_rotate16(fp8_load16(x, 0, 0xffff, from), fp8_load16(x, 32, 0xffff, from), cos, sin, 0xffff, by, mul, &q0,
                   &q1);
      rf8_rotate16(fp8_load16(x, 16, 0xffff, from), fp8_load16(x, 48, 0xffff, from), cos + 16, sin + 16, 0xffff, by,
                   mul, &q2, &q3);
      _mm512_stream_si512((void *)y, fp8_line64(fp8_codes16(q0), fp8_codes16(q2), fp8_codes16(q1), fp8_codes16(q3)));
      j = 32;
    }
    for (; j + 16 <= half; j += 16) { /* whole steps: plain loads and stores */
      __m512 q0, q1;
      rf8_rotate16(fp8_load16(x, j, 0xffff, from), fp8_load16(x, half + j, 0xffff, from), cos + j, sin + j, 0xffff,
                   by, mul, &q0, &q1);
      _mm_storeu_si128((__m128i *)(void *)(y + j), fp8_encode16(q0));
      _mm_storeu_si128((__m128i *)(void *)(y + half + j), fp8_encode16(q1));
    }
    if (j < half) { /* the last half - j pairs under a mask */
      const __mmask16 m = rf8_lanes(half - j);
      __m512 q0, q1;
      rf8_rotate16(fp8_load16(x, j, m, from), fp8_load16(x, half + j, m, from), cos + j, sin + j, m, by, mul, &q0,
                   &q1);
      _mm_mask_storeu_epi8(y + j, m, fp8_encode16(q0));
      _mm_mask_storeu_epi8(y + half + j, m, fp8_encode16(q1));
    }
    if (rotary_dim < head_dim)
      fp8_encode_rows(x + rotary_dim * esize, y + rotary_dim, head_dim - rotary_dim, by, from, mul, nt);
  }
}

/* Pairs j .. j + 15 of an interleaved row (the first n of them exist: m holds n lanes) split into their first (x0)
 * and second (x1) elements: a bf16 pair is one 32-bit word (its first element the low half), others take two loads
 * and two permutes. */
ROTARY_TARGET static inline void rf8_split16(const char *x, size_t j, size_t n, __mmask16 m, const int from,
                                            __m512 *x0, __m512 *x1) {
  if (from == FROM_BF16) {
    const __m512i w = _mm512_maskz_loadu_epi32(m, x + 4 * j);
    *x0 = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    *x1 = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xffff0000u)));
    return;
  }
  /* 2n elements: the first 16 in lo, the rest in hi */
  const __m512 lo = fp8_load16(x, 2 * j, rf8_lanes(2 * n), from);
  const __m512 hi = fp8_load16(x, 2 * j + 16, rf8_lanes(n > 8 ? 2 * n - 16 : 0), from);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  *x0 = _mm512_permutex2var_ps(lo, even, hi);
  *x1 = _mm512_permutex2var_ps(lo, odd, hi);
}

/* The codes of 16 pairs, each pair's two codes in the low 16 bits of its 32-bit lane (first code low). */
ROTARY_TARGET static inline __m512i rf8_pair_words(__m512 q0, __m512 q1) {
  return _mm512_or_si512(fp8_codes16(q0), _mm512_slli_epi32(fp8_codes16(q1), 8));
}

/* The codes of 16 pairs in memory order. */
ROTARY_TARGET static inline __m256i rf8_pair_codes(__m512 q0, __m512 q1) {
  return _mm512_cvtepi32_epi16(rf8_pair_words(q0, q1));
}

/* The pair words of 32 pairs (a: the first 16) as one line of 64 codes in memory order. */
ROTARY_TARGET static inline __m512i rf8_pair_line(__m512i a, __m512i b) {
  /* each 128-bit lane k holds a's words of lane k, then b's */
  const __m512i w = _mm512_packus_epi32(a, b);
  return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), w);
}

/* Interleaved pairing: pairs (2j, 2j + 1), 16 at a time. */
__attribute__((always_inline)) ROTARY_TARGET static inline void rf8_interleaved(
    const void *in, ptrdiff_t in_stride, unsigned char *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim,
    size_t rotary_dim, const float *cos, const float *sin, __m512 by, const int from, const int mul, const int nt) {
  const size_t esize = from == FROM_F32 ? 4 : 2, half = rotary_dim / 2;
  for (size_t h = 0; h < n_heads; h++) {
    const char *x = (const char *)in + (ptrdiff_t)h * in_stride * (ptrdiff_t)esize;
    unsigned char *y = out + (ptrdiff_t)h * out_stride;
    size_t j = 0;
    /* nt: two steps fill a whole line (32 pairs, 64 codes) where it starts on a line */
    for (; nt && j + 32 <= half && ((uintptr_t)(y + 2 * j) & 63) == 0; j += 32) {
      __m512i w[2];
      for (int g = 0; g < 2; g++) {
        __m512 x0, x1, q0, q1;
        rf8_split16(x, j + 16 * (size_t)g, 16, 0xffff, from, &x0, &x1);
        rf8_rotate16(x0, x1, cos + j + 16 * (size_t)g, sin + j + 16 * (size_t)g, 0xffff, by, mul, &q0, &q1);
        w[g] = rf8_pair_words(q0, q1);
      }
      _mm512_stream_si512((void *)(y + 2 * j), rf8_pair_line(w[0], w[1]));
    }
    for (; j + 16 <= half; j += 16) { /* whole steps: plain loads and stores */
      __m512 x0, x1, q0, q1;
      rf8_split16(x, j, 16, 0xffff, from, &x0, &x1);
      rf8_rotate16(x0, x1, cos + j, sin + j, 0xffff, by, mul, &q0, &q1);
      _mm256_storeu_si256((__m256i *)(void *)(y + 2 * j), rf8_pair_codes(q0, q1));
    }
    if (j < half) { /* the last half - j pairs under a mask */
      const __mmask16 m = rf8_lanes(half - j);
      __m512 x0, x1, q0, q1;
      rf8_split16(x, j, half - j, m, from, &x0, &x1);
      rf8_rotate16(x0, x1, cos + j, sin + j, m, by, mul, &q0, &q1);
      _mm256_mask_storeu_epi16(y + 2 * j, m, rf8_pair_codes(q0, q1));
    }
    if (rotary_dim < head_dim)
      fp8_encode_rows(x + rotary_dim * esize, y + rotary_dim, head_dim - rotary_dim, by, from, mul, nt);
  }
}

/* One entry per dtype, pairing and store kind: x * (1 / scale) where rotary_fp8_scale_inverts allows it, x / scale
 * otherwise (each loop specialized for one of the two); the _nt kernels stream whole lines (unfenced, kernels.h). */
#define RF8_ENTRY(name, pairing, FROM, NT)                                                                          \
  void name(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim, \
            size_t rotary_dim, const float *cos, const float *sin, float scale) ROTARY_TARGET;                     \
  void name(const void *in, ptrdiff_t in_stride, void *out, ptrdiff_t out_stride, size_t n_heads, size_t head_dim, \
            size_t rotary_dim, const float *cos, const float *sin, float scale) {                                  \
    if (rotary_fp8_scale_inverts(scale))                                                                            \
      rf8_##pairing(in, in_stride, out, out_stride, n_heads, head_dim, rotary_dim, cos, sin,                        \
                    _mm512_set1_ps(1.0f / scale), FROM, 1, NT);                                                     \
    else                                                                                                            \
      rf8_##pairing(in, in_stride, out, out_stride, n_heads, head_dim, rotary_dim, cos, sin, _mm512_set1_ps(scale), \
                    FROM, 0, NT);                                                                                   \
  }
RF8_ENTRY(rotary_f32_rotate_half_to_fp8__avx512, half, FROM_F32, 0)
RF8_ENTRY(rotary_f32_rotate_interleaved_to_fp8__avx512, interleaved, FROM_F32, 0)
RF8_ENTRY(rotary_f16_rotate_half_to_fp8__avx512, half, FROM_F16, 0)
RF8_ENTRY(rotary_f16_rotate_interleaved_to_fp8__avx512, interleaved, FROM_F16, 0)
RF8_ENTRY(rotary_bf16_rotate_half_to_fp8__avx512, half, FROM_BF16, 0)
RF8_ENTRY(rotary_bf16_rotate_interleaved_to_fp8__avx512, interleaved, FROM_BF16, 0)
RF8_ENTRY(rotary_f32_rotate_half_to_fp8__avx512_nt, half, FROM_F32, 1)
RF8_ENTRY(rotary_f32_rotate_interleaved_to_fp8__avx512_nt, interleaved, FROM_F32, 1)
RF8_ENTRY(rotary_f16_rotate_half_to_fp8__avx512_nt, half, FROM_F16, 1)
RF8_ENTRY(rotary_f16_rotate_interleaved_to_fp8__avx512_nt, interleaved, FROM_F16, 1)
RF8_ENTRY(rotary_bf16_rotate_half_to_fp8__avx512_nt, half, FROM_BF16, 1)
RF8_ENTRY(rotary_bf16_rotate_interleaved_to_fp8__avx512_nt, interleaved, FROM_BF16, 1)
#endif
