/* x86/attn_avx512.c: the decode-attention kernels built for AVX-512 F/BW/VL (scores, values per cache dtype; exp). */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_attn_f32_scores__avx512 rotary_attn_f32_values__avx512 rotary_attn_f16_scores__avx512
 * rotary_attn_f16_values__avx512 rotary_attn_bf16_scores__avx512 rotary_attn_bf16_values__avx512
 * rotary_attn_fp8_scores__avx512 rotary_attn_fp8_values__avx512 rotary_attn_exp__avx512 */
#if defined(__x86_64__) || defined(__i386__)
#include "attn_avx512.h"

/* ---- scores: R query rows x J keys per block (R <= 4, J <= 4), 16-lane partial sums per (row, key) ----
 * The AVX2 kernels' blocking with vectors twice as wide, and four keys where AVX2 takes three (32 registers: the
 * 16 sums of 4 x 4 fill both of hsum8z's trees, where 4 x 3 left half of the second idle). Sum order: lane-wise
 * over steps of 16 (then the tail of up to 15 elements, decoded exactly, in one masked step), then hsum8z's tree;
 * the same for every R, J and path (direct or staged), so a logit does not depend on how rows and keys were
 * blocked. It is not the AVX2 order: results differ from the AVX2 kernels' in the last bits, within the same
 * bound. */
INLINE void scores_block(int dt, int R, int J, const float *q, size_t hd, const unsigned char *k, ptrdiff_t kb,
                         __m512 f8, float scale, float *s, size_t ss) {
  const size_t es = dt_size[dt], d16 = hd & ~(size_t)15;
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
  /* the next block's keys (up to 512 bytes of each), as the AVX2 kernel asks for them */
  for (int j = J; j < 2 * J; j++)
    for (size_t off = 0; off < hd * es && off < 512; off += 64)
      _mm_prefetch((const char *)(uintptr_t)((uintptr_t)k + (uintptr_t)(j * kb) + off), _MM_HINT_T0);
  for (size_t d = 0; d < d16; d += 16) {
    __m512 kv[4];
    for (int j = 0; j < J; j++) kv[j] = dec16z(dt, k + j * kb + d * es, f8);
    for (int r = 0; r < R; r++) {
      const __m512 q0 = _mm512_loadu_ps(q + r * hd + d);
      for (int j = 0; j < J; j++) acc[r * J + j] = _mm512_fmadd_ps(q0, kv[j], acc[r * J + j]);
    }
  }
  if (d16 < hd) {
    const size_t t = hd - d16;
    const __mmask16 m = (__mmask16)((1u << t) - 1u);
    float kt[4][16];
    for (int j = 0; j < J; j++) attn_dec_tail(dt, k + j * kb + d16 * es, t, scale, kt[j], 16);
    for (int r = 0; r < R; r++) {
      const __m512 q0 = _mm512_maskz_loadu_ps(m, q + r * hd + d16);
      for (int j = 0; j < J; j++) acc[r * J + j] = _mm512_fmadd_ps(q0, _mm512_loadu_ps(kt[j]), acc[r * J + j]);
    }
  }
  float out[16];
  _mm256_storeu_ps(out, hsum8z(acc));
  if (R * J > 8) _mm256_storeu_ps(out + 8, hsum8z(acc + 8));
  for (int r = 0; r < R; r++)
    for (int j = 0; j < J; j++) s[r * ss + j] = out[r * J + j];
}

/* Rows in blocks of 4, then one at a time, against n keys in fours, then one at a time: only R = 4 or 1 and J = 4
 * or 1 are compiled (each (R, J, dtype) is inlined apart; the AVX2 file's 12 per dtype made its sanitizer builds
 * the longest part of those CI stages). Decode's q rows come in GQA groups of 4 or more. */
INLINE void scores_rows(int dt, const float *q, size_t rows, size_t hd, const unsigned char *k, ptrdiff_t kb,
                        size_t n, __m512 f8, float scale, float *s, size_t ss, rotary_attn_prefetch *pf) {
  const size_t pk = pf ? pf->per_key : 0;
  for (size_t r0 = 0; r0 < rows;) {
    const int four = r0 + 4 <= rows;
    const float *qr = q + r0 * hd;
    float *sr = s + r0 * ss;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
      if (four) scores_block(dt, 4, 4, qr, hd, k + (ptrdiff_t)j * kb, kb, f8, scale, sr + j, ss);
      else scores_block(dt, 1, 4, qr, hd, k + (ptrdiff_t)j * kb, kb, f8, scale, sr + j, ss);
      if (pk) rotary_attn_prefetch_lines(pf, 4 * pk);
    }
    for (; j < n; j++) {
      if (four) scores_block(dt, 4, 1, qr, hd, k + (ptrdiff_t)j * kb, kb, f8, scale, sr + j, ss);
      else scores_block(dt, 1, 1, qr, hd, k + (ptrdiff_t)j * kb, kb, f8, scale, sr + j, ss);
      if (pk) rotary_attn_prefetch_lines(pf, pk);
    }
    r0 += four ? 4 : 1;
  }
}

/* ---- values: R rows x 32 outputs per block, keys inside, p broadcast ---- */

INLINE void values_block(int dt, int R, const float *p, size_t ps, size_t hd, size_t d, const unsigned char *v,
                         ptrdiff_t vb, size_t n, __m512 f8, float scale, float *o, rotary_attn_prefetch *pf,
                         size_t pv) {
  const size_t es = dt_size[dt];
  __m512 a0[4], a1[4];
  if (d + 32 <= hd) {
    for (int r = 0; r < R; r++) {
      a0[r] = _mm512_loadu_ps(o + r * hd + d);
      a1[r] = _mm512_loadu_ps(o + r * hd + d + 16);
    }
    for (size_t j = 0; j < n; j++) {
      const unsigned char *vj = v + (ptrdiff_t)j * vb;
      /* the first block's pass over the keys asks for the rest of each row (up to 512 bytes), as in AVX2 */
      if (d == 0 && dt != DT_F32)
        for (size_t off = 64; off < hd * es && off < 512; off += 64) _mm_prefetch((const char *)vj + off, _MM_HINT_T0);
      const __m512 lo = dec16z(dt, vj + d * es, f8), hi = dec16z(dt, vj + (d + 16) * es, f8);
      if (pv) rotary_attn_prefetch_lines(pf, pv);
      for (int r = 0; r < R; r++) {
        const __m512 pj = _mm512_set1_ps(p[r * ps + j]);
        a0[r] = _mm512_fmadd_ps(pj, lo, a0[r]);
        a1[r] = _mm512_fmadd_ps(pj, hi, a1[r]);
      }
    }
    for (int r = 0; r < R; r++) {
      _mm512_storeu_ps(o + r * hd + d, a0[r]);
      _mm512_storeu_ps(o + r * hd + d + 16, a1[r]);
    }
  } else {
    const size_t t = hd - d; /* 1 .. 31 */
    const __mmask16 m0 = (__mmask16)(t >= 16 ? 0xffffu : (1u << t) - 1u);
    const __mmask16 m1 = (__mmask16)(t > 16 ? (1u << (t - 16)) - 1u : 0u);
    for (int r = 0; r < R; r++) {
      a0[r] = _mm512_maskz_loadu_ps(m0, o + r * hd + d);
      a1[r] = _mm512_maskz_loadu_ps(m1, o + r * hd + d + 16);
    }
    for (size_t j = 0; j < n; j++) {
      float vt[32];
      attn_dec_tail(dt, v + (ptrdiff_t)j * vb + d * es, t, scale, vt, 32);
      const __m512 lo = _mm512_loadu_ps(vt), hi = _mm512_loadu_ps(vt + 16);
      if (pv) rotary_attn_prefetch_lines(pf, pv);
      for (int r = 0; r < R; r++) {
        const __m512 pj = _mm512_set1_ps(p[r * ps + j]);
        a0[r] = _mm512_fmadd_ps(pj, lo, a0[r]);
        a1[r] = _mm512_fmadd_ps(pj, hi, a1[r]);
      }
    }
    for (int r = 0; r < R; r++) {
      _mm512_mask_storeu_ps(o + r * hd + d, m0, a0[r]);
      _mm512_mask_storeu_ps(o + r * hd + d + 16, m1, a1[r]);
    }
  }
}

/* o[r][d] = fma(p[r][j], v_j[d], o[r][d]) for j = 0 .. n-1 in order: the scalar kernel's order, so the same bits
 * (as the AVX2 kernels). pf's per_key lines per key are asked for over the row's passes (one per 32 outputs). */
INLINE void values_rows(int dt, const float *p, size_t ps, size_t rows, size_t hd, const unsigned char *v,
                        ptrdiff_t vb, size_t n, __m512 f8, float scale, float *o, rotary_attn_prefetch *pf) {
  const size_t passes = (hd + 31) / 32, pv = pf ? (pf->per_key + passes - 1) / passes : 0;
  size_t r0 = 0; /* rows by 4, then one at a time (R = 4 or 1 compiled, as for scores) */
  for (; r0 + 4 <= rows; r0 += 4)
    for (size_t d = 0; d < hd; d += 32)
      values_block(dt, 4, p + r0 * ps, ps, hd, d, v, vb, n, f8, scale, o + r0 * hd, pf, pv);
  for (; r0 < rows; r0++)
    for (size_t d = 0; d < hd; d += 32)
      values_block(dt, 1, p + r0 * ps, ps, hd, d, v, vb, n, f8, scale, o + r0 * hd, pf, pv);
}

/* ---- staging and the kernels (simd/attn_any.h) ---- */

#define ATTN_TARGET ROTARY_TARGET
#define ATTN_VEC __m512
#define ATTN_FACTOR(scale) _mm512_set1_ps((scale) * 256.0f)
#define ATTN_STEP 16
INLINE void stage_step(int dt, const unsigned char *src, __m512 f8, float *dst) {
  _mm512_storeu_ps(dst, dec16z(dt, src, f8));
}
#include "attn_any.h"

ATTN_KERNELS(f32, DT_F32, avx512)
ATTN_KERNELS(f16, DT_F16, avx512)
ATTN_KERNELS(bf16, DT_BF16, avx512)
ATTN_KERNELS(fp8, DT_FP8, avx512)

/* ---- exp ---- */

/* simd/attn_exp.h's exp with 16 lanes, the AVX2 kernel's operations lane for lane: exp_lanes_avx512 */
#define EXP_NAME(x) x##_avx512
#define EV __m512
#define EI __m512i
#define ev_set(c) _mm512_set1_ps(c)
#define ev_mul(a, b) _mm512_mul_ps((a), (b))
#define ev_add(a, b) _mm512_add_ps((a), (b))
#define ev_fma(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define ev_fnma(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define ev_clamp(x) _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-110.0f), (x)))
#define ev_round(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define ev_to_int(x) _mm512_cvtps_epi32(x)
#define ei_set(c) _mm512_set1_epi32(c)
#define ei_add(a, b) _mm512_add_epi32((a), (b))
#define ei_sub(a, b) _mm512_sub_epi32((a), (b))
#define ei_sra1(n) _mm512_srai_epi32((n), 1)
#define ei_shl23(n) _mm512_castsi512_ps(_mm512_slli_epi32((n), 23))
#include "attn_exp.h"

/* Sums: two 16-lane accumulators over blocks of 32 (then 16, then a masked tail), combined at the end by a fixed
 * tree (the halves, then the AVX2 kernel's tree of 8). */
float rotary_attn_exp__avx512(float *s, size_t n, float max) ROTARY_TARGET;
float rotary_attn_exp__avx512(float *s, size_t n, float max) {
  const __m512 m = _mm512_set1_ps(max);
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  size_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m512 e0 = exp_lanes_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + j), m));
    const __m512 e1 = exp_lanes_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + j + 16), m));
    _mm512_storeu_ps(s + j, e0);
    _mm512_storeu_ps(s + j + 16, e1);
    a0 = _mm512_add_ps(a0, e0);
    a1 = _mm512_add_ps(a1, e1);
  }
  if (j + 16 <= n) {
    const __m512 e0 = exp_lanes_avx512(_mm512_sub_ps(_mm512_loadu_ps(s + j), m));
    _mm512_storeu_ps(s + j, e0);
    a0 = _mm512_add_ps(a0, e0);
    j += 16;
  }
  if (j < n) {
    const __mmask16 k = (__mmask16)((1u << (n - j)) - 1u);
    const __m512 e0 = exp_lanes_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), m));
    _mm512_mask_storeu_ps(s + j, k, e0);
    a1 = _mm512_add_ps(a1, _mm512_maskz_mov_ps(k, e0));
  }
  const __m512 a = _mm512_add_ps(a0, a1);
  return lane_sum8(_mm256_add_ps(_mm512_castps512_ps256(a), upper8(a)));
}
#endif
