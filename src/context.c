/* context.c: contexts own the persistent worker pool that calls split their work over. */
#include "context.h"

#include <stdlib.h>
#include <unistd.h>

#include "check.h"

#define ROTARY_MAX_THREADS 1024

size_t rotary_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (size_t)n : 1;
}

static size_t resolve_threads(size_t n_threads) {
  if (n_threads) return n_threads;
  size_t n = rotary_cpu_count();
  return n > ROTARY_MAX_THREADS ? ROTARY_MAX_THREADS : n;
}

static rotary_status make_pool(size_t n_threads, rotary_pool **pool) {
  *pool = NULL;
  return n_threads > 1 ? rotary_pool_create(n_threads - 1, pool) : ROTARY_OK;
}

rotary_status rotary_context_create(size_t n_threads, rotary_context **out) {
  ROTARY_RETURN_IF(!out, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(n_threads > ROTARY_MAX_THREADS, ROTARY_ERR_INVALID_ARGUMENT);
  rotary_context *ctx = calloc(1, sizeof *ctx);
  ROTARY_RETURN_IF(!ctx, ROTARY_ERR_OUT_OF_MEMORY);
  ctx->n_threads = resolve_threads(n_threads);
  rotary_status st = make_pool(ctx->n_threads, &ctx->pool);
  if (st != ROTARY_OK) {
    free(ctx);
    return st;
  }
  pthread_mutex_init(&ctx->lock, NULL);
  *out = ctx;
  return ROTARY_OK;
}

void rotary_context_destroy(rotary_context *ctx) {
  if (!ctx) return;
  rotary_pool_destroy(ctx->pool);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
}

rotary_status rotary_context_set_threads(rotary_context *ctx, size_t n_threads) {
  ROTARY_RETURN_IF(!ctx, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(n_threads > ROTARY_MAX_THREADS, ROTARY_ERR_INVALID_ARGUMENT);
  const size_t n = resolve_threads(n_threads);
  pthread_mutex_lock(&ctx->lock);
  rotary_status st = ROTARY_OK;
  if (n != ctx->n_threads) {
    rotary_pool *pool;
    st = make_pool(n, &pool);
    if (st == ROTARY_OK) {
      rotary_pool_destroy(ctx->pool);
      ctx->pool = pool;
      ctx->n_threads = n;
    }
  }
  pthread_mutex_unlock(&ctx->lock);
  return st;
}

size_t rotary_context_threads(const rotary_context *ctx) {
  if (!ctx) return 0;
  /* a racing set_threads may change it; the lock makes the read well-defined */
  pthread_mutex_lock((pthread_mutex_t *)&ctx->lock);
  size_t n = ctx->n_threads;
  pthread_mutex_unlock((pthread_mutex_t *)&ctx->lock);
  return n;
}
