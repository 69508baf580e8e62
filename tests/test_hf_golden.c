/* test_hf_golden.c: the committed Hugging Face goldens (tests/golden/hf/<model>.json, made by scripts/hf_goldens.py with
 * transformers and torch) against librotary_hf + librotary: the same family, dims, frequencies and attention factor,
 * and cos/sin that are closer to the fp64 truth than Hugging Face's own fp32 values. Format-2 files (issue 12: ropes
 * per layer type, mRoPE streams, 2-D vision) are checked by hand-made configs and, where it reads them, the loader.
 * No torch is needed here. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotary.h"

#ifndef ROTARY_GOLDEN_DIR
#error "ROTARY_GOLDEN_DIR must name tests/golden/hf"
#endif

static char *read_text(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)len + 1);
  if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[len] = '\0';
  *n = (size_t)len;
  return buf;
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsNumber(v)) fail_msg("golden field %s is not a number", k);
  return v->valuedouble;
}

static const cJSON *arr(const cJSON *o, const char *k, size_t n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsArray(v) || (n && (size_t)cJSON_GetArraySize(v) != n))
    fail_msg("golden field %s is not an array of %zu", k, n);
  return v;
}

static double at(const cJSON *a, size_t i) { return cJSON_GetArrayItem(a, (int)i)->valuedouble; }

/* fp32 ulp of x (for |x| in the normal range), the unit the errors are reported in. */
static long double ulp32(long double x) {
  int e;
  frexpl(fabsl(x) > 0x1p-126L ? x : 0x1p-126L, &e);
  return ldexpl(1.0L, e - 24);
}

static void check_file2(const char *path, const char *file, const cJSON *root);

/* How far Hugging Face's fp32 cos/sin of exact angle a (position p) may be from the truth: its angle is
 * fp32(p * w32), off by p |w32 - w64| and a rounding of |a| 2^-24; cos/sin and the scaling add a few 2^-24.
 * Twice that: a golden row that is not the row of its position (or of its stream's id) is far outside it. */
static double hf_bound(long double a, long double p, double w32, double w64, double att) {
  return att * (double)(2 * (fabsl(p) * fabsl((long double)w32 - w64) + fabsl(a) * 0x1p-24L) + 0x1p-21L);
}

typedef struct figures {
  double freq_ulp64;     /* ours vs Hugging Face's formula in fp64, in fp64 ulps */
  double freq_rel_hf32;  /* ours vs Hugging Face's fp32 inv_freq, relative */
  double ours_ulp, hf_ulp; /* cos/sin at the sampled positions against the truth, in fp32 ulps of the truth */
  double ours_hf_abs;    /* |ours - Hugging Face's| */
} figures;

static void check_case(const char *model, const rotary_config *base_cfg, const cJSON *c, figures *f) {
  rotary_config cfg = *base_cfg;
  const cJSON *sl = cJSON_GetObjectItemCaseSensitive(c, "seq_len");
  cfg.seq_len = cJSON_IsNumber(sl) ? (size_t)sl->valuedouble : 0;
  rotary_rope *rope = NULL;
  assert_int_equal(rotary_rope_create(&cfg, 0, &rope), ROTARY_OK);
  const size_t half = cfg.rotary_dim / 2;
  const cJSON *w64 = arr(c, "inv_freq_fp64", half), *w32 = arr(c, "inv_freq_fp32", half);
  double *w = malloc(half * sizeof *w);
  rotary_rope_inv_freq(rope, w);
  for (size_t i = 0; i < half; i++) {
    const double ref = at(w64, i), u = fabs(w[i] - ref) / (ldexp(1.0, ilogb(ref) - 52));
    if (u > f->freq_ulp64) f->freq_ulp64 = u;
    if (u > 64) fail_msg("%s seq_len %zu inv_freq[%zu]: ours %.17g, Hugging Face fp64 %.17g", model, cfg.seq_len, i,
                         w[i], ref);
    const double rel = fabs(w[i] - at(w32, i)) / w[i];
    if (rel > f->freq_rel_hf32) f->freq_rel_hf32 = rel;
  }
  const double att = num(c, "attention_factor"), ours_att = rotary_rope_attention_scaling(rope);
  if (fabs(ours_att - att) > 1e-14 * att)
    fail_msg("%s attention factor: ours %.17g, Hugging Face %.17g", model, ours_att, att);
  const cJSON *pos = arr(c, "positions", 0), *cos_hf = arr(c, "cos", 0), *sin_hf = arr(c, "sin", 0);
  const size_t np = (size_t)cJSON_GetArraySize(pos);
  float *oc = malloc(half * sizeof(float)), *os = malloc(half * sizeof(float));
  for (size_t j = 0; j < np; j++) {
    const int64_t p = (int64_t)at(pos, j);
    assert_int_equal(rotary_rope_cos_sin(rope, &p, 1, oc, os), ROTARY_OK);
    const cJSON *hc = cJSON_GetArrayItem(cos_hf, (int)j), *hs = cJSON_GetArrayItem(sin_hf, (int)j);
    if ((size_t)cJSON_GetArraySize(hc) < half || (size_t)cJSON_GetArraySize(hs) < half)
      fail_msg("%s: cos/sin rows shorter than rotary_dim / 2", model);
    for (size_t i = 0; i < half; i++) {
      /* truth: the fp64 frequency of Hugging Face's formula, the angle in long double */
      const long double a = (long double)p * (long double)at(w64, i);
      const long double tv[2] = {cosl(a) * att, sinl(a) * att};
      const double ours[2] = {oc[i], os[i]}, hf[2] = {at(hc, i), at(hs, i)};
      for (int k = 0; k < 2; k++) {
        /* the truth's own error: |a| * 2^-63 from the long-double product, far below an fp32 ulp of it */
        const long double u = ulp32(tv[k]) + fabsl(a) * 0x1p-62L;
        const double eo = (double)(fabsl(ours[k] - tv[k]) / u), eh = (double)(fabsl(hf[k] - tv[k]) / u);
        if (eo > f->ours_ulp) f->ours_ulp = eo;
        if (eh > f->hf_ulp) f->hf_ulp = eh;
        const double d = fabs(ours[k] - hf[k]);
        if (d > f->ours_hf_abs) f->ours_hf_abs = d;
        const double bound = hf_bound(a, (long double)p, at(w32, i), at(w64, i), att);
        if ((double)fabsl(hf[k] - tv[k]) > bound)
          fail_msg("%s position %lld freq %zu: Hugging Face's %s %.9g is not the row of its position (%.3g off, "
                   "bound %.3g)", model, (long long)p, i, k ? "sin" : "cos", hf[k], (double)fabsl(hf[k] - tv[k]),
                   bound);
      }
    }
  }
  free(oc), free(os), free(w);
  rotary_rope_destroy(rope);
}

static void check_file(const char *path, const char *file, int *files, int *files2) {
  size_t n = 0;
  char *text = read_text(path, &n);
  assert_non_null(text);
  cJSON *root = cJSON_Parse(text);
  if (!root) fail_msg("%s: not JSON", path);
  const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
  if (cJSON_IsNumber(format)) {
    if (format->valuedouble != 2) fail_msg("%s: format %g unknown", path, format->valuedouble);
    check_file2(path, file, root);
    cJSON_Delete(root);
    free(text);
    (*files2)++;
    return;
  }
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  const char *name = cJSON_IsString(model) ? model->valuestring : path;
  char *cfg_text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "config"));
  rotary_hf_config *h = NULL;
  char err[512];
  if (rotary_hf_config_parse(cfg_text, strlen(cfg_text), &h, err, sizeof err) != ROTARY_OK)
    fail_msg("%s: %s", name, err);
  const rotary_config *cfg = rotary_hf_config_rope(h);
  const cJSON *rt = cJSON_GetObjectItemCaseSensitive(root, "rope_type");
  const char *want = cJSON_IsString(rt) ? rt->valuestring : "";
  const char *got = rotary_hf_config_rope_type(h);
  if (strcmp(want, got) && !(strcmp(want, "su") == 0 && strcmp(got, "longrope") == 0))
    fail_msg("%s: rope_type %s, Hugging Face %s", name, got, want);
  assert_int_equal(cfg->head_dim, (size_t)num(root, "head_dim"));
  assert_int_equal(cfg->rotary_dim, (size_t)num(root, "rotary_dim"));
  const cJSON *lay = cJSON_GetObjectItemCaseSensitive(root, "layout");
  const int inter = cJSON_IsString(lay) && !strcmp(lay->valuestring, "interleaved");
  if (cfg->pairing != (inter ? ROTARY_PAIRING_INTERLEAVED : ROTARY_PAIRING_HALF)) fail_msg("%s: pairing", name);
  figures f = {0};
  const cJSON *cases = arr(root, "cases", 0), *c;
  cJSON_ArrayForEach(c, cases) check_case(name, cfg, c, &f);
  printf("[golden] %-28s %-8s d=%-3zu inv_freq vs HF fp64 %5.2f ulp64, vs HF fp32 %.2g rel | cos/sin vs truth: ours "
         "%.3g ulp, HF fp32 %.3g ulp | max |ours - HF| %.3g\n",
         name, got, cfg->rotary_dim, f.freq_ulp64, f.freq_rel_hf32, f.ours_ulp, f.hf_ulp, f.ours_hf_abs);
  /* ours are the closer to the truth, and within one fp32 ulp of it */
  if (f.ours_ulp > 1.0) fail_msg("%s: our cos/sin are %.3g fp32 ulps from the truth", name, f.ours_ulp);
  if (f.ours_ulp > f.hf_ulp) fail_msg("%s: ours (%.3g ulp) further from the truth than Hugging Face's (%.3g)", name,
                                      f.ours_ulp, f.hf_ulp);
  cJSON_free(cfg_text);
  rotary_hf_config_destroy(h);
  cJSON_Delete(root);
  free(text);
  (*files)++;
}

/* ---- format 2 (issue 12): ropes per layer type, multi-stream (mRoPE) and 2-D vision positions ---------------- */

/* Families whose config.json the loader must read (the rest: by hand only, the loader tried and reported). */
static const char *const loader_families[] = {"gemma-3-27b-it.json", "glm-4-9b-0414.json", "qwen2-vl-7b-instruct.json",
                                              "qwen2.5-vl-7b-instruct.json", "qwen3-vl-8b-instruct.json", NULL};

static int loader_required(const char *file) {
  for (size_t i = 0; loader_families[i]; i++)
    if (!strcmp(loader_families[i], file)) return 1;
  return 0;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  if (!cJSON_IsString(v)) fail_msg("golden field %s is not a string", k);
  return v->valuestring;
}

/* rotary_config from a rope's "rotary" block: the parameters as a caller states them by hand. */
static void hand_config(const cJSON *r, rotary_config *c) {
  rotary_config_init(c, (size_t)num(r, "head_dim"));
  c->rotary_dim = (size_t)num(r, "rotary_dim");
  c->pairing = strcmp(str(r, "pairing"), "interleaved") ? ROTARY_PAIRING_HALF : ROTARY_PAIRING_INTERLEAVED;
  c->base = num(r, "base");
  const cJSON *sc = cJSON_GetObjectItemCaseSensitive(r, "scaling");
  if (sc) {
    const char *t = str(sc, "type");
    if (strcmp(t, "linear")) fail_msg("golden scaling type %s: not handled by this test", t);
    c->scaling.type = ROTARY_SCALING_LINEAR;
    c->scaling.factor = num(sc, "factor");
  }
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "streams");
  if (!st) return;
  static const char *const names[] = {"none", "sections", "interleaved", "vision_2d", "vision_2d_pixtral"};
  const char *lay = str(st, "layout");
  size_t k = 0;
  while (k < 5 && strcmp(names[k], lay)) k++;
  if (k == 5) fail_msg("golden streams layout %s: unknown", lay);
  c->streams.layout = (rotary_stream_layout)k;
  c->streams.n_streams = (size_t)num(st, "n_streams");
  const cJSON *sec = cJSON_GetObjectItemCaseSensitive(st, "sections");
  for (size_t j = 0; sec && j < (size_t)cJSON_GetArraySize(sec) && j < ROTARY_MAX_STREAMS; j++)
    c->streams.sections[j] = (size_t)at(sec, j);
}

typedef struct figures2 {
  double freq_ulp64, ours_ulp, hf_ulp, ours_hf_abs;
  double hf_bound; /* Hugging Face's largest distance from the truth as a share of its bound */
  size_t rows;
} figures2;

/* The rows of one pattern: ours (both entry points where they apply) against the truth and Hugging Face's. */
static void check_pattern(const char *tag, const rotary_rope *rope, const cJSON *p, const double *w32,
                          const double *w64, const uint8_t *smap, double att, figures2 *f) {
  const size_t half = rotary_rope_rotary_dim(rope) / 2, ns = rotary_rope_streams(rope);
  const cJSON *ids_j = arr(p, "ids", ns), *hc = arr(p, "cos", 0), *hs = arr(p, "sin", 0);
  const size_t T = (size_t)cJSON_GetArraySize(cJSON_GetArrayItem(ids_j, 0));
  int64_t *ids = malloc(ns * T * sizeof *ids);
  float *oc = malloc(T * half * sizeof(float)), *os = malloc(T * half * sizeof(float));
  float *c1 = malloc(half * sizeof(float)), *s1 = malloc(half * sizeof(float));
  for (size_t j = 0; j < ns; j++) {
    const cJSON *row = cJSON_GetArrayItem(ids_j, (int)j);
    if ((size_t)cJSON_GetArraySize(row) != T) fail_msg("%s: stream %zu has not %zu ids", tag, j, T);
    for (size_t t = 0; t < T; t++) ids[j * T + t] = (int64_t)at(row, t);
  }
  assert_int_equal(rotary_rope_cos_sin_streams(rope, ids, T, T, oc, os), ROTARY_OK);
  float *oc0 = malloc(T * half * sizeof(float)), *os0 = malloc(T * half * sizeof(float));
  assert_int_equal(rotary_rope_cos_sin_streams(rope, ids, 0, T, oc0, os0), ROTARY_OK); /* stride 0 means n */
  if (memcmp(oc, oc0, T * half * sizeof(float)) || memcmp(os, os0, T * half * sizeof(float)))
    fail_msg("%s: stream_stride 0 and n give different rows", tag);
  free(oc0), free(os0);
  if ((size_t)cJSON_GetArraySize(hc) != T || (size_t)cJSON_GetArraySize(hs) != T) fail_msg("%s: rows != ids", tag);
  for (size_t t = 0; t < T; t++) {
    int agree = 1;
    for (size_t j = 1; j < ns; j++) agree &= ids[j * T + t] == ids[t];
    if (agree) { /* a token whose streams agree gets the plain 1-D row, bit for bit */
      assert_int_equal(rotary_rope_cos_sin(rope, &ids[t], 1, c1, s1), ROTARY_OK);
      if (memcmp(c1, oc + t * half, half * sizeof(float)) || memcmp(s1, os + t * half, half * sizeof(float)))
        fail_msg("%s token %zu: streams agree, rows differ from rotary_rope_cos_sin", tag, t);
    }
    const cJSON *hcr = cJSON_GetArrayItem(hc, (int)t), *hsr = cJSON_GetArrayItem(hs, (int)t);
    if ((size_t)cJSON_GetArraySize(hcr) != half || (size_t)cJSON_GetArraySize(hsr) != half)
      fail_msg("%s: rows are not rotary_dim / 2 long", tag);
    for (size_t i = 0; i < half; i++) {
      const long double a = (long double)ids[smap[i] * T + t] * (long double)w64[i];
      const long double tv[2] = {cosl(a) * att, sinl(a) * att};
      const double ours[2] = {oc[t * half + i], os[t * half + i]};
      const double hf[2] = {(float)at(hcr, i), (float)at(hsr, i)};
      for (int k = 0; k < 2; k++) {
        const long double u = ulp32(tv[k]) + fabsl(a) * 0x1p-62L;
        const double eo = (double)(fabsl(ours[k] - tv[k]) / u), eh = (double)(fabsl(hf[k] - tv[k]) / u);
        if (eo > f->ours_ulp) f->ours_ulp = eo;
        if (eh > f->hf_ulp) f->hf_ulp = eh;
        if (fabs(ours[k] - hf[k]) > f->ours_hf_abs) f->ours_hf_abs = fabs(ours[k] - hf[k]);
        const double bound = hf_bound(a, (long double)ids[smap[i] * T + t], w32[i], w64[i], att);
        const double dh = (double)fabsl(hf[k] - tv[k]);
        if (dh / bound > f->hf_bound) f->hf_bound = dh / bound;
        if (dh > bound) fail_msg("%s token %zu freq %zu: Hugging Face's %s %.9g is %.3g from the row of these ids "
                                 "(bound %.3g)", tag, t, i, k ? "sin" : "cos", hf[k], dh, bound);
      }
    }
  }
  f->rows += T;
  free(ids), free(oc), free(os), free(c1), free(s1);
}

static double pattern_max_id(const cJSON *p) {
  double m = 0;
  const cJSON *row, *id;
  cJSON_ArrayForEach(row, arr(p, "ids", 0)) cJSON_ArrayForEach(id, row) m = id->valuedouble > m ? id->valuedouble : m;
  return m;
}

/* Positions of a table that holds every pattern with ids below 2^16 (0: none does, no table is made). */
static size_t table_positions(const cJSON *r) {
  double m = -1;
  const cJSON *p;
  cJSON_ArrayForEach(p, arr(r, "patterns", 0)) {
    const double pm = pattern_max_id(p);
    if (pm < 65536 && pm > m) m = pm;
  }
  return (size_t)(m + 1);
}

/* One rope of a format-2 file made from cfg (by hand or by the loader): frequencies, stream map, attention factor,
 * and every pattern's rows, table-free and from a table where the ids fit one. */
static void check_rope2(const char *tag, const rotary_config *cfg, const cJSON *r, figures2 *f) {
  const cJSON *rot = cJSON_GetObjectItemCaseSensitive(r, "rotary");
  const size_t half = (size_t)num(rot, "rotary_dim") / 2;
  assert_int_equal(cfg->rotary_dim, 2 * half);
  assert_int_equal(cfg->head_dim, (size_t)num(rot, "head_dim"));
  const int inter = !strcmp(str(rot, "pairing"), "interleaved");
  if (cfg->pairing != (inter ? ROTARY_PAIRING_INTERLEAVED : ROTARY_PAIRING_HALF)) fail_msg("%s: pairing", tag);
  const cJSON *w64j = arr(r, "inv_freq_fp64", half), *w32j = arr(r, "inv_freq_fp32", half);
  const cJSON *smj = arr(r, "stream_of_frequency", half);
  double *w = malloc(half * sizeof *w), *w64 = malloc(half * sizeof *w64), *w32 = malloc(half * sizeof *w32);
  uint8_t *smap = malloc(half);
  const size_t table_rows = table_positions(r);
  for (int table = 0; table < (table_rows ? 2 : 1); table++) {
    rotary_rope *rope = NULL;
    assert_int_equal(rotary_rope_create(cfg, table ? table_rows : 0, &rope), ROTARY_OK);
    assert_int_equal(rotary_rope_inv_freq(rope, w), ROTARY_OK);
    for (size_t i = 0; i < half; i++) {
      w64[i] = at(w64j, i), w32[i] = at(w32j, i);
      const double u = fabs(w[i] - w64[i]) / ldexp(1.0, ilogb(w64[i]) - 52);
      if (u > f->freq_ulp64) f->freq_ulp64 = u;
      if (u > 64) fail_msg("%s inv_freq[%zu]: ours %.17g, Hugging Face fp64 %.17g", tag, i, w[i], w64[i]);
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(rot, "streams");
    const size_t ns = st ? (size_t)num(st, "n_streams") : 1;
    assert_int_equal(rotary_rope_streams(rope), ns);
    assert_int_equal(rotary_rope_stream_map(rope, smap), ROTARY_OK);
    for (size_t i = 0; i < half; i++)
      if (smap[i] != (uint8_t)at(smj, i)) fail_msg("%s: frequency %zu turns by stream %u, HF's by %g", tag, i,
                                                   (unsigned)smap[i], at(smj, i));
    const double att = num(r, "attention_factor");
    if (fabs(rotary_rope_attention_scaling(rope) - att) > 1e-14 * att) fail_msg("%s: attention factor", tag);
    const cJSON *p;
    cJSON_ArrayForEach(p, arr(r, "patterns", 0)) {
      if (table && pattern_max_id(p) >= (double)table_rows) continue;
      char ptag[256];
      snprintf(ptag, sizeof ptag, "%s %s%s", tag, str(p, "name"), table ? " (table)" : "");
      check_pattern(ptag, rope, p, w32, w64, smap, att, f);
    }
    rotary_rope_destroy(rope);
  }
  free(w), free(w64), free(w32), free(smap);
}

static void report2(const char *tag, const figures2 *f) {
  printf("[golden] %-40s inv_freq vs HF fp64 %5.2f ulp64 | %3zu rows: ours %.3g ulp, HF fp32 %.3g ulp from the truth "
         "(%.2f of its bound) | max |ours - HF| %.3g\n", tag, f->freq_ulp64, f->rows, f->ours_ulp, f->hf_ulp,
         f->hf_bound, f->ours_hf_abs);
  if (f->ours_ulp > 1.0) fail_msg("%s: our cos/sin are %.3g fp32 ulps from the truth", tag, f->ours_ulp);
  if (f->ours_ulp > f->hf_ulp)
    fail_msg("%s: ours (%.3g ulp) further from the truth than Hugging Face's (%.3g)", tag, f->ours_ulp, f->hf_ulp);
}

/* The first field in which the loader's config differs from the one made by hand (NULL: none). */
static const char *config_differs(const rotary_config *a, const rotary_config *b) {
  if (a->head_dim != b->head_dim) return "head_dim differs";
  if (a->rotary_dim != b->rotary_dim) return "rotary_dim differs";
  if (a->pairing != b->pairing) return "pairing differs";
  if (a->base != b->base) return "base differs";
  if (a->scaling.type != b->scaling.type) return "scaling.type differs";
  if (a->scaling.type != ROTARY_SCALING_NONE && a->scaling.factor != b->scaling.factor) return "scaling.factor differs";
  if (a->streams.layout != b->streams.layout) return "streams.layout differs";
  const size_t na = a->streams.n_streams ? a->streams.n_streams : 2, nb = b->streams.n_streams ? b->streams.n_streams : 2;
  if (a->streams.layout != ROTARY_STREAMS_NONE && na != nb) return "streams.n_streams differs";
  if (memcmp(a->streams.sections, b->streams.sections, sizeof a->streams.sections)) return "streams.sections differ";
  return NULL;
}

/* The loader's ropes for a format-2 file, each against the golden rope of its name; layer types too. Returns a
 * static reason when the loader cannot give them (a refusal, another rope count, a missing rope). */
static const char *loader_check(const char *file, const cJSON *root, const cJSON *ropes, char *err, size_t errn) {
  char *cfg_text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "config"));
  rotary_hf_config *h = NULL;
  const char *why = NULL;
  if (rotary_hf_config_parse(cfg_text, strlen(cfg_text), &h, err, errn) != ROTARY_OK) why = err;
  const size_t n = (size_t)cJSON_GetArraySize(ropes);
  if (!why && rotary_hf_config_rope_count(h) != n) why = "another number of ropes";
  for (size_t k = 0; !why && k < n; k++) {
    const cJSON *r = cJSON_GetArrayItem(ropes, (int)k);
    const rotary_config *c = NULL;
    for (size_t i = 0; i < n && !c; i++)
      if (!strcmp(rotary_hf_config_rope_name(h, i), str(r, "name"))) c = rotary_hf_config_rope_at(h, i);
    if (!c) {
      why = "a rope name missing";
      break;
    }
    rotary_config hand;
    hand_config(cJSON_GetObjectItemCaseSensitive(r, "rotary"), &hand);
    if ((why = config_differs(c, &hand)) != NULL) break;
    char tag[160];
    snprintf(tag, sizeof tag, "%s/%s (loader)", file, str(r, "name"));
    figures2 f = {0};
    check_rope2(tag, c, r, &f);
    report2(tag, &f);
  }
  const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types"), *t;
  size_t layer = 0, idx = 0;
  if (!why && lt) { /* rope 0 is the full-attention one, the one rotary_hf_config_rope gives */
    if (strcmp(rotary_hf_config_rope_name(h, 0), "full_attention")) fail_msg("%s: rope 0 is not full_attention", file);
    assert_ptr_equal(rotary_hf_config_rope(h), rotary_hf_config_rope_at(h, 0));
    assert_int_equal(rotary_hf_config_layers(h), (size_t)cJSON_GetArraySize(lt));
    cJSON_ArrayForEach(t, lt) {
      assert_int_equal(rotary_hf_config_layer_rope(h, layer, &idx), ROTARY_OK);
      if (strcmp(rotary_hf_config_rope_name(h, idx), t->valuestring))
        fail_msg("%s layer %zu: rope %s, Hugging Face's layer type %s", file, layer, rotary_hf_config_rope_name(h, idx),
                 t->valuestring);
      layer++;
    }
    assert_int_equal(rotary_hf_config_layer_rope(h, layer, &idx), ROTARY_ERR_LAYER);
  }
  rotary_hf_config_destroy(h);
  cJSON_free(cfg_text);
  return why;
}

static void check_file2(const char *path, const char *file, const cJSON *root) {
  const cJSON *ropes = arr(root, "ropes", 0), *r;
  cJSON_ArrayForEach(r, ropes) { /* by hand, from the parameters the golden states */
    rotary_config cfg;
    hand_config(cJSON_GetObjectItemCaseSensitive(r, "rotary"), &cfg);
    char tag[160];
    snprintf(tag, sizeof tag, "%s/%s", file, str(r, "name"));
    figures2 f = {0};
    check_rope2(tag, &cfg, r, &f);
    report2(tag, &f);
  }
  if (!strcmp(str(root, "kind"), "vision")) return; /* a vision encoder's rope is not in the loader's contract */
  char err[512];
  const char *why = loader_check(file, root, ropes, err, sizeof err);
  if (why && loader_required(file)) fail_msg("%s: the loader: %s", path, why);
  if (why) printf("[golden] %-40s loader: not yet (%s)\n", file, why);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_goldens(void **state) {
  (void)state;
  DIR *d = opendir(ROTARY_GOLDEN_DIR);
  if (!d) fail_msg("cannot open %s", ROTARY_GOLDEN_DIR);
  int files = 0, files2 = 0;
  char *names[64];
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d)) && n < 64;) {
    const size_t len = strlen(e->d_name);
    if (len > 5 && !strcmp(e->d_name + len - 5, ".json")) names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof names[0], by_name);
  for (size_t i = 0; i < n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ROTARY_GOLDEN_DIR, names[i]);
    check_file(path, names[i], &files, &files2);
    free(names[i]);
  }
  assert_true(files >= 17);  /* issue 4's nine models and more, issue 12's one-rope text families */
  assert_true(files2 >= 7);  /* issue 12: Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Gemma 3, GLM-4, two vision encoders */
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_goldens)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
