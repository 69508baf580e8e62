/* apply.c: rotary_apply: check (rotary_validate_apply), plan (rotate_plan.c), run (execute_rotate.c). */
#include <string.h>

#include "check.h"
#include "context.h"
#include "execute_rotate.h"
#include "rotate_plan.h"
#include "tuning.h"
#include "validate.h"

void rotary_apply_desc_init(rotary_apply_desc *desc) {
  if (!desc) return;
  memset(desc, 0, sizeof *desc);
  desc->struct_size = sizeof *desc;
  desc->batch = 1;
  desc->seq_len = 1;
  desc->positions.mode = ROTARY_POSITIONS_OFFSET;
  desc->direction = ROTARY_FORWARD;
}

rotary_status rotary_tensor_init(rotary_tensor *t, rotary_layout layout, const void *in, void *out,
                                 rotary_dtype dtype, size_t seq_len, size_t n_heads, size_t head_dim) {
  ROTARY_RETURN_IF(!t, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(layout != ROTARY_LAYOUT_BSHD && layout != ROTARY_LAYOUT_BHSD, ROTARY_ERR_STRIDE);
  size_t row, token_block, batch;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(n_heads, head_dim, &row), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(seq_len, head_dim, &token_block), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(row, seq_len, &batch), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(batch > PTRDIFF_MAX, ROTARY_ERR_OVERFLOW);
  const int bshd = layout == ROTARY_LAYOUT_BSHD;
  rotary_tensor r = {0};
  r.in = in;
  r.out = out;
  r.dtype = dtype;
  r.n_heads = n_heads;
  r.stride_batch = r.out_stride_batch = (ptrdiff_t)batch;
  r.stride_seq = r.out_stride_seq = (ptrdiff_t)(bshd ? row : head_dim);
  r.stride_head = r.out_stride_head = (ptrdiff_t)(bshd ? head_dim : token_block);
  *t = r;
  return ROTARY_OK;
}

rotary_status rotary_apply(rotary_context *ctx, const rotary_rope *rope, const rotary_apply_desc *desc) {
  rotary_status st = rotary_validate_apply(rope, desc, 0);
  if (st != ROTARY_OK) return st;
  if (ctx) rotary_context_lock(ctx); /* its settings, threads and pool stay as they are until the call ends */
  rotary_rotate_plan plan;
  st = rotary_rotate_plan_build(&plan, rope, desc, rotary_context_tuning(ctx));
  if (st == ROTARY_OK) {
    rotary_rotate_plan_split(&plan, ctx ? ctx->n_threads : 1);
    st = rotary_execute_rotate(&plan, ctx ? ctx->pool : NULL);
  }
  if (ctx) rotary_context_unlock(ctx);
  return st;
}
