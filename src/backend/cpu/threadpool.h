/* threadpool.h: persistent worker threads that, with the caller, claim and run the tasks of one job. */
#ifndef ROTARY_THREADPOOL_H
#define ROTARY_THREADPOOL_H

#include <stddef.h>

#include "rotary.h"

typedef struct rotary_pool rotary_pool;

/* Runs task `index` of `count`; tasks of one job run concurrently and must write disjoint memory. Which thread
 * runs a task is not fixed, so a task's result must depend on its index alone. */
typedef void (*rotary_task_fn)(void *arg, size_t index, size_t count);

/* Largest task count of one job. */
#define ROTARY_POOL_MAX_TASKS 65535u

/* Starts n_workers threads (the caller is not counted) and returns once all of them run. Errors: OUT_OF_MEMORY,
 * THREAD. */
rotary_status rotary_pool_create(size_t n_workers, rotary_pool **out);

/* Stops and joins the workers. NULL is allowed. */
void rotary_pool_destroy(rotary_pool *pool);

/* Frees the pool's memory without waking, joining or unlocking anything: for a child of fork(), where the workers
 * do not exist and their locks may be held by threads that do not exist either. NULL is allowed. */
void rotary_pool_abandon(rotary_pool *pool);

/* Runs fn(arg, i, count) for every i < count (count in 1 .. ROTARY_POOL_MAX_TASKS) and returns when all are done.
 * The caller claims tasks too, and wakes at most `helpers` workers: a worker that is slow to wake finds the tasks
 * already taken instead of being waited for. One job at a time per pool (callers serialize); pool may be NULL. */
void rotary_pool_run(rotary_pool *pool, rotary_task_fn fn, void *arg, size_t count, size_t helpers);

#endif /* ROTARY_THREADPOOL_H */
