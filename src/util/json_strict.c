/* json_strict.c: JSON text parsed with cJSON as Python's json reads it, out of memory told apart from bad syntax. */
#include "json_strict.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* cJSON reports every failure as NULL. Its allocation hooks (process-wide within this copy of cJSON) go through a
 * malloc that notes a failure in a per-thread flag, so that a parse that ran out of memory is told from one that
 * met bad syntax. The hooks are set once and never change. */
static _Thread_local int alloc_failed;

static void *noting_malloc(size_t n) {
  void *block = malloc(n);
  if (!block) alloc_failed = 1;
  return block;
}

static void free_block(void *block) { free(block); }

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void install_hooks(void) {
  cJSON_Hooks hooks = {noting_malloc, free_block};
  cJSON_InitHooks(&hooks);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The end of the number token at json[i] ('-' or a digit, outside strings), or (size_t)-1 when it does not follow
 * JSON's grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?: cJSON takes whatever strtod reads from the
 * characters [0-9+-.eE], so it lets "03", "3." and "1.e5" through where Python's json refuses them. */
static size_t number_end(const char *json, size_t i, size_t end) {
  size_t j = i;
  if (j < end && json[j] == '-') j++;
  if (j < end && json[j] == '0') {
    j++;
  } else if (j < end && is_digit(json[j])) {
    while (j < end && is_digit(json[j])) j++;
  } else {
    return (size_t)-1;
  }
  if (j < end && json[j] == '.') {
    if (++j >= end || !is_digit(json[j])) return (size_t)-1;
    while (j < end && is_digit(json[j])) j++;
  }
  if (j < end && (json[j] == 'e' || json[j] == 'E')) {
    j++;
    if (j < end && (json[j] == '+' || json[j] == '-')) j++;
    if (j >= end || !is_digit(json[j])) return (size_t)-1;
    while (j < end && is_digit(json[j])) j++;
  }
  if (j < end && (is_digit(json[j]) || json[j] == '.' || json[j] == 'e' || json[j] == 'E' || json[j] == '+' ||
                  json[j] == '-'))
    return (size_t)-1; /* "03", "1.5.2", "1e5e5": more of what cJSON would have read */
  return j;
}

/* The first byte in [0, end) that Python's json (strict) reads differently from cJSON, or end. The text up to end
 * is valid JSON for cJSON, so quotes and backslashes pair up. */
static size_t python_mismatch(const char *json, size_t end, const char **why) {
  int in_string = 0;
  for (size_t i = 0; i < end; i++) {
    const unsigned char ch = (unsigned char)json[i];
    if (ch < 0x20 && (in_string || (ch != '\t' && ch != '\n' && ch != '\r'))) {
      *why = "a control character";
      return i;
    }
    if (!in_string) {
      if (ch == '-' || is_digit((char)ch)) {
        const size_t next = number_end(json, i, end);
        if (next == (size_t)-1) {
          *why = "a number outside JSON's syntax";
          return i;
        }
        i = next - 1;
        continue;
      }
      in_string = ch == '"';
    } else if (ch == '"') {
      in_string = 0;
    } else if (ch == '\\') {
      if (i + 5 < end && json[i + 1] == 'u' && !memcmp(json + i + 2, "0000", 4)) {
        *why = "an escaped NUL (\\u0000) in a string";
        return i;
      }
      i++; /* the escaped character */
    }
  }
  return end;
}

/* cJSON's parser writes a process-wide error record (global_error) on every call, even one that succeeds. */
static pthread_mutex_t parse_lock = PTHREAD_MUTEX_INITIALIZER;

rotary_json_result rotary_json_parse(const char *json, size_t length, cJSON **root, size_t *at, const char **why) {
  pthread_once(&hooks_once, install_hooks);
  alloc_failed = 0;
  const char *end = NULL;
  pthread_mutex_lock(&parse_lock);
  cJSON *r = cJSON_ParseWithLengthOpts(json, length, &end, 0);
  pthread_mutex_unlock(&parse_lock);
  *at = end && end >= json && end <= json + length ? (size_t)(end - json) : 0;
  if (alloc_failed) {
    cJSON_Delete(r);
    return ROTARY_JSON_NO_MEMORY;
  }
  if (!r) return ROTARY_JSON_SYNTAX;
  size_t tail = *at;
  while (tail < length && (json[tail] == ' ' || json[tail] == '\t' || json[tail] == '\n' || json[tail] == '\r'))
    tail++;
  const size_t bad = python_mismatch(json, *at, why);
  if (bad < *at) {
    cJSON_Delete(r);
    *at = bad;
    return ROTARY_JSON_MISMATCH;
  }
  if (tail < length) {
    cJSON_Delete(r);
    *at = tail;
    return ROTARY_JSON_EXTRA;
  }
  *root = r;
  return ROTARY_JSON_OK;
}

const cJSON *rotary_json_get(const cJSON *obj, const char *name) {
  const cJSON *found = NULL;
  if (!cJSON_IsObject(obj)) return NULL;
  for (const cJSON *c = obj->child; c; c = c->next)
    if (c->string && !strcmp(c->string, name)) found = c;
  return found;
}
