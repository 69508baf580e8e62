/* kv_cache.c: rotary_kv_write and rotary_kv_rerotate: check (kv_validate.c), plan (kv_write_plan.c), run. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "context.h"
#include "kv_execute.h"
#include "kv_validate.h"
#include "kv_write_plan.h"
#include "tuning.h"

void rotary_kv_write_desc_init(rotary_kv_write_desc *desc) {
  if (!desc) return;
  memset(desc, 0, sizeof *desc);
  desc->struct_size = sizeof *desc;
  desc->batch = 1;
  desc->seq_len = 1;
  desc->positions.mode = ROTARY_POSITIONS_OFFSET;
}

/* Strides of a [batch, seq_len, heads, head_dim] view whose token rows are `row` elements apart. */
static void packed_strides(rotary_tensor *t, size_t seq_len, size_t row, size_t head_dim) {
  t->stride_batch = t->out_stride_batch = (ptrdiff_t)(seq_len * row);
  t->stride_seq = t->out_stride_seq = (ptrdiff_t)row;
  t->stride_head = t->out_stride_head = (ptrdiff_t)head_dim;
}

rotary_status rotary_kv_write_desc_set_qkv(rotary_kv_write_desc *desc, const void *qkv, void *q_out,
                                           rotary_dtype dtype, size_t q_heads, size_t kv_heads, size_t head_dim,
                                           size_t row_stride) {
  ROTARY_RETURN_IF(!desc || !qkv, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(kv_heads == 0 || head_dim == 0, ROTARY_ERR_INVALID_ARGUMENT);
  const size_t elem = rotary_dtype_size(dtype);
  ROTARY_RETURN_IF(elem == 0 || dtype == ROTARY_FP8_E4M3, ROTARY_ERR_DTYPE);
  size_t heads, row, tokens, span, q_row;
  ROTARY_RETURN_IF(kv_heads > SIZE_MAX / 2, ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_add_overflow_size(q_heads, 2 * kv_heads, &heads) ||
                       rotary_mul_overflow_size(heads, head_dim, &row),
                   ROTARY_ERR_OVERFLOW);
  if (row_stride == 0) row_stride = row;
  ROTARY_RETURN_IF(row_stride < row, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(desc->batch, desc->seq_len, &tokens) ||
                       rotary_mul_overflow_size(tokens, row_stride, &span) ||
                       rotary_mul_overflow_size(span, elem, &span) || span > PTRDIFF_MAX,
                   ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(q_heads, head_dim, &q_row), ROTARY_ERR_OVERFLOW);
  const char *base = qkv;
  rotary_tensor q = {0}, k = {0}, v = {0};
  q.in = base;
  q.out = q_out ? q_out : (void *)(uintptr_t)base;
  q.dtype = k.dtype = v.dtype = dtype;
  q.n_heads = q_heads;
  k.n_heads = v.n_heads = kv_heads;
  packed_strides(&q, desc->seq_len, row_stride, head_dim);
  packed_strides(&k, desc->seq_len, row_stride, head_dim);
  packed_strides(&v, desc->seq_len, row_stride, head_dim);
  if (q_out) {
    q.out_stride_batch = (ptrdiff_t)(desc->seq_len * q_row); /* within the span checked above */
    q.out_stride_seq = (ptrdiff_t)q_row;
  }
  k.in = base + q_row * elem;
  v.in = base + (q_row + kv_heads * head_dim) * elem;
  desc->q = q;
  desc->k = k;
  desc->v = v;
  return ROTARY_OK;
}

rotary_status rotary_kv_write(rotary_context *ctx, const rotary_rope *rope, const rotary_kv_write_desc *desc) {
  rotary_cache_geom geom;
  rotary_status st = rotary_validate_kv_write(rope, desc, &geom, 0);
  if (st != ROTARY_OK) return st;
  if (ctx) rotary_context_lock(ctx);
  rotary_kv_write_plan plan;
  rotary_kv_write_plan_build(&plan, rope, desc, &geom, rotary_context_tuning(ctx), ctx ? ctx->n_threads : 1);
  st = rotary_kv_write_execute(&plan, ctx ? ctx->pool : NULL);
  if (ctx) rotary_context_unlock(ctx);
  return st;
}

void rotary_kv_rerotate_desc_init(rotary_kv_rerotate_desc *desc) {
  if (!desc) return;
  memset(desc, 0, sizeof *desc);
  desc->struct_size = sizeof *desc;
}

rotary_status rotary_kv_rerotate(rotary_context *ctx, const rotary_rope *rope, const rotary_kv_rerotate_desc *desc) {
  rotary_cache_geom geom;
  rotary_status st = rotary_validate_kv_rerotate(rope, desc, &geom);
  if (st != ROTARY_OK) return st;
  /* the delta's cos/sin row, once for the call (cos at 0, sin at sin_offset, as a table row) */
  const size_t floats = rotary_rope_row_floats(rope);
  float stack_row[ROTARY_KV_STACK_ROW] __attribute__((aligned(64)));
  float *row = floats > ROTARY_KV_STACK_ROW ? aligned_alloc(64, floats * sizeof(float)) : stack_row;
  ROTARY_RETURN_IF(!row, ROTARY_ERR_OUT_OF_MEMORY);
  rotary_kv_rerotate_plan plan;
  if (ctx) rotary_context_lock(ctx);
  rotary_kv_rerotate_plan_build(&plan, rope, desc, &geom, rotary_context_tuning(ctx), ctx ? ctx->n_threads : 1);
  rotary_rope_delta_row(rope, desc->delta, row, row + rope->sin_offset);
  plan.cos = row;
  plan.sin = row + rope->sin_offset;
  st = rotary_kv_rerotate_execute(&plan, ctx ? ctx->pool : NULL);
  if (ctx) rotary_context_unlock(ctx);
  if (row != stack_row) free(row);
  return st;
}
