/* prefetch.c: the software prefetch distance of the SIMD kernels: ROTARY_PREFETCH, else a per-CPU default. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "prefetch.h"

int rotary_prefetch_bytes = 2048;

int rotary_prefetch_default(void) { return rotary_isa_supported(ROTARY_ISA_AVX512) ? 0 : 2048; }

void rotary_prefetch_init(void) {
  const char *env = getenv("ROTARY_PREFETCH");
  int bytes = rotary_prefetch_default();
  if (env && !strcmp(env, "off")) {
    bytes = -1;
  } else if (env && *env) {
    char *end;
    const long v = strtol(env, &end, 10);
    if (!*end && v >= 0 && v <= 65536) bytes = (int)v; /* anything else keeps the default */
  }
  rotary_prefetch_bytes = bytes;
}
