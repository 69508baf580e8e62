/* tuning.h: the settings a call runs with (rotary_setting: prefetch, stream stores, thread split, head group), owned
 * by a context, with where each value came from. */
#ifndef ROTARY_TUNING_H
#define ROTARY_TUNING_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"

/* Settings change speed only, never results. Every field holds a value inside its setting's range. */
typedef struct rotary_tuning {
  int prefetch_bytes;      /* ROTARY_SETTING_PREFETCH_BYTES: -1 (off) .. 65536 */
  size_t nt_min_bytes;     /* ROTARY_SETTING_STREAM_STORE_BYTES: SIZE_MAX for off (-1), else 0 .. 2^50 */
  size_t thread_bytes;     /* ROTARY_SETTING_THREAD_BYTES: bytes of traffic per woken thread, 4096 .. 2^30 */
  size_t tasks_per_thread; /* ROTARY_SETTING_TASKS_PER_THREAD: 1 .. 64 */
  size_t head_group;       /* ROTARY_SETTING_HEAD_GROUP: 1 .. 64 */
  unsigned char source[ROTARY_SETTING_COUNT]; /* rotary_setting_source of each value */
} rotary_tuning;

/* The largest stream_store_bytes: 2^50 (1 PiB), below 2^53 so that every value in range and the one above it are
 * exact JSON numbers (a tuning file's "max + 1" is refused, never rounded into range). */
#define ROTARY_STREAM_STORE_MAX ((int64_t)1 << 50)

/* One setting's description: its tuning-file key, environment variable, inclusive range, whether min (-1) means
 * off ("off" in the environment), and the candidate values rotary_context_tune times (terminated by INT64_MIN). */
typedef struct rotary_setting_info {
  const char *name;
  const char *env;
  int64_t min, max;
  int has_off;
  const int64_t *candidates;
} rotary_setting_info;

/* The description of setting s; NULL for a value outside 0 .. ROTARY_SETTING_COUNT - 1. */
const rotary_setting_info *rotary_setting_info_of(rotary_setting s);

/* t's value of setting s as the public int64 (-1 for off). s must be valid. */
int64_t rotary_tuning_get(const rotary_tuning *t, rotary_setting s);
/* Stores value (inside the range: the caller checked) and its source. s must be valid. */
void rotary_tuning_put(rotary_tuning *t, rotary_setting s, int64_t value, rotary_setting_source source);

/* Step 1 alone: every setting at the library's default for this CPU, source DEFAULT (rotary_setting_default). */
void rotary_tuning_cpu_defaults(rotary_tuning *t);

/* The process defaults (steps 1-3 of rotary.h's "Settings"): the CPU's defaults, then ROTARY_TUNING_FILE, then
 * each setting's environment variable, built once per process. A new context starts with these. */
const rotary_tuning *rotary_tuning_defaults(void);
/* The outcome of loading ROTARY_TUNING_FILE while the defaults were built (OK when unset, or "auto" found no file),
 * with its message ("" when OK; static, never NULL). */
rotary_status rotary_tuning_env_file_status(const char **message);

/* The settings calls on ctx run with (a copy of the defaults unless changed); for NULL, the process defaults.
 * Never NULL. Read a context's settings while holding it (rotary_context_lock): a call does. */
const rotary_tuning *rotary_context_tuning(const rotary_context *ctx);

/* Room for a tuning-file message: a path of up to PATH_MAX bytes and the field and what is wrong with it. */
#define ROTARY_TUNING_MESSAGE_MAX 8192

/* rotary_tuning_default_path's path (the caller checked the pointers). Errors: IO (neither XDG_CACHE_HOME nor HOME
 * set), OVERFLOW (does not fit size bytes with its NUL); nothing written on error. */
rotary_status rotary_tuning_file_default_path(char *path, size_t size);

/* Reads a tuning file (rotary.h's rules) into *t: on success the settings it names take the file's values with
 * source FILE; on error *t is unchanged and error receives "path: field: what", checked in this order:
 *   file: <the system's text> (IO: "No such file or directory", "Is a directory", ...) | not a regular file (IO) |
 *         larger than 1 MiB (TUNING) | out of memory (OUT_OF_MEMORY)
 *   JSON: not UTF-8 (byte N) | not valid JSON (error near byte N) | unexpected data after the JSON value (byte N) |
 *         <a control character | an escaped NUL (\u0000) in a string | a number outside JSON's syntax> at byte N
 *         (not read as Python's json reads it) | <a string, a number, an array, a boolean, null>, not an object |
 *         out of memory while parsing (OUT_OF_MEMORY)
 *   format: missing | <type>, not a string | "x" is not "rotary-tuning"
 *   format_version: missing | 1.5 is not an integer | <type>, not an integer | 2 is not 1
 *   library_version: missing | <type>, not a string | "0.1.0" is not this library's version "0.2.0" (a stale ...)
 *   cpu_model: missing | <type>, not a string | "X" is not this CPU's model "Y" (a file from another CPU: ...)
 *   settings: missing | <type>, not an object
 *   settings.<key>: unknown setting (the first unknown key in the file's order)
 *   settings.<name>: 4.5 is not an integer | <type>, not an integer | 0 is outside 1 .. 64 (settings in enum order)
 * A number without a fraction is an integer (1.0 as 1); a key given twice counts with its last value only (an
 * earlier value is never checked, as in Python's json). Errors: IO, TUNING, OUT_OF_MEMORY. */
rotary_status rotary_tuning_file_read(const char *path, rotary_tuning *t, char *error, size_t error_size);
/* Writes the settings of t whose source is FILE, SET or TUNED to path (atomically: a temporary file path.XXXXXX
 * beside it, mode 0644, then rename), with notes (a JSON object text, or NULL; stored verbatim as "notes") and the
 * UTC time as "written". Messages: "path: notes: <as JSON: above, UTF-8 included> | <type>, not an object |
 * too long: the file would be larger than 1 MiB" (TUNING), "path: file: <the system's text>" (IO). Errors: TUNING
 * (notes), IO, OUT_OF_MEMORY. */
rotary_status rotary_tuning_file_write(const char *path, const rotary_tuning *t, const char *notes, char *error,
                                       size_t error_size);

#endif /* ROTARY_TUNING_H */
