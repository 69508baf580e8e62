/* true_sweep.h: sweeps the cos/sin values of a table-free rope against the correctly rounded true values. */
#ifndef TRUE_SWEEP_H
#define TRUE_SWEEP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tu_true_stats {
  uint64_t entries;   /* cos and sin values checked */
  uint64_t max_ulp;   /* largest distance, in fp32 ulps, to the correctly rounded true value */
  uint64_t not_cr;    /* values that are not the correctly rounded true value */
  uint64_t over_1ulp; /* values more than 1 ulp from it (the contract allows none) */
  uint64_t slow;      /* values the oracle decided by long double or MPFR instead of its fast path */
  uint64_t undecided; /* values no oracle path could round with certainty (builds without MPFR): compared anyway */
} tu_true_stats;

/*
 * Creates a table-free rope with these inverse frequencies (rotary_dim = head_dim = 2 * half, half >= 1) and
 * attention scaling, reads its cos/sin rows through rotary_rope_cos_sin for positions [0, n_positions) (quick
 * mode, ROTARY_TEST_QUICK: the first 4096 and every 997th after), and adds to *st each value's distance to the
 * correctly rounded fp32 of cos/sin(pos * inv_freq[i]) * scaling, the angle an exact real number
 * (oracle_exact.h). Returns 0, or -1 when the rope cannot be made or a call fails.
 */
int tu_true_sweep(const double *inv_freq, size_t half, double scaling, int64_t n_positions, tu_true_stats *st);

/* The same over positions begin, begin + step, ... below end (every position: step 1), whatever the mode. */
int tu_true_sweep_range(const double *inv_freq, size_t half, double scaling, int64_t begin, int64_t end,
                        int64_t step, tu_true_stats *st);

/* One value against its correctly rounded reference (path: the oracle path that decided it). */
void tu_true_check(float got, float cr, int path, tu_true_stats *st);

/* Checks one row: cos[i], sin[i] of position pos against the truth for inv_freq[i], i < half. */
void tu_true_check_row(int64_t pos, const double *inv_freq, size_t half, double scaling, const float *cos,
                       const float *sin, tu_true_stats *st);

/* Prints "[what] entries N  max U ulp vs truth  not correctly rounded K (P%)  >1ulp M  slow S  undecided D". */
void tu_true_print(const char *what, const tu_true_stats *st);

#endif /* TRUE_SWEEP_H */
