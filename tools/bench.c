/* bench.c: `rotary bench`: times the composed, naive and fused RoPE, each in a block of rounds against a streaming
 * pass, and prints each row as its block ends (--op kv-write goes to bench_kv.c, --op attention to bench_attn.c,
 * which time with the same blocks). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#ifdef ROTARY_BENCH_CUDA
#include "bench_cuda.h"
#endif

#define MAX_IMPLS (7 + BENCH_TUNE_MAX + BENCH_STREAM_MAX)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Sorts t and gives its median, min and max. */
static void summarize(double *t, size_t n, double *median, double *min, double *max) {
  qsort(t, n, sizeof *t, cmp_double);
  *median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  *min = t[0];
  *max = t[n - 1];
}

/* The table's rows, in order: (a), (b), (c) and its variants, torch, then the references (with
 * --stream-candidates each candidate of the streaming pass). The streaming pass is timed inside every other row's
 * block and comes last, from all its samples. */
static size_t pick_impls(const bench_setup *s, bench_result *r) {
  const bench_options *o = s->o;
  size_t n = 0;
  if (o->fused_only) {
  } else if (o->layout == ROTARY_LAYOUT_BHSD || o->qkv) {
    fprintf(stderr, "rotary bench: %s: the composed and naive rows (written for separate bshd tensors) are left out\n",
            o->qkv ? "--qkv" : "--layout bhsd");
  } else {
    r[n++].impl = &bench_impl_composed;
  }
  if (o->fused_only || o->layout == ROTARY_LAYOUT_BHSD || o->qkv) {
  } else if (o->head_dim <= BENCH_NAIVE_MAX_DIM) {
    r[n++].impl = &bench_impl_naive;
  } else {
    fprintf(stderr, "rotary bench: head_dim above %d: the naive loop is left out\n", BENCH_NAIVE_MAX_DIM);
  }
  r[n++].impl = &bench_impl_fused;
  if (o->table_free) r[n++].impl = &bench_impl_fused_free;
  for (size_t i = 0; o->tune && i < s->tune.n; i++) r[n++].impl = &s->tune.rows[i];
  if (o->torch) r[n++].impl = &bench_impl_torch;
  if (o->out_of_place && !o->fused_only) r[n++].impl = &bench_impl_copy;
  for (size_t i = 0; o->stream_candidates && i < s->stream.n; i++) r[n++].impl = &s->stream.rows[i];
  r[n++].impl = &bench_impl_stream;
  return n;
}

static rotary_status time_one(bench_setup *s, const bench_impl *impl, double *ms) {
  if (impl->timed) return impl->timed(s, ms);
  const double t0 = now_ms();
  const rotary_status st = impl->run(s, impl->arg);
  *ms = now_ms() - t0;
  return st;
}

/* Is the streaming pass run in this timed round? Every other round (the first included): the limit gets half as
 * many samples per block as the row; with fewer warm-ups after the first block, the whole run costs about what
 * the former round-robin over every row (3 warm-ups each, the streaming pass in every round) cost. */
static int stream_round(size_t round) { return round % 2 == 0; }

/* One row's block: warm-ups (and one of the streaming pass in the first block), then reps rounds of the row, with
 * the streaming pass after it every other round. Its samples go to t (reps) and to the pooled stream samples. */
static rotary_status time_block(bench_setup *s, bench_result *r, const bench_impl *limit, int first, double *t,
                                double *lim, double *pooled, size_t *npooled) {
  const size_t reps = s->o->reps;
  size_t nlim = 0;
  double ms;
  rotary_status st = ROTARY_OK;
  r->warmups = first ? BENCH_WARMUPS : BENCH_WARMUPS_NEXT;
  if (first) st = time_one(s, limit, &ms);
  for (int w = 0; w < r->warmups && st == ROTARY_OK; w++) st = time_one(s, r->impl, &ms);
  for (size_t round = 0; round < reps && st == ROTARY_OK; round++) {
    st = time_one(s, r->impl, &t[round]);
    if (st == ROTARY_OK && stream_round(round)) {
      st = time_one(s, limit, &lim[nlim]);
      pooled[(*npooled)++] = lim[nlim++];
    }
  }
  if (st != ROTARY_OK) return st;
  summarize(t, reps, &r->median, &r->min, &r->max);
  summarize(lim, nlim, &r->limit_median, &r->limit_min, &r->limit_max);
  if (r->median < BENCH_LIMIT_MARGIN * r->limit_min) r->flags |= BENCH_BEATS_LIMIT;
  if (r->max - r->min > r->median) r->flags |= BENCH_WIDE_RANGE;
  return ROTARY_OK;
}

/* Every row but the last (the streaming pass) in its block, printed when done; then the streaming pass from the
 * samples of every block. */
rotary_status bench_time_all(bench_setup *s, bench_result *r, size_t n, bench_row_printer print) {
  const size_t reps = s->o->reps, per_block = (reps + 1) / 2;
  double *t = malloc(reps * sizeof *t), *lim = malloc(per_block * sizeof *lim);
  double *pooled = malloc(per_block * (n - 1) * sizeof *pooled);
  rotary_status st = t && lim && pooled ? ROTARY_OK : ROTARY_ERR_OUT_OF_MEMORY;
  size_t npooled = 0;
  for (size_t i = 0; i + 1 < n && st == ROTARY_OK; i++) {
    st = time_block(s, &r[i], r[n - 1].impl, i == 0, t, lim, pooled, &npooled);
    if (st == ROTARY_OK && print) print(s, &r[i], &r[0]);
  }
  if (st == ROTARY_OK) {
    bench_result *lr = &r[n - 1];
    summarize(pooled, npooled, &lr->median, &lr->min, &lr->max);
    lr->limit_median = lr->median;
    lr->limit_min = lr->min;
    lr->limit_max = lr->max;
    if (lr->max - lr->min > lr->median) lr->flags |= BENCH_WIDE_RANGE;
    if (print) print(s, lr, &r[0]);
  }
  free(t);
  free(lim);
  free(pooled);
  return st;
}

/* The value at fraction f of sorted t (n > 0), between neighbours. */
static double quantile(const double *t, size_t n, double f) {
  const double x = f * (double)(n - 1);
  const size_t i = (size_t)x;
  return i + 1 < n ? t[i] + (x - (double)i) * (t[i + 1] - t[i]) : t[n - 1];
}

rotary_status bench_time_pairs(bench_setup *s, const bench_impl *a, const bench_impl *b, bench_pairs *out) {
  const size_t reps = s->o->reps;
  double *ta = malloc(reps * sizeof *ta), *tb = malloc(reps * sizeof *tb), *ratio = malloc(reps * sizeof *ratio);
  rotary_status st = ta && tb && ratio ? ROTARY_OK : ROTARY_ERR_OUT_OF_MEMORY;
  double ms;
  if (st == ROTARY_OK) st = time_one(s, a, &ms);
  if (st == ROTARY_OK) st = time_one(s, b, &ms);
  for (size_t i = 0; i < reps && st == ROTARY_OK; i++) { /* a first in even pairs, b first in odd ones */
    st = time_one(s, i % 2 ? b : a, i % 2 ? &tb[i] : &ta[i]);
    if (st == ROTARY_OK) st = time_one(s, i % 2 ? a : b, i % 2 ? &ta[i] : &tb[i]);
    if (st == ROTARY_OK) ratio[i] = tb[i] / ta[i];
  }
  if (st == ROTARY_OK) {
    double lo, hi;
    out->n = reps;
    summarize(ta, reps, &out->a_ms, &lo, &hi);
    summarize(tb, reps, &out->b_ms, &lo, &hi);
    summarize(ratio, reps, &out->ratio, &lo, &hi);
    out->ratio_q1 = quantile(ratio, reps, 0.25);
    out->ratio_q3 = quantile(ratio, reps, 0.75);
  }
  free(ta);
  free(tb);
  free(ratio);
  return st;
}

/* Setup, check, timing and report; returns the exit status. */
static int run_bench(const bench_options *o, bench_torch *torch) {
  bench_setup s;
  rotary_status st = bench_setup_create(o, &s);
  if (st != ROTARY_OK) {
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
    return 1;
  }
  s.torch = torch;
  bench_result r[MAX_IMPLS] = {{0}};
  st = bench_stream_pick_best(&s);
  bench_stream_rows(&s);
  if (o->tune) bench_tune_rows(&s);
  const size_t n = pick_impls(&s, r);
  if (st == ROTARY_OK && !o->json) bench_print_header(&s);
  if (st == ROTARY_OK) st = bench_check(&s, r, n);
  if (st == ROTARY_OK) st = bench_time_all(&s, r, n, o->json ? NULL : bench_print_row);
  if (st == ROTARY_OK && o->table_free)
    st = bench_time_pairs(&s, &bench_impl_fused, &bench_impl_fused_free, &s.free_pairs);
  if (st == ROTARY_OK) {
    if (o->json && !bench_print_json(&s, r, n)) st = ROTARY_ERR_OUT_OF_MEMORY;
    if (!o->json) bench_print_notes(&s, r, n);
    if (o->tune && !o->json) bench_print_tune(&s, r, n);
  }
  if (st != ROTARY_OK && st != ROTARY_ERR_INVALID_ARGUMENT) /* a failed check has said why */
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
  bench_setup_destroy(&s);
  return st == ROTARY_OK ? 0 : 1;
}

/* --cuda anywhere: the GPU table (bench_cuda.c), with its own options; a build without CUDA says so. */
static int bench_cuda_dispatch(int argc, char **argv) {
#ifdef ROTARY_BENCH_CUDA
  return bench_cuda_main(argc, argv);
#else
  (void)argc;
  (void)argv;
  fprintf(stderr, "rotary bench: --cuda: this build has no CUDA backend (configure with -DROTARY_CUDA=ON)\n");
  return 1;
#endif
}

int rotary_cli_bench(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--cuda")) return bench_cuda_dispatch(argc, argv);
  bench_options o;
  const int parsed = bench_parse_options(argc, argv, &o);
  if (parsed < 0) {
    bench_usage(stdout, 1);
    return 0;
  }
  if (!parsed) return 2; /* said why */
  if (o.op != BENCH_OP_ROPE || o.streams) {
    const int rc = o.streams ? bench_streams_main(&o) : o.op == BENCH_OP_ATTENTION ? bench_attn_main(&o)
                                                                                   : bench_kv_main(&o);
    bench_options_free(&o);
    return rc;
  }
  bench_torch *torch = NULL;
  if (o.torch && !bench_torch_start(&o, &torch)) {
    bench_options_free(&o);
    return 1;
  }
  const int rc = run_bench(&o, torch);
  bench_torch_stop(torch);
  bench_options_free(&o);
  return rc;
}
