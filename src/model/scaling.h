/* scaling.h: the frequency-scaling families (linear, dynamic NTK, NTK-aware, YaRN, Llama 3, LongRoPE). */
#ifndef ROTARY_SCALING_H
#define ROTARY_SCALING_H

#include "rotary.h"

/* Validates the family's parameters of a config without inv_freq whose dims and base are already valid; on error
 * *field (when field is not NULL) names the offending field. */
rotary_status rotary_scaling_check(const rotary_config *c, const char **field);

/* Writes the rotary_dim/2 inverse frequencies of a checked config at the current sequence length seq_len and
 * returns the family's attention factor (1 for families without one). */
double rotary_scaling_frequencies(const rotary_config *c, size_t seq_len, double *inv_freq);

/* base^(-num/den) for num < den, correctly rounded to fp64, for base in [DBL_MIN, DBL_MAX] (otherwise libm's pow):
 * double-double ln and exp (error below 2^-90 relative); when that lies within 2^-85 relative of a midpoint between
 * two doubles, an exact integer comparison with the midpoint settles it (for num + den <= 4096 once reduced).
 * *how (when not NULL): 1 settled by the double-double, 2 by the integers, 0 not settled (a subnormal result, or
 * the comparison not attempted); force_exact makes every value go through the integers (tests). */
double rotary_scaling_pow(double base, size_t num, size_t den, int force_exact, int *how);

#endif /* ROTARY_SCALING_H */
