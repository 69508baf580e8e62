/* tuning.h: the settings a call runs with (prefetch distance, non-temporal store threshold), owned by a context. */
#ifndef ROTARY_TUNING_H
#define ROTARY_TUNING_H

#include <stddef.h>

#include "rotary.h"

/* Settings change speed only, never results. */
typedef struct rotary_tuning {
  int prefetch_bytes;  /* bytes ahead of each head row the SIMD kernels prefetch; -1: no software prefetch */
  size_t nt_min_bytes; /* out-of-place outputs of at least this many bytes use non-temporal stores; SIZE_MAX: never */
} rotary_tuning;

/* The process defaults: the CPU's defaults with the documented environment overrides ROTARY_PREFETCH
 * (prefetch.h) and ROTARY_STREAM_STORES (nontemporal.h), read once per process. A new context starts with these. */
const rotary_tuning *rotary_tuning_defaults(void);

/* The settings calls on ctx run with (a copy of the defaults unless rotary_context_set_tuning changed them); for
 * NULL, the process defaults. Never NULL. Read a context's settings while holding it (rotary_context_lock): a
 * call does. */
const rotary_tuning *rotary_context_tuning(const rotary_context *ctx);

#endif /* ROTARY_TUNING_H */
