/* token_prefetch.h: the prefetch distance of one token's step, for head rows that do not follow one another. */
#ifndef ROTARY_TOKEN_PREFETCH_H
#define ROTARY_TOKEN_PREFETCH_H

#include <stddef.h>

#include "rotary.h"

/* A token step longer than this (bytes) is not prefetched one token ahead. */
#define ROTARY_TOKEN_PREFETCH_MAX ((size_t)1 << 20)
/* Rows that span less than this (tokens x step bytes) are not either: such a call's rows are likely in cache, and
 * fetching the next token's into L1 early only crowds it. Measured on a 2-core Zen 4 (rotary_apply, bf16 q and k in
 * place in packed QKV rows of 12 KiB, alternating binaries, medians of 200 calls): 64 tokens (768 KiB) 1.14-1.26x
 * the time at 1 thread, 256 tokens (3 MiB) 0.80-1.19x, 1024 tokens (12 MiB) 0.76-0.93x, 2048 tokens 0.41-0.73x. */
#define ROTARY_TOKEN_PREFETCH_MIN_SPAN ((size_t)8 << 20)

/* The byte step from one token's head rows of tensor t to the next token's in a token-major walk over `tokens`
 * tokens (the next sequence's first token when seq_len is 1), when the token's heads (rows of head_dim elements of
 * elem bytes) lie before the next token's with a gap the hardware prefetchers do not follow (q and k as views into
 * a projection's packed QKV rows) and the rows span ROTARY_TOKEN_PREFETCH_MIN_SPAN or more. With with_out
 * (kernels with ordinary stores prefetch the output the same distance ahead as the input; in place always
 * qualifies), t's output must take the same steps. 0 otherwise: rows that follow one another, heads-major tensors
 * (a token's rows interleave with the next token's), an output's other steps, a step that is not a positive
 * distance up to ROTARY_TOKEN_PREFETCH_MAX, or a short span. */
static inline int rotary_token_prefetch(const rotary_tensor *t, size_t tokens, size_t seq_len, size_t heads,
                                        size_t head_dim, size_t elem, int with_out) {
  const ptrdiff_t step = seq_len > 1 ? t->stride_seq : t->stride_batch;
  const ptrdiff_t out_step = seq_len > 1 ? t->out_stride_seq : t->out_stride_batch;
  if (heads == 0 || elem == 0 || tokens < 2 || step <= 0 || (size_t)step > ROTARY_TOKEN_PREFETCH_MAX / elem) return 0;
  if (with_out && t->in != t->out && (out_step != step || t->out_stride_head != t->stride_head)) return 0;
  /* where the token's last head row ends, in elements from its first; the next token must start past it */
  if (heads > 1 && (t->stride_head <= 0 || (size_t)t->stride_head > (size_t)step / (heads - 1))) return 0;
  const size_t end = (heads - 1) * (heads > 1 ? (size_t)t->stride_head : 0) + head_dim;
  if ((size_t)step < end) return 0;
  if ((size_t)step == end && (heads == 1 || t->stride_head == (ptrdiff_t)head_dim)) return 0; /* packed */
  const size_t bytes = (size_t)step * elem;
  if (tokens < (ROTARY_TOKEN_PREFETCH_MIN_SPAN + bytes - 1) / bytes) return 0; /* tokens * bytes < the span */
  return (int)bytes;
}

#endif /* ROTARY_TOKEN_PREFETCH_H */
