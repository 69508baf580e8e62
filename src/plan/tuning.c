/* tuning.c: the process default settings (per-CPU defaults and environment overrides), read once. */
#include "tuning.h"

#include <pthread.h>

#include "prefetch.h"
#include "nontemporal.h"

static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;
static rotary_tuning defaults; /* written once under pthread_once, read-only after */

static void read_defaults(void) {
  defaults.prefetch_bytes = rotary_prefetch_from_env();
  defaults.nt_min_bytes = rotary_nt_from_env();
}

const rotary_tuning *rotary_tuning_defaults(void) {
  pthread_once(&defaults_once, read_defaults);
  return &defaults;
}
