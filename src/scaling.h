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

/* base^(-num/den) for num < den correctly rounded to fp64 (double-double ln and exp, error below 2^-90 relative),
 * for base in [DBL_MIN, DBL_MAX] (otherwise libm's pow). When decided is not NULL, *decided is 0 if the rounding
 * could not be proven (the double-double within 2^-85 relative of a midpoint, or a subnormal result). */
double rotary_scaling_pow(double base, size_t num, size_t den, int *decided);

#endif /* ROTARY_SCALING_H */
