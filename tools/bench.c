/* bench.c: `rotary bench`: times the composed, naive and fused RoPE against a streaming pass, round-robin. */
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "cli.h"

#define MAX_IMPLS (6 + BENCH_TUNE_COUNT)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void summarize(bench_result *r, double *t, size_t n) {
  qsort(t, n, sizeof *t, cmp_double);
  r->median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  r->min = t[0];
  r->max = t[n - 1];
}

/* The table's rows, in order: (a), (b), (c), then the references. */
static size_t pick_impls(const bench_options *o, bench_result *r) {
  size_t n = 0;
  if (o->layout == ROTARY_LAYOUT_BHSD)
    fprintf(stderr, "rotary bench: --layout bhsd: the composed and naive rows (written for bshd) are left out\n");
  else
    r[n++].impl = &bench_impl_composed;
  if (o->layout == ROTARY_LAYOUT_BHSD) {
  } else if (o->head_dim <= BENCH_NAIVE_MAX_DIM) {
    r[n++].impl = &bench_impl_naive;
  } else {
    fprintf(stderr, "rotary bench: head_dim above %d: the naive loop is left out\n", BENCH_NAIVE_MAX_DIM);
  }
  r[n++].impl = &bench_impl_fused;
  if (o->table_free) r[n++].impl = &bench_impl_fused_free;
  for (int i = 0; o->tune && i < BENCH_TUNE_COUNT; i++) r[n++].impl = &bench_impl_tune[i];
  r[n++].impl = &bench_impl_stream;
  if (o->out_of_place) r[n++].impl = &bench_impl_copy;
  return n;
}

/* Warm-ups, then rounds in which every implementation runs once, the first one rotating from round to round, so
 * that all see the same machine state (frequency, neighbours, page cache) over the run. */
static rotary_status time_all(bench_setup *s, bench_result *r, size_t n) {
  const size_t reps = s->o->reps;
  double *t = malloc(n * reps * sizeof *t);
  if (!t) return ROTARY_ERR_OUT_OF_MEMORY;
  rotary_status st = ROTARY_OK;
  for (size_t round = 0; round < BENCH_WARMUPS + reps && st == ROTARY_OK; round++)
    for (size_t j = 0; j < n && st == ROTARY_OK; j++) {
      const size_t i = (j + round) % n;
      const double t0 = now_ms();
      st = r[i].impl->run(s);
      const double t1 = now_ms();
      if (round >= BENCH_WARMUPS) t[i * reps + round - BENCH_WARMUPS] = t1 - t0;
    }
  for (size_t i = 0; i < n && st == ROTARY_OK; i++) summarize(&r[i], t + i * reps, reps);
  free(t);
  return st;
}

int rotary_cli_bench(int argc, char **argv) {
  bench_options o;
  const int parsed = bench_parse_options(argc, argv, &o);
  if (parsed < 0) {
    bench_usage(stdout);
    return 0;
  }
  if (!parsed) {
    fprintf(stderr, "run 'rotary bench --help' for the options\n");
    return 2;
  }
  bench_setup s;
  rotary_status st = bench_setup_create(&o, &s);
  if (st != ROTARY_OK) {
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
    bench_options_free(&o);
    return 1;
  }
  bench_result r[MAX_IMPLS] = {{0}};
  const size_t n = pick_impls(&o, r);
  st = bench_check(&s, r, n);
  if (st == ROTARY_OK) st = time_all(&s, r, n);
  if (st == ROTARY_OK) {
    if (o.json) bench_print_json(&s, r, n);
    else bench_print_table(&s, r, n);
    if (o.tune && !o.json) bench_print_tune(r, n);
  } else if (st != ROTARY_ERR_INVALID_ARGUMENT) { /* a failed check has said why */
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
  }
  bench_setup_destroy(&s);
  bench_options_free(&o);
  return st == ROTARY_OK ? 0 : 1;
}
