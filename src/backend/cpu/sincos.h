/* sincos.h: the cos/sin row kernels (fp64 sincos of exact angles, one rounding to fp32) and their registry. */
#ifndef ROTARY_SINCOS_H
#define ROTARY_SINCOS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h" /* rotary_isa */

/*
 * A rows kernel writes, for i < half,
 *     cos[i] = (float)(C_i * scaling)    sin[i] = (float)(S_i * scaling)
 * where C_i, S_i are fp64 approximations of cos and sin of the EXACT real angle pos * inv_freq[i] (inv_freq[i]
 * taken as the exact value of its double): the product is kept as a double-double (hi = p*w, lo = fma(p, w, -hi)),
 * reduced modulo pi/2 against a three-double pi/2 (Cody-Waite with fma: hi - k P1 exact, the small terms
 * lo - k P2 - k P3 in two fma), and evaluated by polynomials on the reduced double-double. Angles the fast
 * reduction cannot vouch for (hi >= 2^45, or a reduced angle below 2^-49 hi, where its relative error could exceed
 * 2^-55) are reduced exactly by rotary_sincos_exact. Every variant performs the same operations with
 * fma in the same places, so all variants give the same bits. inv_freq[i] > 0 finite, 0 <= pos < 2^53.
 */
typedef void (*rotary_rows_fn)(const double *inv_freq, size_t half, double scaling, int64_t pos, float *cos,
                               float *sin);

typedef struct rotary_rows_kernel {
  const char *name; /* rotary_sincos_rows__<isa> */
  rotary_isa isa;
  rotary_rows_fn fn;
} rotary_rows_kernel;

#define ROTARY_ROWS(isa, ISA)                                                                                   \
  void rotary_sincos_rows__##isa(const double *inv_freq, size_t half, double scaling, int64_t pos, float *cos, \
                                 float *sin);
#include "rows_list.h"
#undef ROTARY_ROWS

/* Every compiled rows kernel (tests run each one the CPU supports). */
extern const rotary_rows_kernel rotary_rows_list[];
extern const size_t rotary_rows_count;

/* The best enabled rows kernel on this CPU (ROTARY_ISA caps it like the rotation kernels); never NULL. */
const rotary_rows_kernel *rotary_rows_select(void);

/* The slow, exact path for one angle pos * w: Payne-Hanek reduction of the exact product (any finite w > 0, even
 * one whose product overflows fp64) to a double-double r in [-pi/4, pi/4] and quadrant q, then the scalar
 * polynomials (rotary_sincos_finish). The same function serves every variant. */
void rotary_sincos_exact(int64_t pos, double w, double scaling, float *cos, float *sin);

/* The polynomial stage of the scalar variant: cos/sin of r_hi + r_lo in quadrant q, times scaling, to fp32. */
void rotary_sincos_finish(double r_hi, double r_lo, unsigned q, double scaling, float *cos, float *sin);

#endif /* ROTARY_SINCOS_H */
