/* bench_tune.c: `rotary bench --tune`: the fused call with each candidate value of every setting (the values
 * rotary_context_tune and `rotary tune` search), a row each, then the fastest value of each setting on this run. */
#include <stdio.h>

#include "bench.h"
#include "context.h"
#include "tuning.h"

/* A value as the tables show it: "off", "64 MiB", "16 KiB" or the number. */
static void value_text(const rotary_setting_info *info, int64_t v, char *buf, size_t size) {
  if (info->has_off && v == info->min) snprintf(buf, size, "off");
  else if (v >= 1 << 20 && v % (1 << 20) == 0) snprintf(buf, size, "%lld MiB", (long long)(v >> 20));
  else if (v >= 1 << 10 && v % (1 << 10) == 0) snprintf(buf, size, "%lld KiB", (long long)(v >> 10));
  else snprintf(buf, size, "%lld", (long long)v);
}

/* The context's settings (read under its lock, as a call reads them). */
static rotary_tuning current(rotary_context *ctx) {
  rotary_context_lock(ctx);
  const rotary_tuning t = *rotary_context_tuning(ctx);
  rotary_context_unlock(ctx);
  return t;
}

/* Row arg: the fused call with one setting at the row's value, the others as the context has them; the context's
 * settings (values and sources) are put back after the call. */
static rotary_status tune_run(bench_setup *s, size_t arg) {
  const rotary_tuning saved = current(s->ctx);
  rotary_tuning t = saved;
  rotary_tuning_put(&t, s->tune.setting[arg], s->tune.value[arg], ROTARY_SOURCE_SET);
  rotary_context_set_tuning(s->ctx, &t);
  const rotary_status st = rotary_apply(s->ctx, s->rope, &s->desc);
  rotary_context_set_tuning(s->ctx, &saved);
  return st;
}

int bench_is_tune_row(const bench_impl *impl) { return impl->run == tune_run; }

static double tune_bytes(const bench_setup *s) { return bench_impl_fused.bytes(s); }

void bench_tune_rows(bench_setup *s) {
  bench_tune_set *u = &s->tune;
  const rotary_tuning now = current(s->ctx);
  u->n = 0;
  for (int k = 0; k < ROTARY_SETTING_COUNT; k++) {
    const rotary_setting setting = (rotary_setting)k;
    const rotary_setting_info *info = rotary_setting_info_of(setting);
    for (const int64_t *c = info->candidates; *c != INT64_MIN && u->n < BENCH_TUNE_MAX; c++) {
      if (*c == rotary_tuning_get(&now, setting)) continue; /* that one is the fused row */
      const size_t i = u->n++;
      char text[32];
      value_text(info, *c, text, sizeof text);
      u->setting[i] = setting;
      u->value[i] = *c;
      if (info->has_off && *c == info->min) snprintf(u->ids[i], sizeof u->ids[i], "fused_%s_off", info->name);
      else snprintf(u->ids[i], sizeof u->ids[i], "fused_%s_%lld", info->name, (long long)*c);
      snprintf(u->labels[i], sizeof u->labels[i], "(c) %s %s", info->name, text);
      u->rows[i] = (bench_impl){u->ids[i], u->labels[i], tune_run, tune_bytes, 1, NULL, i};
    }
  }
}

/* Per setting: its fastest value on this run against the current one (the fused row). */
void bench_print_tune(const bench_setup *s, const bench_result *r, size_t n) {
  const bench_result *fused = NULL;
  for (size_t i = 0; i < n; i++)
    if (r[i].impl == &bench_impl_fused) fused = &r[i];
  if (!fused) return;
  const rotary_tuning now = current(s->ctx);
  printf("\ntune: the fastest value of each setting on this run (the others as the context has them), against\n"
         "the current value, the fused row (%.4f ms):\n", fused->median);
  for (int k = 0; k < ROTARY_SETTING_COUNT; k++) {
    const rotary_setting setting = (rotary_setting)k;
    const rotary_setting_info *info = rotary_setting_info_of(setting);
    const bench_result *best = fused;
    for (size_t i = 0; i < n; i++)
      if (bench_is_tune_row(r[i].impl) && s->tune.setting[r[i].impl->arg] == setting && r[i].median < best->median)
        best = &r[i];
    char cur[32], val[32];
    value_text(info, rotary_tuning_get(&now, setting), cur, sizeof cur);
    printf("  %-18s current %s (%s): ", info->name, cur, rotary_setting_source_name(now.source[k]));
    if (best == fused) {
      printf("no candidate ran faster\n");
      continue;
    }
    const int64_t v = s->tune.value[best->impl->arg];
    value_text(info, v, val, sizeof val);
    printf("%s ran %.1f%% faster (%.4f ms): --set %s=", val, (fused->median / best->median - 1) * 100, best->median,
           info->name);
    if (info->has_off && v == info->min) printf("off\n");
    else printf("%lld\n", (long long)v);
  }
  printf("One run of one shape is noisy: `rotary tune` times candidates in alternating rounds, keeps what wins beyond\n"
         "the noise and writes a tuning file (load it with --tuning FILE or ROTARY_TUNING_FILE).\n");
}
