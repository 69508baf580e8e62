/* context.h: the internals of a rotary_context (thread count, worker pool, call lock, fork generation, settings). */
#ifndef ROTARY_CONTEXT_H
#define ROTARY_CONTEXT_H

#include <pthread.h>
#include <stdatomic.h>

#include "rotary.h"
#include "threadpool.h"
#include "tuning.h"

struct rotary_context {
  pthread_mutex_t lock; /* held for a whole call: one call at a time */
  size_t n_threads;     /* the caller plus n_threads - 1 workers */
  rotary_pool *pool;    /* NULL when n_threads == 1 (or when a forked child could not re-create the workers) */
  _Atomic unsigned fork_state; /* (fork generation the lock and pool belong to) << 1 | (a thread is adopting) */
  rotary_tuning tuning; /* the settings its calls run with (rotary_context_tuning); read and written under lock */
  void *scratch;        /* working memory kept between calls (rotary_context_scratch); used under lock */
  size_t scratch_bytes;
};

/* Locks ctx for one call. In a child of fork() the first caller first adopts the context: a fresh lock (the old one
 * may be held by a thread that does not exist here) and fresh workers (the parent's do not exist here). */
void rotary_context_lock(rotary_context *ctx);
void rotary_context_unlock(rotary_context *ctx);

/* Replaces the settings ctx's calls run with, values and sources (internal: rotary_context_tune and `rotary bench
 * --tune` measure candidates this way). Waits for a call in progress. Settings change speed only, never results. */
void rotary_context_set_tuning(rotary_context *ctx, const rotary_tuning *tuning);

/* At least `bytes` bytes of 64-byte-aligned working memory owned by ctx, for the call that holds ctx's lock: kept
 * (and grown when a call needs more) so that repeated calls do not allocate and fault in fresh pages every time;
 * freed by rotary_context_destroy. NULL when it cannot be had (ctx keeps its old block then). */
void *rotary_context_scratch(rotary_context *ctx, size_t bytes);

#endif /* ROTARY_CONTEXT_H */
