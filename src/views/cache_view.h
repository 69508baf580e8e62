/* cache_view.h: checks of a KV cache (geometry, bounds, slots per index kind, duplicates, disjointness, scales). */
#ifndef ROTARY_CACHE_VIEW_H
#define ROTARY_CACHE_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "rotary.h"
#include "strided_view.h"

/* Where the rows of one cache (k or v) lie, in elements of the cache dtype. Valid once rotary_cache_geom_init
 * returned OK: every offset rotary_cache_offset gives for a slot below `slots` lies inside the cache's extent. */
typedef struct rotary_cache_geom {
  size_t elem;            /* bytes per element */
  size_t kv_heads, head_dim, block_size, num_blocks;
  size_t block_stride;    /* elements from one block to the next (0 in the call resolved to block_elems) */
  size_t block_elems;     /* block_size * kv_heads * head_dim */
  ptrdiff_t row_stride;   /* elements from one row (token) of a block to the next: NHD kv_heads * head_dim, HND
                             head_dim */
  ptrdiff_t head_stride;  /* elements from one head of a row to the next: NHD head_dim, HND block_size * head_dim */
  size_t slots;           /* num_blocks * block_size */
  size_t extent_bytes;    /* ((num_blocks - 1) * block_stride + block_elems) * elem */
} rotary_cache_geom;

/* Resolves and checks a cache's geometry for kv_heads heads of head_dim elements: INVALID_ARGUMENT (unknown layout,
 * num_blocks or block_size 0), DTYPE (unknown cache dtype), STRIDE (block_stride smaller than a block), OVERFLOW
 * (the extent in bytes above PTRDIFF_MAX). */
rotary_status rotary_cache_geom_init(rotary_cache_geom *g, const rotary_kv_cache *c, size_t kv_heads,
                                     size_t head_dim);

/* The byte extent of the cache starting at base as a flat view; OVERFLOW when it wraps the address space. */
rotary_status rotary_cache_view(const rotary_cache_geom *g, const void *base, rotary_view *v);

/* Nonzero when the k and v caches (their views from rotary_cache_view) share no byte: disjoint extents, or blocks
 * of one buffer interleaved (a combined [num_blocks, 2, ...] cache): (v - k) mod block_stride bytes lies in
 * [block bytes, block_stride bytes - block bytes]. */
int rotary_cache_kv_disjoint(const rotary_cache_geom *g, const rotary_view *k, const rotary_view *v);

/* Element offset of head h of a slot's row, for a valid slot. */
static inline ptrdiff_t rotary_cache_offset(const rotary_cache_geom *g, size_t slot, size_t h) {
  const size_t block = slot / g->block_size, row = slot % g->block_size;
  return (ptrdiff_t)(block * g->block_stride) + (ptrdiff_t)row * g->row_stride + (ptrdiff_t)h * g->head_stride;
}

/* A PAGES table on the host: indptr from 0, non-decreasing, each sequence at least one page, a last page length in
 * 1 .. block_size, at least seq_len rows, every page index below num_blocks (else CACHE_INDEX). lens, when not
 * NULL, receives each sequence's rows (pages - 1) * block_size + last_page_len. */
rotary_status rotary_check_page_table(const rotary_kv_cache *c, const rotary_cache_geom *g, size_t batch,
                                      size_t seq_len, size_t *lens);

/* SCALE unless the fp8 scale is finite and > 0. */
rotary_status rotary_check_scale(float scale);

/* The slot token (b, s) of a validated call writes; negative: the token is skipped (SLOTS only). */
static inline int64_t rotary_cache_slot(const rotary_kv_cache *c, size_t block_size, size_t seq_len, size_t b,
                                        size_t s) {
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES: return (int64_t)(b * block_size) + c->lengths[b] + (int64_t)s;
    case ROTARY_CACHE_SLOTS: return c->slot_mapping[b * seq_len + s];
    case ROTARY_CACHE_PAGES: {
      const int32_t first = c->page_indptr[b], pages = c->page_indptr[b + 1] - first;
      const size_t len = (size_t)(pages - 1) * block_size + (size_t)c->last_page_len[b];
      const size_t p = len - seq_len + s;
      return (int64_t)((size_t)c->page_indices[(size_t)first + p / block_size] * block_size + p % block_size);
    }
  }
  return -1;
}

/* Checks the index arrays of a cache for batch x seq_len tokens (NULL_POINTER, CACHE_INDEX: every slot inside the
 * cache, page tables consistent, no slot written twice; OVERFLOW; OUT_OF_MEMORY for the duplicate check) and
 * describes them as flat read-only views (*n of them, at most 3, into arrays). INVALID_ARGUMENT for an unknown
 * index kind. on_device: the arrays live in GPU memory: only their pointers and extents are checked (SEQUENCES
 * also num_blocks >= batch), the kernel checks the values; page_indices is not described. */
rotary_status rotary_check_cache_index(const rotary_kv_cache *c, const rotary_cache_geom *g, size_t batch,
                                       size_t seq_len, rotary_view *arrays, int *n, int on_device);

/* CACHE_INDEX when two of the n slots (negative ones ignored) are equal; OUT_OF_MEMORY. Reads slots(i, arg) for
 * i < n, in any order. */
rotary_status rotary_check_slots_unique(int64_t (*slot)(size_t i, const void *arg), const void *arg, size_t n);

#endif /* ROTARY_CACHE_VIEW_H */
