/* tuning.c: the settings of a call: today the process defaults for every context (a context's own come next). */
#include "tuning.h"

#include <pthread.h>

#include "kernels.h"
#include "prefetch.h"
#include "stream.h"

static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;
static rotary_tuning defaults; /* written once under pthread_once, read-only after */

static void read_defaults(void) {
  /* the dispatcher reads the environment once (rotary_prefetch_init, rotary_stream_init); copy what it read */
  (void)rotary_kernel_select(ROTARY_F32, ROTARY_PAIRING_HALF);
  defaults.prefetch_bytes = rotary_prefetch_bytes;
  defaults.nt_min_bytes = rotary_stream_min_bytes;
}

const rotary_tuning *rotary_context_tuning(const rotary_context *ctx) {
  (void)ctx;
  pthread_once(&defaults_once, read_defaults);
  return &defaults;
}
