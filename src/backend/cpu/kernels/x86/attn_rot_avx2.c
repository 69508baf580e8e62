/* x86/attn_rot_avx2.c: the decode-attention scores kernels that rotate each key as it is read (rope mode QK), AVX2. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_attn_f32_scores_half__avx2 rotary_attn_f16_scores_half__avx2 rotary_attn_bf16_scores_half__avx2
 * rotary_attn_fp8_scores_half__avx2 rotary_attn_f32_scores_interleaved__avx2 rotary_attn_f16_scores_interleaved__avx2
 * rotary_attn_bf16_scores_interleaved__avx2 rotary_attn_fp8_scores_interleaved__avx2 */
#if defined(__x86_64__) || defined(__i386__)
#include "attn_avx2.h"

/* ---- scores with keys rotated on the way: R rows (4 or 1) x J = 2 keys per block (attn_rot_rows.h) ----
 * Sum order, the same on every path (so a logit does not depend on the blocking), lane-wise then hsum8's tree:
 *   half pairs: for each step i of 8 pairs the term of y_i then that of y_{half+i}, then the unrotated elements in
 *   steps of 8;
 *   interleaved pairs: every element in steps of 8 (the plain scores order).
 * Needs rotary_dim and head_dim multiples of 8 and, for half pairs, rotary_dim / 2 too (the kernels send other
 * shapes to the scalar kernel). */
enum { PR_HALF = 0, PR_INTER = 1 };

/* One key's 8 rotated elements at d (interleaved: d < rd, a multiple of 8): y = fma(x_even, B, x_odd * D). */
INLINE __m256 rot_inter8(int dt, const unsigned char *kj, size_t d, const float *B, const float *D, __m256 f8) {
  const __m256 x = dec8(dt, kj + d * dt_size[dt], f8);
  return _mm256_fmadd_ps(_mm256_moveldup_ps(x), _mm256_loadu_ps(B + d),
                         _mm256_mul_ps(_mm256_movehdup_ps(x), _mm256_loadu_ps(D + d)));
}

INLINE void rot_block(int pr, int dt, int rot, int R, int J, const float *q, size_t hd, size_t rd,
                      const unsigned char *k, ptrdiff_t kb, ptrdiff_t k1, const float *cs, size_t c1, size_t so,
                      __m256 f8, float *s, size_t ss, int nst) {
  const size_t es = dt_size[dt], half = rd / 2;
  __m256 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm256_setzero_ps();
  if (rot) /* the next block's keys, as scores_block asks for them */
    for (int j = J; j < 2 * J; j++)
      for (size_t off = 0; off < hd * es && off < 512; off += 64)
        _mm_prefetch((const char *)(uintptr_t)((uintptr_t)k + (uintptr_t)(j * kb) + off), _MM_HINT_T0);
  size_t d0 = 0; /* the first element of the plain steps */
  if (pr == PR_HALF) {
    for (size_t i = 0; i < half; i += 8) {
      __m256 ya[3], yb[3];
      for (int j = 0; j < J; j++) {
        const unsigned char *kj = k + j * k1;
        const __m256 x0 = dec8(dt, kj + i * es, f8), x1 = dec8(dt, kj + (half + i) * es, f8);
        if (rot) { /* y_i = fmaf(x0, c, -(x1 s)), y_{half+i} = fmaf(x0, s, x1 c): the rotation kernels' formula */
          const __m256 c = _mm256_loadu_ps(cs + j * c1 + i), sn = _mm256_loadu_ps(cs + j * c1 + so + i);
          ya[j] = _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, sn));
          yb[j] = _mm256_fmadd_ps(x0, sn, _mm256_mul_ps(x1, c));
        } else {
          ya[j] = x0;
          yb[j] = x1;
        }
      }
      for (int r = 0; r < R; r++) {
        const __m256 qa = _mm256_loadu_ps(q + r * hd + i), qb = _mm256_loadu_ps(q + r * hd + half + i);
        for (int j = 0; j < J; j++) {
          acc[r * J + j] = _mm256_fmadd_ps(qa, ya[j], acc[r * J + j]);
          acc[r * J + j] = _mm256_fmadd_ps(qb, yb[j], acc[r * J + j]);
        }
      }
    }
    d0 = rd;
  }
  for (size_t d = d0; d < hd; d += 8) {
    __m256 kv[3];
    for (int j = 0; j < J; j++)
      kv[j] = pr == PR_INTER && rot && d < rd
                  ? rot_inter8(dt, k + j * k1, d, cs + j * c1, cs + j * c1 + so, f8)
                  : dec8(dt, k + j * k1 + d * es, f8);
    for (int r = 0; r < R; r++) {
      const __m256 q0 = _mm256_loadu_ps(q + r * hd + d);
      for (int j = 0; j < J; j++) acc[r * J + j] = _mm256_fmadd_ps(q0, kv[j], acc[r * J + j]);
    }
  }
  float out[16];
  _mm256_storeu_ps(out, hsum8(acc));
  if (R * J > 8) _mm256_storeu_ps(out + 8, hsum8(acc + 8));
  for (int r = 0; r < R; r++)
    for (int j = 0; j < nst; j++) s[r * ss + j] = out[r * J + j];
}

/* One key row decoded and rotated into the fp32 row y (attn_rot_rows.h's rot_key_row): rot_block's numbers. */
INLINE void rot_key_row(int pr, int dt, const unsigned char *kj, const float *c, size_t so, size_t rd, size_t hd,
                        __m256 f8, float *y) {
  const size_t half = rd / 2, es = dt_size[dt];
  size_t d = 0;
  if (pr == PR_HALF) {
    for (size_t i = 0; i < half; i += 8) {
      const __m256 x0 = dec8(dt, kj + i * es, f8), x1 = dec8(dt, kj + (half + i) * es, f8);
      const __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(c + so + i);
      _mm256_storeu_ps(y + i, _mm256_fmsub_ps(x0, cv, _mm256_mul_ps(x1, sv)));
      _mm256_storeu_ps(y + half + i, _mm256_fmadd_ps(x0, sv, _mm256_mul_ps(x1, cv)));
    }
    d = rd;
  } else {
    for (; d < rd; d += 8) _mm256_storeu_ps(y + d, rot_inter8(dt, kj, d, c, c + so, f8));
  }
  for (; d < hd; d += 8) _mm256_storeu_ps(y + d, dec8(dt, kj + d * es, f8));
}

#define ATTN_VEC __m256
#define ATTN_FACTOR(scale) _mm256_set1_ps((scale) * 256.0f)
#include "attn_rot_rows.h"
#undef ATTN_VEC
#undef ATTN_FACTOR

/* ---- scores with keys rotated on the way ---- */

#define ATTN_TARGET ROTARY_TARGET
ATTN_ROT_KERNELS(avx2)
#endif
