/* attn_oracle.h: an fp64 reference of rotary_attention (cache walk, exact RoPE, masks, softcap, softmax, lse) with
 * a per-element error bound for the library's fp32 computation. */
#ifndef ATTN_ORACLE_H
#define ATTN_ORACLE_H

#include <stddef.h>
#include <stdint.h>
#include "rotary.h" /* the descriptor and enums; the rope only through its read-only getters */

/* What an output element must be. */
typedef enum ao_class {
  AO_FINITE = 0,    /* within bound of ref */
  AO_NAN = 1,       /* NaN: a NaN or +Inf logit (a NaN in q or an attended key, an Inf in q or a key whose product
                       is +Inf or NaN) makes the row NaN; a NaN in element d of an attended value makes element d NaN */
  AO_NONFINITE = 2, /* Inf or NaN: an Inf in element d of an attended value */
  AO_ANY = 3        /* unspecified: every attended logit -Inf (no weight left) */
} ao_class;

/* Reference results of one call, rows in contiguous order: query row r = (b * tokens + t) * q_heads + h, element
 * r * head_dim + d. Allocated by ao_alloc, freed by ao_free. */
typedef struct ao_result {
  size_t rows, head_dim;
  double *out;       /* the exact attention, in fp64 */
  double *bound;     /* |library - out| allowed (fp32 accumulation, exp, rotation, and the rounding to out_dtype) */
  double *weight;    /* sum_p P_p |v_pd|: the scale errors are measured in */
  uint8_t *cls;      /* ao_class per element */
  double *lse, *lse_bound;
  uint8_t *lse_cls;  /* AO_FINITE or AO_NAN */
  size_t *attended;  /* rows attended per query row */
} ao_result;

int ao_alloc(ao_result *r, size_t rows, size_t head_dim);
void ao_free(ao_result *r);

/* L_b of sequence b, as the contract reads it from the cache index (SEQUENCES, SLOTS: lengths; PAGES: pages). */
int64_t ao_seq_len(const rotary_attention_desc *d, size_t b);
/* The cache block that holds row p of sequence b (-1 when the table says nothing valid). */
int64_t ao_row_block(const rotary_attention_desc *d, size_t b, int64_t p);
/* Element offset of (block, row, kv head) from the cache's start, with d's layout and block_stride. */
size_t ao_elem_offset(const rotary_attention_desc *d, size_t head_dim, int64_t block, size_t row, size_t head);
/* One cache element decoded exactly as the contract says (fp8: e4m3 value * scale rounded once to fp32). */
double ao_cache_value(rotary_dtype dt, const void *base, size_t idx, float scale);
/* Whether query token t of sequence b (row i = L - tokens + t) attends row p: causal and window. */
int ao_attends(const rotary_attention_desc *d, int64_t L, size_t t, int64_t p);

/*
 * Computes ref for a valid desc (the test checks validity; the oracle assumes it). Rotation (rope_mode Q, QK) uses
 * the rope's fp64 inverse frequencies and attention scaling, angles pos * inv_freq in long double, cosl/sinl.
 * Returns 0, or -1 when out of memory.
 * Non-finite values go through IEEE arithmetic, as the contract says: logits are computed in fp64 from the same
 * (rotated) values; a NaN or +Inf logit (after softcap, which maps +-Inf to +-softcap) makes the row NaN, a -Inf
 * logit gives its row weight 0. A finite logit from a non-finite q or key (softcap) is allowed 16 u (|s| + 1).
 * The bound, for element d of a row whose inputs are finite (u = 2^-24, n = attended rows, D = head_dim):
 *   logit error  Delta_p = scale (D + 24) u sum_d |q|_d |k|_pd + 4 u |s_p| (+ 8 u |s_p| with softcap)
 *                          + 16 u + 4 u (m - s_p)   (rotation, dot product, scale, tanh, exp and rescaling)
 *                where |q|_d, |k|_d are |x_a| + |x_b| times the attention scaling for a rotated pair's dims;
 *   with E_p = exp(Delta_p) - 1 and e = sum_p P_p E_p:
 *       bound = 1.05 ((sum_p P_p E_p |v_pd| + e W_d) / (1 - e) + (2 n + 16) u W_d + n 2^-126 max|v|)
 *   where W_d = sum_p P_p |v_pd| (the perturbed softmax exactly, plus fp32 sums of n terms and the division);
 *   out_dtype f16/bf16 adds half an ulp of that type at |out| + bound. Precision BF16 adds 2^-8 scale sum_d |q|_d
 *   |k|_pd (+ D 2^-124 scale (1 + that sum): flushed subnormals) to Delta_p and 1.05 (2^-8 W_d + n 2^-124 max|v|) to
 *   the bound: q and each weight rounded to bf16 (8 significant bits: 2^-8 of themselves). Where e >= 1/2 (large
 *   logits in BF16) the bound is 1.05 (2 max|v| + (2 n + 16) u W_d) (the output stays a weighted mean of the values) and lse's
 *   shift term max_p Delta_p instead of e / (1 - e). lse: 1.05 (e + (n + 16) u) + 4 u (|lse| +
 *   |m|) with m the largest logit.
 */
int ao_attention(const rotary_attention_desc *d, const rotary_rope *rope, ao_result *r);

#endif /* ATTN_ORACLE_H */
