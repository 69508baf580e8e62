/* rotate_plan.c: plans a rotary_apply call: kernel and store kind per tensor, walk order, task split, scratch. */
#include "rotate_plan.h"

#include <string.h>

#include "check.h"
#include "task_split.h"
#include "token_prefetch.h"
#include "token_rows.h"
#include "validate.h"

/* Heads at least this many bytes apart count as far apart. */
#define ROTARY_FAR_HEADS_BYTES 4096

/* Groups heads that lie far apart (see rotary_rotate_plan), when rows need no computing. Heads far apart
 * (heads-major tensors such as BHSD: each head's tokens contiguous) are walked the settings' head_group heads at a
 * time, token by token: a token's rows for every head at once would be one memory stream per head, more than the
 * hardware prefetchers follow (BHSD ran at half the speed of BSHD), and head by head would read the cos/sin row
 * once per head. Measured on the article's shape: on an AVX-512 EPYC 4 and 8 heads ran at the streaming pass's
 * speed, 16 at half; on an AVX2 EPYC only 4 did (the default, tuning.c). */
static void choose_order(rotary_rotate_plan *plan) {
  const rotary_apply_desc *d = plan->d;
  if (!plan->rows_in_table && d->positions.mode != ROTARY_POSITIONS_COS_SIN) return;
  int far = 0;
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &d->k : &d->q;
    if (plan->heads[i] <= 1) continue; /* one head: its stride is never used and may be anything */
    /* magnitudes in unsigned arithmetic (-PTRDIFF_MIN does not exist), compared without multiplying */
    const size_t in = t->stride_head < 0 ? 0u - (size_t)t->stride_head : (size_t)t->stride_head;
    const size_t out = t->out_stride_head < 0 ? 0u - (size_t)t->out_stride_head : (size_t)t->out_stride_head;
    far |= (in > out ? in : out) >= ROTARY_FAR_HEADS_BYTES / plan->elem[i];
  }
  if (!far) return;
  const size_t group = plan->tuning->head_group;
  for (int i = 0; i < 2; i++) plan->group[i] = plan->heads[i] < group ? plan->heads[i] : group;
  if (!plan->group[1]) plan->group[1] = 1; /* k left out: never reached, but no zero divisor either */
  if (!plan->group[0]) plan->group[0] = 1;
}

/* The kernels' prefetch distance per tensor. The together walk takes the setting prefetch_bytes (a distance
 * within the token's run of head rows), except that a tensor whose token rows lie apart asks for the same heads
 * one token ahead (token_prefetch.h: rows spanning 8 MiB or more) when the setting is not off. Measured on a
 * 2-core Zen 4 (AVX-512), llama3-8b heads, 2048 tokens, bf16, q and k in place in packed QKV rows (12 KiB a
 * token), medians of 30-60 calls: 0.59-0.66x the time at 1 and 2 threads (a distance of 12 KiB against the
 * default, calls alternating in one process), 0.41-0.73x against the former binary, 0.54-0.85x table-free; the
 * kernel alone over 32 heads a token at row strides of 9-16 KiB ran at 5.8-10.5 elements per ns without and
 * 13.3-14.1 with it (15.1 at the packed stride of 8 KiB, where the hardware prefetchers follow the rows).
 * The grouped walk (heads-major tensors) runs without software prefetch: the distance is meant for rows that
 * follow one another in the walk, but past a row of a heads-major tensor lie the same head's later tokens, and
 * the hardware prefetchers already follow the group's streams. Measured on a 2-core Zen 3 (AVX2, default
 * distance 2048 bytes), article shape in BHSD at 1 thread, 8 runs alternating with the old binary (`rotary bench
 * --layout bhsd`, % of the streaming pass, median [range]): head_group 4: 78 [70-104] with the distance,
 * 106 [99-115] without; head_group 8: 63 [61-73] with it, 72 [57-110] without (bimodal between runs).
 * Prefetching the group's next token rows instead (1, 2 or 4 tokens ahead, to L1 or L2) measured slower still. */
static void choose_prefetch(rotary_rotate_plan *plan) {
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &plan->d->k : &plan->d->q;
    /* a kernel with non-temporal stores prefetches no output: the output's strides do not matter then */
    const int step = rotary_token_prefetch(t, plan->tokens, plan->d->seq_len, plan->heads[i], plan->rope->head_dim,
                                           plan->elem[i], !plan->nontemporal[i]);
    plan->prefetch[i] = plan->group[0]                                ? -1
                        : plan->tuning->prefetch_bytes >= 0 && step > 0 ? step
                                                                        : plan->tuning->prefetch_bytes;
  }
}

/* Bytes of tensor i (0: q, 1: k) the call covers: every element of every head, rotated or passed through. */
static double tensor_bytes(const rotary_rotate_plan *plan, int i) {
  return (double)plan->tokens * (double)plan->heads[i] * (double)plan->rope->head_dim * (double)plan->elem[i];
}

/* Out-of-place tensors take the kernels' non-temporal stores when the call writes the settings' nt_min_bytes or
 * more: an output that large would leave the caches anyway, and those stores skip reading each line before
 * writing it. */
static void choose_stores(rotary_rotate_plan *plan) {
  const rotary_apply_desc *d = plan->d;
  double bytes = 0; /* every output element is written, rotated or passed through */
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &d->k : &d->q;
    if (t->in != t->out) bytes += tensor_bytes(plan, i); /* validated: out of place means no overlap */
  }
  if (bytes == 0 || bytes < (double)plan->tuning->nt_min_bytes) return;
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &d->k : &d->q;
    const rotary_kernel *nt = plan->heads[i] ? rotary_kernel_select_nt(t->dtype, plan->rope->pairing) : NULL;
    if (nt && t->in != t->out) {
      plan->kernel[i] = nt;
      plan->nontemporal[i] = 1;
    }
  }
}

rotary_status rotary_rotate_plan_build(rotary_rotate_plan *plan, const rotary_rope *rope,
                                       const rotary_apply_desc *desc, const rotary_tuning *tuning) {
  rotary_rotate_plan p;
  memset(&p, 0, sizeof p);
  p.rope = rope;
  p.d = desc;
  p.tuning = tuning;
  p.heads[0] = desc->q.n_heads;
  p.heads[1] = desc->k.n_heads;
  for (int i = 0; i < 2; i++) {
    const rotary_tensor *t = i ? &desc->k : &desc->q;
    if (!p.heads[i]) continue;
    p.kernel[i] = rotary_kernel_select(t->dtype, rope->pairing);
    p.elem[i] = rotary_dtype_size(t->dtype);
  }
  p.tokens = desc->batch * desc->seq_len;
  p.positions = desc->positions;
  if (p.positions.stream_stride == 0) p.positions.stream_stride = p.tokens;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(p.tokens, p.heads[0] + p.heads[1], &p.units), ROTARY_ERR_OVERFLOW);
  p.rows_in_table = rope->table != NULL;
  choose_stores(&p);
  choose_order(&p);
  choose_prefetch(&p);
  *plan = p;
  return ROTARY_OK;
}

void rotary_rotate_plan_split(rotary_rotate_plan *plan, size_t available) {
  /* each element is read once and written once, in place or not */
  const double bytes = 2.0 * (tensor_bytes(plan, 0) + tensor_bytes(plan, 1));
  rotary_task_split(bytes, plan->units, available, plan->tuning, &plan->threads, &plan->tasks);
  /* tasks <= ROTARY_MAX_TASKS (4096) under every setting, task floats <= 2 * 65566: the executor's
   * tasks * scratch_floats does not overflow */
  const rotary_rope *rope = plan->rope;
  const size_t floats = rotary_rope_task_floats(rope);
  plan->scratch_floats = floats > ROTARY_STACK_ROW ? floats : 0;
  /* Rows computed per token between head rows (about 110 ns for 64 frequencies with AVX-512 on a Zen 4) cost a
   * table-free rope far more than their own time. Article shape, f32, in place, 1 thread, a Zen 4: table-free
   * speed as a share of a table rope's, alternating calls, medians of 6-8 runs: 76% token by token, 94% with 16
   * rows at a time, 93-95% with 32 or 64; computing the next token's row in pieces between head rows was worse
   * than token by token. Asking for the walk's next input lines while a block is computed (32 lines a row of 64
   * frequencies; 64 lines measured slower) gave 94% (16 rows), 96% (32) and 97% (64). 32 rows fit the buffer at
   * head_dim 128: 98% in 8 runs of the final code. */
  plan->rows_block = plan->group[0] ? 1 : rotary_rows_block_size(rope, &plan->positions, ROTARY_STACK_ROW);
}
