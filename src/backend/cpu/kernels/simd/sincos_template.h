/* simd/sincos_template.h: the cos/sin rows kernel, one body instantiated per ISA from an fp64 vocabulary. */
/*
 * Expects an fp64 vocabulary (generic/sincos_scalar.c, x86/f64_*.h, arm/f64_neon.h) defining SD_W (lanes),
 * SD_TARGET, SD_NAME(x) (x suffixed with the ISA), sd_v / sd_m (vector, lane mask) and
 *   sd_set1 sd_loadu sd_add sd_sub sd_mul sd_neg sd_abs   sd_fma(a, b, c) = a * b + c with one rounding
 *   sd_lt sd_gt (masks) sd_mand sd_mor sd_mbits (mask -> bit i for lane i)
 *   sd_select_odd(t, a, b): b where the integer in t's low mantissa bits is odd, else a
 *   sd_sign_bit1(t): a vector whose only set bits are the sign bits of lanes where bit 1 of that integer is set
 *   sd_xor(v, sign)       sd_store_f32(float *p, v): W doubles rounded once to fp32 and stored
 * Every lane performs the same IEEE operations (fma where written, nothing contracted), so all instantiations
 * give the same bits. See sincos.h for the method.
 */

#ifndef SD_TEMPLATE_ONCE
#define SD_TEMPLATE_ONCE
#define SD_TWO_OVER_PI 0x1.45f306dc9c883p-1
#define SD_MAGIC 0x1.8p52                /* adding it rounds to an integer and leaves it in the low bits */
#define SD_PIO2_1 0x1.921fb54442d18p+0   /* pi/2 = P1 + P2 + P3 to about 2^-163 */
#define SD_PIO2_2 0x1.1a62633145c07p-54
#define SD_PIO2_3 -0x1.f1976b7ed8fbcp-110
/* Fast-path limits. Below SD_HUGE the quotient estimate is off by far less than one quadrant and k < 2^51. The
 * reduced angle's absolute error is below 2^-104 hi (two roundings of c, |c| < 2^-52 hi), so a reduced angle of
 * at least SD_TINY_REL * hi is within 2^-55 relative. Lanes outside these limits go to rotary_sincos_exact. */
#define SD_HUGE 0x1p45
#define SD_TINY_REL 0x1p-49
/* Taylor coefficients +-1/n!, highest degree first (|r| <= pi/4 (1 + 2^-7): truncation below 2^-62 relative):
 * sin r = r + r^3 P(r^2) with P from r^17 down to r^3, cos r = 1 + r^2 Q(r^2) with Q from r^18 down to r^2. */
static const double sd_sin_poly[8] = {1.0 / 355687428096000.0, -1.0 / 1307674368000.0, 1.0 / 6227020800.0,
                                      -1.0 / 39916800.0, 1.0 / 362880.0, -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0};
static const double sd_cos_poly[9] = {-1.0 / 6402373705728000.0, 1.0 / 20922789888000.0, -1.0 / 87178291200.0,
                                      1.0 / 479001600.0, -1.0 / 3628800.0, 1.0 / 40320.0, -1.0 / 720.0,
                                      1.0 / 24.0, -0.5};
#endif

/* Up to SD_BLOCKS blocks of SD_W lanes go through the stages below together, statement by statement: each block is a
 * long chain of dependent fp64 operations (two Horner polynomials), and placing the blocks' chains side by side in
 * program order lets an out-of-order core run them at once instead of waiting on one chain (AVX2 on a Zen 3, a row
 * of 64 values: about 198 ns one block at a time, 178 ns two, 157 ns four). Every lane still performs exactly the
 * operations written, so the bits do not depend on how many blocks go together. */
#ifndef SD_BLOCKS
#define SD_BLOCKS 4
#endif

/* cos and sin of r_hi + r_lo (|r| <= about pi/4) in the quadrant held by t (SD_MAGIC + k), times scaling, to
 * fp32, for n <= SD_BLOCKS blocks (block u writes SD_W entries at cos + u * SD_W, sin + u * SD_W).
 * sin(r_hi + r_lo) = sin(r_hi) + r_lo (1 - r^2/2), cos(r_hi + r_lo) = cos(r_hi) - r_lo r_hi: the terms dropped are
 * below 2^-100 relative. Polynomials by Horner's rule, highest degree first, one fma per step. */
__attribute__((always_inline)) SD_TARGET static inline void SD_NAME(sd_core_n)(const sd_v *r_hi, const sd_v *r_lo,
                                                                               const sd_v *t, double scaling,
                                                                               float *cos, float *sin, const int n) {
  sd_v z[SD_BLOCKS], ps[SD_BLOCKS], pc[SD_BLOCKS];
  for (int u = 0; u < n; u++) {
    z[u] = sd_mul(r_hi[u], r_hi[u]);
    ps[u] = sd_fma(sd_set1(sd_sin_poly[0]), z[u], sd_set1(sd_sin_poly[1]));
    pc[u] = sd_fma(sd_set1(sd_cos_poly[0]), z[u], sd_set1(sd_cos_poly[1]));
  }
  for (int j = 2; j < 9; j++)
    for (int u = 0; u < n; u++) {
      if (j < 8) ps[u] = sd_fma(ps[u], z[u], sd_set1(sd_sin_poly[j]));
      pc[u] = sd_fma(pc[u], z[u], sd_set1(sd_cos_poly[j]));
    }
  const sd_v sc = sd_set1(scaling);
  for (int u = 0; u < n; u++) {
    const sd_v lo_term = sd_fma(sd_mul(sd_set1(-0.5), z[u]), r_lo[u], r_lo[u]);
    const sd_v sn = sd_add(r_hi[u], sd_fma(sd_mul(r_hi[u], z[u]), ps[u], lo_term));
    const sd_v cs = sd_add(sd_set1(1.0), sd_fma(z[u], pc[u], sd_neg(sd_mul(r_lo[u], r_hi[u]))));
    /* quadrant k: sin = (S, C, -S, -C)[k % 4], cos = (C, -S, -C, S)[k % 4] */
    const sd_v s_q = sd_xor(sd_select_odd(t[u], sn, cs), sd_sign_bit1(t[u]));
    const sd_v c_q = sd_xor(sd_select_odd(t[u], cs, sn), sd_sign_bit1(sd_add(t[u], sd_set1(1.0))));
    sd_store_f32(cos + u * SD_W, sd_mul(c_q, sc));
    sd_store_f32(sin + u * SD_W, sd_mul(s_q, sc));
  }
}

/* One block (rotary_sincos_finish's polynomial stage). */
SD_TARGET static inline void SD_NAME(sd_core)(sd_v r_hi, sd_v r_lo, sd_v t, double scaling, float *cos,
                                              float *sin) {
  SD_NAME(sd_core_n)(&r_hi, &r_lo, &t, scaling, cos, sin, 1);
}

/* n <= SD_BLOCKS blocks of SD_W entries (w, cos and sin advance SD_W per block): fast reduction of the exact angle
 * p * w, polynomials, and the exact path for the lanes the fast reduction cannot vouch for. */
__attribute__((always_inline)) SD_TARGET static inline void SD_NAME(sd_block_n)(const double *w, int64_t pos,
                                                                                double scaling, float *cos,
                                                                                float *sin, const int n) {
  const sd_v p = sd_set1((double)pos);
  sd_v hi[SD_BLOCKS], t[SD_BLOCKS], k[SD_BLOCKS], r_hi[SD_BLOCKS], r_lo[SD_BLOCKS];
  for (int u = 0; u < n; u++) {
    const sd_v wv = sd_loadu(w + u * SD_W);
    hi[u] = sd_mul(p, wv);
    const sd_v lo = sd_fma(p, wv, sd_neg(hi[u])); /* p * w = hi + lo exactly */
    t[u] = sd_add(sd_mul(hi[u], sd_set1(SD_TWO_OVER_PI)), sd_set1(SD_MAGIC));
    k[u] = sd_sub(t[u], sd_set1(SD_MAGIC));
    /* hi - k P1 is exact: both are multiples of 2^-53 (2^-52 once hi >= 1) and the difference is below 1. */
    const sd_v a = sd_fma(sd_neg(k[u]), sd_set1(SD_PIO2_1), hi[u]);
    /* the small terms lo - k P2 - k P3, then r = a + c by Fast2Sum (exact: |a| > 8 |c| wherever r is kept) */
    const sd_v c = sd_fma(sd_neg(k[u]), sd_set1(SD_PIO2_3), sd_fma(sd_neg(k[u]), sd_set1(SD_PIO2_2), lo));
    r_hi[u] = sd_add(a, c);
    r_lo[u] = sd_sub(c, sd_sub(r_hi[u], a));
  }
  SD_NAME(sd_core_n)(r_hi, r_lo, t, scaling, cos, sin, n);
  /* Huge angles (+inf included: their lanes hold NaN until replaced), and reduced angles so close to a nonzero
   * multiple of pi/2 that the error above could matter (k = 0 is exact: r = hi + lo). */
  for (int u = 0; u < n; u++) {
    const sd_m hard = sd_mor(sd_lt(sd_set1(SD_HUGE), hi[u]),
                             sd_mand(sd_gt(k[u], sd_set1(0.5)),
                                     sd_lt(sd_abs(r_hi[u]), sd_mul(hi[u], sd_set1(SD_TINY_REL)))));
    unsigned bits = sd_mbits(hard);
    for (int j = 0; bits; j++, bits >>= 1)
      if (bits & 1u)
        rotary_sincos_exact(pos, w[u * SD_W + j], scaling, cos + u * SD_W + j, sin + u * SD_W + j);
  }
}

SD_TARGET void SD_NAME(rotary_sincos_rows)(const double *inv_freq, size_t half, double scaling, int64_t pos,
                                            float *cos, float *sin) {
  size_t i = 0;
  for (; i + SD_BLOCKS * SD_W <= half; i += SD_BLOCKS * SD_W)
    SD_NAME(sd_block_n)(inv_freq + i, pos, scaling, cos + i, sin + i, SD_BLOCKS);
  for (; i + SD_W <= half; i += SD_W) SD_NAME(sd_block_n)(inv_freq + i, pos, scaling, cos + i, sin + i, 1);
  if (i < half) { /* the tail in a padded block: unused lanes get w = 0 (angle 0, never the exact path) */
    double w[SD_W] = {0};
    float c[SD_W], s[SD_W];
    for (size_t j = 0; i + j < half; j++) w[j] = inv_freq[i + j];
    SD_NAME(sd_block_n)(w, pos, scaling, c, s, 1);
    for (size_t j = 0; i + j < half; j++) {
      cos[i + j] = c[j];
      sin[i + j] = s[j];
    }
  }
}
