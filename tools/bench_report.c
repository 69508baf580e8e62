/* bench_report.c: prints the results of `rotary bench`: the article's table, or one JSON object (--json). */
#include <stdio.h>

#include "bench.h"

#define MIB (1024.0 * 1024.0)

typedef struct derived {
  double bytes, passes, gb_per_s, speedup, pct_of_stream;
} derived;

static const char *pairing_name(const bench_setup *s) {
  return s->o->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved";
}

/* Medians of the streaming pass and of the composed baseline (0 when absent). */
static double median_of(const bench_result *r, size_t n, const bench_impl *impl) {
  for (size_t i = 0; i < n; i++)
    if (r[i].impl == impl) return r[i].median;
  return 0;
}

static derived derive(const bench_setup *s, const bench_result *r, const bench_result *all, size_t n) {
  derived d;
  const double ideal = bench_ideal_bytes(s);
  const double composed = median_of(all, n, &bench_impl_composed), stream = median_of(all, n, &bench_impl_stream);
  d.bytes = r->impl->bytes(s);
  d.passes = d.bytes / ideal;
  d.gb_per_s = ideal / r->median * 1e-6;
  d.speedup = composed > 0 ? composed / r->median : 0;
  d.pct_of_stream = stream > 0 ? stream / r->median * 100.0 : 0;
  return d;
}

static const char *layout_name(const bench_options *o) { return o->layout == ROTARY_LAYOUT_BHSD ? "bhsd" : "bshd"; }

static void print_header(const bench_setup *s) {
  const bench_options *o = s->o;
  printf("rotary bench: %s%s", o->model ? o->model : "", o->model ? ", " : "");
  if (o->decode)
    printf("decode, %zu sequence%s x 1 token at random positions below %zu (int64 ids)", o->batch,
           o->batch == 1 ? "" : "s", o->table);
  else
    printf("prefill, batch %zu x %zu tokens (positions 0..%zu)", o->batch, o->tokens, o->tokens - 1);
  printf(", %zu q / %zu k heads, head_dim %zu (rotary %zu), %s, %s, %s pairing, %s, %zu thread%s, kernel %s, %zu reps\n",
         o->heads, o->kv_heads, o->head_dim, o->rotary_dim, layout_name(o), bench_dtype_name(o->dtype), pairing_name(s),
         o->out_of_place ? "out of place" : "in place", o->threads, o->threads == 1 ? "" : "s",
         rotary_kernel_name(o->dtype, o->pairing), o->reps);
  printf("q + k: %.2f MiB; GB/s = the ideal single pass (%.2f MiB: each %s byte read and written once) / median;"
         " %d warm-ups, then rounds that run every row in turn\n\n",
         bench_qk_bytes(s) / MIB, bench_ideal_bytes(s) / MIB, o->out_of_place ? "q/k" : "rotated", BENCH_WARMUPS);
}

void bench_print_table(const bench_setup *s, const bench_result *r, size_t n) {
  print_header(s);
  printf("%-30s %10s %21s %7s %10s %8s %8s %9s\n", "implementation", "median ms", "min-max ms", "passes",
         "MiB moved", "GB/s", "speedup", "% stream");
  for (size_t i = 0; i < n; i++) {
    const derived d = derive(s, &r[i], r, n);
    char speedup[32] = "-"; /* no composed row (--layout bhsd) */
    if (d.speedup > 0) snprintf(speedup, sizeof speedup, "%.2fx", d.speedup);
    printf("%-30s %10.4f %10.4f-%-10.4f %7.2f %10.2f %8.2f %8s %8.1f%%\n", r[i].impl->label, r[i].median, r[i].min,
           r[i].max, d.passes, d.bytes / MIB, d.gb_per_s, speedup, d.pct_of_stream);
  }
  printf("\npasses: bytes the implementation's loops read and write (every tensor once at its own size, cos/sin rows\n"
         "included) / the ideal single pass. speedup: (a)'s median / this median. %% stream: the streaming pass's\n"
         "median / this median, measured in the same rounds. Checked before timing: each RoPE row matches\n"
         "rotary_apply (largest relative difference:");
  for (size_t i = 0; i < n; i++)
    if (r[i].max_rel_err >= 0 && r[i].impl != &bench_impl_fused) printf(" %s %.2g", r[i].impl->id, r[i].max_rel_err);
  printf(").\n");
}

void bench_print_json(const bench_setup *s, const bench_result *r, size_t n) {
  const bench_options *o = s->o;
  printf("{\"version\":\"%s\",\"model\":", rotary_version_string());
  if (o->model) printf("\"%s\"", o->model);
  else printf("null");
  printf(",\"mode\":\"%s\",\"shape\":{\"batch\":%zu,\"tokens\":%zu,\"heads\":%zu,\"kv_heads\":%zu,\"head_dim\":%zu,"
         "\"rotary_dim\":%zu,\"layout\":\"%s\",\"pairing\":\"%s\",\"in_place\":%s,\"table\":%zu,\"base\":%g},\"dtype\":\"%s\","
         "\"threads\":%zu,\"kernel\":\"%s\",\"reps\":%zu,\"warmups\":%d,\"qk_bytes\":%.0f,\"ideal_bytes\":%.0f,"
         "\"gb_per_s_basis\":\"ideal_bytes / median\",\"rows\":[",
         o->decode ? "decode" : "prefill", o->batch, o->tokens, o->heads, o->kv_heads, o->head_dim, o->rotary_dim,
         layout_name(o), pairing_name(s), o->out_of_place ? "false" : "true", o->table, o->base, bench_dtype_name(o->dtype),
         o->threads, rotary_kernel_name(o->dtype, o->pairing), o->reps, BENCH_WARMUPS, bench_qk_bytes(s),
         bench_ideal_bytes(s));
  for (size_t i = 0; i < n; i++) {
    const derived d = derive(s, &r[i], r, n);
    printf("%s{\"impl\":\"%s\",\"label\":\"%s\",\"dtype\":\"%s\",\"threads\":%zu,\"median_ms\":%.6f,"
           "\"min_ms\":%.6f,\"max_ms\":%.6f,\"gb_per_s\":%.3f,\"pct_of_stream\":%.2f,\"speedup_vs_composed\":%.3f,"
           "\"passes\":%.3f,\"bytes\":%.0f,\"max_rel_err_vs_fused\":",
           i ? "," : "", r[i].impl->id, r[i].impl->label, bench_dtype_name(o->dtype), o->threads, r[i].median,
           r[i].min, r[i].max, d.gb_per_s, d.pct_of_stream, d.speedup, d.passes, d.bytes);
    if (r[i].max_rel_err >= 0) printf("%.3g}", r[i].max_rel_err);
    else printf("null}");
  }
  printf("]}\n");
}
