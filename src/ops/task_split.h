/* task_split.h: how many threads a plan wakes for its traffic, and how many tasks it cuts the work into. */
#ifndef ROTARY_TASK_SPLIT_H
#define ROTARY_TASK_SPLIT_H

#include <stddef.h>

#include "tuning.h"

/* The most tasks of one call: available threads (<= 1024) times tasks_per_thread (<= 64) would reach 65536, beyond
 * ROTARY_POOL_MAX_TASKS, and the executors' tasks * scratch bounds count on at most this many. */
#define ROTARY_MAX_TASKS 4096u

/* Threads worth waking for `bytes` of traffic: one per the settings' thread_bytes (below that a worker's wake-up
 * costs more than its share of the work), at least 1, at most `available` and `units`; and the tasks for them:
 * tasks_per_thread per thread (threads claim tasks as they come, so one that starts late, woken slowly or
 * preempted, leaves its share to the others instead of holding up the call), at most `units` and ROTARY_MAX_TASKS.
 * Settings change the split only, never a result: tasks write disjoint ranges computed the same way. */
static inline void rotary_task_split(double bytes, size_t units, size_t available, const rotary_tuning *tuning,
                                     size_t *threads, size_t *tasks) {
  const double n = bytes / (double)tuning->thread_bytes;
  size_t want = n < 1.0 ? 1 : n >= (double)available ? available : (size_t)n;
  if (want > units) want = units;
  size_t t = want > 1 ? want * tuning->tasks_per_thread : 1;
  if (t > units) t = units;
  if (t > ROTARY_MAX_TASKS) t = ROTARY_MAX_TASKS;
  *threads = want;
  *tasks = t;
}

#endif /* ROTARY_TASK_SPLIT_H */
