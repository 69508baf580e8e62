/* threadpool.c: a pool whose workers spin briefly, then sleep on a condition variable, between jobs. */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Polls before sleeping: long enough to catch the next call of a layer loop without a futex round trip, short
 * enough that an idle process stops burning a core within tens of microseconds. */
#define ROTARY_SPIN_POLLS 20000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* One worker's mailbox. Dekker-style handshake on seq / sleeping (both seq_cst) so a wake-up is never lost:
 * the worker publishes `sleeping` before its last look at `seq`, the caller publishes `seq` before it looks at
 * `sleeping`. Padded to its own cache line so spinning workers do not share lines. */
typedef struct worker {
  _Atomic uint64_t seq;
  _Atomic int sleeping;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  struct rotary_pool *pool;
  size_t index;
  char pad[64];
} worker;

struct rotary_pool {
  size_t n_workers;
  worker *workers;
  /* the current job, written by the caller before any participant's seq is bumped */
  rotary_task_fn fn;
  void *arg;
  size_t count;
  _Atomic size_t remaining;
  _Atomic int stop;
  _Atomic int caller_sleeping;
  pthread_mutex_t done_mu;
  pthread_cond_t done_cv;
};

static uint64_t wait_for_job(worker *w, uint64_t seen) {
  for (int i = 0; i < ROTARY_SPIN_POLLS; i++) {
    uint64_t s = atomic_load(&w->seq);
    if (s != seen) return s;
    cpu_relax();
  }
  pthread_mutex_lock(&w->mu);
  atomic_store(&w->sleeping, 1);
  uint64_t s;
  while ((s = atomic_load(&w->seq)) == seen) pthread_cond_wait(&w->cv, &w->mu);
  atomic_store(&w->sleeping, 0);
  pthread_mutex_unlock(&w->mu);
  return s;
}

static void finish_task(rotary_pool *pool) {
  if (atomic_fetch_sub(&pool->remaining, 1) != 1) return;
  if (atomic_load(&pool->caller_sleeping)) {
    pthread_mutex_lock(&pool->done_mu);
    pthread_cond_signal(&pool->done_cv);
    pthread_mutex_unlock(&pool->done_mu);
  }
}

static void *worker_main(void *p) {
  worker *w = p;
  rotary_pool *pool = w->pool;
  uint64_t seen = 0;
  for (;;) {
    seen = wait_for_job(w, seen);
    if (atomic_load(&pool->stop)) return NULL;
    pool->fn(pool->arg, w->index + 1, pool->count);
    finish_task(pool);
  }
}

static void wake(worker *w) {
  atomic_fetch_add(&w->seq, 1);
  if (atomic_load(&w->sleeping)) {
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
  }
}

static void wait_done(rotary_pool *pool) {
  for (int i = 0; i < ROTARY_SPIN_POLLS; i++) {
    if (atomic_load(&pool->remaining) == 0) return;
    cpu_relax();
  }
  pthread_mutex_lock(&pool->done_mu);
  atomic_store(&pool->caller_sleeping, 1);
  while (atomic_load(&pool->remaining) != 0) pthread_cond_wait(&pool->done_cv, &pool->done_mu);
  atomic_store(&pool->caller_sleeping, 0);
  pthread_mutex_unlock(&pool->done_mu);
}

void rotary_pool_run(rotary_pool *pool, rotary_task_fn fn, void *arg, size_t count) {
  if (count <= 1 || !pool) {
    fn(arg, 0, 1);
    return;
  }
  pool->fn = fn;
  pool->arg = arg;
  pool->count = count;
  atomic_store(&pool->remaining, count - 1);
  for (size_t i = 0; i + 1 < count; i++) wake(&pool->workers[i]);
  fn(arg, 0, count);
  wait_done(pool);
}

static void stop_workers(rotary_pool *pool, size_t started) {
  atomic_store(&pool->stop, 1);
  for (size_t i = 0; i < started; i++) wake(&pool->workers[i]);
  for (size_t i = 0; i < started; i++) pthread_join(pool->workers[i].thread, NULL);
}

static void free_pool(rotary_pool *pool, size_t initialized) {
  for (size_t i = 0; i < initialized; i++) {
    pthread_mutex_destroy(&pool->workers[i].mu);
    pthread_cond_destroy(&pool->workers[i].cv);
  }
  pthread_mutex_destroy(&pool->done_mu);
  pthread_cond_destroy(&pool->done_cv);
  free(pool->workers);
  free(pool);
}

rotary_status rotary_pool_create(size_t n_workers, rotary_pool **out) {
  rotary_pool *pool = calloc(1, sizeof *pool);
  if (!pool) return ROTARY_ERR_OUT_OF_MEMORY;
  pool->workers = calloc(n_workers ? n_workers : 1, sizeof(worker));
  if (!pool->workers) {
    free(pool);
    return ROTARY_ERR_OUT_OF_MEMORY;
  }
  pool->n_workers = n_workers;
  pthread_mutex_init(&pool->done_mu, NULL);
  pthread_cond_init(&pool->done_cv, NULL);
  for (size_t i = 0; i < n_workers; i++) {
    worker *w = &pool->workers[i];
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->pool = pool;
    w->index = i;
  }
  for (size_t i = 0; i < n_workers; i++) {
    if (pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]) != 0) {
      stop_workers(pool, i);
      free_pool(pool, n_workers);
      return ROTARY_ERR_THREAD;
    }
  }
  *out = pool;
  return ROTARY_OK;
}

void rotary_pool_destroy(rotary_pool *pool) {
  if (!pool) return;
  stop_workers(pool, pool->n_workers);
  free_pool(pool, pool->n_workers);
}
