/* tuning_file.c: tuning files: the default path, reading (all or nothing, every error "path: field: what") and
 * writing (atomically: a temporary file beside it, then rename). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file_read.h"
#include "json_strict.h"
#include "tuning.h"

#define TUNING_FORMAT "rotary-tuning"
#define TUNING_FORMAT_VERSION 1
#define TUNING_MAX_FILE ((size_t)1 << 20)

/* Appends the CPU model with letters and digits kept and every other run as one '-' (none at either end). */
static void put_model(char *out, const char *model) {
  size_t n = 0;
  for (const char *c = model; *c; c++) {
    const int keep = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
    if (keep) {
      out[n++] = *c;
    } else if (n && out[n - 1] != '-') {
      out[n++] = '-';
    }
  }
  if (n && out[n - 1] == '-') n--;
  out[n] = '\0';
}

rotary_status rotary_tuning_file_default_path(char *path, size_t size) {
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  const int use_xdg = xdg && *xdg;
  if (!use_xdg && !(home && *home)) return ROTARY_ERR_IO;
  char model[256]; /* rotary_cpu_model is shorter */
  put_model(model, rotary_cpu_model());
  const char *dir = use_xdg ? xdg : home, *sub = use_xdg ? "" : "/.cache";
  const int n = snprintf(NULL, 0, "%s%s/rotary/tuning-%s-%s.json", dir, sub, model, rotary_version_string());
  if (n < 0 || (size_t)n >= size) return ROTARY_ERR_OVERFLOW;
  snprintf(path, size, "%s%s/rotary/tuning-%s-%s.json", dir, sub, model, rotary_version_string());
  return ROTARY_OK;
}

/* Where messages go: "path: field: what". */
typedef struct msg {
  const char *path;
  char *error;
  size_t size;
} msg;

static rotary_status fail(const msg *m, rotary_status st, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rotary_status fail(const msg *m, rotary_status st, const char *field, const char *fmt, ...) {
  if (!m->error || !m->size) return st;
  const int n = snprintf(m->error, m->size, "%s: %s: ", m->path, field);
  if (n < 0 || (size_t)n >= m->size) return st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->error + n, m->size - (size_t)n, fmt, ap);
  va_end(ap);
  return st;
}

/* "path: file: No such file or directory" (rotary_file_strerror: strerror may share a buffer between threads). */
static rotary_status sys_fail(const msg *m, int err) {
  char text[128];
  rotary_file_strerror(err, text, sizeof text);
  return fail(m, ROTARY_ERR_IO, "file", "%s", text);
}

/* Reads the whole file (a regular file of at most 1 MiB: file_read.c) into a malloc'd buffer. */
static rotary_status read_text(const msg *m, char **text, size_t *len) {
  size_t detail = 0;
  switch (rotary_file_read(m->path, TUNING_MAX_FILE, text, len, &detail)) {
    case ROTARY_FILE_OK: return ROTARY_OK;
    case ROTARY_FILE_SYSTEM: return sys_fail(m, (int)detail);
    case ROTARY_FILE_NOT_REGULAR: return fail(m, ROTARY_ERR_IO, "file", "not a regular file");
    case ROTARY_FILE_TOO_LARGE: return fail(m, ROTARY_ERR_TUNING, "file", "larger than 1 MiB");
    case ROTARY_FILE_NO_MEMORY: break;
  }
  return fail(m, ROTARY_ERR_OUT_OF_MEMORY, "file", "out of memory for %zu bytes", detail);
}

/* Parses text as Python's json reads it; `field` names it in messages ("JSON", or "notes" for a note text). */
static rotary_status parse(const msg *m, const char *field, const char *text, size_t len, cJSON **root) {
  size_t at = 0;
  const char *why = "";
  switch (rotary_json_parse(text, len, root, &at, &why)) {
    case ROTARY_JSON_OK: return ROTARY_OK;
    case ROTARY_JSON_NO_MEMORY: return fail(m, ROTARY_ERR_OUT_OF_MEMORY, field, "out of memory while parsing");
    case ROTARY_JSON_SYNTAX: return fail(m, ROTARY_ERR_TUNING, field, "not valid JSON (error near byte %zu)", at);
    case ROTARY_JSON_MISMATCH:
      return fail(m, ROTARY_ERR_TUNING, field, "%s at byte %zu (not read as Python's json reads it)", why, at);
    case ROTARY_JSON_EXTRA: break;
  }
  return fail(m, ROTARY_ERR_TUNING, field, "unexpected data after the JSON value (byte %zu)", at);
}

/* The first byte of text that is not well-formed UTF-8 (Python decodes a file's bytes before json reads them:
 * overlong forms, surrogates and code points above U+10FFFF fail there), or len. */
static size_t utf8_error(const unsigned char *text, size_t len) {
  size_t i = 0;
  while (i < len) {
    const unsigned c = text[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* the allowed range of the second byte */
    if (c < 0x80) n = 0;
    else if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) n = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4) n = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else return i;
    if (n > len - i - 1) return i;
    for (size_t k = 1; k <= n; k++) {
      const unsigned b = text[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return i;
    }
    i += n + 1;
  }
  return len;
}

/* The type of a JSON value in words, for messages. */
static const char *type_name(const cJSON *v) {
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNull(v)) return "null";
  if (cJSON_IsArray(v)) return "an array";
  return "an object";
}

/* root[field] must be the string `want`; `what` and `hint` frame the message when it differs. */
static rotary_status check_string(const msg *m, const cJSON *root, const char *field, const char *want,
                                  const char *what, const char *hint) {
  const cJSON *v = rotary_json_get(root, field);
  if (!v) return fail(m, ROTARY_ERR_TUNING, field, "missing");
  if (!cJSON_IsString(v)) return fail(m, ROTARY_ERR_TUNING, field, "%s, not a string", type_name(v));
  if (strcmp(v->valuestring, want) != 0)
    return fail(m, ROTARY_ERR_TUNING, field, "\"%s\" is not %s\"%s\"%s", v->valuestring, what, want, hint);
  return ROTARY_OK;
}

/* Whether v is a number without a fraction (1.0 counts as 1, as config.json's integers). */
static int is_integer(const cJSON *v) {
  return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
}

/* "field: 4.5 is not an integer", "field: a string, not an integer". */
static rotary_status not_integer(const msg *m, const char *field, const cJSON *v) {
  if (cJSON_IsNumber(v)) return fail(m, ROTARY_ERR_TUNING, field, "%.17g is not an integer", v->valuedouble);
  return fail(m, ROTARY_ERR_TUNING, field, "%s, not an integer", type_name(v));
}

/* v, an integer, is inside [min, max] (where every integer is an exact double: |bounds| < 2^53). */
static int in_range(const cJSON *v, int64_t min, int64_t max) {
  return v->valuedouble >= (double)min && v->valuedouble <= (double)max;
}

/* settings: an object of known setting names with integers in range; the last of a repeated key counts. */
static rotary_status read_settings(const msg *m, const cJSON *root, int64_t values[], int named[]) {
  const cJSON *settings = rotary_json_get(root, "settings");
  if (!settings) return fail(m, ROTARY_ERR_TUNING, "settings", "missing");
  if (!cJSON_IsObject(settings))
    return fail(m, ROTARY_ERR_TUNING, "settings", "%s, not an object", type_name(settings));
  char field[128];
  for (const cJSON *c = settings->child; c; c = c->next) {
    int known = 0;
    for (int s = 0; s < ROTARY_SETTING_COUNT; s++)
      known |= !strcmp(c->string, rotary_setting_info_of((rotary_setting)s)->name);
    if (known) continue;
    snprintf(field, sizeof field, "settings.%s", c->string); /* a long key is cut short */
    return fail(m, ROTARY_ERR_TUNING, field, "unknown setting");
  }
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++) {
    const rotary_setting_info *info = rotary_setting_info_of((rotary_setting)s);
    const cJSON *v = rotary_json_get(settings, info->name);
    named[s] = v != NULL;
    if (!v) continue;
    snprintf(field, sizeof field, "settings.%s", info->name);
    if (!is_integer(v)) return not_integer(m, field, v);
    if (!in_range(v, info->min, info->max))
      return fail(m, ROTARY_ERR_TUNING, field, fabs(v->valuedouble) < 1e21 ? "%.0f is outside %lld .. %lld"
                                                                              : "%.17g is outside %lld .. %lld",
                  v->valuedouble + 0.0 /* -0 as 0 */, (long long)info->min, (long long)info->max);
    const int64_t x = (int64_t)v->valuedouble;
    values[s] = x;
  }
  return ROTARY_OK;
}

/* Every rule of rotary.h but the file's kind and size, on the parsed document. */
static rotary_status check_document(const msg *m, const cJSON *root, int64_t values[], int named[]) {
  if (!cJSON_IsObject(root)) return fail(m, ROTARY_ERR_TUNING, "JSON", "%s, not an object", type_name(root));
  rotary_status st = check_string(m, root, "format", TUNING_FORMAT, "", "");
  if (st != ROTARY_OK) return st;
  const cJSON *version = rotary_json_get(root, "format_version");
  if (!version) return fail(m, ROTARY_ERR_TUNING, "format_version", "missing");
  if (!is_integer(version)) return not_integer(m, "format_version", version);
  if (!in_range(version, TUNING_FORMAT_VERSION, TUNING_FORMAT_VERSION))
    return fail(m, ROTARY_ERR_TUNING, "format_version", "%.17g is not %d", version->valuedouble + 0.0,
                TUNING_FORMAT_VERSION);
  st = check_string(m, root, "library_version", rotary_version_string(), "this library's version ",
                    " (a stale file: tune again)");
  if (st != ROTARY_OK) return st;
  st = check_string(m, root, "cpu_model", rotary_cpu_model(), "this CPU's model ",
                    " (a file from another CPU: tune on this one)");
  if (st != ROTARY_OK) return st;
  return read_settings(m, root, values, named);
}

rotary_status rotary_tuning_file_read(const char *path, rotary_tuning *t, char *error, size_t error_size) {
  const msg m = {path, error, error_size};
  char *text = NULL;
  size_t len = 0;
  rotary_status st = read_text(&m, &text, &len);
  if (st != ROTARY_OK) return st;
  cJSON *root = NULL;
  const size_t bad = utf8_error((const unsigned char *)text, len);
  if (bad < len) st = fail(&m, ROTARY_ERR_TUNING, "JSON", "not UTF-8 (byte %zu)", bad);
  else st = parse(&m, "JSON", text, len, &root);
  free(text);
  if (st != ROTARY_OK) return st;
  int64_t values[ROTARY_SETTING_COUNT] = {0};
  int named[ROTARY_SETTING_COUNT] = {0};
  st = check_document(&m, root, values, named);
  cJSON_Delete(root);
  if (st != ROTARY_OK) return st;
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++)
    if (named[s]) rotary_tuning_put(t, (rotary_setting)s, values[s], ROTARY_SOURCE_FILE);
  return ROTARY_OK;
}

/* A growing text buffer for the file being written; `failed` once an allocation failed. */
typedef struct text_buf {
  char *data;
  size_t len, cap;
  int failed;
} text_buf;

static void append(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(text_buf *b, const char *fmt, ...) {
  if (b->failed) return;
  va_list ap;
  va_start(ap, fmt);
  const int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || b->len + (size_t)n + 1 > b->cap) {
    const size_t cap = n < 0 ? 0 : 2 * (b->len + (size_t)n + 1);
    char *grown = cap ? realloc(b->data, cap) : NULL;
    if (!grown) {
      b->failed = 1;
      return;
    }
    b->data = grown;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* s as a JSON string: quotes, backslashes and control characters escaped. */
static void append_string(text_buf *b, const char *s) {
  append(b, "\"");
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') append(b, "\\%c", *c);
    else if (*c < 0x20) append(b, "\\u%04x", *c);
    else append(b, "%c", *c);
  }
  append(b, "\"");
}

/* The notes text, checked to be one JSON object, without the white space around it. */
static rotary_status notes_text(const msg *m, const char *notes, const char **start, size_t *len) {
  size_t n = strlen(notes);
  const size_t bad = utf8_error((const unsigned char *)notes, n); /* the file could not be loaded again */
  if (bad < n) return fail(m, ROTARY_ERR_TUNING, "notes", "not UTF-8 (byte %zu)", bad);
  cJSON *root = NULL;
  const rotary_status st = parse(m, "notes", notes, n, &root);
  if (st != ROTARY_OK) return st;
  const int object = cJSON_IsObject(root);
  const char *kind = type_name(root);
  cJSON_Delete(root);
  if (!object) return fail(m, ROTARY_ERR_TUNING, "notes", "%s, not an object", kind);
  while (*notes == ' ' || *notes == '\t' || *notes == '\n' || *notes == '\r') notes++, n--;
  while (n && (notes[n - 1] == ' ' || notes[n - 1] == '\t' || notes[n - 1] == '\n' || notes[n - 1] == '\r')) n--;
  *start = notes;
  *len = n;
  return ROTARY_OK;
}

/* The document: the keys, the settings whose source is FILE, SET or TUNED, when it was written, the notes. */
static void compose(text_buf *b, const rotary_tuning *t, const char *notes, size_t notes_len) {
  append(b, "{\n  \"format\": \"%s\",\n  \"format_version\": %d,\n  \"library_version\": ", TUNING_FORMAT,
         TUNING_FORMAT_VERSION);
  append_string(b, rotary_version_string());
  append(b, ",\n  \"cpu_model\": ");
  append_string(b, rotary_cpu_model());
  char when[32] = "unknown";
  struct tm tm;
  const time_t now = time(NULL);
  if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  append(b, ",\n  \"written\": \"%s\",\n  \"settings\": {", when);
  int first = 1;
  for (int s = 0; s < ROTARY_SETTING_COUNT; s++) {
    const unsigned src = t->source[s];
    if (src != ROTARY_SOURCE_FILE && src != ROTARY_SOURCE_SET && src != ROTARY_SOURCE_TUNED) continue;
    append(b, "%s\n    \"%s\": %lld", first ? "" : ",", rotary_setting_info_of((rotary_setting)s)->name,
           (long long)rotary_tuning_get(t, (rotary_setting)s));
    first = 0;
  }
  append(b, first ? "}" : "\n  }");
  if (notes) append(b, ",\n  \"notes\": %.*s", (int)notes_len, notes); /* notes_len <= 1 MiB */
  append(b, "\n}\n");
}

/* Writes the whole buffer to fd, flushes it to the disk. */
static int write_all(int fd, const char *data, size_t len) {
  while (len) {
    const ssize_t put = write(fd, data, len);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return put < 0 ? errno : EIO;
    data += put;
    len -= (size_t)put;
  }
  return fsync(fd) != 0 ? errno : 0;
}

/* Writes data to a temporary file beside path (path.XXXXXX), then renames it over path. */
static rotary_status replace_file(const msg *m, const char *data, size_t len) {
  const size_t plen = strlen(m->path);
  char *tmp = malloc(plen + 8);
  if (!tmp) return fail(m, ROTARY_ERR_OUT_OF_MEMORY, "file", "out of memory");
  memcpy(tmp, m->path, plen);
  memcpy(tmp + plen, ".XXXXXX", 8);
  const int fd = mkstemp(tmp);
  if (fd < 0) {
    const int err = errno;
    free(tmp);
    return sys_fail(m, err);
  }
  int err = fchmod(fd, 0644) != 0 ? errno : 0;
  if (!err) err = write_all(fd, data, len);
  if (close(fd) != 0 && !err) err = errno;
  if (!err && rename(tmp, m->path) != 0) err = errno;
  if (err) unlink(tmp);
  free(tmp);
  return err ? sys_fail(m, err) : ROTARY_OK;
}

rotary_status rotary_tuning_file_write(const char *path, const rotary_tuning *t, const char *notes, char *error,
                                       size_t error_size) {
  const msg m = {path, error, error_size};
  const char *notes_start = NULL;
  size_t notes_len = 0;
  if (notes) {
    if (strlen(notes) > TUNING_MAX_FILE) /* before parsing: the file could not be loaded again anyway */
      return fail(&m, ROTARY_ERR_TUNING, "notes", "too long: the file would be larger than 1 MiB");
    const rotary_status st = notes_text(&m, notes, &notes_start, &notes_len);
    if (st != ROTARY_OK) return st;
  }
  text_buf b = {NULL, 0, 0, 0};
  compose(&b, t, notes_start, notes_len);
  if (b.failed) {
    free(b.data);
    return fail(&m, ROTARY_ERR_OUT_OF_MEMORY, "file", "out of memory");
  }
  if (b.len > TUNING_MAX_FILE) { /* a file that could not be loaded again */
    free(b.data);
    return fail(&m, ROTARY_ERR_TUNING, "notes", "too long: the file would be larger than 1 MiB");
  }
  const rotary_status st = replace_file(&m, b.data, b.len);
  free(b.data);
  return st;
}
