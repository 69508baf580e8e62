/* threadpool.c: workers spin briefly, then sleep, between jobs; every thread claims tasks from one atomic word. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* How long an idle worker polls for the next job before it sleeps: long enough to catch the next call of a layer
 * loop without a futex round trip, short enough that an idle process stops burning a core quickly. */
#define ROTARY_SPIN_NS 50000
/* How long the caller polls for tasks that workers are still running before it yields its CPU (a worker may have
 * been woken on the caller's own CPU) and, much later, sleeps. */
#define ROTARY_WAIT_SPIN_NS 20000
#define ROTARY_WAIT_YIELD_NS 2000000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One worker's mailbox. Dekker-style handshake on seq / sleeping (both seq_cst) so a wake-up is never lost:
 * the worker publishes `sleeping` before its last look at `seq`, the caller publishes `seq` before it looks at
 * `sleeping`. Padded so that spinning workers do not share cache lines. */
typedef struct worker {
  _Atomic uint64_t seq;
  _Atomic int sleeping;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  struct rotary_pool *pool;
  char pad[64];
} worker;

/* The claim word: generation << 32 | count << 16 | next index. A thread claims task `next` by bumping the word
 * with a compare-and-swap; the generation makes a word from an earlier job fail the exchange. */
#define CLAIM_COUNT(w) (((w) >> 16) & 0xffffu)
#define CLAIM_NEXT(w) ((w) & 0xffffu)

struct rotary_pool {
  size_t n_workers;
  worker *workers;
  rotary_task_fn fn; /* the current job, written before the claim word that publishes it */
  void *arg;
  _Atomic uint64_t claim;
  _Atomic size_t done;
  _Atomic int stop;
  _Atomic int caller_sleeping;
  _Atomic size_t started; /* workers that reached worker_main: create waits for all of them */
  pthread_mutex_t done_mu;
  pthread_cond_t done_cv;
};

/* Claims and runs tasks of the published job until none is left. */
static void run_tasks(rotary_pool *pool) {
  uint64_t w = atomic_load(&pool->claim);
  while (CLAIM_NEXT(w) < CLAIM_COUNT(w)) {
    if (!atomic_compare_exchange_weak(&pool->claim, &w, w + 1)) continue;
    const size_t count = CLAIM_COUNT(w);
    pool->fn(pool->arg, CLAIM_NEXT(w), count);
    if (atomic_fetch_add(&pool->done, 1) + 1 == count && atomic_load(&pool->caller_sleeping)) {
      pthread_mutex_lock(&pool->done_mu);
      pthread_cond_signal(&pool->done_cv);
      pthread_mutex_unlock(&pool->done_mu);
    }
    w = atomic_load(&pool->claim);
  }
}

static uint64_t wait_for_job(worker *w, uint64_t seen) {
  const uint64_t until = now_ns() + ROTARY_SPIN_NS;
  for (unsigned i = 0;; i++) {
    uint64_t s = atomic_load(&w->seq);
    if (s != seen) return s;
    if (i % 64 == 63 && now_ns() > until) break;
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

static void *worker_main(void *p) {
  worker *w = p;
  uint64_t seen = 0;
  atomic_fetch_add(&w->pool->started, 1);
  for (;;) {
    seen = wait_for_job(w, seen);
    if (atomic_load(&w->pool->stop)) return NULL;
    run_tasks(w->pool);
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

/* Waits for tasks that workers claimed and still run: spin, then yield the CPU, then sleep. */
static void wait_done(rotary_pool *pool, size_t count) {
  const uint64_t start = now_ns();
  for (unsigned i = 0; atomic_load(&pool->done) != count; i++) {
    if (i % 64 != 63) {
      cpu_relax();
      continue;
    }
    const uint64_t t = now_ns() - start;
    if (t > ROTARY_WAIT_YIELD_NS) break;
    if (t > ROTARY_WAIT_SPIN_NS) sched_yield();
  }
  pthread_mutex_lock(&pool->done_mu);
  atomic_store(&pool->caller_sleeping, 1);
  while (atomic_load(&pool->done) != count) pthread_cond_wait(&pool->done_cv, &pool->done_mu);
  atomic_store(&pool->caller_sleeping, 0);
  pthread_mutex_unlock(&pool->done_mu);
}

void rotary_pool_run(rotary_pool *pool, rotary_task_fn fn, void *arg, size_t count, size_t helpers) {
  if (!pool || count <= 1 || helpers == 0) {
    for (size_t i = 0; i < count; i++) fn(arg, i, count);
    return;
  }
  pool->fn = fn;
  pool->arg = arg;
  atomic_store(&pool->done, 0);
  const uint64_t gen = (atomic_load(&pool->claim) >> 32) + 1;
  atomic_store(&pool->claim, gen << 32 | (uint64_t)count << 16); /* publishes fn and arg */
  if (helpers > pool->n_workers) helpers = pool->n_workers;
  if (helpers > count - 1) helpers = count - 1;
  for (size_t i = 0; i < helpers; i++) wake(&pool->workers[i]);
  run_tasks(pool);
  wait_done(pool, count);
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
  }
  for (size_t i = 0; i < n_workers; i++) {
    if (pthread_create(&pool->workers[i].thread, NULL, worker_main, &pool->workers[i]) != 0) {
      stop_workers(pool, i);
      free_pool(pool, n_workers);
      return ROTARY_ERR_THREAD;
    }
  }
  /* Returns only when every worker runs its own code: a fork() soon after must not find a worker still starting,
   * where a sanitizer's start-up code holds its allocator's locks (the child's first thread would wait on them). */
  while (atomic_load(&pool->started) != n_workers) sched_yield();
  *out = pool;
  return ROTARY_OK;
}

void rotary_pool_destroy(rotary_pool *pool) {
  if (!pool) return;
  stop_workers(pool, pool->n_workers);
  free_pool(pool, pool->n_workers);
}

void rotary_pool_abandon(rotary_pool *pool) {
  if (!pool) return;
  free(pool->workers);
  free(pool);
}
