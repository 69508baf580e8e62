/* apply.c: rotary_apply: validation, then q and k rotated token by token, the work split over the pool. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "context.h"
#include "kernels.h"
#include "rope.h"
#include "stream.h"
#include "token_rows.h"
#include "validate.h"

/* Below this many bytes moved per thread a worker's wake-up costs more than its share of the work. */
#define ROTARY_MIN_BYTES_PER_THREAD (64u * 1024u)
/* Tasks per thread: threads claim tasks as they come, so one that starts late (woken slowly, preempted) leaves
 * its share to the others instead of holding up the call. */
#define ROTARY_TASKS_PER_THREAD 4
/* cos/sin rows up to this many floats (rotary_rope_row_floats) live on the stack; longer ones in a per-call buffer. */
#define ROTARY_STACK_ROW 1024
/* Heads far apart (heads-major tensors such as BHSD: each head's tokens contiguous) are walked this many heads at
 * a time, token by token: a token's rows for every head at once would be one memory stream per head, more than
 * the hardware prefetchers follow (BHSD ran at half the speed of BSHD), and head by head would read the cos/sin
 * row once per head. Measured on the article's shape: 4 and 8 heads ran at the streaming pass's speed, 16 at half. */
#define ROTARY_HEAD_GROUP 8
/* Heads at least this many bytes apart count as far apart. */
#define ROTARY_FAR_HEADS_BYTES 4096

typedef struct apply_job {
  const rotary_rope *rope;
  const rotary_apply_desc *d;
  const rotary_kernel *kernel[2]; /* q, k */
  size_t elem[2];
  size_t heads[2];                /* k's is 0 when k is left out */
  size_t tokens;                  /* batch * seq_len */
  size_t units;                   /* tokens * (q heads + k heads): the work split between tasks */
  size_t group[2];                /* heads walked together per token; 0 when q and k walk together (see below) */
  float *scratch;                 /* rotary_dim floats per task when rows do not fit the stack, else NULL */
  int rows_in_table;              /* positions come from the table: the next token's row can be prefetched */
} apply_job;

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

/* Rotates heads [h0, h1) of tensor i for token (b, s_idx). */
static void rotate_heads(const apply_job *job, int i, size_t b, size_t s_idx, size_t h0, size_t h1,
                         const float *c, const float *s) {
  const rotary_tensor *t = i ? &job->d->k : &job->d->q;
  const ptrdiff_t in_off = (ptrdiff_t)b * t->stride_batch + (ptrdiff_t)s_idx * t->stride_seq +
                           (ptrdiff_t)h0 * t->stride_head;
  const ptrdiff_t out_off = (ptrdiff_t)b * t->out_stride_batch + (ptrdiff_t)s_idx * t->out_stride_seq +
                            (ptrdiff_t)h0 * t->out_stride_head;
  const char *in = (const char *)t->in + in_off * (ptrdiff_t)job->elem[i];
  char *out = (char *)t->out + out_off * (ptrdiff_t)job->elem[i];
  job->kernel[i]->fn(in, t->stride_head, out, t->out_stride_head, h1 - h0, job->rope->head_dim,
                     job->rope->rotary_dim, c, s);
}

/* The work is tokens x heads units, split into one contiguous range per task. Two orders:
 * - together (group[0] == 0): token by token, q's heads then k's, so a token's cos/sin row serves both;
 * - grouped (some tensor's heads are far apart): q's units, then k's; each tensor's heads in groups of group[i]
 *   (the last one smaller), and each group token by token. A row is looked up per group and token, so this order
 *   is used only when rows are read from a table or the caller (never computed). */
static void run_task(void *arg, size_t index, size_t count) {
  const apply_job *job = arg;
  const size_t base = job->units / count, extra = job->units % count;
  size_t u = index * base + (index < extra ? index : extra);
  const size_t end = u + base + (index < extra);
  float stack_row[ROTARY_STACK_ROW] __attribute__((aligned(64)));
  float *buf = job->scratch ? job->scratch + index * rotary_rope_row_floats(job->rope) : stack_row;
  const size_t seq = job->d->seq_len;
  while (u < end) {
    const float *c, *s;
    if (!job->group[0]) {
      const size_t per_token = job->heads[0] + job->heads[1];
      const size_t t = u / per_token, h0 = u % per_token;
      const size_t h1 = end - u < per_token - h0 ? h0 + (end - u) : per_token;
      const size_t b = t / seq, s_idx = t % seq;
      if (job->rows_in_table && t + 1 < job->tokens) rotary_token_row_prefetch(job->rope, &job->d->positions, t + 1);
      rotary_token_row(job->rope, &job->d->positions, job->d->direction, t, b, s_idx, buf, &c, &s);
      const size_t nq = job->heads[0];
      if (h0 < nq) rotate_heads(job, 0, b, s_idx, h0, h1 < nq ? h1 : nq, c, s);
      if (h1 > nq) rotate_heads(job, 1, b, s_idx, (h0 > nq ? h0 : nq) - nq, h1 - nq, c, s);
      u += h1 - h0;
      continue;
    }
    const size_t q_units = job->tokens * job->heads[0];
    const int i = u >= q_units;
    const size_t v = u - (i ? q_units : 0), g = job->group[i], block = g * job->tokens;
    const size_t first = v / block * g, in_group = job->heads[i] - first < g ? job->heads[i] - first : g;
    const size_t r = v % block, t = r / in_group, h0 = r % in_group;
    const size_t h1 = end - u < in_group - h0 ? h0 + (end - u) : in_group;
    const size_t b = t / seq, s_idx = t % seq;
    rotary_token_row(job->rope, &job->d->positions, job->d->direction, t, b, s_idx, buf, &c, &s);
    rotate_heads(job, i, b, s_idx, first + h0, first + h1, c, s);
    u += h1 - h0;
  }
}

/* Groups heads that lie far apart (see run_task), when rows need no computing. */
static void choose_order(apply_job *job) {
  const rotary_apply_desc *d = job->d;
  if (!job->rows_in_table && d->positions.mode != ROTARY_POSITIONS_COS_SIN) return;
  int far = 0;
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &d->k : &d->q;
    if (job->heads[i] <= 1) continue; /* one head: its stride is never used and may be anything */
    /* magnitudes in unsigned arithmetic (-PTRDIFF_MIN does not exist), compared without multiplying */
    const size_t in = t->stride_head < 0 ? 0u - (size_t)t->stride_head : (size_t)t->stride_head;
    const size_t out = t->out_stride_head < 0 ? 0u - (size_t)t->out_stride_head : (size_t)t->out_stride_head;
    far |= (in > out ? in : out) >= ROTARY_FAR_HEADS_BYTES / job->elem[i];
  }
  if (!far) return;
  for (int i = 0; i < 2; i++) job->group[i] = job->heads[i] < ROTARY_HEAD_GROUP ? job->heads[i] : ROTARY_HEAD_GROUP;
  if (!job->group[1]) job->group[1] = 1; /* k left out: never reached, but no zero divisor either */
  if (!job->group[0]) job->group[0] = 1;
}

/* Bytes of tensor i (0: q, 1: k) the call covers: every element of every head, rotated or passed through. */
static double tensor_bytes(const apply_job *job, int i) {
  return (double)job->tokens * (double)job->heads[i] * (double)job->rope->head_dim * (double)job->elem[i];
}

/* Out-of-place tensors take the kernels' non-temporal stores when the call writes rotary_stream_min_bytes or more:
 * an output that large would leave the caches anyway, and those stores skip reading each line before writing it. */
static void use_streaming_stores(apply_job *job) {
  const rotary_apply_desc *d = job->d;
  double bytes = 0; /* every output element is written, rotated or passed through */
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &d->k : &d->q;
    if (t->in != t->out) bytes += tensor_bytes(job, i); /* validated: out of place means no overlap */
  }
  if (bytes == 0 || bytes < (double)rotary_stream_min_bytes) return;
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &d->k : &d->q;
    const rotary_kernel *nt = job->heads[i] ? rotary_kernel_select_nt(t->dtype, job->rope->pairing) : NULL;
    if (nt && t->in != t->out) job->kernel[i] = nt;
  }
}

/* Threads worth waking for this much work: each must get at least ROTARY_MIN_BYTES_PER_THREAD. */
static size_t useful_threads(const apply_job *job, size_t available) {
  /* each element is read once and written once, in place or not */
  const double bytes = 2.0 * (tensor_bytes(job, 0) + tensor_bytes(job, 1));
  double n = bytes / ROTARY_MIN_BYTES_PER_THREAD;
  size_t want = n < 1.0 ? 1 : n >= (double)available ? available : (size_t)n;
  return want < job->units ? want : job->units;
}

rotary_status rotary_apply(rotary_context *ctx, const rotary_rope *rope, const rotary_apply_desc *desc) {
  rotary_status st = rotary_validate_apply(rope, desc);
  if (st != ROTARY_OK) return st;
  apply_job job = {0};
  job.rope = rope;
  job.d = desc;
  job.heads[0] = desc->q.n_heads;
  job.heads[1] = desc->k.n_heads;
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &desc->k : &desc->q;
    if (!job.heads[i]) continue;
    job.kernel[i] = rotary_kernel_select(t->dtype, rope->pairing);
    job.elem[i] = rotary_dtype_size(t->dtype);
  }
  job.tokens = desc->batch * desc->seq_len;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(job.tokens, job.heads[0] + job.heads[1], &job.units),
                   ROTARY_ERR_OVERFLOW);
  job.rows_in_table = rope->table != NULL;
  use_streaming_stores(&job);
  choose_order(&job);
  if (ctx) rotary_context_lock(ctx);
  const size_t n = useful_threads(&job, ctx ? ctx->n_threads : 1);
  size_t tasks = n > 1 ? n * ROTARY_TASKS_PER_THREAD : 1; /* n <= 1024: within ROTARY_POOL_MAX_TASKS */
  if (tasks > job.units) tasks = job.units;
  if (rotary_rope_row_floats(rope) > ROTARY_STACK_ROW) {
    /* tasks <= 4096, row floats <= 65566: no overflow */
    job.scratch = malloc(tasks * rotary_rope_row_floats(rope) * sizeof(float));
    if (!job.scratch) {
      if (ctx) rotary_context_unlock(ctx);
      return ROTARY_ERR_OUT_OF_MEMORY;
    }
  }
  rotary_pool_run(ctx ? ctx->pool : NULL, run_task, &job, tasks, n - 1);
  if (ctx) rotary_context_unlock(ctx);
  free(job.scratch);
  return ROTARY_OK;
}
