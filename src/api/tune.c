/* tune.c: rotary_context_tune: checks everything, warms up, searches the settings (tune_search.c), confirms what it
 * found against the starting values in a final comparison (the report's times), and leaves the winners in ctx. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "context.h"
#include "tune_search.h"
#include "tuning.h"
#include "validate.h"

/* The most calls one tuning run takes (rotary.h). */
#define ROTARY_TUNE_MAX_DESCS 64

void rotary_tune_options_init(rotary_tune_options *options) {
  if (!options) return;
  memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->seconds = 10.0;
  options->min_gain = 0.03;
  options->settings_mask = 0;
  options->rounds = 7;
}

/* The options in force (the defaults for NULL), checked: INVALID_ARGUMENT for a wrong struct_size, a budget that is
 * not finite and positive, a min_gain outside [0, 1) or not finite, fewer than 3 rounds, a mask bit beyond the
 * settings. */
static rotary_status check_options(const rotary_tune_options *options, rotary_tune_options *o) {
  if (!options) {
    rotary_tune_options_init(o);
    return ROTARY_OK;
  }
  ROTARY_RETURN_IF(options->struct_size != sizeof *options, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(!isfinite(options->seconds) || !(options->seconds > 0), ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(!isfinite(options->min_gain) || !(options->min_gain >= 0 && options->min_gain < 1),
                   ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(options->rounds < 3, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(options->settings_mask >> ROTARY_SETTING_COUNT, ROTARY_ERR_INVALID_ARGUMENT);
  *o = *options;
  if (!o->settings_mask) o->settings_mask = (1u << ROTARY_SETTING_COUNT) - 1;
  return ROTARY_OK;
}

/* Every argument as the contract orders the errors: pointers, the call count, the options, each call as
 * rotary_apply checks it (the same function). */
static rotary_status check_args(const rotary_context *ctx, const rotary_rope *rope, const rotary_apply_desc *descs,
                                size_t n_descs, const rotary_tune_options *options, rotary_tune_options *o) {
  ROTARY_RETURN_IF(!ctx || !rope || !descs, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(n_descs == 0 || n_descs > ROTARY_TUNE_MAX_DESCS, ROTARY_ERR_INVALID_ARGUMENT);
  rotary_status st = check_options(options, o);
  for (size_t i = 0; st == ROTARY_OK && i < n_descs; i++) st = rotary_validate_apply(rope, &descs[i], 0);
  return st;
}

/* The settings the run leaves: `from` with the values that differ in `found` taken with source TUNED; a value that
 * ended where it started (it won and was then beaten by the original value) keeps its source. */
static rotary_tuning tuned_settings(const rotary_tuning *from, const rotary_tuning *found) {
  rotary_tuning t = *from;
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++) {
    const rotary_setting id = (rotary_setting)s;
    const int64_t v = rotary_tuning_get(found, id);
    if (v != rotary_tuning_get(from, id)) rotary_tuning_put(&t, id, v, ROTARY_SOURCE_TUNED);
  }
  return t;
}

/* Warm-up, search and final comparison on a run whose buffers exist; *after receives the settings left. The
 * budget covers the warm-up, the search and (time reserved while searching) the final comparison; the three warm-up
 * rounds run even when they alone outlast the budget, as do the final comparison's `rounds` rounds per side.
 * The final comparison (run when a value changed or a report is wanted) also confirms the search: the settings
 * found stay only when they pass the rule of min_gain against the starting values there too. Each candidate won by
 * that rule against the value before it, so the gains add up; a set that fails it now was chosen by noise (a
 * machine shared with other work) and the starting values stay (the report then has after = before and
 * after_seconds = before_seconds, the one measurement of those values). */
static rotary_status tune_run(rotary_tune_run *run, const rotary_tuning *before, unsigned mask, rotary_tuning *after,
                              rotary_tune_report *r, int want_times) {
  /* warm-up: the first round pays first touches, cold caches and sleeping workers; the faster of the next two is
   * the first estimate of a round's time (one round preempted on a busy machine would overstate it many times) */
  const size_t n = run->n_descs;
  rotary_status st = rotary_tune_round(run, before, run->times);
  for (int i = 0; i < 2 && st == ROTARY_OK; i++) st = rotary_tune_round(run, before, run->times + i * (n + 1));
  if (st != ROTARY_OK) return st;
  run->estimate = run->times[n] < run->times[2 * n + 1] ? run->times[n] : run->times[2 * n + 1];
  rotary_tuning current = *before;
  st = rotary_tune_search(run, mask, &current, &r->candidates, &r->out_of_time);
  if (st != ROTARY_OK) return st;
  const rotary_tuning found = tuned_settings(before, &current);
  int changed = 0;
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++)
    changed |= rotary_tuning_get(&found, (rotary_setting)s) != rotary_tuning_get(before, (rotary_setting)s);
  *after = *before;
  if (!changed && !want_times) return ROTARY_OK;
  int complete;
  st = rotary_tune_compare(run, before, &found, INFINITY, &complete);
  if (st != ROTARY_OK) return st;
  r->before_seconds = r->after_seconds = run->median[n];
  if (changed && rotary_tune_b_wins(run)) {
    *after = found;
    r->after_seconds = run->median[2 * n + 1];
  }
  return ROTARY_OK;
}

rotary_status rotary_context_tune(rotary_context *ctx, const rotary_rope *rope, const rotary_apply_desc *descs,
                                  size_t n_descs, const rotary_tune_options *options, rotary_tune_report *report) {
  rotary_tune_options o;
  rotary_status st = check_args(ctx, rope, descs, n_descs, options, &o);
  if (st != ROTARY_OK) return st;
  rotary_tune_run run = {ctx, rope, descs, n_descs, rotary_context_threads(ctx), o.rounds, o.min_gain,
                         NULL, NULL, NULL, 0.0, 0.0};
  if ((st = rotary_tune_run_alloc(&run)) != ROTARY_OK) return st;
  run.deadline = rotary_tune_now() + o.seconds;
  rotary_context_lock(ctx);
  const rotary_tuning before = *rotary_context_tuning(ctx);
  rotary_context_unlock(ctx);

  rotary_tune_report r;
  memset(&r, 0, sizeof r);
  rotary_tuning after = before;
  st = tune_run(&run, &before, o.settings_mask, &after, &r, report != NULL);
  rotary_tune_run_free(&run);
  rotary_context_set_tuning(ctx, st == ROTARY_OK ? &after : &before); /* a call's error: as it was */
  if (st != ROTARY_OK) return st;
  if (report) {
    for (int s = 0; s < ROTARY_SETTING_COUNT; s++) {
      r.before[s] = rotary_tuning_get(&before, (rotary_setting)s);
      r.after[s] = rotary_tuning_get(&after, (rotary_setting)s);
    }
    *report = r;
  }
  return ROTARY_OK;
}
