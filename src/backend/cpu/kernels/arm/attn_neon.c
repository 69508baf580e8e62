/* arm/attn_neon.c: the decode-attention kernels built for aarch64 NEON (scores, values per cache dtype; exp). */
/* Defines (names built by macros; listed so that grep finds every definition here):
 * rotary_attn_f32_scores__neon rotary_attn_f32_values__neon rotary_attn_f16_scores__neon
 * rotary_attn_f16_values__neon rotary_attn_bf16_scores__neon rotary_attn_bf16_values__neon
 * rotary_attn_fp8_scores__neon rotary_attn_fp8_values__neon rotary_attn_exp__neon
 * rotary_attn_f32_scores_half__neon rotary_attn_f16_scores_half__neon rotary_attn_bf16_scores_half__neon
 * rotary_attn_fp8_scores_half__neon rotary_attn_f32_scores_interleaved__neon rotary_attn_f16_scores_interleaved__neon
 * rotary_attn_bf16_scores_interleaved__neon rotary_attn_fp8_scores_interleaved__neon */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "attn_common.h"
#include "attn_kernels.h"
#include "convert.h"
#include "fp8.h"

#define INLINE static inline __attribute__((always_inline))


/*
 * 8 cache elements at p decoded to two vectors of 4 floats, in order. fp8 goes through f16 as in x86/attn_avx2.c:
 * sign << 15 | magnitude << 7 is the f16 number value * 2^-8, exact (FCVTL widens f16 subnormals exactly); one
 * multiply by fp8_factor = scale * 2^8 (finite: checked by the caller) gives value * scale rounded once. NaN codes
 * come out finite: the fp8 kernels find them apart (fp8_any_nan).
 */
INLINE void dec8(int dt, const unsigned char *p, float32x4_t fp8_factor, float32x4_t *lo, float32x4_t *hi) {
  if (dt == DT_F32) {
    *lo = vld1q_f32((const float *)(const void *)p);
    *hi = vld1q_f32((const float *)(const void *)(p + 16));
  } else if (dt == DT_F16) {
    const uint16x8_t h = vld1q_u16((const uint16_t *)(const void *)p);
    *lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h)));
    *hi = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h)));
  } else if (dt == DT_BF16) {
    const uint16x8_t h = vld1q_u16((const uint16_t *)(const void *)p);
    *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    *hi = vreinterpretq_f32_u32(vshll_n_u16(vget_high_u16(h), 16));
  } else {
    const int16x8_t w = vmovl_s8(vld1_s8((const int8_t *)(const void *)p));
    const uint16x8_t h = vandq_u16(vreinterpretq_u16_s16(vshlq_n_s16(w, 7)), vdupq_n_u16(0xbf80));
    *lo = vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h))), fp8_factor);
    *hi = vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h))), fp8_factor);
  }
}

/* ---- scores: R query rows x J keys per block (R <= 4, J <= 3), 4-lane partial sums per (row, key) ---- */

/* s[r * ss + j] for r < R, j < J. Sum order: lane-wise over steps of 8 (two fmas per step), then the tail step of
 * up to 7, then FADDP's pairwise lane sum; the same for every R, J and path (direct or staged). */
INLINE void scores_block(int dt, int R, int J, const float *q, size_t hd, const unsigned char *k, ptrdiff_t kb,
                         float32x4_t f8, float scale, float *s, size_t ss) {
  const size_t es = dt_size[dt], d8 = hd & ~(size_t)7;
  float32x4_t acc[12];
  for (int i = 0; i < 12; i++) acc[i] = vdupq_n_f32(0.0f);
  for (int j = J; j < 2 * J; j++) /* the next block's keys */
    for (size_t off = 0; off < hd * es && off < 512; off += 64) __builtin_prefetch(k + j * kb + (ptrdiff_t)off);
  for (size_t d = 0; d < d8; d += 8) {
    float32x4_t lo[3], hi[3];
    for (int j = 0; j < J; j++) dec8(dt, k + j * kb + d * es, f8, &lo[j], &hi[j]);
    for (int r = 0; r < R; r++) {
      const float32x4_t q0 = vld1q_f32(q + r * hd + d), q1 = vld1q_f32(q + r * hd + d + 4);
      for (int j = 0; j < J; j++) {
        acc[r * J + j] = vfmaq_f32(acc[r * J + j], q0, lo[j]);
        acc[r * J + j] = vfmaq_f32(acc[r * J + j], q1, hi[j]);
      }
    }
  }
  if (d8 < hd) {
    const size_t t = hd - d8;
    float kt[3][8];
    for (int j = 0; j < J; j++) attn_dec_tail(dt, k + j * kb + d8 * es, t, scale, kt[j], 8);
    for (int r = 0; r < R; r++) {
      float qt[8] = {0};
      memcpy(qt, q + r * hd + d8, t * sizeof(float));
      const float32x4_t q0 = vld1q_f32(qt), q1 = vld1q_f32(qt + 4);
      for (int j = 0; j < J; j++) {
        acc[r * J + j] = vfmaq_f32(acc[r * J + j], q0, vld1q_f32(kt[j]));
        acc[r * J + j] = vfmaq_f32(acc[r * J + j], q1, vld1q_f32(kt[j] + 4));
      }
    }
  }
  for (int r = 0; r < R; r++)
    for (int j = 0; j < J; j++) s[r * ss + j] = vaddvq_f32(acc[r * J + j]);
}

INLINE void scores_rows(int dt, const float *q, size_t rows, size_t hd, const unsigned char *k, ptrdiff_t kb,
                        size_t n, float32x4_t f8, float scale, float *s, size_t ss, rotary_attn_prefetch *pf) {
  const size_t pk = pf ? pf->per_key : 0;
  for (size_t r0 = 0; r0 < rows; r0 += 4) {
    const size_t R = rows - r0 < 4 ? rows - r0 : 4;
    const float *qr = q + r0 * hd;
    float *sr = s + r0 * ss;
    for (size_t j = 0; j < n;) {
      const size_t J = n - j < 3 ? n - j : 3;
      const unsigned char *kj = k + (ptrdiff_t)j * kb;
#define SCORES_R(JJ)                                                                   \
  switch (R) {                                                                         \
    case 4: scores_block(dt, 4, JJ, qr, hd, kj, kb, f8, scale, sr + j, ss); break;     \
    case 3: scores_block(dt, 3, JJ, qr, hd, kj, kb, f8, scale, sr + j, ss); break;     \
    case 2: scores_block(dt, 2, JJ, qr, hd, kj, kb, f8, scale, sr + j, ss); break;     \
    default: scores_block(dt, 1, JJ, qr, hd, kj, kb, f8, scale, sr + j, ss); break;    \
  }
      if (J == 3) SCORES_R(3) else if (J == 2) SCORES_R(2) else SCORES_R(1)
#undef SCORES_R
      if (pk) rotary_attn_prefetch_lines(pf, J * pk);
      j += J;
    }
  }
}

/* Staging: with more than 4 rows, f16 and fp8 rows are decoded once into this many floats and every row block
 * reads them as f32 (the same numbers, so the same bits). */
#define STAGE_FLOATS 4096

/* ---- scores with keys rotated on the way: R rows (4 or 1) x J = 2 keys per block (attn_rot_rows.h), as
 * x86/attn_avx2.c's rot_block ----
 * Sum order, the same on every path, lane-wise then FADDP's lane sum:
 *   half pairs: for each step i of 8 pairs the terms of y_i .. y_{i+7} (two fmas) then those of y_{half+i} ..
 *   (two fmas), then the unrotated elements in steps of 8;
 *   interleaved pairs: every element in steps of 8 (two fmas each: the plain scores order).
 * Needs rotary_dim and head_dim multiples of 8 and, for half pairs, rotary_dim / 2 too (the kernels send other
 * shapes to the scalar kernel). */
enum { PR_HALF = 0, PR_INTER = 1 };

/* 4 rotated elements (interleaved) from 4 decoded ones: y = fma(x_even, B, x_odd * D). */
INLINE float32x4_t rot_inter4(float32x4_t x, const float *B, const float *D) {
  return vfmaq_f32(vmulq_f32(vtrn2q_f32(x, x), vld1q_f32(D)), vtrn1q_f32(x, x), vld1q_f32(B));
}

INLINE void rot_block(int pr, int dt, int rot, int R, int J, const float *q, size_t hd, size_t rd,
                      const unsigned char *k, ptrdiff_t kb, ptrdiff_t k1, const float *cs, size_t c1, size_t so,
                      float32x4_t f8, float *s, size_t ss, int nst) {
  const size_t es = dt_size[dt], half = rd / 2;
  float32x4_t acc[12];
  for (int i = 0; i < 12; i++) acc[i] = vdupq_n_f32(0.0f);
  if (rot)
    for (int j = J; j < 2 * J; j++)
      for (size_t off = 0; off < hd * es && off < 512; off += 64)
        __builtin_prefetch((const char *)(uintptr_t)((uintptr_t)k + (uintptr_t)(j * kb) + off));
  size_t d0 = 0;
  if (pr == PR_HALF) {
    for (size_t i = 0; i < half; i += 8) {
      float32x4_t ya[3][2], yb[3][2];
      for (int j = 0; j < J; j++) {
        const unsigned char *kj = k + j * k1;
        float32x4_t x0[2], x1[2];
        dec8(dt, kj + i * es, f8, &x0[0], &x0[1]);
        dec8(dt, kj + (half + i) * es, f8, &x1[0], &x1[1]);
        for (int h = 0; h < 2; h++) {
          if (rot) { /* fmaf(x0, c, -(x1 s)) and fmaf(x0, s, x1 c): the rotation kernels' formula */
            const float32x4_t c = vld1q_f32(cs + j * c1 + i + 4 * h), sn = vld1q_f32(cs + j * c1 + so + i + 4 * h);
            ya[j][h] = vfmaq_f32(vnegq_f32(vmulq_f32(x1[h], sn)), x0[h], c);
            yb[j][h] = vfmaq_f32(vmulq_f32(x1[h], c), x0[h], sn);
          } else {
            ya[j][h] = x0[h];
            yb[j][h] = x1[h];
          }
        }
      }
      for (int r = 0; r < R; r++) {
        const float *qa = q + r * hd + i, *qb = q + r * hd + half + i;
        const float32x4_t a0 = vld1q_f32(qa), a1 = vld1q_f32(qa + 4), b0 = vld1q_f32(qb), b1 = vld1q_f32(qb + 4);
        for (int j = 0; j < J; j++) {
          acc[r * J + j] = vfmaq_f32(acc[r * J + j], a0, ya[j][0]);
          acc[r * J + j] = vfmaq_f32(acc[r * J + j], a1, ya[j][1]);
          acc[r * J + j] = vfmaq_f32(acc[r * J + j], b0, yb[j][0]);
          acc[r * J + j] = vfmaq_f32(acc[r * J + j], b1, yb[j][1]);
        }
      }
    }
    d0 = rd;
  }
  for (size_t d = d0; d < hd; d += 8) {
    float32x4_t lo[3], hi[3];
    for (int j = 0; j < J; j++) {
      dec8(dt, k + j * k1 + d * es, f8, &lo[j], &hi[j]);
      if (pr == PR_INTER && rot && d < rd) {
        const float *B = cs + j * c1 + d, *D = cs + j * c1 + so + d;
        lo[j] = rot_inter4(lo[j], B, D);
        hi[j] = rot_inter4(hi[j], B + 4, D + 4);
      }
    }
    for (int r = 0; r < R; r++) {
      const float32x4_t q0 = vld1q_f32(q + r * hd + d), q1 = vld1q_f32(q + r * hd + d + 4);
      for (int j = 0; j < J; j++) {
        acc[r * J + j] = vfmaq_f32(acc[r * J + j], q0, lo[j]);
        acc[r * J + j] = vfmaq_f32(acc[r * J + j], q1, hi[j]);
      }
    }
  }
  for (int r = 0; r < R; r++)
    for (int j = 0; j < nst; j++) s[r * ss + j] = vaddvq_f32(acc[r * J + j]);
}

/* One key row decoded and rotated into the fp32 row y (attn_rot_rows.h's rot_key_row): rot_block's numbers. */
INLINE void rot_key_row(int pr, int dt, const unsigned char *kj, const float *c, size_t so, size_t rd, size_t hd,
                        float32x4_t f8, float *y) {
  const size_t half = rd / 2, es = dt_size[dt];
  size_t d = 0;
  if (pr == PR_HALF) {
    for (size_t i = 0; i < half; i += 8) {
      float32x4_t x0[2], x1[2];
      dec8(dt, kj + i * es, f8, &x0[0], &x0[1]);
      dec8(dt, kj + (half + i) * es, f8, &x1[0], &x1[1]);
      for (int h = 0; h < 2; h++) {
        const float32x4_t cv = vld1q_f32(c + i + 4 * h), sv = vld1q_f32(c + so + i + 4 * h);
        vst1q_f32(y + i + 4 * h, vfmaq_f32(vnegq_f32(vmulq_f32(x1[h], sv)), x0[h], cv));
        vst1q_f32(y + half + i + 4 * h, vfmaq_f32(vmulq_f32(x1[h], cv), x0[h], sv));
      }
    }
    d = rd;
  }
  for (; d < hd; d += 8) {
    float32x4_t lo, hi;
    dec8(dt, kj + d * es, f8, &lo, &hi);
    if (pr == PR_INTER && d < rd) {
      lo = rot_inter4(lo, c + d, c + so + d);
      hi = rot_inter4(hi, c + d + 4, c + so + d + 4);
    }
    vst1q_f32(y + d, lo);
    vst1q_f32(y + d + 4, hi);
  }
}

#define ATTN_VEC float32x4_t
#define ATTN_FACTOR(scale) vdupq_n_f32((scale) * 256.0f)
#include "attn_rot_rows.h"
#undef ATTN_VEC
#undef ATTN_FACTOR

/* ---- values: R rows x 16 outputs per block (4 vectors), keys inside, p broadcast ---- */

/* o[r][d] = fma(p[r][j], v_j[d], o[r][d]) for j = 0 .. n-1 in order: the scalar kernel's order, so the same bits.
 * A tail block (t < 16 outputs) goes through a zero-padded copy of o and of the value elements. */
INLINE void values_block(int dt, int R, const float *p, size_t ps, size_t hd, size_t d, const unsigned char *v,
                         ptrdiff_t vb, size_t n, float32x4_t f8, float scale, float *o, rotary_attn_prefetch *pf,
                         size_t pv) {
  const size_t es = dt_size[dt], t = hd - d < 16 ? hd - d : 16;
  float32x4_t a[4][4];
  float ot[4][16];
  for (int r = 0; r < R; r++) {
    const float *src = o + r * hd + d;
    if (t < 16) {
      memset(ot[r], 0, sizeof ot[r]);
      memcpy(ot[r], src, t * sizeof(float));
      src = ot[r];
    }
    for (int c = 0; c < 4; c++) a[r][c] = vld1q_f32(src + 4 * c);
  }
  for (size_t j = 0; j < n; j++) {
    const unsigned char *row = v + (ptrdiff_t)j * vb;
    float32x4_t x[4];
    if (d == 0)
      for (size_t off = 64; off < hd * es && off < 512; off += 64) __builtin_prefetch(row + off);
    if (pv) rotary_attn_prefetch_lines(pf, pv);
    if (t == 16) {
      dec8(dt, row + d * es, f8, &x[0], &x[1]);
      dec8(dt, row + (d + 8) * es, f8, &x[2], &x[3]);
    } else {
      float vt[16];
      attn_dec_tail(dt, row + d * es, t < 8 ? t : 8, scale, vt, 8);
      attn_dec_tail(dt, row + (d + 8) * es, t > 8 ? t - 8 : 0, scale, vt + 8, 8);
      for (int c = 0; c < 4; c++) x[c] = vld1q_f32(vt + 4 * c);
    }
    for (int r = 0; r < R; r++) {
      const float32x4_t pj = vdupq_n_f32(p[r * ps + j]);
      for (int c = 0; c < 4; c++) a[r][c] = vfmaq_f32(a[r][c], pj, x[c]);
    }
  }
  for (int r = 0; r < R; r++) {
    float *dst = t < 16 ? ot[r] : o + r * hd + d;
    for (int c = 0; c < 4; c++) vst1q_f32(dst + 4 * c, a[r][c]);
    if (t < 16) memcpy(o + r * hd + d, ot[r], t * sizeof(float));
  }
}

INLINE void values_rows(int dt, const float *p, size_t ps, size_t rows, size_t hd, const unsigned char *v,
                        ptrdiff_t vb, size_t n, float32x4_t f8, float scale, float *o, rotary_attn_prefetch *pf) {
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

/* ---- fp8: NaN codes, and scales too large for the f16 route ---- */

/* Nonzero when one of the n rows of m codes (byte stride pb) holds a NaN code (S.1111.111). */
static int fp8_any_nan(const unsigned char *p, ptrdiff_t pb, size_t n, size_t m) {
  const size_t m16 = m & ~(size_t)15;
  uint8x16_t hit = vdupq_n_u8(0);
  int any = 0;
  for (size_t j = 0; j < n; j++) {
    const unsigned char *row = p + (ptrdiff_t)j * pb;
    for (size_t i = 0; i < m16; i += 16)
      hit = vorrq_u8(hit, vceqq_u8(vorrq_u8(vld1q_u8(row + i), vdupq_n_u8(0x80)), vdupq_n_u8(0xff)));
    for (size_t i = m16; i < m; i++) any |= (row[i] & 0x7f) == 0x7f;
  }
  return any | (vmaxvq_u8(hit) != 0);
}

static int fp8_factor_ok(float scale) { return scale * 256.0f <= FLT_MAX; }

/* A key holding a NaN code gives NaN logits in every row (q . key is NaN whatever q is). */
__attribute__((noinline, cold)) static void fp8_fix_scores(size_t rows, size_t hd, const unsigned char *k,
                                                           ptrdiff_t kb, size_t n, float *s, size_t ss) {
  for (size_t j = 0; j < n; j++)
    if (fp8_any_nan(k + (ptrdiff_t)j * kb, 0, 1, hd))
      for (size_t r = 0; r < rows; r++) s[r * ss + j] = rotary_bits_f32(0x7fc00000u);
}

/* A NaN code at (j, d) makes o[r][d] NaN in every row (p * NaN is NaN whatever p is). */
__attribute__((noinline, cold)) static void fp8_fix_values(size_t rows, size_t hd, const unsigned char *v,
                                                           ptrdiff_t vb, size_t n, float *o) {
  for (size_t j = 0; j < n; j++)
    for (size_t d = 0; d < hd; d++)
      if ((v[(ptrdiff_t)j * vb + (ptrdiff_t)d] & 0x7f) == 0x7f)
        for (size_t r = 0; r < rows; r++) o[r * hd + d] = rotary_bits_f32(0x7fc00000u);
}

/* ---- staging and the kernels (simd/attn_any.h) ---- */

#define ATTN_TARGET
#define ATTN_VEC float32x4_t
#define ATTN_FACTOR(scale) vdupq_n_f32((scale) * 256.0f)
#define ATTN_STEP 8
INLINE void stage_step(int dt, const unsigned char *src, float32x4_t f8, float *dst) {
  float32x4_t lo, hi;
  dec8(dt, src, f8, &lo, &hi);
  vst1q_f32(dst, lo);
  vst1q_f32(dst + 4, hi);
}
#include "attn_any.h"

ATTN_KERNELS(f32, DT_F32, neon)
ATTN_KERNELS(f16, DT_F16, neon)
ATTN_KERNELS(bf16, DT_BF16, neon)
ATTN_KERNELS(fp8, DT_FP8, neon)

/* ---- scores with keys rotated on the way ---- */

ATTN_ROT_KERNELS(neon)

/* ---- exp: simd/attn_exp.h's exp with 4 lanes (FMAX and FMIN keep a NaN; a NaN lane's n converts to 0) ---- */

#define EXP_NAME(x) x##_neon
#define EV float32x4_t
#define EI int32x4_t
#define ev_set(c) vdupq_n_f32(c)
#define ev_mul(a, b) vmulq_f32((a), (b))
#define ev_add(a, b) vaddq_f32((a), (b))
#define ev_fma(a, b, c) vfmaq_f32((c), (a), (b))
#define ev_fnma(a, b, c) vfmsq_f32((c), (a), (b))
#define ev_clamp(x) vminq_f32(vmaxq_f32((x), vdupq_n_f32(-110.0f)), vdupq_n_f32(89.0f))
#define ev_round(x) vrndnq_f32(x)
#define ev_to_int(x) vcvtq_s32_f32(x)
#define ei_set(c) vdupq_n_s32(c)
#define ei_add(a, b) vaddq_s32((a), (b))
#define ei_sub(a, b) vsubq_s32((a), (b))
#define ei_sra1(n) vshrq_n_s32((n), 1)
#define ei_shl23(n) vreinterpretq_f32_s32(vshlq_n_s32((n), 23))
#include "attn_exp.h"

/* Sums: two 4-lane accumulators over blocks of 8 (then 4, then a zero-padded tail), combined at the end. */
float rotary_attn_exp__neon(float *s, size_t n, float max) {
  const float32x4_t m = vdupq_n_f32(max);
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const float32x4_t e0 = exp_lanes_neon(vsubq_f32(vld1q_f32(s + j), m));
    const float32x4_t e1 = exp_lanes_neon(vsubq_f32(vld1q_f32(s + j + 4), m));
    vst1q_f32(s + j, e0);
    vst1q_f32(s + j + 4, e1);
    a0 = vaddq_f32(a0, e0);
    a1 = vaddq_f32(a1, e1);
  }
  if (j + 4 <= n) {
    const float32x4_t e0 = exp_lanes_neon(vsubq_f32(vld1q_f32(s + j), m));
    vst1q_f32(s + j, e0);
    a0 = vaddq_f32(a0, e0);
    j += 4;
  }
  if (j < n) {
    float t[4] = {0, 0, 0, 0};
    memcpy(t, s + j, (n - j) * sizeof(float));
    float e[4];
    vst1q_f32(e, exp_lanes_neon(vsubq_f32(vld1q_f32(t), m)));
    for (size_t i = n - j; i < 4; i++) e[i] = 0.0f;
    memcpy(s + j, e, (n - j) * sizeof(float));
    a1 = vaddq_f32(a1, vld1q_f32(e));
  }
  return vaddvq_f32(vaddq_f32(a0, a1));
}
#endif
