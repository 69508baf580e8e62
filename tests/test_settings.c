/* test_settings.c: the settings API (names, ranges, defaults, get/set/reset with sources), the process defaults'
 * precedence (CPU default < ROTARY_TUNING_FILE < each setting's variable, in fresh child processes), the default
 * tuning path, and tuning files saved and loaded again. Malformed files field by field: test_tuning_file.c. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rotary.h"
#include "task_split.h"
#include "tuning.h"
#include "tuning_doc.h"

#define N ROTARY_SETTING_COUNT

/* What the header documents, setting by setting. */
static const struct {
  const char *name, *env;
  int64_t min, max, def; /* def: the CPU default; prefetch's depends on the CPU (checked apart) */
} expected[N] = {
    {"prefetch_bytes", "ROTARY_PREFETCH", -1, 65536, -2},
    {"stream_store_bytes", "ROTARY_STREAM_STORES", -1, (int64_t)1 << 50, (int64_t)16 << 20},
    {"thread_bytes", "ROTARY_THREAD_BYTES", 4096, (int64_t)1 << 30, 65536},
    {"tasks_per_thread", "ROTARY_TASKS_PER_THREAD", 1, 64, 4},
    {"head_group", "ROTARY_HEAD_GROUP", 1, 64, 4},
};

static const char *const env_names[] = {"ROTARY_TUNING_FILE", "ROTARY_PREFETCH", "ROTARY_STREAM_STORES",
                                        "ROTARY_THREAD_BYTES", "ROTARY_TASKS_PER_THREAD", "ROTARY_HEAD_GROUP"};

static char tmp_dir[] = "/tmp/rotary_test_settings_XXXXXX";

/* ---- fresh processes: the process defaults are built once, so each precedence case runs in a child of fork()
 * whose defaults are not built yet. These tests come first in main's list: no test before them may build the
 * defaults in this process (create a context, read a NULL context's settings, run a call). ---- */

#define CHILD_CHECK(cond)                                                          \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "child check failed at line %d: %s\n", __LINE__, #cond);     \
      _exit(1);                                                                    \
    }                                                                              \
  } while (0)

/* Runs fn in a child with every tuning variable unset, then the "NAME=value" pairs of env set. */
static void in_child(const char *what, void (*fn)(const void *), const void *arg, const char *const *env) {
  fflush(NULL);
  const pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++) unsetenv(env_names[i]);
    for (; env && *env; env++) {
      char buf[4096];
      snprintf(buf, sizeof buf, "%s", *env);
      char *eq = strchr(buf, '=');
      if (!eq) _exit(2);
      *eq = '\0';
      if (!strcmp(eq + 1, "<unset>")) unsetenv(buf);
      else setenv(buf, eq + 1, 1);
    }
    fn(arg);
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("%s: the child failed (status %d)", what, status);
}

/* Checks setting s of ctx (NULL: the process defaults), value and source. */
static int has(rotary_context *ctx, rotary_setting s, int64_t value, rotary_setting_source source) {
  int64_t v = 0;
  rotary_setting_source src = ROTARY_SOURCE_TUNED;
  if (rotary_context_get_setting(ctx, s, &v, &src) != ROTARY_OK) return 0;
  if (v != value || src != source)
    fprintf(stderr, "%s: %lld (%s), expected %lld (%s)\n", rotary_setting_name(s), (long long)v,
            rotary_setting_source_name(src), (long long)value, rotary_setting_source_name(source));
  return v == value && src == source;
}

static int64_t cpu_default(rotary_setting s) {
  int64_t v = 0;
  assert_int_equal(rotary_setting_default(s, &v), ROTARY_OK);
  return v;
}

/* Every setting of the process defaults and of a new context is `values` with `sources` (NULL values: defaults). */
static void child_expect(const int64_t *values, const rotary_setting_source *sources) {
  rotary_context *ctx = NULL;
  CHILD_CHECK(rotary_context_create(1, &ctx) == ROTARY_OK);
  for (int s = 0; s < N; s++) {
    int64_t d = 0;
    CHILD_CHECK(rotary_setting_default((rotary_setting)s, &d) == ROTARY_OK);
    const int64_t want = values ? values[s] : d;
    const rotary_setting_source src = sources ? sources[s] : ROTARY_SOURCE_DEFAULT;
    CHILD_CHECK(has(NULL, (rotary_setting)s, want, src));
    CHILD_CHECK(has(ctx, (rotary_setting)s, want, src));
  }
  rotary_context_destroy(ctx);
}

/* The expected status and message of ROTARY_TUNING_FILE's load. */
typedef struct env_case {
  rotary_status status;
  const char *message; /* exact; "" for OK */
  const int64_t *values;
  const rotary_setting_source *sources;
} env_case;

static void child_env_case(const void *arg) {
  const env_case *c = arg;
  char msg[8192];
  memset(msg, 'x', sizeof msg);
  CHILD_CHECK(rotary_tuning_env_status(msg, sizeof msg) == c->status);
  if (strcmp(msg, c->message)) fprintf(stderr, "message \"%s\", expected \"%s\"\n", msg, c->message);
  CHILD_CHECK(!strcmp(msg, c->message));
  CHILD_CHECK(rotary_tuning_env_status(NULL, 0) == c->status);
  if (c->message[0]) { /* cut to the buffer, NUL-terminated */
    char small[8];
    CHILD_CHECK(rotary_tuning_env_status(small, sizeof small) == c->status);
    CHILD_CHECK(strlen(small) == 7 && !strncmp(small, c->message, 7));
  }
  child_expect(c->values, c->sources);
}

/* A tuning file for this CPU and library version with `settings` (a JSON object text) written at path. */
static void write_tuning(const char *path, const char *settings) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "{\"format\": \"rotary-tuning\", \"format_version\": 1, \"library_version\": \"%s\", \"cpu_model\": \"",
          rotary_version_string());
  for (const char *c = rotary_cpu_model(); *c; c++) fprintf(f, *c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
  fprintf(f, "\", \"settings\": %s, \"measured\": {\"calls\": [1, 2.5, null]}}\n", settings);
  assert_int_equal(fclose(f), 0);
}

static void test_env_unset(void **state) {
  (void)state;
  const env_case c = {ROTARY_OK, "", NULL, NULL};
  in_child("nothing set", child_env_case, &c, NULL);
  const char *const empty[] = {"ROTARY_TUNING_FILE=", "ROTARY_HEAD_GROUP=", NULL};
  in_child("empty variables", child_env_case, &c, empty);
}

/* Each setting's variable, "off" where the setting has one; the others keep their defaults. */
static void test_env_each_variable(void **state) {
  (void)state;
  static const char *const values[N][2] = {
      {"off", "4096"}, {"off", "0"}, {"4096", "1073741824"}, {"1", "64"}, {"64", "1"}};
  static const int64_t parsed[N][2] = {{-1, 4096}, {-1, 0}, {4096, (int64_t)1 << 30}, {1, 64}, {64, 1}};
  for (int s = 0; s < N; s++) {
    for (int k = 0; k < 2; k++) {
      char var[64];
      snprintf(var, sizeof var, "%s=%s", expected[s].env, values[s][k]);
      const char *const env[] = {var, NULL};
      int64_t want[N];
      rotary_setting_source src[N];
      for (int i = 0; i < N; i++) want[i] = cpu_default((rotary_setting)i), src[i] = ROTARY_SOURCE_DEFAULT;
      want[s] = parsed[s][k];
      src[s] = ROTARY_SOURCE_ENV;
      const env_case c = {ROTARY_OK, "", want, src};
      in_child(var, child_env_case, &c, env);
    }
  }
  /* all at once */
  const char *const all[] = {"ROTARY_PREFETCH=512", "ROTARY_STREAM_STORES=off", "ROTARY_THREAD_BYTES=8192",
                             "ROTARY_TASKS_PER_THREAD=2", "ROTARY_HEAD_GROUP=16", NULL};
  static const int64_t want[N] = {512, -1, 8192, 2, 16};
  static const rotary_setting_source src[N] = {ROTARY_SOURCE_ENV, ROTARY_SOURCE_ENV, ROTARY_SOURCE_ENV,
                                               ROTARY_SOURCE_ENV, ROTARY_SOURCE_ENV};
  const env_case c = {ROTARY_OK, "", want, src};
  in_child("every variable", child_env_case, &c, all);
}

/* Anything but "off" (where allowed) or a decimal number in range is ignored: the default stays. */
static void test_env_malformed_ignored(void **state) {
  (void)state;
  static const char *const bad[] = {
      "ROTARY_PREFETCH=-1",      "ROTARY_PREFETCH=65537",     "ROTARY_PREFETCH= 5",
      "ROTARY_PREFETCH=5 ",      "ROTARY_PREFETCH=+5",        "ROTARY_PREFETCH=0x10",
      "ROTARY_PREFETCH=OFF",     "ROTARY_STREAM_STORES=1125899906842625",
      "ROTARY_STREAM_STORES=99999999999999999999999", "ROTARY_STREAM_STORES=1e6",
      "ROTARY_THREAD_BYTES=4095", "ROTARY_THREAD_BYTES=0",    "ROTARY_THREAD_BYTES=off",
      "ROTARY_THREAD_BYTES=1073741825", "ROTARY_TASKS_PER_THREAD=0", "ROTARY_TASKS_PER_THREAD=65",
      "ROTARY_TASKS_PER_THREAD=off", "ROTARY_HEAD_GROUP=0",    "ROTARY_HEAD_GROUP=65",
      "ROTARY_HEAD_GROUP=off",   "ROTARY_HEAD_GROUP=4.0",     "ROTARY_HEAD_GROUP=abc"};
  const env_case c = {ROTARY_OK, "", NULL, NULL};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *const env[] = {bad[i], NULL};
    in_child(bad[i], child_env_case, &c, env);
  }
}

/* ROTARY_TUNING_FILE=path: the file's settings (source FILE) over the defaults, each variable over the file. */
static void test_env_file_path(void **state) {
  (void)state;
  char path[512], var[600];
  snprintf(path, sizeof path, "%s/env.json", tmp_dir);
  write_tuning(path, "{\"head_group\": 2, \"tasks_per_thread\": 8, \"stream_store_bytes\": -1}");
  snprintf(var, sizeof var, "ROTARY_TUNING_FILE=%s", path);
  int64_t want[N];
  rotary_setting_source src[N];
  for (int i = 0; i < N; i++) want[i] = cpu_default((rotary_setting)i), src[i] = ROTARY_SOURCE_DEFAULT;
  want[ROTARY_SETTING_HEAD_GROUP] = 2, src[ROTARY_SETTING_HEAD_GROUP] = ROTARY_SOURCE_FILE;
  want[ROTARY_SETTING_TASKS_PER_THREAD] = 8, src[ROTARY_SETTING_TASKS_PER_THREAD] = ROTARY_SOURCE_FILE;
  want[ROTARY_SETTING_STREAM_STORE_BYTES] = -1, src[ROTARY_SETTING_STREAM_STORE_BYTES] = ROTARY_SOURCE_FILE;
  const char *const env[] = {var, NULL};
  const env_case c = {ROTARY_OK, "", want, src};
  in_child("ROTARY_TUNING_FILE", child_env_case, &c, env);
  /* the setting's own variable wins over the file; a malformed one leaves the file's value */
  const char *const env2[] = {var, "ROTARY_HEAD_GROUP=32", "ROTARY_TASKS_PER_THREAD=zero", NULL};
  want[ROTARY_SETTING_HEAD_GROUP] = 32, src[ROTARY_SETTING_HEAD_GROUP] = ROTARY_SOURCE_ENV;
  const env_case c2 = {ROTARY_OK, "", want, src};
  in_child("ROTARY_TUNING_FILE and ROTARY_HEAD_GROUP", child_env_case, &c2, env2);
}

/* "auto": the default path under XDG_CACHE_HOME (else HOME/.cache); no file there, or no directory, is no error. */
static void test_env_file_auto(void **state) {
  (void)state;
  char xdg[512], dir[600], var[1200];
  snprintf(xdg, sizeof xdg, "XDG_CACHE_HOME=%s/cache", tmp_dir);
  const char *const env[] = {"ROTARY_TUNING_FILE=auto", xdg, NULL};
  const env_case none = {ROTARY_OK, "", NULL, NULL};
  in_child("auto, no file", child_env_case, &none, env);
  const char *const no_dirs[] = {"ROTARY_TUNING_FILE=auto", "XDG_CACHE_HOME=<unset>", "HOME=<unset>", NULL};
  in_child("auto, no cache directory", child_env_case, &none, no_dirs);

  snprintf(dir, sizeof dir, "%s/cache", tmp_dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(dir, sizeof dir, "%s/cache/rotary", tmp_dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(setenv("XDG_CACHE_HOME", xdg + strlen("XDG_CACHE_HOME="), 1), 0);
  char path[1024];
  assert_int_equal(rotary_tuning_default_path(path, sizeof path), ROTARY_OK);
  unsetenv("XDG_CACHE_HOME");
  assert_int_equal(strncmp(path, dir, strlen(dir)), 0);
  write_tuning(path, "{\"thread_bytes\": 16384}");
  int64_t want[N];
  rotary_setting_source src[N];
  for (int i = 0; i < N; i++) want[i] = cpu_default((rotary_setting)i), src[i] = ROTARY_SOURCE_DEFAULT;
  want[ROTARY_SETTING_THREAD_BYTES] = 16384, src[ROTARY_SETTING_THREAD_BYTES] = ROTARY_SOURCE_FILE;
  const env_case found = {ROTARY_OK, "", want, src};
  in_child("auto, file found", child_env_case, &found, env);
  /* a bad file found by "auto" is reported like any other */
  write_tuning(path, "{\"thread_bytes\": 16384, \"head_group\": 65}");
  snprintf(var, sizeof var, "%s: settings.head_group: 65 is outside 1 .. 64", path);
  const env_case bad = {ROTARY_ERR_TUNING, var, NULL, NULL};
  in_child("auto, bad file", child_env_case, &bad, env);
  assert_int_equal(unlink(path), 0);
}

/* A file that fails is ignored as a whole (the good settings in it too), and says why; the variables still apply. */
static void test_env_file_rejected(void **state) {
  (void)state;
  char path[512], var[600], msg[800];
  snprintf(path, sizeof path, "%s/bad.json", tmp_dir);
  write_tuning(path, "{\"tasks_per_thread\": 8, \"head_group\": 0}");
  snprintf(var, sizeof var, "ROTARY_TUNING_FILE=%s", path);
  snprintf(msg, sizeof msg, "%s: settings.head_group: 0 is outside 1 .. 64", path);
  const char *const env[] = {var, NULL};
  const env_case c = {ROTARY_ERR_TUNING, msg, NULL, NULL};
  in_child("rejected file", child_env_case, &c, env);

  int64_t want[N];
  rotary_setting_source src[N];
  for (int i = 0; i < N; i++) want[i] = cpu_default((rotary_setting)i), src[i] = ROTARY_SOURCE_DEFAULT;
  want[ROTARY_SETTING_PREFETCH_BYTES] = -1, src[ROTARY_SETTING_PREFETCH_BYTES] = ROTARY_SOURCE_ENV;
  const char *const env2[] = {var, "ROTARY_PREFETCH=off", NULL};
  const env_case c2 = {ROTARY_ERR_TUNING, msg, want, src};
  in_child("rejected file, variable kept", child_env_case, &c2, env2);

  snprintf(path, sizeof path, "%s/missing.json", tmp_dir);
  snprintf(var, sizeof var, "ROTARY_TUNING_FILE=%s", path);
  snprintf(msg, sizeof msg, "%s: file: No such file or directory", path);
  const char *const env3[] = {var, NULL};
  const env_case c3 = {ROTARY_ERR_IO, msg, NULL, NULL};
  in_child("missing file", child_env_case, &c3, env3);
}

/* In a process whose defaults came from the environment, reset goes back to them (values and sources). */
static void child_reset_to_env(const void *arg) {
  (void)arg;
  rotary_context *ctx = NULL;
  CHILD_CHECK(rotary_context_create(2, &ctx) == ROTARY_OK);
  CHILD_CHECK(rotary_context_set_setting(ctx, ROTARY_SETTING_HEAD_GROUP, 3) == ROTARY_OK);
  CHILD_CHECK(has(ctx, ROTARY_SETTING_HEAD_GROUP, 3, ROTARY_SOURCE_SET));
  CHILD_CHECK(rotary_context_reset_settings(ctx) == ROTARY_OK);
  CHILD_CHECK(has(ctx, ROTARY_SETTING_HEAD_GROUP, 5, ROTARY_SOURCE_ENV));
  /* the environment read once: a change now reaches no one */
  setenv("ROTARY_HEAD_GROUP", "6", 1);
  rotary_context *ctx2 = NULL;
  CHILD_CHECK(rotary_context_create(1, &ctx2) == ROTARY_OK);
  CHILD_CHECK(has(ctx2, ROTARY_SETTING_HEAD_GROUP, 5, ROTARY_SOURCE_ENV));
  CHILD_CHECK(has(NULL, ROTARY_SETTING_HEAD_GROUP, 5, ROTARY_SOURCE_ENV));
  rotary_context_destroy(ctx2);
  rotary_context_destroy(ctx);
}

static void test_env_reset(void **state) {
  (void)state;
  const char *const env[] = {"ROTARY_HEAD_GROUP=5", NULL};
  in_child("reset to the environment's value", child_reset_to_env, NULL, env);
}

/* ---- in this process (these build the defaults) ---- */

static void test_names(void **state) {
  (void)state;
  for (int s = 0; s < N; s++) {
    assert_string_equal(rotary_setting_name((rotary_setting)s), expected[s].name);
    assert_string_equal(rotary_setting_env((rotary_setting)s), expected[s].env);
    const rotary_setting_info *info = rotary_setting_info_of((rotary_setting)s);
    assert_non_null(info);
    assert_int_equal(info->has_off, expected[s].min == -1);
    /* candidates: in range, distinct, at least two, ending in INT64_MIN */
    size_t n = 0;
    for (; info->candidates[n] != INT64_MIN; n++) {
      assert_true(info->candidates[n] >= info->min && info->candidates[n] <= info->max);
      for (size_t j = 0; j < n; j++) assert_true(info->candidates[j] != info->candidates[n]);
    }
    assert_true(n >= 2);
  }
  static const rotary_setting bad[] = {(rotary_setting)-1, (rotary_setting)N, (rotary_setting)1000};
  for (size_t i = 0; i < 3; i++) {
    assert_string_equal(rotary_setting_name(bad[i]), "");
    assert_string_equal(rotary_setting_env(bad[i]), "");
    assert_null(rotary_setting_info_of(bad[i]));
  }
  static const char *const sources[] = {"default", "file", "environment", "set", "tuned"};
  for (int s = 0; s < 5; s++) assert_string_equal(rotary_setting_source_name((rotary_setting_source)s), sources[s]);
  assert_string_equal(rotary_setting_source_name((rotary_setting_source)5), "");
  assert_string_equal(rotary_setting_source_name((rotary_setting_source)-1), "");
  assert_string_not_equal(rotary_status_string(ROTARY_ERR_TUNING), rotary_status_string((rotary_status)999));
}

static void test_ranges_and_defaults(void **state) {
  (void)state;
  for (int s = 0; s < N; s++) {
    int64_t lo = 7, hi = 7, def = 7;
    assert_int_equal(rotary_setting_range((rotary_setting)s, &lo, &hi), ROTARY_OK);
    assert_true(lo == expected[s].min && hi == expected[s].max);
    assert_int_equal(rotary_setting_default((rotary_setting)s, &def), ROTARY_OK);
    if (s == ROTARY_SETTING_PREFETCH_BYTES) assert_true(def == 0 || def == 2048);
    else assert_true(def == expected[s].def);
  }
  int64_t lo = 7, hi = 7;
  assert_int_equal(rotary_setting_range(ROTARY_SETTING_HEAD_GROUP, NULL, &hi), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_setting_range(ROTARY_SETTING_HEAD_GROUP, &lo, NULL), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_setting_range((rotary_setting)N, &lo, &hi), ROTARY_ERR_INVALID_ARGUMENT);
  assert_int_equal(rotary_setting_range((rotary_setting)-1, &lo, &hi), ROTARY_ERR_INVALID_ARGUMENT);
  assert_int_equal(rotary_setting_default((rotary_setting)N, &lo), ROTARY_ERR_INVALID_ARGUMENT);
  assert_int_equal(rotary_setting_default(ROTARY_SETTING_HEAD_GROUP, NULL), ROTARY_ERR_NULL_POINTER);
  assert_true(lo == 7 && hi == 7);
}

/* A context's settings: the process defaults at first; set (source SET) within range only; reset. */
static void test_get_set_reset(void **state) {
  (void)state;
  rotary_context *ctx;
  assert_int_equal(rotary_context_create(2, &ctx), ROTARY_OK);
  int64_t def[N];
  rotary_setting_source def_src[N];
  for (int s = 0; s < N; s++) {
    assert_int_equal(rotary_context_get_setting(NULL, (rotary_setting)s, &def[s], &def_src[s]), ROTARY_OK);
    assert_true(has(ctx, (rotary_setting)s, def[s], def_src[s]));
    int64_t v = 0;
    assert_int_equal(rotary_context_get_setting(ctx, (rotary_setting)s, &v, NULL), ROTARY_OK);
    assert_true(v == def[s]);
  }
  for (int s = 0; s < N; s++) {
    const rotary_setting st = (rotary_setting)s;
    const int64_t values[] = {expected[s].min, expected[s].max, expected[s].min + 1};
    for (int k = 0; k < 3; k++) {
      assert_int_equal(rotary_context_set_setting(ctx, st, values[k]), ROTARY_OK);
      assert_true(has(ctx, st, values[k], ROTARY_SOURCE_SET));
    }
    /* out of range: TUNING, nothing changed */
    const int64_t bad[] = {expected[s].min - 1, expected[s].max + 1, INT64_MIN, INT64_MAX};
    for (int k = 0; k < 4; k++) {
      assert_int_equal(rotary_context_set_setting(ctx, st, bad[k]), ROTARY_ERR_TUNING);
      assert_true(has(ctx, st, expected[s].min + 1, ROTARY_SOURCE_SET));
    }
    assert_true(has(NULL, st, def[s], def_src[s])); /* the process defaults untouched */
  }
  /* the internal view the plans read */
  const rotary_tuning *t = rotary_context_tuning(ctx);
  assert_int_equal(t->prefetch_bytes, 0);
  assert_true(t->nt_min_bytes == 0 && t->thread_bytes == 4097 && t->tasks_per_thread == 2 && t->head_group == 2);
  assert_int_equal(rotary_context_set_setting(ctx, ROTARY_SETTING_STREAM_STORE_BYTES, -1), ROTARY_OK);
  assert_true(rotary_context_tuning(ctx)->nt_min_bytes == SIZE_MAX);
  /* unknown setting, NULL pointers */
  int64_t v = 42;
  rotary_setting_source src = ROTARY_SOURCE_TUNED;
  assert_int_equal(rotary_context_set_setting(ctx, (rotary_setting)N, 1), ROTARY_ERR_INVALID_ARGUMENT);
  assert_int_equal(rotary_context_set_setting(ctx, (rotary_setting)-1, 1), ROTARY_ERR_INVALID_ARGUMENT);
  assert_int_equal(rotary_context_set_setting(NULL, ROTARY_SETTING_HEAD_GROUP, 4), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_context_get_setting(ctx, (rotary_setting)N, &v, &src), ROTARY_ERR_INVALID_ARGUMENT);
  assert_int_equal(rotary_context_get_setting(ctx, ROTARY_SETTING_HEAD_GROUP, NULL, &src), ROTARY_ERR_NULL_POINTER);
  assert_true(v == 42 && src == ROTARY_SOURCE_TUNED);
  assert_int_equal(rotary_context_reset_settings(NULL), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_context_reset_settings(ctx), ROTARY_OK);
  for (int s = 0; s < N; s++) assert_true(has(ctx, (rotary_setting)s, def[s], def_src[s]));
  rotary_context_destroy(ctx);
}

/* The split the plans take from the settings: one thread per thread_bytes, tasks_per_thread each, at most 4096. */
static void test_task_split(void **state) {
  (void)state;
  rotary_tuning t = *rotary_tuning_defaults();
  rotary_tuning_put(&t, ROTARY_SETTING_THREAD_BYTES, 4096, ROTARY_SOURCE_SET);
  rotary_tuning_put(&t, ROTARY_SETTING_TASKS_PER_THREAD, 64, ROTARY_SOURCE_SET);
  size_t threads = 0, tasks = 0;
  rotary_task_split(1e12, (size_t)1 << 40, 1024, &t, &threads, &tasks);
  assert_true(threads == 1024 && tasks == ROTARY_MAX_TASKS);
  rotary_task_split(8192.0 * 3, 1000, 1024, &t, &threads, &tasks);
  assert_true(threads == 6 && tasks == 384);
  rotary_task_split(8192.0 * 3, 100, 1024, &t, &threads, &tasks);
  assert_true(threads == 6 && tasks == 100);
  rotary_task_split(4095, 100, 8, &t, &threads, &tasks);
  assert_true(threads == 1 && tasks == 1);
  rotary_tuning_put(&t, ROTARY_SETTING_THREAD_BYTES, (int64_t)1 << 30, ROTARY_SOURCE_SET);
  rotary_tuning_put(&t, ROTARY_SETTING_TASKS_PER_THREAD, 1, ROTARY_SOURCE_SET);
  rotary_task_split(3.5 * (1 << 30), 1000, 8, &t, &threads, &tasks);
  assert_true(threads == 3 && tasks == 3);
}

/* Model text from rotary_cpu_model as the default path spells it: letters and digits, other runs as '-'. */
static void expected_file_name(char *out, size_t size) {
  char model[256];
  size_t n = 0;
  for (const char *c = rotary_cpu_model(); *c && n + 1 < sizeof model; c++) {
    const int alnum = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
    if (alnum) model[n++] = *c;
    else if (n && model[n - 1] != '-') model[n++] = '-';
  }
  while (n && model[n - 1] == '-') n--;
  model[n] = '\0';
  snprintf(out, size, "tuning-%s-%s.json", model, rotary_version_string());
}

static void test_cpu_model_and_default_path(void **state) {
  (void)state;
  const char *model = rotary_cpu_model();
  assert_non_null(model);
  assert_true(model[0] != '\0' && model[0] != ' ' && model[strlen(model) - 1] != ' ');
  assert_null(strstr(model, "  "));
  assert_ptr_equal(rotary_cpu_model(), model);
  char name[512], want[1024], path[1024];
  expected_file_name(name, sizeof name);
  const char *xdg0 = getenv("XDG_CACHE_HOME"), *home0 = getenv("HOME");
  char xdg_saved[1024] = "", home_saved[1024] = "";
  if (xdg0) snprintf(xdg_saved, sizeof xdg_saved, "%s", xdg0);
  if (home0) snprintf(home_saved, sizeof home_saved, "%s", home0);

  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  setenv("HOME", "/home/u", 1);
  snprintf(want, sizeof want, "/x/cache/rotary/%s", name);
  assert_int_equal(rotary_tuning_default_path(path, sizeof path), ROTARY_OK);
  assert_string_equal(path, want);
  /* exactly fits, one byte short */
  char exact[1024];
  memset(exact, '#', sizeof exact);
  assert_int_equal(rotary_tuning_default_path(exact, strlen(want) + 1), ROTARY_OK);
  assert_string_equal(exact, want);
  memset(exact, '#', sizeof exact);
  assert_int_equal(rotary_tuning_default_path(exact, strlen(want)), ROTARY_ERR_OVERFLOW);
  assert_int_equal(exact[0], '#');
  assert_int_equal(rotary_tuning_default_path(exact, 0), ROTARY_ERR_OVERFLOW);
  assert_int_equal(rotary_tuning_default_path(NULL, 100), ROTARY_ERR_NULL_POINTER);

  setenv("XDG_CACHE_HOME", "", 1);
  snprintf(want, sizeof want, "/home/u/.cache/rotary/%s", name);
  assert_int_equal(rotary_tuning_default_path(path, sizeof path), ROTARY_OK);
  assert_string_equal(path, want);
  unsetenv("XDG_CACHE_HOME");
  assert_int_equal(rotary_tuning_default_path(path, sizeof path), ROTARY_OK);
  assert_string_equal(path, want);
  unsetenv("HOME");
  memset(exact, '#', sizeof exact);
  assert_int_equal(rotary_tuning_default_path(exact, sizeof exact), ROTARY_ERR_IO);
  assert_int_equal(exact[0], '#');

  if (xdg0) setenv("XDG_CACHE_HOME", xdg_saved, 1);
  if (home0) setenv("HOME", home_saved, 1);
}

/* save -> load: the settings saved are those from a file, set or tuned; load gives them source FILE and leaves
 * the others; a second round trip keeps them; errors name the file and the field, and change nothing. */
static void test_save_load_round_trip(void **state) {
  (void)state;
  char path[512], path2[512], err[1024];
  snprintf(path, sizeof path, "%s/saved.json", tmp_dir);
  snprintf(path2, sizeof path2, "%s/saved2.json", tmp_dir);
  rotary_context *a, *b, *c;
  assert_int_equal(rotary_context_create(1, &a), ROTARY_OK);
  assert_int_equal(rotary_context_create(1, &b), ROTARY_OK);
  assert_int_equal(rotary_context_create(1, &c), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(a, ROTARY_SETTING_PREFETCH_BYTES, -1), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(a, ROTARY_SETTING_STREAM_STORE_BYTES, (int64_t)1 << 50), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(a, ROTARY_SETTING_HEAD_GROUP, 64), ROTARY_OK);
  err[0] = 'x';
  assert_int_equal(rotary_context_save_tuning(a, path, "  {\"shape\": \"decode\", \"us\": [1.5, 2]}\n", err,
                                              sizeof err),
                   ROTARY_OK);
  assert_string_equal(err, "");
  const char *text = tuning_read_text(path);
  assert_non_null(text);
  assert_non_null(strstr(text, "\"notes\": {\"shape\": \"decode\", \"us\": [1.5, 2]}"));
  assert_non_null(strstr(text, "\"written\": \""));
  assert_null(strstr(text, "thread_bytes")); /* defaults are not saved */

  /* b: head_group set beforehand is overwritten with source FILE; thread_bytes set stays */
  assert_int_equal(rotary_context_set_setting(b, ROTARY_SETTING_THREAD_BYTES, 8192), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(b, ROTARY_SETTING_HEAD_GROUP, 3), ROTARY_OK);
  assert_int_equal(rotary_context_load_tuning(b, path, err, sizeof err), ROTARY_OK);
  assert_string_equal(err, "");
  assert_true(has(b, ROTARY_SETTING_PREFETCH_BYTES, -1, ROTARY_SOURCE_FILE));
  assert_true(has(b, ROTARY_SETTING_STREAM_STORE_BYTES, (int64_t)1 << 50, ROTARY_SOURCE_FILE));
  assert_true(has(b, ROTARY_SETTING_HEAD_GROUP, 64, ROTARY_SOURCE_FILE));
  assert_true(has(b, ROTARY_SETTING_THREAD_BYTES, 8192, ROTARY_SOURCE_SET));
  int64_t d = 0;
  rotary_setting_source ds;
  assert_int_equal(rotary_context_get_setting(NULL, ROTARY_SETTING_TASKS_PER_THREAD, &d, &ds), ROTARY_OK);
  assert_true(has(b, ROTARY_SETTING_TASKS_PER_THREAD, d, ds));

  /* b's FILE and SET settings again, with no notes, loaded into c */
  assert_int_equal(rotary_context_save_tuning(b, path2, NULL, NULL, 0), ROTARY_OK);
  assert_null(strstr(tuning_read_text(path2), "notes"));
  assert_int_equal(rotary_context_load_tuning(c, path2, NULL, 0), ROTARY_OK);
  assert_true(has(c, ROTARY_SETTING_PREFETCH_BYTES, -1, ROTARY_SOURCE_FILE));
  assert_true(has(c, ROTARY_SETTING_STREAM_STORE_BYTES, (int64_t)1 << 50, ROTARY_SOURCE_FILE));
  assert_true(has(c, ROTARY_SETTING_HEAD_GROUP, 64, ROTARY_SOURCE_FILE));
  assert_true(has(c, ROTARY_SETTING_THREAD_BYTES, 8192, ROTARY_SOURCE_FILE));
  assert_true(has(c, ROTARY_SETTING_TASKS_PER_THREAD, d, ds));

  /* a context with nothing to save writes an empty settings object, which loads and changes nothing */
  rotary_context *e;
  assert_int_equal(rotary_context_create(1, &e), ROTARY_OK);
  assert_int_equal(rotary_context_save_tuning(e, path2, "{}", err, sizeof err), ROTARY_OK);
  assert_non_null(strstr(tuning_read_text(path2), "\"settings\": {}"));
  assert_int_equal(rotary_context_load_tuning(c, path2, err, sizeof err), ROTARY_OK);
  assert_true(has(c, ROTARY_SETTING_THREAD_BYTES, 8192, ROTARY_SOURCE_FILE));
  rotary_context_destroy(e);

  /* notes that are not one JSON object: TUNING, the file as it was */
  static const struct {
    const char *notes, *message;
  } bad_notes[] = {{"[1, 2]", "notes: an array, not an object"},
                   {"{\"a\": 1", "notes: not valid JSON (error near byte 6)"},
                   {"{} {}", "notes: unexpected data after the JSON value (byte 3)"},
                   {"", "notes: not valid JSON (error near byte 0)"},
                   {"\"text\"", "notes: a string, not an object"},
                   {"{\"a\": \"\xff\"}", "notes: not UTF-8 (byte 7)"},
                   {"{\"a\": \"\x01\"}", "notes: a control character at byte 7 (not read as Python's json reads it)"}};
  char want_notes[1024];
  const char *before = tuning_read_text(path);
  char saved_text[1 << 12];
  assert_true(strlen(before) < sizeof saved_text);
  memcpy(saved_text, before, strlen(before) + 1);
  for (size_t i = 0; i < sizeof bad_notes / sizeof bad_notes[0]; i++) {
    char want[1024];
    snprintf(want, sizeof want, "%s: %s", path, bad_notes[i].message);
    assert_int_equal(rotary_context_save_tuning(a, path, bad_notes[i].notes, err, sizeof err), ROTARY_ERR_TUNING);
    assert_string_equal(err, want);
    assert_string_equal(tuning_read_text(path), saved_text);
  }
  /* notes that would make the file too large to load */
  char *huge = malloc(((size_t)1 << 20) + 16);
  assert_non_null(huge);
  memset(huge, ' ', ((size_t)1 << 20) + 8);
  memcpy(huge, "{}", 2);
  huge[((size_t)1 << 20) + 8] = '\0';
  snprintf(want_notes, sizeof want_notes, "%s: notes: too long: the file would be larger than 1 MiB", path);
  assert_int_equal(rotary_context_save_tuning(a, path, huge, err, sizeof err), ROTARY_ERR_TUNING);
  assert_string_equal(err, want_notes);
  /* notes under 1 MiB whose file would not be */
  const size_t body = ((size_t)1 << 20) - 100;
  memcpy(huge, "{\"a\": \"", 7);
  memset(huge + 7, 'x', body);
  memcpy(huge + 7 + body, "\"}", 3);
  assert_int_equal(rotary_context_save_tuning(a, path, huge, err, sizeof err), ROTARY_ERR_TUNING);
  assert_string_equal(err, want_notes);
  free(huge);
  assert_string_equal(tuning_read_text(path), saved_text);
  /* a directory that does not exist: IO, named */
  char missing[600], want[700];
  snprintf(missing, sizeof missing, "%s/no/such/dir.json", tmp_dir);
  snprintf(want, sizeof want, "%s: file: No such file or directory", missing);
  assert_int_equal(rotary_context_save_tuning(a, missing, NULL, err, sizeof err), ROTARY_ERR_IO);
  assert_string_equal(err, want);
  assert_int_equal(rotary_context_load_tuning(a, missing, err, sizeof err), ROTARY_ERR_IO);
  assert_string_equal(err, want);
  /* a failed load leaves the context as it was */
  char bad[600];
  snprintf(bad, sizeof bad, "%s/bad_load.json", tmp_dir);
  write_tuning(bad, "{\"prefetch_bytes\": 64, \"tasks_per_thread\": 1.5}");
  snprintf(want, sizeof want, "%s: settings.tasks_per_thread: 1.5 is not an integer", bad);
  assert_int_equal(rotary_context_load_tuning(c, bad, err, sizeof err), ROTARY_ERR_TUNING);
  assert_string_equal(err, want);
  assert_true(has(c, ROTARY_SETTING_PREFETCH_BYTES, -1, ROTARY_SOURCE_FILE));
  /* NULL pointers */
  assert_int_equal(rotary_context_load_tuning(NULL, path, err, sizeof err), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_context_load_tuning(c, NULL, err, sizeof err), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_context_save_tuning(NULL, path, NULL, err, sizeof err), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_context_save_tuning(c, NULL, NULL, err, sizeof err), ROTARY_ERR_NULL_POINTER);
  /* no temporary file is left behind */
  for (int i = 0; i < 2; i++) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q 'json\\.'", tmp_dir);
    assert_int_not_equal(system(cmd), 0);
  }
  unlink(path), unlink(path2), unlink(bad);
  rotary_context_destroy(a);
  rotary_context_destroy(b);
  rotary_context_destroy(c);
}

/* ---- settings changed while calls run on the same context: each call runs under one consistent set of settings
 * (the context's lock) and gives the same bits as under the defaults ---- */

enum { CC_SEQ = 64, CC_QH = 8, CC_KH = 2, CC_HD = 64, CC_ROUNDS = 60 };

typedef struct concurrent {
  rotary_context *ctx;
  const rotary_rope *rope;
  const float *q_in, *k_in, *q_ref, *k_ref;
  const char *file; /* a tuning file to load now and then */
  int bad;          /* calls whose output differed, or any failed status */
} concurrent;

/* A BHSD out-of-place call: heads far apart, so head_group is used; the output size crosses no setting. */
static rotary_status cc_apply(rotary_context *ctx, const rotary_rope *rope, const float *q_in, float *q_out,
                              const float *k_in, float *k_out) {
  rotary_apply_desc d;
  rotary_apply_desc_init(&d);
  d.seq_len = CC_SEQ;
  d.positions.mode = ROTARY_POSITIONS_OFFSET;
  d.positions.offset = 7;
  rotary_tensor_init(&d.q, ROTARY_LAYOUT_BHSD, q_in, q_out, ROTARY_F32, CC_SEQ, CC_QH, CC_HD);
  rotary_tensor_init(&d.k, ROTARY_LAYOUT_BHSD, k_in, k_out, ROTARY_F32, CC_SEQ, CC_KH, CC_HD);
  return rotary_apply(ctx, rope, &d);
}

static void *cc_caller(void *arg) {
  concurrent *c = arg;
  float *q = malloc(sizeof(float) * CC_SEQ * CC_QH * CC_HD), *k = malloc(sizeof(float) * CC_SEQ * CC_KH * CC_HD);
  for (int r = 0; q && k && r < CC_ROUNDS; r++) {
    if (cc_apply(c->ctx, c->rope, c->q_in, q, c->k_in, k) != ROTARY_OK ||
        memcmp(q, c->q_ref, sizeof(float) * CC_SEQ * CC_QH * CC_HD) ||
        memcmp(k, c->k_ref, sizeof(float) * CC_SEQ * CC_KH * CC_HD))
      __atomic_add_fetch(&c->bad, 1, __ATOMIC_RELAXED);
  }
  if (!q || !k) __atomic_add_fetch(&c->bad, 1, __ATOMIC_RELAXED);
  free(q), free(k);
  return NULL;
}

static void *cc_setter(void *arg) {
  concurrent *c = arg;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int r = 0; r < 4 * CC_ROUNDS; r++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const rotary_setting s = (rotary_setting)((x >> 33) % N);
    const rotary_setting_info *info = rotary_setting_info_of(s);
    size_t n = 0;
    while (info->candidates[n] != INT64_MIN) n++;
    const int64_t v = (x >> 40) % 4 == 0 ? info->min : info->candidates[(x >> 45) % n];
    rotary_status st = rotary_context_set_setting(c->ctx, s, v);
    int64_t got = 0;
    if (st == ROTARY_OK) st = rotary_context_get_setting(c->ctx, s, &got, NULL);
    if ((x >> 50) % 16 == 0 && st == ROTARY_OK) st = rotary_context_reset_settings(c->ctx);
    if ((x >> 50) % 16 == 1 && st == ROTARY_OK) st = rotary_context_load_tuning(c->ctx, c->file, NULL, 0);
    if (st != ROTARY_OK) __atomic_add_fetch(&c->bad, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void test_settings_during_calls(void **state) {
  (void)state;
  rotary_config config;
  rotary_config_init(&config, CC_HD);
  rotary_rope *rope;
  assert_int_equal(rotary_rope_create(&config, 1024, &rope), ROTARY_OK);
  const size_t nq = (size_t)CC_SEQ * CC_QH * CC_HD, nk = (size_t)CC_SEQ * CC_KH * CC_HD;
  float *q_in = malloc(nq * sizeof(float)), *k_in = malloc(nk * sizeof(float));
  float *q_ref = malloc(nq * sizeof(float)), *k_ref = malloc(nk * sizeof(float));
  assert_true(q_in && k_in && q_ref && k_ref);
  for (size_t i = 0; i < nq; i++) q_in[i] = (float)((double)(i % 97) / 13.0 - 3.0);
  for (size_t i = 0; i < nk; i++) k_in[i] = (float)((double)(i % 89) / 11.0 - 4.0);
  rotary_context *ref_ctx, *ctx;
  assert_int_equal(rotary_context_create(1, &ref_ctx), ROTARY_OK);
  assert_int_equal(cc_apply(ref_ctx, rope, q_in, q_ref, k_in, k_ref), ROTARY_OK);
  assert_int_equal(rotary_context_create(3, &ctx), ROTARY_OK);
  char path[512];
  snprintf(path, sizeof path, "%s/concurrent.json", tmp_dir);
  write_tuning(path, "{\"thread_bytes\": 4096, \"tasks_per_thread\": 64, \"head_group\": 1}");
  concurrent c = {ctx, rope, q_in, k_in, q_ref, k_ref, path, 0};
  pthread_t callers[2], setter;
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&callers[i], NULL, cc_caller, &c), 0);
  assert_int_equal(pthread_create(&setter, NULL, cc_setter, &c), 0);
  for (int i = 0; i < 2; i++) pthread_join(callers[i], NULL);
  pthread_join(setter, NULL);
  assert_int_equal(c.bad, 0);
  unlink(path);
  rotary_context_destroy(ctx);
  rotary_context_destroy(ref_ctx);
  rotary_rope_destroy(rope);
  free(q_in), free(k_in), free(q_ref), free(k_ref);
}

static int make_tmp_dir(void **state) {
  (void)state;
  return mkdtemp(tmp_dir) ? 0 : -1;
}

static int remove_tmp_dir(void **state) {
  (void)state;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* first: these fork children whose process defaults must not be built (see in_child) */
      cmocka_unit_test(test_env_unset),
      cmocka_unit_test(test_env_each_variable),
      cmocka_unit_test(test_env_malformed_ignored),
      cmocka_unit_test(test_env_file_path),
      cmocka_unit_test(test_env_file_auto),
      cmocka_unit_test(test_env_file_rejected),
      cmocka_unit_test(test_env_reset),
      /* then in this process */
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_ranges_and_defaults),
      cmocka_unit_test(test_get_set_reset),
      cmocka_unit_test(test_task_split),
      cmocka_unit_test(test_cpu_model_and_default_path),
      cmocka_unit_test(test_save_load_round_trip),
      cmocka_unit_test(test_settings_during_calls),
  };
  return cmocka_run_group_tests(tests, make_tmp_dir, remove_tmp_dir);
}
