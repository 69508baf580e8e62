/* execute_rotate.h: runs a rotation plan (rotate_plan.h) on the CPU: its tasks over the worker pool. */
#ifndef ROTARY_EXECUTE_ROTATE_H
#define ROTARY_EXECUTE_ROTATE_H

#include "rotary.h"
#include "rotate_plan.h"
#include "threadpool.h"

/* Runs every task of a split plan (rotary_rotate_plan_split) on the caller and plan->threads - 1 workers of pool
 * (NULL: the caller alone), with the scratch it needs. Errors: OUT_OF_MEMORY (scratch), before anything is
 * written. The caller holds the pool (one job at a time). */
rotary_status rotary_execute_rotate(rotary_rotate_plan *plan, rotary_pool *pool);

#endif /* ROTARY_EXECUTE_ROTATE_H */
