/* kv_execute.h: runs the KV-cache plans (kv_write_plan.h) on the CPU: their tasks over the worker pool. */
#ifndef ROTARY_KV_EXECUTE_H
#define ROTARY_KV_EXECUTE_H

#include "kv_write_plan.h"
#include "threadpool.h"

/* Runs every task of the plan on the caller and plan->threads - 1 workers of pool (NULL: the caller alone).
 * Errors: OUT_OF_MEMORY (scratch), before anything is written. The caller holds the pool. */
rotary_status rotary_kv_write_execute(rotary_kv_write_plan *plan, rotary_pool *pool);
rotary_status rotary_kv_rerotate_execute(rotary_kv_rerotate_plan *plan, rotary_pool *pool);

#endif /* ROTARY_KV_EXECUTE_H */
