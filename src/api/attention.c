/* attention.c: rotary_attention and rotary_decode_step: check (attn_validate.c), plan (attn_plan.c), run. */
#include <string.h>

#include "attn_execute.h"
#include "attn_plan.h"
#include "attn_validate.h"
#include "context.h"
#include "kv_execute.h"
#include "kv_write_plan.h"
#include "tuning.h"

void rotary_attention_desc_init(rotary_attention_desc *desc) {
  if (!desc) return;
  memset(desc, 0, sizeof *desc);
  desc->struct_size = sizeof *desc;
  desc->batch = 1;
  desc->tokens = 1;
}

/* Plans and runs a validated attention with ctx's threads and settings (ctx locked by the caller, or NULL). */
static rotary_status run_attention(rotary_context *ctx, const rotary_rope *rope, const rotary_attn_view *v) {
  rotary_attn_plan plan;
  rotary_attn_plan_build(&plan, rope, v, rotary_context_tuning(ctx), ctx ? ctx->n_threads : 1);
  /* a context keeps its working memory between calls: decode steps do not allocate and fault in pages each time */
  const size_t bytes = rotary_attn_plan_scratch_bytes(&plan);
  void *scratch = NULL;
  if (ctx && (bytes == SIZE_MAX || !(scratch = rotary_context_scratch(ctx, bytes)))) return ROTARY_ERR_OUT_OF_MEMORY;
  return rotary_attn_execute(&plan, ctx ? ctx->pool : NULL, scratch);
}

rotary_status rotary_attention(rotary_context *ctx, const rotary_rope *rope, const rotary_attention_desc *desc) {
  rotary_attn_view v;
  rotary_status st = rotary_validate_attention(rope, desc, &v);
  if (st != ROTARY_OK) return st;
  if (ctx) rotary_context_lock(ctx);
  st = run_attention(ctx, rope, &v);
  if (ctx) rotary_context_unlock(ctx);
  rotary_attn_view_release(&v);
  return st;
}

rotary_status rotary_decode_step(rotary_context *ctx, const rotary_rope *rope, const rotary_kv_write_desc *write,
                                 const rotary_attention_desc *attn) {
  rotary_cache_geom geom;
  rotary_attn_view v;
  rotary_status st = rotary_validate_decode_step(rope, write, attn, &geom, &v);
  if (st != ROTARY_OK) return st;
  if (ctx) rotary_context_lock(ctx);
  rotary_kv_write_plan wplan;
  rotary_kv_write_plan_build(&wplan, rope, write, &geom, rotary_context_tuning(ctx), ctx ? ctx->n_threads : 1);
  st = rotary_kv_write_execute(&wplan, ctx ? ctx->pool : NULL);
  if (st == ROTARY_OK) st = run_attention(ctx, rope, &v);
  if (ctx) rotary_context_unlock(ctx);
  rotary_attn_view_release(&v);
  return st;
}
