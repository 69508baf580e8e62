/* bench_tune.c: `rotary bench --tune`: the fused call with each software-prefetch distance, the article's
 * auto-tuner reduced to the one knob that changed the result on our machines. */
#include <stdio.h>

#include "bench.h"
#include "context.h"
#include "prefetch.h"

static const int distances[BENCH_TUNE_COUNT] = {-1, 0, 512, 1024, 2048, 4096};

/* Runs the fused call with distance d through the context's settings, then restores them. */
static rotary_status run_with(bench_setup *s, int d) {
  rotary_context_lock(s->ctx); /* the settings are read under the context's lock */
  const rotary_tuning saved = *rotary_context_tuning(s->ctx);
  rotary_context_unlock(s->ctx);
  rotary_tuning t = saved;
  t.prefetch_bytes = d;
  rotary_context_set_tuning(s->ctx, &t);
  const rotary_status st = rotary_apply(s->ctx, s->rope, &s->desc);
  rotary_context_set_tuning(s->ctx, &saved);
  return st;
}

static rotary_status tune_run(bench_setup *s, size_t arg) { return run_with(s, distances[arg]); }

static double tune_bytes(const bench_setup *s) { return bench_impl_fused.bytes(s); }

const bench_impl bench_impl_tune[BENCH_TUNE_COUNT] = {
    {"fused_prefetch_off", "(c) prefetch off", tune_run, tune_bytes, 1, NULL, 0},
    {"fused_prefetch_0", "(c) prefetch 0 B", tune_run, tune_bytes, 1, NULL, 1},
    {"fused_prefetch_512", "(c) prefetch 512 B", tune_run, tune_bytes, 1, NULL, 2},
    {"fused_prefetch_1024", "(c) prefetch 1024 B", tune_run, tune_bytes, 1, NULL, 3},
    {"fused_prefetch_2048", "(c) prefetch 2048 B", tune_run, tune_bytes, 1, NULL, 4},
    {"fused_prefetch_4096", "(c) prefetch 4096 B", tune_run, tune_bytes, 1, NULL, 5},
};

void bench_print_tune(const bench_result *r, size_t n) {
  int best = -2;
  double best_ms = 0;
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < BENCH_TUNE_COUNT; k++)
      if (r[i].impl == &bench_impl_tune[k] && (best == -2 || r[i].median < best_ms)) {
        best = distances[k];
        best_ms = r[i].median;
      }
  if (best == -2) return;
  printf("\ntune: fastest software prefetch on this run: ");
  if (best < 0) printf("off (ROTARY_PREFETCH=off)");
  else printf("%d bytes ahead (ROTARY_PREFETCH=%d)", best, best);
  printf(", %.4f ms; calls otherwise run with %d (default for this CPU %d). One run is noisy: repeat it.\n",
         best_ms, rotary_tuning_defaults()->prefetch_bytes, rotary_prefetch_default());
}
