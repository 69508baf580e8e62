/* x86/attn_rot_avx512.c: the decode-attention scores kernels that rotate each key as it is read (rope mode QK),
 * AVX-512. */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_attn_f32_scores_half__avx512 rotary_attn_f16_scores_half__avx512 rotary_attn_bf16_scores_half__avx512
 * rotary_attn_fp8_scores_half__avx512 rotary_attn_f32_scores_interleaved__avx512
 * rotary_attn_f16_scores_interleaved__avx512 rotary_attn_bf16_scores_interleaved__avx512
 * rotary_attn_fp8_scores_interleaved__avx512 */
#if defined(__x86_64__) || defined(__i386__)
#include "attn_avx512.h"

/* ---- scores with keys rotated on the way: R rows (4 or 1) x J = 2 keys per block (attn_rot_rows.h) ----
 * attn_rot_avx2.c's kernels with steps of 16 elements, and one step of 8 (the upper lanes zero: loads masked,
 * nothing read past the 8) where a range is an odd multiple of 8. Sum order, the same on every path, lane-wise
 * then hsum8z's tree:
 *   half pairs: for each step i of 16 (or 8) pairs the term of y_i then that of y_{half+i}, then the unrotated
 *   elements in steps of 16 (or 8);
 *   interleaved pairs: every element in steps of 16 (or 8).
 * Needs rotary_dim and head_dim multiples of 8 and, for half pairs, rotary_dim / 2 too (the kernels send other
 * shapes to the scalar kernel), as the AVX2 kernels. */
enum { PR_HALF = 0, PR_INTER = 1 };

/* One key's 16 (or 8) rotated elements at d (interleaved: d < rd): y = fma(x_even, B, x_odd * D). */
INLINE __m512 rot_inter16(int dt, const unsigned char *kj, size_t d, const float *B, const float *D, __m512 f8,
                          int full) {
  const __mmask16 m = step_mask(full);
  const __m512 x = decn(dt, kj + d * dt_size[dt], f8, full);
  return _mm512_fmadd_ps(_mm512_moveldup_ps(x), _mm512_maskz_loadu_ps(m, B + d),
                         _mm512_mul_ps(_mm512_movehdup_ps(x), _mm512_maskz_loadu_ps(m, D + d)));
}

INLINE void rot_block(int pr, int dt, int rot, int R, int J, const float *q, size_t hd, size_t rd,
                      const unsigned char *k, ptrdiff_t kb, ptrdiff_t k1, const float *cs, size_t c1, size_t so,
                      __m512 f8, float *s, size_t ss, int nst) {
  const size_t es = dt_size[dt], half = rd / 2;
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
  if (rot) /* the next block's keys, as scores_block asks for them */
    for (int j = J; j < 2 * J; j++)
      for (size_t off = 0; off < hd * es && off < 512; off += 64)
        _mm_prefetch((const char *)(uintptr_t)((uintptr_t)k + (uintptr_t)(j * kb) + off), _MM_HINT_T0);
  size_t d0 = 0; /* the first element of the plain steps */
  if (pr == PR_HALF) {
    for (size_t i = 0; i < half; i += 16) {
      const int full = i + 16 <= half;
      const __mmask16 m = step_mask(full);
      __m512 ya[2], yb[2];
      for (int j = 0; j < J; j++) {
        const unsigned char *kj = k + j * k1;
        const __m512 x0 = decn(dt, kj + i * es, f8, full), x1 = decn(dt, kj + (half + i) * es, f8, full);
        if (rot) { /* y_i = fmaf(x0, c, -(x1 s)), y_{half+i} = fmaf(x0, s, x1 c): the rotation kernels' formula */
          const __m512 c = _mm512_maskz_loadu_ps(m, cs + j * c1 + i);
          const __m512 sn = _mm512_maskz_loadu_ps(m, cs + j * c1 + so + i);
          ya[j] = _mm512_fmsub_ps(x0, c, _mm512_mul_ps(x1, sn));
          yb[j] = _mm512_fmadd_ps(x0, sn, _mm512_mul_ps(x1, c));
        } else {
          ya[j] = x0;
          yb[j] = x1;
        }
      }
      for (int r = 0; r < R; r++) {
        const __m512 qa = _mm512_maskz_loadu_ps(m, q + r * hd + i);
        const __m512 qb = _mm512_maskz_loadu_ps(m, q + r * hd + half + i);
        for (int j = 0; j < J; j++) {
          acc[r * J + j] = _mm512_fmadd_ps(qa, ya[j], acc[r * J + j]);
          acc[r * J + j] = _mm512_fmadd_ps(qb, yb[j], acc[r * J + j]);
        }
      }
    }
    d0 = rd;
  }
  for (size_t d = d0; d < hd;) {
    /* interleaved: the rotated range, then the rest, each in steps of 16 and at most one of 8 */
    const size_t end = pr == PR_INTER && d < rd ? rd : hd;
    const int full = d + 16 <= end;
    __m512 kv[2];
    for (int j = 0; j < J; j++)
      kv[j] = pr == PR_INTER && rot && d < rd ? rot_inter16(dt, k + j * k1, d, cs + j * c1, cs + j * c1 + so, f8, full)
                                              : decn(dt, k + j * k1 + d * es, f8, full);
    for (int r = 0; r < R; r++) {
      const __m512 q0 = _mm512_maskz_loadu_ps(step_mask(full), q + r * hd + d);
      for (int j = 0; j < J; j++) acc[r * J + j] = _mm512_fmadd_ps(q0, kv[j], acc[r * J + j]);
    }
    d += full ? 16 : 8;
  }
  float out[16];
  _mm256_storeu_ps(out, hsum8z(acc));
  if (R * J > 8) _mm256_storeu_ps(out + 8, hsum8z(acc + 8));
  for (int r = 0; r < R; r++)
    for (int j = 0; j < nst; j++) s[r * ss + j] = out[r * J + j];
}

/* One key row decoded and rotated into the fp32 row y (attn_rot_rows.h's rot_key_row): rot_block's numbers. */
INLINE void rot_key_row(int pr, int dt, const unsigned char *kj, const float *c, size_t so, size_t rd, size_t hd,
                        __m512 f8, float *y) {
  const size_t half = rd / 2, es = dt_size[dt];
  size_t d = 0;
  if (pr == PR_HALF) {
    for (size_t i = 0; i < half; i += 16) {
      const int full = i + 16 <= half;
      const __mmask16 m = step_mask(full);
      const __m512 x0 = decn(dt, kj + i * es, f8, full), x1 = decn(dt, kj + (half + i) * es, f8, full);
      const __m512 cv = _mm512_maskz_loadu_ps(m, c + i), sv = _mm512_maskz_loadu_ps(m, c + so + i);
      _mm512_mask_storeu_ps(y + i, m, _mm512_fmsub_ps(x0, cv, _mm512_mul_ps(x1, sv)));
      _mm512_mask_storeu_ps(y + half + i, m, _mm512_fmadd_ps(x0, sv, _mm512_mul_ps(x1, cv)));
    }
    d = rd;
  } else {
    while (d < rd) {
      const int full = d + 16 <= rd;
      _mm512_mask_storeu_ps(y + d, step_mask(full), rot_inter16(dt, kj, d, c, c + so, f8, full));
      d += full ? 16 : 8;
    }
  }
  while (d < hd) {
    const int full = d + 16 <= hd;
    _mm512_mask_storeu_ps(y + d, step_mask(full), decn(dt, kj + d * es, f8, full));
    d += full ? 16 : 8;
  }
}

#define ATTN_VEC __m512
#define ATTN_FACTOR(scale) _mm512_set1_ps((scale) * 256.0f)
#include "attn_rot_rows.h"
#undef ATTN_VEC
#undef ATTN_FACTOR

/* ---- scores with keys rotated on the way ---- */

#define ATTN_TARGET ROTARY_TARGET
ATTN_ROT_KERNELS(avx512)
#endif
