/* context.h: the internals of a rotary_context (thread count, worker pool, call lock). */
#ifndef ROTARY_CONTEXT_H
#define ROTARY_CONTEXT_H

#include <pthread.h>

#include "rotary.h"
#include "threadpool.h"

struct rotary_context {
  pthread_mutex_t lock; /* held for a whole call: one call at a time */
  size_t n_threads;     /* the caller plus n_threads - 1 workers */
  rotary_pool *pool;    /* NULL when n_threads == 1 */
};

#endif /* ROTARY_CONTEXT_H */
