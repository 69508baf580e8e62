/* attn_kernels.h: the decode-attention kernels (logits of query rows against cached keys, exponentials, values
 * weighted by softmax probabilities), their list and their dispatch. */
#ifndef ROTARY_ATTN_KERNELS_H
#define ROTARY_ATTN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "rotary.h"

/*
 * Cache bytes a kernel asks for while it computes (software prefetch into L2, one 64-byte line at a time, from at
 * up to end): the executor points it at rows the next key block will read, so that they come from memory while this
 * block's rows are used. Each kernel asks for per_key lines for every key row it uses (values: spread over its
 * passes over the row) and moves at past them; it never reads those bytes, and a prefetch never faults, so no result
 * depends on it. Every kernel takes one (NULL, at >= end or per_key 0: nothing asked). Into L2 rather than L1
 * (locality 2: prefetcht1 on x86): a block's rows (64-128 KiB of k at llama3-8b shapes) would only push the current
 * block's lines out of L1; on a Zen 4, L1 (prefetcht0) gave about half of L2's gain.
 */
typedef struct rotary_attn_prefetch {
  uintptr_t at, end;
  size_t per_key;
} rotary_attn_prefetch;

/* Asks for the next `lines` lines of pf (none past its end). */
static inline void rotary_attn_prefetch_lines(rotary_attn_prefetch *pf, size_t lines) {
  uintptr_t a = pf->at;
  for (; lines && a < pf->end; lines--, a += 64) __builtin_prefetch((const void *)a, 0, 2);
  pf->at = a;
}

/*
 * Logits of `rows` query rows against n cached key rows, accumulated in fp32:
 *     s[r * s_stride + j] = sum_{d < head_dim} q[r * head_dim + d] * key_j[d]        r < rows, j < n
 * key_j is the row at k + j * k_row_stride elements of the kernel's cache dtype, decoded exactly to fp32 (fp8:
 * e4m3 value * k_scale as one fp32 multiply, as rotary_fp8_to_f32_convert; other dtypes ignore k_scale).
 * q is fp32, rows x head_dim contiguous, float-aligned; k may start at any byte address; s_stride >= n.
 * rows >= 1, n >= 1, head_dim even >= 2 (any size: kernels handle tails). The summation order is the kernel's own
 * (ISAs differ in the last bits); each kernel is deterministic (same inputs, same bits).
 */
typedef void (*rotary_attn_scores_fn)(const float *q, size_t rows, size_t head_dim, const void *k,
                                      ptrdiff_t k_row_stride, size_t n, float k_scale, float *s, size_t s_stride,
                                      rotary_attn_prefetch *pf);

/*
 * Logits against keys rotated at their positions on the way (rope mode QK): each key decoded exactly as for scores,
 * then rotated as the f32 rotation kernels rotate (rotate_scalar_template.h: a pair (x0, x1) with its cos c and sin
 * s becomes (fmaf(x0, c, -(x1 * s)), fmaf(x0, s, x1 * c)); elements from rotary_dim on unchanged), then
 *     s[r * s_stride + j] = sum_{d < head_dim} q[r * head_dim + d] * y_j[d]
 * Key j's rows start at cs + j * cs_stride floats; the second row is sin_offset floats after the first.
 *   half pairing (pairs (i, i + rotary_dim/2)): the rope's rows, cos c_i then sin s_i, i < rotary_dim/2 (a table's
 *   rows or a computed run of them);
 *   interleaved (pairs (2i, 2i+1)), arranged by the caller in lane order, rotary_dim floats each:
 *   B = (c_0, s_0, c_1, s_1, ...) then D = (-s_0, c_0, -s_1, c_1, ...), so that y = fma(x_even, B, x_odd * D).
 * rotary_dim even, 2 <= rotary_dim <= head_dim; the other rules are scores'. A NaN element makes the key's logits
 * NaN (the payload is unspecified). The summation order is the kernel's own.
 */
typedef void (*rotary_attn_scores_rot_fn)(const float *q, size_t rows, size_t head_dim, const void *k,
                                          ptrdiff_t k_row_stride, size_t n, float k_scale, const float *cs,
                                          size_t cs_stride, size_t sin_offset, size_t rotary_dim, float *s,
                                          size_t s_stride, rotary_attn_prefetch *pf);

/*
 * Values weighted by probabilities, added to fp32 accumulators:
 *     o[r * head_dim + d] += sum_{j < n} p[r * p_stride + j] * value_j[d]             r < rows, d < head_dim
 * value_j at v + j * v_row_stride elements, decoded as key_j above with v_scale. o is rows x head_dim contiguous,
 * float-aligned, disjoint from p; p_stride >= n. Same rules as scores for sizes and determinism.
 */
typedef void (*rotary_attn_values_fn)(const float *p, size_t p_stride, size_t rows, size_t head_dim, const void *v,
                                      ptrdiff_t v_row_stride, size_t n, float v_scale, float *o,
                                      rotary_attn_prefetch *pf);

/*
 * Exponentials of one row of logits: s[j] = exp(s[j] - max) for j < n, returning their fp32 sum (in the kernel's
 * order). max is the caller's running maximum (finite or +Inf; >= every finite s[j]). s[j] = -Inf gives 0; NaN
 * gives NaN; every result is within 2 ulp of the correctly rounded exp for arguments in [-87, 0] and is 0 or within
 * 2^-126 of the true value below.
 */
typedef float (*rotary_attn_exp_fn)(float *s, size_t n, float max);

/* Declares a scores and a values kernel by their full names (the contracts above and below). */
#define ROTARY_ATTN_PAIR(scores, values)                                                                          \
  void scores(const float *q, size_t rows, size_t head_dim, const void *k, ptrdiff_t k_row_stride, size_t n,     \
              float k_scale, float *s, size_t s_stride, rotary_attn_prefetch *pf);                               \
  void values(const float *p, size_t p_stride, size_t rows, size_t head_dim, const void *v,                      \
              ptrdiff_t v_row_stride, size_t n, float v_scale, float *o, rotary_attn_prefetch *pf);

/*
 * Precision BF16 (rotary_attention_precision): scores and values whose q rows and probabilities p hold bf16 values
 * (each float's low 16 bits zero: the executor rounds them), so each product with a bf16 or f16 cache element (fp8
 * at a power-of-two scale) is exact; the `_dot` kernels (attn_dot_list.h) sum the products in fp32 in their own
 * order with instructions that take bf16 operands (AVX512-BF16's VDPBF16PS: two products per lane and step,
 * subnormal operands and results flushed to zero). Same signatures and rules as scores and values; values add
 * their sums to o.
 */
#define ROTARY_ATTN_DOT_KERNEL(dtype, DTYPE, isa, ISA) \
  ROTARY_ATTN_PAIR(rotary_attn_##dtype##_scores_dot__##isa, rotary_attn_##dtype##_values_dot__##isa)
#include "attn_dot_list.h"
#undef ROTARY_ATTN_DOT_KERNEL

/* One declaration per kernel of the list (attn_list.h). */
#define ROTARY_ATTN_KERNEL(dtype, DTYPE, isa, ISA) \
  ROTARY_ATTN_PAIR(rotary_attn_##dtype##_scores__##isa, rotary_attn_##dtype##_values__##isa)
#define ROTARY_ATTN_EXP(isa, ISA) float rotary_attn_exp__##isa(float *s, size_t n, float max);
#define ROTARY_ATTN_ROT_KERNEL(dtype, DTYPE, pairing, PAIRING, isa, ISA)                                         \
  void rotary_attn_##dtype##_scores_##pairing##__##isa(const float *q, size_t rows, size_t head_dim,            \
                                                       const void *k, ptrdiff_t k_row_stride, size_t n,         \
                                                       float k_scale, const float *cs, size_t cs_stride,        \
                                                       size_t sin_offset, size_t rotary_dim, float *s,          \
                                                       size_t s_stride, rotary_attn_prefetch *pf);
#include "attn_list.h"
#undef ROTARY_ATTN_KERNEL
#undef ROTARY_ATTN_EXP
#undef ROTARY_ATTN_ROT_KERNEL

/* The kernels one attention call uses, for one cache dtype. */
typedef struct rotary_attn_kernels {
  rotary_attn_scores_fn scores;
  rotary_attn_values_fn values;
  rotary_attn_exp_fn exp;
  rotary_attn_scores_rot_fn scores_rot[2]; /* by rotary_pairing (every ISA's set has both: attn_list.h) */
  rotary_attn_scores_fn scores_dot;        /* precision BF16: the best enabled `_dot` kernel, else scores */
  rotary_attn_values_fn values_dot;        /* likewise, else values */
  const char *scores_name, *values_name, *exp_name, *scores_rot_name[2]; /* full function names */
  const char *scores_dot_name, *values_dot_name;
} rotary_attn_kernels;

/* The best enabled (rotary_isa_enabled) kernels for a cache dtype (F32, F16, BF16, FP8_E4M3); scores_dot and
 * values_dot: the best enabled `_dot` kernels of any ISA for it, else scores and values. INVALID_ARGUMENT for
 * another dtype (*out then unchanged). */
rotary_status rotary_attn_select(rotary_dtype cache_dtype, rotary_attn_kernels *out);

/* The kernels of one ISA for a cache dtype, enabled or not (tests run each one this CPU supports); scores_dot and
 * values_dot are scores and values here (tests reach the `_dot` kernels through the registry). INVALID_ARGUMENT
 * when that ISA has none for the dtype. */
rotary_status rotary_attn_select_isa(rotary_dtype cache_dtype, rotary_isa isa, rotary_attn_kernels *out);

#endif /* ROTARY_ATTN_KERNELS_H */
