/* execute_rotate.c: the task walk of a rotation plan: each task rotates a contiguous range of tokens x heads. */
#include "execute_rotate.h"

#include <stdint.h>
#include <stdlib.h>

#include "kernels.h"
#include "token_rows.h"

/* The first element of head h of tensor i for token (b, s_idx): its input (out = 0) or its output (out = 1). */
static char *head_row(const rotary_rotate_plan *plan, int i, int out, size_t b, size_t s_idx, size_t h) {
  const rotary_tensor *t = i ? &plan->d->k : &plan->d->q;
  const ptrdiff_t off = out ? (ptrdiff_t)b * t->out_stride_batch + (ptrdiff_t)s_idx * t->out_stride_seq +
                                  (ptrdiff_t)h * t->out_stride_head
                            : (ptrdiff_t)b * t->stride_batch + (ptrdiff_t)s_idx * t->stride_seq +
                                  (ptrdiff_t)h * t->stride_head;
  return (char *)(out ? t->out : (void *)(uintptr_t)t->in) + off * (ptrdiff_t)plan->elem[i];
}

/* Rotates heads [h0, h1) of tensor i for token (b, s_idx), prefetching as the plan chose (rotate_plan.h). */
static void rotate_heads(const rotary_rotate_plan *plan, int i, size_t b, size_t s_idx, size_t h0, size_t h1,
                         const float *c, const float *s) {
  const rotary_tensor *t = i ? &plan->d->k : &plan->d->q;
  rotary_rotate_run(plan->kernel[i], plan->prefetch[i], head_row(plan, i, 0, b, s_idx, h0), t->stride_head,
                    head_row(plan, i, 1, b, s_idx, h0), t->out_stride_head, h1 - h0, plan->rope->head_dim,
                    plan->rope->rotary_dim, c, s);
}

/* The together walk's input from unit u, byte off of its row, on (never past unit end): what a block of computed
 * rows asks for while it is computed. */
typedef struct walk_cursor {
  const rotary_rotate_plan *plan;
  size_t u, off, end;
} walk_cursor;

/* Asks, into L2, for the next `lines` 64-byte lines of the walk's input head rows, and moves the cursor past them. */
static void prefetch_walk(void *arg, size_t lines) {
  walk_cursor *w = arg;
  const rotary_rotate_plan *plan = w->plan;
  const size_t seq = plan->d->seq_len, nq = plan->heads[0], per_token = plan->heads[0] + plan->heads[1];
  while (lines && w->u < w->end) {
    const size_t t = w->u / per_token, h = w->u % per_token;
    const int i = h >= nq;
    const char *row = head_row(plan, i, 0, t / seq, t % seq, i ? h - nq : h);
    const size_t bytes = plan->rope->head_dim * plan->elem[i];
    for (; lines && w->off < bytes; w->off += 64, lines--) __builtin_prefetch(row + w->off, 0, 2);
    if (w->off >= bytes) {
      w->u++;
      w->off = 0;
    }
  }
}

/* Computes into buf the cos/sin rows of the tokens from unit u's on, at most plan->rows_block of them and none past
 * unit end, asking for the walk's next input as it goes; returns the token after the last. */
static size_t compute_rows_block(const rotary_rotate_plan *plan, size_t u, size_t end, float *buf) {
  const size_t per_token = plan->heads[0] + plan->heads[1];
  walk_cursor w = {plan, u, 0, end};
  return rotary_token_rows_block(plan->rope, &plan->positions, plan->d->direction, u / per_token,
                                 (end - 1) / per_token + 1, plan->rows_block, plan->d->seq_len, buf, prefetch_walk,
                                 &w);
}

/* Units [u, end) of the together order: token by token, q's heads then k's. */
static void run_together(const rotary_rotate_plan *plan, size_t u, size_t end, float *buf) {
  const rotary_positions *pos = &plan->positions;
  const size_t seq = plan->d->seq_len, nq = plan->heads[0], per_token = plan->heads[0] + plan->heads[1];
  const size_t rf = rotary_rope_row_floats(plan->rope);
  size_t block_t0 = 0, block_t1 = 0; /* rows_block > 1: the tokens whose rows buf holds */
  while (u < end) {
    const float *c = NULL, *s = NULL; /* always set by rotary_token_row; gcc -O1 (TSan) cannot tell */
    const size_t t = u / per_token, h0 = u % per_token;
    const size_t h1 = end - u < per_token - h0 ? h0 + (end - u) : per_token;
    const size_t b = t / seq, s_idx = t % seq;
    if (plan->rows_block > 1) { /* tokens come in order: a token past the block starts the next one */
      if (t >= block_t1) {
        block_t0 = t;
        block_t1 = compute_rows_block(plan, u, end, buf);
      }
      c = buf + (t - block_t0) * rf;
      s = c + plan->rope->sin_offset;
    } else {
      if (plan->rows_in_table && t + 1 < plan->tokens) rotary_token_row_prefetch(plan->rope, pos, t + 1);
      rotary_token_row(plan->rope, pos, plan->d->direction, t, b, s_idx, buf, &c, &s);
    }
    if (h0 < nq) rotate_heads(plan, 0, b, s_idx, h0, h1 < nq ? h1 : nq, c, s);
    if (h1 > nq) rotate_heads(plan, 1, b, s_idx, (h0 > nq ? h0 : nq) - nq, h1 - nq, c, s);
    u += h1 - h0;
  }
}

/* Units [u, end) of the grouped order: q's units, then k's, each tensor group by group, each group token by token
 * (the plan turns the kernels' software prefetch off here: rotate_plan.c, choose_prefetch). */
static void run_grouped(const rotary_rotate_plan *plan, size_t u, size_t end, float *buf) {
  const rotary_positions *pos = &plan->positions;
  const size_t seq = plan->d->seq_len, q_units = plan->tokens * plan->heads[0];
  while (u < end) {
    const float *c = NULL, *s = NULL; /* always set by rotary_token_row; gcc -O1 (TSan) cannot tell */
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

/* Task `index` of `count`: units [u, end) in the plan's walk order (rotate_plan.h). */
static void run_task(void *arg, size_t index, size_t count) {
  const rotary_rotate_plan *plan = arg;
  const size_t base = plan->units / count, extra = plan->units % count;
  const size_t u = index * base + (index < extra ? index : extra);
  const size_t end = u + base + (index < extra);
  float stack_row[ROTARY_STACK_ROW] __attribute__((aligned(64)));
  float *buf = plan->scratch ? plan->scratch + index * plan->scratch_floats : stack_row;
  if (plan->group[0])
    run_grouped(plan, u, end, buf);
  else
    run_together(plan, u, end, buf);
  if (plan->nontemporal[0] || plan->nontemporal[1]) rotary_stream_fence(); /* the _nt kernels do not fence */
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
