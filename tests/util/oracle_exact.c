/* oracle_exact.c: correctly rounded fp32 cos/sin of exact angles pos * w: exact integer split, libm, long double, MPFR. */
#define _GNU_SOURCE /* sincos, sincosl */
#include "oracle_exact.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "test_util.h"
#ifdef ORACLE_HAVE_MPFR
#include <mpfr.h>
#endif

typedef unsigned __int128 u128;

int oracle_have_mpfr(void) {
#ifdef ORACLE_HAVE_MPFR
  return 1;
#else
  return 0;
#endif
}

/* Relative rounding error of long double arithmetic as it really runs: valgrind computes x87 long double in double
 * precision, so the long-double paths are used only when 1 + LDBL_EPSILON differs from 1. */
static long double ld_rounding(void) {
  volatile long double one = 1.0L, eps = LDBL_EPSILON;
  return one + eps != one ? LDBL_EPSILON : 0x1p-52L;
}

/* pos * w = n * 2^e exactly, n < 2^106. */
static u128 exact_product(int64_t pos, double w, int *e) {
  int ew;
  double m = frexp(w, &ew);                    /* w = m * 2^ew, m in [0.5, 1) */
  uint64_t mi = (uint64_t)ldexp(m, 53);        /* exact: 53 bits (fewer for subnormal w) */
  *e = ew - 53;
  return (u128)(uint64_t)pos * mi;
}

static int bit_length(u128 n) {
  int b = 0;
  while (n) {
    n >>= 1;
    b++;
  }
  return b;
}

/* n * 2^e = hi + lo with hi holding the top `keep` bits of n (a truncation, exact split). */
static void split(u128 n, int e, int keep, long double *hi, long double *lo) {
  int shift = bit_length(n) - keep;
  if (shift < 0) shift = 0;
  u128 top = n >> shift << shift;
  *hi = ldexpl((long double)(uint64_t)(top >> shift), shift + e);
  *lo = ldexpl((long double)(uint64_t)(n - top), e); /* < 2^shift <= 2^42: exact */
}

/* Rounds v to fp32 when v - m and v + m round alike. */
static int decide(long double v, long double m, float *out) {
  float a = (float)(v - m), b = (float)(v + m);
  if (tu_f32_bits(a) != tu_f32_bits(b)) return 0;
  *out = a;
  return 1;
}

/* cos/sin(hi + lo) from c = cos(hi), s = sin(hi) by the Taylor terms of lo; eps bounds the relative error of c, s. */
static int from_parts(long double c, long double s, long double lo, long double eps, long double scaling, float *co,
                      float *so) {
  long double l2 = lo * lo / 2, l3 = fabsl(lo * l2) / 3;
  long double vc = c - s * lo - c * l2, vs = s + c * lo - s * l2;
  /* libm's error on c and s (relative; twice, for the products), the Taylor terms left out, long double roundings:
   * a margin per value, since vc leans on c and vs on s (one margin from c's terms was too small for the sine when
   * |s| >> |c|) */
  const long double rest = l3 + l2 * l2 + 8 * ld_rounding() * (fabsl(c) + fabsl(s) + fabsl(vc) + fabsl(vs));
  const long double mc = eps * (fabsl(c) + fabsl(s * lo) + 0x1p-1000L) * 2 + rest;
  const long double ms = eps * (fabsl(s) + fabsl(c * lo) + 0x1p-1000L) * 2 + rest;
  return decide(vc * scaling, mc * scaling, co) & decide(vs * scaling, ms * scaling, so);
}

oracle_path oracle_exact_cos_sin_mpfr(int64_t pos, double w, double scaling, float *c, float *s) {
#ifdef ORACLE_HAVE_MPFR
  mpfr_t x, sn, cs;
  mpfr_inits2(320, x, sn, cs, (mpfr_ptr)0);
  mpfr_set_d(x, w, MPFR_RNDN);
  mpfr_mul_si(x, x, (long)pos, MPFR_RNDN); /* exact: 106 bits */
  mpfr_sin_cos(sn, cs, x, MPFR_RNDN);
  mpfr_mul_d(sn, sn, scaling, MPFR_RNDN);
  mpfr_mul_d(cs, cs, scaling, MPFR_RNDN);
  *c = mpfr_get_flt(cs, MPFR_RNDN);
  *s = mpfr_get_flt(sn, MPFR_RNDN);
  mpfr_clears(x, sn, cs, (mpfr_ptr)0);
  return ORACLE_MPFR;
#else
  (void)pos, (void)w, (void)scaling, (void)c, (void)s;
  return ORACLE_UNDECIDED;
#endif
}

oracle_path oracle_exact_cos_sin(int64_t pos, double w, double scaling, float *c, float *s) {
  int e;
  u128 n = exact_product(pos, w, &e);
  long double hi, lo;
  split(n, e, 53, &hi, &lo);
  if (fabsl(lo) <= 0x1p-20L && hi < 0x1p1000L) {
    double sd, cd;
    sincos((double)hi, &sd, &cd);
    if (from_parts(cd, sd, lo, 0x1p-50L, scaling, c, s)) return ORACLE_FAST;
  }
  const int ld_ok = ld_rounding() == LDBL_EPSILON;
  if (ld_ok && LDBL_MANT_DIG >= 106) { /* binary128 (aarch64): the product itself is a long double */
    long double sl, cl;
    sincosl(ldexpl((long double)n, e), &sl, &cl);
    if (from_parts(cl, sl, 0.0L, 0x1p-100L, scaling, c, s)) return ORACLE_LONG_DOUBLE;
  }
  split(n, e, 64, &hi, &lo);
  if (ld_ok && fabsl(lo) <= 0x1p-24L && hi < 0x1p1000L) {
    long double sl, cl;
    sincosl(hi, &sl, &cl);
    if (from_parts(cl, sl, lo, 0x1p-60L, scaling, c, s)) return ORACLE_LONG_DOUBLE;
  }
  if (oracle_exact_cos_sin_mpfr(pos, w, scaling, c, s) == ORACLE_MPFR) return ORACLE_MPFR;
  long double sl, cl; /* no MPFR: the best estimate (Taylor terms of lo up to lo^3, |lo| < 2^-11) */
  sincosl(hi, &sl, &cl);
  const long double l2 = lo * lo / 2, l3 = lo * l2 / 3;
  *c = (float)((cl - sl * lo - cl * l2 + sl * l3) * scaling);
  *s = (float)((sl + cl * lo - sl * l2 - cl * l3) * scaling);
  return ORACLE_UNDECIDED;
}
