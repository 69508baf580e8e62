/* bench_attn_composed.h: decode attention as an unfused engine runs it (QK^T into a logits buffer, a softmax pass,
 * logits x V), in plain C over a KV cache; shared by `rotary bench --op attention` and examples/llama_step.c. */
#ifndef ROTARY_BENCH_ATTN_COMPOSED_H
#define ROTARY_BENCH_ATTN_COMPOSED_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"

#define BENCH_ATTN_COMPOSED_MAX_DIM 8192 /* head_dim the passes take (a decoded tile holds a row at least) */

/*
 * One query token per sequence; q already rotated (the caller's rotary_apply). Row p of sequence b, kv head h is
 * at element block * block_stride + (p % block_size) * kv_heads * head_dim + h * head_dim of k and v (NHD), or
 * block * block_stride + (h * block_size + p % block_size) * head_dim (HND), with block = block_table[b *
 * block_table_stride + p / block_size], or b when block_table is NULL (contiguous, one block per sequence). Each
 * of the three passes is a task function for rotary_pool_run (or any fork-join loop): task `index` of `count` does
 * its share of the items. Every pass reads or writes memory: the logits buffer is the
 * whole intermediate [batch, q_heads, logits_stride] in fp32, as a framework's QK^T output is.
 */
typedef struct bench_attn_composed {
  size_t batch, q_heads, kv_heads, head_dim;
  const int64_t *lengths;          /* L_b rows attended by sequence b (its query sits at row L_b - 1) */
  size_t logits_stride;            /* >= every L_b */
  rotary_dtype cache_dtype;        /* F32, F16, BF16, FP8_E4M3 */
  const void *k, *v;
  size_t block_size, block_stride; /* block_stride in elements */
  const int32_t *block_table;      /* NULL: contiguous */
  int hnd;                         /* the cache layout is HND (else NHD) */
  size_t block_table_stride;
  float k_scale, v_scale;          /* fp8 only */
  float scale;                     /* softmax scale */
  const float *q;                  /* [batch, q_heads, head_dim] fp32, rotated: (b, h, d) at b * q_stride + h *
                                      head_dim + d */
  size_t q_stride;                 /* 0: q_heads * head_dim (contiguous) */
  float *logits;                   /* [batch, q_heads, logits_stride] fp32 */
  float *out;                      /* [batch, q_heads, head_dim] fp32 */
  const float *key_cos, *key_sin;  /* NULL, or [rows][head_dim / 2]: each key rotated at its row before the dot
                                      (half pairing, full rotary dim): the reference of rope_mode QK */
} bench_attn_composed;

/* Pass 1, items (sequence, kv head): logits[b, h, p] = scale * q[b, h] . key_p for the q heads of that kv head. */
void bench_attn_composed_scores(void *c, size_t index, size_t count);
/* Pass 2, items (sequence, q head): the row's L_b logits replaced by their softmax. */
void bench_attn_composed_softmax(void *c, size_t index, size_t count);
/* Pass 3, items (sequence, kv head): out[b, h] = sum_p logits[b, h, p] * value_p. */
void bench_attn_composed_values(void *c, size_t index, size_t count);

#endif /* ROTARY_BENCH_ATTN_COMPOSED_H */
