/* true_sweep.c: sweeps the cos/sin values of a table-free rope against the correctly rounded true values. */
#include "true_sweep.h"

#include <stdio.h>
#include <stdlib.h>

#include "oracle_exact.h"
#include "rotary.h"
#include "test_util.h"

#define SWEEP_CHUNK 2048 /* positions per rotary_rope_cos_sin call */

void tu_true_check(float got, float cr, int path, tu_true_stats *st) {
  uint64_t d = tu_ulp_dist_f32(got, cr);
  st->entries++;
  st->slow += path == ORACLE_LONG_DOUBLE || path == ORACLE_MPFR;
  st->undecided += path == ORACLE_UNDECIDED;
  if (d) st->not_cr++;
  if (d > 1) {
    if (st->over_1ulp < 5) printf("  over 1 ulp: got %.9g correctly rounded %.9g (%llu ulp)\n", (double)got,
                                  (double)cr, (unsigned long long)d);
    st->over_1ulp++;
  }
  if (d > st->max_ulp) st->max_ulp = d;
}

void tu_true_check_row(int64_t pos, const double *inv_freq, size_t half, double scaling, const float *cos,
                       const float *sin, tu_true_stats *st) {
  for (size_t i = 0; i < half; i++) {
    float cr_c, cr_s;
    int path = (int)oracle_exact_cos_sin(pos, inv_freq[i], scaling, &cr_c, &cr_s);
    tu_true_check(cos[i], cr_c, path, st);
    tu_true_check(sin[i], cr_s, path, st);
  }
}

void tu_true_print(const char *what, const tu_true_stats *st) {
  printf("[%s] entries %llu  max %llu ulp vs truth  not correctly rounded %llu (%.3g%%)  >1ulp %llu  slow oracle "
         "%llu  undecided %llu\n",
         what, (unsigned long long)st->entries, (unsigned long long)st->max_ulp, (unsigned long long)st->not_cr,
         st->entries ? 100.0 * (double)st->not_cr / (double)st->entries : 0.0, (unsigned long long)st->over_1ulp,
         (unsigned long long)st->slow, (unsigned long long)st->undecided);
}

int tu_true_sweep_range(const double *inv_freq, size_t half, double scaling, int64_t begin, int64_t end,
                        int64_t step, tu_true_stats *st) {
  rotary_config cfg;
  rotary_config_init(&cfg, 2 * half);
  cfg.inv_freq = inv_freq;
  cfg.attention_scaling = scaling;
  rotary_rope *rope = NULL;
  if (rotary_rope_create(&cfg, 0, &rope) != ROTARY_OK) return -1;
  int64_t *pos = malloc(SWEEP_CHUNK * sizeof *pos);
  float *c = malloc(SWEEP_CHUNK * half * sizeof *c), *s = malloc(SWEEP_CHUNK * half * sizeof *s);
  int rc = pos && c && s ? 0 : -1;
  for (int64_t p0 = begin; rc == 0 && p0 < end; p0 += step * SWEEP_CHUNK) {
    size_t n = 0;
    for (int64_t p = p0; p < end && n < SWEEP_CHUNK; p += step) pos[n++] = p;
    if (rotary_rope_cos_sin(rope, pos, n, c, s) != ROTARY_OK) rc = -1;
    for (size_t j = 0; rc == 0 && j < n; j++)
      tu_true_check_row(pos[j], inv_freq, half, scaling, c + j * half, s + j * half, st);
  }
  free(pos);
  free(c);
  free(s);
  rotary_rope_destroy(rope);
  return rc;
}

int tu_true_sweep(const double *inv_freq, size_t half, double scaling, int64_t n_positions, tu_true_stats *st) {
  if (!tu_quick()) return tu_true_sweep_range(inv_freq, half, scaling, 0, n_positions, 1, st);
  int64_t first = n_positions < 4096 ? n_positions : 4096;
  int rc = tu_true_sweep_range(inv_freq, half, scaling, 0, first, 1, st);
  if (rc == 0 && n_positions > 4096) rc = tu_true_sweep_range(inv_freq, half, scaling, 4096, n_positions, 997, st);
  return rc;
}
