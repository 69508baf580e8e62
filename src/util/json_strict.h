/* json_strict.h: JSON text parsed with the bundled cJSON as Python's json reads it (shared by librotary's tuning
 * files and librotary_hf's config.json; each library compiles its own copy, with hidden visibility). */
#ifndef ROTARY_JSON_STRICT_H
#define ROTARY_JSON_STRICT_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum rotary_json_result {
  ROTARY_JSON_OK = 0,
  ROTARY_JSON_NO_MEMORY, /* an allocation inside cJSON failed */
  ROTARY_JSON_SYNTAX,    /* not valid JSON; *at: the byte near the error */
  ROTARY_JSON_MISMATCH,  /* valid for cJSON but read differently by Python's json; *at, and *why says what */
  ROTARY_JSON_EXTRA      /* something other than white space after the value (Python: "Extra data"); *at */
} rotary_json_result;

/* Parses json[0, length) into *root (free with cJSON_Delete). Mismatches: a control character (below 0x20) inside a
 * string or, other than tab, newline and return, between tokens (cJSON skips them); an escaped NUL (\u0000), which
 * would cut a cJSON string short; a number outside JSON's grammar ("03", "-01", "3.", "1.e5": cJSON reads them).
 * Python's json accepts NaN, Infinity and -Infinity, cJSON does not: such text is refused as not valid JSON.
 * Thread-safe: parses take turns (cJSON writes a process-wide error record). */
rotary_json_result rotary_json_parse(const char *json, size_t length, cJSON **root, size_t *at, const char **why);

/* obj[name]: the LAST member of that name (duplicate keys count with their last value, as in Python's json), or
 * NULL when absent or obj is not an object. */
const cJSON *rotary_json_get(const cJSON *obj, const char *name);

#endif /* ROTARY_JSON_STRICT_H */
