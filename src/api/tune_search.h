/* tune_search.h: rotary_context_tune's measurements: rounds of calls, alternating comparisons, the search itself. */
#ifndef ROTARY_TUNE_SEARCH_H
#define ROTARY_TUNE_SEARCH_H

#include <stddef.h>

#include "rotary.h"
#include "tuning.h"

/* One tuning run: validated calls, its statistics and its buffers. */
typedef struct rotary_tune_run {
  rotary_context *ctx;
  const rotary_rope *rope;
  const rotary_apply_desc *descs; /* validated */
  size_t n_descs;
  size_t n_threads;               /* ctx's threads when the run started (the plans' split) */
  size_t rounds;                  /* timed rounds per side of a comparison, >= 3 */
  double min_gain;                /* in [0, 1) */
  double *times;    /* [2][rounds][n_descs + 1]: each call's seconds in a round and (last) the round's total */
  double *sorted;   /* rounds: a median's scratch */
  double *median;   /* [2][n_descs + 1]: the last comparison's medians, side a then side b, totals last */
  double estimate;  /* seconds one round is expected to take (the current value's last median total) */
  double deadline;  /* monotonic seconds when the budget runs out */
} rotary_tune_run;

/* Allocates run's buffers for its n_descs and rounds. Errors: OUT_OF_MEMORY (also when the size overflows). */
rotary_status rotary_tune_run_alloc(rotary_tune_run *run);
void rotary_tune_run_free(rotary_tune_run *run);

/* Monotonic clock in seconds. */
double rotary_tune_now(void);

/* Runs every call once under t, each one timed; times[n_descs] receives the round's total. A call's error is
 * returned as it is. */
rotary_status rotary_tune_round(const rotary_tune_run *run, const rotary_tuning *t, double *times);

/* Times a against b in alternating rounds (a, b, a, b, ...), `rounds` each, and leaves the medians in
 * run->median. When the clock passes stop_at after a pair of rounds, stops early with *complete = 0 (the medians are
 * then not computed). ctx is left with whichever tuning ran last. */
rotary_status rotary_tune_compare(rotary_tune_run *run, const rotary_tuning *a, const rotary_tuning *b,
                                  double stop_at, int *complete);

/* The rule of min_gain on the last complete comparison: side b's total median falls by more than min_gain, no
 * call's median rises by more than it, and b's round total is below a's in at least 3 of every 4 pairs. */
int rotary_tune_b_wins(const rotary_tune_run *run);

/* The search: for each setting of mask, each candidate against *current, a winner replacing it (source TUNED).
 * Stops when the budget runs out (*out_of_time = 1); counts the candidates timed in *candidates. */
rotary_status rotary_tune_search(rotary_tune_run *run, unsigned mask, rotary_tuning *current, size_t *candidates,
                                 int *out_of_time);

#endif /* ROTARY_TUNE_SEARCH_H */
