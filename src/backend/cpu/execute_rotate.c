/* execute_rotate.c: the task walk of a rotation plan: each task rotates a contiguous range of tokens x heads. */
#include "execute_rotate.h"

#include <stdlib.h>

#include "kernels.h"
#include "token_rows.h"

/* Rotates heads [h0, h1) of tensor i for token (b, s_idx). */
static void rotate_heads(const rotary_rotate_plan *plan, int i, size_t b, size_t s_idx, size_t h0, size_t h1,
                         const float *c, const float *s) {
  const rotary_tensor *t = i ? &plan->d->k : &plan->d->q;
  const ptrdiff_t in_off = (ptrdiff_t)b * t->stride_batch + (ptrdiff_t)s_idx * t->stride_seq +
                           (ptrdiff_t)h0 * t->stride_head;
  const ptrdiff_t out_off = (ptrdiff_t)b * t->out_stride_batch + (ptrdiff_t)s_idx * t->out_stride_seq +
                            (ptrdiff_t)h0 * t->out_stride_head;
  const char *in = (const char *)t->in + in_off * (ptrdiff_t)plan->elem[i];
  char *out = (char *)t->out + out_off * (ptrdiff_t)plan->elem[i];
  rotary_rotate_run(plan->kernel[i], plan->tuning, in, t->stride_head, out, t->out_stride_head, h1 - h0,
                    plan->rope->head_dim, plan->rope->rotary_dim, c, s);
}

/* Task `index` of `count`: units [u, end) in the plan's walk order (rotate_plan.h). */
static void run_task(void *arg, size_t index, size_t count) {
  const rotary_rotate_plan *plan = arg;
  const rotary_positions *pos = &plan->positions;
  const size_t base = plan->units / count, extra = plan->units % count;
  size_t u = index * base + (index < extra ? index : extra);
  const size_t end = u + base + (index < extra);
  float stack_row[ROTARY_STACK_ROW] __attribute__((aligned(64)));
  float *buf = plan->scratch ? plan->scratch + index * plan->scratch_floats : stack_row;
  const size_t seq = plan->d->seq_len;
  while (u < end) {
    const float *c = NULL, *s = NULL; /* always set by rotary_token_row; gcc -O1 (TSan) cannot tell */
    if (!plan->group[0]) {
      const size_t per_token = plan->heads[0] + plan->heads[1];
      const size_t t = u / per_token, h0 = u % per_token;
      const size_t h1 = end - u < per_token - h0 ? h0 + (end - u) : per_token;
      const size_t b = t / seq, s_idx = t % seq;
      if (plan->rows_in_table && t + 1 < plan->tokens) rotary_token_row_prefetch(plan->rope, pos, t + 1);
      rotary_token_row(plan->rope, pos, plan->d->direction, t, b, s_idx, buf, &c, &s);
      const size_t nq = plan->heads[0];
      if (h0 < nq) rotate_heads(plan, 0, b, s_idx, h0, h1 < nq ? h1 : nq, c, s);
      if (h1 > nq) rotate_heads(plan, 1, b, s_idx, (h0 > nq ? h0 : nq) - nq, h1 - nq, c, s);
      u += h1 - h0;
      continue;
    }
    const size_t q_units = plan->tokens * plan->heads[0];
    const int i = u >= q_units;
    const size_t v = u - (i ? q_units : 0), g = plan->group[i], block = g * plan->tokens;
    const size_t first = v / block * g, in_group = plan->heads[i] - first < g ? plan->heads[i] - first : g;
    const size_t r = v % block, t = r / in_group, h0 = r % in_group;
    const size_t h1 = end - u < in_group - h0 ? h0 + (end - u) : in_group;
    const size_t b = t / seq, s_idx = t % seq;
    rotary_token_row(plan->rope, pos, plan->d->direction, t, b, s_idx, buf, &c, &s);
    rotate_heads(plan, i, b, s_idx, first + h0, first + h1, c, s);
    u += h1 - h0;
  }
}

rotary_status rotary_execute_rotate(rotary_rotate_plan *plan, rotary_pool *pool) {
  plan->scratch = NULL;
  if (plan->scratch_floats) {
    plan->scratch = malloc(plan->tasks * plan->scratch_floats * sizeof(float));
    if (!plan->scratch) return ROTARY_ERR_OUT_OF_MEMORY;
  }
  rotary_pool_run(pool, run_task, plan, plan->tasks, plan->threads - 1);
  free(plan->scratch);
  plan->scratch = NULL;
  return ROTARY_OK;
}
