/* stream.h: transitional, to be deleted: the old name of nontemporal.h, for tools/bench_impls.c as committed. */
#ifndef ROTARY_STREAM_H
#define ROTARY_STREAM_H

#include "nontemporal.h"
#include "tuning.h"

/* The process default, read-only. tools/bench_impls.c (the bench helper's, changed in its working tree to
 * rotary_context_tuning(s->ctx)->nt_min_bytes and tuning.h) is the last user; delete this file once that lands. */
#define rotary_stream_min_bytes (rotary_context_tuning(NULL)->nt_min_bytes)

#endif /* ROTARY_STREAM_H */
