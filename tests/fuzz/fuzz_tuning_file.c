/* fuzz_tuning_file.c: libFuzzer target: raw bytes as a tuning file for rotary_context_load_tuning ("@CPU@" and
 * "@VERSION@" replaced by rotary_cpu_model() and rotary_version_string(), so that one corpus loads on every machine);
 * a loaded file must have changed exactly the settings it names, a refused one nothing. */
// Build and run for 60 s, from the repository root (the corpus is copied so that the run does not add to it):
//   mkdir -p build-fuzz/corpus_tuning_file && cp tests/fuzz/corpus_tuning_file/* build-fuzz/corpus_tuning_file/
//   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -ffp-contract=off -D_GNU_SOURCE -DCJSON_HIDE_SYMBOLS -Iinclude $(find src -type d -printf "-I%p ") -Ithird_party/cjson -Ithird_party/cjson/cjson tests/fuzz/fuzz_tuning_file.c third_party/cjson/cJSON.c $(find src -name "*.c") -lm -lpthread -o build-fuzz/fuzz_tuning_file
//   build-fuzz/fuzz_tuning_file -max_total_time=60 -max_len=4096 -dict=tests/fuzz/fuzz_tuning_file.dict -artifact_prefix=build-fuzz/tuning- build-fuzz/corpus_tuning_file
// tests/test_fuzz_tuning_replay.c includes this file and replays tests/fuzz/corpus_tuning_file/ (and cut and flipped
// variants of each file) in ctest.
/*
 * The checks, on a context whose settings were reset and two of them SET. Refused: status TUNING or OUT_OF_MEMORY
 * (the input is a regular file), a non-empty NUL-terminated message naming the file, every value and source
 * unchanged; the same status with a 1-byte buffer (just the NUL) and with none. Loaded: every value in its range;
 * the document (read with cJSON, each key's last value) has format "rotary-tuning", format_version 1, this library's
 * version and this CPU's model, a settings object of known names only; exactly the settings it names have source
 * FILE and its values, the others kept theirs; every number in the text follows JSON's grammar (Python's json
 * refuses "03" and "3."); a second load changes nothing; saved and loaded into a reset context, the same values.
 * And the converse: an ASCII text without \u escapes whose numbers follow the grammar and that meets every rule
 * above must load.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "rotary.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long fuzz_failures, fuzz_ok, fuzz_errors, fuzz_status[32];

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_tuning_file: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fuzz_failures++;
#ifndef FUZZ_NO_ABORT
  abort();
#endif
}

#define ERR_SIZE 600
#define CANARY 0x5a
#define NSET ROTARY_SETTING_COUNT

static rotary_context *fz_ctx;
static char fz_dir[512], fz_file[600], fz_saved[600];

static void fz_cleanup(void) {
  if (!fz_dir[0]) return;
  unlink(fz_file);
  unlink(fz_saved);
  rmdir(fz_dir);
  fz_dir[0] = '\0';
  rotary_context_destroy(fz_ctx);
  fz_ctx = NULL;
}

/* A scratch folder for the input file and the saved copy, and the context; once per process. */
static int fz_init(void) {
  if (fz_ctx) return 1;
  const char *tmp = getenv("TMPDIR");
  snprintf(fz_dir, sizeof fz_dir, "%s/rotary-fuzz-tuning-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(fz_dir) || rotary_context_create(1, &fz_ctx) != ROTARY_OK) {
    fprintf(stderr, "fuzz_tuning_file: no scratch folder or context\n");
    abort();
  }
  snprintf(fz_file, sizeof fz_file, "%s/in.json", fz_dir);
  snprintf(fz_saved, sizeof fz_saved, "%s/saved.json", fz_dir);
  atexit(fz_cleanup);
  return 1;
}

/* data with every "@CPU@" and "@VERSION@" replaced by the JSON-escaped model and version (malloc'd). */
static char *substitute(const uint8_t *data, size_t size, size_t *len) {
  char cpu[512];
  size_t c = 0;
  for (const unsigned char *m = (const unsigned char *)rotary_cpu_model(); *m && c + 7 < sizeof cpu; m++) {
    if (*m == '"' || *m == '\\') cpu[c++] = '\\', cpu[c++] = (char)*m;
    else if (*m < 0x20) c += (size_t)snprintf(cpu + c, sizeof cpu - c, "\\u%04x", *m);
    else cpu[c++] = (char)*m;
  }
  cpu[c] = '\0';
  const char *ver = rotary_version_string();
  const size_t grow = c > strlen(ver) ? c : strlen(ver);
  char *out = malloc(size + (size / 5 + 1) * grow + 1);
  if (!out) return NULL;
  size_t n = 0;
  for (size_t i = 0; i < size;) {
    if (size - i >= 5 && !memcmp(data + i, "@CPU@", 5)) {
      memcpy(out + n, cpu, c), n += c, i += 5;
    } else if (size - i >= 9 && !memcmp(data + i, "@VERSION@", 9)) {
      memcpy(out + n, ver, strlen(ver)), n += strlen(ver), i += 9;
    } else {
      out[n++] = (char)data[i++];
    }
  }
  out[n] = '\0';
  *len = n;
  return out;
}

typedef struct snapshot {
  int64_t value[NSET];
  rotary_setting_source source[NSET];
} snapshot;

static snapshot snap(void) {
  snapshot s;
  for (int i = 0; i < NSET; i++)
    if (rotary_context_get_setting(fz_ctx, (rotary_setting)i, &s.value[i], &s.source[i]) != ROTARY_OK)
      fuzz_fail("get_setting %d failed", i);
  return s;
}

static int same(const snapshot *a, const snapshot *b) {
  for (int i = 0; i < NSET; i++)
    if (a->value[i] != b->value[i] || a->source[i] != b->source[i]) return 0;
  return 1;
}

/* The last member of obj named name (a key given twice counts with its last value), or NULL. */
static const cJSON *last(const cJSON *obj, const char *name) {
  const cJSON *found = NULL;
  for (const cJSON *m = obj ? obj->child : NULL; m; m = m->next)
    if (m->string && !strcmp(m->string, name)) found = m;
  return found;
}

static int integral(const cJSON *v) {
  return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
}

/* Whether every number token outside strings follows JSON's grammar -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? */
static int numbers_ok(const char *t, size_t n) {
  for (size_t i = 0; i < n;) {
    if (t[i] == '"') {
      for (i++; i < n && t[i] != '"'; i++) i += t[i] == '\\';
      i++;
      continue;
    }
    if (t[i] != '-' && (t[i] < '0' || t[i] > '9')) {
      i++;
      continue;
    }
    size_t j = i + (t[i] == '-'), d;
    if (j < n && t[j] == '0') j++;
    else if (j < n && t[j] >= '1' && t[j] <= '9') while (j < n && t[j] >= '0' && t[j] <= '9') j++;
    else return 0; /* "-", "-.5" */
    if (j < n && t[j] == '.') {
      for (d = ++j; j < n && t[j] >= '0' && t[j] <= '9'; j++) {}
      if (j == d) return 0;
    }
    if (j < n && (t[j] == 'e' || t[j] == 'E')) {
      j += j + 1 < n && (t[j + 1] == '+' || t[j + 1] == '-');
      for (d = ++j; j < n && t[j] >= '0' && t[j] <= '9'; j++) {}
      if (j == d) return 0;
    }
    if (j < n && ((t[j] >= '0' && t[j] <= '9') || t[j] == '.' || t[j] == 'e' || t[j] == 'E' || t[j] == '+' ||
                  t[j] == '-'))
      return 0; /* "03", "1.2.3", "1e5e" */
    i = j;
  }
  return 1;
}

/* text as one JSON value with nothing but white space after it (cJSON_ParseWithLength ignores what follows). */
static cJSON *parse_whole(const char *text, size_t len) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  while (root && end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
  if (root && end != text + len) {
    cJSON_Delete(root);
    root = NULL;
  }
  return root;
}

/* The rules of rotary.h on the parsed document: which settings it names (named[]) and their values. */
static int meets_rules(const cJSON *root, int named[NSET], int64_t values[NSET]) {
  if (!cJSON_IsObject(root)) return 0;
  const cJSON *f = last(root, "format"), *fv = last(root, "format_version"), *lv = last(root, "library_version");
  const cJSON *cm = last(root, "cpu_model"), *st = last(root, "settings");
  if (!cJSON_IsString(f) || strcmp(f->valuestring, "rotary-tuning")) return 0;
  if (!integral(fv) || fv->valuedouble != 1.0) return 0;
  if (!cJSON_IsString(lv) || strcmp(lv->valuestring, rotary_version_string())) return 0;
  if (!cJSON_IsString(cm) || strcmp(cm->valuestring, rotary_cpu_model())) return 0;
  if (!cJSON_IsObject(st)) return 0;
  for (const cJSON *m = st->child; m; m = m->next) {
    int known = 0;
    for (int i = 0; i < NSET; i++) known |= !strcmp(m->string, rotary_setting_name((rotary_setting)i));
    if (!known) return 0;
  }
  for (int i = 0; i < NSET; i++) {
    const cJSON *v = last(st, rotary_setting_name((rotary_setting)i));
    int64_t lo, hi;
    rotary_setting_range((rotary_setting)i, &lo, &hi);
    named[i] = v != NULL;
    if (!v) continue;
    if (!integral(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi) return 0;
    values[i] = (int64_t)v->valuedouble;
  }
  return 1;
}

/* Pure ASCII (tab, newline, return and printable characters) without \u escapes: read alike by cJSON and Python. */
static int plain_ascii(const char *t, size_t n) {
  int in_string = 0;
  for (size_t i = 0; i < n; i++) {
    const unsigned char ch = (unsigned char)t[i];
    if (ch > 0x7e) return 0;
    /* JSON (and Python's json) refuse raw control characters inside strings, which cJSON takes: not plain */
    if (ch < 0x20 && (in_string || (ch != '\t' && ch != '\n' && ch != '\r'))) return 0;
    if (ch == '\\') {
      if (i + 1 < n && (t[i + 1] == 'u' || (unsigned char)t[i + 1] < 0x20)) return 0;
      if (in_string) i++; /* the escaped character cannot end the string */
      continue;
    }
    if (ch == '"') in_string = !in_string;
  }
  return 1;
}

static void check_refused(rotary_status st, const char *err, const snapshot *before) {
  const char *nul = memchr(err, '\0', ERR_SIZE);
  if (st != ROTARY_ERR_TUNING && st != ROTARY_ERR_OUT_OF_MEMORY) fuzz_fail("undocumented status %d", (int)st);
  if (!nul) fuzz_fail("status %d: message not terminated", (int)st);
  else if (nul == err) fuzz_fail("status %d: empty message", (int)st);
  else if (!strstr(err, fz_file)) fuzz_fail("status %d: message \"%s\" does not name the file", (int)st, err);
  snapshot after = snap();
  if (!same(before, &after)) fuzz_fail("status %d: settings changed", (int)st);
  char one[2] = {CANARY, CANARY};
  const rotary_status again = rotary_context_load_tuning(fz_ctx, fz_file, one, 1);
  if (again != st || one[0] != '\0' || one[1] != CANARY)
    fuzz_fail("status %d, then %d with a 1-byte buffer (%02x %02x)", (int)st, (int)again, one[0], one[1]);
  if (rotary_context_load_tuning(fz_ctx, fz_file, NULL, 0) != st) fuzz_fail("status %d: not so without a buffer", (int)st);
  after = snap();
  if (!same(before, &after)) fuzz_fail("status %d: settings changed by a second refusal", (int)st);
}

/* Saved to a second file and loaded into a reset context: the FILE and SET settings come back, source FILE. */
static void check_round_trip(const snapshot *loaded) {
  char err[ERR_SIZE];
  if (rotary_context_save_tuning(fz_ctx, fz_saved, NULL, err, sizeof err) != ROTARY_OK) {
    fuzz_fail("saving a loaded context: %s", err);
    return;
  }
  rotary_context_reset_settings(fz_ctx);
  const snapshot reset = snap();
  if (rotary_context_load_tuning(fz_ctx, fz_saved, err, sizeof err) != ROTARY_OK) {
    fuzz_fail("loading what was saved: %s", err);
    return;
  }
  const snapshot back = snap();
  for (int i = 0; i < NSET; i++) {
    const int kept = loaded->source[i] == ROTARY_SOURCE_FILE || loaded->source[i] == ROTARY_SOURCE_SET;
    const int64_t want = kept ? loaded->value[i] : reset.value[i];
    const rotary_setting_source src = kept ? ROTARY_SOURCE_FILE : reset.source[i];
    if (back.value[i] != want || back.source[i] != src)
      fuzz_fail("round trip: %s %lld (%d), expected %lld (%d)", rotary_setting_name((rotary_setting)i),
                (long long)back.value[i], (int)back.source[i], (long long)want, (int)src);
  }
}

static void check_loaded(const char *text, size_t len, const snapshot *before) {
  const snapshot after = snap();
  for (int i = 0; i < NSET; i++) {
    int64_t lo, hi;
    rotary_setting_range((rotary_setting)i, &lo, &hi);
    if (after.value[i] < lo || after.value[i] > hi)
      fuzz_fail("%s is %lld, outside its range", rotary_setting_name((rotary_setting)i), (long long)after.value[i]);
  }
  if (!numbers_ok(text, len)) fuzz_fail("loaded a file with a number Python's json refuses");
  cJSON *root = parse_whole(text, len);
  int named[NSET] = {0};
  int64_t values[NSET] = {0};
  if (!root || !meets_rules(root, named, values)) fuzz_fail("loaded a file that breaks the rules");
  cJSON_Delete(root);
  for (int i = 0; i < NSET; i++) {
    const int64_t want = named[i] ? values[i] : before->value[i];
    const rotary_setting_source src = named[i] ? ROTARY_SOURCE_FILE : before->source[i];
    if (after.value[i] != want || after.source[i] != src)
      fuzz_fail("%s: %lld (%d), the file says %lld (%d)", rotary_setting_name((rotary_setting)i),
                (long long)after.value[i], (int)after.source[i], (long long)want, (int)src);
  }
  if (rotary_context_load_tuning(fz_ctx, fz_file, NULL, 0) != ROTARY_OK) fuzz_fail("a second load refused");
  const snapshot again = snap();
  if (!same(&after, &again)) fuzz_fail("a second load changed the settings");
  check_round_trip(&after);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_init();
  size_t len = 0;
  char *text = substitute(data, size, &len);
  unlink(fz_file); /* a new file: truncating one makes ext4 flush it on close (auto_da_alloc), 2 ms a time */
  FILE *f = text ? fopen(fz_file, "wb") : NULL;
  if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "fuzz_tuning_file: cannot write %s\n", fz_file);
    abort();
  }
  rotary_context_reset_settings(fz_ctx);
  rotary_context_set_setting(fz_ctx, ROTARY_SETTING_TASKS_PER_THREAD, 5);
  rotary_context_set_setting(fz_ctx, ROTARY_SETTING_HEAD_GROUP, 3);
  const snapshot before = snap();
  char err[ERR_SIZE];
  memset(err, CANARY, sizeof err);
  const rotary_status st = rotary_context_load_tuning(fz_ctx, fz_file, err, sizeof err);
  if ((unsigned)st < 32) fuzz_status[st]++;
  if (st != ROTARY_OK) {
    fuzz_errors++;
    check_refused(st, err, &before);
    /* the converse: a text read alike by cJSON and Python that meets every rule must load */
    cJSON *root = st == ROTARY_ERR_TUNING && plain_ascii(text, len) && numbers_ok(text, len)
                      ? parse_whole(text, len) : NULL;
    int named[NSET];
    int64_t values[NSET];
    if (root && meets_rules(root, named, values)) fuzz_fail("a valid file refused: %s", err);
    cJSON_Delete(root);
  } else {
    fuzz_ok++;
    check_loaded(text, len, &before);
  }
  free(text);
  return 0;
}
