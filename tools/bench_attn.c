/* bench_attn.c: `rotary bench --op attention`: one case and its table, or --sweep, the table (a line per
 * case and thread count); the rows are timed in blocks against the limit as bench.c times the rope rows. */
#include <stdlib.h>

#include "bench_attn.h"

/* The composed passes first (the reference of "x composed"), ours with keys rotated, ours rotating them, ours with
 * keys rotated and bf16 products (precision BF16), the limit last (timed inside the other rows' blocks). */
#define N_ROWS 5
static size_t pick_rows(bench_result *r) {
  r[0].impl = &bench_attn_composed_row;
  r[1].impl = &bench_attn_ours_q;
  r[2].impl = &bench_attn_ours_qk;
  r[3].impl = &bench_attn_ours_q_bf16;
  r[4].impl = &bench_attn_limit;
  return N_ROWS;
}

static int finish(bench_setup *s, rotary_status st) {
  if (st != ROTARY_OK && st != ROTARY_ERR_INVALID_ARGUMENT) /* a failed check has said why */
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
  bench_attn_setup_destroy(s);
  return st == ROTARY_OK ? 0 : 1;
}

/* The limit's loop for this thread count, then the timed blocks. */
static rotary_status measure(bench_setup *s, bench_result *r, size_t n, bench_row_printer print) {
  for (size_t i = 0; i < n; i++) r[i] = (bench_result){.impl = r[i].impl};
  bench_attn_pick_limit(s);
  if (print) bench_attn_print_header(s);
  return bench_time_all(s, r, n, print);
}

static int run_one(const bench_options *o) {
  bench_setup s;
  bench_result r[N_ROWS] = {{0}};
  const size_t n = pick_rows(r);
  rotary_status st = bench_attn_setup_create(o, &s);
  if (st == ROTARY_OK) st = bench_attn_check(&s);
  if (st == ROTARY_OK) st = measure(&s, r, n, bench_attn_print_row);
  if (st == ROTARY_OK) bench_attn_print_notes(&s, r, n);
  return finish(&s, st);
}

/* Case i of the sweep (8): 64 x 4096 then 1 x 32768, contiguous then paged, bf16 then fp8; each timed at 1 and 2
 * threads on the same buffers (checked once, at 1 thread). */
static bench_options sweep_case(const bench_options *o, unsigned i) {
  bench_options c = *o;
  c.sweep = 0;
  c.threads = 1;
  c.cache_dtype = i & 1 ? ROTARY_FP8_E4M3 : ROTARY_BF16;
  c.cache = i & 2 ? ROTARY_CACHE_SLOTS : ROTARY_CACHE_SEQUENCES;
  c.batch = i & 4 ? 1 : 64;
  c.table = i & 4 ? 32768 : 4096;
  return c;
}

static int run_sweep(const bench_options *o) {
  bench_attn_print_sweep_header(o);
  for (unsigned i = 0; i < 8; i++) {
    bench_options c = sweep_case(o, i);
    bench_setup s;
    bench_result r[N_ROWS] = {{0}};
    const size_t n = pick_rows(r);
    rotary_status st = bench_attn_setup_create(&c, &s);
    if (st == ROTARY_OK) st = bench_attn_check(&s);
    for (size_t threads = 1; threads <= 2 && st == ROTARY_OK; threads++) {
      c.threads = threads; /* s.o is &c */
      st = bench_attn_set_threads(&s, threads);
      if (st == ROTARY_OK) st = measure(&s, r, n, NULL);
      if (st == ROTARY_OK) bench_attn_print_sweep_row(&s, r, n);
    }
    if (finish(&s, st)) return 1;
  }
  bench_attn_print_sweep_footer();
  return 0;
}

int bench_attn_main(const bench_options *o) { return o->sweep ? run_sweep(o) : run_one(o); }
