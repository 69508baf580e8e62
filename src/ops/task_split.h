/* task_split.h: how many threads a plan wakes for its traffic, and how many tasks it cuts the work into. */
#ifndef ROTARY_TASK_SPLIT_H
#define ROTARY_TASK_SPLIT_H

#include <stddef.h>

/* Below this many bytes moved per thread a worker's wake-up costs more than its share of the work. */
#define ROTARY_MIN_BYTES_PER_THREAD (64u * 1024u)
/* Tasks per thread: threads claim tasks as they come, so one that starts late (woken slowly, preempted) leaves
 * its share to the others instead of holding up the call. */
#define ROTARY_TASKS_PER_THREAD 4

/* Threads worth waking for `bytes` of traffic (each gets at least ROTARY_MIN_BYTES_PER_THREAD; at most `available`
 * and `units`), and the tasks for them (at most `units`). available <= 1024, so tasks <= 4096, within
 * ROTARY_POOL_MAX_TASKS. */
static inline void rotary_task_split(double bytes, size_t units, size_t available, size_t *threads, size_t *tasks) {
  const double n = bytes / ROTARY_MIN_BYTES_PER_THREAD;
  size_t want = n < 1.0 ? 1 : n >= (double)available ? available : (size_t)n;
  if (want > units) want = units;
  size_t t = want > 1 ? want * ROTARY_TASKS_PER_THREAD : 1;
  if (t > units) t = units;
  *threads = want;
  *tasks = t;
}

#endif /* ROTARY_TASK_SPLIT_H */
