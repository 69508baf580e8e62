/* threadpool.h: persistent worker threads that run one job of `count` tasks, the caller taking task 0. */
#ifndef ROTARY_THREADPOOL_H
#define ROTARY_THREADPOOL_H

#include <stddef.h>

#include "rotary.h"

typedef struct rotary_pool rotary_pool;

/* Runs task `index` of `count`; tasks of one job run concurrently and must write disjoint memory. */
typedef void (*rotary_task_fn)(void *arg, size_t index, size_t count);

/* Starts n_workers threads (the caller is not counted). Errors: OUT_OF_MEMORY, THREAD. */
rotary_status rotary_pool_create(size_t n_workers, rotary_pool **out);

/* Stops and joins the workers. NULL is allowed. */
void rotary_pool_destroy(rotary_pool *pool);

/* Runs fn(arg, i, count) for i < count, i = 0 on the calling thread, the others on workers 0 .. count-2, and
 * returns when all are done. Only those workers are woken. count must be in 1 .. n_workers + 1. One job at a
 * time per pool (callers serialize). */
void rotary_pool_run(rotary_pool *pool, rotary_task_fn fn, void *arg, size_t count);

#endif /* ROTARY_THREADPOOL_H */
