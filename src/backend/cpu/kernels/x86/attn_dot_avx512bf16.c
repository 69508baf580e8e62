/* x86/attn_dot_avx512bf16.c: decode-attention kernels for precision BF16 over bf16 caches, on VDPBF16PS. */
/* Defines: rotary_attn_bf16_scores_dot__avx512bf16 rotary_attn_bf16_values_dot__avx512bf16 */
#if defined(__x86_64__) || defined(__i386__)
#include <stdint.h>
#include <string.h>

#include "attn_avx512.h"

#undef ROTARY_TARGET
#undef INLINE
#define ROTARY_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline)) ROTARY_TARGET

/* Dimensions of q (scores) and keys (values) converted to bf16 words per pass, on the stack. */
#define DOT_DIMS 512
#define DOT_KEYS 1024

/* The bf16 words of n floats that hold bf16 values (attn_kernels.h: their low halves are zero, so taking the high
 * halves is exact), then zero words up to a multiple of 32. */
INLINE void to_words(const float *x, size_t n, uint16_t *w) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i b = _mm512_srli_epi32(_mm512_castps_si512(_mm512_loadu_ps(x + i)), 16);
    _mm256_storeu_si256((__m256i *)(void *)(w + i), _mm512_cvtepi32_epi16(b));
  }
  for (; i < n; i++) {
    uint32_t b;
    memcpy(&b, x + i, sizeof b);
    w[i] = (uint16_t)(b >> 16);
  }
  for (; i % 32; i++) w[i] = 0;
}

/* 32 bf16 elements at p, or the first t (< 32) with zeros above. */
INLINE __m512i load32(const unsigned char *p, size_t t) {
  if (t >= 32) return _mm512_loadu_si512((const void *)p);
  return _mm512_maskz_loadu_epi16((__mmask32)((1u << t) - 1u), (const void *)p);
}

/* ---- scores: R rows (their words qw, DOT_DIMS apart) x J keys over dims [0, dn) of a pass ---- */

INLINE void dot_step(int R, int J, const uint16_t *qw, size_t d, const unsigned char *k, ptrdiff_t kb, size_t t,
                     __m512 *acc) {
  __m512i kv[4];
  for (int j = 0; j < J; j++) kv[j] = load32(k + j * kb + d * 2, t);
  for (int r = 0; r < R; r++) {
    const __m512bh q0 = (__m512bh)_mm512_load_si512((const void *)(qw + r * DOT_DIMS + d));
    for (int j = 0; j < J; j++) acc[r * J + j] = _mm512_dpbf16_ps(acc[r * J + j], q0, (__m512bh)kv[j]);
  }
}

INLINE void dot_block(int R, int J, const uint16_t *qw, size_t dn, const unsigned char *k, ptrdiff_t kb,
                      float *out) {
  __m512 acc[16];
  for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
  for (int j = J; j < 2 * J; j++) /* the next keys (up to 512 bytes of each), as the f32 kernels ask for them */
    for (size_t off = 0; off < dn * 2 && off < 512; off += 64)
      _mm_prefetch((const char *)(uintptr_t)((uintptr_t)k + (uintptr_t)(j * kb) + off), _MM_HINT_T0);
  size_t d = 0;
  for (; d + 32 <= dn; d += 32) dot_step(R, J, qw, d, k, kb, 32, acc);
  if (d < dn) dot_step(R, J, qw, d, k, kb, dn - d, acc);
  _mm256_storeu_ps(out, hsum8z(acc));
  if (R * J > 8) _mm256_storeu_ps(out + 8, hsum8z(acc + 8));
}

/* Sums of one pass into s (the first pass) or added to it: keys in fours, then one at a time. */
INLINE void dot_rows(int R, const uint16_t *qw, size_t dn, const unsigned char *k, ptrdiff_t kb, size_t n,
                     float *s, size_t ss, int first, rotary_attn_prefetch *pf) {
  const size_t pk = pf && first ? pf->per_key : 0;
  float out[16];
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    dot_block(R, 4, qw, dn, k + (ptrdiff_t)j * kb, kb, out);
    for (int r = 0; r < R; r++)
      for (int i = 0; i < 4; i++) s[r * ss + j + i] = first ? out[r * 4 + i] : s[r * ss + j + i] + out[r * 4 + i];
    if (pk) rotary_attn_prefetch_lines(pf, 4 * pk);
  }
  for (; j < n; j++) {
    dot_block(R, 1, qw, dn, k + (ptrdiff_t)j * kb, kb, out);
    for (int r = 0; r < R; r++) s[r * ss + j] = first ? out[r] : s[r * ss + j] + out[r];
    if (pk) rotary_attn_prefetch_lines(pf, pk);
  }
}

void rotary_attn_bf16_scores_dot__avx512bf16(const float *q, size_t rows, size_t head_dim, const void *k,
                                             ptrdiff_t k_row_stride, size_t n, float k_scale, float *s,
                                             size_t s_stride, rotary_attn_prefetch *pf) ROTARY_TARGET;
void rotary_attn_bf16_scores_dot__avx512bf16(const float *q, size_t rows, size_t head_dim, const void *k,
                                             ptrdiff_t k_row_stride, size_t n, float k_scale, float *s,
                                             size_t s_stride, rotary_attn_prefetch *pf) {
  (void)k_scale;
  uint16_t qw[4 * DOT_DIMS] __attribute__((aligned(64)));
  const ptrdiff_t kb = k_row_stride * 2;
  for (size_t r0 = 0; r0 < rows;) {
    const int R = r0 + 4 <= rows ? 4 : 1;
    for (size_t c = 0; c < head_dim; c += DOT_DIMS) {
      const size_t dn = head_dim - c < DOT_DIMS ? head_dim - c : DOT_DIMS;
      for (int r = 0; r < R; r++) to_words(q + (r0 + (size_t)r) * head_dim + c, dn, qw + r * DOT_DIMS);
      const unsigned char *kc = (const unsigned char *)k + (ptrdiff_t)c * 2;
      if (R == 4) dot_rows(4, qw, dn, kc, kb, n, s + r0 * s_stride, s_stride, c == 0, pf);
      else dot_rows(1, qw, dn, kc, kb, n, s + r0 * s_stride, s_stride, c == 0, pf);
    }
    r0 += (size_t)R;
  }
}

/* ---- values: R rows x 32 outputs per block, keys in pairs (VDPBF16PS sums a pair of products per lane) ----
 * The pair's words are interleaved within each 128-bit lane (VPUNPCKLWD / VPUNPCKHWD of the two keys' rows), so
 * lane 4k + i of `lo` holds output d + 8k + i and of `hi` output d + 8k + 4 + i (k, i < 4); unzip puts them back. */

INLINE void values_pass(int R, const uint16_t *pw, size_t n, size_t t, const unsigned char *v, ptrdiff_t vb,
                        float *o, size_t hd, int first_pass, rotary_attn_prefetch *pf, size_t pv) {
  __m512 lo[4], hi[4];
  for (int r = 0; r < R; r++) lo[r] = hi[r] = _mm512_setzero_ps();
  for (size_t j = 0; j < n; j += 2) {
    const unsigned char *a = v + (ptrdiff_t)j * vb, *b = a + vb;
    if (first_pass)
      for (size_t off = 64; off < hd * 2 && off < 512; off += 64) {
        _mm_prefetch((const char *)a + off, _MM_HINT_T0);
        if (j + 1 < n) _mm_prefetch((const char *)b + off, _MM_HINT_T0);
      }
    const __m512i x = load32(a, t), y = j + 1 < n ? load32(b, t) : _mm512_setzero_si512();
    if (pv) rotary_attn_prefetch_lines(pf, j + 1 < n ? 2 * pv : pv);
    const __m512bh wl = (__m512bh)_mm512_unpacklo_epi16(x, y), wh = (__m512bh)_mm512_unpackhi_epi16(x, y);
    for (int r = 0; r < R; r++) {
      uint32_t pair;
      memcpy(&pair, pw + (size_t)r * DOT_KEYS + j, sizeof pair);
      const __m512bh pp = (__m512bh)_mm512_set1_epi32((int)pair);
      lo[r] = _mm512_dpbf16_ps(lo[r], pp, wl);
      hi[r] = _mm512_dpbf16_ps(hi[r], pp, wh);
    }
  }
  const __m512i u0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i u1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  const __mmask16 m0 = (__mmask16)(t >= 16 ? 0xffffu : (1u << t) - 1u);
  const __mmask16 m1 = (__mmask16)(t >= 32 ? 0xffffu : t > 16 ? (1u << (t - 16)) - 1u : 0u);
  for (int r = 0; r < R; r++) {
    float *orow = o + (size_t)r * hd;
    const __m512 a0 = _mm512_permutex2var_ps(lo[r], u0, hi[r]), a1 = _mm512_permutex2var_ps(lo[r], u1, hi[r]);
    _mm512_mask_storeu_ps(orow, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, orow), a0));
    _mm512_mask_storeu_ps(orow + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, orow + 16), a1));
  }
}

void rotary_attn_bf16_values_dot__avx512bf16(const float *p, size_t p_stride, size_t rows, size_t head_dim,
                                             const void *v, ptrdiff_t v_row_stride, size_t n, float v_scale,
                                             float *o, rotary_attn_prefetch *pf) ROTARY_TARGET;
void rotary_attn_bf16_values_dot__avx512bf16(const float *p, size_t p_stride, size_t rows, size_t head_dim,
                                             const void *v, ptrdiff_t v_row_stride, size_t n, float v_scale,
                                             float *o, rotary_attn_prefetch *pf) {
  (void)v_scale;
  uint16_t pw[4 * DOT_KEYS] __attribute__((aligned(64)));
  const ptrdiff_t vb = v_row_stride * 2;
  const size_t passes = (head_dim + 31) / 32, pv = pf ? (pf->per_key + passes - 1) / passes : 0;
  for (size_t r0 = 0; r0 < rows;) {
    const int R = r0 + 4 <= rows ? 4 : 1;
    for (size_t j0 = 0; j0 < n; j0 += DOT_KEYS) {
      const size_t m = n - j0 < DOT_KEYS ? n - j0 : DOT_KEYS;
      for (int r = 0; r < R; r++) to_words(p + (r0 + (size_t)r) * p_stride + j0, m, pw + r * DOT_KEYS);
      const unsigned char *vj = (const unsigned char *)v + (ptrdiff_t)j0 * vb;
      float *orow = o + r0 * head_dim;
      for (size_t d = 0; d < head_dim; d += 32) {
        const size_t t = head_dim - d;
        if (R == 4) values_pass(4, pw, m, t, vj + d * 2, vb, orow + d, head_dim, d == 0, pf, pv);
        else values_pass(1, pw, m, t, vj + d * 2, vb, orow + d, head_dim, d == 0, pf, pv);
      }
    }
    r0 += (size_t)R;
  }
}
#endif
