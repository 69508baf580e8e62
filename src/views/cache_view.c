/* cache_view.c: KV-cache checks: geometry and extent, k/v disjointness, fp8 scales, slots of each index kind. */
#include "cache_view.h"

#include <math.h>
#include <stdlib.h>

#include "check.h"

rotary_status rotary_cache_geom_init(rotary_cache_geom *g, const rotary_kv_cache *c, size_t kv_heads,
                                     size_t head_dim) {
  ROTARY_RETURN_IF(c->layout != ROTARY_CACHE_NHD && c->layout != ROTARY_CACHE_HND, ROTARY_ERR_INVALID_ARGUMENT);
  ROTARY_RETURN_IF(c->num_blocks == 0 || c->block_size == 0, ROTARY_ERR_INVALID_ARGUMENT);
  const size_t elem = rotary_dtype_size(c->dtype);
  ROTARY_RETURN_IF(elem == 0, ROTARY_ERR_DTYPE);
  size_t row, block, span, extent, bytes, slots;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(kv_heads, head_dim, &row), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(row, c->block_size, &block), ROTARY_ERR_OVERFLOW);
  const size_t stride = c->block_stride ? c->block_stride : block;
  ROTARY_RETURN_IF(stride < block, ROTARY_ERR_STRIDE); /* blocks would share rows */
  ROTARY_RETURN_IF(rotary_mul_overflow_size(c->num_blocks - 1, stride, &span), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_add_overflow_size(span, block, &extent), ROTARY_ERR_OVERFLOW);
  ROTARY_RETURN_IF(rotary_mul_overflow_size(extent, elem, &bytes) || bytes > PTRDIFF_MAX, ROTARY_ERR_OVERFLOW);
  /* slots <= extent elements (stride >= block >= block_size), so it fits too */
  ROTARY_RETURN_IF(rotary_mul_overflow_size(c->num_blocks, c->block_size, &slots), ROTARY_ERR_OVERFLOW);
  g->elem = elem;
  g->kv_heads = kv_heads;
  g->head_dim = head_dim;
  g->block_size = c->block_size;
  g->num_blocks = c->num_blocks;
  g->block_stride = stride;
  g->block_elems = block;
  g->row_stride = (ptrdiff_t)(c->layout == ROTARY_CACHE_NHD ? row : head_dim);
  g->head_stride = (ptrdiff_t)(c->layout == ROTARY_CACHE_NHD ? head_dim : c->block_size * head_dim);
  g->slots = slots;
  g->extent_bytes = bytes;
  return ROTARY_OK;
}

rotary_status rotary_cache_view(const rotary_cache_geom *g, const void *base, rotary_view *v) {
  ROTARY_RETURN_IF(UINTPTR_MAX - (uintptr_t)base < g->extent_bytes, ROTARY_ERR_OVERFLOW);
  rotary_view_span(v, (uintptr_t)base, (uintptr_t)base + g->extent_bytes);
  return ROTARY_OK;
}

int rotary_cache_kv_disjoint(const rotary_cache_geom *g, const rotary_view *k, const rotary_view *v) {
  if (k->hi <= v->lo || v->hi <= k->lo) return 1;
  /* Interleaved blocks: v's block j lies at offset d = (v - k) mod B of k's block grid (B the block stride in
   * bytes); it misses every k block [0, L) mod B exactly when d is in [L, B - L]. extent_bytes bounds B. */
  const uint64_t stride = (uint64_t)g->block_stride * g->elem, block = (uint64_t)g->block_elems * g->elem;
  const uint64_t diff = v->lo >= k->lo ? (uint64_t)(v->lo - k->lo) : (uint64_t)(k->lo - v->lo);
  uint64_t d = diff % stride;
  if (v->lo < k->lo && d) d = stride - d;
  return d >= block && d <= stride - block;
}

rotary_status rotary_check_scale(float scale) {
  return isfinite(scale) && scale > 0.0f ? ROTARY_OK : ROTARY_ERR_SCALE;
}

/* A run of consecutive slots [lo, hi). */
typedef struct slot_run {
  int64_t lo, hi;
} slot_run;

static int run_compare(const void *a, const void *b) {
  const int64_t x = ((const slot_run *)a)->lo, y = ((const slot_run *)b)->lo;
  return (x > y) - (x < y);
}

rotary_status rotary_check_slots_unique(int64_t (*slot)(size_t i, const void *arg), const void *arg, size_t n) {
  /* Slots merged into runs of consecutive values (a prefill writes whole runs, a page table one run per page), so
   * the sort, when the runs are not already in order, sorts few items. */
  slot_run local[64];
  slot_run *runs = local;
  if (n > 64) {
    ROTARY_RETURN_IF(n > SIZE_MAX / sizeof *runs, ROTARY_ERR_OUT_OF_MEMORY);
    runs = malloc(n * sizeof *runs);
    if (!runs) return ROTARY_ERR_OUT_OF_MEMORY;
  }
  size_t m = 0;
  int sorted = 1;
  for (size_t i = 0; i < n; i++) {
    const int64_t s = slot(i, arg);
    if (s < 0) continue;
    if (m && runs[m - 1].hi == s) {
      runs[m - 1].hi = s + 1;
      continue;
    }
    if (m && s < runs[m - 1].hi) sorted = 0;
    runs[m].lo = s;
    runs[m++].hi = s + 1;
  }
  if (!sorted) qsort(runs, m, sizeof *runs, run_compare);
  rotary_status st = ROTARY_OK;
  for (size_t i = 1; i < m; i++) {
    if (runs[i].lo < runs[i - 1].hi) {
      st = ROTARY_ERR_CACHE_INDEX;
      break;
    }
  }
  if (runs != local) free(runs);
  return st;
}

/* Token t = b * seq_len + s of a validated call, for the duplicate check. */
typedef struct token_walk {
  const rotary_kv_cache *c;
  size_t block_size, seq_len;
} token_walk;

static int64_t token_slot(size_t t, const void *arg) {
  const token_walk *w = arg;
  return rotary_cache_slot(w->c, w->block_size, w->seq_len, t / w->seq_len, t % w->seq_len);
}

static rotary_status check_sequences(const rotary_kv_cache *c, const rotary_cache_geom *g, size_t batch,
                                     size_t seq_len) {
  ROTARY_RETURN_IF(g->num_blocks < batch, ROTARY_ERR_CACHE_INDEX);
  for (size_t b = 0; b < batch; b++) {
    const int64_t len = c->lengths[b];
    ROTARY_RETURN_IF(len < 0 || (uint64_t)len > g->block_size || seq_len > g->block_size - (uint64_t)len,
                     ROTARY_ERR_CACHE_INDEX);
  }
  return ROTARY_OK; /* each sequence writes its own block: no slot twice */
}

static rotary_status check_slot_mapping(const rotary_kv_cache *c, const rotary_cache_geom *g, size_t tokens) {
  for (size_t t = 0; t < tokens; t++) {
    const int64_t s = c->slot_mapping[t];
    ROTARY_RETURN_IF(s >= 0 && (uint64_t)s >= g->slots, ROTARY_ERR_CACHE_INDEX);
  }
  return ROTARY_OK;
}

rotary_status rotary_check_page_table(const rotary_kv_cache *c, const rotary_cache_geom *g, size_t batch,
                                     size_t seq_len, size_t *lens) {
  ROTARY_RETURN_IF(c->page_indptr[0] != 0, ROTARY_ERR_CACHE_INDEX);
  for (size_t b = 0; b < batch; b++) {
    const int32_t first = c->page_indptr[b], next = c->page_indptr[b + 1], last = c->last_page_len[b];
    ROTARY_RETURN_IF(next <= first, ROTARY_ERR_CACHE_INDEX);
    ROTARY_RETURN_IF(last < 1 || (size_t)last > g->block_size, ROTARY_ERR_CACHE_INDEX);
    size_t len; /* (pages - 1) * block_size + last: rows the sequence holds after the call */
    ROTARY_RETURN_IF(rotary_mul_overflow_size((size_t)(next - first) - 1, g->block_size, &len) ||
                         rotary_add_overflow_size(len, (size_t)last, &len),
                     ROTARY_ERR_CACHE_INDEX);
    ROTARY_RETURN_IF(len < seq_len, ROTARY_ERR_CACHE_INDEX);
    if (lens) lens[b] = len;
  }
  const size_t n = (size_t)c->page_indptr[batch];
  for (size_t i = 0; i < n; i++) {
    ROTARY_RETURN_IF(c->page_indices[i] < 0 || (size_t)c->page_indices[i] >= g->num_blocks, ROTARY_ERR_CACHE_INDEX);
  }
  return ROTARY_OK;
}

/* The index arrays as flat views, once their sizes are known to be readable. */
static rotary_status index_arrays(const rotary_kv_cache *c, size_t batch, size_t tokens, rotary_view *arrays,
                                  int *n) {
  rotary_status st;
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES: return rotary_view_flat(&arrays[(*n)++], c->lengths, batch * sizeof(int64_t));
    case ROTARY_CACHE_SLOTS: return rotary_view_flat(&arrays[(*n)++], c->slot_mapping, tokens * sizeof(int64_t));
    case ROTARY_CACHE_PAGES:
      if ((st = rotary_view_flat(&arrays[(*n)++], c->page_indptr, (batch + 1) * sizeof(int32_t))) != ROTARY_OK ||
          (st = rotary_view_flat(&arrays[(*n)++], c->last_page_len, batch * sizeof(int32_t))) != ROTARY_OK)
        return st;
      return rotary_view_flat(&arrays[(*n)++], c->page_indices, (size_t)c->page_indptr[batch] * sizeof(int32_t));
  }
  return ROTARY_ERR_INVALID_ARGUMENT;
}

/* GPU arrays: pointers and extents only (page_indices' length is page_indptr[batch], on the device: its extent is
 * not known here and it takes no part in the overlap checks); the kernel checks the values. */
static rotary_status device_index_arrays(const rotary_kv_cache *c, const rotary_cache_geom *g, size_t batch,
                                         size_t tokens, rotary_view *arrays, int *n) {
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES:
      ROTARY_RETURN_IF(!c->lengths, ROTARY_ERR_NULL_POINTER);
      ROTARY_RETURN_IF(g->num_blocks < batch, ROTARY_ERR_CACHE_INDEX);
      return rotary_view_flat(&arrays[(*n)++], c->lengths, batch * sizeof(int64_t));
    case ROTARY_CACHE_SLOTS:
      ROTARY_RETURN_IF(!c->slot_mapping, ROTARY_ERR_NULL_POINTER);
      return rotary_view_flat(&arrays[(*n)++], c->slot_mapping, tokens * sizeof(int64_t));
    case ROTARY_CACHE_PAGES: {
      ROTARY_RETURN_IF(!c->page_indptr || !c->page_indices || !c->last_page_len, ROTARY_ERR_NULL_POINTER);
      rotary_status st = rotary_view_flat(&arrays[(*n)++], c->page_indptr, (batch + 1) * sizeof(int32_t));
      return st != ROTARY_OK ? st : rotary_view_flat(&arrays[(*n)++], c->last_page_len, batch * sizeof(int32_t));
    }
  }
  return ROTARY_ERR_INVALID_ARGUMENT;
}

rotary_status rotary_check_cache_index(const rotary_kv_cache *c, const rotary_cache_geom *g, size_t batch,
                                       size_t seq_len, rotary_view *arrays, int *n, int on_device) {
  size_t tokens, bytes;
  *n = 0;
  ROTARY_RETURN_IF(rotary_mul_overflow_size(batch, seq_len, &tokens), ROTARY_ERR_OVERFLOW);
  /* every array below holds at most tokens + 1 eight-byte values: bound the byte counts once */
  ROTARY_RETURN_IF(rotary_mul_overflow_size(tokens, 2 * sizeof(int64_t), &bytes), ROTARY_ERR_OVERFLOW);
  rotary_status st = ROTARY_ERR_INVALID_ARGUMENT;
  if (on_device) return device_index_arrays(c, g, batch, tokens, arrays, n);
  switch (c->index) {
    case ROTARY_CACHE_SEQUENCES:
      ROTARY_RETURN_IF(!c->lengths, ROTARY_ERR_NULL_POINTER);
      st = check_sequences(c, g, batch, seq_len);
      break;
    case ROTARY_CACHE_SLOTS:
      ROTARY_RETURN_IF(!c->slot_mapping, ROTARY_ERR_NULL_POINTER);
      st = check_slot_mapping(c, g, tokens);
      break;
    case ROTARY_CACHE_PAGES:
      ROTARY_RETURN_IF(!c->page_indptr || !c->page_indices || !c->last_page_len, ROTARY_ERR_NULL_POINTER);
      st = rotary_check_page_table(c, g, batch, seq_len, NULL);
      break;
  }
  if (st != ROTARY_OK) return st;
  if ((st = index_arrays(c, batch, tokens, arrays, n)) != ROTARY_OK) return st;
  if (c->index == ROTARY_CACHE_SEQUENCES) return ROTARY_OK;
  const token_walk w = {c, g->block_size, seq_len};
  return rotary_check_slots_unique(token_slot, &w, tokens);
}
