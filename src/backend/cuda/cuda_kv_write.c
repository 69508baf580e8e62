/* cuda_kv_write.c: rotary_cuda_kv_write: host checks (validation, device, pointers), the launch plan, the launch. */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cuda_kv_plan.h"
#include "cuda_pointers.h"
#include "cuda_positions.h"
#include "cuda_rope.h"
#include "kv_validate.h"
#include "rope.h"

/* Every pointer the kernel reads or writes: q (when it has heads), the k and v inputs, both caches, the index
 * arrays, the position arrays, flags (4-byte aligned for atomicOr). */
static rotary_status kv_check_pointers(const rotary_kv_write_desc *d, const int32_t *flags, int device) {
  const void *ptrs[9 + ROTARY_CUDA_POINTERS_APPENDED];
  int n = 0;
  if (d->q.n_heads) {
    ptrs[n++] = d->q.in;
    ptrs[n++] = d->q.out;
  }
  ptrs[n++] = d->k.in;
  ptrs[n++] = d->v.in;
  const rotary_kv_cache *c = &d->cache;
  ptrs[n++] = c->k;
  ptrs[n++] = c->v;
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES: ptrs[n++] = c->lengths; break;
    case ROTARY_CACHE_SLOTS: ptrs[n++] = c->slot_mapping; break;
    default: /* PAGES (validated) */
      ptrs[n++] = c->page_indptr;
      ptrs[n++] = c->page_indices;
      ptrs[n++] = c->last_page_len;
      break;
  }
  return rotary_cuda_check_pointers(ptrs, n, &d->positions, flags, device);
}

/* A tensor as the kernel reads it (out NULL for k and v: only q has an output). */
static void kv_tensor(rotary_cuda_rotate_tensor *r, const rotary_tensor *t, int has_out, size_t head_dim,
                      size_t rotary_dim) {
  memset(r, 0, sizeof *r);
  if (!t->n_heads) return;
  r->in = t->in;
  r->stride[0] = t->stride_batch;
  r->stride[1] = t->stride_seq;
  r->stride[2] = t->stride_head;
  r->heads = t->n_heads;
  r->dtype = (int32_t)t->dtype;
  if (!has_out) return;
  r->out = t->out;
  r->out_stride[0] = t->out_stride_batch;
  r->out_stride[1] = t->out_stride_seq;
  r->out_stride[2] = t->out_stride_head;
  /* validated: an output that is not exactly its input overlaps no input, so it needs the pass-through dims */
  r->copy_tail = t->in != t->out && head_dim > rotary_dim;
}

/* Nonzero when a pointer is 16-byte aligned and each stride (elements) of a dimension with more than one index is
 * a whole number of 8-element items: every item of the vector path then starts 16-byte aligned (8 for fp8). */
static int kv_aligned(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static int kv_strides_ok(const ptrdiff_t *st, const size_t *extent) {
  for (int i = 0; i < 3; i++)
    if (extent[i] > 1 && st[i] % 8 != 0) return 0;
  return 1;
}

/* The vector path's conditions (cuda_kv_plan.h, ROTARY_CUDA_KV_VECTOR). */
static int kv_vector_ok(const rotary_kv_write_desc *d, const rotary_cache_geom *g, size_t head_dim,
                        size_t rotary_dim, rotary_pairing pairing) {
  if (head_dim % 8 || rotary_dim % (pairing == ROTARY_PAIRING_HALF ? 16 : 8)) return 0;
  if (!kv_aligned(d->cache.k) || !kv_aligned(d->cache.v) || (g->num_blocks > 1 && g->block_stride % 8)) return 0;
  const rotary_tensor *t[3] = {&d->q, &d->k, &d->v};
  for (int i = 0; i < 3; i++) {
    if (!t[i]->n_heads) continue; /* q left out */
    const size_t extent[3] = {d->batch, d->seq_len, t[i]->n_heads};
    const ptrdiff_t in[3] = {t[i]->stride_batch, t[i]->stride_seq, t[i]->stride_head};
    if (!kv_aligned(t[i]->in) || !kv_strides_ok(in, extent)) return 0;
    if (i == 0) {
      const ptrdiff_t out[3] = {t[i]->out_stride_batch, t[i]->out_stride_seq, t[i]->out_stride_head};
      if (!kv_aligned(t[i]->out) || !kv_strides_ok(out, extent)) return 0;
    }
  }
  return 1;
}

/* The launch plan of a call that passed every host check. */
static void kv_plan_build(rotary_cuda_kv_plan *out, const rotary_cuda_rope *rope, const rotary_kv_write_desc *d,
                          const rotary_cache_geom *g, int32_t *flags, int sm_count) {
  const rotary_rope *host = rope->host;
  const rotary_kv_cache *c = &d->cache;
  rotary_cuda_kv_plan p;
  memset(&p, 0, sizeof p);
  rotary_cuda_positions_fill(&p.pos, rope, &d->positions, d->batch, d->seq_len, ROTARY_FORWARD);
  kv_tensor(&p.q, &d->q, 1, host->head_dim, host->rotary_dim);
  kv_tensor(&p.k, &d->k, 0, host->head_dim, host->rotary_dim);
  kv_tensor(&p.v, &d->v, 0, host->head_dim, host->rotary_dim);
  p.kv_heads = d->k.n_heads;
  rotary_cuda_kv_cache *pc = &p.cache;
  pc->k = c->k;
  pc->v = c->v;
  pc->dtype = (int32_t)c->dtype;
  pc->index = (int32_t)c->index;
  pc->num_blocks = g->num_blocks;
  pc->block_size = g->block_size;
  pc->block_stride = g->block_stride;
  pc->row_stride = (uint64_t)g->row_stride;
  pc->head_stride = (uint64_t)g->head_stride;
  pc->slots = g->slots;
  pc->lengths = c->lengths;
  pc->slot_mapping = c->slot_mapping;
  pc->page_indptr = c->page_indptr;
  pc->page_indices = c->page_indices;
  pc->last_page_len = c->last_page_len;
  pc->index_aligned = ((uintptr_t)c->lengths & 7u) == 0 && ((uintptr_t)c->slot_mapping & 7u) == 0 &&
                      ((uintptr_t)c->page_indptr & 3u) == 0 && ((uintptr_t)c->page_indices & 3u) == 0 &&
                      ((uintptr_t)c->last_page_len & 3u) == 0;
  const int fp8 = c->dtype == ROTARY_FP8_E4M3;
  pc->k_scale = fp8 ? c->k_scale : 1.0f;
  pc->v_scale = fp8 ? c->v_scale : 1.0f;
  p.head_dim = (uint32_t)host->head_dim; /* <= ROTARY_MAX_HEAD_DIM */
  p.rotary_dim = (uint32_t)host->rotary_dim;
  p.interleaved = host->pairing == ROTARY_PAIRING_INTERLEAVED;
  p.path = kv_vector_ok(d, g, host->head_dim, host->rotary_dim, host->pairing) ? ROTARY_CUDA_KV_VECTOR
                                                                               : ROTARY_CUDA_KV_GENERAL;
  p.tokens = (uint64_t)d->batch * d->seq_len; /* validated: no overflow */
  p.flags = flags;
  p.sm_count = sm_count;
  *out = p;
}

rotary_status rotary_cuda_kv_write(const rotary_cuda_rope *rope, const rotary_kv_write_desc *desc, void *stream,
                                   int32_t *flags) {
  ROTARY_RETURN_IF(!rope || !desc, ROTARY_ERR_NULL_POINTER);
  rotary_cache_geom geom;
  rotary_status st = rotary_validate_kv_write(rope->host, desc, &geom, 1);
  if (st != ROTARY_OK) return st;
  if ((st = rotary_cuda_check_device(rope->device)) != ROTARY_OK) return st;
  if ((st = kv_check_pointers(desc, flags, rope->device)) != ROTARY_OK) return st;
  rotary_cuda_kv_plan plan;
  kv_plan_build(&plan, rope, desc, &geom, flags, rope->sm_count); /* read once by rotary_cuda_rope_create */
  return rotary_cuda_kv_launch(&plan, stream);
}
