/* test_hf_golden.c: the committed Hugging Face goldens (tests/golden/hf/<model>.json, made by scripts/hf_goldens.py with
 * transformers and torch) against librotary_hf + librotary: the same family, dims, frequencies and attention factor,
 * and cos/sin that are closer to the fp64 truth than Hugging Face's own fp32 values. No torch is needed here. */
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
      }
    }
  }
  free(oc), free(os), free(w);
  rotary_rope_destroy(rope);
}

static void check_file(const char *path, int *files) {
  size_t n = 0;
  char *text = read_text(path, &n);
  assert_non_null(text);
  cJSON *root = cJSON_Parse(text);
  if (!root) fail_msg("%s: not JSON", path);
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

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_goldens(void **state) {
  (void)state;
  DIR *d = opendir(ROTARY_GOLDEN_DIR);
  if (!d) fail_msg("cannot open %s", ROTARY_GOLDEN_DIR);
  int files = 0;
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
    check_file(path, &files);
    free(names[i]);
  }
  assert_true(files >= 9); /* the nine models at least */
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_goldens)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
