/* tune_search.c: rotary_context_tune's search: candidates timed against the current value in alternating rounds,
 * medians compared by the rule of min_gain, candidates that cannot change a plan skipped, the budget kept. */
#include "tune_search.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "context.h"
#include "rotate_plan.h"

rotary_status rotary_tune_run_alloc(rotary_tune_run *run) {
  const size_t per_round = run->n_descs + 1;
  size_t times, total;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(run->rounds, 2 * per_round, &times), ROTARY_ERR_OUT_OF_MEMORY);
  ROTARY_RETURN_IF(rotary_add_overflow_size(times, run->rounds + 2 * per_round, &total), ROTARY_ERR_OUT_OF_MEMORY);
  ROTARY_RETURN_IF(total > SIZE_MAX / sizeof(double), ROTARY_ERR_OUT_OF_MEMORY);
  run->times = malloc(total * sizeof(double));
  ROTARY_RETURN_IF(!run->times, ROTARY_ERR_OUT_OF_MEMORY);
  run->sorted = run->times + times;
  run->median = run->sorted + run->rounds;
  return ROTARY_OK;
}

void rotary_tune_run_free(rotary_tune_run *run) {
  free(run->times);
  run->times = run->sorted = run->median = NULL;
}

double rotary_tune_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

rotary_status rotary_tune_round(const rotary_tune_run *run, const rotary_tuning *t, double *times) {
  rotary_context_set_tuning(run->ctx, t);
  double total = 0;
  for (size_t i = 0; i < run->n_descs; i++) {
    const double t0 = rotary_tune_now();
    const rotary_status st = rotary_apply(run->ctx, run->rope, &run->descs[i]);
    times[i] = rotary_tune_now() - t0;
    if (st != ROTARY_OK) return st;
    total += times[i];
  }
  times[run->n_descs] = total;
  return ROTARY_OK;
}

static int compare_doubles(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of column `col` of one side's rounds (rows of `stride` doubles). */
static double column_median(const rotary_tune_run *run, const double *side, size_t stride, size_t col) {
  const size_t n = run->rounds;
  for (size_t r = 0; r < n; r++) run->sorted[r] = side[r * stride + col];
  qsort(run->sorted, n, sizeof(double), compare_doubles);
  return n % 2 ? run->sorted[n / 2] : 0.5 * (run->sorted[n / 2 - 1] + run->sorted[n / 2]);
}

rotary_status rotary_tune_compare(rotary_tune_run *run, const rotary_tuning *a, const rotary_tuning *b,
                                  double stop_at, int *complete) {
  const size_t stride = run->n_descs + 1;
  double *side[2] = {run->times, run->times + run->rounds * stride};
  *complete = 0;
  for (size_t r = 0; r < run->rounds; r++) {
    rotary_status st = rotary_tune_round(run, a, side[0] + r * stride);
    if (st == ROTARY_OK) st = rotary_tune_round(run, b, side[1] + r * stride);
    if (st != ROTARY_OK) return st;
    if (rotary_tune_now() > stop_at) return ROTARY_OK;
  }
  for (int s = 0; s < 2; s++)
    for (size_t c = 0; c < stride; c++) run->median[(size_t)s * stride + c] = column_median(run, side[s], stride, c);
  *complete = 1;
  return ROTARY_OK;
}

int rotary_tune_b_wins(const rotary_tune_run *run) {
  const size_t n = run->n_descs, stride = n + 1;
  const double *ma = run->median, *mb = run->median + stride;
  if (!(mb[n] < ma[n] * (1.0 - run->min_gain))) return 0;
  for (size_t i = 0; i < n; i++)
    if (mb[i] > ma[i] * (1.0 + run->min_gain)) return 0;
  /* and b's round is the faster one in at least 3 of every 4 pairs: on a shared machine a few slow rounds of a
   * move the medians enough to pass the rule above (a search picked prefetch 512 for bf16 by -20% that the same
   * rows then ran 5-25% slower with); under noise alone 6 or more of 7 pairs happen 6% of the time */
  const double *ta = run->times, *tb = run->times + run->rounds * stride;
  size_t wins = 0;
  for (size_t r = 0; r < run->rounds; r++) wins += tb[r * stride + n] < ta[r * stride + n];
  return 4 * wins >= 3 * run->rounds;
}

/* Candidates skipped without timing (cheap, and right by construction): a setting other than prefetch_bytes acts
 * only through the plan rotary_apply builds (rotate_plan.c: stream_store_bytes picks the store kind,
 * head_group the head groups of the walk order, thread_bytes and tasks_per_thread the threads woken and the tasks;
 * task_split.h). When every call's plan, built and split by the same functions rotary_apply uses with ctx's
 * threads, has the same kernels, store kinds, groups, threads and tasks under the candidate as under the current
 * value, the calls run the very same code: e.g. stream stores when every call is in place or writes less than any
 * threshold tried, the head group when no tensor is heads-major, the thread split on a one-thread context.
 * prefetch_bytes reaches the kernels through the plan's per-tensor distances and is always timed (the plans are
 * compared on those too, should it ever be skipped). A skipped candidate is not counted in the report's
 * candidates (values timed). */
static int plans_differ(const rotary_tune_run *run, rotary_setting s, const rotary_tuning *a, const rotary_tuning *b) {
  if (s != ROTARY_SETTING_STREAM_STORE_BYTES && s != ROTARY_SETTING_HEAD_GROUP && s != ROTARY_SETTING_THREAD_BYTES &&
      s != ROTARY_SETTING_TASKS_PER_THREAD)
    return 1;
  for (size_t i = 0; i < run->n_descs; i++) {
    rotary_rotate_plan pa, pb;
    if (rotary_rotate_plan_build(&pa, run->rope, &run->descs[i], a) != ROTARY_OK ||
        rotary_rotate_plan_build(&pb, run->rope, &run->descs[i], b) != ROTARY_OK)
      return 1; /* the call itself will report it */
    rotary_rotate_plan_split(&pa, run->n_threads);
    rotary_rotate_plan_split(&pb, run->n_threads);
    for (int t = 0; t < 2; t++)
      if (pa.kernel[t] != pb.kernel[t] || pa.nontemporal[t] != pb.nontemporal[t] || pa.group[t] != pb.group[t] ||
          pa.prefetch[t] != pb.prefetch[t])
        return 1;
    if (pa.threads != pb.threads || pa.tasks != pb.tasks) return 1;
  }
  return 0;
}

/* Seconds the rest of the run needs besides the search: the final comparison (tune.c). */
static double reserve(const rotary_tune_run *run) { return 2.0 * (double)run->rounds * run->estimate; }

/* Times one candidate against *current. *timed: it ran to the end (else the budget ran out: not started, or
 * stopped); *current takes it when it wins. */
static rotary_status try_candidate(rotary_tune_run *run, rotary_tuning *current, const rotary_tuning *candidate,
                                   int *timed) {
  *timed = 0;
  const double stop_at = run->deadline - reserve(run);
  if (rotary_tune_now() + 2.0 * (double)run->rounds * run->estimate > stop_at) return ROTARY_OK;
  int complete;
  rotary_status st = rotary_tune_compare(run, current, candidate, stop_at, &complete);
  if (st != ROTARY_OK || !complete) return st;
  *timed = 1;
  const size_t n = run->n_descs;
  if (rotary_tune_b_wins(run)) {
    *current = *candidate;
    run->estimate = run->median[2 * n + 1];
  } else {
    run->estimate = run->median[n];
  }
  return ROTARY_OK;
}

/* The order settings are searched in: how the work is split first (the largest effects measured), then the walk
 * order, the store kind, the prefetch distance. */
static const rotary_setting search_order[ROTARY_SETTING_COUNT] = {
    ROTARY_SETTING_THREAD_BYTES, ROTARY_SETTING_TASKS_PER_THREAD, ROTARY_SETTING_HEAD_GROUP,
    ROTARY_SETTING_STREAM_STORE_BYTES, ROTARY_SETTING_PREFETCH_BYTES};

rotary_status rotary_tune_search(rotary_tune_run *run, unsigned mask, rotary_tuning *current, size_t *candidates,
                                 int *out_of_time) {
  for (int k = 0; k < ROTARY_SETTING_COUNT; k++) {
    const rotary_setting s = search_order[k];
    const rotary_setting_info *info = rotary_setting_info_of(s);
    if (!(mask & (1u << s)) || !info || !info->candidates) continue;
    for (const int64_t *c = info->candidates; *c != INT64_MIN; c++) {
      if (*c < info->min || *c > info->max || *c == rotary_tuning_get(current, s)) continue;
      rotary_tuning candidate = *current;
      rotary_tuning_put(&candidate, s, *c, ROTARY_SOURCE_TUNED);
      if (!plans_differ(run, s, current, &candidate)) continue;
      int timed;
      rotary_status st = try_candidate(run, current, &candidate, &timed);
      if (st != ROTARY_OK) return st;
      if (!timed) {
        *out_of_time = 1;
        return ROTARY_OK;
      }
      ++*candidates;
    }
  }
  return ROTARY_OK;
}
