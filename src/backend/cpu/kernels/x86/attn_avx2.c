/* x86/attn_avx2.c: the decode-attention kernels built for AVX2 + FMA + F16C (scores, values per cache dtype; exp). */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_attn_f32_scores__avx2 rotary_attn_f32_values__avx2 rotary_attn_f16_scores__avx2
 * rotary_attn_f16_values__avx2 rotary_attn_bf16_scores__avx2 rotary_attn_bf16_values__avx2
 * rotary_attn_fp8_scores__avx2 rotary_attn_fp8_values__avx2 rotary_attn_exp__avx2 */
#if defined(__x86_64__) || defined(__i386__)
#include "attn_avx2.h"

/* ---- scores: R query rows x J keys per block (R <= 4, J <= 3), 8-lane partial sums per (row, key) ----
 * A key's 8 elements are decoded once per step and used by the R rows; 12 accumulators (4 x 3) keep the two fma
 * units busy past the fma latency (8 would only match it). */

/* s[r * ss + j] for r < R, j < J: keys at k (byte stride kb), elements decoded as dt. Sum order: lane-wise over
 * steps of 8 (then the tail block of up to 16), then hsum8's tree; the same for every R, J and path (direct or
 * staged), so a logit does not depend on how rows and keys were blocked. */
INLINE void scores_block(int dt, int R, int J, const float *q, size_t hd, const unsigned char *k, ptrdiff_t kb,
                         __m256 f8, float scale, float *s, size_t ss) {
  const size_t es = dt_size[dt], d16 = hd & ~(size_t)15;
  __m256 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm256_setzero_ps();
  /* the next block's keys (up to 512 bytes of each), asked for while these are summed (a prefetch past the last
   * key is a hint only: it cannot fault; the address is formed as an integer, not by pointer arithmetic past the
   * cache) */
  for (int j = J; j < 2 * J; j++)
    for (size_t off = 0; off < hd * es && off < 512; off += 64)
      _mm_prefetch((const char *)(uintptr_t)((uintptr_t)k + (uintptr_t)(j * kb) + off), _MM_HINT_T0);
  /* 8 elements a step: each accumulator takes one fma per step, each q vector is loaded once for the J keys */
  for (size_t d = 0; d < d16; d += 8) {
    __m256 kv[3];
    for (int j = 0; j < J; j++) kv[j] = dec8(dt, k + j * kb + d * es, f8);
    for (int r = 0; r < R; r++) {
      const __m256 q0 = _mm256_loadu_ps(q + r * hd + d);
      for (int j = 0; j < J; j++) acc[r * J + j] = _mm256_fmadd_ps(q0, kv[j], acc[r * J + j]);
    }
  }
  if (d16 < hd) {
    const size_t t = hd - d16;
    __m256i m0, m1;
    tail_masks(t, &m0, &m1);
    float kt[3][16];
    for (int j = 0; j < J; j++) attn_dec_tail(dt, k + j * kb + d16 * es, t, scale, kt[j], 16);
    for (int r = 0; r < R; r++) {
      const __m256 q0 = _mm256_maskload_ps(q + r * hd + d16, m0), q1 = _mm256_maskload_ps(q + r * hd + d16 + 8, m1);
      for (int j = 0; j < J; j++) {
        acc[r * J + j] = _mm256_fmadd_ps(q0, _mm256_loadu_ps(kt[j]), acc[r * J + j]);
        acc[r * J + j] = _mm256_fmadd_ps(q1, _mm256_loadu_ps(kt[j] + 8), acc[r * J + j]);
      }
    }
  }
  float out[16];
  _mm256_storeu_ps(out, hsum8(acc));
  if (R * J > 8) _mm256_storeu_ps(out + 8, hsum8(acc + 8));
  for (int r = 0; r < R; r++)
    for (int j = 0; j < J; j++) s[r * ss + j] = out[r * J + j];
}

/* Every row block (4 rows, then the rest) against n keys, keys in threes (then a pair or one). */
INLINE void scores_rows(int dt, const float *q, size_t rows, size_t hd, const unsigned char *k, ptrdiff_t kb,
                        size_t n, __m256 f8, float scale, float *s, size_t ss, rotary_attn_prefetch *pf) {
  const size_t pk = pf ? pf->per_key : 0;
  for (size_t r0 = 0; r0 < rows; r0 += 4) {
    const size_t R = rows - r0 < 4 ? rows - r0 : 4;
    const float *qr = q + r0 * hd;
    float *sr = s + r0 * ss;
    size_t j = 0;
    for (; j + 3 <= n; j += 3) {
      const unsigned char *kj = k + (ptrdiff_t)j * kb;
      switch (R) {
        case 4: scores_block(dt, 4, 3, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
        case 3: scores_block(dt, 3, 3, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
        case 2: scores_block(dt, 2, 3, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
        default: scores_block(dt, 1, 3, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
      }
      if (pk) rotary_attn_prefetch_lines(pf, 3 * pk);
    }
    for (; j < n; j += 2) {
      const unsigned char *kj = k + (ptrdiff_t)j * kb;
      if (j + 2 <= n) switch (R) {
          case 4: scores_block(dt, 4, 2, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
          case 3: scores_block(dt, 3, 2, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
          case 2: scores_block(dt, 2, 2, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
          default: scores_block(dt, 1, 2, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
        }
      else switch (R) {
          case 4: scores_block(dt, 4, 1, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
          case 3: scores_block(dt, 3, 1, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
          case 2: scores_block(dt, 2, 1, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
          default: scores_block(dt, 1, 1, qr, hd, kj, kb, f8, scale, sr + j, ss); break;
        }
      if (pk) rotary_attn_prefetch_lines(pf, (j + 2 <= n ? 2 : 1) * pk);
    }
  }
}

/* ---- values: R rows x 16 outputs per block, keys inside, p broadcast ---- */

INLINE void values_block(int dt, int R, const float *p, size_t ps, size_t hd, size_t d, const unsigned char *v,
                         ptrdiff_t vb, size_t n, __m256 f8, float scale, float *o, rotary_attn_prefetch *pf,
                         size_t pv) {
  const size_t es = dt_size[dt];
  __m256 a0[4], a1[4];
  if (d + 16 <= hd) {
    for (int r = 0; r < R; r++) {
      a0[r] = _mm256_loadu_ps(o + r * hd + d);
      a1[r] = _mm256_loadu_ps(o + r * hd + d + 8);
    }
    for (size_t j = 0; j < n; j++) {
      __m256 lo, hi;
      /* the first block's pass over the keys asks for the rest of each row (up to 512 bytes), which the later
       * blocks read: the rows' lines then come in parallel instead of one strided miss per block and key */
      if (d == 0 && dt != DT_F32)
        for (size_t off = 64; off < hd * es && off < 512; off += 64)
          _mm_prefetch((const char *)(v + (ptrdiff_t)j * vb) + off, _MM_HINT_T0);
      dec16(dt, v + (ptrdiff_t)j * vb + d * es, f8, &lo, &hi);
      if (pv) rotary_attn_prefetch_lines(pf, pv);
      for (int r = 0; r < R; r++) {
        const __m256 pj = _mm256_broadcast_ss(p + r * ps + j);
        a0[r] = _mm256_fmadd_ps(pj, lo, a0[r]);
        a1[r] = _mm256_fmadd_ps(pj, hi, a1[r]);
      }
    }
    for (int r = 0; r < R; r++) {
      _mm256_storeu_ps(o + r * hd + d, a0[r]);
      _mm256_storeu_ps(o + r * hd + d + 8, a1[r]);
    }
  } else {
    const size_t t = hd - d;
    __m256i m0, m1;
    tail_masks(t, &m0, &m1);
    for (int r = 0; r < R; r++) {
      a0[r] = _mm256_maskload_ps(o + r * hd + d, m0);
      a1[r] = _mm256_maskload_ps(o + r * hd + d + 8, m1);
    }
    for (size_t j = 0; j < n; j++) {
      float vt[16];
      attn_dec_tail(dt, v + (ptrdiff_t)j * vb + d * es, t, scale, vt, 16);
      const __m256 lo = _mm256_loadu_ps(vt), hi = _mm256_loadu_ps(vt + 8);
      if (pv) rotary_attn_prefetch_lines(pf, pv);
      for (int r = 0; r < R; r++) {
        const __m256 pj = _mm256_broadcast_ss(p + r * ps + j);
        a0[r] = _mm256_fmadd_ps(pj, lo, a0[r]);
        a1[r] = _mm256_fmadd_ps(pj, hi, a1[r]);
      }
    }
    for (int r = 0; r < R; r++) {
      _mm256_maskstore_ps(o + r * hd + d, m0, a0[r]);
      _mm256_maskstore_ps(o + r * hd + d + 8, m1, a1[r]);
    }
  }
}

/* o[r][d] = fma(p[r][j], v_j[d], o[r][d]) for j = 0 .. n-1 in order: the scalar kernel's order, so the same bits.
 * pf's per_key lines per key are asked for over the row's passes (one per 16 outputs). */
INLINE void values_rows(int dt, const float *p, size_t ps, size_t rows, size_t hd, const unsigned char *v,
                        ptrdiff_t vb, size_t n, __m256 f8, float scale, float *o, rotary_attn_prefetch *pf) {
  const size_t passes = (hd + 15) / 16, pv = pf ? (pf->per_key + passes - 1) / passes : 0;
  for (size_t r0 = 0; r0 < rows; r0 += 4) {
    const size_t R = rows - r0 < 4 ? rows - r0 : 4;
    const float *pr = p + r0 * ps;
    float *orow = o + r0 * hd;
    for (size_t d = 0; d < hd; d += 16) switch (R) {
        case 4: values_block(dt, 4, pr, ps, hd, d, v, vb, n, f8, scale, orow, pf, pv); break;
        case 3: values_block(dt, 3, pr, ps, hd, d, v, vb, n, f8, scale, orow, pf, pv); break;
        case 2: values_block(dt, 2, pr, ps, hd, d, v, vb, n, f8, scale, orow, pf, pv); break;
        default: values_block(dt, 1, pr, ps, hd, d, v, vb, n, f8, scale, orow, pf, pv); break;
      }
  }
}

/* ---- staging and the kernels (simd/attn_any.h) ---- */

#define ATTN_TARGET ROTARY_TARGET
#define ATTN_VEC __m256
#define ATTN_FACTOR(scale) _mm256_set1_ps((scale) * 256.0f)
#define ATTN_STEP 16
INLINE void stage_step(int dt, const unsigned char *src, __m256 f8, float *dst) {
  __m256 lo, hi;
  dec16(dt, src, f8, &lo, &hi);
  _mm256_storeu_ps(dst, lo);
  _mm256_storeu_ps(dst + 8, hi);
}
#include "attn_any.h"

ATTN_KERNELS(f32, DT_F32, avx2)
ATTN_KERNELS(f16, DT_F16, avx2)
ATTN_KERNELS(bf16, DT_BF16, avx2)
ATTN_KERNELS(fp8, DT_FP8, avx2)

/* ---- exp ---- */

/* simd/attn_exp.h's exp with 8 lanes (max and min with x second keep a NaN): exp_lanes_avx2 */
#define EXP_NAME(x) x##_avx2
#define EV __m256
#define EI __m256i
#define ev_set(c) _mm256_set1_ps(c)
#define ev_mul(a, b) _mm256_mul_ps((a), (b))
#define ev_add(a, b) _mm256_add_ps((a), (b))
#define ev_fma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define ev_fnma(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define ev_clamp(x) _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-110.0f), (x)))
#define ev_round(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define ev_to_int(x) _mm256_cvtps_epi32(x)
#define ei_set(c) _mm256_set1_epi32(c)
#define ei_add(a, b) _mm256_add_epi32((a), (b))
#define ei_sub(a, b) _mm256_sub_epi32((a), (b))
#define ei_sra1(n) _mm256_srai_epi32((n), 1)
#define ei_shl23(n) _mm256_castsi256_ps(_mm256_slli_epi32((n), 23))
#include "attn_exp.h"

/* Sums: two 8-lane accumulators over blocks of 16 (then 8, then a masked tail), combined at the end by a fixed tree. */
float rotary_attn_exp__avx2(float *s, size_t n, float max) ROTARY_TARGET;
float rotary_attn_exp__avx2(float *s, size_t n, float max) {
  const __m256 m = _mm256_set1_ps(max);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m256 e0 = exp_lanes_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
    const __m256 e1 = exp_lanes_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j + 8), m));
    _mm256_storeu_ps(s + j, e0);
    _mm256_storeu_ps(s + j + 8, e1);
    a0 = _mm256_add_ps(a0, e0);
    a1 = _mm256_add_ps(a1, e1);
  }
  if (j + 8 <= n) {
    const __m256 e0 = exp_lanes_avx2(_mm256_sub_ps(_mm256_loadu_ps(s + j), m));
    _mm256_storeu_ps(s + j, e0);
    a0 = _mm256_add_ps(a0, e0);
    j += 8;
  }
  if (j < n) {
    __m256i m0, m1;
    tail_masks(n - j, &m0, &m1);
    const __m256 e0 =
        _mm256_and_ps(exp_lanes_avx2(_mm256_sub_ps(_mm256_maskload_ps(s + j, m0), m)), _mm256_castsi256_ps(m0));
    _mm256_maskstore_ps(s + j, m0, e0);
    a1 = _mm256_add_ps(a1, e0);
  }
  return lane_sum8(_mm256_add_ps(a0, a1));
}
#endif
