/* test_hf_oom.c: the JSON readers under failed allocations (librotary_hf's config.json, librotary's tuning files):
 * the Nth malloc/calloc/realloc fails (N = 1, 2, ... until the call succeeds) and every failure must be
 * OUT_OF_MEMORY with a message, never CONFIG or TUNING, never a leak, nothing changed or left behind. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rotary.h"

#ifdef ROTARY_TEST_WRAP_MALLOC
/* The link wraps malloc, calloc, realloc and free (-Wl,--wrap=...) for this program and the static libraries in
 * it: allocation number fail_at (counted from arming) fails, or, with fail_all, every one from there on. live
 * counts blocks handed out minus blocks freed, so that a leak on any path shows. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static struct {
  int armed, fail_all;
  long count, fail_at, failed;
  long live;
  size_t largest; /* the largest request while armed */
} inj;

static int inject_size(size_t n) {
  if (inj.armed && n > inj.largest) inj.largest = n;
  return 0;
}

static int inject(void) {
  if (!inj.armed) return 0;
  inj.count++;
  if (inj.count == inj.fail_at || (inj.fail_all && inj.count > inj.fail_at)) {
    inj.failed++;
    return 1;
  }
  return 0;
}

void *__wrap_malloc(size_t n) {
  if (inject_size(n) || inject()) return NULL;
  void *p = __real_malloc(n);
  if (p) inj.live++;
  return p;
}

void *__wrap_calloc(size_t k, size_t n) {
  if (inject_size(k * n) || inject()) return NULL;
  void *p = __real_calloc(k, n);
  if (p) inj.live++;
  return p;
}

void *__wrap_realloc(void *old, size_t n) {
  if (inject_size(n) || inject()) return NULL;
  void *p = __real_realloc(old, n);
  if (p && !old) inj.live++;
  return p;
}

void __wrap_free(void *p) {
  if (p) inj.live--;
  __real_free(p);
}

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  char *buf = __real_malloc(1 << 20);
  assert_non_null(buf);
  *n = fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  buf[*n] = '\0';
  return buf;
}

/* One text, parsed from memory (or loaded from path), with allocation N failing for N = 1.. until it succeeds. */
static void sweep_text(const char *name, const char *path, const char *text, size_t n, int fail_all, int load) {
  char err[256];
  long oom = 0;
  for (long at = 1;; at++) {
    rotary_hf_config *h = (rotary_hf_config *)(void *)&h;
    memset(err, 'x', sizeof err);
    const long live = inj.live;
    inj.armed = 1, inj.fail_all = fail_all, inj.count = 0, inj.fail_at = at, inj.failed = 0;
    const rotary_status st = load ? rotary_hf_config_load(path, &h, err, sizeof err)
                                  : rotary_hf_config_parse(text, n, &h, err, sizeof err);
    inj.armed = 0;
    if (st == ROTARY_OK) {
      assert_int_equal(err[0], '\0');
      rotary_hf_config_destroy(h);
      if (inj.live != live) fail_msg("%s: leak of %ld blocks after success at N=%ld", name, inj.live - live, at);
      if (inj.failed) fail_msg("%s: allocation %ld failed yet the parse succeeded", name, at);
      break;
    }
    if (st != ROTARY_ERR_OUT_OF_MEMORY || !memchr(err, '\0', sizeof err) || !err[0])
      fail_msg("%s (%s%s): allocation %ld failed: status %d (%s), message \"%.200s\"", name, load ? "load" : "parse",
               fail_all ? ", all after" : "", at, (int)st, rotary_status_string(st),
               memchr(err, '\0', sizeof err) ? err : "(not terminated)");
    assert_ptr_equal(h, (rotary_hf_config *)(void *)&h);
    if (inj.live != live) fail_msg("%s: leak of %ld blocks after failure at N=%ld", name, inj.live - live, at);
    oom++;
    if (at > 100000) fail_msg("%s: no success after %ld allocations", name, at);
  }
  printf("%-34s %s%s: %ld failure points, each OUT_OF_MEMORY with a message\n", name, load ? "load " : "parse",
         fail_all ? " (all after N)" : "              ", oom);
}

static void sweep(const char *name, int fail_all, int load) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", ROTARY_EXAMPLES_DIR, name);
  size_t n = 0;
  char *text = slurp(path, &n);
  sweep_text(name, path, text, n, fail_all, load);
  __real_free(text);
}

static const char *files[] = {"llama-3.1-8b.json", "phi-3-mini-128k-instruct.json", "qwen2.5-7b-instruct-yarn.json",
                              "deepseek-v2-lite.json", "llama-3.1-8b-rope-parameters.json"};

static void test_parse_oom(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    sweep(files[i], 0, 0);
    sweep(files[i], 1, 0);
  }
}

/* Per-layer ropes (one LongRoPE factor block per layer type, the layer map of layer_types) and mRoPE sections. */
static void test_layers_oom(void **state) {
  (void)state;
  static const char *const texts[][2] = {
      {"layer_types, two LongRoPE ropes",
       "{\"head_dim\":8,\"max_position_embeddings\":4096,\"layer_types\":[\"sliding_attention\",\"full_attention\"],"
       "\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"longrope\",\"short_factor\":[1,1,1,1],"
       "\"long_factor\":[2,2,2,2]},\"sliding_attention\":{\"rope_type\":\"longrope\",\"short_factor\":[1,1,1,1],"
       "\"long_factor\":[3,3,3,3]}}}"},
      {"gemma3 composite",
       "{\"model_type\":\"gemma3\",\"text_config\":{\"model_type\":\"gemma3_text\",\"num_hidden_layers\":34,"
       "\"rope_scaling\":{\"factor\":8.0,\"rope_type\":\"linear\"}}}"},
      {"qwen2_vl mrope",
       "{\"model_type\":\"qwen2_vl\",\"hidden_size\":3584,\"num_attention_heads\":28,\"rope_theta\":1e6,"
       "\"rope_scaling\":{\"type\":\"mrope\",\"mrope_section\":[16,24,24]}}"},
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    sweep_text(texts[i][0], "", texts[i][1], strlen(texts[i][1]), 0, 0);
    sweep_text(texts[i][0], "", texts[i][1], strlen(texts[i][1]), 1, 0);
  }
}

static void test_load_oom(void **state) {
  (void)state;
  sweep("phi-3-mini-128k-instruct.json", 0, 1);
  sweep("llama-3.1-8b.json", 1, 1);
}

/* Dimensions are checked before anything is sized from them: a LongRoPE config with head_dim 2^27 (or 2^52) is
 * refused without a large allocation (it used to ask malloc for 1 GiB, or 2^55 bytes, first). */
static void test_no_large_allocation(void **state) {
  (void)state;
  static const char *dims[] = {"134217728", "4503599627370496", "65538"};
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
    char json[512], err[256];
    snprintf(json, sizeof json, "{\"head_dim\":%s,\"max_position_embeddings\":131072,\"rope_scaling\":{\"type\":"
             "\"longrope\",\"short_factor\":[1,2],\"long_factor\":[1,2]}}", dims[i]);
    rotary_hf_config *h = NULL;
    inj.armed = 1, inj.fail_all = 0, inj.count = 0, inj.fail_at = 0, inj.largest = 0;
    const rotary_status st = rotary_hf_config_parse(json, strlen(json), &h, err, sizeof err);
    inj.armed = 0;
    printf("head_dim %s: status %d \"%s\", largest allocation %zu bytes\n", dims[i], (int)st, err, inj.largest);
    assert_int_equal(st, ROTARY_ERR_HEAD_DIM);
    assert_non_null(strstr(err, "head_dim: "));
    assert_true(inj.largest < 4096);
  }
}

/* A syntax error stays CONFIG when memory is plentiful (the OUT_OF_MEMORY verdict is not a catch-all). */
static void test_syntax_error_is_config(void **state) {
  (void)state;
  char err[128];
  rotary_hf_config *h = NULL;
  const char *bad = "{\"hidden_size\": 4096, \"num_attention_heads\": [1, 2,}";
  assert_int_equal(rotary_hf_config_parse(bad, strlen(bad), &h, err, sizeof err), ROTARY_ERR_CONFIG);
  assert_non_null(strstr(err, "not valid JSON"));
  assert_null(h);
}


/* Files in dir (the saved file and nothing else must be there: no temporary file left by a failed save). */
static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* Every setting's value and source, to tell that a failed call changed nothing. */
static void snapshot(rotary_context *ctx, int64_t *v, rotary_setting_source *src) {
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++)
    assert_int_equal(rotary_context_get_setting(ctx, (rotary_setting)s, &v[s], &src[s]), ROTARY_OK);
}

/* One tuning-file call (save when save, else load) with allocation N failing for N = 1.. until it succeeds. */
static void sweep_tuning(rotary_context *ctx, const char *dir, const char *path, int save, int fail_all) {
  char err[512];
  long oom = 0;
  for (long at = 1;; at++) {
    int64_t v0[ROTARY_SETTING_COUNT], v1[ROTARY_SETTING_COUNT];
    rotary_setting_source s0[ROTARY_SETTING_COUNT], s1[ROTARY_SETTING_COUNT];
    if (!save) assert_int_equal(rotary_context_reset_settings(ctx), ROTARY_OK);
    snapshot(ctx, v0, s0);
    memset(err, 'x', sizeof err);
    const long live = inj.live;
    inj.armed = 1, inj.fail_all = fail_all, inj.count = 0, inj.fail_at = at, inj.failed = 0;
    const rotary_status st = save ? rotary_context_save_tuning(ctx, path, "{\"shapes\": [1, 2, 3]}", err, sizeof err)
                                  : rotary_context_load_tuning(ctx, path, err, sizeof err);
    inj.armed = 0;
    if (inj.live != live) fail_msg("tuning %s: leak of %ld blocks at N=%ld", save ? "save" : "load", inj.live - live, at);
    assert_int_equal(count_files(dir), 1);
    if (st == ROTARY_OK) {
      if (inj.failed) fail_msg("tuning %s: allocation %ld failed yet the call succeeded", save ? "save" : "load", at);
      break;
    }
    if (st != ROTARY_ERR_OUT_OF_MEMORY || !memchr(err, '\0', sizeof err) || !strstr(err, path))
      fail_msg("tuning %s: allocation %ld failed: status %d, message \"%.300s\"", save ? "save" : "load", at, (int)st,
               memchr(err, '\0', sizeof err) ? err : "(not terminated)");
    snapshot(ctx, v1, s1);
    assert_memory_equal(v0, v1, sizeof v0);
    assert_memory_equal(s0, s1, sizeof s0);
    oom++;
    if (at > 100000) fail_msg("tuning: no success after %ld allocations", at);
  }
  printf("tuning file %s%s: %ld failure points, each OUT_OF_MEMORY with a message\n", save ? "save" : "load",
         fail_all ? " (all after N)" : "", oom);
}

static void test_tuning_file_oom(void **state) {
  (void)state;
  char dir[] = "/tmp/rotary_oom_XXXXXX", path[256];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/tuning.json", dir);
  rotary_context *ctx = NULL;
  assert_int_equal(rotary_context_create(1, &ctx), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(ctx, ROTARY_SETTING_HEAD_GROUP, 4), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(ctx, ROTARY_SETTING_PREFETCH_BYTES, -1), ROTARY_OK);
  char err[512];
  assert_int_equal(rotary_context_save_tuning(ctx, path, NULL, err, sizeof err), ROTARY_OK); /* the target exists */
  for (int fail_all = 0; fail_all < 2; fail_all++) {
    sweep_tuning(ctx, dir, path, 1, fail_all);
    sweep_tuning(ctx, dir, path, 0, fail_all);
  }
  int64_t v;
  rotary_setting_source src;
  assert_int_equal(rotary_context_get_setting(ctx, ROTARY_SETTING_HEAD_GROUP, &v, &src), ROTARY_OK);
  assert_int_equal(v, 4);
  assert_int_equal(src, ROTARY_SOURCE_FILE);
  rotary_context_destroy(ctx);
  unlink(path);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_oom),
      cmocka_unit_test(test_load_oom),
      cmocka_unit_test(test_layers_oom),
      cmocka_unit_test(test_syntax_error_is_config),
      cmocka_unit_test(test_no_large_allocation),
      cmocka_unit_test(test_tuning_file_oom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void) {
  printf("test_hf_oom: skipped (the linker cannot wrap malloc here)\n");
  return 0;
}
#endif
