/* backend/cpu/attn_execute.h: runs a decode-attention plan on a thread pool. */
#ifndef ROTARY_ATTN_EXECUTE_H
#define ROTARY_ATTN_EXECUTE_H

#include "attn_plan.h"
#include "threadpool.h"

/* Runs a bound-free plan (rotary_attn_plan_build): binds its scratch, prepares q, attends every item, merges.
 * pool may be NULL (the calling thread does everything). scratch: NULL, or rotary_attn_plan_scratch_bytes(plan)
 * bytes, 64-byte aligned, lent by the caller (a context's kept memory); NULL: allocated and freed by this call.
 * OUT_OF_MEMORY when the scratch cannot be had (nothing written then); otherwise OK, out and lse written. */
rotary_status rotary_attn_execute(rotary_attn_plan *plan, rotary_pool *pool, void *scratch);

#endif /* ROTARY_ATTN_EXECUTE_H */
