/* oracle_exact.h: correctly rounded fp32 cos/sin of the exact angle pos * w (w a double taken as exact), scaled. */
#ifndef ORACLE_EXACT_H
#define ORACLE_EXACT_H

#include <stdint.h>

/* Which path decided a value: the fast double path, long double, MPFR, or none (see oracle_exact_cos_sin). */
typedef enum oracle_path { ORACLE_FAST = 0, ORACLE_LONG_DOUBLE = 1, ORACLE_MPFR = 2, ORACLE_UNDECIDED = 3 } oracle_path;

/* Nonzero when the tests were built with MPFR (the arm64 cross build has none). */
int oracle_have_mpfr(void);

/*
 * *c, *s = cos and sin of the real number pos * w, times scaling, rounded once to fp32 (nearest even). Shares no
 * code with the library: the product is split exactly with integer arithmetic (pos * mantissa(w) as a 128-bit
 * integer) into hi + lo; the fast path corrects libm's double sincos(hi) by the Taylor terms of lo and rounds when
 * the whole error margin rounds alike. Otherwise long double (a 64-bit hi), then MPFR at 256 bits, decide. Returns
 * the deciding path (the largest of the two values); ORACLE_UNDECIDED (only without MPFR): the rounding of the best
 * estimate, which may be 1 ulp off. pos >= 0, w > 0 finite.
 */
oracle_path oracle_exact_cos_sin(int64_t pos, double w, double scaling, float *c, float *s);

/* The MPFR path alone (ORACLE_UNDECIDED without MPFR, outputs then unset). */
oracle_path oracle_exact_cos_sin_mpfr(int64_t pos, double w, double scaling, float *c, float *s);

#endif /* ORACLE_EXACT_H */
