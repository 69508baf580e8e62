/* tuning_doc.c: tuning-file test documents (the five members of a valid file, one replaced), snapshots of a
 * context's settings and the fixtures (scratch folder, context), shared by test_tuning_file.c and
 * test_tuning_save.c. */
#define _GNU_SOURCE /* mkdtemp */
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

#include "tuning_doc.h"

/* s as a JSON string (quotes, backslashes and control characters escaped). */
void tuning_json_string(char *out, size_t size, const char *s) {
  size_t n = 0;
  out[n++] = '"';
  for (const unsigned char *c = (const unsigned char *)s; *c && n + 8 < size; c++) {
    if (*c == '"' || *c == '\\') n += (size_t)snprintf(out + n, size - n, "\\%c", *c);
    else if (*c < 0x20) n += (size_t)snprintf(out + n, size - n, "\\u%04x", *c);
    else out[n++] = (char)*c;
  }
  out[n++] = '"';
  out[n] = '\0';
}

void tuning_member_defaults(char members[M_COUNT][512]) {
  char cpu[400], ver[64];
  tuning_json_string(cpu, sizeof cpu, rotary_cpu_model());
  tuning_json_string(ver, sizeof ver, rotary_version_string());
  snprintf(members[M_FORMAT], 512, "\"format\": \"rotary-tuning\"");
  snprintf(members[M_FVERSION], 512, "\"format_version\": 1");
  snprintf(members[M_LIBRARY], 512, "\"library_version\": %s", ver);
  snprintf(members[M_CPU], 512, "\"cpu_model\": %s", cpu);
  snprintf(members[M_SETTINGS], 512, "\"settings\": {\"head_group\": 3}");
}

/* A document of the default members with member `which` replaced by `text` (NULL: left out; which < 0: none),
 * followed by `extra` members (may be NULL). */
void tuning_make_doc(char *out, size_t size, int which, const char *text, const char *extra) {
  char members[M_COUNT][512];
  tuning_member_defaults(members);
  size_t n = (size_t)snprintf(out, size, "{\n  \"written\": \"2026-11-28T00:00:00Z\"");
  for (int m = 0; m < M_COUNT; m++) {
    const char *t = m == which ? text : members[m];
    if (t) n += (size_t)snprintf(out + n, size - n, ",\n  %s", t);
  }
  if (extra) n += (size_t)snprintf(out + n, size - n, ",\n  %s", extra);
  snprintf(out + n, size - n, "\n}\n");
}

tuning_snapshot tuning_snap(rotary_context *ctx) {
  tuning_snapshot s;
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++)
    assert_int_equal(rotary_context_get_setting(ctx, (rotary_setting)i, &s.value[i], &s.source[i]), ROTARY_OK);
  return s;
}

void tuning_assert_same(const tuning_snapshot *a, const tuning_snapshot *b) {
  for (int i = 0; i < ROTARY_SETTING_COUNT; i++) {
    if (a->value[i] != b->value[i] || a->source[i] != b->source[i])
      fail_msg("%s: %lld (%s) became %lld (%s)", rotary_setting_name((rotary_setting)i), (long long)a->value[i],
               rotary_setting_source_name(a->source[i]), (long long)b->value[i],
               rotary_setting_source_name(b->source[i]));
  }
}

void tuning_write_bytes(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

int tuning_tmpdir(char *dir, size_t size) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, size, "%s/rotary-tuning-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  return mkdtemp(dir) ? 0 : -1;
}

int tuning_rmdir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  if (d) closedir(d);
  return rmdir(dir);
}

int tuning_ctx_create(rotary_context **ctx) {
  if (rotary_context_create(1, ctx) != ROTARY_OK) return -1;
  if (rotary_context_set_setting(*ctx, ROTARY_SETTING_THREAD_BYTES, 8192) != ROTARY_OK) return -1;
  return rotary_context_set_setting(*ctx, ROTARY_SETTING_TASKS_PER_THREAD, 3) == ROTARY_OK ? 0 : -1;
}

const char *tuning_read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char buf[1 << 16];
  const size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  return buf;
}
