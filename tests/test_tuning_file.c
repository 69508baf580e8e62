/* test_tuning_file.c: loading tuning files through the public API: a valid file loads (named settings FILE, others
 * kept), every malformed file refused field by field (status, message naming file and field, context unchanged),
 * every prefix of a valid file refused, file kinds (directory, FIFO, missing, over 1 MiB).
 * test_tuning_save.c has saving and the default path. */
#define _GNU_SOURCE /* mkdtemp, mkfifo, symlink */
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



static int setting_of(const char *name) {
  for (int i = 0; i < N; i++)
    if (!strcmp(rotary_setting_name((rotary_setting)i), name)) return i;
  fail_msg("no setting %s", name);
  return -1;
}

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

/* ---- refusals ---- */

/* Loading path is refused with `want`, the message names the file (and `field` when not NULL), the context keeps
 * every value and source; likewise with no message buffer and with a 1-byte one. */
static void expect_refused(const char *label, const char *path, rotary_status want, const char *field) {
  const tuning_snapshot before = tuning_snap(g_ctx);
  char err[1024];
  memset(err, 0x5a, sizeof err);
  const rotary_status st = rotary_context_load_tuning(g_ctx, path, err, sizeof err);
  if (st != want) fail_msg("%s: status %d (%s), expected %d", label, (int)st, memchr(err, 0, sizeof err) ? err : "?",
                           (int)want);
  if (!memchr(err, 0, sizeof err)) fail_msg("%s: message not terminated", label);
  if (!strstr(err, path)) fail_msg("%s: message \"%s\" does not name the file", label, err);
  if (field && !strstr(err, field)) fail_msg("%s: message \"%s\" does not name %s", label, err, field);
  tuning_snapshot after = tuning_snap(g_ctx);
  tuning_assert_same(&before, &after);
  assert_int_equal(rotary_context_load_tuning(g_ctx, path, NULL, 0), want);
  char one[2] = {'x', 'y'};
  assert_int_equal(rotary_context_load_tuning(g_ctx, path, one, 1), want);
  assert_int_equal(one[0], '\0');
  assert_int_equal(one[1], 'y');
  after = tuning_snap(g_ctx);
  tuning_assert_same(&before, &after);
}

static void expect_text_refused(const char *label, const char *text, size_t len, const char *field) {
  char path[512];
  path_of(path, sizeof path, "case.json");
  tuning_write_bytes(path, text, len);
  expect_refused(label, path, ROTARY_ERR_TUNING, field);
}

/* Loads text; returns the status (OK: the context changed as the file says). */
static rotary_status load_text(const char *text, char *err, size_t err_size) {
  char path[512];
  path_of(path, sizeof path, "good.json");
  tuning_write_bytes(path, text, strlen(text));
  return rotary_context_load_tuning(g_ctx, path, err, err_size);
}

/* ---- tests ---- */

static void test_load_valid(void **state) {
  (void)state;
  const tuning_snapshot before = tuning_snap(g_ctx);
  char doc[4096], err[512];
  /* prefetch off, head_group 3, thread_bytes (SET before) from the file; extra members ignored */
  tuning_make_doc(doc, sizeof doc, M_SETTINGS, "\"settings\": {\"prefetch_bytes\": -1, \"head_group\": 3, \"thread_bytes\": 65536}",
           "\"measured\": {\"calls\": [1, 2.5, null, true], \"note\": \"x\"}, \"zzz\": []");
  memset(err, 'q', sizeof err);
  assert_int_equal(load_text(doc, err, sizeof err), ROTARY_OK);
  const tuning_snapshot after = tuning_snap(g_ctx);
  const int pf = setting_of("prefetch_bytes"), hg = setting_of("head_group"), tb = setting_of("thread_bytes");
  for (int i = 0; i < N; i++) {
    if (i == pf || i == hg || i == tb) {
      assert_int_equal(after.source[i], ROTARY_SOURCE_FILE);
    } else {
      assert_int_equal(after.value[i], before.value[i]);
      assert_int_equal(after.source[i], before.source[i]);
    }
  }
  assert_int_equal(after.value[pf], -1);
  assert_int_equal(after.value[hg], 3);
  assert_int_equal(after.value[tb], 65536);
  /* an empty settings object: valid, changes nothing */
  tuning_make_doc(doc, sizeof doc, M_SETTINGS, "\"settings\": {}", NULL);
  assert_int_equal(load_text(doc, NULL, 0), ROTARY_OK);
  const tuning_snapshot again = tuning_snap(g_ctx);
  tuning_assert_same(&after, &again);
  /* a JSON escape in a string is read as Python reads it; integral 3.0-style numbers are not needed here */
  tuning_make_doc(doc, sizeof doc, M_FORMAT, "\"format\": \"rotary\\u002dtuning\"", NULL);
  assert_int_equal(load_text(doc, NULL, 0), ROTARY_OK);
  /* white space around the document is fine */
  char padded[4200];
  snprintf(padded, sizeof padded, " \t\r\n%s \n\n", doc);
  assert_int_equal(load_text(padded, NULL, 0), ROTARY_OK);
}

/* Every setting's min and max (off included) load exactly, one at a time. */
static void test_load_bounds(void **state) {
  (void)state;
  for (int i = 0; i < N; i++) {
    int64_t lo, hi;
    assert_int_equal(rotary_setting_range((rotary_setting)i, &lo, &hi), ROTARY_OK);
    const int64_t values[2] = {lo, hi};
    for (int k = 0; k < 2; k++) {
      const tuning_snapshot before = tuning_snap(g_ctx);
      char settings[128], doc[4096];
      snprintf(settings, sizeof settings, "\"settings\": {\"%s\": %lld}", rotary_setting_name((rotary_setting)i),
               (long long)values[k]);
      tuning_make_doc(doc, sizeof doc, M_SETTINGS, settings, NULL);
      char err[512];
      if (load_text(doc, err, sizeof err) != ROTARY_OK) fail_msg("%s: %s", settings, err);
      const tuning_snapshot after = tuning_snap(g_ctx);
      for (int j = 0; j < N; j++) {
        if (j == i) continue;
        assert_int_equal(after.value[j], before.value[j]);
        assert_int_equal(after.source[j], before.source[j]);
      }
      assert_int_equal(after.value[i], values[k]);
      assert_int_equal(after.source[i], ROTARY_SOURCE_FILE);
    }
  }
}

/* A key given twice counts with its last value: at the top level and inside settings. */
static void test_duplicates(void **state) {
  (void)state;
  char doc[4096];
  const int hg = setting_of("head_group"), pf = setting_of("prefetch_bytes");
  tuning_snapshot before = tuning_snap(g_ctx);
  tuning_make_doc(doc, sizeof doc, M_SETTINGS, "\"settings\": {\"head_group\": 0, \"head_group\": 5}", NULL);
  assert_int_equal(load_text(doc, NULL, 0), ROTARY_OK);
  tuning_snapshot after = tuning_snap(g_ctx);
  assert_int_equal(after.value[hg], 5);
  assert_int_equal(after.source[hg], ROTARY_SOURCE_FILE);
  tuning_make_doc(doc, sizeof doc, M_SETTINGS, "\"settings\": {\"head_group\": 6, \"head_group\": 0}", NULL);
  expect_text_refused("settings key twice, last bad", doc, strlen(doc), "settings.head_group");
  /* settings twice: only the last object counts (prefetch_bytes of the first is not applied) */
  before = tuning_snap(g_ctx);
  tuning_make_doc(doc, sizeof doc, M_SETTINGS, "\"settings\": {\"prefetch_bytes\": 64}, \"settings\": {\"head_group\": 2}",
           NULL);
  assert_int_equal(load_text(doc, NULL, 0), ROTARY_OK);
  after = tuning_snap(g_ctx);
  assert_int_equal(after.value[hg], 2);
  assert_int_equal(after.value[pf], before.value[pf]);
  assert_int_equal(after.source[pf], before.source[pf]);
  tuning_make_doc(doc, sizeof doc, M_SETTINGS, "\"settings\": {\"head_group\": 2}, \"settings\": [1]", NULL);
  expect_text_refused("settings twice, last an array", doc, strlen(doc), "settings");
  /* top-level keys twice */
  tuning_make_doc(doc, sizeof doc, -1, NULL, "\"cpu_model\": \"Another CPU\"");
  expect_text_refused("cpu_model twice, last foreign", doc, strlen(doc), "cpu_model");
  char cpu[400], extra[512];
  tuning_json_string(cpu, sizeof cpu, rotary_cpu_model());
  snprintf(extra, sizeof extra, "\"format_version\": 1, \"cpu_model\": %s", cpu);
  tuning_make_doc(doc, sizeof doc, M_CPU, "\"cpu_model\": \"Another CPU\"", extra);
  char *fv = strstr(doc, "\"format_version\": 1");
  assert_non_null(fv);
  fv[18] = '2'; /* the first format_version is 2, the last 1 */
  assert_int_equal(load_text(doc, NULL, 0), ROTARY_OK);
}

/* One member replaced (or left out) at a time: each refused with TUNING naming that member. */
typedef struct member_case {
  int which;
  const char *text; /* NULL: member left out */
  const char *field;
} member_case;

static const member_case member_cases[] = {
    {M_FORMAT, NULL, "format"},
    {M_FORMAT, "\"format\": \"rotary-tune\"", "format"},
    {M_FORMAT, "\"format\": \"Rotary-Tuning\"", "format"},
    {M_FORMAT, "\"format\": 1", "format"},
    {M_FORMAT, "\"format\": null", "format"},
    {M_FORMAT, "\"format\": [\"rotary-tuning\"]", "format"},
    {M_FVERSION, NULL, "format_version"},
    {M_FVERSION, "\"format_version\": 2", "format_version"},
    {M_FVERSION, "\"format_version\": 0", "format_version"},
    {M_FVERSION, "\"format_version\": -1", "format_version"},
    {M_FVERSION, "\"format_version\": \"1\"", "format_version"},
    {M_FVERSION, "\"format_version\": 1.5", "format_version"},
    {M_FVERSION, "\"format_version\": true", "format_version"},
    {M_FVERSION, "\"format_version\": null", "format_version"},
    {M_FVERSION, "\"format_version\": 1e300", "format_version"},
    {M_LIBRARY, NULL, "library_version"},
    {M_LIBRARY, "\"library_version\": \"0.0.1\"", "library_version"},
    {M_LIBRARY, "\"library_version\": \"\"", "library_version"},
    {M_LIBRARY, "\"library_version\": 2", "library_version"},
    {M_CPU, NULL, "cpu_model"},
    {M_CPU, "\"cpu_model\": \"Another CPU 9000\"", "cpu_model"},
    {M_CPU, "\"cpu_model\": \"\"", "cpu_model"},
    {M_CPU, "\"cpu_model\": null", "cpu_model"},
    {M_CPU, "\"cpu_model\": {}", "cpu_model"},
    {M_SETTINGS, NULL, "settings"},
    {M_SETTINGS, "\"settings\": []", "settings"},
    {M_SETTINGS, "\"settings\": [{\"head_group\": 3}]", "settings"},
    {M_SETTINGS, "\"settings\": \"head_group=3\"", "settings"},
    {M_SETTINGS, "\"settings\": 3", "settings"},
    {M_SETTINGS, "\"settings\": null", "settings"},
    {M_SETTINGS, "\"settings\": {\"head_group\": 3, \"prefetch\": 64}", "settings.prefetch"},
    {M_SETTINGS, "\"settings\": {\"Head_Group\": 3}", "settings.Head_Group"},
    {M_SETTINGS, "\"settings\": {\"ROTARY_HEAD_GROUP\": 3}", "settings.ROTARY_HEAD_GROUP"},
    {M_SETTINGS, "\"settings\": {\"head_group \": 3}", "settings.head_group "},
    {M_SETTINGS, "\"settings\": {\"\": 3}", "settings."},
};

static void test_malformed_members(void **state) {
  (void)state;
  for (size_t c = 0; c < sizeof member_cases / sizeof member_cases[0]; c++) {
    const member_case *m = &member_cases[c];
    char doc[4096], label[600];
    tuning_make_doc(doc, sizeof doc, m->which, m->text, NULL);
    snprintf(label, sizeof label, "member %d as %s", m->which, m->text ? m->text : "(left out)");
    expect_text_refused(label, doc, strlen(doc), m->field);
  }
  /* a foreign file with the CPU model one character off (a trailing space) */
  char cpu[400], text[512], doc[4096];
  snprintf(text, sizeof text, "%s ", rotary_cpu_model());
  tuning_json_string(cpu, sizeof cpu, text);
  snprintf(text, sizeof text, "\"cpu_model\": %s", cpu);
  tuning_make_doc(doc, sizeof doc, M_CPU, text, NULL);
  expect_text_refused("cpu_model with a trailing space", doc, strlen(doc), "cpu_model");
  snprintf(text, sizeof text, "\"library_version\": \"%s.0\"", rotary_version_string());
  tuning_make_doc(doc, sizeof doc, M_LIBRARY, text, NULL);
  expect_text_refused("library_version with .0", doc, strlen(doc), "library_version");
}

/* Every setting with values of the wrong type, fractions and values just outside its range. */
static void test_malformed_values(void **state) {
  (void)state;
  static const char *bad[] = {"\"4\"", "\"off\"", "2.5", "0.5", "-0.5", "true", "false", "null", "[]", "[4]", "{}",
                              "1e300", "-1e300", "1e19", "-9223372036854775809", "18446744073709551616"};
  for (int i = 0; i < N; i++) {
    int64_t lo, hi;
    assert_int_equal(rotary_setting_range((rotary_setting)i, &lo, &hi), ROTARY_OK);
    char values[24][48];
    size_t n = 0;
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) snprintf(values[n++], 48, "%s", bad[b]);
    snprintf(values[n++], 48, "%lld", (long long)lo - 1);
    snprintf(values[n++], 48, "%lld", (long long)hi + 1);
    snprintf(values[n++], 48, "%lld", (long long)hi * 2);
    snprintf(values[n++], 48, "%s", lo == -1 ? "-2" : "-1"); /* -1 only where the setting has an off value */
    for (size_t k = 0; k < n; k++) {
      char field[64], settings[200], doc[4096];
      snprintf(field, sizeof field, "settings.%s", rotary_setting_name((rotary_setting)i));
      snprintf(settings, sizeof settings, "\"settings\": {\"%s\": %.47s}",
               rotary_setting_name((rotary_setting)i), values[k]);
      tuning_make_doc(doc, sizeof doc, M_SETTINGS, settings, NULL);
      expect_text_refused(settings, doc, strlen(doc), field);
    }
  }
}

/* Documents that are not one JSON object: refused (TUNING), naming the file. */
static void test_not_json(void **state) {
  (void)state;
  char valid[4096], text[4200];
  tuning_make_doc(valid, sizeof valid, -1, NULL, NULL);
  static const char *whole[] = {"", " \n", "hello", "{", "}", "[]", "null", "1", "\"rotary-tuning\"", "{}",
                                "{\"format\": \"rotary-tuning\",}", "{'format': 'rotary-tuning'}", "[{}]"};
  for (size_t k = 0; k < sizeof whole / sizeof whole[0]; k++) expect_text_refused(whole[k], whole[k], strlen(whole[k]), NULL);
  static const char *trail[] = {"x", "}", "{}", "[]", "0", "// note", "\"\"", ","};
  for (size_t k = 0; k < sizeof trail / sizeof trail[0]; k++) {
    snprintf(text, sizeof text, "%s%s", valid, trail[k]);
    expect_text_refused(trail[k], text, strlen(text), NULL);
  }
  /* a NUL byte after the document (a UTF-8 byte order mark before it is left open: Python's json.loads takes
   * it from bytes and refuses it from text) */
  const size_t vlen = strlen(valid);
  memcpy(text, valid, vlen);
  text[vlen] = '\0';
  expect_text_refused("NUL after", text, vlen + 1, NULL);
  /* a raw control character inside a string (Python: "Invalid control character") */
  tuning_make_doc(text, sizeof text, M_FORMAT, "\"format\": \"rotary-tuning\t\"", NULL);
  expect_text_refused("tab in a string", text, strlen(text), NULL);
  /* numbers Python's json refuses (leading zeros, a bare '.', '+', '.5') and a string that is not UTF-8 */
  static const char *numbers[] = {"03", "00", "-01", "3.", "3.e0", "-.5", "+3", ".5", "0x3", "3e", "--3"};
  for (size_t k = 0; k < sizeof numbers / sizeof numbers[0]; k++) {
    char settings[64];
    snprintf(settings, sizeof settings, "\"settings\": {\"head_group\": %s}", numbers[k]);
    tuning_make_doc(text, sizeof text, M_SETTINGS, settings, NULL);
    expect_text_refused(settings, text, strlen(text), NULL);
  }
  tuning_make_doc(text, sizeof text, M_FVERSION, "\"format_version\": 01", NULL);
  expect_text_refused("format_version 01", text, strlen(text), NULL);
  tuning_make_doc(text, sizeof text, -1, NULL, "\"comment\": \"caf\xe9\"");
  expect_text_refused("Latin-1 byte in a string", text, strlen(text), NULL);
  /* Python's NaN and Infinity are not integers either */
  tuning_make_doc(text, sizeof text, M_SETTINGS, "\"settings\": {\"head_group\": NaN}", NULL);
  expect_text_refused("NaN", text, strlen(text), NULL);
  tuning_make_doc(text, sizeof text, M_SETTINGS, "\"settings\": {\"head_group\": Infinity}", NULL);
  expect_text_refused("Infinity", text, strlen(text), NULL);
}

/* Every prefix of a valid file is refused, except those that are the whole document (trailing white space cut). */
static void test_truncated(void **state) {
  (void)state;
  char doc[4096];
  tuning_make_doc(doc, sizeof doc, M_SETTINGS,
           "\"settings\": {\"prefetch_bytes\": 512, \"stream_store_bytes\": -1, \"head_group\": 4}",
           "\"notes\": {\"calls\": [\"prefill\", 1.5e3], \"ok\": true}");
  size_t len = strlen(doc), core = len;
  while (core && (doc[core - 1] == '\n' || doc[core - 1] == ' ')) core--;
  for (size_t cut = 0; cut < len; cut++) {
    char label[64];
    snprintf(label, sizeof label, "prefix of %zu of %zu bytes", cut, len);
    if (cut >= core) {
      char path[512];
      path_of(path, sizeof path, "prefix.json");
      tuning_write_bytes(path, doc, cut);
      if (rotary_context_load_tuning(g_ctx, path, NULL, 0) != ROTARY_OK) fail_msg("%s refused", label);
    } else {
      expect_text_refused(label, doc, cut, NULL);
    }
  }
}

/* Paths that are not regular files, or too large: IO for what cannot be read, TUNING for the size. */
static void test_file_kinds(void **state) {
  (void)state;
  char path[512], doc[4096];
  path_of(path, sizeof path, "missing.json");
  expect_refused("missing file", path, ROTARY_ERR_IO, NULL);
  path_of(path, sizeof path, "adir");
  assert_int_equal(mkdir(path, 0700), 0);
  expect_refused("a directory", path, ROTARY_ERR_IO, NULL);
  path_of(path, sizeof path, "adir/inside.json");
  expect_refused("a file in a folder that holds none", path, ROTARY_ERR_IO, NULL);
  path_of(path, sizeof path, "fifo");
  assert_int_equal(mkfifo(path, 0600), 0);
  alarm(20); /* a load that blocks on the FIFO fails the test instead of hanging it */
  expect_refused("a FIFO", path, ROTARY_ERR_IO, NULL);
  alarm(0);
  expect_refused("a character device", "/dev/null", ROTARY_ERR_IO, NULL);
  /* exactly 1 MiB loads; one byte more is refused */
  tuning_make_doc(doc, sizeof doc, -1, NULL, NULL);
  const size_t mib = (size_t)1 << 20, len = strlen(doc);
  char *big = malloc(mib + 1);
  assert_non_null(big);
  memcpy(big, doc, len);
  memset(big + len, ' ', mib + 1 - len);
  path_of(path, sizeof path, "big.json");
  tuning_write_bytes(path, big, mib);
  char err[512] = "";
  if (rotary_context_load_tuning(g_ctx, path, err, sizeof err) != ROTARY_OK) fail_msg("1 MiB file: %s", err);
  tuning_write_bytes(path, big, mib + 1);
  free(big);
  expect_refused("1 MiB + 1 byte", path, ROTARY_ERR_TUNING, NULL);
  /* a symbolic link to a valid file loads */
  char target[512];
  path_of(target, sizeof target, "target.json");
  tuning_write_bytes(target, doc, len);
  path_of(path, sizeof path, "link.json");
  assert_int_equal(symlink(target, path), 0);
  assert_int_equal(rotary_context_load_tuning(g_ctx, path, NULL, 0), ROTARY_OK);
  if (geteuid() != 0) { /* root reads anything */
    assert_int_equal(chmod(target, 0), 0);
    expect_refused("unreadable file", target, ROTARY_ERR_IO, NULL);
  }
  assert_int_equal(rotary_context_load_tuning(NULL, target, NULL, 0), ROTARY_ERR_NULL_POINTER);
  assert_int_equal(rotary_context_load_tuning(g_ctx, NULL, NULL, 0), ROTARY_ERR_NULL_POINTER);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_load_valid, ctx_setup, ctx_teardown),
      cmocka_unit_test_setup_teardown(test_load_bounds, ctx_setup, ctx_teardown),
      cmocka_unit_test_setup_teardown(test_duplicates, ctx_setup, ctx_teardown),
      cmocka_unit_test_setup_teardown(test_malformed_members, ctx_setup, ctx_teardown),
      cmocka_unit_test_setup_teardown(test_malformed_values, ctx_setup, ctx_teardown),
      cmocka_unit_test_setup_teardown(test_not_json, ctx_setup, ctx_teardown),
      cmocka_unit_test_setup_teardown(test_truncated, ctx_setup, ctx_teardown),
      cmocka_unit_test_setup_teardown(test_file_kinds, ctx_setup, ctx_teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
