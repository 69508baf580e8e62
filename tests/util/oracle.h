/* oracle.h: an fp64/long-double RoPE reference that shares no code with the library, plus the per-pair checker. */
#ifndef ORACLE_H
#define ORACLE_H

#include <stddef.h>
#include <stdint.h>
#include "rotary.h" /* enum values only */

/* inv_freq_i = base^(-2i/rotary_dim) in long double (powl of an exact long-double exponent). */
long double oracle_inv_freq(double base, size_t rotary_dim, size_t i);
void oracle_inv_freqs(double base, size_t rotary_dim, long double *inv_freq); /* rotary_dim/2 values */

/* "True" cos and sin: angle = pos * inv_freq[i] in long double, cosl/sinl, times scaling. half = rotary_dim/2. */
void oracle_cos_sin_true(int64_t pos, const long double *inv_freq, size_t half, long double scaling,
                         long double *c, long double *s);

/* Round a long double to fp32 once (nearest even). */
float oracle_round_f32(long double x);

/* The pair (a, b) that dimension-pair i rotates. */
void oracle_pair_index(rotary_pairing pairing, size_t rotary_dim, size_t i, size_t *a, size_t *b);

/* Exact rotation of one pair: forward x0' = x0 c - x1 s, x1' = x0 s + x1 c; inverse uses the opposite angle. */
void oracle_rotate_pair(long double x0, long double x1, long double c, long double s, int inverse, long double *y0,
                        long double *y1);

/* Rotates one head row of head_dim values: rotated pairs from c/s (rotary_dim/2 each), the rest copied. */
void oracle_rotate_row(const long double *x, size_t head_dim, size_t rotary_dim, rotary_pairing pairing,
                       const long double *c, const long double *s, int inverse, long double *y);
void oracle_rotate_row_f64(const double *x, size_t head_dim, size_t rotary_dim, rotary_pairing pairing,
                           const double *c, const double *s, int inverse, double *y);

/* The documented fp32 formula every kernel must match bit for bit:
 *   y0 = fmaf(x0, c, -(x1 * s)),  y1 = fmaf(x0, s, x1 * c). */
void oracle_formula_f32(float x0, float x1, float c, float s, float *y0, float *y1);

/* One rotated pair to check. s and st already carry the direction (inverse: negated). */
typedef struct oracle_pair {
  rotary_dtype dtype;
  float x0, x1;             /* inputs, exact values of dtype */
  float c, s;               /* fp32 cos and sin the call used */
  long double ct, st;       /* true cos and sin (scaling included) */
  double true_units;        /* bound against the truth, in FLT_EPSILON * (|x0 ct| + |x1 st|) */
  long double true_abs;     /* extra absolute bound against the truth per unit of |x0| + |x1| (angle error) */
} oracle_pair;

/* Accumulated figures. For f32 errors are in FLT_EPSILON * (|x0 c| + |x1 s|); for f16/bf16 in ulps of the type. */
typedef struct oracle_stats {
  double max_err;      /* against the exact rotation with the fp32 c, s that were used */
  double max_err_true; /* against the exact rotation with the true cos, sin (pairs not dominated by true_abs) */
  double max_bound_use; /* largest error / bound over both comparisons: <= 1 passes */
  size_t angle_limited; /* outputs left out of max_err_true: the fp64 angle allowance dominates (huge positions) */
  size_t pairs;
  size_t fail_bound;   /* outside the bound with the used c, s */
  size_t fail_true;    /* outside the bound against the truth */
  size_t fail_bits;    /* not bit-identical to the fp32 formula (NaN: class only) */
  size_t printed;      /* diagnostics printed so far (capped) */
} oracle_stats;

/*
 * Checks outputs (raw bits of dtype) of one pair; returns 0 when every check passes. Prints the first failures.
 * With M = |x0 c| + |x1 s| for out[a] (|x0 s| + |x1 c| for out[b]) and exact = the long-double rotation:
 *   bits  out equals the fp32 formula rounded once to dtype (a NaN only needs to be a NaN);
 *   f32   |out - exact(c, s)| <= 2 FLT_EPSILON M (+ 2 FLT_TRUE_MIN for subnormal results): the formula's two
 *         roundings cost at most 1 FLT_EPSILON M;
 *   f16/bf16  |out - exact(c, s)| <= ulp_dtype(exact) + 2 FLT_EPSILON M: the final rounding costs half an ulp of
 *         the type (up to one when the fp32 result crosses a binade), and under cancellation (|x0 c| close to
 *         |x1 s|) the fp32 error, though tiny next to M, can exceed the result's own ulp, so it is allowed on top;
 *   truth the same against the true cos/sin with true_units in place of 2, plus true_abs * (|x0| + |x1|).
 */
int oracle_check_pair(const oracle_pair *p, uint32_t out0, uint32_t out1, oracle_stats *st);
void oracle_stats_merge(oracle_stats *into, const oracle_stats *from);
int oracle_stats_ok(const oracle_stats *st);

#endif /* ORACLE_H */
