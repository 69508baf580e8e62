/* stream.c: the output size from which out-of-place calls store non-temporally: ROTARY_STREAM_STORES, else 16 MiB. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

size_t rotary_stream_min_bytes = SIZE_MAX;

size_t rotary_stream_default(void) { return (size_t)16 << 20; }

void rotary_stream_init(void) {
  const char *env = getenv("ROTARY_STREAM_STORES");
  size_t bytes = rotary_stream_default();
  if (env && !strcmp(env, "off")) {
    bytes = SIZE_MAX;
  } else if (env && *env) {
    char *end;
    const unsigned long long v = strtoull(env, &end, 10);
    if (!*end && *env != '-' && v <= SIZE_MAX) bytes = (size_t)v; /* anything else keeps the default */
  }
  rotary_stream_min_bytes = bytes;
}
