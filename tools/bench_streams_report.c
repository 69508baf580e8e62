/* bench_streams_report.c: the table and the --json object of `rotary bench --streams` (schema in docs/bench.md). */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench_streams.h"

static const char *layout_name(rotary_stream_layout l) {
  switch (l) {
    case ROTARY_STREAMS_SECTIONS: return "sections";
    case ROTARY_STREAMS_INTERLEAVED: return "interleaved";
    case ROTARY_STREAMS_VISION_2D: return "vision";
    case ROTARY_STREAMS_VISION_2D_PIXTRAL: return "pixtral";
    case ROTARY_STREAMS_MAP: return "map";
    case ROTARY_STREAMS_NONE: break;
  }
  return "none";
}

static int has_sections(const rotary_streams *st) {
  return st->layout == ROTARY_STREAMS_SECTIONS || st->layout == ROTARY_STREAMS_INTERLEAVED;
}

/* "t,h,w grid of 4 x 32 x 32" and the like; the text pattern and decode described too. */
static void pattern_text(const streams_run *b, char *buf, size_t size) {
  const bench_options *o = b->s.o;
  if (o->streams == BENCH_STREAMS_TEXT) {
    snprintf(buf, size, "text (every stream holds the 1-D id)");
  } else if (o->decode) {
    snprintf(buf, size, "image (independent random ids below %zu per stream)", o->table);
  } else if (b->n_streams == 2) {
    snprintf(buf, size, "image ((row, column) of a %zu-column grid)", b->grid_w);
  } else {
    const size_t frame = b->grid_w * b->grid_h;
    snprintf(buf, size, "image ((t, h, w) of frames of %zu x %zu patches, w fastest: %.3g frames%s)", b->grid_h,
             b->grid_w, (double)o->tokens / (double)frame, b->n_streams == 4 ? "; stream 3 repeats t" : "");
  }
}

void bench_streams_print_header(const streams_run *b) {
  const bench_options *o = b->s.o;
  const rotary_streams *st = &o->stream_layout;
  char pattern[160];
  pattern_text(b, pattern, sizeof pattern);
  printf("rotary bench --streams: %s%s", o->model ? o->model : "", o->model ? ", " : "");
  if (o->decode) printf("decode, %zu sequence%s x 1 token", o->batch, o->batch == 1 ? "" : "s");
  else printf("prefill, batch %zu x %zu tokens", o->batch, o->tokens);
  printf(", %zu q / %zu k heads, head_dim %zu (rotary %zu), %s, %s, %s pairing, %s, %zu thread%s, %zu reps\n",
         o->heads, o->kv_heads, o->head_dim, o->rotary_dim, o->layout == ROTARY_LAYOUT_BHSD ? "bhsd" : "bshd",
         bench_dtype_name(o->dtype), o->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved",
         o->out_of_place ? "out of place" : "in place", o->threads, o->threads == 1 ? "" : "s", o->reps);
  printf("rope: %zu streams, %s", b->n_streams, layout_name(st->layout));
  for (size_t j = 0; has_sections(st) && j < st->n_streams; j++) printf("%c%zu", j ? ',' : ' ', st->sections[j]);
  printf(", table of %zu positions\n1-D: int64 ids (%s); streams: int64 ids [%zu, tokens], %s\n", o->table,
         o->decode ? "random, below the table" : "0..tokens-1", b->n_streams, pattern);
  bench_print_settings(&b->s);
  printf("every call runs once per round, forwards in even rounds and backwards in odd ones, after %d warm-up\n"
         "rounds; ratio = 1-D median / streams median: the streams call's speed as a share of the 1-D call's;\n"
         "per round: 1-D time / streams time in each round, median (min-max)\n\n",
         BENCH_WARMUPS);
  printf("%-11s %12s %21s %12s %21s %8s %24s\n", "rope", "1-D ms", "min-max", "streams ms", "min-max", "ratio",
         "per round (min-max)");
  fflush(stdout);
}

void bench_streams_print_table(const streams_run *b) {
  for (size_t p = 0; p < b->calls / 2; p++) {
    const streams_stat *one = &b->stat[2 * p], *multi = &b->stat[2 * p + 1], *rr = &b->round_ratio[p];
    char range[2][48], round[48];
    snprintf(range[0], sizeof range[0], "%.4f-%.4f", one->min, one->max);
    snprintf(range[1], sizeof range[1], "%.4f-%.4f", multi->min, multi->max);
    snprintf(round, sizeof round, "%.1f%% (%.1f-%.1f%%)", 100 * rr->median, 100 * rr->min, 100 * rr->max);
    printf("%-11s %12.4f %21s %12.4f %21s %7.1f%% %24s\n", p ? "table-free" : "table", one->median, range[0],
           multi->median, range[1], 100 * one->median / multi->median, round);
  }
  printf("\nChecked before timing: the streams calls against %s (largest relative difference:",
         b->s.o->streams == BENCH_STREAMS_TEXT ? "the 1-D call (streams agree)"
                                               : "a COS_SIN call with rows gathered from the table per stream");
  for (size_t k = 1; k < b->calls; k++)
    printf(" %s%s %.2g%s", k < 2 ? "table" : "table-free", k % 2 ? " streams" : " 1-D", b->err[k],
           b->same[k] ? " (same bits)" : "");
  printf(").\n");
  fflush(stdout);
}

/* ---- --json ---- */

static cJSON *json_streams(const streams_run *b) {
  const bench_options *o = b->s.o;
  const rotary_streams *st = &o->stream_layout;
  char pattern[160];
  pattern_text(b, pattern, sizeof pattern);
  cJSON *obj = cJSON_CreateObject(), *sec = cJSON_CreateArray();
  int ok = obj && sec &&
           cJSON_AddStringToObject(obj, "pattern", o->streams == BENCH_STREAMS_TEXT ? "text" : "image") &&
           cJSON_AddStringToObject(obj, "description", pattern) &&
           cJSON_AddStringToObject(obj, "layout", layout_name(st->layout)) &&
           cJSON_AddNumberToObject(obj, "n_streams", (double)b->n_streams) &&
           cJSON_AddStringToObject(obj, "ids", "int64");
  for (size_t j = 0; ok && has_sections(st) && j < st->n_streams; j++)
    ok = cJSON_AddItemToArray(sec, cJSON_CreateNumber((double)st->sections[j]));
  if (ok) ok = cJSON_AddItemToObject(obj, "sections", sec);
  else cJSON_Delete(sec);
  if (!ok) cJSON_Delete(obj);
  return ok ? obj : NULL;
}

static cJSON *json_shape(const bench_options *o) {
  cJSON *shape = cJSON_CreateObject();
  const struct { const char *key; size_t v; } sizes[] = {
      {"batch", o->batch}, {"tokens", o->tokens}, {"heads", o->heads}, {"kv_heads", o->kv_heads},
      {"head_dim", o->head_dim}, {"rotary_dim", o->rotary_dim}, {"table", o->table}};
  int ok = shape != NULL;
  for (size_t i = 0; ok && i < sizeof sizes / sizeof sizes[0]; i++)
    ok = cJSON_AddNumberToObject(shape, sizes[i].key, (double)sizes[i].v) != NULL;
  ok = ok && cJSON_AddStringToObject(shape, "layout", o->layout == ROTARY_LAYOUT_BHSD ? "bhsd" : "bshd") &&
       cJSON_AddStringToObject(shape, "pairing", o->pairing == ROTARY_PAIRING_HALF ? "half" : "interleaved") &&
       cJSON_AddBoolToObject(shape, "in_place", !o->out_of_place) && cJSON_AddNumberToObject(shape, "base", o->base);
  if (!ok) cJSON_Delete(shape);
  return ok ? shape : NULL;
}

/* Row k: call k's times; the streams rows add the ratio of the medians and the per-round ratios. */
static cJSON *json_row(const streams_run *b, size_t k) {
  static const char *const ids[4] = {"fused_ids", "fused_streams", "fused_ids_table_free",
                                     "fused_streams_table_free"};
  const streams_stat *r = &b->stat[k];
  cJSON *row = cJSON_CreateObject();
  int ok = row && cJSON_AddStringToObject(row, "impl", ids[k]) &&
           cJSON_AddStringToObject(row, "rope", k < 2 ? "table" : "table_free") &&
           cJSON_AddStringToObject(row, "positions", k % 2 ? "streams" : "ids") &&
           cJSON_AddNumberToObject(row, "median_ms", bench_sig6(r->median)) &&
           cJSON_AddNumberToObject(row, "min_ms", bench_sig6(r->min)) &&
           cJSON_AddNumberToObject(row, "max_ms", bench_sig6(r->max)) &&
           cJSON_AddNumberToObject(row, "max_rel_err_vs_reference", bench_sig6(b->err[k])) &&
           cJSON_AddBoolToObject(row, "same_bits_as_reference", b->same[k]);
  if (ok && k % 2) {
    const streams_stat *rr = &b->round_ratio[k / 2];
    ok = cJSON_AddNumberToObject(row, "speed_vs_ids", bench_sig6(b->stat[k - 1].median / r->median)) &&
         cJSON_AddNumberToObject(row, "round_ratio_median", bench_sig6(rr->median)) &&
         cJSON_AddNumberToObject(row, "round_ratio_min", bench_sig6(rr->min)) &&
         cJSON_AddNumberToObject(row, "round_ratio_max", bench_sig6(rr->max));
  }
  if (!ok) cJSON_Delete(row);
  return ok ? row : NULL;
}

int bench_streams_print_json(const streams_run *b) {
  const bench_options *o = b->s.o;
  cJSON *doc = cJSON_CreateObject(), *rows = cJSON_CreateArray();
  int ok = doc && rows && cJSON_AddStringToObject(doc, "version", rotary_version_string()) &&
           (o->model ? cJSON_AddStringToObject(doc, "model", o->model) : cJSON_AddNullToObject(doc, "model")) &&
           cJSON_AddStringToObject(doc, "mode", o->decode ? "decode" : "prefill");
  cJSON *part = ok ? json_streams(b) : NULL; /* owned by doc once added */
  ok = part && cJSON_AddItemToObject(doc, "streams", part);
  if (!ok) cJSON_Delete(part);
  part = ok ? json_shape(o) : NULL;
  ok = part && cJSON_AddItemToObject(doc, "shape", part);
  if (!ok) cJSON_Delete(part);
  int wide = 0;
  for (size_t k = 0; k < b->calls; k++) wide |= b->stat[k].max - b->stat[k].min > b->stat[k].median;
  ok = ok && cJSON_AddStringToObject(doc, "dtype", bench_dtype_name(o->dtype)) &&
       cJSON_AddNumberToObject(doc, "threads", (double)o->threads) &&
       cJSON_AddStringToObject(doc, "kernel", rotary_kernel_name(o->dtype, o->pairing)) &&
       cJSON_AddNumberToObject(doc, "reps", (double)o->reps) &&
       cJSON_AddNumberToObject(doc, "warmup_rounds", BENCH_WARMUPS) && cJSON_AddBoolToObject(doc, "stable", !wide) &&
       bench_json_settings(doc, &b->s);
  for (size_t k = 0; ok && k < b->calls; k++) {
    cJSON *row = json_row(b, k);
    ok = row && cJSON_AddItemToArray(rows, row);
  }
  if (ok) ok = cJSON_AddItemToObject(doc, "rows", rows);
  else cJSON_Delete(rows);
  if (!ok) {
    cJSON_Delete(doc);
    return 0;
  }
  return bench_json_print(doc);
}
