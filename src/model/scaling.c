/* scaling.c: inverse frequencies and attention factors of every scaling family, in fp64, as Hugging Face defines
 * them (transformers' modeling_rope_utils), and the validation of their parameters. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "scaling.h"

#define FAIL(name, status) \
  do {                     \
    if (field) *field = (name); \
    return (status);       \
  } while (0)

static int finite_positive(double v) { return isfinite(v) && v > 0.0; }

/* ---- base^(-2i/d) correctly rounded to fp64: double-double (dd) ln and exp, then a checked rounding ---- */

typedef struct dd {
  double hi, lo;
} dd;

static dd dd_fast(double a, double b) { /* |a| >= |b| or a == 0 */
  const double s = a + b;
  return (dd){s, b - (s - a)};
}

static dd dd_add(dd a, dd b) {
  const double s = a.hi + b.hi, bb = s - a.hi, e = (a.hi - (s - bb)) + (b.hi - bb);
  const double t = a.lo + b.lo, tb = t - a.lo, te = (a.lo - (t - tb)) + (b.lo - tb);
  dd r = dd_fast(s, e + t);
  return dd_fast(r.hi, r.lo + te);
}

static dd dd_mul(dd a, dd b) {
  const double p = a.hi * b.hi;
  return dd_fast(p, fma(a.hi, b.hi, -p) + (a.hi * b.lo + a.lo * b.hi));
}

static dd dd_mul_d(dd a, double b) {
  const double p = a.hi * b;
  return dd_fast(p, fma(a.hi, b, -p) + a.lo * b);
}

/* x times ln 2 for an integer x (|x| < 2^11), as a dd: ln 2 in three doubles (to 2^-163). */
static dd dd_times_ln2(double x) {
  const double H = 0x1.62e42fefa39efp-1, L = 0x1.abc9e3b39803fp-56, LL = 0x1.7b57a079a1934p-111;
  const double p = x * H, q = x * L;
  return dd_add((dd){p, fma(x, H, -p)}, dd_fast(q, fma(x, L, -q) + x * LL));
}

/* e^y = M * 2^k with M a dd near [0.7, 1.42], for |y.hi| < 800: y - k ln2 = r, |r| <= 0.35, then e^(r/32) - 1 by its
 * Taylor series to degree 13 (remainder below 2^-117) and five doublings of the form E <- E (E + 2). */
static dd dd_exp(dd y, int *k) {
  static const dd inv_fact[12] = {
      {0x1.0000000000000p-1, 0x0.0p+0},  {0x1.5555555555555p-3, 0x1.5555555555555p-57},
      {0x1.5555555555555p-5, 0x1.5555555555555p-59},  {0x1.1111111111111p-7, 0x1.1111111111111p-63},
      {0x1.6c16c16c16c17p-10, -0x1.f49f49f49f49fp-65}, {0x1.a01a01a01a01ap-13, 0x1.a01a01a01a01ap-73},
      {0x1.a01a01a01a01ap-16, 0x1.a01a01a01a01ap-76},  {0x1.71de3a556c734p-19, -0x1.c154f8ddc6c00p-73},
      {0x1.27e4fb7789f5cp-22, 0x1.cbbc05b4fa99ap-76},  {0x1.ae64567f544e4p-26, -0x1.c062e06d1f209p-80},
      {0x1.1eed8eff8d898p-29, -0x1.2aec959e14c06p-83}, {0x1.6124613a86d09p-33, 0x1.f28e0cc748ebep-87}};
  const double kd = nearbyint(y.hi * 0x1.71547652b82fep+0); /* y / ln 2 */
  const dd kl = dd_times_ln2(kd);
  dd r = dd_add((dd){y.hi - kl.hi, 0.0}, (dd){y.lo, -kl.lo}); /* y.hi - kl.hi is exact (Sterbenz) */
  r.hi *= 0x1p-5, r.lo *= 0x1p-5;
  double p = inv_fact[11].hi; /* the terms of degree 7 and up in double: they weigh below 2^-57 */
  for (int n = 10; n >= 5; n--) p = fma(p, r.hi, inv_fact[n].hi);
  dd e = {p, 0.0};
  for (int n = 4; n >= 0; n--) e = dd_add(dd_mul(e, r), inv_fact[n]);
  e = dd_mul(dd_add(dd_mul(e, r), (dd){1.0, 0.0}), r); /* e^r - 1 */
  for (int j = 0; j < 5; j++) e = dd_add(dd_mul_d(e, 2.0), dd_mul(e, e));
  *k = (int)kd;
  return dd_add((dd){1.0, 0.0}, e);
}

/* ln(b) for a normal b: b = m 2^e with m in [0.7, 1.42); ln m = y0 + ln(m e^-y0) with y0 = log(m) from libm and
 * m e^-y0 = 1 + t, |t| ~ 2^-52, so ln(1 + t) = t - t^2/2 to 2^-150. */
static dd dd_log(double b) {
  int e;
  double m = frexp(b, &e);
  if (m < 0.70710678118654752) m *= 2.0, e--;
  const double y0 = log(m);
  int k;
  const dd w = dd_exp((dd){-y0, 0.0}, &k);
  const dd z = dd_mul_d(w, ldexp(m, k));
  const dd t = dd_add(z, (dd){-1.0, 0.0});
  const dd lnm = dd_add((dd){y0, 0.0}, dd_add(t, (dd){-0.5 * t.hi * t.hi, 0.0}));
  return dd_add(dd_times_ln2((double)e), lnm);
}

/* A base ready for base^(-num/den): its ln, computed once per family evaluation. */
typedef struct pow_base {
  double base;
  dd ln;
  int normal; /* base in [DBL_MIN, DBL_MAX]; otherwise libm's pow serves (a derived base out of range: refused) */
} pow_base;

static pow_base pow_base_of(double base) {
  pow_base b = {base, {0.0, 0.0}, base >= DBL_MIN && base <= DBL_MAX};
  if (b.normal) b.ln = dd_log(base);
  return b;
}

/* Whether base^(-p/q) lies above mid = A 2^alpha (A odd, so it is never equal: see docs/accuracy.md), decided with
 * integers: base^(-p) > mid^q  <=>  N = A^q B^p < 2^s, with base = B 2^beta and s = -(q alpha + p beta). 1 above,
 * 0 below, -1 when not attempted (p + q > 4096: N would take over 27,000 words) or out of memory. */
static int above_midpoint(double base, uint64_t p, uint64_t q, uint64_t a, int64_t alpha) {
  if (p + q > 4096) return -1;
  int e;
  const uint64_t b = (uint64_t)ldexp(frexp(base, &e), 53);
  const int64_t beta = e - 53;
  uint64_t *n = calloc((54 * q + 53 * p) / 64 + 2, sizeof *n);
  if (!n) return -1;
  size_t len = 1;
  n[0] = 1;
  for (uint64_t j = 0; j < q + p; j++) { /* n *= a (q times), then b (p times) */
    const uint64_t w = j < q ? a : b;
    unsigned __int128 carry = 0;
    for (size_t i = 0; i < len; i++) {
      const unsigned __int128 t = (unsigned __int128)n[i] * w + carry;
      n[i] = (uint64_t)t;
      carry = t >> 64;
    }
    if (carry) n[len++] = (uint64_t)carry;
  }
  const int64_t bits = (int64_t)(64 * len) - __builtin_clzll(n[len - 1]);
  free(n);
  return bits <= -((int64_t)q * alpha + (int64_t)p * beta); /* N is no power of two: N < 2^s iff bits <= s */
}

/* r 2^k is the double nearest to the double-double, which lies on the `up` side of r; settles which of r and its
 * neighbour on that side is the correctly rounded base^(-num/den). Returns 0 if it cannot (*how = 0). */
static double settle(double base, size_t num, size_t den, double r, int up, int k, int *how) {
  size_t g = num, h = den;
  while (h) { /* gcd */
    const size_t t = g % h;
    g = h, h = t;
  }
  int fe;
  const uint64_t mr = (uint64_t)ldexp(frexp(r, &fe), 53);
  uint64_t a = 2 * mr + 1; /* the midpoint above r */
  int64_t alpha = fe - 54 + k;
  if (!up && mr == UINT64_C(1) << 52) { /* below a power of two the gap is half as wide */
    a = 4 * mr - 1, alpha = fe - 55 + k;
  } else if (!up) {
    a = 2 * mr - 1;
  }
  const int above = above_midpoint(base, num / g, den / g, a, alpha);
  if (above < 0) return *how = 0, r;
  *how = 2;
  return above == up ? nextafter(r, up ? INFINITY : 0.0) : r;
}

/* base^(-num/den) correctly rounded (see rotary_scaling_pow). */
static double pow_cr(const pow_base *b, size_t num, size_t den, int force_exact, int *how) {
  *how = 1;
  if (num == 0) return 1.0;
  const double q = (double)num / (double)den;
  if (!b->normal) return pow(b->base, -q);
  const dd expo = {-q, -fma(-q, (double)den, (double)num) / (double)den}; /* -num/den to 2^-106 */
  int k;
  const dd m = dd_exp(dd_mul(expo, b->ln), &k); /* relative error below 2^-90 (see docs/accuracy.md) */
  double r = m.hi + m.lo;
  const double off = (m.hi - r) + m.lo; /* the double-double minus its nearest double */
  const double up = (nextafter(r, INFINITY) - r) * 0.5, down = (r - nextafter(r, 0.0)) * 0.5, margin = r * 0x1p-85;
  if (force_exact || (off >= 0.0 ? up - off <= margin : down + off <= margin)) r = settle(b->base, num, den, r,
                                                                                        off >= 0.0, k, how);
  const double v = ldexp(r, k); /* exact while v is normal */
  if (v < DBL_MIN) *how = 0;    /* a subnormal result is rounded twice */
  return v;
}

double rotary_scaling_pow(double base, size_t num, size_t den, int force_exact, int *how) {
  const pow_base b = pow_base_of(base);
  int ignored;
  return pow_cr(&b, num, den, force_exact, how ? how : &ignored);
}

/* base^(-2i/d), the unscaled frequency, correctly rounded. */
static double default_freq(const pow_base *b, size_t i, size_t d) {
  int how;
  return pow_cr(b, 2 * i, d, 0, &how);
}

/* YaRN's and LongRoPE's factor: given, or max_position_embeddings / original_max_position_embeddings. */
static double derived_factor(const rotary_scaling *s) {
  return s->factor != 0.0 ? s->factor
                          : (double)s->max_position_embeddings / (double)s->original_max_position_embeddings;
}

static rotary_status check_factors(const double *f, size_t half, const char *name, const char **field) {
  if (!f) FAIL(name, ROTARY_ERR_SCALING);
  for (size_t i = 0; i < half; i++)
    if (!finite_positive(f[i])) FAIL(name, ROTARY_ERR_SCALING);
  return ROTARY_OK;
}

rotary_status rotary_scaling_check(const rotary_config *c, const char **field) {
  const rotary_scaling *s = &c->scaling;
  const size_t half = c->rotary_dim / 2;
  switch (s->type) {
    case ROTARY_SCALING_NONE: return ROTARY_OK;
    case ROTARY_SCALING_LINEAR:
      if (!finite_positive(s->factor)) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      return ROTARY_OK;
    case ROTARY_SCALING_DYNAMIC:
      if (!finite_positive(s->factor)) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (!s->max_position_embeddings) FAIL("scaling.max_position_embeddings", ROTARY_ERR_SCALING);
      if (c->rotary_dim < 4) FAIL("rotary_dim", ROTARY_ERR_SCALING); /* the exponent d / (d - 2) */
      return ROTARY_OK;
    case ROTARY_SCALING_NTK:
      if (!finite_positive(s->factor) || s->factor < 1.0) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (c->rotary_dim < 4) FAIL("rotary_dim", ROTARY_ERR_SCALING);
      return ROTARY_OK;
    case ROTARY_SCALING_YARN:
      if (!s->original_max_position_embeddings) FAIL("scaling.original_max_position_embeddings", ROTARY_ERR_SCALING);
      if (s->factor == 0.0 && !s->max_position_embeddings) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (!finite_positive(derived_factor(s))) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (s->attention_factor != 0.0 && !finite_positive(s->attention_factor))
        FAIL("scaling.attention_factor", ROTARY_ERR_SCALING);
      if (s->beta_fast != 0.0 && !finite_positive(s->beta_fast)) FAIL("scaling.beta_fast", ROTARY_ERR_SCALING);
      if (s->beta_slow != 0.0 && !finite_positive(s->beta_slow)) FAIL("scaling.beta_slow", ROTARY_ERR_SCALING);
      if (!isfinite(s->mscale)) FAIL("scaling.mscale", ROTARY_ERR_SCALING);
      if (!isfinite(s->mscale_all_dim)) FAIL("scaling.mscale_all_dim", ROTARY_ERR_SCALING);
      if (c->base == 1.0) FAIL("base", ROTARY_ERR_SCALING); /* the correction range divides by ln(base) */
      return ROTARY_OK;
    case ROTARY_SCALING_LLAMA3:
      if (!finite_positive(s->factor)) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (!s->original_max_position_embeddings) FAIL("scaling.original_max_position_embeddings", ROTARY_ERR_SCALING);
      if (!finite_positive(s->low_freq_factor)) FAIL("scaling.low_freq_factor", ROTARY_ERR_SCALING);
      if (!finite_positive(s->high_freq_factor) || s->high_freq_factor <= s->low_freq_factor)
        FAIL("scaling.high_freq_factor", ROTARY_ERR_SCALING);
      return ROTARY_OK;
    case ROTARY_SCALING_LONGROPE: {
      if (!s->original_max_position_embeddings) FAIL("scaling.original_max_position_embeddings", ROTARY_ERR_SCALING);
      if (s->factor == 0.0 && !s->max_position_embeddings) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (!finite_positive(derived_factor(s))) FAIL("scaling.factor", ROTARY_ERR_SCALING);
      if (s->attention_factor != 0.0 && !finite_positive(s->attention_factor))
        FAIL("scaling.attention_factor", ROTARY_ERR_SCALING);
      rotary_status st = check_factors(s->short_factor, half, "scaling.short_factor", field);
      return st != ROTARY_OK ? st : check_factors(s->long_factor, half, "scaling.long_factor", field);
    }
  }
  FAIL("scaling.type", ROTARY_ERR_SCALING);
}

/* YaRN's mscale: 0.1 m ln(scale) + 1 for scale > 1, else 1. */
static double yarn_mscale(double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * log(scale) + 1.0; }

/* Dimension (in units of rotary_dim) where the wavelength makes num_rotations turns over the original length. */
static double yarn_correction_dim(double num_rotations, size_t d, double base, size_t original) {
  return ((double)d * log((double)original / (num_rotations * 2.0 * M_PI))) / (2.0 * log(base));
}

static double yarn(const rotary_config *c, double *inv_freq) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim, half = d / 2;
  const double factor = derived_factor(s);
  const double beta_fast = s->beta_fast != 0.0 ? s->beta_fast : 32.0;
  const double beta_slow = s->beta_slow != 0.0 ? s->beta_slow : 1.0;
  double low = yarn_correction_dim(beta_fast, d, c->base, s->original_max_position_embeddings);
  double high = yarn_correction_dim(beta_slow, d, c->base, s->original_max_position_embeddings);
  if (s->truncate) {
    low = floor(low);
    high = ceil(high);
  }
  if (low < 0.0) low = 0.0;
  if (high > (double)(d - 1)) high = (double)(d - 1);
  if (low == high) high += 0.001; /* Hugging Face's guard against a zero-width ramp */
  const pow_base pb = pow_base_of(c->base);
  for (size_t i = 0; i < half; i++) {
    const double extrapolation = default_freq(&pb, i, d);
    const double interpolation = extrapolation / factor;
    double ramp = ((double)i - low) / (high - low);
    ramp = ramp < 0.0 ? 0.0 : ramp > 1.0 ? 1.0 : ramp;
    const double keep = 1.0 - ramp; /* share of the extrapolated (unscaled) frequency */
    inv_freq[i] = interpolation * (1.0 - keep) + extrapolation * keep;
  }
  if (s->attention_factor != 0.0) return s->attention_factor;
  if (s->mscale != 0.0 && s->mscale_all_dim != 0.0)
    return yarn_mscale(factor, s->mscale) / yarn_mscale(factor, s->mscale_all_dim);
  return yarn_mscale(factor, 1.0);
}

static void llama3(const rotary_config *c, double *inv_freq) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim, half = d / 2;
  const double old_len = (double)s->original_max_position_embeddings;
  const double low_wavelen = old_len / s->low_freq_factor, high_wavelen = old_len / s->high_freq_factor;
  const pow_base pb = pow_base_of(c->base);
  for (size_t i = 0; i < half; i++) {
    const double f = default_freq(&pb, i, d), wavelen = 2.0 * M_PI / f;
    if (wavelen < high_wavelen) {
      inv_freq[i] = f;
    } else if (wavelen > low_wavelen) {
      inv_freq[i] = f / s->factor;
    } else {
      const double smooth = (old_len / wavelen - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
      inv_freq[i] = (1.0 - smooth) * f / s->factor + smooth * f;
    }
  }
}

static double longrope(const rotary_config *c, size_t seq_len, double *inv_freq) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim, half = d / 2;
  const double *ext = seq_len > s->original_max_position_embeddings ? s->long_factor : s->short_factor;
  const pow_base pb = pow_base_of(c->base);
  for (size_t i = 0; i < half; i++) inv_freq[i] = default_freq(&pb, i, d) / ext[i];
  if (s->attention_factor != 0.0) return s->attention_factor;
  const double factor = derived_factor(s);
  if (factor <= 1.0) return 1.0;
  return sqrt(1.0 + log(factor) / log((double)s->original_max_position_embeddings));
}

/* Frequencies from a different base, the rest as the default family. */
static void rebased(const rotary_config *c, double base, double *inv_freq) {
  const pow_base pb = pow_base_of(base);
  for (size_t i = 0; i < c->rotary_dim / 2; i++) inv_freq[i] = default_freq(&pb, i, c->rotary_dim);
}

/* The 2-D vision layouts (rotary_dim % 4 == 0, scaling NONE): frequency i < n/2 (n = rotary_dim/2) is the row's
 * base^(-4i/d), frequency n/2 + i the column's: the same value (Qwen2-VL's ViT), or base^(-(4i+2)/d) (Pixtral);
 * each correctly rounded as the default family's base^(-2i/d). */
static void vision(const rotary_config *c, double *inv_freq) {
  const size_t d = c->rotary_dim, quarter = d / 4;
  const int pixtral = c->streams.layout == ROTARY_STREAMS_VISION_2D_PIXTRAL;
  const pow_base pb = pow_base_of(c->base);
  int how;
  for (size_t i = 0; i < quarter; i++) {
    inv_freq[i] = pow_cr(&pb, 4 * i, d, 0, &how);
    inv_freq[quarter + i] = pixtral ? pow_cr(&pb, 4 * i + 2, d, 0, &how) : inv_freq[i];
  }
}

double rotary_scaling_frequencies(const rotary_config *c, size_t seq_len, double *inv_freq) {
  const rotary_scaling *s = &c->scaling;
  const size_t d = c->rotary_dim, half = d / 2;
  const double exponent = (double)d / ((double)d - 2.0);
  if (c->inv_freq) {
    for (size_t i = 0; i < half; i++) inv_freq[i] = c->inv_freq[i];
    return 1.0;
  }
  if (c->streams.layout == ROTARY_STREAMS_VISION_2D || c->streams.layout == ROTARY_STREAMS_VISION_2D_PIXTRAL) {
    vision(c, inv_freq); /* rotary_streams_check allows these only with scaling NONE */
    return 1.0;
  }
  switch (s->type) {
    case ROTARY_SCALING_LINEAR:
    {
      const pow_base pb = pow_base_of(c->base);
      for (size_t i = 0; i < half; i++) inv_freq[i] = default_freq(&pb, i, d) / s->factor;
    }
      return 1.0;
    case ROTARY_SCALING_DYNAMIC: {
      const double mpe = (double)s->max_position_embeddings;
      const double len = seq_len > s->max_position_embeddings ? (double)seq_len : mpe;
      rebased(c, c->base * pow(s->factor * len / mpe - (s->factor - 1.0), exponent), inv_freq);
      return 1.0;
    }
    case ROTARY_SCALING_NTK: rebased(c, c->base * pow(s->factor, exponent), inv_freq); return 1.0;
    case ROTARY_SCALING_YARN: return yarn(c, inv_freq);
    case ROTARY_SCALING_LLAMA3: llama3(c, inv_freq); return 1.0;
    case ROTARY_SCALING_LONGROPE: return longrope(c, seq_len, inv_freq);
    case ROTARY_SCALING_NONE: break;
  }
  rebased(c, c->base, inv_freq);
  return 1.0;
}
