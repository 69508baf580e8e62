/* bench_kv_report.c: prints the kv-write results: a table like the rope one (with "x unfused" and "% of limit"),
 * one JSON object per case (cJSON, schema in docs/bench.md), or the sweep's line per case. */
#include <stdio.h>

#include <cjson/cJSON.h>

#include "bench_kv.h"

#define MIB (1024.0 * 1024.0)

typedef struct kv_derived {
  double bytes, passes, gb_per_s, limit_gb_per_s, pct_of_limit, x_unfused;
} kv_derived;

static const bench_result *unfused_row(const bench_result *first) {
  return first->impl == &bench_kv_unfused || first->impl == &bench_kv_unfused_convert ? first : NULL;
}

static kv_derived derive(const bench_setup *s, const bench_result *r, const bench_result *first) {
  kv_derived d;
  const double ideal = bench_kv_ideal_bytes(s);
  const bench_result *u = unfused_row(first);
  d.bytes = r->impl->bytes(s);
  d.passes = d.bytes / ideal;
  d.gb_per_s = ideal / r->median * 1e-6;
  d.limit_gb_per_s = ideal / r->limit_median * 1e-6;
  d.pct_of_limit = r->limit_median / r->median * 100.0;
  d.x_unfused = u && u->median > 0 ? u->median / r->median : 0;
  return d;
}

static void print_case(const bench_setup *s) {
  const bench_options *o = s->o;
  if (o->decode)
    printf("decode, %zu sequence%s x 1 token at random cache lengths below %zu (int64 position ids)", o->batch,
           o->batch == 1 ? "" : "s", o->table);
  else
    printf("prefill, batch %zu x %zu tokens (positions 0..%zu)", o->batch, o->tokens, o->tokens - 1);
  printf(", %zu q / %zu kv heads, head_dim %zu (rotary %zu), %s packed QKV -> %s cache, ", o->heads, o->kv_heads,
         o->head_dim, o->rotary_dim, bench_dtype_name(o->dtype), bench_dtype_name(o->cache_dtype));
  if (o->cache == ROTARY_CACHE_SLOTS)
    printf("paged NHD (vLLM slots, block %zu, %zu blocks in random order)", s->kv->block_size, s->kv->num_blocks);
  else
    printf("contiguous NHD (capacity %zu per sequence)", s->kv->block_size);
}

void bench_kv_print_header(const bench_setup *s) {
  const bench_options *o = s->o;
  printf("rotary bench --op kv-write: %s%s", o->model ? o->model : "", o->model ? ", " : "");
  print_case(s);
  printf(", %s pairing, %zu thread%s, %zu reps\n", o->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved",
         o->threads, o->threads == 1 ? "" : "s", o->reps);
  bench_print_settings(s);
  printf("QKV: %.2f MiB; GB/s = the ideal single pass (%.2f MiB: the QKV rows read once; rotated q, the k rows and\n"
         "the v rows written once) / median; the limit writes the cache rows with %s (the fastest at setup);\n"
         "each row: %d warm-up%s (the first row %d), then %zu runs with the streaming pass after every other one\n"
         "(%% of limit compares the two medians; x unfused: the unfused pair's median / this median)\n\n",
         bench_kv_input_bytes(s) / MIB, bench_kv_ideal_bytes(s) / MIB, bench_kv_limit_stores_name(s->kv),
         BENCH_WARMUPS_NEXT, BENCH_WARMUPS_NEXT == 1 ? "" : "s", BENCH_WARMUPS, o->reps);
  printf("%-31s %10s %21s %7s %10s %8s %9s %11s\n", "implementation", "median ms", "min-max ms", "passes",
         "MiB moved", "GB/s", "x unfused", "% of limit");
  fflush(stdout);
}

void bench_kv_print_row(const bench_setup *s, const bench_result *r, const bench_result *first) {
  const kv_derived d = derive(s, r, first);
  char x[32] = "-", pct[32];
  if (d.x_unfused > 0) snprintf(x, sizeof x, "%.2fx", d.x_unfused);
  snprintf(pct, sizeof pct, "%.1f%%", d.pct_of_limit);
  printf("%-31s %10.4f %10.4f-%-10.4f %7.2f %10.2f %8.2f %9s %11s%s\n", r->impl->label, r->median, r->min, r->max,
         d.passes, d.bytes / MIB, d.gb_per_s, x, pct, bench_flag_mark(r->flags));
  fflush(stdout);
}

void bench_kv_print_notes(const bench_setup *s, const bench_result *r, size_t n) {
  bench_print_flag_notes(bench_all_flags(r, n));
  printf("unfused: rotary_apply on q and k in place in the QKV rows, then each token's k and v rows copied into\n"
         "the cache (%s), as vLLM's rotary_embedding + reshape_and_cache_flash.\n"
         "streaming pass: the ideal pass's bytes with plain loops (AVX2 where the CPU has it): q loaded and stored in\n"
         "place, each k and v row moved to its cache row (a narrower cache gets each element's high bytes).\n"
         "passes: bytes the row's loops read and write (cos/sin rows included) / the ideal single pass.\n",
         s->o->dtype == s->o->cache_dtype ? "memcpy per token" : "per token, through fp32 by the library's kernels");
  for (size_t i = 0; i < n; i++)
    if (r[i].max_rel_err >= 0)
      printf("Checked before timing: %s leaves what rotary_kv_write leaves (q, k and v rows; largest relative\n"
             "difference %.2g).\n",
             r[i].impl->id, r[i].max_rel_err);
  fflush(stdout);
}

static cJSON *json_row(const bench_setup *s, const bench_result *r, const bench_result *first) {
  const kv_derived d = derive(s, r, first);
  cJSON *row = cJSON_CreateObject(), *flags = cJSON_CreateArray();
  int ok = row && flags && cJSON_AddStringToObject(row, "impl", r->impl->id) &&
           cJSON_AddStringToObject(row, "label", r->impl->label) &&
           cJSON_AddStringToObject(row, "dtype", bench_dtype_name(s->o->dtype)) &&
           cJSON_AddStringToObject(row, "cache_dtype", bench_dtype_name(s->o->cache_dtype)) &&
           cJSON_AddStringToObject(row, "cache", bench_cache_name(s->o)) &&
           cJSON_AddNumberToObject(row, "threads", (double)s->o->threads) &&
           cJSON_AddNumberToObject(row, "warmups", r->warmups);
  const bench_json_figures f = {d.gb_per_s, d.limit_gb_per_s, "pct_of_limit", d.pct_of_limit, d.passes, d.bytes,
                                 "x_unfused", d.x_unfused};
  return bench_json_row_finish(row, flags, ok, r, &f);
}

static cJSON *json_shape(const bench_setup *s) {
  const bench_options *o = s->o;
  cJSON *shape = cJSON_CreateObject();
  const struct { const char *key; double v; } nums[] = {
      {"batch", (double)o->batch}, {"tokens", (double)o->tokens}, {"heads", (double)o->heads},
      {"kv_heads", (double)o->kv_heads}, {"head_dim", (double)o->head_dim}, {"rotary_dim", (double)o->rotary_dim},
      {"table", (double)o->table}, {"block_size", (double)s->kv->block_size},
      {"num_blocks", (double)s->kv->num_blocks}, {"base", o->base}};
  int ok = shape != NULL;
  for (size_t i = 0; ok && i < sizeof nums / sizeof nums[0]; i++)
    ok = cJSON_AddNumberToObject(shape, nums[i].key, nums[i].v) != NULL;
  ok = ok && cJSON_AddStringToObject(shape, "cache", bench_cache_name(o)) &&
       cJSON_AddStringToObject(shape, "cache_layout", "nhd") &&
       cJSON_AddStringToObject(shape, "pairing", o->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved");
  if (!ok) {
    cJSON_Delete(shape);
    return NULL;
  }
  return shape;
}

static cJSON *json_doc(const bench_setup *s, const bench_result *r, size_t n) {
  const bench_options *o = s->o;
  cJSON *doc = cJSON_CreateObject(), *rows = cJSON_CreateArray();
  int ok = doc && rows && cJSON_AddStringToObject(doc, "version", rotary_version_string()) &&
           cJSON_AddStringToObject(doc, "op", "kv-write") &&
           (o->model ? cJSON_AddStringToObject(doc, "model", o->model) : cJSON_AddNullToObject(doc, "model")) &&
           cJSON_AddStringToObject(doc, "mode", o->decode ? "decode" : "prefill");
  cJSON *shape = ok ? json_shape(s) : NULL;
  ok = shape && cJSON_AddItemToObject(doc, "shape", shape);
  if (!ok) cJSON_Delete(shape);
  ok = ok && cJSON_AddStringToObject(doc, "dtype", bench_dtype_name(o->dtype)) &&
       cJSON_AddStringToObject(doc, "cache_dtype", bench_dtype_name(o->cache_dtype)) &&
       cJSON_AddNumberToObject(doc, "threads", (double)o->threads) &&
       cJSON_AddNumberToObject(doc, "reps", (double)o->reps) &&
       cJSON_AddNumberToObject(doc, "warmups", BENCH_WARMUPS) &&
       cJSON_AddNumberToObject(doc, "input_bytes", bench_kv_input_bytes(s)) &&
       cJSON_AddNumberToObject(doc, "ideal_bytes", bench_kv_ideal_bytes(s)) &&
       cJSON_AddStringToObject(doc, "gb_per_s_basis", "ideal_bytes / median") &&
       cJSON_AddStringToObject(doc, "limit_stores", bench_kv_limit_stores_name(s->kv)) &&
       bench_json_settings(doc, s);
  return bench_json_finish(doc, rows, ok, s, r, n, json_row);
}

int bench_kv_print_json(const bench_setup *s, const bench_result *r, size_t n) {
  return bench_json_print(json_doc(s, r, n));
}

/* The machine's load average (Linux), so that a table pasted elsewhere says how busy the machine was. */
static void print_load(const char *when) {
  FILE *f = fopen("/proc/loadavg", "r");
  char line[128];
  if (f && fgets(line, sizeof line, f)) printf("load average %s: %s", when, line);
  if (f) fclose(f);
}

void bench_kv_print_sweep_header(const bench_options *o) {
  printf("rotary bench --op kv-write --sweep: %s, %zu q / %zu kv heads, head_dim %zu, %s packed QKV, NHD caches\n"
         "(paged: block %zu, random block order), %zu reps per row (medians); prefill batch %zu x %zu tokens, decode "
         "%zu x 1\n",
         o->model ? o->model : "", o->heads, o->kv_heads, o->head_dim, bench_dtype_name(o->dtype), o->block_size,
         o->reps, o->batch, o->tokens, o->decode ? o->decode : 64);
  print_load("before");
  printf("\n| mode | cache | cache dtype | threads | fused ms | unfused ms | limit ms | fused GB/s | fused %% of limit "
         "| fused x unfused |\n|---|---|---|---|---|---|---|---|---|---|\n");
  fflush(stdout);
}

void bench_kv_print_sweep_row(const bench_setup *s, const bench_result *r, size_t n) {
  const bench_options *o = s->o;
  const bench_result *u = &r[0], *f = &r[1], *l = &r[n - 1];
  const kv_derived d = derive(s, f, u);
  printf("| %s | %s | %s | %zu | %.4f%s | %.4f%s | %.4f%s | %.2f | %.1f%% | %.2fx |\n",
         o->decode ? "decode" : "prefill", bench_cache_name(o), bench_dtype_name(o->cache_dtype), o->threads, f->median,
         bench_flag_mark(f->flags), u->median, bench_flag_mark(u->flags), l->median, bench_flag_mark(l->flags), d.gb_per_s,
         d.pct_of_limit, d.x_unfused);
  fflush(stdout);
}

void bench_kv_print_sweep_footer(void) {
  printf("\nfused %% of limit: the streaming pass's median in the fused row's rounds / the fused median; x unfused:\n"
         "the unfused pair's median / the fused median (fp8: rope, then a converting copy). ! and ~ as in the\n"
         "table of one case (`rotary bench --help`, docs/bench.md).\n");
  print_load("after");
  fflush(stdout);
}
