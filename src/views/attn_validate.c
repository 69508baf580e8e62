/* attn_validate.c: checks of rotary_attention and rotary_decode_step (strided_view.c and cache_view.c do the work). */
#include "attn_validate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kv_validate.h"
#include "rope.h"

static int known_dtype_io(rotary_dtype t) { return t == ROTARY_F32 || t == ROTARY_F16 || t == ROTARY_BF16; }

/* A softmax scale or soft cap: 0 (default / none) or finite and > 0. */
static rotary_status check_factor(float f) { return f == 0.0f || (isfinite(f) && f > 0.0f) ? ROTARY_OK : ROTARY_ERR_SCALE; }

/* Arguments that need no memory walk: counts, enums, pointers, dtypes, scales. */
static rotary_status check_args(const rotary_attention_desc *d) {
  const rotary_kv_cache *c = &d->cache;
  ROTARY_RETURN_IF(d->batch == 0 || d->tokens == 0 || d->tokens > ROTARY_ATTENTION_MAX_TOKENS,
                   ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(d->kv_heads == 0 || d->q_heads == 0 || d->q_heads % d->kv_heads != 0,
                   ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(c->index != ROTARY_CACHE_SEQUENCES && c->index != ROTARY_CACHE_SLOTS &&
                       c->index != ROTARY_CACHE_PAGES,
                   ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(c->layout != ROTARY_CACHE_NHD && c->layout != ROTARY_CACHE_HND, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(d->rope_mode != ROTARY_ATTENTION_ROPE_NONE && d->rope_mode != ROTARY_ATTENTION_ROPE_Q &&
                       d->rope_mode != ROTARY_ATTENTION_ROPE_QK,
                   ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(d->precision != ROTARY_ATTENTION_F32 && d->precision != ROTARY_ATTENTION_BF16,
                   ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(c->num_blocks == 0 || c->block_size == 0, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(!d->q || !d->out || !c->k || !c->v, ROTARY_ERR_NULL_POINTER);
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES: ROTARY_RETURN_IF(!c->lengths, ROTARY_ERR_NULL_POINTER); break;
    case ROTARY_CACHE_SLOTS: ROTARY_RETURN_IF(!c->lengths || !d->block_table, ROTARY_ERR_NULL_POINTER); break;
    case ROTARY_CACHE_PAGES:
      ROTARY_RETURN_IF(!c->page_indptr || !c->page_indices || !c->last_page_len, ROTARY_ERR_NULL_POINTER);
      break;
  }
  ROTARY_RETURN_IF(!known_dtype_io(d->q_dtype) || !known_dtype_io(d->out_dtype), ROTARY_ERR_DTYPE);
  ROTARY_RETURN_IF(rotary_dtype_size(c->dtype) == 0, ROTARY_ERR_DTYPE);
  rotary_status st;
  if ((st = check_factor(d->scale)) != ROTARY_OK || (st = check_factor(d->softcap)) != ROTARY_OK) return st;
  if (c->dtype == ROTARY_FP8_E4M3) {
    if ((st = rotary_check_scale(c->k_scale)) != ROTARY_OK) return st;
    if ((st = rotary_check_scale(c->v_scale)) != ROTARY_OK) return st;
  }
  return ROTARY_OK;
}

/* Strides given, or (all three 0) those of a contiguous [batch, tokens, heads, head_dim] tensor. */
static rotary_status resolve_strides(ptrdiff_t *out, ptrdiff_t sb, ptrdiff_t st, ptrdiff_t sh, size_t tokens,
                                     size_t heads, size_t hd) {
  out[0] = sb;
  out[1] = st;
  out[2] = sh;
  if (sb || st || sh) return ROTARY_OK;
  size_t token, batch;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(heads, hd, &token) || rotary_mul_overflow_size(token, tokens, &batch) ||
                       batch > PTRDIFF_MAX,
                   ROTARY_ERR_OVERFLOW);
  out[0] = (ptrdiff_t)batch;
  out[1] = (ptrdiff_t)token;
  out[2] = (ptrdiff_t)hd;
  return ROTARY_OK;
}

/* The view of a [batch, tokens, q_heads, head_dim] tensor with resolved strides, its extent checked. */
static rotary_status tensor_view(rotary_view *v, const void *base, rotary_dtype dtype, const rotary_attention_desc *d,
                                 const ptrdiff_t *stride, size_t hd) {
  memset(v, 0, sizeof *v);
  v->base = (uintptr_t)base;
  v->elem = rotary_dtype_size(dtype);
  v->count[0] = d->batch;
  v->count[1] = d->tokens;
  v->count[2] = d->q_heads;
  for (int i = 0; i < 3; i++) v->stride[i] = stride[i];
  v->row = hd;
  return rotary_view_extent(v);
}

/* SEQUENCES: L_b = lengths[b] in tokens .. block_size, one block per sequence. */
static rotary_status lengths_sequences(rotary_attn_view *v) {
  const rotary_attention_desc *d = v->d;
  ROTARY_RETURN_IF(v->geom.num_blocks < d->batch, ROTARY_ERR_CACHE_INDEX);
  for (size_t b = 0; b < d->batch; b++) {
    const int64_t len = d->cache.lengths[b];
    ROTARY_RETURN_IF(len < 0 || (uint64_t)len < d->tokens || (uint64_t)len > v->geom.block_size,
                     ROTARY_ERR_CACHE_INDEX);
    v->len[b] = (size_t)len;
  }
  return ROTARY_OK;
}

/* SLOTS: L_b = lengths[b] >= tokens, covered by the block table's row; the rows' used entries are blocks of the
 * cache. The block table's view spans the used entries of every row (the last row's end included). */
static rotary_status lengths_slots(rotary_attn_view *v, rotary_view *table) {
  const rotary_attention_desc *d = v->d;
  const size_t bs = v->geom.block_size, stride = d->block_table_stride;
  for (size_t b = 0; b < d->batch; b++) {
    const int64_t len = d->cache.lengths[b];
    ROTARY_RETURN_IF(len < 0 || (uint64_t)len < d->tokens, ROTARY_ERR_CACHE_INDEX);
    size_t cover;
    if (!rotary_mul_overflow_size(stride, bs, &cover)) /* an overflowing product covers every length */
      ROTARY_RETURN_IF((uint64_t)len > cover, ROTARY_ERR_CACHE_INDEX);
    v->len[b] = (size_t)len;
  }
  const size_t last_used = (v->len[d->batch - 1] + bs - 1) / bs;
  size_t entries, bytes;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(d->batch - 1, stride, &entries) ||
                       rotary_add_overflow_size(entries, last_used, &entries) ||
                       rotary_mul_overflow_size(entries, sizeof(int32_t), &bytes) || bytes > PTRDIFF_MAX,
                   ROTARY_ERR_OVERFLOW);
  rotary_status st = rotary_view_flat(table, d->block_table, bytes);
  if (st != ROTARY_OK) return st;
  for (size_t b = 0; b < d->batch; b++) {
    const int32_t *row = d->block_table + b * stride;
    const size_t used = (v->len[b] + bs - 1) / bs;
    for (size_t j = 0; j < used; j++)
      ROTARY_RETURN_IF(row[j] < 0 || (size_t)row[j] >= v->geom.num_blocks, ROTARY_ERR_CACHE_INDEX);
  }
  return ROTARY_OK;
}

/* PAGES: rotary_kv_write's table rules (indptr from 0, increasing, a last page length in 1 .. block_size, pages
 * inside the cache), L_b = (pages - 1) * block_size + last_page_len[b] >= tokens. */
static rotary_status lengths_pages(rotary_attn_view *v) {
  const rotary_attention_desc *d = v->d;
  const rotary_kv_cache *c = &d->cache;
  const rotary_status st = rotary_check_page_table(c, &v->geom, d->batch, d->tokens, v->len);
  if (st != ROTARY_OK) return st;
  return rotary_view_flat(&v->arrays[v->n_arrays++], c->page_indices,
                          (size_t)c->page_indptr[d->batch] * sizeof(int32_t));
}

/* Reads L_b of every sequence once (checking the index arrays on the way) and describes the arrays read. */
static rotary_status read_lengths(rotary_attn_view *v) {
  const rotary_attention_desc *d = v->d;
  const rotary_kv_cache *c = &d->cache;
  size_t bytes; /* the largest array here holds batch + 1 values of at most 8 bytes */
  ROTARY_RETURN_IF(d->batch >= PTRDIFF_MAX / 8, ROTARY_ERR_OVERFLOW);
  if (d->batch > ROTARY_ATTN_LOCAL_LENGTHS) {
    v->len = malloc(d->batch * sizeof *v->len);
    ROTARY_RETURN_IF(!v->len, ROTARY_ERR_OUT_OF_MEMORY);
  }
  rotary_status st;
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES:
    case ROTARY_CACHE_SLOTS:
      bytes = d->batch * sizeof(int64_t);
      if ((st = rotary_view_flat(&v->arrays[v->n_arrays++], c->lengths, bytes)) != ROTARY_OK) return st;
      if (c->index == ROTARY_CACHE_SEQUENCES) return lengths_sequences(v);
      return lengths_slots(v, &v->arrays[v->n_arrays++]);
    case ROTARY_CACHE_PAGES:
      if ((st = rotary_view_flat(&v->arrays[v->n_arrays++], c->page_indptr, (d->batch + 1) * sizeof(int32_t))) !=
              ROTARY_OK ||
          (st = rotary_view_flat(&v->arrays[v->n_arrays++], c->last_page_len, d->batch * sizeof(int32_t))) !=
              ROTARY_OK)
        return st;
      return lengths_pages(v);
  }
  return ROTARY_ERR_INVALID_ARGUMENT;
}

/* out and lse (the call's only writes) share no byte with anything it reads or with each other. The caches are
 * only read: k and v may overlap each other (a caller may even pass one buffer for both). */
static rotary_status check_aliasing(const rotary_attn_view *v, const rotary_view *q, const rotary_view *out,
                                    const rotary_view *lse, int has_lse, const rotary_view *caches) {
  const rotary_view *writes[2] = {out, lse};
  for (int w = 0; w < 1 + has_lse; w++) {
    ROTARY_RETURN_IF(!rotary_views_disjoint(writes[w], q), ROTARY_ERR_OVERLAP);
    for (int i = 0; i < 2; i++) ROTARY_RETURN_IF(!rotary_views_disjoint(writes[w], &caches[i]), ROTARY_ERR_OVERLAP);
    for (int i = 0; i < v->n_arrays; i++)
      ROTARY_RETURN_IF(!rotary_views_disjoint(writes[w], &v->arrays[i]), ROTARY_ERR_OVERLAP);
  }
  ROTARY_RETURN_IF(has_lse && !rotary_views_disjoint(out, lse), ROTARY_ERR_OVERLAP);
  return ROTARY_OK;
}

/* The checks after the arguments: geometry, views, lengths, positions, strides, overlap. */
static rotary_status check_memory(const rotary_rope *rope, rotary_attn_view *v) {
  const rotary_attention_desc *d = v->d;
  const size_t hd = rope->head_dim;
  rotary_status st = rotary_cache_geom_init(&v->geom, &d->cache, d->kv_heads, hd);
  if (st != ROTARY_OK) return st;
  if ((st = resolve_strides(v->q_stride, d->q_stride_batch, d->q_stride_token, d->q_stride_head, d->tokens,
                            d->q_heads, hd)) != ROTARY_OK ||
      (st = resolve_strides(v->out_stride, d->out_stride_batch, d->out_stride_token, d->out_stride_head, d->tokens,
                            d->q_heads, hd)) != ROTARY_OK)
    return st;
  rotary_view q, out, lse = {0}, caches[2];
  if ((st = tensor_view(&q, d->q, d->q_dtype, d, v->q_stride, hd)) != ROTARY_OK) return st;
  if ((st = tensor_view(&out, d->out, d->out_dtype, d, v->out_stride, hd)) != ROTARY_OK) return st;
  size_t rows, bytes; /* lse: batch x tokens x q_heads floats */
  ROTARY_RETURN_IF(rotary_mul_overflow_size(d->batch, d->tokens, &rows) ||
                       rotary_mul_overflow_size(rows, d->q_heads, &rows) ||
                       rotary_mul_overflow_size(rows, sizeof(float), &bytes) || bytes > PTRDIFF_MAX,
                   ROTARY_ERR_OVERFLOW);
  if (d->lse && (st = rotary_view_flat(&lse, d->lse, bytes)) != ROTARY_OK) return st;
  if ((st = rotary_cache_view(&v->geom, d->cache.k, &caches[0])) != ROTARY_OK) return st;
  if ((st = rotary_cache_view(&v->geom, d->cache.v, &caches[1])) != ROTARY_OK) return st;
  if ((st = read_lengths(v)) != ROTARY_OK) return st;
  for (size_t b = 0; b < d->batch; b++)
    if (v->len[b] > v->max_len) v->max_len = v->len[b];
  if (d->rope_mode != ROTARY_ATTENTION_ROPE_NONE) /* positions 0 .. L_b - 1 (keys) and L_b - tokens .. (q) */
    ROTARY_RETURN_IF(v->max_len - 1 > (uint64_t)rotary_rope_max_position(rope), ROTARY_ERR_POSITION);
  ROTARY_RETURN_IF(!rotary_view_writes_once(&out), ROTARY_ERR_STRIDE);
  return check_aliasing(v, &q, &out, &lse, d->lse != NULL, caches);
}

rotary_status rotary_validate_attention(const rotary_rope *rope, const rotary_attention_desc *d,
                                        rotary_attn_view *v) {
  ROTARY_RETURN_IF(!rope || !d, ROTARY_ERR_NULL_POINTER);
  ROTARY_RETURN_IF(d->struct_size != sizeof *d, ROTARY_ERR_INVALID_ARGUMENT);
  rotary_status st = check_args(d);
  if (st != ROTARY_OK) return st;
  memset(v, 0, sizeof *v);
  v->d = d;
  v->len = v->local_len;
  v->head_dim = rope->head_dim;
  v->rotary_dim = rope->rotary_dim;
  v->group = d->q_heads / d->kv_heads;
  v->q_elem = rotary_dtype_size(d->q_dtype);
  v->out_elem = rotary_dtype_size(d->out_dtype);
  v->scale = d->scale != 0.0f ? d->scale : (float)(1.0 / sqrt((double)rope->head_dim));
  v->softcap = d->softcap;
  v->k_scale = d->cache.dtype == ROTARY_FP8_E4M3 ? d->cache.k_scale : 1.0f;
  v->v_scale = d->cache.dtype == ROTARY_FP8_E4M3 ? d->cache.v_scale : 1.0f;
  if ((st = check_memory(rope, v)) != ROTARY_OK) rotary_attn_view_release(v);
  return st;
}

void rotary_attn_view_release(rotary_attn_view *v) {
  if (v->len != v->local_len) free(v->len);
  v->len = v->local_len;
}

/* The write and the attention describe one step (rotary_validate_decode_step). */
static int step_agrees(const rotary_kv_write_desc *w, const rotary_attention_desc *a, const rotary_attn_view *v,
                       const rotary_cache_geom *wg) {
  const rotary_kv_cache *wc = &w->cache, *ac = &a->cache;
  if (a->rope_mode != ROTARY_ATTENTION_ROPE_NONE || a->batch != w->batch || a->tokens != w->seq_len) return 0;
  if (w->q.n_heads != a->q_heads || w->k.n_heads != a->kv_heads || w->q.dtype != a->q_dtype) return 0;
  if (w->q.out != a->q || w->q.out_stride_batch != v->q_stride[0] || w->q.out_stride_seq != v->q_stride[1] ||
      w->q.out_stride_head != v->q_stride[2])
    return 0;
  if (wc->index != ac->index || wc->layout != ac->layout || wc->dtype != ac->dtype || wc->k != ac->k ||
      wc->v != ac->v || wc->num_blocks != ac->num_blocks || wc->block_size != ac->block_size ||
      wg->block_stride != v->geom.block_stride)
    return 0;
  if (wc->dtype == ROTARY_FP8_E4M3 && (wc->k_scale != ac->k_scale || wc->v_scale != ac->v_scale)) return 0;
  for (size_t b = 0; b < a->batch; b++) {
    for (size_t s = 0; s < a->tokens; s++) {
      const int64_t slot = rotary_cache_slot(wc, wg->block_size, w->seq_len, b, s);
      if (slot < 0) continue; /* SLOTS padding: nothing written */
      const size_t p = v->len[b] - a->tokens + s;
      const size_t want = rotary_attn_block(v, b, p) * wg->block_size + p % wg->block_size;
      if ((uint64_t)slot != want) return 0;
    }
  }
  return 1;
}

rotary_status rotary_validate_decode_step(const rotary_rope *rope, const rotary_kv_write_desc *write,
                                          const rotary_attention_desc *attn, rotary_cache_geom *geom,
                                          rotary_attn_view *v) {
  ROTARY_RETURN_IF(!write || !attn, ROTARY_ERR_NULL_POINTER);
  rotary_status st = rotary_validate_kv_write(rope, write, geom, 0);
  if (st != ROTARY_OK) return st;
  if ((st = rotary_validate_attention(rope, attn, v)) != ROTARY_OK) return st;
  if (!step_agrees(write, attn, v, geom)) {
    rotary_attn_view_release(v);
    return ROTARY_ERR_INVALID_ARGUMENT;
  }
  /* the write's outputs must leave the attention's index arrays as they were checked */
  rotary_view outs[3];
  int n = 0;
  if ((st = rotary_cache_view(geom, write->cache.k, &outs[n++])) == ROTARY_OK &&
      (st = rotary_cache_view(geom, write->cache.v, &outs[n++])) == ROTARY_OK) {
    rotary_view_of_tensor(&outs[n], write->q.out, write->batch, write->seq_len, &write->q, rope->head_dim, 1);
    st = rotary_view_extent(&outs[n++]);
  }
  for (int i = 0; st == ROTARY_OK && i < n; i++)
    for (int j = 0; j < v->n_arrays; j++)
      if (!rotary_views_disjoint(&outs[i], &v->arrays[j])) st = ROTARY_ERR_OVERLAP;
  if (st != ROTARY_OK) rotary_attn_view_release(v);
  return st;
}
