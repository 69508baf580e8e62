/* bench_kv.c: `rotary bench --op kv-write`: one case and its table, or --sweep, the table (a line per
 * case); the rows are timed in blocks against the limit as bench.c times the rope rows. */
#include <stdlib.h>

#include "bench_kv.h"

/* The unfused pair first (the reference of "x unfused", known when the fused row prints), then the fused call,
 * then the limit (timed inside the other rows' blocks). */
static size_t pick_rows(const bench_options *o, bench_result *r) {
  r[0].impl = o->dtype == o->cache_dtype ? &bench_kv_unfused : &bench_kv_unfused_convert;
  r[1].impl = &bench_kv_fused;
  r[2].impl = &bench_kv_limit;
  return 3;
}

/* Setup, the check, the limit's store kind, then the timed blocks (rows printed when table is set). */
static rotary_status measure(const bench_options *o, bench_setup *s, bench_result *r, size_t *n, int table) {
  rotary_status st = bench_kv_setup_create(o, s);
  if (st != ROTARY_OK) return st;
  *n = pick_rows(o, r);
  st = bench_kv_check(s, r, *n);
  if (st != ROTARY_OK) return st;
  bench_kv_pick_limit_stores(s);
  if (table) bench_kv_print_header(s);
  return bench_time_all(s, r, *n, table ? bench_kv_print_row : NULL);
}

static int finish(bench_setup *s, rotary_status st) {
  if (st != ROTARY_OK && st != ROTARY_ERR_INVALID_ARGUMENT) /* a failed check has said why */
    fprintf(stderr, "rotary bench: %s\n", rotary_status_string(st));
  bench_kv_setup_destroy(s);
  return st == ROTARY_OK ? 0 : 1;
}

static int run_one(const bench_options *o) {
  bench_setup s;
  bench_result r[3] = {{0}};
  size_t n = 0;
  rotary_status st = measure(o, &s, r, &n, !o->json);
  if (st == ROTARY_OK && o->json && !bench_kv_print_json(&s, r, n)) st = ROTARY_ERR_OUT_OF_MEMORY;
  if (st == ROTARY_OK && !o->json) bench_kv_print_notes(&s, r, n);
  return finish(&s, st);
}

/* Case i of the sweep (16): prefill then decode, contiguous then paged, bf16 then fp8, 1 then 2 threads. */
static bench_options sweep_case(const bench_options *o, unsigned i) {
  bench_options c = *o;
  c.sweep = 0;
  c.threads = (i & 1) + 1;
  c.cache_dtype = i & 2 ? ROTARY_FP8_E4M3 : ROTARY_BF16;
  c.cache = i & 4 ? ROTARY_CACHE_SLOTS : ROTARY_CACHE_SEQUENCES;
  if (i & 8) {
    c.decode = o->decode ? o->decode : 64;
    c.batch = c.decode;
    c.tokens = 1;
    c.table = o->table_set ? o->table : 4096;
  } else {
    c.decode = 0;
    c.table = o->table_set ? o->table : o->tokens;
  }
  return c;
}

static int run_sweep(const bench_options *o) {
  if (!o->json) bench_kv_print_sweep_header(o);
  for (unsigned i = 0; i < 16; i++) {
    const bench_options c = sweep_case(o, i);
    bench_setup s;
    bench_result r[3] = {{0}};
    size_t n = 0;
    rotary_status st = measure(&c, &s, r, &n, 0);
    if (st == ROTARY_OK && c.json && !bench_kv_print_json(&s, r, n)) st = ROTARY_ERR_OUT_OF_MEMORY;
    if (st == ROTARY_OK && !c.json) bench_kv_print_sweep_row(&s, r, n);
    if (finish(&s, st)) return 1;
  }
  if (!o->json) bench_kv_print_sweep_footer();
  return 0;
}

int bench_kv_main(const bench_options *o) { return o->sweep ? run_sweep(o) : run_one(o); }
