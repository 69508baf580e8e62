/* bench_report.c: prints the results of `rotary bench`: the article's table row by row, or one JSON object written
 * with cJSON (--json, schema in docs/bench.md). */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "bench.h"

#define MIB (1024.0 * 1024.0)

typedef struct derived {
  double bytes, passes, gb_per_s, limit_gb_per_s, speedup, pct_of_stream;
} derived;

static const char *pairing_name(const bench_setup *s) {
  return s->o->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved";
}

static derived derive(const bench_setup *s, const bench_result *r, const bench_result *first) {
  derived d;
  const double ideal = bench_ideal_bytes(s);
  const double composed = first->impl == &bench_impl_composed ? first->median : 0;
  d.bytes = r->impl->bytes(s);
  d.passes = d.bytes / ideal;
  d.gb_per_s = ideal / r->median * 1e-6;
  d.limit_gb_per_s = ideal / r->limit_median * 1e-6;
  d.speedup = composed > 0 ? composed / r->median : 0;
  d.pct_of_stream = r->limit_median / r->median * 100.0;
  return d;
}

static const char *layout_name(const bench_options *o) { return o->layout == ROTARY_LAYOUT_BHSD ? "bhsd" : "bshd"; }

void bench_print_settings(const bench_setup *s) {
  printf("settings:");
  for (int k = 0; k < ROTARY_SETTING_COUNT; k++) {
    int64_t v = 0;
    rotary_setting_source src = ROTARY_SOURCE_DEFAULT;
    rotary_context_get_setting(s->ctx, (rotary_setting)k, &v, &src);
    int64_t min = 0, max = 0;
    rotary_setting_range((rotary_setting)k, &min, &max);
    if (min == -1 && v == -1) printf(" %s off (%s)%s", rotary_setting_name((rotary_setting)k),
                                     rotary_setting_source_name(src), k + 1 < ROTARY_SETTING_COUNT ? "," : "\n");
    else printf(" %s %lld (%s)%s", rotary_setting_name((rotary_setting)k), (long long)v,
                rotary_setting_source_name(src), k + 1 < ROTARY_SETTING_COUNT ? "," : "\n");
  }
  char err[1024] = "";
  if (rotary_tuning_env_status(err, sizeof err) != ROTARY_OK)
    printf("ROTARY_TUNING_FILE did not load, so it is ignored: %s\n", err);
}

int bench_json_settings(cJSON *doc, const bench_setup *s) {
  cJSON *all = cJSON_CreateObject();
  int ok = all != NULL;
  for (int k = 0; ok && k < ROTARY_SETTING_COUNT; k++) {
    int64_t v = 0;
    rotary_setting_source src = ROTARY_SOURCE_DEFAULT;
    rotary_context_get_setting(s->ctx, (rotary_setting)k, &v, &src);
    cJSON *one = cJSON_AddObjectToObject(all, rotary_setting_name((rotary_setting)k));
    ok = one && cJSON_AddNumberToObject(one, "value", (double)v) &&
         cJSON_AddStringToObject(one, "source", rotary_setting_source_name(src));
  }
  if (ok) ok = cJSON_AddItemToObject(doc, "settings", all);
  else cJSON_Delete(all);
  char err[1024] = "";
  if (ok) ok = rotary_tuning_env_status(err, sizeof err) != ROTARY_OK
                   ? cJSON_AddStringToObject(doc, "tuning_env_error", err) != NULL
                   : cJSON_AddNullToObject(doc, "tuning_env_error") != NULL;
  return ok;
}

/* Which streaming pass is the limit, how it was picked, and the former pass's time in the same start-up rounds. */
void bench_print_stream_pick(const bench_setup *s) {
  const bench_stream_pick *p = &s->stream;
  char name[48];
  bench_stream_name(s, p->best, name, sizeof name);
  printf("streaming pass (the limit): %s, the fastest of %zu candidates in %zu start-up rounds (median %.4f ms; the\n"
         "former pass, a compiler-vectorized loop on %zu thread%s: %.4f ms)\n",
         name, p->n, p->rounds, p->c[p->best].median_ms, p->c[p->former].threads,
         p->c[p->former].threads == 1 ? "" : "s", p->c[p->former].median_ms);
}

void bench_print_header(const bench_setup *s) {
  const bench_options *o = s->o;
  printf("rotary bench: %s%s", o->model ? o->model : "", o->model ? ", " : "");
  if (o->decode)
    printf("decode, %zu sequence%s x 1 token at random positions below %zu (int64 ids)", o->batch,
           o->batch == 1 ? "" : "s", o->table);
  else
    printf("prefill, batch %zu x %zu tokens (positions 0..%zu)", o->batch, o->tokens, o->tokens - 1);
  printf(", %zu q / %zu k heads, head_dim %zu (rotary %zu), %s, %s, %s pairing, %s, %zu thread%s, kernel %s, "
         "%zu reps\n",
         o->heads, o->kv_heads, o->head_dim, o->rotary_dim, o->qkv ? "bshd views into packed QKV rows" : layout_name(o),
         bench_dtype_name(o->dtype), pairing_name(s),
         o->out_of_place ? "out of place" : "in place", o->threads, o->threads == 1 ? "" : "s",
         rotary_kernel_name(o->dtype, o->pairing), o->reps);
  bench_print_settings(s);
  bench_print_stream_pick(s);
  printf("q + k: %.2f MiB; GB/s = the ideal single pass (%.2f MiB: each %s byte read and written once) / median;\n"
         "each row: %d warm-up%s (the first row %d), then %zu runs with the streaming pass after every other one\n"
         "(%% stream compares the two medians)\n\n",
         bench_qk_bytes(s) / MIB, bench_ideal_bytes(s) / MIB, o->out_of_place ? "q/k" : "rotated", BENCH_WARMUPS_NEXT,
         BENCH_WARMUPS_NEXT == 1 ? "" : "s", BENCH_WARMUPS, o->reps);
  printf("%-30s %10s %21s %7s %10s %8s %8s %9s\n", "implementation", "median ms", "min-max ms", "passes",
         "MiB moved", "GB/s", "speedup", "% stream");
  fflush(stdout);
}

const char *bench_flag_mark(unsigned flags) {
  return (flags & BENCH_BEATS_LIMIT) && (flags & BENCH_WIDE_RANGE) ? " !~"
         : flags & BENCH_BEATS_LIMIT                              ? " !"
         : flags & BENCH_WIDE_RANGE                               ? " ~"
                                                                  : "";
}

const char *bench_cache_name(const bench_options *o) {
  return o->cache == ROTARY_CACHE_SLOTS ? "paged" : "contiguous";
}

void bench_print_row(const bench_setup *s, const bench_result *r, const bench_result *first) {
  const derived d = derive(s, r, first);
  char speedup[32] = "-", pct[32]; /* speedup: no composed row (--layout bhsd) */
  if (d.speedup > 0) snprintf(speedup, sizeof speedup, "%.2fx", d.speedup);
  snprintf(pct, sizeof pct, "%.1f%%", d.pct_of_stream);
  const char *flag = bench_flag_mark(r->flags);
  printf("%-30s %10.4f %10.4f-%-10.4f %7.2f %10.2f %8.2f %8s %9s%s\n", r->impl->label, r->median, r->min, r->max,
         d.passes, d.bytes / MIB, d.gb_per_s, speedup, pct, flag);
  fflush(stdout);
}

unsigned bench_all_flags(const bench_result *r, size_t n) {
  unsigned f = 0;
  for (size_t i = 0; i < n; i++) f |= r[i].flags;
  return f;
}

void bench_print_flag_notes(unsigned flags) {
  printf("\n");
  if (flags & BENCH_BEATS_LIMIT)
    printf("!  more than 10%% faster than the fastest streaming pass of its rounds: beyond the pass's noise. Either\n"
           "   q and k sit in cache, where the streaming pass is no limit, or the run was disturbed (other\n"
           "   processes, clock changes): do not read its %% stream as a result before a rerun agrees.\n");
  if (flags & BENCH_WIDE_RANGE)
    printf("~  its times range wider than its median: the machine was busy; compare the medians with care.\n");
  if (flags) printf("\n");
}

void bench_print_notes(const bench_setup *s, const bench_result *r, size_t n) {
  bench_print_flag_notes(bench_all_flags(r, n));
  if (r[0].impl == &bench_impl_composed)
    printf("(a) is a C model of the ops PyTorch eager runs for Hugging Face's apply_rotary_pos_emb (gather cos/sin,\n"
           "rotate_half, two multiplies and an add through whole intermediates, one parallel loop per op): close to\n"
           "real torch on a quiet machine, but a model; --torch times real torch as well.\n");
  printf("passes: bytes the implementation's loops read and write (every tensor once at its own size, cos/sin rows\n"
         "included) / the ideal single pass. speedup: (a)'s median / this median. %% stream: the median of the\n"
         "streaming pass in this row's rounds / this median.");
  int checked = 0;
  size_t tune_rows = 0;
  double tune_err = 0;
  for (size_t i = 0; i < n; i++) {
    if (r[i].max_rel_err < 0 || r[i].impl == &bench_impl_fused) continue;
    if (!checked++)
      printf(" Checked before timing: each RoPE row of this program matches\n"
             "rotary_apply (largest relative difference:");
    if (bench_is_tune_row(r[i].impl)) { /* --tune: one figure for them all */
      tune_rows++;
      tune_err = r[i].max_rel_err > tune_err ? r[i].max_rel_err : tune_err;
    } else {
      printf(" %s %.2g", r[i].impl->id, r[i].max_rel_err);
    }
  }
  if (tune_rows) printf(" the %zu --tune rows %.2g", tune_rows, tune_err);
  printf("%s\n", checked ? ")." : "");
  if (s->free_pairs.n) {
    const bench_pairs *f = &s->free_pairs;
    printf("table-free against the table, the two calls in %zu pairs (alternating which goes first): %.4f ms\n"
           "against %.4f ms (medians); table-free time / table time per pair: median %.3f (quartiles %.3f-%.3f),\n"
           "so the table-free call runs at %.1f%% of the table call's speed.\n",
           f->n, f->b_ms, f->a_ms, f->ratio, f->ratio_q1, f->ratio_q3, 100.0 / f->ratio);
  }
  if (s->torch) printf("torch: timed in its own process (not checked); it returns new q and k tensors, as HF does.\n");
  fflush(stdout);
}

/* x rounded to 6 significant digits, so that the JSON holds 24.5967, not 24.596712345678901. */
double bench_sig6(double x) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", x);
  return strtod(buf, NULL);
}

static cJSON *json_shape(const bench_options *o, const bench_setup *s) {
  cJSON *shape = cJSON_CreateObject();
  if (!shape) return NULL;
  const struct { const char *key; size_t v; } sizes[] = {
      {"batch", o->batch}, {"tokens", o->tokens}, {"heads", o->heads}, {"kv_heads", o->kv_heads},
      {"head_dim", o->head_dim}, {"rotary_dim", o->rotary_dim}, {"table", o->table}};
  int ok = 1;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    ok &= cJSON_AddNumberToObject(shape, sizes[i].key, (double)sizes[i].v) != NULL;
  ok &= cJSON_AddStringToObject(shape, "layout", layout_name(o)) != NULL;
  ok &= cJSON_AddStringToObject(shape, "pairing", pairing_name(s)) != NULL;
  ok &= cJSON_AddBoolToObject(shape, "in_place", !o->out_of_place) != NULL;
  ok &= cJSON_AddBoolToObject(shape, "qkv", o->qkv) != NULL;
  ok &= cJSON_AddNumberToObject(shape, "base", o->base) != NULL;
  if (!ok) {
    cJSON_Delete(shape);
    return NULL;
  }
  return shape;
}

/* "stream_pass": the limit's loop and threads, and every candidate's start-up median and minimum. */
static cJSON *json_stream_pass(const bench_setup *s) {
  const bench_stream_pick *p = &s->stream;
  cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
  char name[48];
  bench_stream_name(s, p->best, name, sizeof name);
  int ok = o && list && cJSON_AddStringToObject(o, "pass", name) &&
           cJSON_AddNumberToObject(o, "threads", (double)p->c[p->best].threads) &&
           cJSON_AddNumberToObject(o, "rounds", (double)p->rounds) &&
           cJSON_AddNumberToObject(o, "median_ms", bench_sig6(p->c[p->best].median_ms)) &&
           cJSON_AddNumberToObject(o, "former_median_ms", bench_sig6(p->c[p->former].median_ms));
  for (size_t i = 0; ok && i < p->n; i++) {
    cJSON *c = cJSON_CreateObject();
    bench_stream_name(s, i, name, sizeof name);
    ok = c && cJSON_AddItemToArray(list, c) && cJSON_AddStringToObject(c, "pass", name) &&
         cJSON_AddStringToObject(c, "impl", p->ids[i]) &&
         cJSON_AddNumberToObject(c, "threads", (double)p->c[i].threads) &&
         cJSON_AddBoolToObject(c, "former", bench_stream_is_former(s, i)) &&
         cJSON_AddNumberToObject(c, "median_ms", bench_sig6(p->c[i].median_ms)) &&
         cJSON_AddNumberToObject(c, "min_ms", bench_sig6(p->c[i].min_ms));
    if (!c) break;
  }
  if (ok) ok = cJSON_AddItemToObject(o, "candidates", list);
  else cJSON_Delete(list);
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static cJSON *json_row(const bench_setup *s, const bench_result *r, const bench_result *first) {
  const derived d = derive(s, r, first);
  cJSON *row = cJSON_CreateObject(), *flags = cJSON_CreateArray();
  int ok = row && flags && cJSON_AddStringToObject(row, "impl", r->impl->id) &&
           cJSON_AddStringToObject(row, "label", r->impl->label) &&
           cJSON_AddStringToObject(row, "dtype", bench_dtype_name(s->o->dtype)) &&
           cJSON_AddNumberToObject(row, "threads", (double)s->o->threads) &&
           cJSON_AddNumberToObject(row, "warmups", r->warmups);
  const bench_json_figures f = {d.gb_per_s, d.limit_gb_per_s, "pct_of_stream", d.pct_of_stream, d.passes, d.bytes,
                                 "speedup_vs_composed", d.speedup};
  return bench_json_row_finish(row, flags, ok, r, &f);
}

cJSON *bench_json_row_finish(cJSON *row, cJSON *flags, int ok, const bench_result *r, const bench_json_figures *f) {
  const struct { const char *key; double v; } nums[] = {
      {"median_ms", r->median}, {"min_ms", r->min}, {"max_ms", r->max}, {"gb_per_s", f->gb_per_s},
      {"limit_median_ms", r->limit_median}, {"limit_min_ms", r->limit_min}, {"limit_max_ms", r->limit_max},
      {"limit_gb_per_s", f->limit_gb_per_s}, {f->pct_key, f->pct}, {"passes", f->passes}, {"bytes", f->bytes}};
  for (size_t i = 0; ok && i < sizeof nums / sizeof nums[0]; i++)
    ok = cJSON_AddNumberToObject(row, nums[i].key, bench_sig6(nums[i].v)) != NULL;
  if (ok) ok = f->ratio > 0 ? cJSON_AddNumberToObject(row, f->ratio_key, bench_sig6(f->ratio)) != NULL
                            : cJSON_AddNullToObject(row, f->ratio_key) != NULL;
  if (ok) ok = r->max_rel_err >= 0 ? cJSON_AddNumberToObject(row, "max_rel_err_vs_fused", bench_sig6(r->max_rel_err)) != NULL
                                   : cJSON_AddNullToObject(row, "max_rel_err_vs_fused") != NULL;
  if (ok && (r->flags & BENCH_BEATS_LIMIT)) ok = cJSON_AddItemToArray(flags, cJSON_CreateString("beats_limit"));
  if (ok && (r->flags & BENCH_WIDE_RANGE)) ok = cJSON_AddItemToArray(flags, cJSON_CreateString("wide_range"));
  if (ok) ok = cJSON_AddItemToObject(row, "flags", flags);
  else cJSON_Delete(flags);
  if (!ok) {
    cJSON_Delete(row);
    return NULL;
  }
  return row;
}

/* The run's description, then its rows; NULL when out of memory. */
static cJSON *json_doc(const bench_setup *s, const bench_result *r, size_t n) {
  const bench_options *o = s->o;
  cJSON *doc = cJSON_CreateObject(), *rows = cJSON_CreateArray();
  int ok = doc && rows && cJSON_AddStringToObject(doc, "version", rotary_version_string()) &&
           (o->model ? cJSON_AddStringToObject(doc, "model", o->model) : cJSON_AddNullToObject(doc, "model")) &&
           cJSON_AddStringToObject(doc, "mode", o->decode ? "decode" : "prefill");
  cJSON *shape = ok ? json_shape(o, s) : NULL;
  ok = shape && cJSON_AddItemToObject(doc, "shape", shape);
  if (!ok) cJSON_Delete(shape);
  ok = ok && cJSON_AddStringToObject(doc, "dtype", bench_dtype_name(o->dtype)) &&
       cJSON_AddNumberToObject(doc, "threads", (double)o->threads) &&
       cJSON_AddStringToObject(doc, "kernel", rotary_kernel_name(o->dtype, o->pairing)) &&
       cJSON_AddNumberToObject(doc, "reps", (double)o->reps) &&
       cJSON_AddNumberToObject(doc, "warmups", BENCH_WARMUPS) &&
       cJSON_AddNumberToObject(doc, "qk_bytes", bench_qk_bytes(s)) &&
       cJSON_AddNumberToObject(doc, "ideal_bytes", bench_ideal_bytes(s)) &&
       cJSON_AddStringToObject(doc, "gb_per_s_basis", "ideal_bytes / median");
  ok = ok && bench_json_settings(doc, s);
  if (ok && s->free_pairs.n) {
    const bench_pairs *f = &s->free_pairs;
    cJSON *fp = cJSON_CreateObject();
    ok = fp && cJSON_AddItemToObject(doc, "table_free_pairs", fp);
    if (!ok) cJSON_Delete(fp);
    ok = ok && cJSON_AddNumberToObject(fp, "pairs", (double)f->n) &&
         cJSON_AddNumberToObject(fp, "table_median_ms", bench_sig6(f->a_ms)) &&
         cJSON_AddNumberToObject(fp, "table_free_median_ms", bench_sig6(f->b_ms)) &&
         cJSON_AddNumberToObject(fp, "ratio_median", bench_sig6(f->ratio)) &&
         cJSON_AddNumberToObject(fp, "ratio_q1", bench_sig6(f->ratio_q1)) &&
         cJSON_AddNumberToObject(fp, "ratio_q3", bench_sig6(f->ratio_q3));
  }
  cJSON *pass = ok ? json_stream_pass(s) : NULL;
  ok = pass && cJSON_AddItemToObject(doc, "stream_pass", pass);
  if (!ok) cJSON_Delete(pass);
  return bench_json_finish(doc, rows, ok, s, r, n, json_row);
}

cJSON *bench_json_finish(cJSON *doc, cJSON *rows, int ok, const bench_setup *s, const bench_result *r, size_t n,
                         cJSON *(*row)(const bench_setup *, const bench_result *, const bench_result *)) {
  ok = ok && cJSON_AddBoolToObject(doc, "stable", bench_all_flags(r, n) == 0);
  for (size_t i = 0; ok && i < n; i++) {
    cJSON *one = row(s, &r[i], &r[0]);
    ok = one && cJSON_AddItemToArray(rows, one);
  }
  if (ok) ok = cJSON_AddItemToObject(doc, "rows", rows);
  else cJSON_Delete(rows);
  if (!ok) {
    cJSON_Delete(doc);
    return NULL;
  }
  return doc;
}

int bench_json_print(cJSON *doc) {
  char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
  cJSON_Delete(doc);
  if (!text) return 0;
  printf("%s\n", text);
  fflush(stdout);
  cJSON_free(text);
  return 1;
}

int bench_print_json(const bench_setup *s, const bench_result *r, size_t n) {
  return bench_json_print(json_doc(s, r, n));
}
