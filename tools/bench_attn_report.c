/* bench_attn_report.c: prints the attention results: a table per case (cache GB/s, % of limit, x composed, QK/Q)
 * or the sweep's line per case with the load average before and after. */
#include <stdio.h>

#include "bench_attn.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

static void print_case(const bench_setup *s) {
  const bench_options *o = s->o;
  const bench_attn *a = s->attn;
  printf("%zu sequence%s x %zu cached rows, 1 query token, %zu q / %zu kv heads, head_dim %zu, %s cache ", o->batch,
         o->batch == 1 ? "" : "s", a->len, o->heads, o->kv_heads, o->head_dim, bench_dtype_name(o->cache_dtype));
  const char *layout = o->cache_layout == ROTARY_CACHE_HND ? "HND" : "NHD";
  if (a->block_table)
    printf("paged %s (vLLM block table, block %zu, %zu blocks in random order)", layout, a->block_size,
           a->num_blocks);
  else
    printf("contiguous %s (one block of %zu rows per sequence)", layout, a->block_size);
}

void bench_attn_print_header(const bench_setup *s) {
  const bench_options *o = s->o;
  printf("rotary bench --op attention: %s%s", o->model ? o->model : "", o->model ? ", " : "");
  print_case(s);
  printf(", q and out f32, %zu thread%s, %zu reps\n", o->threads, o->threads == 1 ? "" : "s", o->reps);
  printf("K+V attended: %.3f GiB; GB/s = those bytes / median; the limit reads them with the %s loop (the faster\n"
         "at setup). Checked before timing against the composed passes: max |diff| Q %.3g, QK %.3g, Q BF16 %.3g.\n"
         "Each row: %d warm-up%s (the first row %d), then %zu runs with the limit after every other one (%% of limit\n"
         "compares the two medians; x composed: the composed median / this median)\n\n",
         bench_attn_cache_bytes(s) / GIB, bench_attn_limit_name(s->attn), s->attn->max_diff[0],
         s->attn->max_diff[1], s->attn->max_diff[2], BENCH_WARMUPS_NEXT, BENCH_WARMUPS_NEXT == 1 ? "" : "s", BENCH_WARMUPS, o->reps);
  printf("%-36s %10s %21s %8s %11s %11s\n", "implementation", "median ms", "min-max ms", "GB/s", "x composed",
         "% of limit");
  fflush(stdout);
}

void bench_attn_print_row(const bench_setup *s, const bench_result *r, const bench_result *first) {
  char x[32] = "-";
  if (first->impl == &bench_attn_composed_row && r != first) snprintf(x, sizeof x, "%.2fx", first->median / r->median);
  printf("%-36s %10.3f %10.3f-%-10.3f %8.2f %11s %10.1f%%%s\n", r->impl->label, r->median, r->min, r->max,
         bench_attn_cache_bytes(s) / r->median * 1e-6, x, r->limit_median / r->median * 100.0, bench_flag_mark(r->flags));
  fflush(stdout);
}

void bench_attn_print_notes(const bench_setup *s, const bench_result *r, size_t n) {
  (void)s;
  bench_print_flag_notes(bench_all_flags(r, n));
  if (n >= 3) printf("QK / Q: %.3f (medians)\n", r[2].median / r[1].median);
  if (n >= 5) printf("Q with bf16 products / Q: %.3f (medians)\n", r[3].median / r[1].median);
  printf("composed: rotary_apply of q, then three passes split over the threads: QK^T into an fp32 logits buffer\n"
         "[batch, q_heads, L], softmax over it, logits x V (plain C, fp32, the cache decoded row by row).\n"
         "limit: one read of the same K and V bytes (each sequence's rows in order, block by block when paged), split\n"
         "over the same threads (docs/bench_attention.md).\n");
  fflush(stdout);
}

/* The machine's load average (Linux): the machine is shared, say how busy it was. */
static void print_load(const char *when) {
  FILE *f = fopen("/proc/loadavg", "r");
  char line[128];
  if (f && fgets(line, sizeof line, f)) printf("load average %s: %s", when, line);
  if (f) fclose(f);
}

void bench_attn_print_sweep_header(const bench_options *o) {
  printf("rotary bench --op attention --sweep: %s, %zu q / %zu kv heads, head_dim %zu, 1 query token per sequence,\n"
         "q and out f32, NHD caches (paged: vLLM block table, block %zu, random block order), %zu reps per row\n"
         "(medians)\n",
         o->model ? o->model : "", o->heads, o->kv_heads, o->head_dim, o->block_size, o->reps);
  print_load("before");
  printf("\n| shape | cache | dtype | threads | Q ms | QK ms | Q bf16 ms | composed ms | limit ms | Q GB/s "
         "| Q %% of limit | QK %% of limit | Q bf16 %% of limit | Q x composed | QK / Q | max diff Q, QK, Q bf16 |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  fflush(stdout);
}

void bench_attn_print_sweep_row(const bench_setup *s, const bench_result *r, size_t n) {
  const bench_options *o = s->o;
  const bench_result *c = &r[0], *q = &r[1], *qk = &r[2], *qb = &r[3], *l = &r[n - 1];
  printf("| %zu x %zu | %s | %s | %zu | %.2f%s | %.2f%s | %.2f%s | %.2f%s | %.2f%s | %.2f | %.1f%% | %.1f%% | %.1f%% "
         "| %.2fx | %.3f | %.1e, %.1e, %.1e |\n",
         o->batch, s->attn->len, bench_cache_name(o), bench_dtype_name(o->cache_dtype), o->threads, q->median,
         bench_flag_mark(q->flags), qk->median, bench_flag_mark(qk->flags), qb->median, bench_flag_mark(qb->flags),
         c->median, bench_flag_mark(c->flags), l->median, bench_flag_mark(l->flags),
         bench_attn_cache_bytes(s) / q->median * 1e-6, q->limit_median / q->median * 100.0,
         qk->limit_median / qk->median * 100.0, qb->limit_median / qb->median * 100.0, c->median / q->median,
         qk->median / q->median, s->attn->max_diff[0], s->attn->max_diff[1], s->attn->max_diff[2]);
  fflush(stdout);
}

void bench_attn_print_sweep_footer(void) {
  printf("\n%% of limit: the limit's median in that row's own rounds / the row's median; x composed: the composed\n"
         "median / Q's; QK / Q: the medians' ratio (the target: at most 1.10). ! and ~ as in `rotary bench --help`.\n");
  print_load("after");
  fflush(stdout);
}
