/* tuning_file.c: tuning files: the default path, reading (all or nothing, every error "path: field: what") and
 * writing (atomically). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "tuning.h"

/* Appends the CPU model with letters and digits kept and every other run as one '-' (none at either end). */
static size_t put_model(char *out, const char *model) {
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
  return n;
}

rotary_status rotary_tuning_file_default_path(char *path, size_t size) {
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  const int use_xdg = xdg && *xdg;
  if (!use_xdg && !(home && *home)) return ROTARY_ERR_IO;
  char model[256];
  put_model(model, rotary_cpu_model());
  const int n = snprintf(NULL, 0, "%s%s/rotary/tuning-%s-%s.json", use_xdg ? xdg : home, use_xdg ? "" : "/.cache",
                         model, rotary_version_string());
  if (n < 0 || (size_t)n >= size) return ROTARY_ERR_OVERFLOW;
  snprintf(path, size, "%s%s/rotary/tuning-%s-%s.json", use_xdg ? xdg : home, use_xdg ? "" : "/.cache", model,
           rotary_version_string());
  return ROTARY_OK;
}

static rotary_status fail(rotary_status st, char *error, size_t error_size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static rotary_status fail(rotary_status st, char *error, size_t error_size, const char *fmt, ...) {
  if (error && error_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, error_size, fmt, ap);
    va_end(ap);
  }
  return st;
}

rotary_status rotary_tuning_file_read(const char *path, rotary_tuning *t, char *error, size_t error_size) {
  (void)t;
  return fail(ROTARY_ERR_IO, error, error_size, "%s: file: tuning files are not implemented yet", path);
}

rotary_status rotary_tuning_file_write(const char *path, const rotary_tuning *t, const char *notes, char *error,
                                       size_t error_size) {
  (void)t, (void)notes;
  return fail(ROTARY_ERR_IO, error, error_size, "%s: file: tuning files are not implemented yet", path);
}
