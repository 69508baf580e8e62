/* test_tuning_save.c: rotary_context_save_tuning -> rotary_context_load_tuning round trips (FILE and SET settings
 * saved, DEFAULT and ENVIRONMENT not, notes kept), save errors (notes not one JSON object: TUNING with the file
 * untouched; unwritable paths: IO), and rotary_tuning_default_path (XDG_CACHE_HOME, HOME, neither, OVERFLOW). */
#define _GNU_SOURCE /* setenv, unsetenv, mkdtemp */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rotary.h"
#include "tuning_doc.h"

#define N ROTARY_SETTING_COUNT

static char g_dir[256];     /* this run's scratch folder */
static rotary_context *g_ctx; /* each test's context, settings partly SET (ctx_setup) */

/* ---- files ---- */

static void path_of(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", g_dir, name); }

/* ---- fixtures ---- */

static int group_setup(void **state) {
  (void)state;
  return tuning_tmpdir(g_dir, sizeof g_dir);
}

static int group_teardown(void **state) {
  (void)state;
  return tuning_rmdir(g_dir);
}

static int ctx_setup(void **state) {
  (void)state;
  return tuning_ctx_create(&g_ctx);
}

static int ctx_teardown(void **state) {
  (void)state;
  rotary_context_destroy(g_ctx);
  g_ctx = NULL;
  return 0;
}


/* Loads text into g_ctx; returns the status. */
static rotary_status load_text(const char *text, char *err, size_t err_size) {
  char path[512];
  path_of(path, sizeof path, "good.json");
  tuning_write_bytes(path, text, strlen(text));
  return rotary_context_load_tuning(g_ctx, path, err, err_size);
}

/* Settings SET and FILE saved with notes, loaded into a fresh context: the same values, source FILE; DEFAULT and
 * ENVIRONMENT settings are not saved; the file is replaced whole, with nothing left beside it. */
static size_t dir_entries(void) {
  size_t n = 0;
  DIR *d = opendir(g_dir);
  for (struct dirent *e; d && (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static void test_round_trip(void **state) {
  (void)state;
  char doc[4096], path[512], err[512];
  tuning_make_doc(doc, sizeof doc, M_SETTINGS, "\"settings\": {\"head_group\": 5}", NULL);
  assert_int_equal(load_text(doc, NULL, 0), ROTARY_OK); /* head_group FILE */
  assert_int_equal(rotary_context_set_setting(g_ctx, ROTARY_SETTING_PREFETCH_BYTES, 768), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(g_ctx, ROTARY_SETTING_STREAM_STORE_BYTES, -1), ROTARY_OK);
  assert_int_equal(rotary_context_reset_settings(g_ctx), ROTARY_OK);
  const tuning_snapshot defaults = tuning_snap(g_ctx);
  assert_int_equal(load_text(doc, NULL, 0), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(g_ctx, ROTARY_SETTING_PREFETCH_BYTES, 768), ROTARY_OK);
  assert_int_equal(rotary_context_set_setting(g_ctx, ROTARY_SETTING_STREAM_STORE_BYTES, -1), ROTARY_OK);
  const tuning_snapshot saved = tuning_snap(g_ctx);
  path_of(path, sizeof path, "saved.json");
  tuning_write_bytes(path, "old contents", 12);
  const size_t entries = dir_entries();
  const char *notes = " {\"label\": \"round-trip-7f3a\", \"calls\": [12345, {\"seq\": 8}]}\n";
  if (rotary_context_save_tuning(g_ctx, path, notes, err, sizeof err) != ROTARY_OK) fail_msg("save: %s", err);
  assert_int_equal(dir_entries(), entries); /* replaced: no temporary file left */
  const char *text = tuning_read_text(path);
  assert_non_null(text);
  assert_non_null(strstr(text, "\"notes\""));
  assert_non_null(strstr(text, "round-trip-7f3a"));
  assert_non_null(strstr(text, "12345"));
  for (int i = 0; i < N; i++) { /* only FILE, SET and TUNED settings are written */
    char key[64];
    snprintf(key, sizeof key, "\"%s\"", rotary_setting_name((rotary_setting)i));
    const int want = saved.source[i] == ROTARY_SOURCE_FILE || saved.source[i] == ROTARY_SOURCE_SET;
    if (want != (strstr(text, key) != NULL)) fail_msg("%s %s in the saved file", key, want ? "missing" : "written");
  }
  rotary_context *fresh = NULL;
  assert_int_equal(rotary_context_create(1, &fresh), ROTARY_OK);
  const tuning_snapshot before = tuning_snap(fresh);
  tuning_assert_same(&defaults, &before);
  if (rotary_context_load_tuning(fresh, path, err, sizeof err) != ROTARY_OK) fail_msg("load: %s", err);
  const tuning_snapshot after = tuning_snap(fresh);
  for (int i = 0; i < N; i++) {
    const int named = saved.source[i] == ROTARY_SOURCE_FILE || saved.source[i] == ROTARY_SOURCE_SET;
    assert_int_equal(after.value[i], named ? saved.value[i] : before.value[i]);
    assert_int_equal(after.source[i], named ? ROTARY_SOURCE_FILE : before.source[i]);
  }
  /* saved again from the loaded context (all FILE) and without notes: the same settings, no notes member */
  assert_int_equal(rotary_context_save_tuning(fresh, path, NULL, NULL, 0), ROTARY_OK);
  text = tuning_read_text(path);
  assert_null(strstr(text, "\"notes\""));
  rotary_context_destroy(fresh);
  assert_int_equal(rotary_context_reset_settings(g_ctx), ROTARY_OK);
  assert_int_equal(rotary_context_load_tuning(g_ctx, path, NULL, 0), ROTARY_OK);
  const tuning_snapshot reloaded = tuning_snap(g_ctx);
  tuning_assert_same(&after, &reloaded);
  /* a context with nothing to save writes an empty settings object, which loads and changes nothing */
  assert_int_equal(rotary_context_reset_settings(g_ctx), ROTARY_OK);
  assert_int_equal(rotary_context_save_tuning(g_ctx, path, "{}", NULL, 0), ROTARY_OK);
  assert_int_equal(rotary_context_load_tuning(g_ctx, path, NULL, 0), ROTARY_OK);
  const tuning_snapshot empty = tuning_snap(g_ctx);
  tuning_assert_same(&defaults, &empty);
}

/* Save refuses notes that are not one JSON object (TUNING, the file untouched) and paths it cannot write (IO). */
static void test_save_errors(void **state) {
  (void)state;
  char path[512], err[512];
  path_of(path, sizeof path, "kept.json");
  tuning_write_bytes(path, "kept", 4);
  static const char *bad_notes[] = {"", "[1, 2]", "\"text\"", "12", "null", "not json", "{\"a\": 1} trailing",
                                    "{\"a\": 1}{}", "{\"a\": }", "{'a': 1}"};
  for (size_t k = 0; k < sizeof bad_notes / sizeof bad_notes[0]; k++) {
    memset(err, 0x5a, sizeof err);
    const rotary_status st = rotary_context_save_tuning(g_ctx, path, bad_notes[k], err, sizeof err);
    if (st != ROTARY_ERR_TUNING) fail_msg("notes '%s': status %d", bad_notes[k], (int)st);
    assert_non_null(memchr(err, 0, sizeof err));
    if (!strstr(err, path) || !strstr(err, "notes")) fail_msg("notes '%s': message \"%s\"", bad_notes[k], err);
    assert_string_equal(tuning_read_text(path), "kept");
  }
  path_of(path, sizeof path, "no-such-folder/t.json");
  memset(err, 0x5a, sizeof err);
  assert_int_equal(rotary_context_save_tuning(g_ctx, path, NULL, err, sizeof err), ROTARY_ERR_IO);
  assert_non_null(strstr(err, path));
  path_of(path, sizeof path, "a-folder");
  assert_int_equal(mkdir(path, 0700), 0);
  assert_int_equal(rotary_context_save_tuning(g_ctx, path, NULL, err, sizeof err), ROTARY_ERR_IO);
  assert_non_null(strstr(err, path));
  assert_int_equal(rotary_context_save_tuning(NULL, path, NULL, NULL, 0), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_context_save_tuning(g_ctx, NULL, NULL, NULL, 0), ROTARY_ERR_NULL_POINTER);
}

/* The CPU model with letters and digits kept and other runs as one '-', without '-' at either end. */
static void model_key(char *out, const char *model) {
  size_t n = 0;
  for (const char *c = model; *c; c++) {
    const int keep = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
    if (keep) out[n++] = *c;
    else if (n && out[n - 1] != '-') out[n++] = '-';
  }
  while (n && out[n - 1] == '-') n--;
  out[n] = '\0';
}

static void restore_env(const char *name, const char *saved) {
  if (saved) setenv(name, saved, 1);
  else unsetenv(name);
}

static void test_default_path(void **state) {
  (void)state;
  char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  char saved_xdg[1024] = "", saved_home[1024] = "";
  if (xdg) snprintf(saved_xdg, sizeof saved_xdg, "%s", xdg);
  if (home) snprintf(saved_home, sizeof saved_home, "%s", home);
  const char *model = rotary_cpu_model();
  assert_true(model[0] != '\0' && model[0] != ' ' && model[strlen(model) - 1] != ' ');
  char key[512], want[1024], path[1024];
  model_key(key, model);
  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  setenv("HOME", "/h", 1);
  snprintf(want, sizeof want, "/x/cache/rotary/tuning-%s-%s.json", key, rotary_version_string());
  assert_int_equal(rotary_tuning_default_path(path, sizeof path), ROTARY_OK);
  if (strcmp(path, want)) fail_msg("default path %s, expected %s", path, want);
  setenv("XDG_CACHE_HOME", "", 1); /* empty counts as unset (XDG base directory rules) */
  snprintf(want, sizeof want, "/h/.cache/rotary/tuning-%s-%s.json", key, rotary_version_string());
  assert_int_equal(rotary_tuning_default_path(path, sizeof path), ROTARY_OK);
  assert_string_equal(path, want);
  unsetenv("XDG_CACHE_HOME");
  assert_int_equal(rotary_tuning_default_path(path, sizeof path), ROTARY_OK);
  assert_string_equal(path, want);
  /* too small by one byte: OVERFLOW, nothing written; exactly the size: OK */
  const size_t len = strlen(want);
  memset(path, '#', sizeof path);
  assert_int_equal(rotary_tuning_default_path(path, len), ROTARY_ERR_OVERFLOW);
  for (size_t i = 0; i < sizeof path; i++) assert_int_equal(path[i], '#');
  assert_int_equal(rotary_tuning_default_path(path, 0), ROTARY_ERR_OVERFLOW);
  assert_int_equal(path[0], '#');
  assert_int_equal(rotary_tuning_default_path(path, len + 1), ROTARY_OK);
  assert_string_equal(path, want);
  assert_int_equal(path[len + 1], '#');
  unsetenv("HOME");
  memset(path, '#', sizeof path);
  assert_int_equal(rotary_tuning_default_path(path, sizeof path), ROTARY_ERR_IO);
  assert_int_equal(path[0], '#');
  assert_int_equal(rotary_tuning_default_path(NULL, 16), ROTARY_ERR_NULL_POINTER);
  restore_env("XDG_CACHE_HOME", xdg ? saved_xdg : NULL);
  restore_env("HOME", home ? saved_home : NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_round_trip, ctx_setup, ctx_teardown),
      cmocka_unit_test_setup_teardown(test_save_errors, ctx_setup, ctx_teardown),
      cmocka_unit_test(test_default_path),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
