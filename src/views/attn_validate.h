/* attn_validate.h: the complete checks of a decode-attention call (and of a decode step), into a checked view. */
#ifndef ROTARY_ATTN_VALIDATE_H
#define ROTARY_ATTN_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "cache_view.h"
#include "rotary.h"
#include "strided_view.h"

/* Sequences whose lengths live inside the view itself; longer batches take one allocation. */
#define ROTARY_ATTN_LOCAL_LENGTHS 64

/* A validated attention call: everything the plan and the executor read, resolved once. Every offset the executor
 * forms from it lies inside the buffers the checks described. */
typedef struct rotary_attn_view {
  const rotary_attention_desc *d;
  rotary_cache_geom geom;          /* of the k and v caches (kv_heads heads of head_dim) */
  size_t head_dim, rotary_dim;
  size_t group;                    /* q heads per kv head */
  size_t q_elem, out_elem;
  ptrdiff_t q_stride[3];           /* batch, token, head: resolved (all three 0 in the desc: contiguous) */
  ptrdiff_t out_stride[3];
  float scale;                     /* resolved: 0 in the desc gives 1 / sqrt(head_dim) (double, rounded once) */
  float softcap;                   /* 0: none */
  float k_scale, v_scale;          /* fp8 cache: the desc's; 1 otherwise */
  size_t max_len;                  /* the largest L_b */
  rotary_view arrays[4];           /* the index arrays and the block table read (flat views) */
  int n_arrays;
  size_t *len;                     /* L_b per sequence, read once from the index arrays (local or allocated) */
  size_t local_len[ROTARY_ATTN_LOCAL_LENGTHS];
} rotary_attn_view;

/* Checks every argument, index array, position and buffer relation of rotary_attention (its statuses, in the
 * order of the header's list); on OK *v is filled and must be released with rotary_attn_view_release. On error
 * nothing needs releasing. Nothing of the cache is read. */
rotary_status rotary_validate_attention(const rotary_rope *rope, const rotary_attention_desc *desc,
                                        rotary_attn_view *v);

/* Frees what the view allocated. */
void rotary_attn_view_release(rotary_attn_view *v);

/* The cache block that holds row p of sequence b (p < L_b of a validated view). */
static inline size_t rotary_attn_block(const rotary_attn_view *v, size_t b, size_t p) {
  const rotary_attention_desc *d = v->d;
  const size_t j = p / v->geom.block_size;
  switch (d->cache.index) {
    case ROTARY_CACHE_SEQUENCES: return b;
    case ROTARY_CACHE_SLOTS: return (size_t)d->block_table[b * d->block_table_stride + j];
    case ROTARY_CACHE_PAGES: return (size_t)d->cache.page_indices[(size_t)d->cache.page_indptr[b] + j];
  }
  return 0;
}

/* The cache slot (block * block_size + row in block) of row p of sequence b, as rotary_cache_offset takes it. */
static inline size_t rotary_attn_slot(const rotary_attn_view *v, size_t b, size_t p) {
  return rotary_attn_block(v, b, p) * v->geom.block_size + p % v->geom.block_size;
}

/* The checks of rotary_decode_step: the write (rotary_validate_kv_write) and the attention (above) each, then that
 * they describe one step: attn's q is write's q output (pointer, heads, dtype, strides), attn's cache is the cache
 * the write fills (index kind, layout, dtype, k, v, geometry, fp8 scales), rope_mode NONE, the same batch and
 * tokens, and every token the write stores (its slot not negative) lands on row L_b - tokens + s of the attention's
 * sequence (INVALID_ARGUMENT otherwise); and nothing the write writes (q's output, the caches) overlaps an index
 * array of the attention (OVERLAP). On OK *geom is the write's geometry and *v must be released. */
rotary_status rotary_validate_decode_step(const rotary_rope *rope, const rotary_kv_write_desc *write,
                                          const rotary_attention_desc *attn, rotary_cache_geom *geom,
                                          rotary_attn_view *v);

#endif /* ROTARY_ATTN_VALIDATE_H */
