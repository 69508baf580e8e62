/* context.c: contexts own the worker pool that calls split their work over and the settings they run with. */
#include "context.h"

#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

#define ROTARY_MAX_THREADS 1024

/* Fork handling. A child of fork() holds copies of every context with none of their worker threads, and with locks
 * that a thread of the parent (in the middle of a call) may hold forever. fork_generation counts the forks between
 * the process's start and this process (a child handler bumps it); a context remembers the generation its lock and
 * workers belong to, and the first user in a later generation adopts it (see adopt). A counter rather than
 * getpid(): a system call (0.6 us on a VM) per call would cost more than a decode call's thread handoff. */
static _Atomic unsigned fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) { atomic_fetch_add(&fork_generation, 1); }
static void register_fork_handler(void) { pthread_atfork(NULL, NULL, on_fork_child); }

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

/* Adopts ctx when it was inherited through fork() and nobody in this process has adopted it yet. Adoption: the lock
 * is initialized afresh, the parent's pool is freed without touching its threads or locks, and new workers are
 * started (if that fails, calls run on the calling thread alone: the results are the same bits). One thread
 * adopts; others wait for it. A claim left by a thread of an earlier generation (a fork during an adoption) is
 * taken over, since that thread does not exist here. */
static void adopt(rotary_context *ctx) {
  for (;;) {
    const unsigned ready = atomic_load(&fork_generation) << 1;
    unsigned st = atomic_load(&ctx->fork_state);
    if (st == ready) return;
    if (st == (ready | 1u)) {
      sched_yield(); /* another thread of this process is adopting it */
      continue;
    }
    if (!atomic_compare_exchange_strong(&ctx->fork_state, &st, ready | 1u)) continue;
    pthread_mutex_init(&ctx->lock, NULL);
    rotary_pool_abandon(ctx->pool);
    if (make_pool(ctx->n_threads, &ctx->pool) != ROTARY_OK) ctx->pool = NULL;
    atomic_store(&ctx->fork_state, ready);
  }
}

void rotary_context_lock(rotary_context *ctx) {
  adopt(ctx);
  pthread_mutex_lock(&ctx->lock);
}

void rotary_context_unlock(rotary_context *ctx) { pthread_mutex_unlock(&ctx->lock); }

const rotary_tuning *rotary_context_tuning(const rotary_context *ctx) {
  return ctx ? &ctx->tuning : rotary_tuning_defaults();
}

void *rotary_context_scratch(rotary_context *ctx, size_t bytes) {
  if (bytes <= ctx->scratch_bytes && ctx->scratch) return ctx->scratch;
  if (bytes > SIZE_MAX - 63) return NULL;
  const size_t rounded = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (!p) return NULL;
  free(ctx->scratch);
  ctx->scratch = p;
  ctx->scratch_bytes = rounded;
  return p;
}

void rotary_context_set_tuning(rotary_context *ctx, const rotary_tuning *tuning) {
  rotary_context_lock(ctx);
  ctx->tuning = *tuning;
  rotary_context_unlock(ctx);
}

rotary_status rotary_context_create(size_t n_threads, rotary_context **out) {
  ROTARY_RETURN_IF(!out, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(n_threads > ROTARY_MAX_THREADS, ROTARY_ERR_INVALID_ARGUMENT);
  pthread_once(&atfork_once, register_fork_handler);
  rotary_context *ctx = calloc(1, sizeof *ctx);
  ROTARY_RETURN_IF(!ctx, ROTARY_ERR_OUT_OF_MEMORY);
  ctx->n_threads = resolve_threads(n_threads);
  ctx->tuning = *rotary_tuning_defaults();
  atomic_init(&ctx->fork_state, atomic_load(&fork_generation) << 1);
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
  const unsigned ready = atomic_load(&fork_generation) << 1;
  if (atomic_load(&ctx->fork_state) != ready) {
    /* inherited through fork() and never used here: its workers and lock belong to the parent */
    rotary_pool_abandon(ctx->pool);
    free(ctx->scratch); /* the child's copy of the parent's block */
    free(ctx);
    return;
  }
  rotary_pool_destroy(ctx->pool);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx->scratch);
  free(ctx);
}

rotary_status rotary_context_set_threads(rotary_context *ctx, size_t n_threads) {
  ROTARY_RETURN_IF(!ctx, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(n_threads > ROTARY_MAX_THREADS, ROTARY_ERR_INVALID_ARGUMENT);
  const size_t n = resolve_threads(n_threads);
  rotary_context_lock(ctx);
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
  rotary_context_unlock(ctx);
  return st;
}

size_t rotary_context_threads(const rotary_context *ctx) {
  if (!ctx) return 0;
  /* a racing set_threads may change it; the lock makes the read well-defined */
  rotary_context *c = (rotary_context *)ctx;
  rotary_context_lock(c);
  size_t n = c->n_threads;
  rotary_context_unlock(c);
  return n;
}
