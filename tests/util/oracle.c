/* oracle.c: an fp64/long-double RoPE reference that shares no code with the library, plus the per-pair checker. */
#include "oracle.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

#include "test_util.h"

long double oracle_inv_freq(double base, size_t rotary_dim, size_t i) {
  long double e = -(long double)(2 * i) / (long double)rotary_dim;
  return powl((long double)base, e);
}

void oracle_inv_freqs(double base, size_t rotary_dim, long double *inv_freq) {
  for (size_t i = 0; i < rotary_dim / 2; i++) inv_freq[i] = oracle_inv_freq(base, rotary_dim, i);
}

void oracle_cos_sin_true(int64_t pos, const long double *inv_freq, size_t half, long double scaling,
                         long double *c, long double *s) {
  for (size_t i = 0; i < half; i++) {
    long double angle = (long double)pos * inv_freq[i]; /* pos < 2^63 is exact in a 64-bit mantissa */
    c[i] = cosl(angle) * scaling;
    s[i] = sinl(angle) * scaling;
  }
}

float oracle_round_f32(long double x) { return (float)x; }

void oracle_pair_index(rotary_pairing pairing, size_t rotary_dim, size_t i, size_t *a, size_t *b) {
  if (pairing == ROTARY_PAIRING_HALF) {
    *a = i;
    *b = i + rotary_dim / 2;
  } else {
    *a = 2 * i;
    *b = 2 * i + 1;
  }
}

void oracle_rotate_pair(long double x0, long double x1, long double c, long double s, int inverse, long double *y0,
                        long double *y1) {
  if (inverse) s = -s; /* cos(-t) = cos t, sin(-t) = -sin t */
  *y0 = x0 * c - x1 * s;
  *y1 = x0 * s + x1 * c;
}

void oracle_rotate_row(const long double *x, size_t head_dim, size_t rotary_dim, rotary_pairing pairing,
                       const long double *c, const long double *s, int inverse, long double *y) {
  for (size_t d = rotary_dim; d < head_dim; d++) y[d] = x[d];
  for (size_t i = 0; i < rotary_dim / 2; i++) {
    size_t a, b;
    oracle_pair_index(pairing, rotary_dim, i, &a, &b);
    oracle_rotate_pair(x[a], x[b], c[i], s[i], inverse, &y[a], &y[b]);
  }
}

void oracle_rotate_row_f64(const double *x, size_t head_dim, size_t rotary_dim, rotary_pairing pairing,
                           const double *c, const double *s, int inverse, double *y) {
  for (size_t d = rotary_dim; d < head_dim; d++) y[d] = x[d];
  for (size_t i = 0; i < rotary_dim / 2; i++) {
    size_t a, b;
    long double y0, y1;
    oracle_pair_index(pairing, rotary_dim, i, &a, &b);
    oracle_rotate_pair(x[a], x[b], c[i], s[i], inverse, &y0, &y1);
    y[a] = (double)y0;
    y[b] = (double)y1;
  }
}

void oracle_formula_f32(float x0, float x1, float c, float s, float *y0, float *y1) {
  float x1s = x1 * s;
  float x1c = x1 * c;
  *y0 = fmaf(x0, c, -x1s);
  *y1 = fmaf(x0, s, x1c);
}

/* ---- checker ---- */

/* One output of a pair: its exact values (used c,s and true c,s), mixed magnitudes and the formula's bits. */
typedef struct one_out {
  long double exact, mixed, exact_t, mixed_t;
  uint32_t ref_bits;
  int index;
} one_out;

static void report(const oracle_pair *p, const one_out *o, uint32_t out, const char *what, oracle_stats *st) {
  if (st->printed >= 8) return;
  st->printed++;
  printf("  FAIL %s: %s out[%d] bits 0x%08x (%.9g) formula 0x%08x exact %.12Lg true %.12Lg | x0 %.9g x1 %.9g "
         "c %.9g s %.9g\n",
         what, tu_dtype_name(p->dtype), o->index, (unsigned)out, (double)tu_bits_value(p->dtype, out),
         (unsigned)o->ref_bits, o->exact, o->exact_t, (double)p->x0, (double)p->x1, (double)p->c, (double)p->s);
}

static int check_bits(const oracle_pair *p, const one_out *o, uint32_t out, oracle_stats *st) {
  int ok = tu_bits_isnan(p->dtype, o->ref_bits) ? tu_bits_isnan(p->dtype, out) : out == o->ref_bits;
  if (!ok) {
    st->fail_bits++;
    report(p, o, out, "bits", st);
  }
  return ok;
}

/* Error in the figure's units and the bound, for a comparison against exact with mixed magnitude m. */
static void error_units(rotary_dtype dt, long double err, long double exact, long double m, double extra_units,
                        long double extra_abs, double *units, long double *bound) {
  const long double eps = FLT_EPSILON;
  if (dt == ROTARY_F32) {
    *units = (double)(err / (eps * m + FLT_TRUE_MIN));
    *bound = extra_units * eps * m + extra_abs + 2.0L * FLT_TRUE_MIN;
  } else {
    /* f16/bf16: 1 ulp of the type for the final rounding plus the fp32 error, which under cancellation
     * (|x0 c| and |x1 s| nearly equal) can be large next to the result's own ulp. */
    long double u = tu_ulp(dt, exact);
    *units = (double)(err / u);
    *bound = u + extra_units * eps * m + extra_abs;
  }
}

static int check_accuracy(const oracle_pair *p, const one_out *o, uint32_t out, oracle_stats *st) {
  long double v = tu_bits_value(p->dtype, out);
  long double abs_x = fabsl((long double)p->x0) + fabsl((long double)p->x1);
  long double err = fabsl(v - o->exact), err_t = fabsl(v - o->exact_t);
  double units, units_t, same_units;
  long double bound, bound_t, plain_t; /* plain_t: the truth bound without the angle allowance */
  error_units(p->dtype, err, o->exact, o->mixed, 2.0, 0.0L, &units, &bound);
  error_units(p->dtype, err_t, o->exact_t, o->mixed_t, p->true_units, p->true_abs * abs_x, &units_t, &bound_t);
  error_units(p->dtype, err_t, o->exact_t, o->mixed_t, p->true_units, 0.0L, &same_units, &plain_t);
  if (units > st->max_err) st->max_err = units;
  /* Where the fp64 angle's own error is a sizeable part of the bound, the truth figure measures the angle, not
   * the rotation: such outputs are checked against the bound but left out of the figure. */
  if (p->true_abs * abs_x > 0.25L * plain_t) st->angle_limited++;
  else if (units_t > st->max_err_true) st->max_err_true = units_t;
  double use = (double)fmaxl(err / bound, err_t / bound_t);
  if (use > st->max_bound_use) st->max_bound_use = use;
  int ok = 1;
  if (err > bound) {
    st->fail_bound++;
    report(p, o, out, "bound", st);
    ok = 0;
  }
  if (err_t > bound_t) {
    st->fail_true++;
    report(p, o, out, "true-bound", st);
    ok = 0;
  }
  return ok;
}

int oracle_check_pair(const oracle_pair *p, uint32_t out0, uint32_t out1, oracle_stats *st) {
  long double x0 = p->x0, x1 = p->x1, c = p->c, s = p->s;
  float y0, y1;
  oracle_formula_f32(p->x0, p->x1, p->c, p->s, &y0, &y1);
  one_out o[2] = {
      {x0 * c - x1 * s, fabsl(x0 * c) + fabsl(x1 * s), x0 * p->ct - x1 * p->st,
       fabsl(x0 * p->ct) + fabsl(x1 * p->st), tu_round_bits(p->dtype, y0), 0},
      {x0 * s + x1 * c, fabsl(x0 * s) + fabsl(x1 * c), x0 * p->st + x1 * p->ct,
       fabsl(x0 * p->st) + fabsl(x1 * p->ct), tu_round_bits(p->dtype, y1), 1},
  };
  uint32_t out[2] = {out0, out1};
  int ok = 1;
  st->pairs++;
  for (int k = 0; k < 2; k++) {
    ok &= check_bits(p, &o[k], out[k], st);
    /* Non-finite results (NaN, Inf inputs or overflow) have no error figure: the class check above covers them. */
    if (!isfinite(tu_bits_value(p->dtype, o[k].ref_bits)) || !isfinite(o[k].exact)) continue;
    ok &= check_accuracy(p, &o[k], out[k], st);
  }
  return ok ? 0 : 1;
}

void oracle_stats_merge(oracle_stats *into, const oracle_stats *from) {
  if (from->max_err > into->max_err) into->max_err = from->max_err;
  if (from->max_err_true > into->max_err_true) into->max_err_true = from->max_err_true;
  if (from->max_bound_use > into->max_bound_use) into->max_bound_use = from->max_bound_use;
  into->angle_limited += from->angle_limited;
  into->pairs += from->pairs;
  into->fail_bound += from->fail_bound;
  into->fail_true += from->fail_true;
  into->fail_bits += from->fail_bits;
}

int oracle_stats_ok(const oracle_stats *st) {
  return st->fail_bound == 0 && st->fail_true == 0 && st->fail_bits == 0;
}
